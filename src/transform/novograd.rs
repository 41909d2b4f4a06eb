//! NovoGrad's direction: a second moment per tensor.

use super::{Context, Transform};
use crate::engine::cast;
use crate::{Error, Scalar, check};

/// optax's `scale_by_novograd` (Ginsburg et al., 2019): the gradient normalised by a moving
/// average of its squared norm over the whole key, plus weight decay, with momentum,
///
/// ```text
/// n = ‖u‖²;  ν ← n on the first step, else β₂·ν + (1 − β₂)·n
/// m ← β₁·m + u/(√(ν + ε_root) + ε) + λ·p;   u ← m
/// ```
///
/// A transform that [reduces](Transform::REDUCES): the engine sums `u²` over the key first.
/// Defaults (optax's): betas (0.9, 0.25), ε 1e-6, ε_root 0, weight decay 0 (a key's
/// [`Group`](crate::Group) weight decay replaces it). State: `mu`, and `nu` — one number per key
/// in optax, kept here for every element (all equal), the price of a per-element state.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByNovograd {
    betas: [f64; 2],
    eps: f64,
    eps_root: f64,
    weight_decay: f64,
}

impl Default for ScaleByNovograd {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.25],
            eps: 1e-6,
            eps_root: 0.0,
            weight_decay: 0.0,
        }
    }
}

builders!(ScaleByNovograd {
    /// Sets β₁ and β₂, each in `[0, 1)`.
    betas: [f64; 2],
    /// Sets ε, added to the root (default 1e-6).
    eps: f64,
    /// Sets ε_root, added under the root (default 0).
    eps_root: f64,
    /// Sets the weight decay λ, added to the normalised gradient (default 0), `>= 0`.
    weight_decay: f64,
});

/// The per-step scalars of [`ScaleByNovograd`]; `norm` and `mix` are set once the key's sum of
/// squares is known.
#[derive(Clone, Copy, Debug)]
pub struct NovogradScalars<F> {
    first: bool,
    b1: F,
    b2: F,
    c2: F,
    eps: F,
    eps_root: F,
    wd: F,
    /// `‖u‖²`, on the first step; `(1 − β₂)·‖u‖²` after.
    norm: F,
}

impl<F: Scalar> Transform<F> for ScaleByNovograd {
    type State = [F; 2];
    type Scalars = NovogradScalars<F>;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (weight_decay),
    );

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::moments(self.betas, self.eps, self.eps_root)?;
        check::non_negative("weight_decay value", self.weight_decay)
    }

    fn scalars(&self, ctx: &Context<'_>) -> NovogradScalars<F> {
        let [beta1, beta2] = self.betas;
        NovogradScalars {
            first: ctx.t == 1,
            b1: cast(beta1),
            b2: cast(beta2),
            c2: cast(1.0 - beta2),
            eps: cast(self.eps),
            eps_root: cast(self.eps_root),
            wd: cast(ctx.weight_decay.unwrap_or(self.weight_decay)),
            norm: F::zero(),
        }
    }

    #[inline(always)]
    fn apply(s: &NovogradScalars<F>, p: F, u: F, [m, nu]: &mut [F; 2]) -> F {
        *nu = if s.first { s.norm } else { s.norm + s.b2 * *nu };
        *m = s.b1 * *m + (u / ((*nu + s.eps_root).sqrt() + s.eps) + s.wd * p);
        *m
    }

    const REDUCES: bool = true;

    #[inline(always)]
    fn before(_: &NovogradScalars<F>, _: F, u: F, _: &mut [F; 2]) -> F {
        u
    }

    #[inline(always)]
    fn reduce(_: F, u: F) -> [F; 2] {
        [F::zero(), u * u]
    }

    fn finish(s: &mut NovogradScalars<F>, [_, squares]: [F; 2]) {
        // optax squares the norm it takes: `‖u‖²` rounded twice.
        let norm = squares.sqrt();
        s.norm = if s.first {
            norm * norm
        } else {
            s.c2 * (norm * norm)
        };
    }
}

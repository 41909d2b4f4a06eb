//! Adam's direction, the adaptive transform most chains start from.

use super::{Context, Transform};
use crate::engine::cast;
use crate::parts::bias_correction;
use crate::{Error, Scalar, check};

/// optax's `scale_by_adam`: bias-corrected first and second moments,
///
/// ```text
/// m ← (1 − β₁)·u + β₁·m;   v ← (1 − β₂)·u² + β₂·v
/// m̂ = m/(1 − β₁ᵗ)   (Nesterov: β₁·m/(1 − β₁ᵗ⁺¹) + (1 − β₁)·u/(1 − β₁ᵗ))
/// u ← m̂ / (√(v/(1 − β₂ᵗ) + ε_root) + ε)
/// ```
///
/// Defaults (optax's): betas (0.9, 0.999), ε 1e-8, ε_root 0, no Nesterov. State, with optax's
/// names: `mu`, `nu`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByAdam {
    pub(crate) betas: [f64; 2],
    pub(crate) eps: f64,
    pub(crate) eps_root: f64,
    pub(crate) nesterov: bool,
}

impl Default for ScaleByAdam {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            eps_root: 0.0,
            nesterov: false,
        }
    }
}

builders!(ScaleByAdam {
    /// Sets β₁ and β₂, each in `[0, 1)`.
    betas: [f64; 2],
    /// Sets ε, added to the root (default 1e-8).
    eps: f64,
    /// Sets ε_root, added under the root (default 0).
    eps_root: f64,
    /// Uses Nesterov's look-ahead on the first moment (default `false`).
    nesterov: bool,
});

/// The per-step scalars of [`ScaleByAdam`].
#[derive(Clone, Copy, Debug)]
pub struct AdamScalars<F> {
    b1: F,
    c1: F,
    b2: F,
    c2: F,
    bc1: F,
    bc2: F,
    eps: F,
    eps_root: F,
    /// `β₁/(1 − β₁ᵗ⁺¹)` and `(1 − β₁)/(1 − β₁ᵗ)` with Nesterov's look-ahead.
    nesterov: Option<(F, F)>,
}

impl<F: Scalar> Transform<F> for ScaleByAdam {
    type State = [F; 2];
    type Scalars = AdamScalars<F>;

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::moments(self.betas, self.eps, self.eps_root)
    }

    fn scalars(&self, ctx: &Context<'_>) -> AdamScalars<F> {
        let [beta1, beta2] = self.betas;
        AdamScalars {
            b1: cast(beta1),
            c1: cast(1.0 - beta1),
            b2: cast(beta2),
            c2: cast(1.0 - beta2),
            bc1: cast(bias_correction(beta1, ctx.t)),
            bc2: cast(bias_correction(beta2, ctx.t)),
            eps: cast(self.eps),
            eps_root: cast(self.eps_root),
            nesterov: self
                .nesterov
                .then(|| (cast(bias_correction(beta1, ctx.t + 1)), cast(1.0 - beta1))),
        }
    }

    #[inline(always)]
    fn apply(s: &AdamScalars<F>, _: F, u: F, [m, v]: &mut [F; 2]) -> F {
        *m = s.c1 * u + s.b1 * *m;
        *v = s.c2 * (u * u) + s.b2 * *v;
        let m_hat = match s.nesterov {
            Some((bc1_next, c1)) => s.b1 * (*m / bc1_next) + c1 * (u / s.bc1),
            None => *m / s.bc1,
        };
        m_hat / ((*v / s.bc2 + s.eps_root).sqrt() + s.eps)
    }
}

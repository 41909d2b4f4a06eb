//! optax.contrib's elementwise optimizers that keep the starting point and read the learning
//! rate themselves: COCOB and MADGRAD.

use super::{Context, Transform};
use crate::engine::cast;
use crate::{Error, Scalar, check};

/// optax's `contrib.scale_by_cocob` after its learning rate (Orabona & Tommasi, 2017, "Training
/// Deep Networks without Learning Rates Through Coin Betting"): each element bets on its
/// gradients' sign,
///
/// ```text
/// c = lr·u;  L ← max(L, |c|);  G ← G + |c|;  R ← max(R − c·(p − p₀), 0);  C ← C − c
/// u ← p₀ + C/(L·max(G + L, α·L))·(L + R) − p
/// ```
///
/// with `L` starting at ε and `p₀` the parameter before its first step. It reads the learning
/// rate (optax's `scale_by_learning_rate(lr, flip_sign=False)` before it), so its chain ends
/// here: optax's `cocob(lr, alpha, eps, weight_decay)` is `chain!(AddDecayedWeights::new(weight_decay),
/// ScaleByCocob::default())`. Defaults (optax's): α = 100, ε = 1e-8 (the learning rate 1).
/// State, with optax's names: `init_particles`, `cumulative_gradients`, `scale`,
/// `subgradients`, `reward`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByCocob {
    alpha: f64,
    eps: f64,
}

impl Default for ScaleByCocob {
    fn default() -> Self {
        Self {
            alpha: 100.0,
            eps: 1e-8,
        }
    }
}

builders!(ScaleByCocob {
    /// Sets α, the bound on the bet's growth (default 100), `> 0`.
    alpha: f64,
    /// Sets ε, the first value of the scale `L` (default 1e-8), `> 0`.
    eps: f64,
});

/// The per-step scalars of [`ScaleByCocob`].
#[derive(Clone, Copy, Debug)]
pub struct CocobScalars<F> {
    lr: F,
    alpha: F,
    /// `L`'s first value, on the key's first step.
    first: Option<F>,
}

impl<F: Scalar> Transform<F> for ScaleByCocob {
    type State = [F; 5];
    type Scalars = CocobScalars<F>;

    fn slot_names(&self) -> Vec<&'static str> {
        vec![
            "init_particles",
            "cumulative_gradients",
            "scale",
            "subgradients",
            "reward",
        ]
    }

    fn validate(&self) -> Result<(), Error> {
        check::positive("alpha value", self.alpha)?;
        check::positive("epsilon value", self.eps)
    }

    fn scalars(&self, ctx: &Context<'_>) -> CocobScalars<F> {
        CocobScalars {
            lr: cast(ctx.lr),
            alpha: cast(self.alpha),
            first: (ctx.t == 1).then(|| cast(self.eps)),
        }
    }

    #[inline(always)]
    fn apply(s: &CocobScalars<F>, p: F, u: F, [p0, sum, scale, abs_sum, reward]: &mut [F; 5]) -> F {
        if let Some(eps) = s.first {
            (*p0, *scale) = (p, eps);
        }
        let c = s.lr * u;
        *scale = scale.max(c.abs());
        *abs_sum = *abs_sum + c.abs();
        *reward = (*reward - c * (p - *p0)).max(F::zero());
        *sum = *sum - c;
        let bet = *sum / (*scale * (*abs_sum + *scale).max(s.alpha * *scale));
        -p + (*p0 + bet * (*scale + *reward))
    }
}

/// optax's `contrib.scale_by_madgrad` (Defazio & Jelassi, 2021, "Adaptivity without Compromise"):
/// dual averaging with a cube-root AdaGrad denominator, and momentum by averaging iterates,
///
/// ```text
/// λ = (lr + ε)·√t;  S ← S + λ·u²;  s ← s + λ·u;  z = p₀ − s/(∛S + ε)
/// u ← (1 − μ)·z + μ·p − p
/// ```
///
/// with `p₀` the parameter before its first step. It reads the learning rate, so its chain ends
/// here: optax's `madgrad(lr, momentum, weight_decay, eps)` is
/// `chain!(AddDecayedWeights::new(weight_decay), ScaleByMadgrad::default())`. As in optax, `λ` is
/// computed in `f32` (its step counter is a 32-bit integer, and a constant learning rate enters
/// as `f32`) whatever the parameters' type. Defaults (optax's): momentum μ 0.9, ε 1e-6. State,
/// with optax's names: `grad_sum_sq`, `s`, `x0`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByMadgrad {
    momentum: f64,
    eps: f64,
}

impl Default for ScaleByMadgrad {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            eps: 1e-6,
        }
    }
}

builders!(ScaleByMadgrad {
    /// Sets the momentum μ, in `[0, 1)` (default 0.9).
    momentum: f64,
    /// Sets ε, added to the learning rate and to the cube root (default 1e-6), `>= 0`.
    eps: f64,
});

/// The per-step scalars of [`ScaleByMadgrad`].
#[derive(Clone, Copy, Debug)]
pub struct MadgradScalars<F> {
    lambda: F,
    eps: F,
    keep: F,
    momentum: F,
    first: bool,
}

impl<F: Scalar> Transform<F> for ScaleByMadgrad {
    type State = [F; 3];
    type Scalars = MadgradScalars<F>;

    hyperparameters!(Momentum => (momentum));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["grad_sum_sq", "s", "x0"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("momentum value", self.momentum)?;
        check::non_negative("epsilon value", self.eps)
    }

    fn scalars(&self, ctx: &Context<'_>) -> MadgradScalars<F> {
        let root = (ctx.t as f32).sqrt();
        let lambda = ((ctx.lr + self.eps) as f32) * root;
        MadgradScalars {
            lambda: cast(f64::from(lambda)),
            eps: cast(self.eps),
            keep: cast(1.0 - self.momentum),
            momentum: cast(self.momentum),
            first: ctx.t == 1,
        }
    }

    #[inline(always)]
    fn apply(s: &MadgradScalars<F>, p: F, u: F, [squares, sum, x0]: &mut [F; 3]) -> F {
        if s.first {
            *x0 = p;
        }
        *squares = *squares + s.lambda * (u * u);
        *sum = *sum + s.lambda * u;
        let z = *x0 - *sum / (squares.cbrt() + s.eps);
        (s.keep * z + s.momentum * p) - p
    }
}

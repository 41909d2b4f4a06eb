//! Adam's direction, the adaptive transform most chains start from.

use super::{Context, Transform};
use crate::engine::cast;
use crate::optimizers::rectified;
use crate::parts::{bias_correction, sign};
use crate::{Error, Scalar, check};

/// optax's `scale_by_adam`: bias-corrected first and second moments,
///
/// ```text
/// m ← (1 − β₁)·u + β₁·m;   v ← (1 − β₂)·u² + β₂·v
/// u ← m̂ / (√(v/(1 − β₂ᵗ) + ε_root) + ε),   m̂ = m/(1 − β₁ᵗ)
/// ```
///
/// Defaults (optax's): betas (0.9, 0.999), ε 1e-8, ε_root 0, [`Debias::Moments`]. State, with
/// optax's names: `mu`, `nu`. optax's `nesterov=True` is [`ScaleByNadam`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByAdam {
    pub(crate) betas: [f64; 2],
    pub(crate) eps: f64,
    pub(crate) eps_root: f64,
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) debias: Debias,
}

impl Default for ScaleByAdam {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            eps_root: 0.0,
            debias: Debias::Moments,
        }
    }
}

/// How [`ScaleByAdam`] corrects its moments' bias towards their zero start. The first two agree
/// except where `√v` is comparable to ε.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Debias {
    /// optax's and PyTorch's: each moment corrected, ε added to the corrected root,
    /// `u ← m̂ / (√(v̂ + ε_root) + ε)`.
    #[default]
    Moments,
    /// The book's and transformers' `AdamW` (and C-Optim's cautious AdamW): the corrections
    /// folded into a step size, ε added to the raw root,
    /// `u ← √(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√(v + ε_root) + ε)`.
    StepSize,
    /// None: `u ← m / (√(v + ε_root) + ε)` (transformers' `correct_bias=False`).
    Off,
}

impl ScaleByAdam {
    /// Refuses a [`Debias`] other than [`Debias::Moments`] in a transform built on Adam's
    /// moments whose formula needs the corrected ones.
    fn corrected_moments(&self, transform: &'static str) -> Result<(), Error> {
        match self.debias {
            Debias::Moments => Ok(()),
            _ => Err(Error::IncompatibleOptions { reason: transform }),
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
    /// Sets how the moments are bias-corrected (default [`Debias::Moments`], optax's).
    debias: Debias,
});

/// optax's `scale_by_adam(nesterov=True)`, the direction of `optax.nadam`: [`ScaleByAdam`] with
/// Nesterov's look-ahead on the first moment, `m̂ = β₁·m/(1 − β₁ᵗ⁺¹) + (1 − β₁)·u/(1 − β₁ᵗ)`.
///
/// A type of its own rather than a flag: a branch on a flag in the per-element path keeps the
/// reduction passes of per-tensor transforms from vectorizing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByNadam(pub ScaleByAdam);

/// The per-step scalars of [`ScaleByAdam`] and [`ScaleByNadam`]. The bias corrections are kept as
/// reciprocals in `F` and multiplied: XLA compiles optax's division by a scalar so, and two
/// divisions per element are what made the chain slower than a fused AdamW (on every optax file
/// the errors are the same or lower).
#[derive(Clone, Copy, Debug)]
pub struct AdamScalars<F> {
    b1: F,
    c1: F,
    b2: F,
    c2: F,
    inv_bc1: F,
    inv_bc2: F,
    eps: F,
    eps_root: F,
    /// `1/(1 − β₁ᵗ⁺¹)`, for Nesterov's look-ahead.
    inv_bc1_next: F,
}

impl<F: Scalar> AdamScalars<F> {
    /// Updates the moments from `u`.
    #[inline(always)]
    fn moments(&self, u: F, m: &mut F, v: &mut F) {
        *m = self.c1 * u + self.b1 * *m;
        *v = self.c2 * (u * u) + self.b2 * *v;
    }

    /// Nesterov's look-ahead on the first moment `m` for the update `u`.
    #[inline(always)]
    fn look_ahead(&self, u: F, m: F) -> F {
        self.b1 * (m * self.inv_bc1_next) + self.c1 * (u * self.inv_bc1)
    }

    /// The direction for the bias-corrected first moment `m_hat`.
    #[inline(always)]
    fn direction(&self, m_hat: F, v: F) -> F {
        m_hat / ((v * self.inv_bc2 + self.eps_root).sqrt() + self.eps)
    }
}

impl<F: Scalar> Transform<F> for ScaleByAdam {
    type State = [F; 2];
    type Scalars = AdamScalars<F>;

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::moments(self.betas, self.eps, self.eps_root)
    }

    fn scalars(&self, ctx: &Context<'_>) -> AdamScalars<F> {
        let [beta1, beta2] = self.betas;
        let (bc1, bc2) = (bias_correction(beta1, ctx.t), bias_correction(beta2, ctx.t));
        // The other conventions are the same formula with other factors.
        let (inv_bc1, inv_bc2) = match self.debias {
            Debias::Moments => (F::one() / cast::<F>(bc1), F::one() / cast::<F>(bc2)),
            Debias::StepSize => (cast(bc2.sqrt() / bc1), F::one()),
            Debias::Off => (F::one(), F::one()),
        };
        AdamScalars {
            b1: cast(beta1),
            c1: cast(1.0 - beta1),
            b2: cast(beta2),
            c2: cast(1.0 - beta2),
            inv_bc1,
            inv_bc2,
            eps: cast(self.eps),
            eps_root: cast(self.eps_root),
            inv_bc1_next: F::one() / cast::<F>(bias_correction(beta1, ctx.t + 1)),
        }
    }

    #[inline(always)]
    fn apply(s: &AdamScalars<F>, _: F, u: F, [m, v]: &mut [F; 2]) -> F {
        s.moments(u, m, v);
        s.direction(*m * s.inv_bc1, *v)
    }
}

impl<F: Scalar> Transform<F> for ScaleByNadam {
    type State = [F; 2];
    type Scalars = AdamScalars<F>;

    hyperparameters!(Momentum => (0.betas[0]), Beta2 => (0.betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        Transform::<F>::slot_names(&self.0)
    }

    fn validate(&self) -> Result<(), Error> {
        Transform::<F>::validate(&self.0)?;
        self.0
            .corrected_moments("Nesterov's look-ahead needs the bias-corrected moments")
    }

    fn scalars(&self, ctx: &Context<'_>) -> AdamScalars<F> {
        self.0.scalars(ctx)
    }

    #[inline(always)]
    fn apply(s: &AdamScalars<F>, _: F, u: F, [m, v]: &mut [F; 2]) -> F {
        s.moments(u, m, v);
        s.direction(s.look_ahead(u, *m), *v)
    }
}

/// optax's `scale_by_amsgrad`: [`ScaleByAdam`]'s moments, divided by the running maximum of the
/// bias-corrected second moment, `u ← m̂ / (√(max(ν̂max, ν̂) + ε_root) + ε)`. State: `mu`, `nu`,
/// `nu_max`. `bias_correction(false, …)` leaves a moment uncorrected (optax's
/// `bias_correction_mu`, `bias_correction_nu`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByAmsgrad {
    adam: ScaleByAdam,
    bias_correction: [bool; 2],
}

impl ScaleByAmsgrad {
    /// AMSGrad with `adam`'s betas and epsilons, both moments bias-corrected.
    pub fn new(adam: ScaleByAdam) -> Self {
        Self {
            adam,
            bias_correction: [true; 2],
        }
    }

    /// Whether the first and the second moment are bias-corrected (default both).
    #[must_use]
    pub fn bias_correction(self, mu: bool, nu: bool) -> Self {
        Self {
            bias_correction: [mu, nu],
            ..self
        }
    }
}

impl<F: Scalar> Transform<F> for ScaleByAmsgrad {
    type State = [F; 3];
    type Scalars = AdamScalars<F>;

    hyperparameters!(Momentum => (adam.betas[0]), Beta2 => (adam.betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu", "nu_max"]
    }

    fn validate(&self) -> Result<(), Error> {
        Transform::<F>::validate(&self.adam)?;
        self.adam
            .corrected_moments("AMSGrad's corrections are its `bias_correction` flags")
    }

    fn scalars(&self, ctx: &Context<'_>) -> AdamScalars<F> {
        let mut s = self.adam.scalars(ctx);
        // Multiplying by 1 leaves a moment as it is.
        let [mu, nu] = self.bias_correction;
        if !mu {
            s.inv_bc1 = F::one();
        }
        if !nu {
            s.inv_bc2 = F::one();
        }
        s
    }

    #[inline(always)]
    fn apply(s: &AdamScalars<F>, _: F, u: F, [m, v, v_max]: &mut [F; 3]) -> F {
        s.moments(u, m, v);
        *v_max = maximum(*v_max, *v * s.inv_bc2);
        (*m * s.inv_bc1) / ((*v_max + s.eps_root).sqrt() + s.eps)
    }
}

/// optax's `scale_by_radam`: [`ScaleByAdam`]'s bias-corrected moments, rectified once the variance
/// of the adaptive rate is tractable,
///
/// ```text
/// ρ∞ = 2/(1 − β₂) − 1;   ρₜ = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
/// ρₜ ≥ threshold:  u ← rₜ·m̂ / (√(v̂ + ε_root) + ε),  rₜ = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))
/// else:            u ← m̂
/// ```
///
/// `ρₜ` and `rₜ` are computed in `f64`, as optax computes them from its Python-float betas; with
/// `nesterov`, `m̂` is [`ScaleByNadam`]'s look-ahead. Defaults (optax's): betas (0.9, 0.999),
/// ε 1e-8, ε_root 0, threshold 5, no Nesterov. State: `mu`, `nu`. Unlike `torch.optim.RAdam`
/// ([`RAdam`](crate::RAdam)), the threshold is inclusive and the rectified step divides by the
/// bias-corrected `√v̂`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByRadam {
    adam: ScaleByAdam,
    threshold: f64,
    nesterov: bool,
}

impl ScaleByRadam {
    /// RAdam on `adam`'s betas and epsilons, with threshold 5 and no Nesterov look-ahead.
    pub fn new(adam: ScaleByAdam) -> Self {
        Self {
            adam,
            threshold: 5.0,
            nesterov: false,
        }
    }
}

impl Default for ScaleByRadam {
    fn default() -> Self {
        Self::new(ScaleByAdam::default())
    }
}

builders!(ScaleByRadam {
    /// Sets the threshold `ρₜ` must reach for the rectified step (default 5).
    threshold: f64,
    /// Sets whether `m̂` is Nesterov's look-ahead (default false).
    nesterov: bool,
});

/// The per-step scalars of [`ScaleByRadam`]: Adam's, the rectification (`None` below the
/// threshold), and whether the look-ahead applies.
#[derive(Clone, Copy, Debug)]
pub struct RadamScalars<F> {
    adam: AdamScalars<F>,
    rect: Option<F>,
    nesterov: bool,
}

impl<F: Scalar> Transform<F> for ScaleByRadam {
    type State = [F; 2];
    type Scalars = RadamScalars<F>;

    hyperparameters!(Momentum => (adam.betas[0]), Beta2 => (adam.betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        Transform::<F>::validate(&self.adam)?;
        self.adam
            .corrected_moments("RAdam's rectification needs the bias-corrected moments")?;
        check::finite("threshold", self.threshold)
    }

    fn scalars(&self, ctx: &Context<'_>) -> RadamScalars<F> {
        let (rho, rect) = rectified(self.adam.betas[1], ctx.t);
        RadamScalars {
            adam: self.adam.scalars(ctx),
            rect: (rho >= self.threshold).then(|| cast(rect)),
            nesterov: self.nesterov,
        }
    }

    #[inline(always)]
    fn apply(s: &RadamScalars<F>, _: F, u: F, [m, v]: &mut [F; 2]) -> F {
        let a = &s.adam;
        a.moments(u, m, v);
        let m_hat = match s.nesterov {
            true => a.look_ahead(u, *m),
            false => *m * a.inv_bc1,
        };
        match s.rect {
            Some(r) => a.direction(r * m_hat, *v),
            None => m_hat,
        }
    }
}

/// optax's `scale_by_adamax`: the first moment, bias-corrected, over an exponentially weighted
/// infinity norm, `ν ← max(|u| + ε, β₂·ν)`, `u ← m̂ / ν`. Defaults (optax's): betas (0.9, 0.999),
/// ε 1e-8. State: `mu`, `nu`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByAdamax {
    betas: [f64; 2],
    eps: f64,
}

impl Default for ScaleByAdamax {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
        }
    }
}

builders!(ScaleByAdamax {
    /// Sets β₁ and β₂, each in `[0, 1)`.
    betas: [f64; 2],
    /// Sets ε, added to `|u|` (default 1e-8).
    eps: f64,
});

impl<F: Scalar> Transform<F> for ScaleByAdamax {
    type State = [F; 2];
    /// β₁, 1 − β₁, β₂, ε, 1/(1 − β₁ᵗ).
    type Scalars = [F; 5];

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::moments(self.betas, self.eps, 0.0)
    }

    fn scalars(&self, ctx: &Context<'_>) -> [F; 5] {
        let [b1, b2] = self.betas;
        let bc1: F = cast(bias_correction(b1, ctx.t));
        [
            cast(b1),
            cast(1.0 - b1),
            cast(b2),
            cast(self.eps),
            F::one() / bc1,
        ]
    }

    #[inline(always)]
    fn apply(&[b1, c1, b2, eps, inv_bc1]: &[F; 5], _: F, u: F, [m, nu]: &mut [F; 2]) -> F {
        *m = c1 * u + b1 * *m;
        *nu = maximum(u.abs() + eps, b2 * *nu);
        (*m * inv_bc1) / *nu
    }
}

/// `jnp.maximum`: the larger, NaN if either is.
#[inline(always)]
fn maximum<F: Scalar>(a: F, b: F) -> F {
    if a.is_nan() || a > b { a } else { b }
}

/// optax's `scale_by_yogi` (Zaheer et al., 2018): Adam whose second moment moves by a fixed
/// fraction of `u²` towards it, never past it,
///
/// ```text
/// m ← (1 − β₁)·u + β₁·m;   v ← v − (1 − β₂)·sign(v − u²)·u²
/// u ← m̂ / (√(v̂ + ε_root) + ε),   m̂ = m/(1 − β₁ᵗ),  v̂ = v/(1 − β₂ᵗ)
/// ```
///
/// with `m` and `v` starting at the initial accumulator value, not at 0. Defaults (optax's):
/// betas (0.9, 0.999), ε 1e-3, ε_root 0, initial accumulator 1e-6. State, with optax's names:
/// `mu`, `nu`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByYogi {
    adam: ScaleByAdam,
    initial_accumulator_value: f64,
}

impl Default for ScaleByYogi {
    fn default() -> Self {
        Self {
            adam: ScaleByAdam {
                eps: 1e-3,
                ..ScaleByAdam::default()
            },
            initial_accumulator_value: 1e-6,
        }
    }
}

builders!(ScaleByYogi {
    /// Sets the value `m` and `v` start from (default 1e-6), `> 0`.
    initial_accumulator_value: f64,
});

impl ScaleByYogi {
    /// Sets β₁ and β₂, each in `[0, 1)`.
    #[must_use]
    pub fn betas(self, betas: [f64; 2]) -> Self {
        Self {
            adam: self.adam.betas(betas),
            ..self
        }
    }

    /// Sets ε, added to the root (default 1e-3).
    #[must_use]
    pub fn eps(self, eps: f64) -> Self {
        Self {
            adam: self.adam.eps(eps),
            ..self
        }
    }

    /// Sets ε_root, added under the root (default 0).
    #[must_use]
    pub fn eps_root(self, eps_root: f64) -> Self {
        Self {
            adam: self.adam.eps_root(eps_root),
            ..self
        }
    }
}

/// The per-step scalars of [`ScaleByYogi`]: Adam's, and the moments' first value on the first
/// step.
#[derive(Clone, Copy, Debug)]
pub struct YogiScalars<F> {
    adam: AdamScalars<F>,
    first: Option<F>,
}

impl<F: Scalar> Transform<F> for ScaleByYogi {
    type State = [F; 2];
    type Scalars = YogiScalars<F>;

    hyperparameters!(Momentum => (adam.betas[0]), Beta2 => (adam.betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu", "nu"]
    }

    fn validate(&self) -> Result<(), Error> {
        Transform::<F>::validate(&self.adam)?;
        check::positive("initial_accumulator_value", self.initial_accumulator_value)
    }

    fn scalars(&self, ctx: &Context<'_>) -> YogiScalars<F> {
        YogiScalars {
            adam: self.adam.scalars(ctx),
            first: (ctx.t == 1).then(|| cast(self.initial_accumulator_value)),
        }
    }

    #[inline(always)]
    fn apply(s: &YogiScalars<F>, _: F, u: F, [m, v]: &mut [F; 2]) -> F {
        let a = &s.adam;
        if let Some(start) = s.first {
            (*m, *v) = (start, start);
        }
        *m = a.c1 * u + a.b1 * *m;
        let square = u * u;
        *v = *v - a.c2 * sign(*v - square) * square;
        a.direction(*m * a.inv_bc1, *v)
    }
}

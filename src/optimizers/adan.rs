//! Adan: adaptive Nesterov momentum from gradient differences.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast, kahan_add};
use crate::optimizers::adam::debiased;
use crate::parts::{Lerp, bias_correction};
use crate::transform::{self, AddDecayedWeights, Context, ScaleByLearningRate, Transform};
use crate::{Error, Store, chain, check};

/// Adan (Xie et al., 2022, "Adan: Adaptive Nesterov Momentum Algorithm for Faster Optimizing Deep
/// Models"), as `optax.adan` computes it:
///
/// ```text
/// d = g − g_prev  (0 on the key's first step)
/// m ← (1 − β₁)·g + β₁·m;   v ← (1 − β₂)·d + β₂·v;   n ← (1 − β₃)·(g + (1 − β₂)·d)² + β₃·n
/// u = (m/(1 − β₁ᵗ) + (1 − β₂)·v/(1 − β₂ᵗ)) / (√(n/(1 − β₃ᵗ) + ε_root) + ε)
/// p ← p − lr·(u + λ·p)
/// ```
///
/// optax's weight decay is added to the update (its `add_decayed_weights`), not divided out as in
/// the paper's proximal form. Defaults (optax's): learning rate 0.01 (optax requires one; ours is a
/// common starting point), betas (0.98, 0.92, 0.99), ε = 1e-8, ε_root = 1e-8, weight decay 0.
/// State, with optax's names: `m`, `v`, `n` and `g` (the previous gradient). Like optax's, it is a
/// chain: [`ScaleByAdan`], [`AddDecayedWeights`](crate::transform::AddDecayedWeights),
/// [`ScaleByLearningRate`](crate::transform::ScaleByLearningRate).
///
/// [`Adan::optimi`] is torch-optimi's `Adan`: the same moments with optimi's debiased betas
/// (`β̂ = (βᵗ − β)/(βᵗ − 1)`, so no other bias correction) and the paper's weight decay, divided
/// out after the step:
///
/// ```text
/// d = g − g_prev;  m ← lerp(m, g, 1 − β̂₁);  v ← lerp(v, d, 1 − β̂₂);  n ← β̂₃·n + (1 − β̂₃)·(g + β₂·d)²
/// p ← p − lr·m/(√n + ε);  p ← p − lr·β₂·v/(√n + ε);  p ← p / (1 + lr·λ)
/// ```
///
/// each operation rounded as PyTorch rounds it on low-precision parameters, and with Kahan
/// summation ([`Rounding::Kahan`](crate::Rounding::Kahan)) both updates go through the
/// compensation as in optimi. Options: [`adam_wd`](Adan::adam_wd) (the decay `p ← p·(1 − lr·λ)`
/// before the step instead) and [`fully_decoupled_weight_decay`](Adan::fully_decoupled_weight_decay).
/// State, with optimi's names: `exp_avg`, `exp_avg_diff`, `exp_avg_sq`, `prev_grad` (the
/// previous gradient, negated, as optimi keeps it).
pub type Adan<F = f32> = Engine<AdanRule, F>;

/// The rule of [`Adan`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdanRule {
    b1: f64,
    b2: f64,
    b3: f64,
    eps: f64,
    eps_root: f64,
    weight_decay: f64,
    /// torch-optimi's arithmetic ([`Adan::optimi`]).
    #[cfg_attr(feature = "serde", serde(default))]
    optimi: bool,
    /// torch-optimi's `adam_wd`.
    #[cfg_attr(feature = "serde", serde(default))]
    adam_wd: bool,
    /// torch-optimi's `max_lr` of fully decoupled weight decay.
    #[cfg_attr(feature = "serde", serde(default))]
    max_lr: Option<f64>,
}

impl Default for AdanRule {
    fn default() -> Self {
        Self {
            b1: 0.98,
            b2: 0.92,
            b3: 0.99,
            eps: 1e-8,
            eps_root: 1e-8,
            weight_decay: 0.0,
            optimi: false,
            adam_wd: false,
            max_lr: None,
        }
    }
}

impl<F: Scalar> Adan<F> {
    /// torch-optimi's `Adan` (`optimi.Adan`) with its defaults: betas (0.98, 0.92, 0.99),
    /// ε = 1e-6 (no ε_root), weight decay 0.02 divided out after the step. optimi requires a
    /// learning rate; the default here stays 0.01. Its `kahan_sum` (off by default in optimi's
    /// Adan) is the engine's [`Rounding::Kahan`](crate::Rounding::Kahan) on a
    /// [`Mixed`](crate::Mixed) layout.
    pub fn optimi() -> Self {
        Self::new(AdanRule {
            eps: 1e-6,
            eps_root: 0.0,
            weight_decay: 0.02,
            optimi: true,
            ..AdanRule::default()
        })
    }

    /// torch-optimi's `adam_wd` ([`Adan::optimi`] only): the decay `p ← p·(1 − lr·λ)` before the
    /// step, as AdamW decays, instead of dividing by `1 + lr·λ` after it (default `false`).
    /// optimi 0.3.3's `Adan` class does not pass this flag on to its step, so there it has no
    /// effect; this is the flag as optimi's functional `adan` applies it.
    #[must_use]
    pub fn adam_wd(self, adam_wd: bool) -> Self {
        self.with(|r| r.adam_wd = adam_wd)
    }

    /// torch-optimi's `decouple_lr` ([`Adan::optimi`] only): the decay follows the learning
    /// rate's schedule relative to its peak `max_lr` (`lr/max_lr·λ` in place of `lr·λ`). `None`
    /// (the default) returns to `lr·λ`.
    #[must_use]
    pub fn fully_decoupled_weight_decay(self, max_lr: Option<f64>) -> Self {
        self.with(|r| r.max_lr = max_lr)
    }
}

setters!(Adan {
    /// Sets β₁, the decay of the gradients' average, in `[0, 1)` (default 0.98).
    b1: f64,
    /// Sets β₂, the decay of the gradient differences' average, in `[0, 1)` (default 0.92).
    b2: f64,
    /// Sets β₃, the decay of the squared term's average, in `[0, 1)` (default 0.99).
    b3: f64,
    /// Sets ε, added to the root (default 1e-8).
    eps: f64,
    /// Sets ε_root, added under the root (default 1e-8).
    eps_root: f64,
    /// Sets the weight decay λ, `>= 0`: added to the update (default 0), or for [`Adan::optimi`]
    /// divided out after it (default 0.02).
    weight_decay: f64,
});

impl<F: Scalar> Rule<F> for AdanRule {
    type KeyScalars = ();
    const NAME: &'static str = "Adan";
    const DEFAULT_LR: f64 = 0.01;

    hyperparameters!(Momentum => (b1), Beta2 => (b2), WeightDecay => (weight_decay));

    fn validate(&self) -> Result<(), Error> {
        Transform::<F>::validate(&self.scale())?;
        check::non_negative("weight_decay value", self.weight_decay)?;
        if let Some(max_lr) = self.max_lr
            && !(max_lr > 0.0 && max_lr.is_finite())
        {
            return check::fail("maximum learning rate", max_lr, "a finite number > 0");
        }
        match (self.optimi, self.eps_root == 0.0, self.adam_wd || self.max_lr.is_some()) {
            (true, false, _) => Err(Error::IncompatibleOptions {
                reason: "torch-optimi's Adan has no eps_root",
            }),
            (false, _, true) => Err(Error::IncompatibleOptions {
                reason: "adam_wd and fully decoupled weight decay are torch-optimi's Adan options (Adan::optimi)",
            }),
            _ => Ok(()),
        }
    }

    fn slot_names(&self) -> Vec<&'static str> {
        if self.optimi {
            vec!["exp_avg", "exp_avg_diff", "exp_avg_sq", "prev_grad"]
        } else {
            vec!["m", "v", "n", "g"]
        }
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        if self.optimi {
            return self.optimi(step);
        }
        let decay = AddDecayedWeights::new(self.weight_decay);
        transform::run(&chain!(self.scale(), decay, ScaleByLearningRate), step);
    }
}

/// optax's `scale_by_adan`, Adan's direction ([`Adan`] without weight decay and learning rate):
/// `u ← (m/(1 − β₁ᵗ) + β₂·v/(1 − β₂ᵗ)) / (√(n/(1 − β₃ᵗ) + ε_root) + ε)`. State: `m`, `v`, `n`,
/// `g` (the previous gradient).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByAdan {
    betas: [f64; 3],
    eps: f64,
    eps_root: f64,
}

/// optax's defaults: betas (0.98, 0.92, 0.99), ε 1e-8, ε_root 1e-8.
impl Default for ScaleByAdan {
    fn default() -> Self {
        Self {
            betas: [0.98, 0.92, 0.99],
            eps: 1e-8,
            eps_root: 1e-8,
        }
    }
}

builders!(ScaleByAdan {
    /// Sets β₁, β₂ and β₃, each in `[0, 1)`.
    betas: [f64; 3],
    /// Sets ε, added to the root (default 1e-8).
    eps: f64,
    /// Sets ε_root, added under the root (default 1e-8).
    eps_root: f64,
});

impl<F: Scalar> Transform<F> for ScaleByAdan {
    type State = [F; 4];
    /// b1, b2, b3, c1, c2, c3, bc1, bc2, bc3, ε, ε_root; whether this is the key's first step.
    type Scalars = ([F; 11], bool);

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["m", "v", "n", "g"]
    }

    fn validate(&self) -> Result<(), Error> {
        let [b1, b2, b3] = self.betas;
        check::unit_interval("b1 value", b1)?;
        check::unit_interval("b2 value", b2)?;
        check::unit_interval("b3 value", b3)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("eps_root value", self.eps_root)
    }

    fn scalars(&self, ctx: &Context<'_>) -> Self::Scalars {
        let ([b1, b2, b3], t) = (self.betas, ctx.t);
        let bc = |b| bias_correction(b, t);
        let (eps, eps_root) = (self.eps, self.eps_root);
        let all = [b1, b2, b3, 1.0 - b1, 1.0 - b2, 1.0 - b3, bc(b1), bc(b2), bc(b3), eps, eps_root];
        (all.map(cast), t == 1)
    }

    #[inline(always)]
    fn apply(&(s, first): &Self::Scalars, _: F, g: F, [m, v, n, prev]: &mut [F; 4]) -> F {
        let [b1, b2, b3, c1, c2, c3, bc1, bc2, bc3, eps, eps_root] = s;
        let d = if first { F::zero() } else { g - *prev };
        *m = c1 * g + b1 * *m;
        *v = c2 * d + b2 * *v;
        let sq = g + c2 * d;
        *n = c3 * (sq * sq) + b3 * *n;
        *prev = g;
        (*m / bc1 + c2 * (*v / bc2)) / ((*n / bc3 + eps_root).sqrt() + eps)
    }
}

impl AdanRule {
    /// optax's Adan direction, with these betas and epsilons.
    fn scale(&self) -> ScaleByAdan {
        ScaleByAdan {
            betas: [self.b1, self.b2, self.b3],
            eps: self.eps,
            eps_root: self.eps_root,
        }
    }

    /// torch-optimi's Adan step, in its order of operations and roundings.
    fn optimi<F: Scalar, L: Layout<F>>(&self, step: Step<'_, F, L>) {
        let (lr, t) = (step.lr(), step.t());
        let wd = step.weight_decay().unwrap_or(self.weight_decay);
        let decay = self.max_lr.map_or(lr, |max_lr| lr / max_lr) * wd;
        let (keep, divide): (F, F) = match (wd == 0.0, self.adam_wd) {
            (true, _) => (F::one(), F::one()),
            (false, true) => (cast(1.0 - decay), F::one()),
            (false, false) => (F::one(), cast(1.0 + decay)),
        };
        let hat = |beta: f64| debiased(beta, t as f64);
        let (mean, diff) = (Lerp::<F>::new(1.0 - hat(self.b1)), Lerp::<F>::new(1.0 - hat(self.b2)));
        let (b2, b3, c3): (F, F, F) = (cast(self.b2), cast(hat(self.b3)), cast(1.0 - hat(self.b3)));
        let (neg_lr, neg_lr_b2): (F, F) = (cast(-lr), cast(-lr * self.b2));
        let (rp, rs) = (L::Param::rounded, L::State::rounded);
        let eps = rs(cast(self.eps));
        let (first, compensated) = (t == 1, step.compensated());
        step.for_each_compensated(
            #[inline(always)]
            move |p, g, [m, v, n, prev]: &mut [F; 4], comp| {
                // optimi starts the previous gradient (kept negated) at the first gradient.
                if first {
                    *prev = -g;
                }
                let d = rs(*prev + g);
                *m = rs(mean.apply_fused(*m, g));
                *v = rs(diff.apply_fused(*v, d));
                let s = rs(rs(d * b2) + g);
                *n = rs(rs(*n * b3) + c3 * s * s);
                *prev = -g;
                let den = rs(rs(n.sqrt()) + eps);
                *p = rp(*p * keep);
                let (u1, u2) = (neg_lr * *m / den, neg_lr_b2 * *v / den);
                if compensated {
                    let (new, c) = kahan_add::<F, L::Param>(*p, rp(*comp + u1), u2);
                    (*p, *comp) = (rp(new / divide), c);
                    return F::zero();
                }
                *p = rp(*p + u1);
                if divide == F::one() {
                    return u2;
                }
                // The last operation is the division: its result as the update, which is exact
                // (Sterbenz) while 1 + lr·λ <= 2.
                *p = rp(*p + u2);
                *p / divide - *p
            },
        );
    }
}

//! Lion: the sign of an interpolated momentum.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::transform::{Context, Transform};
use crate::parts::{GradientOptions, Lerp, add_alpha, sign};
use crate::{Error, Store, check};

/// Lion (Chen et al., 2023, "Symbolic Discovery of Optimization Algorithms", Program 1): every
/// element moves by exactly the learning rate, in the direction of the sign of an interpolation
/// between the momentum and the gradient.
///
/// ```text
/// g ← −g if maximize
/// c = β₁·m + (1 − β₁)·g
/// p ← p·(1 − lr·λ) − lr·sign(c)      (decoupled weight decay)
/// m ← β₂·m + (1 − β₂)·g
/// ```
///
/// References: the paper's program; optax's `lion` (the same update). No PyTorch class exists.
/// Defaults: learning rate 1e-4, betas (0.9, 0.99), weight decay 0 (the paper's defaults; optax
/// defaults the weight decay to 1e-3). The paper suggests a learning rate 3-10x smaller than
/// AdamW's and a weight decay 3-10x larger. State: `exp_avg` (m).
///
/// [`Lion::optimi`] is torch-optimi's `Lion`: the same update with both interpolations as
/// PyTorch's `lerp` (`c = lerp(m, g, 1 − β₁)`, `m ← lerp(m, g, 1 − β₂)`), each operation
/// rounded as PyTorch rounds it on low-precision parameters.
pub type Lion<F = f32> = Engine<LionRule, F>;

/// The rule of [`Lion`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct LionRule {
    betas: [f64; 2],
    /// torch-optimi's arithmetic ([`Lion::optimi`]).
    #[cfg_attr(feature = "serde", serde(default))]
    optimi: bool,
    options: GradientOptions,
}

impl Default for LionRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.99],
            optimi: false,
            options: GradientOptions::decoupled(),
        }
    }
}

impl<F: Scalar> Lion<F> {
    /// torch-optimi's `Lion` (`optimi.Lion`), with the paper's defaults as optimi has them:
    /// learning rate 1e-4, betas (0.9, 0.99), weight decay 0 (decoupled, or fully decoupled).
    pub fn optimi() -> Self {
        Self::default().with(|r| r.optimi = true)
    }
}

shares!(LionRule: options, fully_decoupled, betas);

impl<F: Scalar> Rule<F> for LionRule {
    type KeyScalars = ();
    const NAME: &'static str = "Lion";
    const DEFAULT_LR: f64 = 1e-4;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (options.weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["exp_avg"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        if self.optimi {
            return self.optimi_step(step);
        }
        let lion = ScaleByLion { betas: self.betas };
        let (lr, s): (F, _) = (cast(step.lr()), lion.scalars(&Context::of(&step)));
        self.options.for_each(step, move |p, g, m: &mut [F; 1]| {
            *p = *p - lr * ScaleByLion::apply(&s, *p, g, m);
        });
    }
}

/// optax's `scale_by_lion`, Lion's direction: `u ← sign(β₁·m + (1 − β₁)·u)`, then
/// `m ← β₂·m + (1 − β₂)·u`. optax's `lion` is `chain!(ScaleByLion, AddDecayedWeights,
/// ScaleByLearningRate)`, the paper's program. Defaults (optax's): betas (0.9, 0.99). State:
/// `mu`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByLion {
    betas: [f64; 2],
}

impl Default for ScaleByLion {
    fn default() -> Self {
        Self { betas: [0.9, 0.99] }
    }
}

builders!(ScaleByLion {
    /// Sets β₁ (the interpolation) and β₂ (the momentum), each in `[0, 1)`.
    betas: [f64; 2],
});

impl<F: Scalar> Transform<F> for ScaleByLion {
    type State = [F; 1];
    /// β₁, 1 − β₁, β₂, 1 − β₂.
    type Scalars = [F; 4];

    hyperparameters!(Momentum => (betas[0]), Beta2 => (betas[1]));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)
    }

    fn scalars(&self, _: &Context<'_>) -> [F; 4] {
        let [b1, b2] = self.betas;
        [cast(b1), cast(1.0 - b1), cast(b2), cast(1.0 - b2)]
    }

    #[inline(always)]
    fn apply(&[b1, c1, b2, c2]: &[F; 4], _: F, u: F, [m]: &mut [F; 1]) -> F {
        let direction = sign(b1 * *m + c1 * u);
        *m = b2 * *m + c2 * u;
        direction
    }
}

impl LionRule {
    /// torch-optimi's step: each operation rounded to the type it writes, the update returned
    /// for the engine's rounding to add.
    fn optimi_step<F: Scalar, L: Layout<F>>(&self, step: Step<'_, F, L>) {
        let (lr, wd) = (step.lr(), step.weight_decay());
        let keep: F = self.options.keep(lr, wd);
        let [beta1, beta2] = self.betas;
        let (interpolate, average) = (Lerp::<F>::new(1.0 - beta1), Lerp::<F>::new(1.0 - beta2));
        let (neg_lr, sign_g): (F, F) = (cast(-lr), self.options.sign());
        let (rp, rs) = (L::Param::rounded, L::State::rounded);
        step.for_each_update(move |p, g, [m]: &mut [F; 1]| {
            *p = rp(*p * keep);
            let g = g * sign_g;
            let u = sign(rs(interpolate.apply_fused(*m, g)));
            *m = rs(average.apply_fused(*m, g));
            add_alpha::<F, L>(F::zero(), neg_lr, u)
        });
    }
}

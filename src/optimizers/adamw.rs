//! AdamW: Adam with decoupled weight decay.

use crate::engine::{Engine, Layout, Rule, Scalar, Step};
use crate::parts::{
    GradientOptions, HasBetas, HasDecoupledWeightDecay, HasFullyDecoupledWeightDecay,
    HasGradientOptions,
};
use crate::{AdamRule, Error, Hyperparameter};

/// AdamW (Loshchilov & Hutter, 2019): [`Adam`](crate::Adam) in PyTorch's convention with weight
/// decay decoupled from the gradient, `p ← p·(1 − lr·λ)` before the Adam step.
///
/// Reference: `torch.optim.AdamW`. Defaults: learning rate 0.001, betas (0.9, 0.999), ε = 1e-8,
/// weight decay 0.01, amsgrad off. State as Adam's. Every option of Adam applies.
pub type AdamW<F = f32> = Engine<AdamWRule, F>;

/// The rule of [`AdamW`]: Adam's, with other defaults.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdamWRule(AdamRule);

impl Default for AdamWRule {
    fn default() -> Self {
        let mut adam = AdamRule::pytorch();
        *adam.gradient_options() = GradientOptions {
            weight_decay: 0.01,
            decoupled: true,
            ..GradientOptions::default()
        };
        Self(adam)
    }
}

impl<F: Scalar> AdamW<F> {
    /// torch-optimi's `AdamW` (`optimi.AdamW`): [`AdamConvention::Optimi`](crate::AdamConvention::Optimi)
    /// with its defaults, learning rate 0.001, betas (0.9, 0.99), ε = 1e-6, weight decay 0.01
    /// (decoupled, `p ← p·(1 − lr·λ)`). Its `kahan_sum` is the engine's
    /// [`Rounding::Kahan`](crate::Rounding::Kahan) on a [`Mixed`](crate::Mixed) layout.
    pub fn optimi() -> Self {
        Self::default()
            .convention(crate::AdamConvention::Optimi)
            .betas(0.9, 0.99)
            .eps(1e-6)
    }
}

impl AsMut<AdamRule> for AdamWRule {
    fn as_mut(&mut self) -> &mut AdamRule {
        &mut self.0
    }
}

impl HasGradientOptions for AdamWRule {
    fn gradient_options(&mut self) -> &mut GradientOptions {
        self.0.gradient_options()
    }
}

impl HasDecoupledWeightDecay for AdamWRule {}

impl HasFullyDecoupledWeightDecay for AdamWRule {}

impl HasBetas for AdamWRule {
    fn betas(&mut self) -> &mut [f64; 2] {
        self.0.betas()
    }
}

impl<F: Scalar> Rule<F> for AdamWRule {
    type KeyScalars = ();
    const NAME: &'static str = "AdamW";
    const DEFAULT_LR: f64 = 0.001;

    fn name(&self) -> &'static str {
        <AdamRule as Rule<F>>::name(&self.0)
    }

    fn validate(&self) -> Result<(), Error> {
        <AdamRule as Rule<F>>::validate(&self.0)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        <AdamRule as Rule<F>>::slot_names(&self.0)
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, scalars: &mut ()) {
        self.0.step(step, scalars)
    }

    fn hyperparameter(&self, h: Hyperparameter) -> Option<f64> {
        <AdamRule as Rule<F>>::hyperparameter(&self.0, h)
    }

    fn set_hyperparameter(&mut self, h: Hyperparameter, value: f64) {
        <AdamRule as Rule<F>>::set_hyperparameter(&mut self.0, h, value);
    }
}

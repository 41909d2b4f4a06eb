//! AdaGrad: the book's, with PyTorch's options.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::GradientOptions;
use crate::{Error, check};

/// AdaGrad, `h ← h + g²`, `p ← p − lr·g / (√h + ε)`: the book's `AdaGrad`, with PyTorch's
/// options.
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (weight decay)
/// lrₜ = lr / (1 + (t − 1)·lr_decay)
/// h ← h + g²                       (h starts at initial_accumulator_value)
/// p ← p − lrₜ·g / (√h + ε)
/// ```
///
/// References: *Deep Learning from Scratch*, `common/optimizer.py`, class `AdaGrad` (Duchi et al.,
/// 2011), whose defaults [`AdaGrad::default`] has: learning rate 0.01, ε = 1e-7;
/// `torch.optim.Adagrad`, the same update with options (lr_decay, initial_accumulator_value,
/// weight decay, maximize, all off by default) and ε = 1e-10 ([`AdaGrad::pytorch`]). State: the sum
/// of squared gradients, slot `"sum"`.
pub type AdaGrad<F = f32> = Engine<AdaGradRule, F>;

/// The rule of [`AdaGrad`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdaGradRule {
    eps: f64,
    lr_decay: f64,
    initial_accumulator_value: f64,
    options: GradientOptions,
}

impl Default for AdaGradRule {
    fn default() -> Self {
        Self {
            eps: 1e-7,
            lr_decay: 0.0,
            initial_accumulator_value: 0.0,
            options: GradientOptions::default(),
        }
    }
}

shares!(AdaGradRule: options);

setters!(AdaGrad {
    /// Sets ε, added to `√h` to avoid division by zero (default 1e-7, PyTorch's 1e-10).
    eps: f64,
    /// Sets the learning-rate decay, `>= 0` (default 0).
    lr_decay: f64,
    /// Sets the value the sum of squares starts from, `>= 0` (default 0).
    initial_accumulator_value: f64,
});

impl<F: Scalar> AdaGrad<F> {
    /// `torch.optim.Adagrad`'s defaults: learning rate 0.01, ε = 1e-10.
    pub fn pytorch() -> Self {
        Self::default().eps(1e-10)
    }
}

impl<F: Scalar> Rule<F> for AdaGradRule {
    type KeyScalars = ();
    const NAME: &'static str = "AdaGrad";
    const DEFAULT_LR: f64 = 0.01;

    hyperparameters!(WeightDecay => (options.weight_decay));

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lr_decay value", self.lr_decay)?;
        check::non_negative("initial_accumulator_value value", self.initial_accumulator_value)?;
        check::non_negative("epsilon value", self.eps)?;
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["sum"]
    }

    fn initial_value(&self, _slot: &str, _lr: f64) -> f64 {
        self.initial_accumulator_value
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let clr = step.lr() / (1.0 + (step.t() - 1) as f64 * self.lr_decay);
        let (clr, eps): (F, F) = (cast(clr), cast(self.eps));
        self.options.for_each(step, move |p, g, [h]: &mut [F; 1]| {
            *h = *h + g * g;
            *p = *p - clr * g / (h.sqrt() + eps);
        });
    }
}

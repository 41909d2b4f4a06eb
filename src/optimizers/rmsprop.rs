//! RMSprop: the book's, with PyTorch's options.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, Lerp, add_scaled};
use crate::{Error, check};

/// RMSprop, `h ← ρ·h + (1 − ρ)·g²`, `p ← p − lr·g / (√h + ε)`: the book's `RMSprop`, with
/// PyTorch's options.
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (weight decay)
/// h ← ρ·h + (1 − ρ)·g²
/// centered:  ḡ ← lerp(ḡ, g, 1 − ρ);  s = √(h − ḡ²) + ε,  else s = √h + ε
/// momentum:  b ← μ·b + g / s;  p ← p − lr·b,  else p ← p − lr·g / s
/// ```
///
/// References: *Deep Learning from Scratch*, `common/optimizer.py`, class `RMSprop` (Hinton's
/// lecture 6e), whose defaults [`RmsProp::default`] has: learning rate 0.01, decay rate ρ = 0.99,
/// ε = 1e-7; `torch.optim.RMSprop`, where ρ is `alpha`, with options (momentum, centered, weight
/// decay, maximize, all off by default) and ε = 1e-8 ([`RmsProp::pytorch`]). State:
/// `square_avg`, plus `momentum_buffer` with momentum and `grad_avg` when centered.
///
/// The decay rate must lie in `[0, 1)` (PyTorch only asks `alpha >= 0`).
pub type RmsProp<F = f32> = Engine<RmsPropRule, F>;

/// The rule of [`RmsProp`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RmsPropRule {
    decay_rate: f64,
    eps: f64,
    momentum: f64,
    centered: bool,
    options: GradientOptions,
}

impl Default for RmsPropRule {
    fn default() -> Self {
        Self {
            decay_rate: 0.99,
            eps: 1e-7,
            momentum: 0.0,
            centered: false,
            options: GradientOptions::default(),
        }
    }
}

shares!(RmsPropRule: options);

setters!(RmsProp {
    /// Sets the decay rate ρ of the moving average, in `[0, 1)` (default 0.99).
    decay_rate: f64,
    /// Sets ε, added to the root mean square (default 1e-7, PyTorch's 1e-8).
    eps: f64,
    /// Sets the momentum `μ >= 0` (default 0: none).
    momentum: f64,
});

impl<F: Scalar> RmsProp<F> {
    /// `torch.optim.RMSprop`'s defaults: learning rate 0.01, α = 0.99, ε = 1e-8.
    pub fn pytorch() -> Self {
        Self::default().eps(1e-8)
    }


    /// PyTorch's name for [`RmsProp::decay_rate`].
    #[must_use]
    pub fn alpha(self, alpha: f64) -> Self {
        self.decay_rate(alpha)
    }



    /// Normalizes by the variance of the gradient instead of its second moment (default `false`).
    #[must_use]
    pub fn centered(self, centered: bool) -> Self {
        self.with(|r| r.centered = centered)
    }
}

impl<F: Scalar> Rule<F> for RmsPropRule {
    type KeyScalars = ();
    const NAME: &'static str = "RMSprop";
    const DEFAULT_LR: f64 = 0.01;

    hyperparameters!(Momentum => (momentum), WeightDecay => (options.weight_decay));

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("alpha value", self.decay_rate)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("momentum value", self.momentum)?;
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => vec!["square_avg"],
            (true, false) => vec!["square_avg", "momentum_buffer"],
            (false, true) => vec!["square_avg", "grad_avg"],
            (true, true) => vec!["square_avg", "momentum_buffer", "grad_avg"],
        }
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let rho = self.decay_rate;
        let (lr, rho_f, fresh, eps): (F, F, F, F) =
            (cast(step.lr()), cast(rho), cast(1.0 - rho), cast(self.eps));
        let (mu, mean): (F, Lerp<F>) = (cast(self.momentum), Lerp::new(1.0 - rho));
        let square = move |h: &mut F, g: F| *h = *h * rho_f + fresh * g * g;
        let centered = move |h: F, ga: &mut F, g: F| {
            *ga = mean.apply(*ga, g);
            (h - *ga * *ga).sqrt() + eps
        };
        let with_momentum = move |p: &mut F, b: &mut F, g: F, s: F| {
            *b = *b * mu + g / s;
            *p = add_scaled(*p, -lr, *b);
        };
        match (self.momentum > 0.0, self.centered) {
            (false, false) => self.options.for_each(step, move |p, g, [h]: &mut [F; 1]| {
                square(h, g);
                *p = *p - lr * g / (h.sqrt() + eps);
            }),
            (true, false) => self.options.for_each(step, move |p, g, [h, b]: &mut [F; 2]| {
                square(h, g);
                with_momentum(p, b, g, h.sqrt() + eps);
            }),
            (false, true) => self.options.for_each(step, move |p, g, [h, ga]: &mut [F; 2]| {
                square(h, g);
                *p = *p - lr * g / centered(*h, ga, g);
            }),
            (true, true) => self.options.for_each(step, move |p, g, [h, b, ga]: &mut [F; 3]| {
                square(h, g);
                with_momentum(p, b, g, centered(*h, ga, g));
            }),
        }
    }
}

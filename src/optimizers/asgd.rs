//! ASGD: averaged stochastic gradient descent.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, add_scaled, scalar_state};
use crate::{Error, check};

/// Averaged SGD (Polyak & Juditsky, 1992), as `torch.optim.ASGD` computes it: SGD with a
/// decaying step size ηₜ, and a running average of the iterates kept beside it.
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (weight decay)
/// p ← p·(1 − λd·η);  p ← p − η·g
/// ax ← ax + μ·(p − ax)   (ax ← p while μ = 1)
/// then for the next step:  η ← lr / (1 + λd·lr·t)^α,  μ ← 1 / max(1, t − t₀)
/// ```
///
/// η starts at the learning rate and μ at 1. Defaults: learning rate 0.01, λd (`lambd`) = 1e-4,
/// α = 0.75, t₀ = 1e6, weight decay 0. State: the average `ax`, and (η, μ) per key, rounded to
/// `f32` as PyTorch keeps its `eta` and `mu` (scalar tensors of its default dtype). The average does not feed back into the parameters; read it with
/// [`Engine::slot`].
pub type Asgd<F = f32> = Engine<AsgdRule, F>;

/// The rule of [`Asgd`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AsgdRule {
    lambd: f64,
    alpha: f64,
    t0: f64,
    options: GradientOptions,
}

impl Default for AsgdRule {
    fn default() -> Self {
        Self {
            lambd: 1e-4,
            alpha: 0.75,
            t0: 1e6,
            options: GradientOptions::default(),
        }
    }
}

shares!(AsgdRule: options);

setters!(Asgd {
    /// Sets the decay term λd, `>= 0` (default 1e-4).
    lambd: f64,
    /// Sets the power α of the step-size decay, `>= 0` (default 0.75).
    alpha: f64,
});

impl<F: Scalar> Asgd<F> {
    /// Sets the step t₀ from which averaging starts, `>= 0` (default 1e6).
    #[must_use]
    pub fn t0(self, t0: f64) -> Self {
        self.with(|r| r.t0 = t0)
    }
}

impl<F: Scalar> Rule<F> for AsgdRule {
    /// (η, μ) for the key's next step; `None` before its first (η = lr, μ = 1).
    type KeyScalars = Option<(f64, f64)>;
    const NAME: &'static str = "ASGD";
    const DEFAULT_LR: f64 = 0.01;

    hyperparameters!(WeightDecay => (options.weight_decay));

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("lambd value", self.lambd)?;
        check::non_negative("alpha value", self.alpha)?;
        check::non_negative("t0 value", self.t0)?;
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["ax"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, scalars: &mut Option<(f64, f64)>) {
        let (lr, t) = (step.lr(), step.t() as f64);
        let (eta, mu) = scalars.unwrap_or((scalar_state(lr), 1.0));
        *scalars = Some((
            scalar_state(lr / (1.0 + self.lambd * lr * t).powf(self.alpha)),
            scalar_state(1.0 / (t - self.t0).max(1.0)),
        ));
        let (shrink, eta, mu_f): (F, F, F) = (cast(1.0 - self.lambd * eta), cast(eta), cast(mu));
        let averaging = mu != 1.0;
        self.options.for_each(step, move |p, g, [ax]: &mut [F; 1]| {
            *p = *p * shrink;
            *p = add_scaled(*p, -eta, g);
            *ax = if averaging { *ax + (*p - *ax) * mu_f } else { *p };
        });
    }
}

//! Schedule-Free AdamW, SGD and RAdam: no learning-rate schedule, an average to evaluate.

use ndarray::ArrayRefD;

use super::rectified;
use crate::engine::{Engine, Layout, Mode, Rule, Scalar, Step, cast};
use crate::parts::{Lerp, add_scaled};
use crate::tensor::each_param;
use crate::{Error, check};

/// Schedule-Free AdamW (Defazio et al., 2024, "The Road Less Scheduled"), as `schedulefree`'s
/// `AdamWScheduleFree` computes it (version 1.4.1). With `k` the key's steps so far:
///
/// ```text
/// lr_k = lr·min(1, (k + 1)/warmup_steps);   lr_max = max of lr_k so far
/// w = (k + 1)^r · lr_max^weight_lr_power;   c = w / Σw
/// v ← β₂·v + (1 − β₂)·g²;   ĝ = g / (√(v/(1 − β₂ᵏ⁺¹)) + ε) + λ·y
/// y ← lerp(y, z, c) + lr_k·(β₁·(1 − c) − 1)·ĝ;   z ← z − lr_k·ĝ
/// ```
///
/// While training, the parameters hold `y`, the point where gradients are taken. The point to
/// evaluate is the average `x = y + (1 − 1/β₁)·(z − y)`: [`Optimizer::eval`](crate::Optimizer::eval)
/// moves the parameters there, [`Optimizer::train`](crate::Optimizer::train) moves them back, and
/// `update` in evaluation mode is [`Error::EvalMode`], with nothing changed. Unlike the reference,
/// which must be put in training mode before the first step, a new optimizer starts in training
/// mode (the same thing: before the first step `x = y = z`).
///
/// Defaults (the reference's): learning rate 0.0025, betas (0.9, 0.999), ε = 1e-8, weight decay 0
/// (applied at `y`), no warm-up, r = 0, weight_lr_power = 2. State: `z` (starting at the
/// parameter) and `exp_avg_sq`; per key `weight_sum` and `lr_max` (the reference keeps them per
/// group, the same when every key is updated every step); and the mode, in the rule. All of it is
/// checkpointed.
///
/// ```
/// use std::collections::HashMap;
/// use ndarray::{ArrayD, IxDyn};
/// use ndoptim::{Error, Optimizer, ScheduleFreeAdamW};
///
/// let mut params = HashMap::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[3]), 1.0f32))]);
/// let grads = HashMap::from([("w".to_string(), ArrayD::from_elem(IxDyn(&[3]), 0.5f32))]);
/// let mut opt = ScheduleFreeAdamW::default().warmup_steps(10);
/// for _ in 0..3 {
///     opt.update(&mut params, &grads)?;
/// }
/// opt.eval(&mut params)?; // the parameters now hold x, the point to evaluate
/// assert_eq!(opt.update(&mut params, &grads), Err(Error::EvalMode));
/// opt.train(&mut params)?; // back to y
/// opt.update(&mut params, &grads)?;
/// # Ok::<(), ndoptim::Error>(())
/// ```
pub type ScheduleFreeAdamW<F = f32> = Engine<ScheduleFreeAdamWRule, F>;

/// Schedule-Free SGD, as `schedulefree`'s `SGDScheduleFree` computes it: [`ScheduleFreeAdamW`]
/// with `ĝ = g + λ·y` and the momentum β in place of β₁.
///
/// Defaults (the reference's): learning rate 1.0, momentum 0.9, weight decay 0, no warm-up, r = 0,
/// weight_lr_power = 2. State: `z`; per key `weight_sum` and `lr_max`; the mode.
pub type ScheduleFreeSgd<F = f32> = Engine<ScheduleFreeSgdRule, F>;

/// Schedule-Free RAdam, as `schedulefree`'s `RAdamScheduleFree` computes it: [`ScheduleFreeAdamW`]
/// without warm-up, its learning rate scaled by RAdam's rectification instead,
///
/// ```text
/// ρ∞ = 2/(1 − β₂) − 1;  ρₜ = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
/// lr_k = lr·√((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))   if ρₜ > 4
///        lr·0 (silent SGD phase, the default) or lr·1           otherwise
/// ĝ = g / (√(v/(1 − β₂ᵗ)) + ε) + λ·y  if ρₜ > 4, else g + λ·y
/// ```
///
/// and `y`, `z` and the averaging as [`ScheduleFreeAdamW`]'s. In the silent phase (the first four
/// steps at β₂ 0.999) every weight is 0, and nothing moves but `v`.
///
/// Defaults (the reference's): learning rate 0.0025, betas (0.9, 0.999), ε = 1e-8, weight decay 0,
/// r = 0, weight_lr_power = 2, silent SGD phase. State: `z`, `exp_avg_sq`; per key `weight_sum`
/// and `lr_max`; the mode.
pub type ScheduleFreeRAdam<F = f32> = Engine<ScheduleFreeRAdamRule, F>;

/// What both Schedule-Free variants share: the averaging weights, weight decay and mode.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Averaging {
    warmup_steps: u64,
    r: f64,
    weight_lr_power: f64,
    weight_decay: f64,
    mode: Mode,
}

impl Default for Averaging {
    fn default() -> Self {
        Self {
            warmup_steps: 0,
            r: 0.0,
            weight_lr_power: 2.0,
            weight_decay: 0.0,
            mode: Mode::Train,
        }
    }
}

/// The scalars a key keeps: the sum of averaging weights and the largest learning rate so far.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AveragingScalars {
    /// Σw, the sum of the averaging weights so far.
    pub weight_sum: f64,
    /// The largest scheduled learning rate so far (−1 before the first step, as the reference).
    pub lr_max: f64,
}

impl Default for AveragingScalars {
    fn default() -> Self {
        Self {
            weight_sum: 0.0,
            lr_max: -1.0,
        }
    }
}

impl AveragingScalars {
    /// Adds the averaging weight of step `t` at learning rate `lr`, `w = t^r·lr_max^power`;
    /// returns `c = w/Σw` (0 while every weight is 0).
    pub(crate) fn advance(&mut self, t: u64, lr: f64, r: f64, power: f64) -> f64 {
        self.lr_max = self.lr_max.max(lr);
        let weight = (t as f64).powf(r) * self.lr_max.powf(power);
        self.weight_sum += weight;
        if self.weight_sum == 0.0 { 0.0 } else { weight / self.weight_sum }
    }
}

impl Averaging {
    fn validate(&self) -> Result<(), Error> {
        check::non_negative("weight_decay value", self.weight_decay)?;
        check::finite("r value", self.r)?;
        check::finite("weight_lr_power value", self.weight_lr_power)
    }

    /// The warm-up's factor of the learning rate at the key's step `t`.
    fn warmup(&self, t: u64) -> f64 {
        if t - 1 < self.warmup_steps { t as f64 / self.warmup_steps as f64 } else { 1.0 }
    }

    /// One step of `y` and `z` (slot 0) at the learning rate times `factor`, with
    /// `normalise(g, slots)` giving ĝ before weight decay, `beta` being β₁ or the momentum.
    fn step<F: Scalar, L: Layout<F>, const N: usize>(
        &self,
        beta: f64,
        factor: f64,
        step: Step<'_, F, L>,
        scalars: &mut AveragingScalars,
        normalise: impl Fn(F, &mut [F; N]) -> F + Copy + Sync,
    ) {
        let (t, lr) = (step.t(), step.lr() * factor);
        let ckp1 = scalars.advance(t, lr, self.r, self.weight_lr_power);
        let towards_z = Lerp::<F>::new(ckp1);
        let (y_step, z_step): (F, F) = (cast(lr * (beta * (1.0 - ckp1) - 1.0)), cast(-lr));
        let wd = step.weight_decay().unwrap_or(self.weight_decay);
        let (decay, wd): (bool, F) = (wd != 0.0, cast(wd));
        let first = t == 1;
        step.for_each(move |y, g, s: &mut [F; N]| {
            if first {
                s[0] = *y;
            }
            let gh = normalise(g, s);
            let gh = if decay { add_scaled(gh, wd, *y) } else { gh };
            *y = add_scaled(towards_z.apply_fused(*y, s[0]), y_step, gh);
            s[0] = add_scaled(s[0], z_step, gh);
        });
    }

}

/// Moves `params` between `y` and `x` with `z` the first slot of `state` and β the momentum:
/// `p.lerp_(z, 1 − 1/β)` to evaluate, `p.lerp_(z, 1 − β)` to train.
pub(crate) fn switch_mode<F: Scalar>(beta: f64, to: Mode, params: &mut ArrayRefD<F>, state: &[F]) {
    let w = match to {
        Mode::Eval => 1.0 - 1.0 / beta,
        Mode::Train => 1.0 - beta,
    };
    let lerp = Lerp::<F>::new(w);
    each_param(params, |i, p| *p = lerp.apply_fused(*p, state[i]));
}

/// A rule's [`Rule`] methods for the two modes, switching with the momentum `beta`.
macro_rules! modes {
    ($($beta:tt)+) => {
        fn mode(&self) -> Option<Mode> {
            Some(self.averaging.mode)
        }

        fn set_mode(&mut self, mode: Mode) {
            self.averaging.mode = mode;
        }

        fn switch(&self, to: Mode, params: &mut ArrayRefD<F>, state: &[F]) {
            switch_mode(self.$($beta)+, to, params, state);
        }
    };
}

/// The [`Rule`] methods the Adam variants (AdamW, RAdam) share: their hyperparameters, checks and
/// slots.
macro_rules! adam_averaging {
    () => {
        hyperparameters!(
            Momentum => (betas[0]),
            Beta2 => (betas[1]),
            WeightDecay => (averaging.weight_decay),
        );

        fn validate(&self) -> Result<(), Error> {
            check::betas(self.betas)?;
            check::non_negative("epsilon value", self.eps)?;
            self.averaging.validate()
        }

        fn slot_names(&self) -> Vec<&'static str> {
            vec!["z", "exp_avg_sq"]
        }
    };
}

/// The rule of [`ScheduleFreeAdamW`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScheduleFreeAdamWRule {
    betas: [f64; 2],
    eps: f64,
    averaging: Averaging,
}

impl Default for ScheduleFreeAdamWRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            averaging: Averaging::default(),
        }
    }
}

/// The rule of [`ScheduleFreeRAdam`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScheduleFreeRAdamRule {
    betas: [f64; 2],
    eps: f64,
    silent_sgd_phase: bool,
    averaging: Averaging,
}

impl Default for ScheduleFreeRAdamRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            silent_sgd_phase: true,
            averaging: Averaging::default(),
        }
    }
}

/// The rule of [`ScheduleFreeSgd`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScheduleFreeSgdRule {
    momentum: f64,
    averaging: Averaging,
}

impl Default for ScheduleFreeSgdRule {
    fn default() -> Self {
        Self {
            momentum: 0.9,
            averaging: Averaging::default(),
        }
    }
}

shares!(ScheduleFreeAdamWRule: betas);
shares!(ScheduleFreeRAdamRule: betas);

setters!(ScheduleFreeAdamW {
    /// Sets ε, added to the bias-corrected root (default 1e-8).
    eps: f64,
});

setters!(ScheduleFreeRAdam {
    /// Sets ε, added to the bias-corrected root (default 1e-8).
    eps: f64,
    /// Whether the steps before the rectification starts (`ρₜ ≤ 4`) are silent, at learning
    /// rate 0 (the default), or plain SGD steps.
    silent_sgd_phase: bool,
});

setters!(ScheduleFreeSgd {
    /// Sets the momentum β, in `(0, 1)` (default 0.9).
    momentum: f64,
});

/// The options both Schedule-Free variants share, as builder methods of `$alias`.
macro_rules! averaging_options {
    ($($alias:ident),*) => {$(
        impl<F: Scalar> $alias<F> {
            /// Sets r, the power of the step number in the averaging weights (default 0).
            #[must_use]
            pub fn r(self, r: f64) -> Self {
                self.with(|rule| rule.averaging.r = r)
            }

            /// Sets the power of the largest learning rate in the averaging weights (default 2).
            #[must_use]
            pub fn weight_lr_power(self, weight_lr_power: f64) -> Self {
                self.with(|r| r.averaging.weight_lr_power = weight_lr_power)
            }

            /// Sets the weight decay λ, applied at `y`, `>= 0` (default 0).
            #[must_use]
            pub fn weight_decay(self, weight_decay: f64) -> Self {
                self.with(|r| r.averaging.weight_decay = weight_decay)
            }
        }
    )*};
}

averaging_options!(ScheduleFreeAdamW, ScheduleFreeSgd, ScheduleFreeRAdam);

/// The warm-up of the variants that have one.
macro_rules! warmup {
    ($($alias:ident),*) => {$(
        impl<F: Scalar> $alias<F> {
            /// Sets the number of linear warm-up steps of the learning rate (default 0).
            #[must_use]
            pub fn warmup_steps(self, warmup_steps: u64) -> Self {
                self.with(|r| r.averaging.warmup_steps = warmup_steps)
            }
        }
    )*};
}

warmup!(ScheduleFreeAdamW, ScheduleFreeSgd);

/// Adam's second moment `v` and the gradient it normalises, `g/(√(v/(1 − β₂ᵗ)) + ε)`.
fn adam_normalise<F: Scalar>(beta2: f64, eps: f64, t: u64) -> impl Fn(F, &mut F) -> F + Copy + Sync {
    let bc2: F = cast(1.0 - beta2.powf(t as f64));
    let (b2, c2, eps): (F, F, F) = (cast(beta2), cast(1.0 - beta2), cast(eps));
    move |g, v| {
        *v = *v * b2 + c2 * g * g;
        g / ((*v / bc2).sqrt() + eps)
    }
}

impl<F: Scalar> Rule<F> for ScheduleFreeAdamWRule {
    type KeyScalars = AveragingScalars;
    const NAME: &'static str = "AdamWScheduleFree";
    const DEFAULT_LR: f64 = 0.0025;

    adam_averaging!();

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, scalars: &mut AveragingScalars) {
        let [beta1, beta2] = self.betas;
        let (t, normalise) = (step.t(), adam_normalise(beta2, self.eps, step.t()));
        let factor = self.averaging.warmup(t);
        self.averaging.step(beta1, factor, step, scalars, move |g, [_, v]: &mut [F; 2]| {
            normalise(g, v)
        });
    }

    modes!(betas[0]);
}

impl<F: Scalar> Rule<F> for ScheduleFreeSgdRule {
    type KeyScalars = AveragingScalars;
    const NAME: &'static str = "SGDScheduleFree";
    const DEFAULT_LR: f64 = 1.0;

    hyperparameters!(Momentum => (momentum), WeightDecay => (averaging.weight_decay));

    fn validate(&self) -> Result<(), Error> {
        if !(self.momentum > 0.0 && self.momentum < 1.0) {
            check::fail("momentum value", self.momentum, "a number in (0, 1)")?;
        }
        self.averaging.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["z"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, scalars: &mut AveragingScalars) {
        let factor = self.averaging.warmup(step.t());
        self.averaging.step(self.momentum, factor, step, scalars, |g, _: &mut [F; 1]| g);
    }

    modes!(momentum);
}

impl<F: Scalar> Rule<F> for ScheduleFreeRAdamRule {
    type KeyScalars = AveragingScalars;
    const NAME: &'static str = "RAdamScheduleFree";
    const DEFAULT_LR: f64 = 0.0025;

    adam_averaging!();

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, scalars: &mut AveragingScalars) {
        let [beta1, beta2] = self.betas;
        let (t, normalise) = (step.t(), adam_normalise(beta2, self.eps, step.t()));
        let (rho_t, rect) = rectified(beta2, t);
        let adaptive = rho_t > 4.0;
        let factor = match (adaptive, self.silent_sgd_phase) {
            (true, _) => rect,
            (false, true) => 0.0,
            (false, false) => 1.0,
        };
        self.averaging.step(beta1, factor, step, scalars, move |g, [_, v]: &mut [F; 2]| {
            let normalised = normalise(g, v);
            if adaptive { normalised } else { g }
        });
    }

    modes!(betas[0]);
}

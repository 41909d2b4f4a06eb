//! Schedules that are functions of the step: optax's, with its arithmetic, and transformers'
//! warm-up–stable–decay.

use std::f64::consts::PI;

use super::Schedule;
use crate::check;
use crate::error::Error;

/// optax's `constant_schedule`: the same value at every step.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Constant(pub f64);

impl Schedule for Constant {
    fn value(&self, _step: u64) -> f64 {
        self.0
    }
}

/// optax's `polynomial_schedule`: from `init_value` to `end_value` over `transition_steps`,
/// starting `transition_begin` steps in, as `(init − end)·(1 − t/T)^power + end`; `end_value`
/// afterwards. [`linear`] is power 1. With zero transition steps it stays at `init_value`, as
/// optax's does.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Polynomial {
    init_value: f64,
    end_value: f64,
    power: f64,
    transition_steps: u64,
    transition_begin: u64,
}

impl Polynomial {
    /// `polynomial_schedule(init_value, end_value, power, transition_steps)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a value or power that is not finite.
    pub fn new(
        init_value: f64,
        end_value: f64,
        power: f64,
        transition_steps: u64,
    ) -> Result<Self, Error> {
        check::finite("init_value", init_value)?;
        check::finite("end_value", end_value)?;
        check::finite("power", power)?;
        Ok(Self {
            init_value,
            end_value,
            power,
            transition_steps,
            transition_begin: 0,
        })
    }

    /// Starts the transition after `transition_begin` steps (default 0).
    #[must_use]
    pub fn begin(self, transition_begin: u64) -> Self {
        Self {
            transition_begin,
            ..self
        }
    }
}

impl Schedule for Polynomial {
    fn value(&self, step: u64) -> f64 {
        if self.transition_steps == 0 {
            return self.init_value;
        }
        let t = step
            .saturating_sub(self.transition_begin)
            .min(self.transition_steps);
        let frac = 1.0 - t as f64 / self.transition_steps as f64;
        // optax raises to a Python int 1 exactly: keep the linear case free of `powf`'s rounding.
        let scaled = if self.power == 1.0 {
            frac
        } else {
            frac.powf(self.power)
        };
        (self.init_value - self.end_value) * scaled + self.end_value
    }
}

/// optax's `linear_schedule(init_value, end_value, transition_steps)`: [`Polynomial`] of power 1
/// (set its start with [`Polynomial::begin`]).
///
/// # Errors
///
/// [`Error::InvalidHyperparameter`] for a value that is not finite.
pub fn linear(init_value: f64, end_value: f64, transition_steps: u64) -> Result<Polynomial, Error> {
    Polynomial::new(init_value, end_value, 1.0, transition_steps)
}

/// optax's `cosine_decay_schedule`: `init_value·((1 − α)·(½(1 + cos(π·t/T)))^exponent + α)` for
/// `t ≤ T = decay_steps`, then `init_value·α`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CosineDecay {
    init_value: f64,
    decay_steps: u64,
    alpha: f64,
    exponent: f64,
}

impl CosineDecay {
    /// `cosine_decay_schedule(init_value, decay_steps)`, with optax's `alpha` 0 and `exponent`
    /// 1.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for zero `decay_steps` (optax raises) or an
    /// `init_value` that is not finite.
    pub fn new(init_value: f64, decay_steps: u64) -> Result<Self, Error> {
        check::finite("init_value", init_value)?;
        if decay_steps == 0 {
            check::fail("decay_steps", 0.0, "a whole number > 0")?;
        }
        Ok(Self {
            init_value,
            decay_steps,
            alpha: 0.0,
            exponent: 1.0,
        })
    }

    /// The final value as a fraction of `init_value` (default 0).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for an `alpha` that is not finite.
    pub fn alpha(self, alpha: f64) -> Result<Self, Error> {
        check::finite("alpha", alpha)?;
        Ok(Self { alpha, ..self })
    }

    /// The power of the cosine factor (default 1).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for an `exponent` that is not finite.
    pub fn exponent(self, exponent: f64) -> Result<Self, Error> {
        check::finite("exponent", exponent)?;
        Ok(Self { exponent, ..self })
    }
}

impl Schedule for CosineDecay {
    fn value(&self, step: u64) -> f64 {
        let t = step.min(self.decay_steps) as f64;
        let cosine = 0.5 * (1.0 + (PI * t / self.decay_steps as f64).cos());
        let scaled = if self.exponent == 1.0 {
            cosine
        } else {
            cosine.powf(self.exponent)
        };
        self.init_value * ((1.0 - self.alpha) * scaled + self.alpha)
    }
}

/// optax's `exponential_decay`: `init_value·rate^((t − begin)/T)` after `transition_begin`
/// steps (the exponent floored with `staircase`), bounded by `end_value` if given. With zero
/// transition steps or a zero rate it stays at `init_value`, as optax's does.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ExponentialDecay {
    init_value: f64,
    transition_steps: u64,
    decay_rate: f64,
    transition_begin: u64,
    staircase: bool,
    end_value: Option<f64>,
}

impl ExponentialDecay {
    /// `exponential_decay(init_value, transition_steps, decay_rate)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a negative or non-finite `decay_rate` (a fractional
    /// power of a negative rate is not a number) or an `init_value` that is not finite.
    pub fn new(init_value: f64, transition_steps: u64, decay_rate: f64) -> Result<Self, Error> {
        check::finite("init_value", init_value)?;
        check::non_negative("decay_rate", decay_rate)?;
        Ok(Self {
            init_value,
            transition_steps,
            decay_rate,
            transition_begin: 0,
            staircase: false,
            end_value: None,
        })
    }

    /// Starts decaying after `transition_begin` steps (default 0).
    #[must_use]
    pub fn begin(self, transition_begin: u64) -> Self {
        Self {
            transition_begin,
            ..self
        }
    }

    /// Decays in whole transitions, not continuously (default `false`).
    #[must_use]
    pub fn staircase(self, staircase: bool) -> Self {
        Self { staircase, ..self }
    }

    /// Bounds the value: below by `end_value` for a rate under 1, above otherwise.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for an `end_value` that is not finite.
    pub fn end_value(self, end_value: f64) -> Result<Self, Error> {
        check::finite("end_value", end_value)?;
        Ok(Self {
            end_value: Some(end_value),
            ..self
        })
    }
}

impl Schedule for ExponentialDecay {
    fn value(&self, step: u64) -> f64 {
        if self.transition_steps == 0 || self.decay_rate == 0.0 {
            return self.init_value;
        }
        if step <= self.transition_begin {
            return self.bounded(self.init_value);
        }
        let p = (step - self.transition_begin) as f64 / self.transition_steps as f64;
        let p = if self.staircase { p.floor() } else { p };
        self.bounded(self.init_value * self.decay_rate.powf(p))
    }
}

impl ExponentialDecay {
    fn bounded(&self, value: f64) -> f64 {
        match self.end_value {
            Some(end) if self.decay_rate < 1.0 => value.max(end),
            Some(end) => value.min(end),
            None => value,
        }
    }
}

/// A boundary of a piecewise schedule: from step `at` on, the value is multiplied by `scale`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Boundary {
    /// The step the scale applies from.
    pub at: u64,
    /// The factor, `≥ 0`.
    pub scale: f64,
}

/// Sorts boundaries by step and refuses a negative or non-finite scale, as optax does.
fn boundaries(mut list: Vec<Boundary>) -> Result<Vec<Boundary>, Error> {
    for b in &list {
        check::non_negative("boundaries_and_scales", b.scale)?;
    }
    list.sort_by_key(|b| b.at);
    Ok(list)
}

/// optax's `piecewise_constant_schedule`: `init_value`, multiplied by each boundary's scale from
/// its step on.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PiecewiseConstant {
    init_value: f64,
    boundaries: Vec<Boundary>,
}

impl PiecewiseConstant {
    /// `piecewise_constant_schedule(init_value, boundaries_and_scales)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a negative scale or a value that is not finite.
    pub fn new(init_value: f64, boundaries_and_scales: Vec<Boundary>) -> Result<Self, Error> {
        check::finite("init_value", init_value)?;
        Ok(Self {
            init_value,
            boundaries: boundaries(boundaries_and_scales)?,
        })
    }
}

impl Schedule for PiecewiseConstant {
    fn value(&self, step: u64) -> f64 {
        self.boundaries
            .iter()
            .filter(|b| step >= b.at)
            .fold(self.init_value, |v, b| b.scale * v)
    }
}

/// How [`PiecewiseInterpolate`] moves between its values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Interpolation {
    /// `(end − start)·pct + start`.
    Linear,
    /// `end + (start − end)/2·(cos(π·pct) + 1)`.
    Cosine,
}

impl Interpolation {
    fn between(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Interpolation::Linear => (end - start) * pct + start,
            Interpolation::Cosine => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
        }
    }
}

/// optax's `piecewise_interpolate_schedule`: the value at each boundary is the previous one times
/// its scale (the first is `init_value` at step 0), interpolated in between, constant after the
/// last.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct PiecewiseInterpolate {
    interpolation: Interpolation,
    /// Steps 0, then each boundary's.
    bounds: Vec<u64>,
    /// The value at each bound.
    values: Vec<f64>,
}

impl PiecewiseInterpolate {
    /// `piecewise_interpolate_schedule(interpolate_type, init_value, boundaries_and_scales)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a negative scale or a value that is not finite.
    pub fn new(
        interpolation: Interpolation,
        init_value: f64,
        boundaries_and_scales: Vec<Boundary>,
    ) -> Result<Self, Error> {
        check::finite("init_value", init_value)?;
        let list = boundaries(boundaries_and_scales)?;
        let bounds = std::iter::once(0)
            .chain(list.iter().map(|b| b.at))
            .collect();
        let values = std::iter::once(init_value)
            .chain(list.iter().scan(init_value, |v, b| {
                *v *= b.scale;
                Some(*v)
            }))
            .collect();
        Ok(Self {
            interpolation,
            bounds,
            values,
        })
    }
}

impl Schedule for PiecewiseInterpolate {
    fn value(&self, step: u64) -> f64 {
        let pieces = self.bounds.windows(2).zip(self.values.windows(2));
        for (b, v) in pieces {
            if b[0] <= step && step < b[1] {
                let pct = (step - b[0]) as f64 / (b[1] - b[0]).max(1) as f64;
                return self.interpolation.between(v[0], v[1], pct);
            }
        }
        // Past the last bound (or between bounds that are out of order: none, they are sorted).
        match (self.bounds.last(), self.values.last()) {
            (Some(&last), Some(&v)) if last <= step => v,
            _ => 0.0,
        }
    }
}

/// optax's `linear_onecycle_schedule`: linear from `peak/div_factor` up to `peak` at
/// `pct_start·T`, down to `peak/div_factor` at `pct_final·T`, then to
/// `peak/(div_factor·final_div_factor)` at `T = transition_steps`.
///
/// # Errors
///
/// [`Error::InvalidHyperparameter`] for zero `transition_steps` (optax raises), factors that are
/// not finite and positive, or a `peak_value` that is not finite.
pub fn linear_onecycle(
    transition_steps: u64,
    peak_value: f64,
    pct_start: f64,
    pct_final: f64,
    div_factor: f64,
    final_div_factor: f64,
) -> Result<PiecewiseInterpolate, Error> {
    onecycle_factors(transition_steps, div_factor, final_div_factor)?;
    let at = |pct: f64| (pct * transition_steps as f64) as u64;
    PiecewiseInterpolate::new(
        Interpolation::Linear,
        peak_value / div_factor,
        vec![
            Boundary {
                at: at(pct_start),
                scale: div_factor,
            },
            Boundary {
                at: at(pct_final),
                scale: 1.0 / div_factor,
            },
            Boundary {
                at: transition_steps,
                scale: 1.0 / final_div_factor,
            },
        ],
    )
}

/// optax's `cosine_onecycle_schedule`: by cosine from `peak/div_factor` up to `peak` at
/// `pct_start·T`, then down to `peak/(div_factor·final_div_factor)` at `T = transition_steps`.
///
/// # Errors
///
/// As [`linear_onecycle`].
pub fn cosine_onecycle(
    transition_steps: u64,
    peak_value: f64,
    pct_start: f64,
    div_factor: f64,
    final_div_factor: f64,
) -> Result<PiecewiseInterpolate, Error> {
    onecycle_factors(transition_steps, div_factor, final_div_factor)?;
    PiecewiseInterpolate::new(
        Interpolation::Cosine,
        peak_value / div_factor,
        vec![
            Boundary {
                at: (pct_start * transition_steps as f64) as u64,
                scale: div_factor,
            },
            Boundary {
                at: transition_steps,
                scale: 1.0 / (div_factor * final_div_factor),
            },
        ],
    )
}

fn onecycle_factors(transition_steps: u64, div: f64, final_div: f64) -> Result<(), Error> {
    if transition_steps == 0 {
        check::fail("transition_steps", 0.0, "a whole number > 0")?;
    }
    for (name, v) in [("div_factor", div), ("final_div_factor", final_div)] {
        if !(v > 0.0 && v.is_finite()) {
            check::fail(name, v, "a finite number > 0")?;
        }
    }
    Ok(())
}

/// optax's `join_schedules`: `schedules[0]` until `boundaries[0]`, then `schedules[i]` from
/// `boundaries[i − 1]` on, each given the steps since its boundary. Mix kinds of schedule with
/// `Join<Box<dyn Schedule>>` (or `Arc`, which clones).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Join<S> {
    schedules: Vec<S>,
    boundaries: Vec<u64>,
}

impl<S: Schedule> Join<S> {
    /// `join_schedules(schedules, boundaries)`.
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleOptions`] unless there is one boundary fewer than schedules, and at
    /// least one schedule.
    pub fn new(schedules: Vec<S>, boundaries: Vec<u64>) -> Result<Self, Error> {
        if schedules.is_empty() || boundaries.len() + 1 != schedules.len() {
            return Err(Error::IncompatibleOptions {
                reason: "join_schedules needs one boundary fewer than schedules",
            });
        }
        Ok(Self {
            schedules,
            boundaries,
        })
    }
}

impl<S: Schedule> Schedule for Join<S> {
    fn value(&self, step: u64) -> f64 {
        // optax's `where(step < boundary, output, next(step − boundary))`, in order: the last
        // boundary passed wins.
        let mut out = self.schedules[0].value(step);
        for (b, s) in self.boundaries.iter().zip(&self.schedules[1..]) {
            if step >= *b {
                out = s.value(step - b);
            }
        }
        out
    }
}

/// A warm-up in front of a schedule: linear from `init_value` to `peak_value` over `steps`, then
/// `then`, given the steps since the warm-up ended. optax's `warmup_*` schedules are this.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Warmup<S> {
    ramp: Polynomial,
    steps: u64,
    then: S,
}

impl<S: Schedule> Warmup<S> {
    /// `join_schedules([linear_schedule(init_value, peak_value, steps), then], [steps])`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a value that is not finite.
    pub fn new(init_value: f64, peak_value: f64, steps: u64, then: S) -> Result<Self, Error> {
        Ok(Self {
            ramp: linear(init_value, peak_value, steps)?,
            steps,
            then,
        })
    }
}

impl<S: Schedule> Schedule for Warmup<S> {
    fn value(&self, step: u64) -> f64 {
        if step < self.steps {
            self.ramp.value(step)
        } else {
            self.then.value(step - self.steps)
        }
    }
}

/// optax's `warmup_cosine_decay_schedule`: a linear warm-up from `init_value` to `peak_value`
/// over `warmup_steps`, then a cosine decay to `end_value` at `decay_steps` (counted from the
/// start, warm-up included), with the cosine raised to `exponent`.
///
/// # Errors
///
/// [`Error::InvalidHyperparameter`] for `decay_steps ≤ warmup_steps` (optax raises) or a value
/// that is not finite.
pub fn warmup_cosine_decay(
    init_value: f64,
    peak_value: f64,
    warmup_steps: u64,
    decay_steps: u64,
    end_value: f64,
    exponent: f64,
) -> Result<Warmup<CosineDecay>, Error> {
    check::finite("end_value", end_value)?;
    let alpha = if peak_value == 0.0 {
        0.0
    } else {
        end_value / peak_value
    };
    let decay = CosineDecay::new(peak_value, decay_steps.saturating_sub(warmup_steps))?
        .alpha(alpha)?
        .exponent(exponent)?;
    Warmup::new(init_value, peak_value, warmup_steps, decay)
}

/// optax's `warmup_exponential_decay_schedule`: a linear warm-up from `init_value` to the
/// initial value of `decay` over `warmup_steps`, then `decay`.
///
/// # Errors
///
/// [`Error::InvalidHyperparameter`] for an `init_value` that is not finite.
pub fn warmup_exponential_decay(
    init_value: f64,
    warmup_steps: u64,
    decay: ExponentialDecay,
) -> Result<Warmup<ExponentialDecay>, Error> {
    Warmup::new(init_value, decay.init_value, warmup_steps, decay)
}

/// optax's `sgdr_schedule`: warm-up–cosine cycles one after another, each starting where the
/// previous one's `decay_steps` end.
///
/// # Errors
///
/// [`Error::IncompatibleOptions`] for no cycle.
pub fn sgdr(cycles: Vec<Warmup<CosineDecay>>) -> Result<Join<Warmup<CosineDecay>>, Error> {
    let mut at = 0;
    let boundaries = cycles
        .iter()
        .map(|c| {
            at += c.steps + c.then.decay_steps;
            at
        })
        .collect::<Vec<_>>();
    let boundaries = boundaries[..boundaries.len().saturating_sub(1)].to_vec();
    Join::new(cycles, boundaries)
}

/// The shape of a phase of [`Wsd`]: transformers' `warmup_type` and `decay_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Shape {
    /// `"linear"`.
    Linear,
    /// `"cosine"`.
    Cosine,
    /// `"1-sqrt"`.
    OneMinusSqrt,
}

/// transformers' `get_wsd_schedule` (warm-up, stable, decay), times `peak_value` (the optimizer's
/// rate there): the factor goes from `min_lr_ratio` to 1 over `warmup_steps`, stays 1 for
/// `stable_steps`, goes back to `min_lr_ratio` over `decay_steps` (a cosine of `num_cycles`
/// waves, 0.5 by default, when the decay is cosine), and stays there.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Wsd {
    peak_value: f64,
    warmup_steps: u64,
    stable_steps: u64,
    decay_steps: u64,
    warmup: Shape,
    decay: Shape,
    min_lr_ratio: f64,
    num_cycles: f64,
}

impl Wsd {
    /// `get_wsd_schedule(num_warmup_steps, num_decay_steps, num_stable_steps=...)` at rate
    /// `peak_value`, with transformers' defaults: linear warm-up, cosine decay of half a wave, to
    /// 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a `peak_value` that is not finite.
    pub fn new(
        peak_value: f64,
        warmup_steps: u64,
        stable_steps: u64,
        decay_steps: u64,
    ) -> Result<Self, Error> {
        check::finite("peak_value", peak_value)?;
        Ok(Self {
            peak_value,
            warmup_steps,
            stable_steps,
            decay_steps,
            warmup: Shape::Linear,
            decay: Shape::Cosine,
            min_lr_ratio: 0.0,
            num_cycles: 0.5,
        })
    }

    /// The shapes of the warm-up and of the decay.
    #[must_use]
    pub fn shapes(self, warmup: Shape, decay: Shape) -> Self {
        Self {
            warmup,
            decay,
            ..self
        }
    }

    /// The factor the schedule starts and ends at (default 0).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a ratio that is not finite.
    pub fn min_lr_ratio(self, min_lr_ratio: f64) -> Result<Self, Error> {
        check::finite("min_lr_ratio", min_lr_ratio)?;
        Ok(Self {
            min_lr_ratio,
            ..self
        })
    }

    /// The waves of a cosine decay (default 0.5: from 1 down once).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] for a number that is not finite.
    pub fn num_cycles(self, num_cycles: f64) -> Result<Self, Error> {
        check::finite("num_cycles", num_cycles)?;
        Ok(Self { num_cycles, ..self })
    }

    /// transformers' `_get_wsd_scheduler_lambda`.
    fn factor(&self, step: u64) -> f64 {
        let ratio = self.min_lr_ratio;
        let ramp = |factor: f64| (factor * (1.0 - ratio) + ratio).max(0.0);
        if step < self.warmup_steps {
            let progress = step as f64 / self.warmup_steps.max(1) as f64;
            return ramp(match self.warmup {
                Shape::Linear => progress,
                Shape::Cosine => 0.5 * (1.0 - (PI * progress).cos()),
                Shape::OneMinusSqrt => 1.0 - (1.0 - progress).sqrt(),
            });
        }
        let stable_end = self.warmup_steps + self.stable_steps;
        if step < stable_end {
            return 1.0;
        }
        if step < stable_end + self.decay_steps {
            let progress = (step - stable_end) as f64 / self.decay_steps.max(1) as f64;
            return ramp(match self.decay {
                Shape::Linear => 1.0 - progress,
                Shape::Cosine => 0.5 * (1.0 + (PI * self.num_cycles * 2.0 * progress).cos()),
                Shape::OneMinusSqrt => 1.0 - progress.sqrt(),
            });
        }
        ratio
    }
}

impl Schedule for Wsd {
    fn value(&self, step: u64) -> f64 {
        self.peak_value * self.factor(step)
    }
}

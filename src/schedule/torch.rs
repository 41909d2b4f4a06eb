//! PyTorch's `torch.optim.lr_scheduler` classes, with its recursive arithmetic.

use std::f64::consts::PI;

use super::Schedule;
use crate::{Error, Hyperparameter, Optimizer, Scalar};

/// A schedule, with PyTorch's class name and arguments.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[allow(missing_docs)] // the fields are PyTorch's arguments, documented on each variant
#[non_exhaustive]
pub enum TorchSchedule {
    /// `StepLR`: multiply by `gamma` every `step_size` epochs.
    StepLR { step_size: u64, gamma: f64 },
    /// `MultiStepLR`: multiply by `gamma` at each milestone.
    MultiStepLR { milestones: Vec<u64>, gamma: f64 },
    /// `ExponentialLR`: multiply by `gamma` every epoch.
    ExponentialLR { gamma: f64 },
    /// `CosineAnnealingLR`: cosine from the base rate to `eta_min` over `t_max` epochs, and back.
    CosineAnnealingLR { t_max: u64, eta_min: f64 },
    /// `CosineAnnealingWarmRestarts`: cosine over `t_0` epochs, restarting with periods
    /// multiplied by `t_mult`.
    CosineAnnealingWarmRestarts { t_0: u64, t_mult: u64, eta_min: f64 },
    /// `LinearLR`: the factor goes linearly from `start_factor` to `end_factor` in `total_iters`.
    LinearLR {
        start_factor: f64,
        end_factor: f64,
        total_iters: u64,
    },
    /// `ConstantLR`: multiply by `factor` for `total_iters` epochs.
    ConstantLR { factor: f64, total_iters: u64 },
    /// `PolynomialLR`: decay to 0 in `total_iters` with the given `power`.
    PolynomialLR { total_iters: u64, power: f64 },
    /// `OneCycleLR`: from `initial_lr = max_lr / div_factor` up to `max_lr` over `pct_start` of
    /// `total_steps`, then down to `initial_lr / final_div_factor`; `cos` or linear annealing.
    /// With `three_phase`, down to `initial_lr` over as many steps as it went up, then to the
    /// minimum. `momentum` moves from its `max_momentum` to its `base_momentum` and back as the
    /// rate goes up and down (`None`: PyTorch's `cycle_momentum=False`).
    /// [`TorchSchedule::one_cycle`] gives PyTorch's defaults. The usual loop steps the scheduler
    /// after each of `total_steps` updates; at that last scheduler step PyTorch's linear anneal
    /// overshoots to a rate slightly below zero, which no update uses, and ndoptim sets 0 there.
    /// Stepping further is an error, as in PyTorch.
    OneCycleLR(OneCycle),
    /// `CyclicLR`: between `base_lr` and `max_lr`, `step_size_up` steps up and `step_size_down`
    /// down, with the amplitude policy `mode` (`gamma` for [`CyclicMode::ExpRange`], PyTorch's
    /// `scale_fn` and `scale_mode` as [`CyclicMode::Custom`]);
    /// `momentum` from its `max_momentum` down to its `base_momentum` as the rate goes up (`None`:
    /// PyTorch's `cycle_momentum=False`). [`TorchSchedule::cyclic`] gives PyTorch's defaults.
    CyclicLR(Cyclic),
    /// `SequentialLR`: `schedules[i]` from `milestones[i - 1]` on.
    Sequential {
        schedules: Vec<TorchSchedule>,
        milestones: Vec<u64>,
    },
    /// `ReduceLROnPlateau`, stepped with [`Scheduler::step_metric`].
    ReduceLROnPlateau(Plateau),
    /// `swa_utils.SWALR`: from the optimizer's rate to `swa_lr` over `anneal_epochs` epochs,
    /// by cosine (`cos`) or linearly, then `swa_lr`: the learning rate of stochastic weight
    /// averaging ([`crate::average::Average::swa`]).
    SwaLR {
        swa_lr: f64,
        anneal_epochs: u64,
        cos: bool,
    },
}

/// The range a cyclic schedule moves the momentum in ([`Optimizer::set_hyperparameter`]): PyTorch's
/// `base_momentum` and `max_momentum`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct CycleMomentum {
    /// The momentum at the learning rate's peak.
    pub base_momentum: f64,
    /// The momentum at the learning rate's trough, and the first one set.
    pub max_momentum: f64,
}

impl CycleMomentum {
    /// `OneCycleLR`'s defaults: 0.85 and 0.95.
    pub const ONE_CYCLE: CycleMomentum = CycleMomentum {
        base_momentum: 0.85,
        max_momentum: 0.95,
    };
    /// `CyclicLR`'s defaults: 0.8 and 0.9.
    pub const CYCLIC: CycleMomentum = CycleMomentum {
        base_momentum: 0.8,
        max_momentum: 0.9,
    };
}

impl TorchSchedule {
    /// `OneCycleLR(max_lr, total_steps)` with PyTorch's defaults ([`OneCycle::new`]).
    pub fn one_cycle(max_lr: f64, total_steps: u64) -> TorchSchedule {
        TorchSchedule::OneCycleLR(OneCycle::new(max_lr, total_steps))
    }

    /// `CyclicLR(base_lr, max_lr, step_size_up)` with PyTorch's defaults ([`Cyclic::new`]).
    pub fn cyclic(base_lr: f64, max_lr: f64, step_size_up: u64) -> TorchSchedule {
        TorchSchedule::CyclicLR(Cyclic::new(base_lr, max_lr, step_size_up))
    }
}

/// The arguments of `OneCycleLR` ([`TorchSchedule::OneCycleLR`]), PyTorch's names: build with
/// [`OneCycle::new`] and the builder methods of the same names.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct OneCycle {
    /// The peak rate.
    pub max_lr: f64,
    /// The number of updates the cycle spans.
    pub total_steps: u64,
    /// The fraction of the steps spent going up.
    pub pct_start: f64,
    /// Cosine annealing (`true`, PyTorch's `anneal_strategy="cos"`) or linear.
    pub cos: bool,
    /// The initial rate is `max_lr / div_factor`.
    pub div_factor: f64,
    /// The last rate is the initial one divided by `final_div_factor`.
    pub final_div_factor: f64,
    /// Three phases (down to the initial rate, then to the last) instead of two.
    pub three_phase: bool,
    /// The momentum's range (`None`: PyTorch's `cycle_momentum=False`).
    pub momentum: Option<CycleMomentum>,
}

impl OneCycle {
    /// `OneCycleLR(max_lr, total_steps)` with PyTorch's defaults: `pct_start` 0.3, cosine
    /// annealing, `div_factor` 25, `final_div_factor` 1e4, two phases, momentum cycled in
    /// [`CycleMomentum::ONE_CYCLE`].
    pub fn new(max_lr: f64, total_steps: u64) -> Self {
        Self {
            max_lr,
            total_steps,
            pct_start: 0.3,
            cos: true,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            momentum: Some(CycleMomentum::ONE_CYCLE),
        }
    }
}

builders!(OneCycle {
    /// Sets `pct_start`.
    pct_start: f64,
    /// Sets cosine (`true`) or linear annealing.
    cos: bool,
    /// Sets `div_factor`.
    div_factor: f64,
    /// Sets `final_div_factor`.
    final_div_factor: f64,
    /// Sets three phases.
    three_phase: bool,
    /// Sets the momentum's range, or `None` not to cycle it.
    momentum: Option<CycleMomentum>,
});

impl From<OneCycle> for TorchSchedule {
    fn from(o: OneCycle) -> Self {
        TorchSchedule::OneCycleLR(o)
    }
}

/// The arguments of `CyclicLR` ([`TorchSchedule::CyclicLR`]), PyTorch's names: build with
/// [`Cyclic::new`] and the builder methods of the same names.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Cyclic {
    /// The rate at the bottom of a cycle.
    pub base_lr: f64,
    /// The rate at its top (scaled by the mode's amplitude).
    pub max_lr: f64,
    /// The steps from bottom to top.
    pub step_size_up: u64,
    /// The steps from top to bottom.
    pub step_size_down: u64,
    /// The amplitude policy.
    pub mode: CyclicMode,
    /// The base of [`CyclicMode::ExpRange`]'s amplitude.
    pub gamma: f64,
    /// The momentum's range (`None`: PyTorch's `cycle_momentum=False`).
    pub momentum: Option<CycleMomentum>,
}

impl Cyclic {
    /// `CyclicLR(base_lr, max_lr, step_size_up)` with PyTorch's defaults: as many steps down as
    /// up, triangular, `gamma` 1, momentum cycled in [`CycleMomentum::CYCLIC`].
    pub fn new(base_lr: f64, max_lr: f64, step_size_up: u64) -> Self {
        Self {
            base_lr,
            max_lr,
            step_size_up,
            step_size_down: step_size_up,
            mode: CyclicMode::Triangular,
            gamma: 1.0,
            momentum: Some(CycleMomentum::CYCLIC),
        }
    }
}

builders!(Cyclic {
    /// Sets `step_size_down`.
    step_size_down: u64,
    /// Sets the amplitude policy.
    mode: CyclicMode,
    /// Sets `gamma`.
    gamma: f64,
    /// Sets the momentum's range, or `None` not to cycle it.
    momentum: Option<CycleMomentum>,
});

impl From<Cyclic> for TorchSchedule {
    fn from(c: Cyclic) -> Self {
        TorchSchedule::CyclicLR(c)
    }
}

/// The amplitude policy of [`TorchSchedule::CyclicLR`].
#[derive(Clone, Copy, Debug)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum CyclicMode {
    /// Constant amplitude.
    Triangular,
    /// Amplitude halved every cycle.
    Triangular2,
    /// Amplitude scaled by `gamma` to the power of the iteration.
    ExpRange,
    /// PyTorch's `scale_fn`: the amplitude scaled by a function of the cycle (1, 2, ...) or of
    /// the iteration (0, 1, ...), as `scale_mode` says. A function cannot be serialised: a
    /// schedule with one is skipped by serde.
    #[cfg_attr(feature = "serde", serde(skip))]
    Custom {
        /// The amplitude's factor, usually in `[0, 1]`.
        scale_fn: fn(f64) -> f64,
        /// What `scale_fn` is a function of.
        scale_mode: ScaleMode,
    },
}

impl PartialEq for CyclicMode {
    /// Custom modes are equal if they hold the same function (by address) and scale mode.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (
                CyclicMode::Custom {
                    scale_fn: a,
                    scale_mode: m,
                },
                CyclicMode::Custom {
                    scale_fn: b,
                    scale_mode: n,
                },
            ) => std::ptr::fn_addr_eq(*a, *b) && m == n,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

/// What a custom [`CyclicMode`] scales by: PyTorch's `scale_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum ScaleMode {
    /// The cycle number, from 1 (PyTorch's default, `"cycle"`).
    Cycle,
    /// The iteration, from 0 (`"iterations"`).
    Iterations,
}

/// The arguments of `ReduceLROnPlateau`: [`Plateau::default`] is PyTorch's, and the builder
/// methods of the same names set the others.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct Plateau {
    /// Reduce when the metric stops decreasing (`true`, PyTorch's `"min"`) or increasing.
    pub minimize: bool,
    /// `new_lr = lr * factor`, `< 1` (default 0.1).
    pub factor: f64,
    /// Epochs without improvement tolerated (default 10).
    pub patience: u64,
    /// What counts as an improvement (default 1e-4).
    pub threshold: f64,
    /// `threshold` relative to the best (`true`, PyTorch's `"rel"`) or absolute.
    pub relative: bool,
    /// Epochs to wait after a reduction (default 0).
    pub cooldown: u64,
    /// The learning rate's floor (default 0).
    pub min_lr: f64,
    /// Reductions smaller than this are skipped (default 1e-8).
    pub eps: f64,
}

impl Default for Plateau {
    fn default() -> Self {
        Plateau {
            minimize: true,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            relative: true,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
        }
    }
}

builders!(Plateau {
    /// Reduces when the metric stops decreasing (`true`) or increasing.
    minimize: bool,
    /// Sets `factor`.
    factor: f64,
    /// Sets `patience`.
    patience: u64,
    /// Sets `threshold`.
    threshold: f64,
    /// A threshold relative to the best metric (`true`) or absolute.
    relative: bool,
    /// Sets `cooldown`.
    cooldown: u64,
    /// Sets `min_lr`.
    min_lr: f64,
    /// Sets `eps`.
    eps: f64,
});

/// A [`TorchSchedule`] attached to an optimizer, with PyTorch's scheduler state.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Scheduler {
    schedule: TorchSchedule,
    base_lr: f64,
    last_epoch: i64,
    step_count: u64,
    last_lr: f64,
    /// CosineAnnealingWarmRestarts: epochs since the restart and the current period.
    t_cur: i64,
    t_i: u64,
    /// ReduceLROnPlateau: the best metric (none yet: PyTorch's ±infinity), bad epochs, cooldown
    /// left.
    best: Option<f64>,
    bad_epochs: u64,
    cooldown_left: u64,
    /// SequentialLR: the schedules' own state.
    children: Vec<Scheduler>,
}

fn invalid(name: &'static str, value: f64, expected: &'static str) -> Error {
    Error::InvalidHyperparameter {
        name,
        value,
        expected,
    }
}

impl Scheduler {
    /// Attaches `schedule` to `optimizer`, whose current learning rate is the base rate, and sets
    /// the rate of epoch 0.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`], naming the argument, for every argument PyTorch rejects
    /// and for those it accepts but that fail or give a rate below zero or not finite later (a
    /// zero period, a negative or NaN `gamma`, an infinite `eta_min`, `ConstantLR`'s factor 0,
    /// `OneCycleLR`'s `pct_start` 0 or 1); the optimizer is then unchanged.
    pub fn new<F: Scalar, O: Optimizer<F> + ?Sized>(
        schedule: TorchSchedule,
        optimizer: &mut O,
    ) -> Result<Self, Error> {
        validate(&schedule)?;
        let mut s = Scheduler::detached(schedule, optimizer.learning_rate());
        let lr = s.initial(optimizer.learning_rate());
        set(optimizer, lr, s.momentum())?;
        Ok(s)
    }

    fn detached(schedule: TorchSchedule, lr: f64) -> Self {
        let base_lr = base_of(&schedule, lr);
        let children = match &schedule {
            TorchSchedule::Sequential { schedules, .. } => schedules
                .iter()
                .map(|s| Scheduler::detached(s.clone(), base_lr))
                .collect(),
            _ => Vec::new(),
        };
        let t_i = match &schedule {
            TorchSchedule::CosineAnnealingWarmRestarts { t_0, .. } => *t_0,
            _ => 0,
        };
        Scheduler {
            schedule,
            base_lr,
            last_epoch: -1,
            step_count: 0,
            last_lr: lr,
            t_cur: -1,
            t_i,
            best: None,
            bad_epochs: 0,
            cooldown_left: 0,
            children,
        }
    }

    /// The initial step (PyTorch's `_initial_step`): the rate of epoch 0 from the current `lr`.
    fn initial(&mut self, lr: f64) -> f64 {
        if let TorchSchedule::ReduceLROnPlateau(_) = &self.schedule {
            self.best = None;
            self.last_epoch = 0;
            self.last_lr = lr;
            return lr;
        }
        let lr = match &self.schedule {
            TorchSchedule::OneCycleLR(OneCycle { .. }) | TorchSchedule::CyclicLR(Cyclic { .. }) => {
                self.base_lr
            }
            _ => lr,
        };
        if let TorchSchedule::Sequential { .. } = self.schedule {
            self.last_epoch = 0;
            let lr = self.children.first_mut().map_or(lr, |c| c.initial(lr));
            self.last_lr = lr;
            return lr;
        }
        self.step_count = 0;
        self.advance(lr, true)
    }

    /// One epoch on: PyTorch's `step()` (its `_update_lr` with `epoch=None`).
    fn advance(&mut self, lr: f64, initial: bool) -> f64 {
        self.step_count += 1;
        if let TorchSchedule::CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
        } = self.schedule
        {
            if self.last_epoch < 0 {
                self.t_i = t_0;
                self.t_cur = 0;
                self.last_epoch = 0;
            } else {
                self.last_epoch += 1;
                self.t_cur += 1;
                if self.t_cur >= self.t_i as i64 {
                    self.t_cur %= self.t_i as i64;
                    self.t_i *= t_mult;
                }
            }
            let next = eta_min
                + (self.base_lr - eta_min)
                    * (1.0 + (PI * self.t_cur as f64 / self.t_i as f64).cos())
                    / 2.0;
            self.last_lr = next;
            return next;
        }
        self.last_epoch += 1;
        let next = self.chainable(lr, initial);
        self.last_lr = next;
        next
    }

    /// PyTorch's `get_lr`: the rate of `self.last_epoch` from the current rate `lr`.
    fn chainable(&self, lr: f64, initial: bool) -> f64 {
        let e = self.last_epoch;
        let base = self.base_lr;
        match &self.schedule {
            TorchSchedule::StepLR { step_size, gamma } => {
                if e == 0 || e % *step_size as i64 != 0 {
                    lr
                } else {
                    lr * gamma
                }
            }
            TorchSchedule::MultiStepLR { milestones, gamma } => {
                let hits = milestones.iter().filter(|&&m| m as i64 == e).count();
                if hits == 0 {
                    lr
                } else {
                    lr * gamma.powf(hits as f64)
                }
            }
            TorchSchedule::ExponentialLR { gamma } => {
                if initial {
                    lr
                } else {
                    lr * gamma
                }
            }
            TorchSchedule::CosineAnnealingLR { t_max, eta_min } => {
                let t = *t_max as f64;
                if initial {
                    lr
                } else if self.step_count == 1 && e > 0 {
                    eta_min + (base - eta_min) * (1.0 + (e as f64 * PI / t).cos()) / 2.0
                } else if (e - 1 - *t_max as i64).rem_euclid(2 * *t_max as i64) == 0 {
                    lr + (base - eta_min) * (1.0 - (PI / t).cos()) / 2.0
                } else {
                    (1.0 + (PI * e as f64 / t).cos()) / (1.0 + (PI * (e - 1) as f64 / t).cos())
                        * (lr - eta_min)
                        + eta_min
                }
            }
            TorchSchedule::LinearLR {
                start_factor,
                end_factor,
                total_iters,
            } => {
                if e == 0 {
                    lr * start_factor
                } else if initial || e > *total_iters as i64 {
                    lr
                } else {
                    let span = end_factor - start_factor;
                    lr * (1.0 + span / (*total_iters as f64 * start_factor + (e - 1) as f64 * span))
                }
            }
            TorchSchedule::ConstantLR {
                factor,
                total_iters,
            } => {
                if e == 0 {
                    lr * factor
                } else if e != *total_iters as i64 {
                    lr
                } else {
                    lr * (1.0 / factor)
                }
            }
            TorchSchedule::PolynomialLR { total_iters, power } => {
                if initial || e > *total_iters as i64 {
                    lr
                } else {
                    let n = *total_iters as f64;
                    lr * ((1.0 - e as f64 / n) / (1.0 - (e - 1) as f64 / n)).powf(*power)
                }
            }
            TorchSchedule::OneCycleLR(OneCycle { .. }) | TorchSchedule::CyclicLR(Cyclic { .. }) => {
                self.cycle().0
            }
            TorchSchedule::SwaLR {
                swa_lr,
                anneal_epochs,
                cos,
            } => {
                // PyTorch's recursive form: the rate before annealing is recovered from the
                // current one, then moved `alpha` of the way to `swa_lr`.
                let anneal = |t: f64| {
                    if *cos {
                        (1.0 - (PI * t).cos()) / 2.0
                    } else {
                        t
                    }
                };
                let mut step = self.step_count as f64 - 1.0;
                if *anneal_epochs == 0 {
                    step = step.max(1.0);
                }
                let span = (*anneal_epochs).max(1) as f64;
                let prev_alpha = anneal(((step - 1.0) / span).clamp(0.0, 1.0));
                let prev = if prev_alpha == 1.0 {
                    *swa_lr
                } else {
                    (lr - prev_alpha * swa_lr) / (1.0 - prev_alpha)
                };
                let alpha = anneal((step / span).clamp(0.0, 1.0));
                swa_lr * alpha + prev * (1.0 - alpha)
            }
            TorchSchedule::Sequential { .. }
            | TorchSchedule::ReduceLROnPlateau(_)
            | TorchSchedule::CosineAnnealingWarmRestarts { .. } => lr,
        }
    }

    /// `OneCycleLR`'s and `CyclicLR`'s learning rate and momentum at `self.last_epoch` (the rate
    /// is its last, and no momentum, for other schedules).
    fn cycle(&self) -> (f64, Option<f64>) {
        cycle(&self.schedule, self.base_lr, self.last_epoch as f64).unwrap_or((self.last_lr, None))
    }

    /// The momentum the schedule sets at its current epoch, if it cycles one (for `Sequential`,
    /// the running schedule's).
    fn momentum(&self) -> Option<f64> {
        match &self.schedule {
            TorchSchedule::Sequential { milestones, .. } => {
                let idx = milestones
                    .iter()
                    .take_while(|&&m| m as i64 <= self.last_epoch)
                    .count();
                self.children.get(idx).and_then(Scheduler::momentum)
            }
            _ => self.cycle().1,
        }
    }

    /// One epoch on, after an optimizer step: sets the optimizer's next learning rate (and
    /// momentum, for `OneCycleLR` and `CyclicLR` that cycle it), and returns the rate.
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleOptions`] for `ReduceLROnPlateau`, which needs
    /// [`Scheduler::step_metric`], and for a `OneCycleLR` stepped past its `total_steps`; errors
    /// of [`Optimizer::set_learning_rate`] and [`Optimizer::set_hyperparameter`], after which the
    /// optimizer's rate and momentum are as they were.
    pub fn step<F: Scalar, O: Optimizer<F> + ?Sized>(
        &mut self,
        optimizer: &mut O,
    ) -> Result<f64, Error> {
        let lr = optimizer.learning_rate();
        let next = match &self.schedule {
            TorchSchedule::ReduceLROnPlateau(_) => {
                return Err(Error::IncompatibleOptions {
                    reason: "ReduceLROnPlateau steps with a metric: call step_metric",
                });
            }
            TorchSchedule::OneCycleLR(OneCycle { total_steps, .. })
                if self.last_epoch >= *total_steps as i64 =>
            {
                return Err(Error::IncompatibleOptions {
                    reason: "OneCycleLR stepped more times than its total_steps",
                });
            }
            TorchSchedule::Sequential { milestones, .. } => {
                self.last_epoch += 1;
                let e = self.last_epoch;
                let idx = milestones.iter().take_while(|&&m| m as i64 <= e).count();
                let Some(child) = self.children.get_mut(idx) else {
                    return Ok(lr);
                };
                if idx > 0 && milestones[idx - 1] as i64 == e {
                    // PyTorch restarts the next schedule at its epoch 0, in closed form.
                    child.last_epoch = 0;
                    child.closed_form()
                } else {
                    child.advance(lr, false)
                }
            }
            _ => self.advance(lr, false),
        };
        // The step after a OneCycleLR's last update is PyTorch's too: its linear anneal then
        // overshoots the last phase and gives a rate slightly below zero, which no update of the
        // schedule uses. The optimizer is given 0 instead, so that the usual loop (a scheduler
        // step after every update) ends without an error.
        let next = match &self.schedule {
            TorchSchedule::OneCycleLR(OneCycle { total_steps, .. })
                if self.last_epoch == *total_steps as i64 =>
            {
                next.max(0.0)
            }
            _ => next,
        };
        set(optimizer, next, self.momentum())?;
        self.last_lr = next;
        Ok(next)
    }

    /// PyTorch's `_get_closed_form_lr` at `self.last_epoch`, where the class has one.
    fn closed_form(&mut self) -> f64 {
        let Some(lr) = pytorch_closed_form(&self.schedule, self.base_lr, self.last_epoch) else {
            self.last_epoch -= 1;
            return self.advance(self.last_lr, false);
        };
        self.last_lr = lr;
        lr
    }

    /// `ReduceLROnPlateau`'s step: reads the metric, reduces the optimizer's learning rate after
    /// `patience` epochs without improvement; returns the learning rate.
    ///
    /// # Errors
    ///
    /// [`Error::IncompatibleOptions`] for the other schedules, which step with
    /// [`Scheduler::step`].
    pub fn step_metric<F: Scalar, O: Optimizer<F> + ?Sized>(
        &mut self,
        optimizer: &mut O,
        metric: f64,
    ) -> Result<f64, Error> {
        let TorchSchedule::ReduceLROnPlateau(p) = &self.schedule else {
            return Err(Error::IncompatibleOptions {
                reason: "only ReduceLROnPlateau steps with a metric: call step",
            });
        };
        self.last_epoch += 1;
        let best = self.best.unwrap_or(if p.minimize {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        });
        let better = match (p.minimize, p.relative) {
            (true, true) => metric < best * (1.0 - p.threshold),
            (true, false) => metric < best - p.threshold,
            (false, true) => metric > best * (p.threshold + 1.0),
            (false, false) => metric > best + p.threshold,
        };
        if better {
            self.best = Some(metric);
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.bad_epochs = 0;
        }
        let mut lr = optimizer.learning_rate();
        if self.bad_epochs > p.patience {
            let new = (lr * p.factor).max(p.min_lr);
            if lr - new > p.eps {
                optimizer.set_learning_rate(new)?;
                lr = new;
            }
            self.cooldown_left = p.cooldown;
            self.bad_epochs = 0;
        }
        self.last_lr = lr;
        Ok(lr)
    }

    /// The learning rate this scheduler set last.
    pub fn last_lr(&self) -> f64 {
        self.last_lr
    }

    /// The number of steps taken (PyTorch's `last_epoch`).
    pub fn epoch(&self) -> i64 {
        self.last_epoch
    }

    /// Checks a scheduler that did not come from [`Scheduler::new`] (a checkpoint's, built by hand
    /// or deserialised): its schedule's arguments as `new` checks them, finite non-negative rates,
    /// and, for `Sequential`, one child per schedule, each checked.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`], [`Error::IncompatibleOptions`] or [`Error::Checkpoint`]
    /// saying what is wrong.
    pub fn check(&self) -> Result<(), Error> {
        validate(&self.schedule)?;
        crate::check::learning_rate(self.base_lr)?;
        crate::check::learning_rate(self.last_lr)?;
        let children = match &self.schedule {
            TorchSchedule::Sequential { schedules, .. } => schedules.len(),
            _ => 0,
        };
        if self.children.len() != children {
            return Err(Error::Checkpoint {
                reason: format!(
                    "a scheduler with {} child schedulers where its schedule has {children}",
                    self.children.len()
                ),
            });
        }
        self.children.iter().try_for_each(Scheduler::check)
    }
}

/// Sets the learning rate and, if given, the momentum: both or neither.
fn set<F: Scalar, O: Optimizer<F> + ?Sized>(
    optimizer: &mut O,
    lr: f64,
    momentum: Option<f64>,
) -> Result<(), Error> {
    let Some(momentum) = momentum else {
        return optimizer.set_learning_rate(lr);
    };
    let before = optimizer.learning_rate();
    optimizer.set_learning_rate(lr)?;
    optimizer
        .set_hyperparameter(Hyperparameter::Momentum, momentum)
        .inspect_err(|_| {
            // Restoring a rate the optimizer held cannot fail.
            let _ = optimizer.set_learning_rate(before);
        })
}

/// Refuses, when a schedule is built, every argument that would make it fail or give a rate that
/// is not a finite number >= 0 at some later step: PyTorch's checks, in its words where it has
/// them, and the degenerate values it lets through.
fn validate(schedule: &TorchSchedule) -> Result<(), Error> {
    let positive = |name, v: u64| {
        if v == 0 {
            Err(invalid(name, 0.0, "a whole number > 0"))
        } else {
            Ok(())
        }
    };
    // A factor the rate is multiplied by, repeatedly or not: a negative one makes a negative rate.
    let multiplier = |name, v: f64| crate::check::non_negative(name, v);
    match schedule {
        TorchSchedule::StepLR { step_size, gamma } => {
            positive("step_size", *step_size)?;
            multiplier("gamma", *gamma)
        }
        TorchSchedule::MultiStepLR { gamma, .. } | TorchSchedule::ExponentialLR { gamma } => {
            multiplier("gamma", *gamma)
        }
        TorchSchedule::CosineAnnealingLR { t_max, eta_min } => {
            positive("T_max", *t_max)?;
            multiplier("eta_min", *eta_min)
        }
        TorchSchedule::CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
        } => {
            positive("T_0", *t_0)?;
            if *t_mult == 0 {
                return Err(invalid("T_mult", 0.0, "an integer >= 1"));
            }
            multiplier("eta_min", *eta_min)
        }
        TorchSchedule::LinearLR {
            start_factor,
            end_factor,
            total_iters,
        } => {
            if !(*start_factor > 0.0 && *start_factor <= 1.0) {
                return Err(invalid(
                    "start_factor",
                    *start_factor,
                    "greater than 0 and less or equal to 1",
                ));
            }
            if !(0.0..=1.0).contains(end_factor) {
                return Err(invalid("end_factor", *end_factor, "between 0 and 1"));
            }
            positive("total_iters", *total_iters)
        }
        TorchSchedule::ConstantLR { factor, .. } => {
            // PyTorch accepts 0, then divides by it when the constant phase ends.
            if !(*factor > 0.0 && *factor <= 1.0) {
                return Err(invalid(
                    "factor",
                    *factor,
                    "between 0 and 1, and not 0, which ends the constant phase in a division by zero",
                ));
            }
            Ok(())
        }
        TorchSchedule::PolynomialLR { total_iters, power } => {
            positive("total_iters", *total_iters)?;
            multiplier("power", *power)
        }
        TorchSchedule::OneCycleLR(OneCycle {
            max_lr,
            total_steps,
            pct_start,
            div_factor,
            final_div_factor,
            three_phase,
            momentum,
            ..
        }) => {
            positive("total_steps", *total_steps)?;
            crate::check::learning_rate(*max_lr)?;
            if !(*div_factor > 0.0 && div_factor.is_finite()) {
                return Err(invalid("div_factor", *div_factor, "a finite number > 0"));
            }
            if !(*final_div_factor > 0.0 && final_div_factor.is_finite()) {
                return Err(invalid(
                    "final_div_factor",
                    *final_div_factor,
                    "a finite number > 0",
                ));
            }
            // Each phase spans `end − start` steps, a divisor: none may be empty.
            let n = *total_steps as f64;
            let up = pct_start * n - 1.0;
            let spans = if *three_phase {
                [up, up, n - 1.0 - 2.0 * up]
            } else {
                [up, n - 1.0 - up, 1.0]
            };
            if !(*pct_start > 0.0 && *pct_start < 1.0) || spans.contains(&0.0) {
                return Err(invalid(
                    "pct_start",
                    *pct_start,
                    "a float between 0 and 1 that leaves no phase of zero steps",
                ));
            }
            cycle_momentum(momentum)
        }
        TorchSchedule::CyclicLR(Cyclic {
            base_lr,
            max_lr,
            step_size_up,
            mode,
            gamma,
            momentum,
            ..
        }) => {
            crate::check::learning_rate(*base_lr)?;
            crate::check::learning_rate(*max_lr)?;
            positive("step_size_up", *step_size_up)?;
            if matches!(mode, CyclicMode::ExpRange) {
                multiplier("gamma", *gamma)?;
            }
            cycle_momentum(momentum)
        }
        TorchSchedule::Sequential {
            schedules,
            milestones,
        } => {
            if schedules.is_empty() || milestones.len() + 1 != schedules.len() {
                return Err(Error::IncompatibleOptions {
                    reason: "SequentialLR needs one milestone fewer than schedules",
                });
            }
            schedules.iter().try_for_each(validate)
        }
        TorchSchedule::ReduceLROnPlateau(p) => {
            if !(0.0..1.0).contains(&p.factor) {
                return Err(invalid("factor", p.factor, "a number >= 0 and < 1.0"));
            }
            crate::check::non_negative("threshold", p.threshold)?;
            crate::check::non_negative("min_lr", p.min_lr)?;
            crate::check::non_negative("eps", p.eps)
        }
        TorchSchedule::SwaLR { swa_lr, .. } => crate::check::learning_rate(*swa_lr),
    }
}

fn cycle_momentum(momentum: &Option<CycleMomentum>) -> Result<(), Error> {
    let Some(m) = momentum else { return Ok(()) };
    crate::check::finite("base_momentum", m.base_momentum)?;
    crate::check::finite("max_momentum", m.max_momentum)
}

/// `OneCycleLR`'s and `CyclicLR`'s learning rate and momentum at epoch `e` from `base` (its
/// initial rate), in PyTorch's closed forms (the momentum `None` without cycling); `None` for
/// other schedules.
fn cycle(schedule: &TorchSchedule, base: f64, e: f64) -> Option<(f64, Option<f64>)> {
    match schedule {
        TorchSchedule::OneCycleLR(OneCycle {
            max_lr,
            total_steps,
            pct_start,
            cos,
            final_div_factor,
            three_phase,
            momentum,
            ..
        }) => {
            let anneal = |from: f64, to: f64, pct: f64| {
                if *cos {
                    to + (from - to) / 2.0 * ((PI * pct).cos() + 1.0)
                } else {
                    (to - from) * pct + from
                }
            };
            let (min_lr, last) = (base / final_div_factor, *total_steps as f64 - 1.0);
            let up_end = pct_start * *total_steps as f64 - 1.0;
            let m = momentum.map_or((0.0, 0.0), |m| (m.max_momentum, m.base_momentum));
            // PyTorch's phases: (end step, lr from and to, momentum from and to).
            let phases: &[(f64, f64, f64, f64, f64)] = if *three_phase {
                &[
                    (up_end, base, *max_lr, m.0, m.1),
                    (
                        2.0 * pct_start * *total_steps as f64 - 2.0,
                        *max_lr,
                        base,
                        m.1,
                        m.0,
                    ),
                    (last, base, min_lr, m.0, m.0),
                ]
            } else {
                &[
                    (up_end, base, *max_lr, m.0, m.1),
                    (last, *max_lr, min_lr, m.1, m.0),
                ]
            };
            let mut start = 0.0;
            for (i, &(end, lr_from, lr_to, m_from, m_to)) in phases.iter().enumerate() {
                if e <= end || i == phases.len() - 1 {
                    let pct = (e - start) / (end - start);
                    let m = momentum.map(|_| anneal(m_from, m_to, pct));
                    return Some((anneal(lr_from, lr_to, pct), m));
                }
                start = end;
            }
            None
        }
        TorchSchedule::CyclicLR(Cyclic {
            max_lr,
            step_size_up,
            step_size_down,
            mode,
            gamma,
            momentum,
            ..
        }) => {
            let (up, total) = (
                *step_size_up as f64,
                (*step_size_up + *step_size_down) as f64,
            );
            let ratio = up / total;
            let cycle = (1.0 + e / total).floor();
            let x = 1.0 + e / total - cycle;
            let scale = if x <= ratio {
                x / ratio
            } else {
                (x - 1.0) / (ratio - 1.0)
            };
            let factor = match mode {
                CyclicMode::Triangular => 1.0,
                CyclicMode::Triangular2 => 1.0 / 2f64.powf(cycle - 1.0),
                CyclicMode::ExpRange => gamma.powf(e),
                CyclicMode::Custom {
                    scale_fn,
                    scale_mode: ScaleMode::Cycle,
                } => scale_fn(cycle),
                CyclicMode::Custom {
                    scale_fn,
                    scale_mode: ScaleMode::Iterations,
                } => scale_fn(e),
            };
            let m = momentum.map(|m| {
                let height = (m.max_momentum - m.base_momentum) * scale;
                m.max_momentum - height * factor
            });
            Some((base + (max_lr - base) * scale * factor, m))
        }
        _ => None,
    }
}

/// PyTorch's `_get_closed_form_lr` at epoch `epoch` from `base`, for the classes that have one.
fn pytorch_closed_form(schedule: &TorchSchedule, base: f64, epoch: i64) -> Option<f64> {
    let e = epoch as f64;
    let lr = match schedule {
        TorchSchedule::StepLR { step_size, gamma } => {
            base * gamma.powf((epoch / *step_size as i64) as f64)
        }
        TorchSchedule::MultiStepLR { milestones, gamma } => {
            base * gamma.powf(milestones.iter().filter(|&&m| m as i64 <= epoch).count() as f64)
        }
        TorchSchedule::ExponentialLR { gamma } => base * gamma.powf(e),
        TorchSchedule::CosineAnnealingLR { t_max, eta_min } => {
            eta_min + (base - eta_min) * (1.0 + (PI * e / *t_max as f64).cos()) / 2.0
        }
        TorchSchedule::LinearLR {
            start_factor,
            end_factor,
            total_iters,
        } => {
            base * (start_factor
                + (end_factor - start_factor) * e.min(*total_iters as f64) / *total_iters as f64)
        }
        TorchSchedule::ConstantLR {
            factor,
            total_iters,
        } => {
            base * (factor
                + if e >= *total_iters as f64 {
                    1.0 - factor
                } else {
                    0.0
                })
        }
        TorchSchedule::PolynomialLR { total_iters, power } => {
            base * (1.0 - e.min(*total_iters as f64) / *total_iters as f64).powf(*power)
        }
        _ => return None,
    };
    Some(lr)
}

/// The rate a schedule starts from when the optimizer's is `lr`: `OneCycleLR` and `CyclicLR` set
/// their own.
fn base_of(schedule: &TorchSchedule, lr: f64) -> f64 {
    match schedule {
        TorchSchedule::OneCycleLR(OneCycle {
            max_lr, div_factor, ..
        }) => max_lr / div_factor,
        TorchSchedule::CyclicLR(Cyclic { base_lr, .. }) => *base_lr,
        _ => lr,
    }
}

/// A PyTorch schedule as a function of the step ([`Schedule`]): PyTorch's closed forms
/// (`_get_closed_form_lr`, and those `OneCycleLR`, `CyclicLR` and `CosineAnnealingWarmRestarts`
/// compute with), from [`TorchSchedule::closed_form`]. For any hyperparameter through
/// [`Inject`](super::Inject); [`Scheduler`] repeats PyTorch's recursive arithmetic on the
/// learning rate, and the two agree to rounding.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ClosedForm {
    schedule: TorchSchedule,
    base: f64,
}

impl TorchSchedule {
    /// This schedule as a function of the step, starting from `base` (PyTorch's `initial_lr`;
    /// `OneCycleLR` and `CyclicLR` start from their own).
    ///
    /// # Errors
    ///
    /// Those of [`Scheduler::new`] for its arguments, and [`Error::IncompatibleOptions`] for
    /// `ReduceLROnPlateau` (a function of a metric) and `SwaLR` (which PyTorch defines from the
    /// rate the optimizer holds), alone or in a `Sequential`.
    pub fn closed_form(self, base: f64) -> Result<ClosedForm, Error> {
        validate(&self)?;
        crate::check::finite("base", base)?;
        fn refused(s: &TorchSchedule) -> bool {
            match s {
                TorchSchedule::ReduceLROnPlateau(_) | TorchSchedule::SwaLR { .. } => true,
                TorchSchedule::Sequential { schedules, .. } => schedules.iter().any(refused),
                _ => false,
            }
        }
        if refused(&self) {
            return Err(Error::IncompatibleOptions {
                reason: "ReduceLROnPlateau and SWALR are not functions of the step: use a Scheduler",
            });
        }
        Ok(ClosedForm {
            schedule: self,
            base,
        })
    }
}

impl Schedule for ClosedForm {
    fn value(&self, step: u64) -> f64 {
        closed(&self.schedule, self.base, step)
    }
}

/// The value of `schedule` at `step` from `base`, in closed form.
fn closed(schedule: &TorchSchedule, base: f64, step: u64) -> f64 {
    if let Some(lr) = pytorch_closed_form(schedule, base, step as i64) {
        return lr;
    }
    match schedule {
        TorchSchedule::CosineAnnealingWarmRestarts {
            t_0,
            t_mult,
            eta_min,
        } => {
            // PyTorch's restarts: the period grows by `t_mult` at each.
            let (mut t_cur, mut t_i) = (step, *t_0);
            if *t_mult == 1 {
                t_cur %= t_i;
            }
            while t_cur >= t_i {
                t_cur -= t_i;
                t_i *= t_mult;
            }
            eta_min + (base - eta_min) * (1.0 + (PI * t_cur as f64 / t_i as f64).cos()) / 2.0
        }
        TorchSchedule::Sequential {
            schedules,
            milestones,
        } => {
            let i = milestones.iter().take_while(|&&m| m <= step).count();
            let since = i.checked_sub(1).map_or(0, |j| milestones[j]);
            schedules
                .get(i)
                .map_or(base, |s| closed(s, base, step - since))
        }
        _ => cycle(schedule, base_of(schedule, base), step as f64).map_or(base, |c| c.0),
    }
}

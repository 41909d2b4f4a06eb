//! The PyTorch scheduler a reference file describes.

#[allow(unused_imports)]
use super::*;

/// The schedule a file's `scheduler` describes (`None` without one).
pub fn scheduler(v: &Value) -> Result<Option<TorchSchedule>, String> {
    if v.is_null() {
        return Ok(None);
    }
    let mut h = Hyper::new(v);
    h.text("note")?;
    let class = h.text("class")?.unwrap_or_default();
    let mut args = Hyper::new(&v["args"]);
    h.0.remove("args");
    h.finish()?;
    let schedule = match class.as_str() {
        "torch.optim.swa_utils.SWALR" => {
            resumed(&mut args)?;
            TorchSchedule::SwaLR {
                swa_lr: args.take("swa_lr")?.ok_or("no swa_lr")?,
                anneal_epochs: args.take("anneal_epochs")?.ok_or("no anneal_epochs")? as u64,
                cos: match args.text("anneal_strategy")?.as_deref() {
                    Some("cos") | None => true,
                    Some("linear") => false,
                    Some(other) => return Err(format!("anneal_strategy {other}")),
                },
            }
        }
        "torch.optim.lr_scheduler.OneCycleLR" => {
            resumed(&mut args)?;
            args.null("epochs")?;
            args.null("steps_per_epoch")?;
            let max_lr = args.take("max_lr")?.ok_or("no max_lr")?;
            let total_steps = args.take("total_steps")?.ok_or("no total_steps")? as u64;
            let cos = match args.text("anneal_strategy")?.as_deref() {
                Some("cos") | None => true,
                Some("linear") => false,
                Some(other) => return Err(format!("anneal_strategy {other}")),
            };
            let o = OneCycle::new(max_lr, total_steps).cos(cos);
            let o = opt(args.take("pct_start")?, o, OneCycle::pct_start);
            let o = opt(args.take("div_factor")?, o, OneCycle::div_factor);
            let o = opt(
                args.take("final_div_factor")?,
                o,
                OneCycle::final_div_factor,
            );
            let o = opt(args.flag("three_phase")?, o, OneCycle::three_phase);
            o.momentum(cycle_momentum(&mut args, CycleMomentum::ONE_CYCLE)?)
                .into()
        }
        "torch.optim.lr_scheduler.CyclicLR" => {
            resumed(&mut args)?;
            // PyTorch reads scale_mode only with a custom scale_fn: the built-in modes scale by
            // their own (cycles for the triangular ones, iterations for exp_range).
            let scale_mode = match args.text("scale_mode")?.as_deref() {
                Some("cycle") | None => ScaleMode::Cycle,
                Some("iterations") => ScaleMode::Iterations,
                Some(other) => return Err(format!("scale_mode {other}")),
            };
            let mode = match (
                args.text("scale_fn")?.as_deref(),
                args.text("mode")?.as_deref(),
            ) {
                (Some(f), _) => CyclicMode::Custom {
                    scale_fn: scale_fn(f)?,
                    scale_mode,
                },
                (None, Some("triangular") | None) => CyclicMode::Triangular,
                (None, Some("triangular2")) => CyclicMode::Triangular2,
                (None, Some("exp_range")) => CyclicMode::ExpRange,
                (None, Some(other)) => return Err(format!("mode {other}")),
            };
            let step_size_up = args.take("step_size_up")?.unwrap_or(2000.0) as u64;
            let base_lr = args.take("base_lr")?.ok_or("no base_lr")?;
            let max_lr = args.take("max_lr")?.ok_or("no max_lr")?;
            let c = Cyclic::new(base_lr, max_lr, step_size_up).mode(mode);
            let c = opt(args.take("step_size_down")?, c, |c, d| {
                c.step_size_down(d as u64)
            });
            let c = opt(args.take("gamma")?, c, Cyclic::gamma);
            c.momentum(cycle_momentum(&mut args, CycleMomentum::CYCLIC)?)
                .into()
        }
        "torch.optim.lr_scheduler.StepLR" => {
            resumed(&mut args)?;
            TorchSchedule::StepLR {
                step_size: whole(args.take("step_size")?, "step_size")?,
                gamma: args.take("gamma")?.unwrap_or(0.1),
            }
        }
        "torch.optim.lr_scheduler.MultiStepLR" => {
            resumed(&mut args)?;
            TorchSchedule::MultiStepLR {
                milestones: args
                    .list("milestones")?
                    .ok_or("no milestones")?
                    .into_iter()
                    .map(|m| m as u64)
                    .collect(),
                gamma: args.take("gamma")?.unwrap_or(0.1),
            }
        }
        "torch.optim.lr_scheduler.ExponentialLR" => {
            resumed(&mut args)?;
            TorchSchedule::ExponentialLR {
                gamma: args.take("gamma")?.ok_or("no gamma")?,
            }
        }
        "torch.optim.lr_scheduler.CosineAnnealingLR" => {
            resumed(&mut args)?;
            TorchSchedule::CosineAnnealingLR {
                t_max: whole(args.take("T_max")?, "T_max")?,
                eta_min: args.take("eta_min")?.unwrap_or(0.0),
            }
        }
        "torch.optim.lr_scheduler.CosineAnnealingWarmRestarts" => {
            resumed(&mut args)?;
            TorchSchedule::CosineAnnealingWarmRestarts {
                t_0: whole(args.take("T_0")?, "T_0")?,
                t_mult: args.take("T_mult")?.map_or(1, |m| m as u64),
                eta_min: args.take("eta_min")?.unwrap_or(0.0),
            }
        }
        "torch.optim.lr_scheduler.LinearLR" => {
            resumed(&mut args)?;
            TorchSchedule::LinearLR {
                start_factor: args.take("start_factor")?.unwrap_or(1.0 / 3.0),
                end_factor: args.take("end_factor")?.unwrap_or(1.0),
                total_iters: args.take("total_iters")?.map_or(5, |t| t as u64),
            }
        }
        "torch.optim.lr_scheduler.ConstantLR" => {
            resumed(&mut args)?;
            TorchSchedule::ConstantLR {
                factor: args.take("factor")?.unwrap_or(1.0 / 3.0),
                total_iters: args.take("total_iters")?.map_or(5, |t| t as u64),
            }
        }
        "torch.optim.lr_scheduler.PolynomialLR" => {
            resumed(&mut args)?;
            TorchSchedule::PolynomialLR {
                total_iters: args.take("total_iters")?.map_or(5, |t| t as u64),
                power: args.take("power")?.unwrap_or(1.0),
            }
        }
        "torch.optim.lr_scheduler.SequentialLR" => {
            resumed(&mut args)?;
            let schedules = args
                .0
                .remove("schedulers")
                .and_then(|v| v.as_array().cloned())
                .ok_or("SequentialLR without schedulers")?
                .iter()
                .map(|child| {
                    let class = child["class"].as_str().unwrap_or_default();
                    let described = serde_json::json!({
                        "class": format!("torch.optim.lr_scheduler.{class}"),
                        "args": child["args"],
                    });
                    scheduler(&described)?.ok_or_else(|| "an empty child".to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let milestones = args.list("milestones")?.ok_or("no milestones")?;
            TorchSchedule::Sequential {
                schedules,
                milestones: milestones.into_iter().map(|m| m as u64).collect(),
            }
        }
        "torch.optim.lr_scheduler.ReduceLROnPlateau" => {
            let d = Plateau::default();
            let minimize = match args.text("mode")?.as_deref() {
                Some("min") | None => true,
                Some("max") => false,
                Some(other) => return Err(format!("mode {other}")),
            };
            let relative = match args.text("threshold_mode")?.as_deref() {
                Some("rel") | None => true,
                Some("abs") => false,
                Some(other) => return Err(format!("threshold_mode {other}")),
            };
            TorchSchedule::ReduceLROnPlateau(
                Plateau::default()
                    .minimize(minimize)
                    .relative(relative)
                    .factor(args.take("factor")?.unwrap_or(d.factor))
                    .patience(args.take("patience")?.map_or(d.patience, |p| p as u64))
                    .threshold(args.take("threshold")?.unwrap_or(d.threshold))
                    .cooldown(args.take("cooldown")?.map_or(d.cooldown, |c| c as u64))
                    .min_lr(args.take("min_lr")?.unwrap_or(d.min_lr))
                    .eps(args.take("eps")?.unwrap_or(d.eps)),
            )
        }
        other => return Err(format!("ndoptim lacks the scheduler {other}")),
    };
    args.finish()?;
    Ok(Some(schedule))
}

/// A whole-number argument a schedule needs.
pub(crate) fn whole(v: Option<f64>, name: &str) -> Result<u64, String> {
    v.map(|v| v as u64).ok_or_else(|| format!("no {name}"))
}

/// The custom `scale_fn`s the generated files name by formula.
pub(crate) fn scale_fn(formula: &str) -> Result<fn(f64) -> f64, String> {
    fn inverse(x: f64) -> f64 {
        1.0 / (1.0 + 0.1 * x)
    }
    fn geometric(x: f64) -> f64 {
        0.9f64.powf(x)
    }
    match formula {
        "1 / (1 + 0.1 x)" => Ok(inverse),
        "0.9 ** x" => Ok(geometric),
        other => Err(format!("scale_fn {other} is not replayed")),
    }
}

/// Refuses a scheduler resumed from an epoch (PyTorch's `last_epoch` other than -1).
pub(crate) fn resumed(args: &mut Hyper) -> Result<(), String> {
    match args.take("last_epoch")? {
        Some(-1.0) | None => Ok(()),
        Some(e) => Err(format!("scheduler resumed from epoch {e}")),
    }
}

/// PyTorch's `cycle_momentum`, `base_momentum` and `max_momentum`, with its defaults.
pub(crate) fn cycle_momentum(
    args: &mut Hyper,
    defaults: CycleMomentum,
) -> Result<Option<CycleMomentum>, String> {
    let base_momentum = args
        .take("base_momentum")?
        .unwrap_or(defaults.base_momentum);
    let max_momentum = args.take("max_momentum")?.unwrap_or(defaults.max_momentum);
    Ok(args
        .flag("cycle_momentum")?
        .unwrap_or(true)
        .then_some(CycleMomentum {
            base_momentum,
            max_momentum,
        }))
}

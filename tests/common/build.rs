//! The optimizer a reference file names, with its hyperparameters: PyTorch's, the book's and
//! optax's (torch-optimi's in `optimi`).

#[allow(unused_imports)]
use super::*;

/// The options `weight_decay` and `maximize` (and `decoupled_weight_decay` where offered).
macro_rules! gradient_options {
    ($h:ident, $o:expr) => {{
        let o = opt($h.take("weight_decay")?, $o, |o, v| o.weight_decay(v));
        opt($h.flag("maximize")?, o, |o, v| o.maximize(v))
    }};
    ($h:ident, $o:expr, decoupled) => {{
        let o = gradient_options!($h, $o);
        opt($h.flag("decoupled_weight_decay")?, o, |o, v| {
            o.decoupled_weight_decay(v)
        })
    }};
}

/// `betas` as a pair.
macro_rules! betas {
    ($h:ident, $o:expr) => {
        opt($h.numbers("betas")?, $o, |o, (b1, b2)| o.betas(b1, b2))
    };
}

/// The arguments of prodigyopt and dadaptation that ndoptim does not offer
/// (`ndoptim::references`): only their defaults replay.
fn dadaptation_defaults(h: &mut Hyper) -> Result<(), String> {
    if h.flag("fsdp_in_use")?.unwrap_or(false) || h.take("log_every")?.unwrap_or(0.0) != 0.0 {
        return Err("ndoptim does not offer fsdp_in_use or log_every".into());
    }
    Ok(())
}

/// The optimizer a reference file names, with its hyperparameters.
pub fn build<F: Scalar>(
    reference: &str,
    name: &str,
    hyper: &Value,
) -> Result<Box<dyn Optimizer<F>>, String> {
    let mut h = Hyper::new(hyper);
    if reference.starts_with("optax") {
        let o = build_optax::<F>(name, &mut h)?;
        h.finish()?;
        return Ok(o);
    }
    if reference.starts_with("C-Optim") {
        let o = build_c_optim::<F>(name, &mut h)?;
        h.finish()?;
        return Ok(o);
    }
    if reference.starts_with("optimi") {
        // kahan_sum acts on low-precision parameters only.
        let o: Box<dyn Optimizer<F>> = match name {
            "SGD" => Box::new(optimi::sgd::<F>(&mut h)?.0),
            "Adam" => Box::new(optimi::adam::<F>(&mut h, false)?.0),
            "AdamW" => Box::new(optimi::adam::<F>(&mut h, true)?.0),
            "RAdam" => Box::new(optimi::radam::<F>(&mut h, false)?.0),
            "Lion" => Box::new(optimi::lion::<F>(&mut h)?.0),
            "Ranger" => Box::new(optimi::ranger::<F>(&mut h)?.0),
            "StableAdamW" => Box::new(optimi::stable_adamw::<F>(&mut h)?.0),
            "Adan" => Box::new(optimi::adan::<F>(&mut h)?.0),
            other => return Err(format!("ndoptim lacks optimi.{other}")),
        };
        h.finish()?;
        return Ok(o);
    }
    let lr = h.take("lr")?;
    let book = reference.starts_with("book");
    if !book {
        h.implementation()?;
    }
    let o: Box<dyn Optimizer<F>> = match (book, name) {
        (true, "SGD") => Box::new(opt(lr, Sgd::<F>::default(), Sgd::lr)),
        (true, "Momentum") => {
            let o = opt(lr, Momentum::<F>::default(), Momentum::lr);
            Box::new(opt(h.take("momentum")?, o, Momentum::momentum))
        }
        (true, "Nesterov") => {
            let o = opt(lr, Nesterov::<F>::default(), Nesterov::lr);
            Box::new(opt(h.take("momentum")?, o, Nesterov::momentum))
        }
        (true, "AdaGrad") => Box::new(opt(lr, AdaGrad::<F>::default(), AdaGrad::lr)),
        (true, "RMSprop") => {
            let o = opt(lr, RmsProp::<F>::default(), RmsProp::lr);
            Box::new(opt(h.take("decay_rate")?, o, RmsProp::decay_rate))
        }
        (true, "Adam") => {
            let o = opt(lr, Adam::<F>::default(), Adam::lr);
            let o = opt(h.take("beta1")?, o, Adam::beta1);
            Box::new(opt(h.take("beta2")?, o, Adam::beta2))
        }
        (false, "SGD") => {
            let o = opt(lr, Sgd::<F>::default(), Sgd::lr);
            let o = opt(h.take("momentum")?, o, Sgd::momentum);
            let o = opt(h.take("dampening")?, o, Sgd::dampening);
            let o = opt(h.flag("nesterov")?, o, Sgd::nesterov);
            Box::new(gradient_options!(h, o))
        }
        (false, "Adam" | "AdamW") => {
            let o = if name == "Adam" {
                Adam::<F>::pytorch()
            } else {
                Adam::<F>::pytorch().decoupled_weight_decay(true)
            };
            let o = opt(lr, o, Adam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), Adam::eps);
            let o = opt(h.flag("amsgrad")?, o, Adam::amsgrad);
            Box::new(gradient_options!(h, o, decoupled))
        }
        (false, "Adagrad") => {
            let o = opt(lr, AdaGrad::<F>::pytorch(), AdaGrad::lr);
            let o = opt(h.take("eps")?, o, AdaGrad::eps);
            let o = opt(h.take("lr_decay")?, o, AdaGrad::lr_decay);
            let o = opt(
                h.take("initial_accumulator_value")?,
                o,
                AdaGrad::initial_accumulator_value,
            );
            Box::new(gradient_options!(h, o))
        }
        (false, "RMSprop") => {
            let o = opt(lr, RmsProp::<F>::pytorch(), RmsProp::lr);
            let o = opt(h.take("alpha")?, o, RmsProp::alpha);
            let o = opt(h.take("eps")?, o, RmsProp::eps);
            let o = opt(h.take("momentum")?, o, RmsProp::momentum);
            let o = opt(h.flag("centered")?, o, RmsProp::centered);
            Box::new(gradient_options!(h, o))
        }
        (false, "NAdam") => {
            let o = opt(lr, NAdam::<F>::default(), NAdam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), NAdam::eps);
            let o = opt(h.take("momentum_decay")?, o, NAdam::momentum_decay);
            Box::new(gradient_options!(h, o, decoupled))
        }
        (false, "Prodigy") => {
            let o = opt(lr, Prodigy::<F>::default(), Prodigy::lr);
            let o = opt(h.take("beta3")?, betas!(h, o), |o, b| o.beta3(Some(b)));
            let o = opt(h.take("eps")?, o, Prodigy::eps);
            let o = opt(h.take("weight_decay")?, o, Prodigy::weight_decay);
            let o = opt(h.flag("decouple")?, o, Prodigy::decouple);
            let o = opt(
                h.flag("use_bias_correction")?,
                o,
                Prodigy::use_bias_correction,
            );
            let o = opt(h.flag("safeguard_warmup")?, o, Prodigy::safeguard_warmup);
            let o = opt(h.take("d0")?, o, Prodigy::d0);
            let o = opt(h.take("d_coef")?, o, Prodigy::d_coef);
            let o = opt(h.take("growth_rate")?, o, Prodigy::growth_rate);
            if h.take("slice_p")?.unwrap_or(1.0) != 1.0 {
                return Err("ndoptim does not offer slice_p".into());
            }
            dadaptation_defaults(&mut h)?;
            Box::new(o)
        }
        (false, "DAdaptAdam") => {
            let o = opt(lr, DAdaptAdam::<F>::default(), DAdaptAdam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), DAdaptAdam::eps);
            let o = opt(h.take("weight_decay")?, o, DAdaptAdam::weight_decay);
            let o = opt(h.flag("decouple")?, o, DAdaptAdam::decouple);
            let o = opt(
                h.flag("use_bias_correction")?,
                o,
                DAdaptAdam::use_bias_correction,
            );
            let o = opt(h.take("d0")?, o, DAdaptAdam::d0);
            let o = opt(h.take("growth_rate")?, o, DAdaptAdam::growth_rate);
            dadaptation_defaults(&mut h)?;
            Box::new(o)
        }
        (false, "DAdaptLion") => {
            let o = betas!(h, opt(lr, DAdaptLion::<F>::default(), DAdaptLion::lr));
            let o = opt(h.take("weight_decay")?, o, DAdaptLion::weight_decay);
            let o = opt(h.take("d0")?, o, DAdaptLion::d0);
            dadaptation_defaults(&mut h)?;
            Box::new(o)
        }
        (false, "DAdaptSGD") => {
            let o = opt(lr, DAdaptSgd::<F>::default(), DAdaptSgd::lr);
            let o = opt(h.take("momentum")?, o, DAdaptSgd::momentum);
            let o = opt(h.take("weight_decay")?, o, DAdaptSgd::weight_decay);
            let o = opt(h.take("d0")?, o, DAdaptSgd::d0);
            let o = opt(h.take("growth_rate")?, o, DAdaptSgd::growth_rate);
            dadaptation_defaults(&mut h)?;
            Box::new(o)
        }
        (false, "DAdaptAdaGrad") => {
            let o = opt(lr, DAdaptAdaGrad::<F>::default(), DAdaptAdaGrad::lr);
            let o = opt(h.take("momentum")?, o, DAdaptAdaGrad::momentum);
            let o = opt(h.take("eps")?, o, DAdaptAdaGrad::eps);
            let o = opt(h.take("weight_decay")?, o, DAdaptAdaGrad::weight_decay);
            let o = opt(h.take("d0")?, o, DAdaptAdaGrad::d0);
            let o = opt(h.take("growth_rate")?, o, DAdaptAdaGrad::growth_rate);
            dadaptation_defaults(&mut h)?;
            Box::new(o)
        }
        (false, "RAdam") => {
            let o = opt(lr, RAdam::<F>::default(), RAdam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), RAdam::eps);
            Box::new(gradient_options!(h, o, decoupled))
        }
        (false, "Adamax") => {
            let o = opt(lr, Adamax::<F>::default(), Adamax::lr);
            let o = opt(h.take("eps")?, betas!(h, o), Adamax::eps);
            Box::new(gradient_options!(h, o))
        }
        (false, "Adadelta") => {
            let o = opt(lr, Adadelta::<F>::default(), Adadelta::lr);
            let o = opt(h.take("rho")?, o, Adadelta::rho);
            let o = opt(h.take("eps")?, o, Adadelta::eps);
            Box::new(gradient_options!(h, o))
        }
        (false, "Rprop") => {
            let o = opt(lr, Rprop::<F>::default(), Rprop::lr);
            let o = opt(h.numbers("etas")?, o, |o, (a, b)| o.etas(a, b));
            let o = opt(h.numbers("step_sizes")?, o, |o, (a, b)| o.step_sizes(a, b));
            Box::new(opt(h.flag("maximize")?, o, Rprop::maximize))
        }
        (false, "ASGD") => {
            let o = opt(lr, Asgd::<F>::default(), Asgd::lr);
            let o = opt(h.take("lambd")?, o, Asgd::lambd);
            let o = opt(h.take("alpha")?, o, Asgd::alpha);
            let o = opt(h.take("t0")?, o, Asgd::t0);
            Box::new(gradient_options!(h, o))
        }
        (false, "Adafactor") => {
            let o = opt(lr, Adafactor::<F>::default(), Adafactor::lr);
            let o = opt(h.take("beta2_decay")?, o, Adafactor::beta2_decay);
            let o = opt(h.pair("eps")?, o, |o, [e1, e2]| {
                let o = o.eps1(e1);
                opt(e2, o, Adafactor::eps2)
            });
            let o = opt(h.take("d")?, o, Adafactor::d);
            Box::new(gradient_options!(h, o))
        }
        (false, "AdamWScheduleFree") => {
            let o = opt(lr, ScheduleFreeAdamW::<F>::default(), ScheduleFreeAdamW::lr);
            let o = opt(h.take("eps")?, betas!(h, o), ScheduleFreeAdamW::eps);
            let o = opt(h.take("r")?, o, ScheduleFreeAdamW::r);
            let o = opt(h.take("warmup_steps")?, o, |o, n| o.warmup_steps(n as u64));
            let o = opt(
                h.take("weight_lr_power")?,
                o,
                ScheduleFreeAdamW::weight_lr_power,
            );
            Box::new(opt(
                h.take("weight_decay")?,
                o,
                ScheduleFreeAdamW::weight_decay,
            ))
        }
        (false, "RAdamScheduleFree") => {
            let o = opt(lr, ScheduleFreeRAdam::<F>::default(), ScheduleFreeRAdam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), ScheduleFreeRAdam::eps);
            let o = opt(h.take("r")?, o, ScheduleFreeRAdam::r);
            let power = h.take("weight_lr_power")?;
            let o = opt(power, o, ScheduleFreeRAdam::weight_lr_power);
            let o = opt(
                h.flag("silent_sgd_phase")?,
                o,
                ScheduleFreeRAdam::silent_sgd_phase,
            );
            let decay = h.take("weight_decay")?;
            Box::new(opt(decay, o, ScheduleFreeRAdam::weight_decay))
        }
        (false, "SGDScheduleFree") => {
            let o = opt(lr, ScheduleFreeSgd::<F>::default(), ScheduleFreeSgd::lr);
            let o = opt(h.take("momentum")?, o, ScheduleFreeSgd::momentum);
            let o = opt(h.take("r")?, o, ScheduleFreeSgd::r);
            let o = opt(h.take("warmup_steps")?, o, |o, n| o.warmup_steps(n as u64));
            let o = opt(
                h.take("weight_lr_power")?,
                o,
                ScheduleFreeSgd::weight_lr_power,
            );
            Box::new(opt(
                h.take("weight_decay")?,
                o,
                ScheduleFreeSgd::weight_decay,
            ))
        }
        (false, "Muon") => {
            // Polar Express replaces the iteration (its table comes as ns_coefficients).
            let o = match reference.contains("polar_express") {
                true => Muon::<F>::polar_express(),
                false => Muon::<F>::default(),
            };
            let o = opt(lr, o, Muon::lr);
            let o = opt(h.take("weight_decay")?, o, Muon::weight_decay);
            let o = opt(h.take("momentum")?, o, Muon::momentum);
            let o = opt(h.flag("nesterov")?, o, Muon::nesterov);
            let o = match h.0.remove("ns_coefficients") {
                None => o,
                Some(v) => o.ns_schedule(coefficient_rows(v)?),
            };
            let o = opt(h.take("eps")?, o, Muon::eps);
            let o = opt(h.take("ns_steps")?, o, |o, n| o.ns_steps(n as usize));
            let o = match h.text("adjust_lr_fn")?.as_deref() {
                None | Some("original") => o.adjust_lr(AdjustLr::Original),
                Some("match_rms_adamw") => o.adjust_lr(AdjustLr::MatchRmsAdamW),
                Some("spectral_unclamped") => o.adjust_lr(AdjustLr::SpectralUnclamped),
                Some(f) => return Err(format!("adjust_lr_fn {f} is unknown")),
            };
            Box::new(o)
        }
        (false, "SOAP") => Box::new(opt(lr, soap::<F>(&mut h)?, Soap::lr)),
        (false, "SingleDeviceNorMuon" | "SingleDeviceNorMuonWithAuxAdam") => {
            Box::new(normuon::<F>(lr, &mut h)?)
        }
        _ => return Err(format!("ndoptim lacks optimizer {name} of {reference}")),
    };
    h.finish()?;
    Ok(o)
}

/// NorMuon's optimizers: flat hyperparameters, or `{"muon": {...}, "adam": {...}}` with the
/// auxiliary Adam's.
fn normuon<F: Scalar>(lr: Option<f64>, h: &mut Hyper) -> Result<Muon<F>, String> {
    let (muon, adam) = (h.0.remove("muon"), h.0.remove("adam"));
    let mut m = muon
        .as_ref()
        .map_or(Hyper(std::mem::take(&mut h.0)), Hyper::new);
    let o = opt(lr.or(m.take("lr")?), Muon::<F>::normuon(), Muon::lr);
    let o = opt(m.take("weight_decay")?, o, Muon::weight_decay);
    let o = opt(m.take("momentum")?, o, Muon::momentum);
    let o = opt(m.take("beta2")?, o, |o, b| o.neuron_beta2(Some(b)));
    m.finish()?;
    let Some(adam) = adam else { return Ok(o) };
    let mut a = Hyper::new(&adam);
    let o = opt(a.take("lr")?, o, |o, lr| o.adam_lr(Some(lr)));
    let o = opt(a.numbers("betas")?, o, |o, (b1, b2)| o.adam_betas(b1, b2));
    let o = opt(a.take("eps")?, o, Muon::adam_eps);
    let o = opt(a.take("weight_decay")?, o, Muon::adam_weight_decay);
    a.finish()?;
    Ok(o)
}

/// Newton–Schulz coefficients: one row `(a, b, c)` or a table of them, `(n, 3)`.
fn coefficient_rows(v: Value) -> Result<Vec<[f64; 3]>, String> {
    let rows: Vec<Vec<f64>> = serde_json::from_value::<Vec<Vec<f64>>>(v.clone())
        .or_else(|_| serde_json::from_value::<Vec<f64>>(v).map(|r| vec![r]))
        .map_err(|e| e.to_string())?;
    rows.iter()
        .map(|r| <[f64; 3]>::try_from(r.as_slice()).map_err(|e| e.to_string()))
        .collect()
}

/// C-Optim's cautious `AdamW` and `Lion`: [`Cautious`] chains.
fn build_c_optim<F: Scalar>(name: &str, h: &mut Hyper) -> Result<Box<dyn Optimizer<F>>, String> {
    let lr = h.take("lr")?;
    let betas = h.numbers("betas")?.map(|(b1, b2)| [b1, b2]);
    let decay = AddDecayedWeights::new(h.take("weight_decay")?.unwrap_or(0.0));
    Ok(match name {
        "AdamW" => {
            h.flag("no_deprecation_warning")?;
            // foreach=True is a torch.compile'd variant with PyTorch's ε and no correct_bias.
            if h.flag("foreach")? == Some(true) || h.flag("fused")? == Some(true) {
                return Err("C-Optim's foreach and fused variants are not replayed".into());
            }
            let debias = match h.flag("correct_bias")? {
                Some(false) => Debias::Off,
                _ => Debias::StepSize,
            };
            let adam = ScaleByAdam::default()
                .betas(betas.unwrap_or([0.9, 0.999]))
                .eps(h.take("eps")?.unwrap_or(1e-6))
                .debias(debias);
            chained(lr, chain!(Cautious::new(adam), decay, ScaleByLearningRate))
        }
        "Lion" => {
            let lion = ScaleByLion::default().betas(betas.unwrap_or([0.95, 0.98]));
            let cautious = Cautious::new(lion).rescale(Rescale::Count);
            chained(lr, chain!(cautious, decay, ScaleByLearningRate))
        }
        other => return Err(format!("C-Optim's {other} is not replayed")),
    })
}

/// `b1`/`b2` as optax names them.
macro_rules! optax_betas {
    ($h:ident, $o:expr) => {{
        let o = opt($h.take("b1")?, $o, |o, v| o.beta1(v));
        opt($h.take("b2")?, o, |o, v| o.beta2(v))
    }};
}

/// The optimizer made of `chain`, at learning rate `lr` if the file gives one.
pub(crate) fn chained<F: Scalar, T: Transform<F> + 'static>(
    lr: Option<f64>,
    chain: T,
) -> Box<dyn Optimizer<F>> {
    Box::new(opt(lr, transform::optimizer::<_, F>(chain), Engine::lr))
}

/// An optax optimizer (`optax.<alias>` or `optax.contrib.<alias>`) with its arguments.
pub(crate) fn build_optax<F: Scalar>(
    name: &str,
    h: &mut Hyper,
) -> Result<Box<dyn Optimizer<F>>, String> {
    let lr = h.take("learning_rate")?;
    h.null("mask")?;
    h.null("mu_dtype")?;
    let o: Box<dyn Optimizer<F>> = match name {
        "sgd" => {
            h.null("accumulator_dtype")?;
            // optax's trace (`t = g + momentum t`, update `-lr t`), in its fused arithmetic.
            let o = opt(lr, Sgd::<F>::optax(), Sgd::lr);
            let o = opt(h.take("momentum")?, o, Sgd::momentum);
            Box::new(match h.flag("nesterov")? {
                Some(n) => o.nesterov(n),
                None => o,
            })
        }
        // optax's aliases that are chains are ndoptim's same chains.
        "adam" | "adamw" | "nadamw" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let adam = ScaleByAdam::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.999)]);
            let adam = opt(h.take("eps")?, adam, ScaleByAdam::eps);
            let adam = opt(h.take("eps_root")?, adam, ScaleByAdam::eps_root);
            let nesterov = h.flag("nesterov")?.unwrap_or(name == "nadamw");
            let decay = match name {
                "adam" => None,
                _ => Some(AddDecayedWeights::new(
                    h.take("weight_decay")?.unwrap_or(1e-4),
                )),
            };
            match (nesterov, decay) {
                (false, None) => chained(lr, chain!(adam, ScaleByLearningRate)),
                (true, None) => chained(lr, chain!(ScaleByNadam(adam), ScaleByLearningRate)),
                (false, Some(d)) => chained(lr, chain!(adam, d, ScaleByLearningRate)),
                (true, Some(d)) => chained(lr, chain!(ScaleByNadam(adam), d, ScaleByLearningRate)),
            }
        }
        "amsgrad" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let adam = ScaleByAdam::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.999)]);
            let adam = opt(h.take("eps")?, adam, ScaleByAdam::eps);
            let adam = opt(h.take("eps_root")?, adam, ScaleByAdam::eps_root);
            let mu = h.flag("bias_correction_mu")?.unwrap_or(true);
            let nu = h.flag("bias_correction_nu")?.unwrap_or(true);
            let amsgrad = ScaleByAmsgrad::new(adam).bias_correction(mu, nu);
            chained(lr, chain!(amsgrad, ScaleByLearningRate))
        }
        "radam" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let adam = ScaleByAdam::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.999)]);
            let adam = opt(h.take("eps")?, adam, ScaleByAdam::eps);
            let adam = opt(h.take("eps_root")?, adam, ScaleByAdam::eps_root);
            let radam = ScaleByRadam::new(adam);
            let radam = opt(h.take("threshold")?, radam, ScaleByRadam::threshold);
            let radam = radam.nesterov(h.flag("nesterov")?.unwrap_or(false));
            chained(lr, chain!(radam, ScaleByLearningRate))
        }
        "adamaxw" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let adamax = ScaleByAdamax::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.999)]);
            let adamax = opt(h.take("eps")?, adamax, ScaleByAdamax::eps);
            let decay = AddDecayedWeights::new(h.take("weight_decay")?.unwrap_or(1e-4));
            chained(lr, chain!(adamax, decay, ScaleByLearningRate))
        }
        "optimistic_gradient_descent" => {
            let optimism = ScaleByOptimisticGradient {
                alpha: h.take("alpha")?.unwrap_or(1.0),
                beta: h.take("beta")?.unwrap_or(1.0),
            };
            chained(lr, chain!(optimism, ScaleByLearningRate))
        }
        // v1 reads its learning rate as α and its optimism (by default the rate) as β, and
        // only flips the sign after; v2 takes α and β and scales by the rate.
        "optimistic_adam" | "optimistic_adam_v2" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let adam = ScaleByAdam::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.999)]);
            let adam = opt(h.take("eps")?, adam, ScaleByAdam::eps);
            let adam = opt(h.take("eps_root")?, adam, ScaleByAdam::eps_root);
            let nesterov = h.flag("nesterov")?.unwrap_or(true);
            let v1 = name == "optimistic_adam";
            let optimism = if v1 {
                let rate = lr.ok_or("optimistic_adam needs its learning rate")?;
                ScaleByOptimisticGradient {
                    alpha: rate,
                    beta: h.take("optimism")?.unwrap_or(rate),
                }
            } else {
                ScaleByOptimisticGradient {
                    alpha: h.take("alpha")?.unwrap_or(1.0),
                    beta: h.take("beta")?.unwrap_or(1.0),
                }
            };
            match (nesterov, v1) {
                (true, true) => chained(lr, chain!(ScaleByNadam(adam), optimism, Scale(-1.0))),
                (false, true) => chained(lr, chain!(adam, optimism, Scale(-1.0))),
                (true, false) => chained(
                    lr,
                    chain!(ScaleByNadam(adam), optimism, ScaleByLearningRate),
                ),
                (false, false) => chained(lr, chain!(adam, optimism, ScaleByLearningRate)),
            }
        }
        "sign_sgd" => chained(lr, chain!(ScaleBySign, ScaleByLearningRate)),
        "polyak_sgd" => {
            // optax's `sgd(learning_rate=scaling)` first: the scaling is the learning rate.
            let o = opt(h.take("scaling")?, PolyakSgd::<F>::default(), PolyakSgd::lr);
            let o = opt(
                h.take("max_learning_rate")?,
                o,
                PolyakSgd::max_learning_rate,
            );
            let o = opt(h.take("f_min")?, o, PolyakSgd::f_min);
            let o = opt(h.take("eps")?, o, PolyakSgd::eps);
            Box::new(match h.text("variant")?.as_deref() {
                None | Some("sps") => o,
                Some("sps+") => o.variant(PolyakVariant::SpsPlus),
                Some(v) => return Err(format!("variant {v} is unknown")),
            })
        }
        "signum" => {
            h.null("accumulator_dtype")?;
            let ema = Ema::new(h.take("beta")?.unwrap_or(0.9)).debias(false);
            chained(lr, chain!(ema, ScaleBySign, ScaleByLearningRate))
        }
        "lion" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let lion = ScaleByLion::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.99)]);
            let decay = AddDecayedWeights::new(h.take("weight_decay")?.unwrap_or(1e-3));
            chained(lr, chain!(lion, decay, ScaleByLearningRate))
        }
        "adan" => {
            let o = opt(lr, Adan::<F>::default(), Adan::lr);
            let o = opt(h.take("b1")?, o, Adan::b1);
            let o = opt(h.take("b2")?, o, Adan::b2);
            let o = opt(h.take("b3")?, o, Adan::b3);
            let o = opt(h.take("eps")?, o, Adan::eps);
            let o = opt(h.take("eps_root")?, o, Adan::eps_root);
            Box::new(opt(h.take("weight_decay")?, o, Adan::weight_decay))
        }
        "adabelief" => {
            let o = optax_betas!(h, opt(lr, AdaBelief::<F>::default(), AdaBelief::lr));
            let o = opt(h.take("eps")?, o, AdaBelief::eps);
            let o = opt(h.take("eps_root")?, o, AdaBelief::eps_root);
            Box::new(opt(h.flag("nesterov")?, o, AdaBelief::nesterov))
        }
        "adopt" => {
            let o = optax_betas!(h, opt(lr, Adopt::<F>::default(), Adopt::lr));
            let o = opt(h.take("eps")?, o, Adopt::eps);
            let o = opt(h.flag("nesterov")?, o, Adopt::nesterov);
            let clip = match h.text("clip_value_fn")? {
                Some(f) if f.starts_with("lambda x: x**0.25") => Some(0.25),
                Some(f) => return Err(format!("clip_value_fn {f} is not replayed")),
                None => Some(0.25),
            };
            let clip = if h.flag("use_clipping")? == Some(false) {
                None
            } else {
                clip
            };
            Box::new(o.clip_exponent(clip))
        }
        "yogi" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let yogi = ScaleByYogi::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.999)]);
            chained(
                lr,
                chain!(
                    opt(h.take("eps")?, yogi, ScaleByYogi::eps),
                    ScaleByLearningRate
                ),
            )
        }
        "novograd" => {
            let [b1, b2] = [h.take("b1")?, h.take("b2")?];
            let novograd =
                ScaleByNovograd::default().betas([b1.unwrap_or(0.9), b2.unwrap_or(0.25)]);
            let novograd = opt(h.take("eps")?, novograd, ScaleByNovograd::eps);
            let novograd = opt(h.take("eps_root")?, novograd, ScaleByNovograd::eps_root);
            let novograd = opt(
                h.take("weight_decay")?,
                novograd,
                ScaleByNovograd::weight_decay,
            );
            chained(lr, chain!(novograd, ScaleByLearningRate))
        }
        "sm3" => {
            let o = opt(lr, Sm3::<F>::default(), Sm3::lr);
            let o = opt(h.take("momentum")?, o, Sm3::momentum);
            let o = opt(h.take("b2")?, o, Sm3::beta2);
            Box::new(opt(h.take("eps")?, o, Sm3::eps))
        }
        "fromage" => {
            let min_norm = h.take("min_norm")?.unwrap_or(1e-6);
            chained(
                lr,
                chain!(
                    ScaleByTrustRatio::default().min_norm(min_norm),
                    ScaleByFromage
                ),
            )
        }
        "cocob" => {
            let cocob = opt(
                h.take("alpha")?,
                ScaleByCocob::default(),
                ScaleByCocob::alpha,
            );
            let cocob = opt(h.take("eps")?, cocob, ScaleByCocob::eps);
            let decay = AddDecayedWeights::new(h.take("weight_decay")?.unwrap_or(0.0));
            chained(lr, chain!(decay, cocob))
        }
        "madgrad" => {
            let madgrad = opt(
                h.take("momentum")?,
                ScaleByMadgrad::default(),
                ScaleByMadgrad::momentum,
            );
            let madgrad = opt(h.take("eps")?, madgrad, ScaleByMadgrad::eps);
            let decay = AddDecayedWeights::new(h.take("weight_decay")?.unwrap_or(0.0));
            chained(lr, chain!(decay, madgrad))
        }
        "dog" => {
            let o = opt(lr, Dog::<F>::default(), Dog::lr);
            let init = match h.named_number("init_step")? {
                None => None,
                Some((kind, v)) => Some(match kind.as_str() {
                    "distance" => DogInit::Distance(v),
                    "heuristic" => DogInit::Heuristic(v),
                    "learning_rate" => DogInit::LearningRate(v),
                    other => return Err(format!("init_step {other}")),
                }),
            };
            let o = opt(h.take("eps")?, opt(init, o, Dog::init_step), Dog::eps);
            Box::new(opt(h.take("weight_decay")?, o, Dog::weight_decay))
        }
        "dowg" => {
            let o = opt(lr, Dowg::<F>::default(), Dowg::lr);
            let o = opt(h.take("init_estim_sq_dist")?, o, Dowg::init_estim_sq_dist);
            let o = opt(h.take("eps")?, o, Dowg::eps);
            Box::new(opt(h.take("weight_decay")?, o, Dowg::weight_decay))
        }
        "prodigy" => {
            let o = opt(lr, Prodigy::<F>::optax(), Prodigy::lr);
            let o = opt(h.take("beta3")?, betas!(h, o), |o, b| o.beta3(Some(b)));
            let o = opt(h.take("eps")?, o, Prodigy::eps);
            let o = opt(h.take("estim_lr0")?, o, Prodigy::d0);
            let o = opt(h.take("estim_lr_coef")?, o, Prodigy::d_coef);
            let o = opt(h.take("weight_decay")?, o, Prodigy::weight_decay);
            Box::new(opt(
                h.flag("safeguard_warmup")?,
                o,
                Prodigy::safeguard_warmup,
            ))
        }
        "dadapt_adamw" => {
            let o = opt(lr, DAdaptAdam::<F>::optax(), DAdaptAdam::lr);
            let o = opt(h.take("eps")?, betas!(h, o), DAdaptAdam::eps);
            let o = opt(h.take("estim_lr0")?, o, DAdaptAdam::d0);
            Box::new(opt(h.take("weight_decay")?, o, DAdaptAdam::weight_decay))
        }
        "ademamix" => {
            let o = optax_betas!(h, opt(lr, AdEMAMix::<F>::default(), AdEMAMix::lr));
            let o = opt(h.take("b3")?, o, AdEMAMix::b3);
            let o = opt(h.take("alpha")?, o, AdEMAMix::alpha);
            let o = opt(h.take("eps")?, o, AdEMAMix::eps);
            let o = opt(h.take("eps_root")?, o, AdEMAMix::eps_root);
            Box::new(opt(h.take("weight_decay")?, o, AdEMAMix::weight_decay))
        }
        "lamb" => {
            let o = optax_betas!(h, opt(lr, Lamb::<F>::default(), Lamb::lr));
            let o = opt(h.take("eps")?, o, Lamb::eps);
            let o = opt(h.take("eps_root")?, o, Lamb::eps_root);
            Box::new(opt(h.take("weight_decay")?, o, Lamb::weight_decay))
        }
        "lars" => {
            let o = opt(lr, Lars::<F>::default(), Lars::lr);
            let o = opt(h.take("weight_decay")?, o, Lars::weight_decay);
            let o = opt(h.take("trust_coefficient")?, o, Lars::trust_coefficient);
            let o = opt(h.take("eps")?, o, Lars::eps);
            let o = opt(h.take("momentum")?, o, Lars::momentum);
            let o = opt(h.flag("nesterov")?, o, Lars::nesterov);
            // Masks are groups here; the files use optax's default, every key.
            for mask in ["weight_decay_mask", "trust_ratio_mask"] {
                if h.flag(mask)? == Some(false) {
                    return Err(format!("{mask}=false is not replayed"));
                }
            }
            Box::new(o)
        }
        "muon" => {
            let o = opt(lr, Muon::<F>::optax(), Muon::lr);
            let o = match h.0.remove("ns_coeffs") {
                None => o,
                Some(v) => o.ns_schedule(coefficient_rows(v)?),
            };
            let o = opt(h.take("ns_steps")?, o, |o, n| o.ns_steps(n as usize));
            let o = opt(h.take("beta")?, o, Muon::momentum);
            let o = opt(h.take("eps")?, o, Muon::eps);
            let o = opt(h.take("weight_decay")?, o, Muon::weight_decay);
            let o = opt(h.flag("nesterov")?, o, Muon::nesterov);
            let o = opt(h.flag("adaptive")?, o, Muon::adaptive);
            let o = opt(h.numbers_of(["adam_b1", "adam_b2"])?, o, |o, [a, b]| {
                o.adam_betas(a, b)
            });
            let o = opt(h.take("adam_eps_root")?, o, Muon::adam_eps_root);
            let o = opt(h.take("adam_weight_decay")?, o, Muon::adam_weight_decay);
            let o = opt(h.take("consistent_rms")?, o, |o, v| {
                o.consistent_rms(Some(v))
            });
            let o = opt(h.take("adam_learning_rate")?, o, |o, v| o.adam_lr(Some(v)));
            h.null("weight_decay_mask")?;
            h.null("muon_weight_dimension_numbers")?;
            let o = match h.text("preconditioning")?.as_deref() {
                None | Some("frobenius") => o,
                Some("aol") => o.preconditioning(Preconditioning::Aol),
                Some("schatten") => o.preconditioning(Preconditioning::Schatten),
                Some(p) => return Err(format!("preconditioning {p} is not offered")),
            };
            Box::new(o)
        }
        _ => return Err(format!("ndoptim lacks optimizer optax {name}")),
    };
    Ok(o)
}

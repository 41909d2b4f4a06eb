//! The optimizers generic tests run over: the crate's registry, and option combinations beyond
//! its defaults.

#[allow(unused_imports)]
use super::*;

/// Runs `$body` once for each optimizer of the crate, with `$o` bound to it (element type `$F`):
/// the registry's ([`ndoptim::each_optimizer!`]), then the option combinations that change the
/// state or the arithmetic, and a chain of transforms.
#[macro_export]
macro_rules! with_each_optimizer {
    ($F:ty, |$o:ident| $body:expr) => {{
        use ndoptim::*;
        ndoptim::each_optimizer!($F, |_label, _arrays, $o| $body);
        {
            let $o = Sgd::<$F>::default()
                .momentum(0.9)
                .nesterov(true)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = Sgd::<$F>::default()
                .momentum(0.9)
                .ema_momentum(true)
                .torch_init(true)
                .weight_decay(0.01)
                .fully_decoupled_weight_decay(Some(0.1));
            $body;
        }
        {
            let $o = Sgd::<$F>::optax().momentum(0.9);
            $body;
        }
        {
            let $o = AdaGrad::<$F>::pytorch()
                .lr_decay(0.01)
                .initial_accumulator_value(0.1);
            $body;
        }
        {
            let $o = RmsProp::<$F>::pytorch()
                .momentum(0.9)
                .centered(true)
                .maximize(true);
            $body;
        }
        {
            let $o = Adam::<$F>::pytorch().amsgrad(true).weight_decay(0.01);
            $body;
        }
        {
            let $o = AdamW::<$F>::optimi().fully_decoupled_weight_decay(Some(0.01));
            $body;
        }
        {
            let $o = RAdam::<$F>::optimi().weight_decay(0.01);
            $body;
        }
        {
            let $o = RAdam::<$F>::default()
                .decoupled_weight_decay(true)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = Adafactor::<$F>::default().weight_decay(0.01);
            $body;
        }
        {
            let $o = Lion::<$F>::default().weight_decay(0.1);
            $body;
        }
        {
            let $o = Lion::<$F>::optimi().weight_decay(0.1);
            $body;
        }
        {
            let $o = Adan::<$F>::default().weight_decay(0.02);
            $body;
        }
        {
            let $o = Adan::<$F>::optimi().fully_decoupled_weight_decay(Some(0.1));
            $body;
        }
        {
            let $o = Adan::<$F>::optimi().adam_wd(true);
            $body;
        }
        {
            let $o = Ranger::<$F>::default().k(2).weight_decay(0.01);
            $body;
        }
        {
            let $o = AdaBelief::<$F>::default().nesterov(true);
            $body;
        }
        {
            let $o = AdEMAMix::<$F>::default().weight_decay(0.01);
            $body;
        }
        {
            let $o = Lamb::<$F>::default().weight_decay(0.01);
            $body;
        }
        {
            let $o = Lars::<$F>::default().nesterov(true).weight_decay(0.01);
            $body;
        }
        {
            // A chain of most built-in transforms, through every generic test.
            use ndoptim::transform as tx;
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::ScaleByNadam(tx::ScaleByAdam::default().eps_root(1e-12)),
                tx::AddDecayedWeights::new(0.01),
                tx::Clip::new(0.5),
                tx::ScaleByLearningRate,
                tx::Trace::new(0.5),
            ));
            $body;
        }
        {
            // optax's yogi, novograd (a per-key reduction), fromage, cocob and madgrad.
            use ndoptim::transform as tx;
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::ScaleByYogi::default(),
                tx::ScaleByLearningRate
            ));
            $body;
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::ScaleByNovograd::default().weight_decay(0.01),
                tx::ScaleByLearningRate
            ));
            $body;
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::ScaleByTrustRatio::default().min_norm(1e-6),
                tx::ScaleByFromage
            ));
            $body;
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::AddDecayedWeights::new(0.01),
                tx::ScaleByCocob::default()
            ));
            $body;
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::AddDecayedWeights::new(0.01),
                tx::ScaleByMadgrad::default()
            ));
            $body;
            // Cautious masking around another direction, rescaled by the count; Adam uncorrected.
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::Cautious::new(tx::ScaleByYogi::default()).rescale(tx::Rescale::Count),
                tx::ScaleByLearningRate
            ));
            $body;
            let $o = tx::optimizer::<_, $F>(ndoptim::chain!(
                tx::Cautious::new(tx::ScaleByAdam::default().debias(tx::Debias::Off))
                    .rescale(tx::Rescale::Mean { floor: 0.1 }),
                tx::AddDecayedWeights::new(0.01),
                tx::ScaleByLearningRate
            ));
            $body;
        }
        {
            let $o = Muon::<$F>::optax().weight_decay(0.01).adaptive(true);
            $body;
        }
        {
            // Its loss is set once: every update divides the same gap.
            let $o = ndoptim::PolyakSgd::<$F>::default()
                .loss(1.0)
                .f_min(0.1)
                .variant(ndoptim::PolyakVariant::SpsPlus);
            $body;
        }
        {
            let $o = ScheduleFreeAdamW::<$F>::default()
                .warmup_steps(3)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = ScheduleFreeSgd::<$F>::default().lr(0.1);
            $body;
        }
        {
            let $o = ScheduleFreeRAdam::<$F>::default()
                .silent_sgd_phase(false)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = Prodigy::<$F>::default()
                .betas(0.0, 0.99)
                .decouple(false)
                .weight_decay(0.01)
                .use_bias_correction(true);
            $body;
        }
        {
            let $o = Prodigy::<$F>::default()
                .safeguard_warmup(true)
                .growth_rate(1.02)
                .d_coef(2.0)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = Prodigy::<$F>::optax().weight_decay(0.01);
            $body;
        }
        {
            let $o = DAdaptAdam::<$F>::default()
                .weight_decay(0.01)
                .use_bias_correction(true)
                .growth_rate(1.02);
            $body;
        }
        {
            let $o = DAdaptAdam::<$F>::optax().weight_decay(0.01);
            $body;
        }
        {
            let $o = DAdaptLion::<$F>::default().weight_decay(0.01);
            $body;
        }
        {
            let $o = DAdaptSgd::<$F>::default()
                .momentum(0.9)
                .weight_decay(0.01)
                .growth_rate(1.02);
            $body;
        }
        {
            let $o = Dog::<$F>::default()
                .init_step(DogInit::LearningRate(1e-3))
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = Sm3::<$F>::default().beta2(0.9).eps(1e-6);
            $body;
        }
        {
            let $o = Dowg::<$F>::default()
                .init_estim_sq_dist(1e-4)
                .weight_decay(0.01);
            $body;
        }
        {
            let $o = DAdaptAdaGrad::<$F>::default()
                .momentum(0.9)
                .weight_decay(0.01)
                .growth_rate(1.02);
            $body;
        }
    }};
}

/// Every optimizer of [`with_each_optimizer`], as trait objects.
pub fn all_optimizers<F: Scalar>() -> Vec<Box<dyn Optimizer<F>>> {
    let mut v: Vec<Box<dyn Optimizer<F>>> = Vec::new();
    with_each_optimizer!(F, |o| v.push(Box::new(o)));
    v
}

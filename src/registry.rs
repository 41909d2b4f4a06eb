//! Every optimizer of the crate, by label, each with its reference's defaults: for programs that
//! choose one at run time (from a command line or a configuration file), and the one list the
//! crate's own tests, benchmarks and examples run over.
//!
//! ```
//! use ndoptim::registry;
//! let adam = registry::by_label::<f32>("AdamW").expect("registered");
//! assert_eq!(adam.name(), "AdamW");
//! let labels: Vec<_> = registry::optimizers::<f64>().iter().map(|r| r.label).collect();
//! assert!(labels.contains(&"Lion") && labels.contains(&"SF-AdamW"));
//! ```
//!
//! [`each_optimizer!`](crate::each_optimizer) walks the same list with each optimizer's own type,
//! for code that needs more than [`Optimizer`] (checkpoints, the rule, `Send` and `Sync`).

use crate::{Optimizer, Scalar};

/// Runs a body once for every optimizer of the [`registry`](crate::registry), with its own type:
/// `each_optimizer!(f32, |label, arrays, opt| body)`, where `label` is its unique label, `arrays`
/// the number of arrays one step reads and writes per element besides the gradient (the
/// parameter and the state: what the step moves through memory; 0 for Adafactor, whose factored
/// state is smaller than the parameter) and `opt` the optimizer.
///
/// ```
/// let mut names = Vec::new();
/// ndoptim::each_optimizer!(f64, |label, _arrays, opt| {
///     names.push((label, ndoptim::Optimizer::name(&opt)));
/// });
/// assert!(names.contains(&("SGD-momentum", "SGD")));
/// ```
#[macro_export]
macro_rules! each_optimizer {
    ($F:ty, |$label:ident, $arrays:ident, $o:ident| $body:expr) => {
        $crate::each_optimizer!(@each $F, $label, $arrays, $o, $body;
            "SGD", 1, $crate::Sgd::<$F>::default();
            "SGD-momentum", 2, $crate::Sgd::<$F>::default().momentum(0.9);
            "Momentum", 2, $crate::Momentum::<$F>::default();
            "Nesterov", 2, $crate::Nesterov::<$F>::default();
            "AdaGrad", 2, $crate::AdaGrad::<$F>::default();
            "RMSprop", 2, $crate::RmsProp::<$F>::default();
            "Adam", 3, $crate::Adam::<$F>::default();
            "Adam-amsgrad", 4, $crate::Adam::<$F>::pytorch().amsgrad(true);
            "AdamW", 3, $crate::AdamW::<$F>::default();
            "NAdam", 3, $crate::NAdam::<$F>::default();
            "RAdam", 3, $crate::RAdam::<$F>::default();
            "Adamax", 3, $crate::Adamax::<$F>::default();
            "Adadelta", 3, $crate::Adadelta::<$F>::default();
            "Rprop", 3, $crate::Rprop::<$F>::default();
            "ASGD", 2, $crate::Asgd::<$F>::default();
            "Lion", 2, $crate::Lion::<$F>::default();
            "Adafactor", 0, $crate::Adafactor::<$F>::default();
            "Adan", 5, $crate::Adan::<$F>::default();
            "AdaBelief", 3, $crate::AdaBelief::<$F>::default();
            "ADOPT", 3, $crate::Adopt::<$F>::default();
            "AdEMAMix", 4, $crate::AdEMAMix::<$F>::default();
            "LAMB", 3, $crate::Lamb::<$F>::default();
            "LARS", 2, $crate::Lars::<$F>::default();
            "StableAdamW", 3, $crate::StableAdamW::<$F>::default();
            "Ranger", 4, $crate::Ranger::<$F>::default();
            "Muon", 2, $crate::Muon::<$F>::default();
            "Muon-PolarExpress", 2, $crate::Muon::<$F>::polar_express();
            "NorMuon", 2, $crate::Muon::<$F>::normuon();
            "SOAP", 3, $crate::Soap::<$F>::default();
            "Kron", 2, $crate::Kron::<$F>::default();
            "SF-AdamW", 3, $crate::ScheduleFreeAdamW::<$F>::default();
            "SF-SGD", 2, $crate::ScheduleFreeSgd::<$F>::default();
            "SF-RAdam", 3, $crate::ScheduleFreeRAdam::<$F>::default();
            "Prodigy", 5, $crate::Prodigy::<$F>::default();
            "DAdaptAdam", 4, $crate::DAdaptAdam::<$F>::default();
            "DAdaptLion", 3, $crate::DAdaptLion::<$F>::default();
            "DAdaptSGD", 3, $crate::DAdaptSgd::<$F>::default();
            "DAdaptAdaGrad", 4, $crate::DAdaptAdaGrad::<$F>::default();
            "DoG", 2, $crate::Dog::<$F>::default();
            "DoWG", 2, $crate::Dowg::<$F>::default();
            "SM3", 2, $crate::Sm3::<$F>::default();
            "C-AdamW", 3, $crate::transform::optimizer::<_, $F>($crate::chain!(
                $crate::transform::Cautious::new($crate::transform::ScaleByAdam::default()
                    .eps(1e-6)
                    .debias($crate::transform::Debias::StepSize)),
                $crate::transform::AddDecayedWeights::new(0.0),
                $crate::transform::ScaleByLearningRate,
            )).lr(1e-3);
            "C-Lion", 2, $crate::transform::optimizer::<_, $F>($crate::chain!(
                $crate::transform::Cautious::new($crate::transform::ScaleByLion::default()
                    .betas([0.95, 0.98]))
                    .rescale($crate::transform::Rescale::Count),
                $crate::transform::AddDecayedWeights::new(0.0),
                $crate::transform::ScaleByLearningRate,
            )).lr(1e-4);
        )
    };
    (@each $F:ty, $label:ident, $arrays:ident, $o:ident, $body:expr;
        $($l:literal, $n:literal, $e:expr;)*) => {
        $({
            #[allow(unused_variables)]
            let ($label, $arrays): (&'static str, usize) = ($l, $n);
            #[allow(unused_mut)]
            let mut $o = $e;
            $body;
        })*
    };
}

/// One optimizer of the registry, boxed.
#[derive(Debug)]
#[non_exhaustive]
pub struct Registered<F> {
    /// Its label, unique in the registry: the reference's name of the algorithm, with a suffix
    /// for a second configuration (`"SGD-momentum"`).
    pub label: &'static str,
    /// The arrays a step reads and writes per element besides the gradient (see
    /// [`each_optimizer!`](crate::each_optimizer)).
    pub arrays: usize,
    /// The optimizer, with its reference's defaults.
    pub optimizer: Box<dyn Optimizer<F>>,
}

/// Every optimizer of the registry, in its order.
pub fn optimizers<F: Scalar>() -> Vec<Registered<F>> {
    let mut all = Vec::new();
    crate::each_optimizer!(F, |label, arrays, o| all.push(Registered {
        label,
        arrays,
        optimizer: Box::new(o),
    }));
    all
}

/// The optimizer registered as `label`, or `None`.
pub fn by_label<F: Scalar>(label: &str) -> Option<Box<dyn Optimizer<F>>> {
    optimizers()
        .into_iter()
        .find(|r| r.label == label)
        .map(|r| r.optimizer)
}

//! The algorithms: one file each, holding its hyperparameters and update rule.

/// Declares each algorithm's module and re-exports its public items: adding an algorithm is
/// one new file and its name here.
macro_rules! algorithms {
    ($($name:ident),* $(,)?) => {
        $(mod $name; pub use $name::*;)*
    };
}

mod distance;

algorithms!(
    sgd,
    momentum,
    adagrad,
    rmsprop,
    adam,
    adamw,
    nadam,
    radam,
    adamax,
    adadelta,
    rprop,
    asgd,
    adafactor,
    lion,
    adan,
    adabelief,
    adopt,
    ademamix,
    lamb,
    lars,
    muon,
    schedule_free,
    stable_adamw,
    ranger,
    prodigy,
    dadapt_adam,
    dadapt_lion,
    dadapt_sgd,
    dadapt_adagrad,
    dog,
    kron,
    soap,
    sm3,
    polyak,
);

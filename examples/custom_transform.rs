//! A transform written outside the crate, chained with the built-in ones.
//!
//! `Cautious` wraps any transform and keeps only the elements of its update that agree in sign
//! with what it received (the mask of Liang et al., 2024, "Cautious Optimizers", without their
//! rescaling by the mask's mean). Chained as `Cautious(ScaleByAdam)` then the learning rate, it is
//! a cautious Adam; the example trains it on the quickstart's fit beside optax's Adam made of the
//! same pieces.
//!
//! Run with `cargo run --release --example custom_transform`.

#[allow(dead_code)] // the experiments' shared code; this one only parses --help
mod common;

mod fit;

use ndoptim::transform::{self, Context, ScaleByAdam, ScaleByLearningRate, Transform};
use ndoptim::{Error, Optimizer, Scalar, chain};

// ANCHOR: extension
/// Applies `T`, then zeroes each element whose update points against the input it was given.
#[derive(Clone, Debug)]
struct Cautious<T>(T);

impl<F: Scalar, T: Transform<F>> Transform<F> for Cautious<T> {
    // The wrapped transform's state and scalars, unchanged: the mask needs none of its own.
    type State = T::State;
    type Scalars = T::Scalars;

    fn slot_names(&self) -> Vec<&'static str> {
        self.0.slot_names()
    }

    fn validate(&self) -> Result<(), Error> {
        self.0.validate()
    }

    fn scalars(&self, ctx: &Context<'_>) -> T::Scalars {
        self.0.scalars(ctx)
    }

    fn apply(scalars: &T::Scalars, p: F, u: F, state: &mut T::State) -> F {
        let out = T::apply(scalars, p, u, state);
        // A select, not a branch: the loop stays vectorized.
        if out * u > F::zero() { out } else { F::zero() }
    }
}
// ANCHOR_END: extension

fn main() -> Result<(), Error> {
    common::Args::parse(
        "A transform written outside the crate (a cautious mask), chained with Adam",
        0,
        &[],
    );
    let adam = ScaleByAdam::default();
    let optimizers: Vec<(&str, Box<dyn Optimizer<f64>>)> = vec![
        (
            "Adam (chain)",
            Box::new(transform::optimizer(chain!(adam, ScaleByLearningRate)).lr(0.1)),
        ),
        (
            "cautious Adam (chain)",
            Box::new(transform::optimizer(chain!(Cautious(adam), ScaleByLearningRate)).lr(0.1)),
        ),
    ];
    fit::header(200);
    for (name, mut opt) in optimizers {
        let result = fit::train(opt.as_mut(), 200)?;
        fit::report(name, &result);
        assert!(result.1 < 1e-3 * result.0, "{name} fits the line");
    }
    Ok(())
}

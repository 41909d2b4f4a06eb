//! A whole optimizer written outside the crate, as a rule of the engine.
//!
//! Signum (Bernstein et al., 2018, "signSGD: Compressed Optimisation for Non-Convex Problems"):
//! the sign of a running mean of the gradients, `m ← β·m + (1 − β)·g`, `p ← p − lr·sign(m)`.
//! The rule holds its hyperparameter, validates it, names its state and updates one key; the
//! engine brings everything else (the maps, their checks, lazy state, checkpoints, groups, low
//! precision). The example trains it on the quickstart's fit.
//!
//! Run with `cargo run --release --example custom_rule`.

#[allow(dead_code)] // the experiments' shared code; this one only parses --help
mod common;

mod fit;

use ndoptim::{Engine, Error, Layout, Optimizer, Rule, Scalar, Step};

// ANCHOR: extension
/// Signum's rule: its one hyperparameter.
#[derive(Clone, Debug)]
struct SignumRule {
    beta: f64,
}

impl<F: Scalar> Rule<F> for SignumRule {
    type KeyScalars = ();
    const NAME: &'static str = "Signum";
    const DEFAULT_LR: f64 = 1e-3;

    fn validate(&self) -> Result<(), Error> {
        if (0.0..1.0).contains(&self.beta) {
            Ok(())
        } else {
            Err(Error::InvalidHyperparameter {
                name: "beta",
                value: self.beta,
                expected: "a number in [0, 1)",
            })
        }
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["momentum"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        // Per-step scalars once per key, converted to the element type; then one fused pass.
        let to = |x: f64| F::from(x).unwrap_or_else(F::nan);
        let (lr, b, c) = (to(step.lr()), to(self.beta), to(1.0 - self.beta));
        step.for_each(move |p, g, [m]: &mut [F; 1]| {
            *m = b * *m + c * g;
            *p = *p - lr * m.signum();
        });
    }
}
// ANCHOR_END: extension

fn main() -> Result<(), Error> {
    common::Args::parse(
        "A whole optimizer (Signum) written outside the crate, as a rule of the engine",
        0,
        &[],
    );
    let mut signum: Engine<_, f64> = Engine::new(SignumRule { beta: 0.9 }).lr(0.01);
    fit::header(500);
    let result = fit::train(&mut signum, 500)?;
    fit::report(signum.name(), &result);
    assert!(result.1 < 1e-2 * result.0, "Signum fits the line");

    // Bad input is refused before anything changes, as for the crate's own optimizers.
    let mut bad = Engine::<_, f64>::new(SignumRule { beta: 1.5 });
    let refused = fit::train(&mut bad, 1);
    println!("beta 1.5: {}", refused.expect_err("beta 1.5 is refused"));
    Ok(())
}

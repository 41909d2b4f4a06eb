//! Hyperparameter checks shared by every algorithm, with PyTorch's wording.

use crate::Error;

fn require(ok: bool, name: &'static str, value: f64, expected: &'static str) -> Result<(), Error> {
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidHyperparameter {
            name,
            value,
            expected,
        })
    }
}

/// `value` is finite and `>= 0`.
pub(crate) fn non_negative(name: &'static str, value: f64) -> Result<(), Error> {
    require(
        value.is_finite() && value >= 0.0,
        name,
        value,
        "a finite number >= 0",
    )
}

/// `value` is finite and `> 0` (prodigyopt's and dadaptation's `d0`, `eps`).
pub(crate) fn positive(name: &'static str, value: f64) -> Result<(), Error> {
    require(
        value.is_finite() && value > 0.0,
        name,
        value,
        "a finite number > 0",
    )
}

/// `value` is in `[0, 1)`.
pub(crate) fn unit_interval(name: &'static str, value: f64) -> Result<(), Error> {
    require(
        (0.0..1.0).contains(&value),
        name,
        value,
        "a number in [0, 1)",
    )
}

/// The learning rate every algorithm has.
pub(crate) fn learning_rate(value: f64) -> Result<(), Error> {
    non_negative("learning rate", value)
}

/// `value` is finite.
pub(crate) fn finite(name: &'static str, value: f64) -> Result<(), Error> {
    require(value.is_finite(), name, value, "a finite number")
}

/// `value` is in `[0, 1]`.
pub(crate) fn closed_unit_interval(name: &'static str, value: f64) -> Result<(), Error> {
    require(
        (0.0..=1.0).contains(&value),
        name,
        value,
        "a number in [0, 1]",
    )
}

/// PyTorch's `betas`, each in `[0, 1)`.
pub(crate) fn betas([beta1, beta2]: [f64; 2]) -> Result<(), Error> {
    unit_interval("beta parameter at index 0", beta1)?;
    unit_interval("beta parameter at index 1", beta2)
}

/// The betas, ε and ε_root of Adam's moments as optax has them (`scale_by_adam` and its kin).
pub(crate) fn moments(betas: [f64; 2], eps: f64, eps_root: f64) -> Result<(), Error> {
    self::betas(betas)?;
    non_negative("epsilon value", eps)?;
    non_negative("eps_root value", eps_root)
}

/// The error for a value that fails a condition checked by the caller.
pub(crate) fn fail(name: &'static str, value: f64, expected: &'static str) -> Result<(), Error> {
    require(false, name, value, expected)
}

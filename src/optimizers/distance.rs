//! What D-Adaptation's family shares (Prodigy, D-Adapt Adam, SGD and AdaGrad): the options of their references,
//! and Adam's bias correction at the optimizer's step count.

use crate::Scalar;
use crate::parts::{add_scaled, bias_correction};
use crate::{Error, check};

/// prodigyopt's and dadaptation's shared arguments: weight decay (coupled or decoupled), bias
/// correction, `d0` and the growth rate.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub(crate) struct DistanceOptions {
    pub(crate) weight_decay: f64,
    pub(crate) decouple: bool,
    pub(crate) use_bias_correction: bool,
    pub(crate) d0: f64,
    /// `None`: unbounded (∞, kept so because JSON has no infinity).
    pub(crate) growth_rate: Option<f64>,
}

impl DistanceOptions {
    /// The references' defaults, with weight decay decoupled or not.
    pub(crate) fn new(decouple: bool) -> Self {
        Self {
            weight_decay: 0.0,
            decouple,
            use_bias_correction: false,
            d0: 1e-6,
            growth_rate: None,
        }
    }

    /// optax's `contrib` versions: decoupled weight decay, always bias-corrected, unbounded.
    pub(crate) fn optax() -> Self {
        Self {
            use_bias_correction: true,
            ..Self::new(true)
        }
    }

    /// The references' checks; `optax` refuses what optax's version lacks (`reason`).
    pub(crate) fn validate(&self, optax: bool, reason: &'static str) -> Result<(), Error> {
        check::non_negative("weight_decay value", self.weight_decay)?;
        check::positive("d0 value", self.d0)?;
        if let Some(rate) = self.growth_rate
            && (rate.is_nan() || rate < 1.0)
        {
            return check::fail("growth_rate value", rate, "a number >= 1");
        }
        let optax_options = self.decouple && self.use_bias_correction && self.growth_rate.is_none();
        if optax && !optax_options {
            return Err(Error::IncompatibleOptions { reason });
        }
        Ok(())
    }

    /// `√(1 − β₂ᵏ⁺¹)/(1 − β₁ᵏ⁺¹)` after `k` steps with bias correction, else 1.
    pub(crate) fn bias_correction(&self, [beta1, beta2]: [f64; 2], k: f64) -> f64 {
        if !self.use_bias_correction {
            return 1.0;
        }
        bias_correction(beta2, k as u64 + 1).sqrt() / bias_correction(beta1, k as u64 + 1)
    }

    /// The largest factor of `d` in one step.
    pub(crate) fn growth(&self) -> f64 {
        self.growth_rate.unwrap_or(f64::INFINITY)
    }

    /// The coupled weight decay added to the gradient (0 when decoupled).
    pub(crate) fn coupled(&self) -> f64 {
        if self.decouple {
            0.0
        } else {
            self.weight_decay
        }
    }

    /// The factor of decoupled weight decay, `−λ·dlr` (0 when coupled).
    pub(crate) fn decay(&self, dlr: f64) -> f64 {
        if self.decouple {
            -self.weight_decay * dlr
        } else {
            0.0
        }
    }
}

/// `(1 − c)·p + c·z`, `c = 1 − momentum`, as dadaptation's dual-averaging optimizers round it
/// (`z` itself without momentum).
pub(crate) fn toward<F: Scalar>(p: F, z: F, momentum: F, rest: F) -> F {
    if momentum == F::zero() {
        z
    } else {
        add_scaled(p * momentum, rest, z)
    }
}

/// The builders of [`DistanceOptions`] on an optimizer whose rule keeps them in `options`:
/// `distance_options!(Alias)` for all of them, `distance_options!(Alias, coupled)` for a rule
/// whose reference has only coupled weight decay and no bias correction (D-Adapt SGD, AdaGrad).
macro_rules! distance_options {
    ($alias:ident) => {
        distance_options!($alias, coupled);

        setters!($alias [r => r.options] {
            /// Decoupled weight decay, `p ← p − λ·dlr·p`, or coupled, `g ← g + λ·p`.
            decouple: bool,
            /// Adam's bias correction in `dlr` (default `false`).
            use_bias_correction: bool,
        });
    };
    ($alias:ident, dual_averaging) => {
        distance_options!($alias, coupled);

        setters!($alias {
            /// Sets the momentum (default 0), `>= 0`: the parameter moves a fraction
            /// `1 − momentum` of the way to the dual-averaging point `z`.
            momentum: f64,
        });
    };
    ($alias:ident, coupled) => {
        setters!($alias [r => r.options] {
            /// Sets the weight decay λ (default 0), `>= 0`.
            weight_decay: f64,
            /// Sets d₀, the first estimate of `d` (default 1e-6), `> 0`.
            d0: f64,
        });

        impl<F: $crate::Scalar> $alias<F> {
            /// Sets the largest factor by which `d` grows in one step (default ∞: unbounded),
            /// `>= 1`.
            #[must_use]
            pub fn growth_rate(self, growth_rate: f64) -> Self {
                self.with(|r| {
                    r.options.growth_rate = (growth_rate != f64::INFINITY).then_some(growth_rate)
                })
            }
        }
    };
}
pub(crate) use distance_options;

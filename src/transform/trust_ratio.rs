//! The per-tensor trust ratio of LAMB and LARS.

use super::{Context, Transform};
use crate::tensor::trust_ratio;
use crate::{Error, Scalar, check};

/// optax's `scale_by_trust_ratio`: the update scaled per tensor so that its norm relates to the
/// parameter's, `u ← u · c·‖p‖/(‖u‖ + ε)` (Frobenius norms over the key, each at least
/// `min_norm`; factor 1 if either is 0). Keys whose [`Group`](crate::Group) sets
/// [`trust_ratio(false)`](crate::Group::trust_ratio) keep factor 1 (optax's mask). A transform
/// that [reduces](Transform::REDUCES): the engine sums the norms in a pass of its own first.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByTrustRatio {
    pub(crate) trust_coefficient: f64,
    pub(crate) eps: f64,
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) min_norm: f64,
}

/// optax's defaults: trust coefficient 1, ε 0.
impl Default for ScaleByTrustRatio {
    fn default() -> Self {
        Self {
            trust_coefficient: 1.0,
            eps: 0.0,
            min_norm: 0.0,
        }
    }
}

builders!(ScaleByTrustRatio {
    /// Sets the trust coefficient c, `>= 0` (default 1).
    trust_coefficient: f64,
    /// Sets ε, added to the update's norm (default 0).
    eps: f64,
    /// Sets the smallest norm either side takes, `>= 0` (default 0): a norm at or below it
    /// counts as `min_norm` (optax's `min_norm`, which [`ScaleByFromage`](super::ScaleByFromage)'s
    /// chain sets to 1e-6).
    min_norm: f64,
});

/// The scalars of [`ScaleByTrustRatio`]: whether the key takes a ratio, and the ratio once the
/// norms are known.
#[derive(Clone, Copy, Debug)]
pub struct TrustScalars<F> {
    applies: bool,
    coefficient: f64,
    eps: f64,
    min_norm: f64,
    ratio: F,
}

impl<F: Scalar> Transform<F> for ScaleByTrustRatio {
    type State = [F; 0];
    type Scalars = TrustScalars<F>;

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("trust coefficient", self.trust_coefficient)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("min_norm value", self.min_norm)
    }

    fn scalars(&self, ctx: &Context<'_>) -> TrustScalars<F> {
        TrustScalars {
            applies: ctx.trust_ratio,
            coefficient: self.trust_coefficient,
            eps: self.eps,
            min_norm: self.min_norm,
            ratio: F::one(),
        }
    }

    #[inline(always)]
    fn apply(s: &TrustScalars<F>, _: F, u: F, _: &mut [F; 0]) -> F {
        u * s.ratio
    }

    const REDUCES: bool = true;

    #[inline(always)]
    fn before(_: &TrustScalars<F>, _: F, u: F, _: &mut [F; 0]) -> F {
        u
    }

    #[inline(always)]
    fn reduce(p: F, u: F) -> [F; 2] {
        [p * p, u * u]
    }

    fn finish(s: &mut TrustScalars<F>, [p_squares, u_squares]: [F; 2]) {
        if s.applies {
            s.ratio = trust_ratio(s.coefficient, p_squares, u_squares, s.eps, s.min_norm);
        }
    }
}

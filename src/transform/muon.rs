//! optax's Muon transforms: the orthogonalised momentum and the scale by shape.

use std::sync::Arc;

use super::{Context, Transform, matrix};
use crate::engine::cast;
use crate::parts::bias_correction;
use crate::tensor::{Preconditioning, newton_schulz, newton_schulz_scratch};
use crate::{Error, Scalar, check};

/// optax's `scale_by_muon`: momentum, orthogonalised over the whole key by a Newton–Schulz
/// iteration (a [tensor](Transform::TENSOR) transform), the key read as a matrix by [`matrix`].
///
/// ```text
/// m ← (1 − μ)·u + μ·m;   X = μ·m/(1 − μᵗ⁺¹) + (1 − μ)·u/(1 − μᵗ) (nesterov) or m/(1 − μᵗ)
/// X ← Xᵀ if rows > cols;   X scaled as `preconditioning` says (X/(‖X‖_F + ε) by default)
/// per iteration:  A = X·Xᵀ;  X ← a·X + (b·A + c·A·A)·X;   O = X (transposed back)
/// u ← O, or ⟨X̂, O⟩·O (adaptive)
/// ```
///
/// Defaults are optax's: μ = 0.95, Nesterov, ε = 1e-8, coefficients (3.4445, −4.7750, 2.0315)
/// for 5 iterations, Frobenius preconditioning, not adaptive. State: `mu`. The iteration runs in
/// `F` with ndarray's matrix product, in scratch space kept per key. optax's `muon` is
/// `chain!(ScaleByMuon, ScaleByShape, AddDecayedWeights, ScaleByLearningRate)` on matrices,
/// which [`Muon::optax`](crate::Muon::optax) runs beside its AdamW fallback.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ScaleByMuon {
    /// The momentum μ (optax's `beta`), in `[0, 1)`.
    pub momentum: f64,
    /// Nesterov momentum, in optax's form.
    pub nesterov: bool,
    /// One row `(a, b, c)` for every iteration, or one row per iteration (at most `ns_steps`).
    pub ns_coefficients: Arc<[[f64; 3]]>,
    /// The number of iterations, below 100.
    pub ns_steps: usize,
    /// ε of the normalisation, `>= 0`.
    pub eps: f64,
    /// How the iteration's input is scaled.
    pub preconditioning: Preconditioning,
    /// Scales the result by its inner product with the iteration's input (optax's `adaptive`).
    pub adaptive: bool,
}

impl Default for ScaleByMuon {
    fn default() -> Self {
        Self {
            momentum: 0.95,
            nesterov: true,
            ns_coefficients: Arc::new([[3.4445, -4.7750, 2.0315]]),
            ns_steps: 5,
            eps: 1e-8,
            preconditioning: Preconditioning::Frobenius,
            adaptive: false,
        }
    }
}

// Builders for the public fields, which say what each is.
builders!(ScaleByMuon {
    /// Sets `momentum`.
    momentum: f64,
    /// Sets `nesterov`.
    nesterov: bool,
    /// Sets `ns_steps`.
    ns_steps: usize,
    /// Sets `eps`.
    eps: f64,
    /// Sets `preconditioning`.
    preconditioning: Preconditioning,
    /// Sets `adaptive`.
    adaptive: bool,
});

impl ScaleByMuon {
    /// Polar Express's coefficients (Amsel et al., 2025, as microsoft/dion's `polar_express`
    /// has them: five iterations, safety factor 1.02 built into all but the last), for
    /// [`Preconditioning::PolarExpress`].
    pub const POLAR_EXPRESS_COEFFICIENTS: [[f64; 3]; 5] = [
        [8.156554524902461, -22.48329292557795, 15.878769915207462],
        [4.042929935166739, -2.808917465908714, 0.5000178451051316],
        [3.8916678022926607, -2.772484153217685, 0.5060648178503393],
        [3.285753657755655, -2.3681294933425376, 0.46449024233003106],
        [2.3465413258596377, -1.7097828382687081, 0.42323551169305323],
    ];

    /// optax's `"dion"` preset: five iterations with their own coefficients.
    pub const DION_NS_COEFFICIENTS: [[f64; 3]; 5] = [
        [4.0848, -6.8946, 2.9270],
        [3.9505, -6.3029, 2.6377],
        [3.7418, -5.5913, 2.3037],
        [2.8769, -3.1427, 1.2046],
        [2.8366, -3.0525, 1.2012],
    ];

    /// Sets one row of coefficients for every iteration (default (3.4445, −4.7750, 2.0315)).
    #[must_use]
    pub fn ns_coefficients(self, coefficients: [f64; 3]) -> Self {
        self.ns_schedule(vec![coefficients])
    }

    /// Sets one row of coefficients per iteration (optax's `(n, 3)` `ns_coeffs`): at most
    /// `ns_steps` rows.
    #[must_use]
    pub fn ns_schedule(mut self, coefficients: Vec<[f64; 3]>) -> Self {
        self.ns_coefficients = coefficients.into();
        self
    }

    /// Orthogonalises `x` (`rows × cols`, row-major) with these settings; the result lives in
    /// `scratch` ([`Transform::scratch`] elements).
    pub(crate) fn orthogonalize<'s, F: Scalar>(
        &self,
        x: &[F],
        rows: usize,
        cols: usize,
        scratch: &'s mut [F],
    ) -> &'s mut [F] {
        newton_schulz(
            x,
            rows,
            cols,
            &self.ns_coefficients,
            self.ns_steps,
            self.eps,
            self.preconditioning,
            scratch,
        )
    }
}

/// The scalars of [`ScaleByMuon`]: the momentum's coefficients and bias corrections.
#[derive(Clone, Copy, Debug)]
pub struct MuonScalars<F> {
    beta: F,
    keep: F,
    correction: F,
    next_correction: F,
    nesterov: bool,
}

impl<F: Scalar> Transform<F> for ScaleByMuon {
    type State = [F; 1];
    type Scalars = MuonScalars<F>;

    hyperparameters!(Momentum => (momentum));

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["mu"]
    }

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("momentum value", self.momentum)?;
        if self.ns_steps >= 100 {
            check::fail(
                "number of Newton-Schulz steps",
                self.ns_steps as f64,
                "fewer than 100, for computational efficiency",
            )?;
        }
        let rows = self.ns_coefficients.len();
        if rows == 0 || rows > self.ns_steps.max(1) {
            check::fail(
                "number of Newton-Schulz coefficient rows",
                rows as f64,
                "1, or from 1 to ns_steps (one per iteration)",
            )?;
        }
        for c in self.ns_coefficients.iter().flatten() {
            check::finite("Newton-Schulz coefficient", *c)?;
        }
        check::non_negative("epsilon value", self.eps)
    }

    fn scalars(&self, ctx: &Context<'_>) -> MuonScalars<F> {
        let mu = self.momentum;
        MuonScalars {
            beta: cast(mu),
            keep: cast(1.0 - mu),
            correction: cast(bias_correction(mu, ctx.t)),
            next_correction: cast(bias_correction(mu, ctx.t + 1)),
            nesterov: self.nesterov,
        }
    }

    /// Never called: a tensor transform runs as `before`, `tensor`, `after`.
    #[inline(always)]
    fn apply(_: &MuonScalars<F>, _: F, u: F, _: &mut [F; 1]) -> F {
        u
    }

    const TENSOR: bool = true;

    #[inline(always)]
    fn before(s: &MuonScalars<F>, _: F, g: F, [m]: &mut [F; 1]) -> F {
        *m = s.keep * g + s.beta * *m;
        if s.nesterov {
            s.beta * (*m / s.next_correction) + s.keep * (g / s.correction)
        } else {
            *m / s.correction
        }
    }

    fn scratch(&self, rows: usize, cols: usize) -> usize {
        newton_schulz_scratch(rows, cols)
    }

    fn tensor(&self, _: &MuonScalars<F>, u: &mut [F], rows: usize, cols: usize, scratch: &mut [F]) {
        let o = &*self.orthogonalize(u, rows, cols, scratch);
        let dual = if self.adaptive {
            // ⟨X̂, O⟩ summed in f64: a sum over the whole matrix, whose f32 rounding otherwise
            // depends on the order of the additions.
            let dual =
                (u.iter().zip(o)).fold(0.0, |s, (&x, &o)| s + (x * o).to_f64().unwrap_or(f64::NAN));
            Some(cast::<F>(dual))
        } else {
            None
        };
        for (u, &o) in u.iter_mut().zip(o) {
            *u = dual.map_or(o, |d| d * o);
        }
    }
}

/// optax's `scale_by_shape`: `u ← s·u` with `s = √max(1, cols/rows)` (width scaling), or
/// `s = √max(rows, cols)·ρ` with a consistent RMS ρ; the key read as a matrix by [`matrix`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ScaleByShape {
    /// ρ, `>= 0`, or `None` for width scaling.
    pub consistent_rms: Option<f64>,
}

impl<F: Scalar> Transform<F> for ScaleByShape {
    type State = [F; 0];
    type Scalars = F;

    fn slot_names(&self) -> Vec<&'static str> {
        Vec::new()
    }

    fn validate(&self) -> Result<(), Error> {
        match self.consistent_rms {
            Some(rms) => check::non_negative("consistent_rms value", rms),
            None => Ok(()),
        }
    }

    fn scalars(&self, ctx: &Context<'_>) -> F {
        let (rows, cols) = matrix(ctx.shape);
        let (r, c) = (rows as f64, cols as f64);
        cast(match self.consistent_rms {
            Some(rms) => r.max(c).sqrt() * rms,
            None => (c / r).max(1.0).sqrt(),
        })
    }

    #[inline(always)]
    fn apply(s: &F, _: F, u: F, _: &mut [F; 0]) -> F {
        *s * u
    }
}

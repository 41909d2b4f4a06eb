//! Muon: momentum orthogonalised by Newton–Schulz iterations, with an AdamW fallback.

use crate::engine::{Engine, Layout, Parts, Rule, Scalar, Step, cast};
use crate::optimizers::AdamRule;
use crate::transform::{
    self, AddDecayedWeights, ScaleByAdam, ScaleByLearningRate, ScaleByNadam,
};
use crate::parts::{Lerp, add_scaled, bias_correction};
use crate::tensor::{Preconditioning, each_grad, each_param, newton_schulz, newton_schulz_scratch};
use crate::{Error, chain, check};

/// Whose Muon: the momentum, the normalisation and the step size differ.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MuonConvention {
    /// `torch.optim.Muon` (Keller Jordan's): `B ← lerp(B, g, 1 − μ)` (an average, not
    /// bias-corrected), Nesterov `lerp(g, B, μ)`; `X / max(‖X‖_F, ε)`; decoupled weight decay
    /// `p·(1 − lr·λ)`; step `lr·r` with `r` from [`AdjustLr`]; fallback: `torch.optim.AdamW`.
    #[default]
    PyTorch,
    /// `optax.contrib.muon`: `m ← (1 − μ)·g + μ·m`, bias-corrected (Nesterov: optax's NAdam
    /// form); `X / (‖X‖_F + ε)`; the update times `√max(1, cols/rows)` (or the consistent-RMS
    /// scale) plus `λ·p`, times `lr`; fallback: `optax.adamw` with Muon's ε and Nesterov.
    Optax,
}

/// How `torch.optim.Muon` scales the learning rate of a `rows × cols` matrix.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AdjustLr {
    /// `"original"` (and `None`): `lr·√max(1, rows/cols)`.
    #[default]
    Original,
    /// `"match_rms_adamw"`: `lr·0.2·√max(rows, cols)`, so that the update's RMS matches AdamW's.
    MatchRmsAdamW,
    /// `"spectral_unclamped"`: `lr·√(rows/cols)`, the original without its floor of 1.
    SpectralUnclamped,
}

/// Keys that go to the AdamW fallback by name (embeddings, output heads), beside every key of
/// rank < 2.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Route {
    /// The key itself.
    Exact(String),
    /// Every key starting with this.
    Prefix(String),
}

/// The fallback's hyperparameters: AdamW as the convention's reference computes it.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
struct Fallback {
    lr: Option<f64>,
    betas: [f64; 2],
    eps: f64,
    eps_root: f64,
    weight_decay: f64,
}

/// Muon (Jordan et al., 2024, "Muon: An optimizer for hidden layers in neural networks"):
/// momentum of a weight matrix orthogonalised by a Newton–Schulz iteration, so that every
/// direction of the update has about the same size.
///
/// For a key of rank ≥ 2 (rank ≥ 3 read as `[shape[0], rest]`, as convolution filters; under
/// [`MuonConvention::Optax`] matrices only, as optax's default dimension numbers, the others
/// taking the fallback):
///
/// ```text
/// PyTorch: B ← lerp(B, g, 1 − μ);  X = lerp(g, B, μ) (nesterov) or B
/// optax:   m ← (1 − μ)·g + μ·m;    X = μ·m/(1 − μᵗ⁺¹) + (1 − μ)·g/(1 − μᵗ) (nesterov) or m/(1 − μᵗ)
/// X ← Xᵀ if rows > cols;   X ← X/max(‖X‖_F, ε) (PyTorch) or X/(‖X‖_F + ε) (optax)
/// ns_steps times:  A = X·Xᵀ;  X ← a·X + (b·A + c·A·A)·X;   O = X (transposed back)
/// PyTorch: p ← p·(1 − lr·λ) − lr·r·O,  r = √max(1, rows/cols), 0.2·√max(rows, cols) or √(rows/cols)
/// optax:   O ← ⟨X̂, O⟩·O (adaptive);  p ← p − lr·(s·O + λ·p),
///          s = √max(1, cols/rows), or √max(rows, cols)·ρ with consistent RMS ρ
/// ```
///
/// Keys of rank < 2 (optax: of rank other than 2), and keys routed away by name ([`Muon::adam_for`]), take an AdamW step with
/// their own hyperparameters in the same `update` (as Keller Jordan's `MuonWithAuxAdam` and optax's
/// partition do): `torch.optim.AdamW`'s formula under [`MuonConvention::PyTorch`], `optax.adamw`'s
/// (Nesterov and ε as Muon's) under [`MuonConvention::Optax`].
///
/// The Newton–Schulz iteration runs in the parameter's type (f32 or f64), with ndarray's matrix
/// product (`general_mat_mul`, the kernel of `dot`) writing into scratch space kept per key and
/// never checkpointed. `torch.optim.Muon` casts to bfloat16 for the iteration instead: its results
/// differ from an f32 run by about 1e-4 after 25 steps; it also rejects every parameter that is not
/// 2-D, which this type routes or flattens instead.
///
/// [`Muon::default`] is `torch.optim.Muon`: learning rate 1e-3, μ = 0.95, Nesterov, weight decay
/// 0.1, coefficients (3.4445, −4.7750, 2.0315) with 5 steps, ε = 1e-7, [`AdjustLr::Original`];
/// fallback `torch.optim.AdamW`'s defaults (betas (0.9, 0.999), ε 1e-8, weight decay 0.01, Muon's
/// learning rate). [`Muon::optax`] is `optax.contrib.muon`: learning rate 0.01 (optax requires
/// one), μ = 0.95, Nesterov, weight decay 0, ε = 1e-8, no adaptive scaling, width scaling;
/// fallback betas (0.9, 0.999), ε_root 0, weight decay 0. optax's AOL and Schatten
/// preconditionings ([`Preconditioning`]) and per-iteration coefficients ([`Muon::ns_schedule`],
/// its `"dion"` preset [`MuonRule::DION_NS_COEFFICIENTS`]) are offered; its `"spectral"`
/// preconditioning (an SVD per step) and its dimension numbers (other axes than
/// `[shape[0], rest]`) are not.
///
/// State: `momentum_buffer` (PyTorch) or `mu` (optax) for Muon keys; `exp_avg` and `exp_avg_sq`
/// (PyTorch) or `mu` and `nu` (optax) for fallback keys.
///
/// ```
/// use std::collections::HashMap;
/// use ndarray::{ArrayD, IxDyn};
/// use ndoptim::{Muon, Optimizer};
///
/// let shapes = [("conv", vec![8, 3, 3, 3]), ("fc", vec![16, 32]), ("bias", vec![16])];
/// let mut params: HashMap<String, ArrayD<f32>> = shapes
///     .iter()
///     .map(|(k, s)| (k.to_string(), ArrayD::from_elem(IxDyn(s), 0.1)))
///     .collect();
/// let grads = params.iter().map(|(k, p)| (k.clone(), p.mapv(|x| x * 0.5 + 0.01))).collect();
/// let mut opt = Muon::default().lr(0.02).adam_for_prefix("head");
/// opt.update(&mut params, &grads)?; // Muon on conv (8 × 27) and fc, AdamW on bias
/// assert_eq!(opt.slot_names(), ["momentum_buffer", "exp_avg", "exp_avg_sq"]);
/// assert!(opt.slot("bias", "exp_avg").is_some() && opt.slot("fc", "momentum_buffer").is_some());
/// # Ok::<(), ndoptim::Error>(())
/// ```
pub type Muon<F = f32> = Engine<MuonRule, F>;

/// The rule of [`Muon`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MuonRule {
    convention: MuonConvention,
    momentum: f64,
    nesterov: bool,
    weight_decay: f64,
    ns_coefficients: Vec<[f64; 3]>,
    ns_steps: usize,
    eps: f64,
    preconditioning: Preconditioning,
    adjust_lr: AdjustLr,
    adaptive: bool,
    consistent_rms: Option<f64>,
    routes: Vec<Route>,
    adam: Fallback,
}

impl Default for MuonRule {
    fn default() -> Self {
        Self {
            convention: MuonConvention::PyTorch,
            momentum: 0.95,
            nesterov: true,
            weight_decay: 0.1,
            ns_coefficients: vec![[3.4445, -4.7750, 2.0315]],
            ns_steps: 5,
            eps: 1e-7,
            preconditioning: Preconditioning::FrobeniusClamp,
            adjust_lr: AdjustLr::Original,
            adaptive: false,
            consistent_rms: None,
            routes: Vec::new(),
            adam: Fallback {
                lr: None,
                betas: [0.9, 0.999],
                eps: 1e-8,
                eps_root: 0.0,
                weight_decay: 0.01,
            },
        }
    }
}

setters!(Muon {
    /// Sets the momentum μ (optax's `beta`), in `[0, 1)` (default 0.95).
    momentum: f64,
    /// Uses Nesterov momentum (default `true`, in both references).
    nesterov: bool,
    /// Sets the decoupled weight decay λ of Muon keys, `>= 0` (default 0.1; optax 0).
    weight_decay: f64,
    /// Sets the number of Newton–Schulz iterations (default 5).
    ns_steps: usize,
    /// Sets ε of the normalisation (default 1e-7, a clamp; optax 1e-8, added). Under
    /// [`MuonConvention::Optax`] the fallback uses it too, as optax does.
    eps: f64,
    /// Sets how the iteration's input is scaled (default [`Preconditioning::FrobeniusClamp`],
    /// PyTorch's; [`Muon::optax`]: [`Preconditioning::Frobenius`]; optax also offers
    /// [`Preconditioning::Aol`] and [`Preconditioning::Schatten`]).
    preconditioning: Preconditioning,
    /// Sets `torch.optim.Muon`'s learning-rate adjustment (default [`AdjustLr::Original`]).
    adjust_lr: AdjustLr,
    /// Scales the orthogonalised update by its inner product with the momentum (optax's
    /// `adaptive`, default `false`).
    adaptive: bool,
    /// Scales updates by `√max(rows, cols)·ρ` instead of `√max(1, cols/rows)` (optax's
    /// `consistent_rms`, default `None`).
    consistent_rms: Option<f64>,
});

impl<F: Scalar> Muon<F> {
    /// `optax.contrib.muon`'s conventions and defaults ([`MuonConvention::Optax`]).
    pub fn optax() -> Self {
        Self::new(MuonRule {
            convention: MuonConvention::Optax,
            weight_decay: 0.0,
            eps: 1e-8,
            preconditioning: Preconditioning::Frobenius,
            adam: Fallback {
                lr: None,
                betas: [0.9, 0.999],
                eps: 1e-8,
                eps_root: 0.0,
                weight_decay: 0.0,
            },
            ..MuonRule::default()
        })
        .lr(0.01)
    }

    /// Sets the Newton–Schulz coefficients `(a, b, c)`, used by every iteration (default
    /// (3.4445, −4.7750, 2.0315)).
    #[must_use]
    pub fn ns_coefficients(self, coefficients: [f64; 3]) -> Self {
        self.with(|r| r.ns_coefficients = vec![coefficients])
    }

    /// Sets one triple of coefficients per iteration (optax's `(n, 3)` `ns_coeffs`, such as
    /// [`MuonRule::DION_NS_COEFFICIENTS`]): the iteration runs once per row, and there may be at
    /// most `ns_steps` rows, as optax requires.
    #[must_use]
    pub fn ns_schedule(self, coefficients: Vec<[f64; 3]>) -> Self {
        self.with(|r| r.ns_coefficients = coefficients)
    }

    /// Sends `key` to the AdamW fallback.
    #[must_use]
    pub fn adam_for(self, key: impl Into<String>) -> Self {
        let key = key.into();
        self.with(|r| r.routes.push(Route::Exact(key)))
    }

    /// Sends every key starting with `prefix` to the AdamW fallback.
    #[must_use]
    pub fn adam_for_prefix(self, prefix: impl Into<String>) -> Self {
        let prefix = prefix.into();
        self.with(|r| r.routes.push(Route::Prefix(prefix)))
    }

    /// Sets the fallback's learning rate (optax's `adam_learning_rate`; default `None`: Muon's
    /// learning rate, schedules included).
    #[must_use]
    pub fn adam_lr(self, lr: Option<f64>) -> Self {
        self.with(|r| r.adam.lr = lr)
    }

    /// Sets the fallback's betas (optax's `adam_b1`, `adam_b2`; default (0.9, 0.999)).
    #[must_use]
    pub fn adam_betas(self, beta1: f64, beta2: f64) -> Self {
        self.with(|r| r.adam.betas = [beta1, beta2])
    }

    /// Sets the fallback's ε under [`MuonConvention::PyTorch`] (default 1e-8; optax uses Muon's ε).
    #[must_use]
    pub fn adam_eps(self, eps: f64) -> Self {
        self.with(|r| r.adam.eps = eps)
    }

    /// Sets the fallback's ε_root under [`MuonConvention::Optax`] (default 0).
    #[must_use]
    pub fn adam_eps_root(self, eps_root: f64) -> Self {
        self.with(|r| r.adam.eps_root = eps_root)
    }

    /// Sets the fallback's decoupled weight decay (default 0.01; optax 0).
    #[must_use]
    pub fn adam_weight_decay(self, weight_decay: f64) -> Self {
        self.with(|r| r.adam.weight_decay = weight_decay)
    }
}

impl MuonRule {
    /// optax's `"dion"` preset: five iterations with their own coefficients.
    pub const DION_NS_COEFFICIENTS: [[f64; 3]; 5] = [
        [4.0848, -6.8946, 2.9270],
        [3.9505, -6.3029, 2.6377],
        [3.7418, -5.5913, 2.3037],
        [2.8769, -3.1427, 1.2046],
        [2.8366, -3.0525, 1.2012],
    ];

    /// Whether `key` of `shape` takes Muon's step; the others take the fallback's.
    fn is_muon(&self, key: &str, shape: &[usize]) -> bool {
        // optax's default dimension numbers take matrices only; PyTorch-style Muon reads a
        // filter of rank >= 3 as a matrix.
        let rank_ok = match self.convention {
            MuonConvention::Optax => shape.len() == 2,
            MuonConvention::PyTorch => shape.len() >= 2,
        };
        rank_ok
            && !self.routes.iter().any(|r| match r {
                Route::Exact(k) => k == key,
                Route::Prefix(p) => key.starts_with(p.as_str()),
            })
    }

    /// The convention.
    pub fn convention(&self) -> MuonConvention {
        self.convention
    }
}

impl<F: Scalar> Rule<F> for MuonRule {
    type KeyScalars = ();
    const NAME: &'static str = "Muon";
    const DEFAULT_LR: f64 = 1e-3;
    const ELEMENTWISE: bool = false;

    hyperparameters!(Momentum => (momentum), WeightDecay => (weight_decay));

    fn validate(&self) -> Result<(), Error> {
        check::unit_interval("momentum value", self.momentum)?;
        check::non_negative("weight decay value", self.weight_decay)?;
        if self.ns_steps >= 100 {
            check::fail(
                "number of Newton-Schulz steps",
                self.ns_steps as f64,
                "fewer than 100, for computational efficiency",
            )?;
        }
        if self.ns_coefficients.is_empty() || self.ns_coefficients.len() > self.ns_steps.max(1) {
            check::fail(
                "number of Newton-Schulz coefficient rows",
                self.ns_coefficients.len() as f64,
                "1, or from 1 to ns_steps (one per iteration)",
            )?;
        }
        for c in self.ns_coefficients.iter().flatten() {
            check::finite("Newton-Schulz coefficient", *c)?;
        }
        check::non_negative("epsilon value", self.eps)?;
        if let Some(rms) = self.consistent_rms {
            check::non_negative("consistent_rms value", rms)?;
        }
        if let Some(lr) = self.adam.lr {
            check::learning_rate(lr)?;
        }
        check::betas(self.adam.betas)?;
        check::non_negative("adam epsilon value", self.adam.eps)?;
        check::non_negative("adam eps_root value", self.adam.eps_root)?;
        check::non_negative("adam weight decay value", self.adam.weight_decay)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        match self.convention {
            MuonConvention::PyTorch => vec!["momentum_buffer", "exp_avg", "exp_avg_sq"],
            MuonConvention::Optax => vec!["mu", "nu"],
        }
    }

    fn slots(&self, key: &str, shape: &[usize]) -> Vec<(&'static str, ndarray::IxDyn)> {
        let names = <Self as Rule<F>>::slot_names(self);
        let names = match (self.is_muon(key, shape), self.convention) {
            (true, _) => &names[..1],
            (false, MuonConvention::PyTorch) => &names[1..],
            (false, MuonConvention::Optax) => &names[..],
        };
        names.iter().map(|&n| (n, ndarray::IxDyn(shape))).collect()
    }

    fn scratch(&self, key: &str, shape: &[usize]) -> usize {
        if !self.is_muon(key, shape) {
            return 0;
        }
        // Checked: a shape claimed by a checkpoint is checked against its data before this runs,
        // but a rule must not overflow whatever it is asked.
        let Some(n) = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) else {
            return 0;
        };
        let rows = shape[0];
        let cols = n.checked_div(rows).unwrap_or(0);
        n.saturating_add(newton_schulz_scratch(rows, cols))
    }

    fn step<L: Layout<F>>(&self, mut step: Step<'_, F, L>, _: &mut ()) {
        if !self.is_muon(step.key(), step.params.shape()) {
            step.lr = self.adam.lr.unwrap_or(step.lr);
            return self.fallback(step);
        }
        let (t, lr, wd) = (step.t(), step.lr(), step.weight_decay().unwrap_or(self.weight_decay));
        let Parts { params, grads, state, scratch } = step.parts();
        let n = params.len();
        let rows = params.shape()[0];
        if n == 0 {
            return;
        }
        let cols = n / rows;
        let (input, ns_scratch) = scratch.split_at_mut(n);
        // The momentum, and the matrix to orthogonalise, in row-major order.
        let mu = self.momentum;
        match self.convention {
            MuonConvention::PyTorch => {
                let (average, look_ahead) = (Lerp::<F>::new(1.0 - mu), Lerp::<F>::new(mu));
                each_grad(grads, |i, g| {
                    let b = average.apply(state[i], g);
                    state[i] = b;
                    input[i] = if self.nesterov { look_ahead.apply(g, b) } else { b };
                });
            }
            MuonConvention::Optax => {
                let (beta, c): (F, F) = (cast(mu), cast(1.0 - mu));
                let (bc, bc_next): (F, F) = (cast(bias_correction(mu, t)), cast(bias_correction(mu, t + 1)));
                each_grad(grads, |i, g| {
                    let m = c * g + beta * state[i];
                    state[i] = m;
                    input[i] = if self.nesterov { beta * (m / bc_next) + c * (g / bc) } else { m / bc };
                });
            }
        }
        let o = newton_schulz(
            input,
            rows,
            cols,
            &self.ns_coefficients,
            self.ns_steps,
            self.eps,
            self.preconditioning,
            ns_scratch,
        );
        let (r, c) = (rows as f64, cols as f64);
        match self.convention {
            MuonConvention::PyTorch => {
                let adjusted = match self.adjust_lr {
                    AdjustLr::Original => lr * (r / c).max(1.0).sqrt(),
                    AdjustLr::MatchRmsAdamW => lr * 0.2 * r.max(c).sqrt(),
                    AdjustLr::SpectralUnclamped => lr * (r / c).sqrt(),
                };
                let (keep, step): (F, F) = (cast(1.0 - lr * wd), cast(-adjusted));
                each_param(params, |i, p| *p = add_scaled(*p * keep, step, o[i]));
            }
            MuonConvention::Optax => {
                let mut scale: F = cast(match self.consistent_rms {
                    Some(rms) => r.max(c).sqrt() * rms,
                    None => (c / r).max(1.0).sqrt(),
                });
                if self.adaptive {
                    // ⟨X̂, O⟩ summed in f64: a sum over the whole matrix, whose f32 rounding
                    // otherwise depends on the order of the additions.
                    let dual = input
                        .iter()
                        .zip(o)
                        .fold(0.0, |s, (&x, &o)| s + (x * o).to_f64().unwrap_or(f64::NAN));
                    scale = cast::<F>(dual) * scale;
                }
                let (lr, wd): (F, F) = (cast(lr), cast(wd));
                each_param(params, |i, p| *p = *p - lr * (scale * o[i] + wd * *p));
            }
        }
    }
}

impl MuonRule {
    /// The AdamW step of a key Muon does not take, as the convention's reference computes it:
    /// `torch.optim.AdamW`'s rule, or optax's `adamw` chain (with Muon's ε and Nesterov flag).
    fn fallback<F: Scalar, L: Layout<F>>(&self, step: Step<'_, F, L>) {
        let Fallback { betas, eps, eps_root, weight_decay, .. } = self.adam;
        match self.convention {
            MuonConvention::PyTorch => {
                AdamRule::adamw(betas, eps, weight_decay).step(step, &mut ());
            }
            MuonConvention::Optax => {
                let adam = ScaleByAdam::default().betas(betas).eps(self.eps).eps_root(eps_root);
                let (decay, lr) = (AddDecayedWeights::new(weight_decay), ScaleByLearningRate);
                if self.nesterov {
                    transform::run(&chain!(ScaleByNadam(adam), decay, lr), step);
                } else {
                    transform::run(&chain!(adam, decay, lr), step);
                }
            }
        }
    }
}

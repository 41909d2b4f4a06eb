//! Muon: momentum orthogonalised by Newton–Schulz iterations, with an AdamW fallback.

use crate::engine::{Engine, Layout, Parts, Rule, Scalar, Scope, Step, cast};
use crate::optimizers::AdamRule;
use crate::parts::{Lerp, add_scaled};
use crate::tensor::{Preconditioning, each_grad, each_param, newton_schulz_scratch};
use crate::transform::{
    self, AddDecayedWeights, ScaleByAdam, ScaleByLearningRate, ScaleByMuon, ScaleByNadam,
    ScaleByShape, Transform, matrix,
};
use crate::{Error, chain, check};
use ndarray::IxDyn;

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
    /// scale) plus `λ·p`, times `lr`; fallback: `optax.adamw` with Muon's ε and Nesterov. A
    /// matrix's step is optax's chain, `chain!(`[`ScaleByMuon`]`, `[`ScaleByShape`]`,
    /// `[`AddDecayedWeights`]`, `[`ScaleByLearningRate`]`)`.
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
    /// NorMuon's: `lr·√max(1, shape[−2]/shape[−1])` of the parameter's own last two axes, which
    /// for a convolution filter are its kernel's height and width rather than the matrix's
    /// rows and columns (the original's, for every other key).
    LastTwoAxes,
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
/// For a key of rank ≥ 2 (under [`MuonConvention::PyTorch`] a rank-4 filter read as one
/// `[shape[0], rest]` matrix and any other key as a batch of matrices over its last two axes, as
/// Keller Jordan's `muon.py` does; under [`MuonConvention::Optax`] matrices only, as optax's
/// default dimension numbers, the others taking the fallback):
///
/// ```text
/// PyTorch: B ← lerp(B, g, 1 − μ);  X = lerp(g, B, μ) (nesterov) or B
/// optax:   m ← (1 − μ)·g + μ·m;    X = μ·m/(1 − μᵗ⁺¹) + (1 − μ)·g/(1 − μᵗ) (nesterov) or m/(1 − μᵗ)
/// X ← Xᵀ if rows > cols;   X ← X/max(‖X‖_F, ε) (PyTorch) or X/(‖X‖_F + ε) (optax)
/// ns_steps times:  A = X·Xᵀ;  X ← a·X + (b·A + c·A·A)·X;   O = X (transposed back)
/// PyTorch: p ← p·(1 − lr·λ) − lr·r·O,  r = √max(1, rows/cols), 0.2·√max(rows, cols), √(rows/cols)
///          or √max(1, shape[−2]/shape[−1]) ([`AdjustLr`])
/// optax:   O ← ⟨X̂, O⟩·O (adaptive);  p ← p − lr·(s·O + λ·p),
///          s = √max(1, cols/rows), or √max(rows, cols)·ρ with consistent RMS ρ
/// ```
///
/// Keys of rank < 2 (optax: of rank other than 2), and keys routed away by name
/// ([`Muon::adam_for`]), take an AdamW step with their own hyperparameters in the same `update`
/// (as Keller Jordan's `MuonWithAuxAdam` and optax's partition do): `torch.optim.AdamW`'s rule
/// under [`MuonConvention::PyTorch`], `optax.adamw`'s chain (Nesterov and ε as Muon's) under
/// [`MuonConvention::Optax`].
///
/// The Newton–Schulz iteration runs in the parameter's type (f32 or f64), on one thread, with
/// faer's matrix products (`X·Xᵀ` and `A·A` are symmetric: only their lower halves are computed)
/// writing into scratch space kept per key and never checkpointed. `torch.optim.Muon` casts to
/// bfloat16 for the iteration instead: its results differ from an f32 run by about 1e-4 after 25
/// steps; it also rejects every parameter that is not 2-D, which this type routes or reads as
/// matrices instead.
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
/// State: `momentum_buffer` (PyTorch; NorMuon's also `second_momentum_buffer`) or `mu` (optax)
/// for Muon keys; `exp_avg` and `exp_avg_sq`
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
    /// The momentum and the iteration, in both conventions; optax's transform under
    /// [`MuonConvention::Optax`].
    muon: ScaleByMuon,
    shape: ScaleByShape,
    weight_decay: f64,
    adjust_lr: AdjustLr,
    /// NorMuon's β₂ of the per-neuron second moment, or `None` for Muon.
    neuron_beta2: Option<f64>,
    routes: Vec<Route>,
    adam: Fallback,
}

impl Default for MuonRule {
    fn default() -> Self {
        Self {
            convention: MuonConvention::PyTorch,
            muon: ScaleByMuon::default()
                .eps(1e-7)
                .preconditioning(Preconditioning::FrobeniusClamp),
            shape: ScaleByShape::default(),
            weight_decay: 0.1,
            adjust_lr: AdjustLr::Original,
            neuron_beta2: None,
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
    /// Sets the decoupled weight decay λ of Muon keys, `>= 0` (default 0.1; optax 0).
    weight_decay: f64,
    /// Sets `torch.optim.Muon`'s learning-rate adjustment (default [`AdjustLr::Original`]).
    adjust_lr: AdjustLr,
});

setters!(Muon [r => r.shape] {
    /// Scales updates by `√max(rows, cols)·ρ` instead of `√max(1, cols/rows)` (optax's
    /// `consistent_rms`, default `None`).
    consistent_rms: Option<f64>,
});

setters!(Muon [r => r.muon] {
    /// Sets the momentum μ (optax's `beta`), in `[0, 1)` (default 0.95).
    momentum: f64,
    /// Uses Nesterov momentum (default `true`, in both references).
    nesterov: bool,
    /// Sets the number of Newton–Schulz iterations (default 5).
    ns_steps: usize,
    /// Sets ε of the normalisation (default 1e-7, a clamp; optax 1e-8, added). Under
    /// [`MuonConvention::Optax`] the fallback uses it too, as optax does.
    eps: f64,
    /// Sets how the iteration's input is scaled (default [`Preconditioning::FrobeniusClamp`],
    /// PyTorch's; [`Muon::optax`]: [`Preconditioning::Frobenius`]; optax also offers
    /// [`Preconditioning::Aol`] and [`Preconditioning::Schatten`]; [`Muon::polar_express`]:
    /// [`Preconditioning::PolarExpress`]).
    preconditioning: Preconditioning,
    /// Scales the orthogonalised update by its inner product with the momentum (optax's
    /// `adaptive`, default `false`).
    adaptive: bool,
});

impl<F: Scalar> Muon<F> {
    /// `optax.contrib.muon`'s conventions and defaults ([`MuonConvention::Optax`]).
    pub fn optax() -> Self {
        Self::new(MuonRule {
            convention: MuonConvention::Optax,
            muon: ScaleByMuon::default(),
            weight_decay: 0.0,
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
        self.with(|r| r.muon.ns_coefficients = [coefficients].into())
    }

    /// `torch.optim.Muon` with its Newton–Schulz iteration replaced by Polar Express (Amsel et
    /// al., 2025, "The Polar Express: Optimal Matrix Sign Methods and Their Application to the
    /// Muon Algorithm"), as microsoft/dion's `polar_express` computes it: `X = G/(1.02·‖G‖_F + ε)`
    /// ([`Preconditioning::PolarExpress`]), then one iteration per row of
    /// [`MuonRule::POLAR_EXPRESS_COEFFICIENTS`], in the parameter's type (dion's runs in
    /// bfloat16). PyTorch's other defaults.
    pub fn polar_express() -> Self {
        Self::default()
            .ns_schedule(MuonRule::POLAR_EXPRESS_COEFFICIENTS.into())
            .preconditioning(Preconditioning::PolarExpress)
    }

    /// NorMuon (Li et al., 2025, "NorMuon: Making Muon more efficient and scalable"), as its
    /// official `SingleDeviceNorMuonWithAuxAdam` computes it: `torch.optim.Muon`'s momentum and
    /// iteration (`X/(‖X‖_F + 1e-7)`, [`Preconditioning::Frobenius`]), then the orthogonalised
    /// update `O` normalised per neuron (per row of the parameter's last axis) by a second moment
    /// of its own, keeping its norm:
    ///
    /// ```text
    /// n₀ = ‖O‖ per matrix of the last two axes;   s ← lerp(s, mean(O², last axis), 1 − β₂)
    /// O ← O/(√s + 1e-10);   O ← O·n₀/(‖O‖ + 1e-10);   p ← p·(1 − lr·λ) − lr·√max(1, shape[−2]/shape[−1])·O
    /// ```
    ///
    /// `s` (`second_momentum_buffer`, the parameter's shape with a last axis of 1) starts at
    /// zero and is not bias-corrected. Defaults are the reference's: learning rate 0.02, μ = 0.95,
    /// Nesterov, weight decay 0, β₂ = 0.95 ([`Muon::neuron_beta2`]), [`AdjustLr::LastTwoAxes`];
    /// the fallback (keys of rank < 2, routed keys) its auxiliary Adam's: learning rate 3e-4,
    /// betas (0.9, 0.95), ε 1e-10, weight decay 0.
    pub fn normuon() -> Self {
        Self::default()
            .lr(0.02)
            .weight_decay(0.0)
            .preconditioning(Preconditioning::Frobenius)
            .adjust_lr(AdjustLr::LastTwoAxes)
            .neuron_beta2(Some(0.95))
            .adam_lr(Some(3e-4))
            .adam_betas(0.9, 0.95)
            .adam_eps(1e-10)
            .adam_weight_decay(0.0)
    }

    /// Sets NorMuon's β₂, the decay of the per-neuron second moment, in `[0, 1)`; `None` (the
    /// default but for [`Muon::normuon`]) is Muon without that normalisation. PyTorch convention
    /// only: [`MuonConvention::Optax`] refuses it.
    #[must_use]
    pub fn neuron_beta2(self, beta2: Option<f64>) -> Self {
        self.with(|r| r.neuron_beta2 = beta2)
    }

    /// Sets one triple of coefficients per iteration (optax's `(n, 3)` `ns_coeffs`, such as
    /// [`MuonRule::DION_NS_COEFFICIENTS`]): the iteration runs once per row, and there may be at
    /// most `ns_steps` rows, as optax requires.
    #[must_use]
    pub fn ns_schedule(self, coefficients: Vec<[f64; 3]>) -> Self {
        self.with(|r| r.muon.ns_coefficients = coefficients.into())
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
    /// Polar Express's coefficients ([`ScaleByMuon::POLAR_EXPRESS_COEFFICIENTS`]).
    pub const POLAR_EXPRESS_COEFFICIENTS: [[f64; 3]; 5] = ScaleByMuon::POLAR_EXPRESS_COEFFICIENTS;

    /// optax's `"dion"` preset: five iterations with their own coefficients.
    pub const DION_NS_COEFFICIENTS: [[f64; 3]; 5] = ScaleByMuon::DION_NS_COEFFICIENTS;

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
    const SCOPE: Scope = Scope::Tensor;

    hyperparameters!(Momentum => (muon.momentum), WeightDecay => (weight_decay));

    fn validate(&self) -> Result<(), Error> {
        <ScaleByMuon as Transform<F>>::validate(&self.muon)?;
        <ScaleByShape as Transform<F>>::validate(&self.shape)?;
        check::non_negative("weight decay value", self.weight_decay)?;
        if let Some(beta2) = self.neuron_beta2 {
            check::unit_interval("neuron beta2 value", beta2)?;
            if self.convention == MuonConvention::Optax {
                return Err(Error::IncompatibleOptions {
                    reason: "NorMuon's per-neuron normalisation (neuron_beta2) needs the PyTorch convention",
                });
            }
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
        match (self.convention, self.neuron_beta2) {
            (MuonConvention::PyTorch, None) => vec!["momentum_buffer", "exp_avg", "exp_avg_sq"],
            (MuonConvention::PyTorch, Some(_)) => vec![
                "momentum_buffer",
                "second_momentum_buffer",
                "exp_avg",
                "exp_avg_sq",
            ],
            (MuonConvention::Optax, _) => vec!["mu", "nu"],
        }
    }

    fn slots(&self, key: &str, shape: &[usize]) -> Vec<(&'static str, ndarray::IxDyn)> {
        let same = |names: &[&'static str]| names.iter().map(|&n| (n, IxDyn(shape))).collect();
        match (self.is_muon(key, shape), self.convention) {
            (true, MuonConvention::PyTorch) => {
                let mut slots: Vec<_> = same(&["momentum_buffer"]);
                if self.neuron_beta2.is_some() {
                    // One second moment per neuron: the parameter's shape with a last axis of 1.
                    let mut neurons = shape.to_vec();
                    if let Some(last) = neurons.last_mut() {
                        *last = 1;
                    }
                    slots.push(("second_momentum_buffer", IxDyn(&neurons)));
                }
                slots
            }
            (true, MuonConvention::Optax) => same(&["mu"]),
            (false, MuonConvention::PyTorch) => same(&["exp_avg", "exp_avg_sq"]),
            (false, MuonConvention::Optax) => same(&["mu", "nu"]),
        }
    }

    fn scratch(&self, key: &str, shape: &[usize]) -> usize {
        match (self.is_muon(key, shape), self.convention) {
            (true, MuonConvention::PyTorch) => {
                let (_, rows, cols) = matrices(shape);
                let n = shape.iter().product::<usize>();
                n.saturating_add(newton_schulz_scratch(rows, cols))
            }
            (true, MuonConvention::Optax) => transform::scratch::<F, _>(&self.muon, shape),
            (false, _) => 0,
        }
    }

    fn step<L: Layout<F>>(&self, mut step: Step<'_, F, L>, _: &mut ()) {
        let decay = AddDecayedWeights::new(self.weight_decay);
        match (self.is_muon(step.key(), step.params.shape()), self.convention) {
            (true, MuonConvention::Optax) => {
                let muon = chain!(self.muon.clone(), self.shape, decay, ScaleByLearningRate);
                transform::run(&muon, step);
            }
            (true, MuonConvention::PyTorch) => self.torch(step),
            (false, _) => {
                step.lr = self.adam.lr.unwrap_or(step.lr);
                self.fallback(step);
            }
        }
    }
}

impl MuonRule {
    /// `torch.optim.Muon`'s step of a matrix key, in its order of operations: the momentum
    /// into the scratch space, the iteration, then `p·(1 − lr·λ) − lr·r·O`.
    fn torch<F: Scalar, L: Layout<F>>(&self, step: Step<'_, F, L>) {
        let (lr, wd) = (step.lr(), step.weight_decay().unwrap_or(self.weight_decay));
        let shape = step.params.shape();
        let (_, rows, cols) = matrices(shape);
        let (last_rows, last_cols) = match shape {
            [.., r, c] => (*r, *c),
            _ => (1, 1),
        };
        let Parts { params, grads, state, scratch } = step.parts();
        let n = params.len();
        if n == 0 || scratch.len() < n || state.len() < n {
            return; // scratch and state are sized by `Rule::scratch` and `slots`: an empty key
        }
        let (input, scratch) = scratch.split_at_mut(n);
        let (momentum, neurons) = state.split_at_mut(n);
        let mu = self.muon.momentum;
        let (average, look_ahead) = (Lerp::<F>::new(1.0 - mu), Lerp::<F>::new(mu));
        each_grad(grads, |i, g| {
            let b = average.apply(momentum[i], g);
            momentum[i] = b;
            input[i] = if self.muon.nesterov { look_ahead.apply(g, b) } else { b };
        });
        for x in input.chunks_exact_mut(rows * cols) {
            let o = self.muon.orthogonalize(x, rows, cols, scratch);
            x.copy_from_slice(o);
        }
        if let Some(beta2) = self.neuron_beta2 {
            normalize_neurons(beta2, input, neurons, last_rows, last_cols);
        }
        let (r, c) = (rows as f64, cols as f64);
        let adjusted = match self.adjust_lr {
            AdjustLr::Original => lr * (r / c).max(1.0).sqrt(),
            AdjustLr::MatchRmsAdamW => lr * 0.2 * r.max(c).sqrt(),
            AdjustLr::SpectralUnclamped => lr * (r / c).sqrt(),
            AdjustLr::LastTwoAxes => lr * (last_rows as f64 / last_cols as f64).max(1.0).sqrt(),
        };
        let (keep, step): (F, F) = (cast(1.0 - lr * wd), cast(-adjusted));
        each_param(params, |i, p| *p = add_scaled(*p * keep, step, input[i]));
    }

    /// The AdamW step of a key Muon does not take, as the convention's reference computes it:
    /// `torch.optim.AdamW`'s rule, or optax's `adamw` chain (with Muon's ε and Nesterov flag).
    fn fallback<F: Scalar, L: Layout<F>>(&self, step: Step<'_, F, L>) {
        let Fallback { betas, eps, eps_root, weight_decay, .. } = self.adam;
        match self.convention {
            MuonConvention::PyTorch => {
                AdamRule::adamw(betas, eps, weight_decay).step(step, &mut ());
            }
            MuonConvention::Optax => {
                let adam = ScaleByAdam::default().betas(betas).eps(self.muon.eps).eps_root(eps_root);
                let (decay, lr) = (AddDecayedWeights::new(weight_decay), ScaleByLearningRate);
                if self.muon.nesterov {
                    transform::run(&chain!(ScaleByNadam(adam), decay, lr), step);
                } else {
                    transform::run(&chain!(adam, decay, lr), step);
                }
            }
        }
    }
}

/// How PyTorch-style Muon reads a key of rank >= 2 as `(count, rows, cols)` matrices, as Keller
/// Jordan's `muon.py` and NorMuon do: a rank-4 filter as one `shape[0] × rest` matrix, any other
/// key as a batch of matrices over its last two axes.
fn matrices(shape: &[usize]) -> (usize, usize, usize) {
    match shape {
        [_, _, _, _] => {
            let (rows, cols) = matrix(shape);
            (1, rows, cols)
        }
        [batch @ .., rows, cols] => (batch.iter().product(), *rows, *cols),
        _ => (1, 1, shape.iter().product()),
    }
}

/// NorMuon's per-neuron normalisation of `o` (the orthogonalised update, in the parameter's
/// shape, whose last two axes are `rows × cols`): per matrix of the last two axes,
/// `n₀ = ‖O‖`; per row, `s ← lerp(s, mean(O²), 1 − β₂)` and `O ← O/(√s + 1e-10)`; then
/// `O ← O·n₀/(‖O‖ + 1e-10)`. `s` holds one second moment per row.
fn normalize_neurons<F: Scalar>(beta2: f64, o: &mut [F], s: &mut [F], rows: usize, cols: usize) {
    let eps: F = cast(NEURON_EPS);
    let (lerp, width): (Lerp<F>, F) = (Lerp::new(1.0 - beta2), cast(cols as f64));
    let norm = |x: &[F]| x.iter().fold(F::zero(), |t, &v| t + v * v).sqrt();
    for (matrix, s) in o.chunks_exact_mut(rows * cols).zip(s.chunks_exact_mut(rows)) {
        let before = norm(matrix);
        for (row, s) in matrix.chunks_exact_mut(cols).zip(s) {
            *s = lerp.apply(*s, row.iter().fold(F::zero(), |t, &v| t + v * v) / width);
            let scale = F::one() / (s.sqrt() + eps);
            row.iter_mut().for_each(|v| *v = *v * scale);
        }
        let scale = before / (norm(matrix) + eps);
        matrix.iter_mut().for_each(|v| *v = *v * scale);
    }
}

/// NorMuon's ε of its per-neuron normalisation.
const NEURON_EPS: f64 = 1e-10;

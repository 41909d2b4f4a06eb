//! Adam: the book's, the paper's and PyTorch's, with PyTorch's options.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, Lerp, add_alpha, pow};
use crate::{Error, Store, check};

/// Where Adam's ε goes, and with it each reference's arithmetic. The two agree except where `√v`
/// is comparable to ε.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AdamConvention {
    /// The book's (*Deep Learning from Scratch*, `common/optimizer.py`): bias correction folded
    /// into the step size, ε added to the raw `√v`:
    /// `m ← m + (1 − β₁)(g − m)`, `v ← v + (1 − β₂)(g² − v)`,
    /// `p ← p − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε)`.
    #[default]
    Book,
    /// The paper's (Kingma & Ba, 2015, Algorithm 1) as `torch.optim.Adam` computes it: ε added to
    /// the bias-corrected `√v̂`: `m ← lerp(m, g, 1 − β₁)`, `v ← β₂·v + (1 − β₂)·g²`,
    /// `p ← p − lr/(1 − β₁ᵗ) · m / (√v / √(1 − β₂ᵗ) + ε)`.
    PyTorch,
    /// torch-optimi's (`optimi.Adam`, `optimi.AdamW`): the bias correction folded into
    /// debiased betas `β̂ = (βᵗ − β)/(βᵗ − 1)` (0 at the first step), so that the state holds
    /// bias-corrected moments, and ε added to their `√v`:
    /// `m ← lerp(m, g, 1 − β̂₁)`, `v ← β̂₂·v + (1 − β̂₂)·g²`, `p ← p − lr · m / (√v + ε)`.
    /// Each operation rounds its result to the type of the tensor it writes, as PyTorch's
    /// bfloat16 operations do, so that on [`Mixed`](crate::Mixed) layouts (with
    /// [`Rounding::Kahan`](crate::Rounding::Kahan) or without) it is bit for bit torch-optimi's
    /// `AdamW` on bfloat16 parameters. Weight decay decoupled (optimi's `AdamW`) or coupled.
    Optimi,
}

/// Adam (Kingma & Ba, 2015): momentum and per-element scaling by the root of a running mean of
/// squared gradients, both bias-corrected.
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (coupled weight decay)  or  p ← p·(1 − lr·λ) (decoupled)
/// m ← β₁·m + (1 − β₁)·g;   v ← β₂·v + (1 − β₂)·g²
/// v̂max ← max(v̂max, v) with amsgrad, and it replaces v below
/// Book:    p ← p − lr·√(1 − β₂ᵗ)/(1 − β₁ᵗ) · m / (√v + ε)
/// PyTorch: p ← p − lr/(1 − β₁ᵗ) · m / (√v/√(1 − β₂ᵗ) + ε)
/// ```
///
/// [`Adam::default`] is the book's `Adam` (*Deep Learning from Scratch*, `common/optimizer.py`):
/// [`AdamConvention::Book`], learning rate 0.001, β₁ = 0.9, β₂ = 0.999, ε = 1e-7.
/// [`Adam::pytorch`] is `torch.optim.Adam`: [`AdamConvention::PyTorch`], ε = 1e-8, the same
/// learning rate and betas. Options from PyTorch: `amsgrad` (Reddi et al., 2018), weight decay
/// (coupled L2, or decoupled as in [`AdamW`](crate::AdamW)), `maximize`.
///
/// State: `exp_avg` (m), `exp_avg_sq` (v), and `max_exp_avg_sq` with amsgrad, with PyTorch's
/// names; and a step count per key, so a key first updated later starts its own bias correction.
///
/// ```
/// use ndoptim::{Adam, AdamConvention, Optimizer};
/// let book: Adam<f32> = Adam::default().lr(3e-4).beta2(0.99);
/// assert_eq!(book.learning_rate(), 3e-4);
/// let torch: Adam<f32> = Adam::pytorch().amsgrad(true).weight_decay(1e-2);
/// assert_eq!(torch.rule().convention(), AdamConvention::PyTorch);
/// ```
pub type Adam<F = f32> = Engine<AdamRule, F>;

/// The rule of [`Adam`] (and, with decoupled weight decay, of [`AdamW`](crate::AdamW)).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdamRule {
    betas: [f64; 2],
    eps: f64,
    amsgrad: bool,
    convention: AdamConvention,
    options: GradientOptions,
}

impl Default for AdamRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-7,
            amsgrad: false,
            convention: AdamConvention::Book,
            options: GradientOptions::default(),
        }
    }
}

impl AdamRule {
    /// `torch.optim.Adam`'s defaults.
    pub(crate) fn pytorch() -> Self {
        Self {
            eps: 1e-8,
            convention: AdamConvention::PyTorch,
            ..Self::default()
        }
    }

    /// `torch.optim.AdamW`'s rule with these betas, ε and (decoupled) weight decay.
    pub(crate) fn adamw(betas: [f64; 2], eps: f64, weight_decay: f64) -> Self {
        Self {
            betas,
            eps,
            options: GradientOptions::decoupled().with_weight_decay(weight_decay),
            ..Self::pytorch()
        }
    }

    /// The epsilon convention.
    pub fn convention(&self) -> AdamConvention {
        self.convention
    }
}

impl AsMut<AdamRule> for AdamRule {
    fn as_mut(&mut self) -> &mut AdamRule {
        self
    }
}

shares!(AdamRule: options, decoupled, fully_decoupled, betas);

impl<F: Scalar> Adam<F> {
    /// `torch.optim.Adam`'s defaults: [`AdamConvention::PyTorch`], learning rate 0.001,
    /// betas (0.9, 0.999), ε = 1e-8.
    pub fn pytorch() -> Self {
        Self::new(AdamRule::pytorch())
    }
}

/// The debiased β of torch-optimi at step `t`: `(βᵗ − β)/(βᵗ − 1)`.
pub(crate) fn debiased(beta: f64, t: f64) -> f64 {
    let bt = pow(beta, t);
    (bt - beta) / (bt - 1.0)
}

/// torch-optimi's moments at step `t`, with its debiased betas: `m ← lerp(m, g, 1 − β̂₁)`,
/// `v ← β̂₂·v + (1 − β̂₂)·g²`, each operation rounded to the state's type `S`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OptimiMoments<F> {
    mean: Lerp<F>,
    b2: F,
    c2: F,
}

impl<F: Scalar> OptimiMoments<F> {
    pub(crate) fn new([beta1, beta2]: [f64; 2], t: u64) -> Self {
        let b2h = debiased(beta2, t as f64);
        Self {
            mean: Lerp::new(1.0 - debiased(beta1, t as f64)),
            b2: cast(b2h),
            c2: cast(1.0 - b2h),
        }
    }

    #[inline(always)]
    pub(crate) fn update<S: Store<F>>(&self, m: &mut F, v: &mut F, g: F) {
        *m = S::rounded(self.mean.apply_fused(*m, g));
        *v = S::rounded(S::rounded(*v * self.b2) + self.c2 * g * g);
    }
}

/// Options of Adam and AdamW (and the betas, weight decay and maximize that other rules share).
impl<R: Rule<F> + AsMut<AdamRule>, F: Scalar> Engine<R, F> {
    /// Sets ε (default 1e-7 for the book's Adam, 1e-8 for PyTorch's and AdamW).
    #[must_use]
    pub fn eps(self, eps: f64) -> Self {
        self.with(|r| r.as_mut().eps = eps)
    }

    /// Uses the AMSGrad variant: the maximum of all `v` so far in the denominator (default
    /// `false`).
    #[must_use]
    pub fn amsgrad(self, amsgrad: bool) -> Self {
        self.with(|r| r.as_mut().amsgrad = amsgrad)
    }

    /// Sets where ε goes, and with it the reference's arithmetic.
    #[must_use]
    pub fn convention(self, convention: AdamConvention) -> Self {
        self.with(|r| r.as_mut().convention = convention)
    }
}

impl<F: Scalar> Rule<F> for AdamRule {
    type KeyScalars = ();
    const NAME: &'static str = "Adam";
    const DEFAULT_LR: f64 = 0.001;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (options.weight_decay),
    );

    fn name(&self) -> &'static str {
        if self.options.decoupled { "AdamW" } else { "Adam" }
    }

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("epsilon value", self.eps)?;
        check::betas(self.betas)?;
        if self.amsgrad && self.convention == AdamConvention::Optimi {
            return Err(Error::IncompatibleOptions {
                reason: "torch-optimi's Adam has no amsgrad",
            });
        }
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        if self.amsgrad {
            vec!["exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
        } else {
            vec!["exp_avg", "exp_avg_sq"]
        }
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (lr, t) = (step.lr(), step.t() as f64);
        let [beta1, beta2] = self.betas;
        let (bc1, bc2) = (1.0 - pow(beta1, t), 1.0 - pow(beta2, t));
        let (c1, c2, b2, eps): (F, F, F, F) =
            (cast(1.0 - beta1), cast(1.0 - beta2), cast(beta2), cast(self.eps));
        // Each reference's arithmetic: the first moments are the same operations; the second
        // moments and the denominators differ.
        if self.convention == AdamConvention::Optimi {
            return self.optimi(step);
        }
        if self.convention == AdamConvention::Book {
            let step_size: F = cast(lr * bc2.sqrt() / bc1);
            let moments = move |m: &mut F, v: &mut F, g: F| {
                *m = *m + c1 * (g - *m);
                *v = *v + c2 * (g * g - *v);
            };
            adam(&self.options, step, self.amsgrad, moments, move |v: F| v.sqrt() + eps, step_size);
        } else {
            let (step_size, bc2_sqrt): (F, F) = (cast(lr / bc1), cast(bc2.sqrt()));
            let moments = move |m: &mut F, v: &mut F, g: F| {
                *m = *m + c1 * (g - *m);
                *v = *v * b2 + c2 * g * g;
            };
            adam(&self.options, step, self.amsgrad, moments, move |v: F| v.sqrt() / bc2_sqrt + eps, step_size);
        }
    }
}

/// The Adam update around a reference's `moments` and `denominator`, with or without amsgrad's
/// running maximum: one branch-free loop per combination.
#[inline(always)]
fn adam<F: Scalar, L: Layout<F>>(
    options: &GradientOptions,
    step: Step<'_, F, L>,
    amsgrad: bool,
    moments: impl Fn(&mut F, &mut F, F) + Copy + Sync,
    denominator: impl Fn(F) -> F + Copy + Sync,
    step_size: F,
) {
    if amsgrad {
        options.for_each(step, move |p, g, [m, v, vmax]: &mut [F; 3]| {
            moments(m, v, g);
            *vmax = vmax.max(*v);
            *p = *p - step_size * *m / denominator(*vmax);
        });
    } else {
        options.for_each(step, move |p, g, [m, v]: &mut [F; 2]| {
            moments(m, v, g);
            *p = *p - step_size * *m / denominator(*v);
        });
    }
}

impl AdamRule {
    /// [`AdamConvention::Optimi`]: torch-optimi's Adam step.
    fn optimi<F: Scalar, L: Layout<F>>(&self, step: Step<'_, F, L>) {
        let lr = step.lr();
        optimi_step(step, lr, &self.options, self.betas, self.eps, OptimiScale::Adaptive(lr));
    }
}

/// How torch-optimi's Adam family scales its step.
#[derive(Clone, Copy, Debug)]
pub(crate) enum OptimiScale {
    /// `−s·m/(√v + ε)`: Adam's with `s = lr`, RAdam's rectified with `s = lr·r`.
    Adaptive(f64),
    /// `−lr·m`: RAdam while the variance is intractable (SGD with momentum).
    Momentum,
}

/// torch-optimi's Adam family (`Adam`, `AdamW`, `RAdam`, and the steps of `Ranger` and
/// `StableAdamW`) for one element: debiased betas, its operations in its order, each rounded to
/// the type it writes (`L::State` for the moments and the denominator, `L::Param` for the
/// parameter and PyTorch's `add_(x, alpha)`), the step returned as the update for the engine's
/// rounding to add.
#[derive(Clone, Copy, Debug)]
pub(crate) struct OptimiUpdate<F> {
    moments: OptimiMoments<F>,
    sign: F,
    eps: F,
    keep: F,
    l2: F,
    adaptive: bool,
    neg: F,
}

impl<F: Scalar> OptimiUpdate<F> {
    /// The step at learning rate `lr` (the step's own, or StableAdamW's scaled one) for the
    /// weight decay of `step`'s group or `options`.
    pub(crate) fn new<L: Layout<F>>(
        step: &Step<'_, F, L>,
        lr: f64,
        options: &GradientOptions,
        betas: [f64; 2],
        eps: f64,
        scale: OptimiScale,
    ) -> Self {
        let wd = step.weight_decay().unwrap_or(options.weight_decay);
        let (keep, l2) = match (wd == 0.0, options.decoupled) {
            (true, _) => (F::one(), F::zero()),
            (false, true) => (cast(options.decay_factor(lr, wd)), F::zero()),
            (false, false) => (F::one(), cast(wd)),
        };
        let (adaptive, neg) = match scale {
            OptimiScale::Adaptive(s) => (true, cast(-s)),
            OptimiScale::Momentum => (false, cast(-lr)),
        };
        Self {
            moments: OptimiMoments::new(betas, step.t()),
            sign: options.sign(),
            eps: L::State::rounded(cast(eps)),
            keep,
            l2,
            adaptive,
            neg,
        }
    }

    /// Decays `p` and updates the moments from `g`; returns the update `p` receives.
    #[inline(always)]
    pub(crate) fn update<L: Layout<F>>(&self, p: &mut F, g: F, m: &mut F, v: &mut F) -> F {
        let round_s = L::State::rounded;
        *p = L::Param::rounded(*p * self.keep);
        let g = if self.l2 == F::zero() {
            g * self.sign
        } else {
            add_alpha::<F, L>(g * self.sign, self.l2, *p)
        };
        self.moments.update::<L::State>(m, v, g);
        if self.adaptive {
            self.neg * *m / round_s(round_s(v.sqrt()) + self.eps)
        } else {
            // `p.add_(m, alpha=−lr)`: the update as PyTorch's loop rounds it.
            add_alpha::<F, L>(F::zero(), self.neg, *m)
        }
    }
}

/// The step of torch-optimi's Adam family over a key ([`OptimiUpdate`]) at learning rate `lr`.
pub(crate) fn optimi_step<F: Scalar, L: Layout<F>>(
    step: Step<'_, F, L>,
    lr: f64,
    options: &GradientOptions,
    betas: [f64; 2],
    eps: f64,
    scale: OptimiScale,
) {
    let update = OptimiUpdate::new(&step, lr, options, betas, eps, scale);
    // Inlined by force: a closure this long would otherwise stay a call per element.
    step.for_each_update(
        #[inline(always)]
        move |p, g, [m, v]: &mut [F; 2]| update.update::<L>(p, g, m, v),
    );
}

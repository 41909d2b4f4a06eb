//! Pieces the algorithms share, written once: maximize and weight decay (coupled or decoupled),
//! and the elementwise helpers PyTorch's kernels use (`lerp`, `sign`).

use crate::engine::{Engine, Layout, Rule, Scalar, Slots, Step, cast};
use crate::{Error, check};

/// `maximize` and weight decay, the options most PyTorch optimizers share.
///
/// Applied to the gradient before the algorithm sees it, in PyTorch's order: negate the gradient
/// when maximizing, then either add `weight_decay·p` to it (coupled, L2 regularization) or shrink
/// the parameter by `1 − lr·weight_decay` (decoupled, as in AdamW).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct GradientOptions {
    pub(crate) maximize: bool,
    pub(crate) weight_decay: f64,
    pub(crate) decoupled: bool,
    /// torch-optimi's `max_lr` of fully decoupled weight decay (`decouple_lr`): the decay then
    /// follows the learning rate's schedule, not its size.
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) max_lr: Option<f64>,
}

impl GradientOptions {
    /// Decoupled weight decay, for algorithms that only have that kind (Lion, Adafactor).
    pub(crate) fn decoupled() -> Self {
        Self {
            decoupled: true,
            ..Self::default()
        }
    }

    /// These options with weight decay λ.
    pub(crate) fn with_weight_decay(self, weight_decay: f64) -> Self {
        Self {
            weight_decay,
            ..self
        }
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Some(max_lr) = self.max_lr
            && !(max_lr > 0.0 && max_lr.is_finite())
        {
            return check::fail("maximum learning rate", max_lr, "a finite number > 0");
        }
        check::non_negative("weight_decay value", self.weight_decay)
    }

    /// The factor of decoupled weight decay at learning rate `lr`: `1 − lr·λ`, or with a
    /// `max_lr` (fully decoupled) `1 − (lr / max_lr)·λ`, in torch-optimi's order.
    pub(crate) fn decay_factor(&self, lr: f64, weight_decay: f64) -> f64 {
        match self.max_lr {
            Some(max_lr) => 1.0 - (lr / max_lr) * weight_decay,
            None => 1.0 - lr * weight_decay,
        }
    }

    /// Runs `f(p, g, slots)` over every element like [`Step::for_each`], `g` being the gradient
    /// these options prepare: negated when maximizing, then `g + λ·p` (coupled), or `g` after
    /// `p ← p·(1 − lr·λ)` (decoupled). The weight-decay choice is made here, once, so that each
    /// loop stays free of branches and vectorizes.
    #[inline(always)]
    pub(crate) fn for_each<F: Scalar, L: Layout<F>, S: Slots<F>>(
        &self,
        step: Step<'_, F, L>,
        f: impl Fn(&mut F, F, &mut S) + Sync,
    ) {
        let (sign, wd) = (
            self.sign::<F>(),
            step.weight_decay().unwrap_or(self.weight_decay),
        );
        if wd == 0.0 {
            step.for_each(move |p, g, s| f(p, g * sign, s));
        } else if self.decoupled {
            let keep: F = cast(self.decay_factor(step.lr(), wd));
            step.for_each(move |p, g, s| {
                *p = *p * keep;
                f(p, g * sign, s)
            });
        } else {
            let wd: F = cast(wd);
            step.for_each(move |p, g, s| {
                let g = add_scaled(g * sign, wd, *p);
                f(p, g, s)
            });
        }
    }

    /// `−1` when maximizing, else `1`: multiplying by it negates exactly.
    pub(crate) fn sign<F: Scalar>(&self) -> F {
        if self.maximize { -F::one() } else { F::one() }
    }

    /// The factor of decoupled weight decay at learning rate `lr` (1 without), with `weight_decay`
    /// replacing the options' own when a group sets one.
    pub(crate) fn keep<F: Scalar>(&self, lr: f64, weight_decay: Option<f64>) -> F {
        let wd = weight_decay.unwrap_or(self.weight_decay);
        if self.decoupled {
            cast(self.decay_factor(lr, wd))
        } else {
            F::one()
        }
    }
}

/// Rules whose gradient passes through [`GradientOptions`].
pub trait HasGradientOptions {
    /// The rule's options.
    fn gradient_options(&mut self) -> &mut GradientOptions;
}

/// Rules that offer both kinds of weight decay.
pub trait HasDecoupledWeightDecay: HasGradientOptions {}

/// Rules whose decoupled weight decay can follow the learning rate's schedule without its size
/// (torch-optimi's `decouple_lr`).
pub trait HasFullyDecoupledWeightDecay: HasGradientOptions {}

impl<R: Rule<F> + HasGradientOptions, F: Scalar> Engine<R, F> {
    /// Sets the weight decay, `>= 0` (default 0: none).
    #[must_use]
    pub fn weight_decay(self, weight_decay: f64) -> Self {
        self.with(|r| r.gradient_options().weight_decay = weight_decay)
    }

    /// Maximizes the objective instead of minimizing it (default `false`).
    #[must_use]
    pub fn maximize(self, maximize: bool) -> Self {
        self.with(|r| r.gradient_options().maximize = maximize)
    }
}

impl<R: Rule<F> + HasDecoupledWeightDecay, F: Scalar> Engine<R, F> {
    /// Applies weight decay decoupled from the gradient, `p ← p·(1 − lr·λ)` before the update, as
    /// AdamW does, instead of adding `λ·p` to the gradient (default `false`).
    #[must_use]
    pub fn decoupled_weight_decay(self, decoupled: bool) -> Self {
        self.with(|r| r.gradient_options().decoupled = decoupled)
    }
}

impl<R: Rule<F> + HasFullyDecoupledWeightDecay, F: Scalar> Engine<R, F> {
    /// Fully decoupled weight decay (torch-optimi's `decouple_lr`): `p ← p·(1 − (lr/max_lr)·λ)`
    /// before the update, so that the decay follows the learning rate's schedule relative to its
    /// peak `max_lr` but not its size; `λ` is then of the order of 1e-5 to 1e-3. `None` returns
    /// to decay by `lr·λ`. Implies decoupled weight decay.
    #[must_use]
    pub fn fully_decoupled_weight_decay(self, max_lr: Option<f64>) -> Self {
        self.with(|r| {
            let o = r.gradient_options();
            o.decoupled |= max_lr.is_some();
            o.max_lr = max_lr;
        })
    }
}

/// PyTorch's `lerp(a, b, w)` for a fixed weight: `a + w·(b − a)` for `|w| < 0.5`, else
/// `b − (b − a)·(1 − w)`, with `w` and `1 − w` in the element type.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Lerp<F> {
    w: F,
    one_minus_w: F,
    from_start: bool,
}

impl<F: Scalar> Lerp<F> {
    pub(crate) fn new(w: f64) -> Self {
        let w: F = cast(w);
        Self {
            w,
            one_minus_w: F::one() - w,
            from_start: w.abs() < cast(0.5),
        }
    }

    /// PyTorch's CPU `lerp_` with a scalar weight, each form one fused multiply-add:
    /// `fma(w, b − a, a)` for `|w| < 0.5`, else `fma(w − 1, b − a, b)`.
    #[inline(always)]
    pub(crate) fn apply_fused(&self, a: F, b: F) -> F {
        let d = b - a;
        let (from_start, from_end) = (self.w.mul_add(d, a), (-self.one_minus_w).mul_add(d, b));
        if self.from_start {
            from_start
        } else {
            from_end
        }
    }

    /// Both forms are computed and one selected, so that loops stay free of branches.
    #[inline(always)]
    pub(crate) fn apply(&self, a: F, b: F) -> F {
        let (from_start, from_end) = (a + self.w * (b - a), b - (b - a) * self.one_minus_w);
        if self.from_start {
            from_start
        } else {
            from_end
        }
    }
}

/// The sign as PyTorch and NumPy define it: `0` for `±0`, NaN for NaN.
#[inline(always)]
pub(crate) fn sign<F: Scalar>(x: F) -> F {
    if x > F::zero() {
        F::one()
    } else if x < F::zero() {
        -F::one()
    } else {
        x
    }
}

/// Rules with PyTorch's `betas`: decay rates of running averages.
pub trait HasBetas {
    /// The rule's `[β₁, β₂]`.
    fn betas(&mut self) -> &mut [f64; 2];
}

impl<R: Rule<F> + HasBetas, F: Scalar> Engine<R, F> {
    /// Sets β₁, the decay of the first moment, in `[0, 1)`.
    #[must_use]
    pub fn beta1(self, beta1: f64) -> Self {
        self.with(|r| r.betas()[0] = beta1)
    }

    /// Sets β₂, the decay of the second moment, in `[0, 1)`.
    #[must_use]
    pub fn beta2(self, beta2: f64) -> Self {
        self.with(|r| r.betas()[1] = beta2)
    }

    /// Sets both betas, as PyTorch's `betas=(β₁, β₂)`.
    #[must_use]
    pub fn betas(self, beta1: f64, beta2: f64) -> Self {
        self.beta1(beta1).beta2(beta2)
    }
}

/// PyTorch's `x.add(y, alpha=a)`, `x + a·y` rounded once: ATen's CPU kernel computes it with a
/// fused multiply-add.
#[inline(always)]
pub(crate) fn add_scaled<F: Scalar>(x: F, a: F, y: F) -> F {
    a.mul_add(y, x)
}

/// PyTorch's `a.add_(b, alpha=α)` on a tensor of the parameter's type in layout `L`: one fused
/// multiply-add in f32 and f64; on bfloat16 and float16 its scalar loop rounds `α`, then `α·b`,
/// to the type before adding.
#[inline(always)]
pub(crate) fn add_alpha<F: Scalar, L: Layout<F>>(a: F, alpha: F, b: F) -> F {
    if L::NATIVE {
        add_scaled(a, alpha, b)
    } else {
        let r = <L::Param as crate::Store<F>>::rounded;
        r(a + r(r(alpha) * b))
    }
}

/// A scalar as PyTorch keeps per-parameter scalar state (ASGD's `eta`, NAdam's `mu_product`): a
/// tensor of its default dtype, float32.
pub(crate) fn scalar_state(x: f64) -> f64 {
    f64::from(x as f32)
}

/// `1 − βᵗ`, the bias correction of a running average after `t` steps.
pub(crate) fn bias_correction(beta: f64, t: u64) -> f64 {
    1.0 - pow(beta, t as f64)
}

/// `max(a, b)` that keeps a NaN `a`, as `jnp.maximum` and `torch.clamp` do (`Float::max` drops it).
#[inline(always)]
pub(crate) fn max_nan<F: Scalar>(a: F, b: F) -> F {
    if a < b { b } else { a }
}

/// `clip(x, −c, c)` that keeps NaN, as `jnp.clip` does.
#[inline(always)]
pub(crate) fn clip_nan<F: Scalar>(x: F, c: F) -> F {
    if x > c {
        c
    } else if x < -c {
        -c
    } else {
        x
    }
}

/// `base.powf(exp)`, remembered: the bias corrections of every key of a step raise the same
/// betas to the same step count, and `powf` costs as much as the rest of a small key's set-up.
pub(crate) fn pow(base: f64, exp: f64) -> f64 {
    use std::cell::Cell;
    const WAYS: usize = 4;
    thread_local! {
        static MEMO: Cell<[Option<(u64, u64, f64)>; WAYS]> = const { Cell::new([None; WAYS]) };
    }
    let key = (base.to_bits(), exp.to_bits());
    MEMO.with(|memo| {
        let mut ways = memo.get();
        if let Some((_, _, v)) = ways.iter().flatten().find(|w| (w.0, w.1) == key) {
            return *v;
        }
        let v = base.powf(exp);
        ways.rotate_right(1);
        ways[0] = Some((key.0, key.1, v));
        memo.set(ways);
        v
    })
}

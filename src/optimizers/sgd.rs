//! Stochastic gradient descent: the book's, with PyTorch's options.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::parts::{GradientOptions, Lerp, add_alpha, add_scaled};
use crate::{Error, Store, check};

/// Stochastic gradient descent, `p ← p − lr·g`: the book's `SGD`, with PyTorch's options.
///
/// With PyTorch's momentum (`momentum > 0`), a buffer `b` keeps a running sum of gradients:
///
/// ```text
/// g ← −g if maximize;  g ← g + λ·p (weight decay)
/// b ← g on the first step, else μ·b + (1 − dampening)·g
/// d ← g + μ·b if nesterov, else b
/// p ← p − lr·d
/// ```
///
/// References: *Deep Learning from Scratch*, `common/optimizer.py`, class `SGD` (the defaults);
/// `torch.optim.SGD` (the options, with its defaults: momentum 0, dampening 0, weight decay 0,
/// nesterov and maximize off). Default learning rate 0.01, as both. State: `momentum_buffer` when
/// `momentum > 0`, none otherwise.
///
/// On low-precision parameters ([`Mixed`](crate::Mixed)) the update is PyTorch's on bfloat16
/// tensors, as torch-optimi's `SGD` runs it: each operation rounded to the type it writes, and
/// `p.add_(d, alpha=−lr)` as PyTorch's scalar loop computes it (`−lr`, then `−lr·d`, rounded to
/// the parameter's type) — bit for bit torch-optimi's, with Kahan compensation or without.
/// (PyTorch's vector loop, which handles the leading multiple of 32 elements of larger tensors,
/// rounds `−lr·d` once less; no reference file covers it, and ndoptim rounds every element as the
/// scalar loop does.)
///
/// The book's [`Momentum`](crate::Momentum) and [`Nesterov`](crate::Nesterov) keep the book's
/// convention, with the learning rate inside the velocity.
///
/// ```
/// use ndoptim::{Optimizer, Sgd};
/// # use std::collections::HashMap;
/// # use ndarray::{arr1, ArrayD};
/// let mut params: HashMap<String, ArrayD<f64>> = HashMap::from([("w".into(), arr1(&[1.0, 2.0]).into_dyn())]);
/// let grads = HashMap::from([("w".to_string(), arr1(&[10.0, -10.0]).into_dyn())]);
/// let mut sgd = Sgd::default().lr(0.1);
/// sgd.update(&mut params, &grads)?;
/// assert_eq!(params["w"], arr1(&[0.0, 3.0]).into_dyn());
///
/// let torch_style: Sgd = Sgd::default().momentum(0.9).nesterov(true).weight_decay(1e-4);
/// # Ok::<(), ndoptim::Error>(())
/// ```
pub type Sgd<F = f32> = Engine<SgdRule, F>;

/// The rule of [`Sgd`].
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SgdRule {
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    /// optax's `trace` arithmetic: `μ·b` fused into the buffer's update ([`Sgd::optax`]).
    #[cfg_attr(feature = "serde", serde(default))]
    fused_trace: bool,
    /// torch-optimi's `dampening=True`: the buffer is a moving average, `lerp(b, g, 1 − μ)`.
    #[cfg_attr(feature = "serde", serde(default))]
    ema: bool,
    /// torch-optimi's `torch_init`: a moving-average buffer starts at the first gradient
    /// instead of zero.
    #[cfg_attr(feature = "serde", serde(default))]
    torch_init: bool,
    options: GradientOptions,
}

shares!(SgdRule: options, decoupled, fully_decoupled);

setters!(Sgd {
    /// Sets PyTorch's momentum `μ >= 0` (default 0: none).
    momentum: f64,
    /// Sets the dampening of the momentum buffer (default 0).
    dampening: f64,
});

impl<F: Scalar> Sgd<F> {
    /// `optax.sgd` (its `trace` of momentum): the same update as PyTorch's without dampening,
    /// in optax's arithmetic as XLA compiles it, `b ← fma(μ, b, g)` and `p ← fma(−lr, d, p)`,
    /// where PyTorch rounds `μ·b` before adding the gradient. The two drift apart in the last
    /// bits over long f32 runs; each is exact to its own reference.
    pub fn optax() -> Self {
        Self::default().with(|r| r.fused_trace = true)
    }

    /// torch-optimi's `SGD(dampening=True)`: the momentum buffer is a moving average of the
    /// gradients, `b ← lerp(b, g, 1 − μ)`, starting at zero (default `false`: PyTorch's sum
    /// `b ← μ·b + (1 − dampening)·g`). Its weight decay may be coupled, decoupled
    /// ([`Sgd::decoupled_weight_decay`], optimi's `decouple_wd`) or fully decoupled
    /// ([`Sgd::fully_decoupled_weight_decay`], optimi's `decouple_lr`).
    #[must_use]
    pub fn ema_momentum(self, ema: bool) -> Self {
        self.with(|r| r.ema = ema)
    }

    /// With [`Sgd::ema_momentum`], starts the buffer at the first (weight-decayed) gradient
    /// instead of zero, as PyTorch's buffer starts (torch-optimi's `torch_init`; default
    /// `false`).
    #[must_use]
    pub fn torch_init(self, torch_init: bool) -> Self {
        self.with(|r| r.torch_init = torch_init)
    }

    /// Uses Nesterov momentum (needs `momentum > 0` and dampening 0; default `false`).
    #[must_use]
    pub fn nesterov(self, nesterov: bool) -> Self {
        self.with(|r| r.nesterov = nesterov)
    }
}

impl<F: Scalar> Rule<F> for SgdRule {
    type KeyScalars = ();
    const NAME: &'static str = "SGD";
    const DEFAULT_LR: f64 = 0.01;

    hyperparameters!(Momentum => (momentum), WeightDecay => (options.weight_decay));

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("momentum value", self.momentum)?;
        check::finite("dampening value", self.dampening)?;
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0 || self.ema) {
            return Err(Error::IncompatibleOptions {
                reason: "Nesterov momentum requires a momentum, zero dampening and no moving average",
            });
        }
        if self.ema && (self.dampening != 0.0 || self.fused_trace) {
            return Err(Error::IncompatibleOptions {
                reason: "a moving-average momentum (torch-optimi's dampening) takes no PyTorch dampening",
            });
        }
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        if self.momentum != 0.0 { vec!["momentum_buffer"] } else { vec![] }
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        if !step.is_native() {
            return self.low_precision(step);
        }
        let lr: F = cast(step.lr());
        if self.momentum == 0.0 {
            // optax's `p + (−lr·g)` as XLA fuses it; the book and PyTorch round `lr·g` first.
            let fused = self.fused_trace;
            return self.options.for_each(step, move |p, g, _: &mut [F; 0]| {
                *p = if fused { add_scaled(*p, -lr, g) } else { *p - lr * g };
            });
        }
        let (mu, keep): (F, F) = (cast(self.momentum), cast(1.0 - self.dampening));
        let ema = Lerp::<F>::new(1.0 - self.momentum);
        // PyTorch's first buffer is the gradient itself; torch-optimi's moving average starts
        // from zero, unless `torch_init`.
        let first = step.t() == 1 && (!self.ema || self.torch_init);
        let (fused, lerp) = (self.fused_trace, self.ema);
        let buffer = move |b: &mut F, g: F| {
            *b = match (first, fused, lerp) {
                (true, _, _) => g,
                (false, _, true) => ema.apply_fused(*b, g),
                (false, false, false) => add_scaled(*b * mu, keep, g),
                (false, true, false) => add_scaled(keep * g, mu, *b),
            }
        };
        if self.nesterov {
            self.options.for_each(step, move |p, g, [b]: &mut [F; 1]| {
                buffer(b, g);
                *p = add_scaled(*p, -lr, add_scaled(g, mu, *b));
            });
        } else {
            self.options.for_each(step, move |p, g, [b]: &mut [F; 1]| {
                buffer(b, g);
                *p = add_scaled(*p, -lr, *b);
            });
        }
    }
}

impl SgdRule {
    /// The update on low-precision tensors, each operation rounded to the type it writes; the
    /// step returned for the engine's rounding to add (torch-optimi's order).
    fn low_precision<F: Scalar, L: Layout<F>>(&self, step: Step<'_, F, L>) {
        let (rp, rs) = (L::Param::rounded, L::State::rounded);
        let alpha = rp(cast(-step.lr()));
        let wd = step.weight_decay().unwrap_or(self.options.weight_decay);
        let decay: F = self.options.keep(step.lr(), Some(wd));
        let (mu, keep, sign): (F, F, F) =
            (cast(self.momentum), cast(1.0 - self.dampening), self.options.sign());
        let ema = Lerp::<F>::new(1.0 - self.momentum);
        let (first, nesterov, lerp) = (
            step.t() == 1 && (!self.ema || self.torch_init),
            self.nesterov,
            self.ema,
        );
        let (coupled, decoupled) = (wd != 0.0 && !self.options.decoupled, wd != 0.0 && self.options.decoupled);
        let wd: F = cast(wd);
        let grad = move |p: &mut F, g: F| {
            if decoupled {
                *p = rp(*p * decay);
            }
            if coupled { add_alpha::<F, L>(g * sign, wd, *p) } else { g * sign }
        };
        if self.momentum == 0.0 {
            return step.for_each_update(move |p, g, _: &mut [F; 0]| rp(alpha * grad(p, g)));
        }
        step.for_each_update(move |p, g, [b]: &mut [F; 1]| {
            let g = grad(p, g);
            *b = match (first, lerp) {
                (true, _) => g,
                (false, true) => rs(ema.apply_fused(*b, g)),
                (false, false) => rs(add_scaled(rs(*b * mu), keep, g)),
            };
            let d = if nesterov { rp(add_scaled(g, mu, *b)) } else { *b };
            rp(alpha * d)
        });
    }
}

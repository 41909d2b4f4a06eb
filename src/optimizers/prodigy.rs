//! Prodigy: Adam whose step size is learnt from the distance the parameters have travelled.

use crate::engine::{Engine, Layout, Rule, Scalar, Scope, Step, cast};
use super::distance::{DistanceOptions, distance_options};
use crate::parts::add_scaled;
use crate::{Error, check};

/// Prodigy (Mishchenko & Defazio, 2024, "Prodigy: An Expeditiously Adaptive Parameter-Free
/// Learner"), as prodigyopt's `Prodigy` computes it: Adam scaled by an estimate `d` of the
/// distance to the solution, so that the learning rate stays at 1.
///
/// ```text
/// g ← g + λ·p                              (coupled weight decay)
/// k: steps taken;  bc = √(1 − β₂ᵏ⁺¹)/(1 − β₁ᵏ⁺¹) with bias correction, else 1;  dlr = d·lr·bc
/// first pass, over every key:
///   r ← β₃·r + (d/d₀)·dlr·Σ g·(p₀ − p)        (p₀: the key's parameter before its first step)
///   s ← β₃·s + (d/d₀)·dlr·g                   (safeguard warm-up: (d/d₀)·d·g)
///   d̂ = d_coef·r / Σ|s|;  if d = d₀: d ← max(d, d̂);  d_max ← max(d_max, d̂)
///   d ← min(d_max, d·growth_rate)
/// then each key, with the new d and the old one (d_old) and dlr:
///   m ← β₁·m + d_old·(1 − β₁)·g;  v ← β₂·v + d_old²·(1 − β₂)·g²
///   p ← p − λ·dlr·p                           (decoupled weight decay)
///   p ← p − dlr·m / (√v + d·ε)                (β₁ = 0: p ← p − dlr·d·g / (√v + d·ε))
/// ```
///
/// `r`, `d`, `d_max` and `k` are optimizer-wide ([`Scope::Global`]); when every gradient is zero
/// (`Σ|s| = 0`) the moments move but the parameters, `d` and `k` do not.
///
/// Defaults (prodigyopt's): learning rate 1 (leave it at 1: it scales the step size Prodigy
/// finds), betas (0.9, 0.999), β₃ = √β₂, ε = 1e-8, weight decay 0 (decoupled), no bias
/// correction, no safeguard warm-up, d₀ = 1e-6, d_coef 1, growth rate ∞. State: `s`, `p0`,
/// `exp_avg` (only when β₁ > 0), `exp_avg_sq`; globals (see [`Engine::global`]): `d`, `d_max`,
/// `d_numerator`, `d_denom`, `k`, and the last step's `d_moments` (d_old) and `bias_correction`.
///
/// [`Prodigy::optax`] is optax's `contrib.prodigy`: always bias-corrected, with its count of
/// every step; `d ← max(d, d_coef·r/Σ|s|)` (no `d₀` rule, `d_max` or growth rate); `m` and `v`
/// of `d·g`; `s ← β₃·s + dlr·(d·g)/d₀`; the update `−λ·dlr·p − dlr·m/(√v + d·ε)` with the new
/// `d`; no coupled weight decay; `d` and `r` rounded to the parameters' type, as optax keeps
/// them.
///
/// A key whose [`Group`](crate::Group) scales its learning rate to 0 is frozen: it neither
/// moves nor counts in `d` (prodigyopt's groups of learning rate 0; it refuses other per-group
/// rates, which here scale that key's `dlr`).
pub type Prodigy<F = f32> = Engine<ProdigyRule, F>;

/// The rule of [`Prodigy`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct ProdigyRule {
    betas: [f64; 2],
    beta3: Option<f64>,
    eps: f64,
    safeguard_warmup: bool,
    d_coef: f64,
    options: DistanceOptions,
    /// optax's arithmetic ([`Prodigy::optax`]).
    #[cfg_attr(feature = "serde", serde(default))]
    optax: bool,
}

impl Default for ProdigyRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            beta3: None,
            eps: 1e-8,
            safeguard_warmup: false,
            d_coef: 1.0,
            options: DistanceOptions::new(true),
            optax: false,
        }
    }
}

impl<F: Scalar> Prodigy<F> {
    /// optax's `contrib.prodigy`, with its defaults (prodigyopt's, weight decay decoupled):
    /// its `estim_lr0` is [`Prodigy::d0`], `estim_lr_coef` [`Prodigy::d_coef`].
    pub fn optax() -> Self {
        Self::default().with(|r| {
            r.optax = true;
            r.options = DistanceOptions::optax();
        })
    }
}

shares!(ProdigyRule: betas);

setters!(Prodigy {
    /// Sets β₃, the decay of the running sums `r` and `s` (default `None`: √β₂), in `[0, 1)`.
    beta3: Option<f64>,
    /// Sets ε, added to `√v` after scaling by `d` (default 1e-8), `> 0`.
    eps: f64,
    /// Leaves the learning rate and bias correction out of `s`, against a `d` that grows too
    /// fast during warm-up (default `false`).
    safeguard_warmup: bool,
    /// Sets the factor of the estimate `d̂` (default 1; 0.5 and 2 are the usual tunings), `> 0`.
    d_coef: f64,
});

distance_options!(Prodigy);

/// The indices of [`ProdigyRule`]'s globals.
const D: usize = 0;
const D_MAX: usize = 1;
const NUMERATOR: usize = 2;
const DENOM: usize = 3;
const K: usize = 4;
const D_MOMENTS: usize = 5;
const BIAS_CORRECTION: usize = 6;

impl ProdigyRule {
    fn beta3(&self) -> f64 {
        self.beta3.unwrap_or_else(|| self.betas[1].sqrt())
    }

    /// `s`'s factor, `(d/d₀)·dlr`, or `(d/d₀)·d` with the safeguard.
    fn s_scale(&self, d: f64, dlr: f64) -> f64 {
        (d / self.options.d0) * if self.safeguard_warmup { d } else { dlr }
    }
}

impl<F: Scalar> Rule<F> for ProdigyRule {
    type KeyScalars = ();
    const NAME: &'static str = "Prodigy";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Global;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (options.weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        if let Some(beta3) = self.beta3 {
            check::unit_interval("beta3 value", beta3)?;
        }
        check::positive("epsilon value", self.eps)?;
        check::positive("d_coef value", self.d_coef)?;
        let reason = "optax's prodigy has decoupled weight decay, bias correction and no growth \
                      rate";
        self.options.validate(self.optax, reason)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        if self.betas[0] > 0.0 {
            vec!["s", "p0", "exp_avg", "exp_avg_sq"]
        } else {
            vec!["s", "p0", "exp_avg_sq"]
        }
    }

    fn globals(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("d", self.options.d0),
            ("d_max", self.options.d0),
            ("d_numerator", 0.0),
            ("d_denom", 0.0),
            ("k", 0.0),
            ("d_moments", self.options.d0),
            ("bias_correction", 1.0),
        ]
    }

    fn measure<L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        let g = step.globals();
        let d = g[D];
        let dlr = d * step.lr() * self.options.bias_correction(self.betas, g[K]);
        if dlr == 0.0 {
            return [0.0; 4];
        }
        if self.optax {
            return self.optax_measure(step);
        }
        let (beta3, c): (F, F) = (cast(self.beta3()), cast(self.s_scale(d, dlr)));
        let wd: F = cast(self.options.coupled());
        let first = step.t() == 1;
        let [dot, l1] = match self.betas[0] > 0.0 {
            true => step.sum(move |p, g, [s, p0, ..]: &[F; 4]| {
                measure(first, beta3, c, wd, p, g, *s, *p0)
            }),
            false => step.sum(move |p, g, [s, p0, _]: &[F; 3]| {
                measure(first, beta3, c, wd, p, g, *s, *p0)
            }),
        };
        let dot = dot.to_f64().unwrap_or(f64::NAN);
        [(d / self.options.d0) * dlr * dot, l1.to_f64().unwrap_or(f64::NAN), 0.0, 0.0]
    }

    fn reduce(&self, g: &mut [f64], [delta, denom, ..]: [f64; 4], lr: f64) {
        let d = g[D];
        g[D_MOMENTS] = d;
        g[BIAS_CORRECTION] = self.options.bias_correction(self.betas, g[K]);
        g[DENOM] = denom;
        if denom == 0.0 && !self.optax {
            return;
        }
        if self.optax {
            // optax keeps its scalars in the parameters' type; `delta` is the plain dot product.
            let r = |x: f64| cast::<F>(x).to_f64().unwrap_or(f64::NAN);
            let dlr = r(d * lr * g[BIAS_CORRECTION]);
            g[NUMERATOR] = r(r(g[NUMERATOR] * self.beta3()) + r(r(d / self.options.d0) * dlr) * delta);
            g[D] = d.max(r(self.d_coef * g[NUMERATOR] / denom));
            g[K] += 1.0;
            return;
        }
        let numerator = g[NUMERATOR] * self.beta3() + delta;
        let d_hat = self.d_coef * numerator / denom;
        let mut d = d;
        if d == self.options.d0 {
            d = d.max(d_hat);
        }
        g[D_MAX] = g[D_MAX].max(d_hat);
        g[D] = g[D_MAX].min(d * self.options.growth());
        g[NUMERATOR] = numerator;
        g[K] += 1.0;
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let g = step.globals();
        let (d, d_old) = (g[D], g[D_MOMENTS]);
        let dlr = d_old * step.lr() * g[BIAS_CORRECTION];
        if step.lr() == 0.0 {
            return;
        }
        let moves = g[DENOM] != 0.0;
        let [beta1, beta2] = self.betas;
        let (b1, c1, b2, c2): (F, F, F, F) = (
            cast(beta1),
            cast(d_old * (1.0 - beta1)),
            cast(beta2),
            cast(d_old * d_old * (1.0 - beta2)),
        );
        let (beta3, cs): (F, F) = (cast(self.beta3()), cast(self.s_scale(d_old, dlr)));
        let (coupled, decay): (F, F) = (cast(self.options.coupled()), cast(self.options.decay(dlr)));
        let (d_eps, neg_dlr, neg_dlr_d): (F, F, F) = (cast(d * self.eps), cast(-dlr), cast(-dlr * d));
        if self.optax {
            return self.optax_step(step);
        }
        let first = step.t() == 1;
        let apply = move |p: &mut F, g: F, s: &mut F, p0: &mut F, m: Option<&mut F>, v: &mut F| {
            if first {
                *p0 = *p;
            }
            let g = add_scaled(g, coupled, *p);
            *v = *v * b2 + c2 * g * g;
            *s = add_scaled(*s * beta3, cs, g);
            let direction = match m {
                Some(m) => {
                    *m = add_scaled(*m * b1, c1, g);
                    neg_dlr * *m
                }
                None => neg_dlr_d * g,
            };
            if moves {
                *p = add_scaled(*p, decay, *p);
                *p = *p + direction / (v.sqrt() + d_eps);
            }
        };
        if beta1 > 0.0 {
            step.for_each(move |p, g, [s, p0, m, v]: &mut [F; 4]| apply(p, g, s, p0, Some(m), v));
        } else {
            step.for_each(move |p, g, [s, p0, v]: &mut [F; 3]| apply(p, g, s, p0, None, v));
        }
    }
}

impl ProdigyRule {
    /// optax's first pass: the plain `Σ g·(p₀ − p)`, and `Σ|s|` of the updated `s`.
    fn optax_measure<F: Scalar, L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        let g = step.globals();
        let d = g[D];
        let dlr = d * step.lr() * self.options.bias_correction(self.betas, g[K]);
        let (d_f, dlr_f, d0, beta3): (F, F, F, F) =
            (cast(d), cast(dlr), cast(self.options.d0), cast(self.beta3()));
        let scale = if self.safeguard_warmup { d_f } else { dlr_f };
        let first = step.t() == 1;
        let f = move |p: F, g: F, s: F, p0: F| {
            let dot = if first { F::zero() } else { g * (p0 - p) };
            [dot, (beta3 * s + scale * (d_f * g) / d0).abs()]
        };
        let [dot, l1] = match self.betas[0] > 0.0 {
            true => step.sum(move |p, g, [s, p0, ..]: &[F; 4]| f(p, g, *s, *p0)),
            false => step.sum(move |p, g, [s, p0, _]: &[F; 3]| f(p, g, *s, *p0)),
        };
        [dot.to_f64().unwrap_or(f64::NAN), l1.to_f64().unwrap_or(f64::NAN), 0.0, 0.0]
    }

    /// optax's update of one key, returned as `p + u`.
    fn optax_step<F: Scalar, L: Layout<F>>(&self, step: Step<'_, F, L>) {
        let g = step.globals();
        let (d, d_old) = (g[D], g[D_MOMENTS]);
        let dlr = d_old * step.lr() * g[BIAS_CORRECTION];
        let [beta1, beta2] = self.betas;
        let (b1, c1, b2, c2): (F, F, F, F) =
            (cast(beta1), cast(1.0 - beta1), cast(beta2), cast(1.0 - beta2));
        let (d_old, dlr, d0, beta3): (F, F, F, F) =
            (cast(d_old), cast(dlr), cast(self.options.d0), cast(self.beta3()));
        let scale = if self.safeguard_warmup { d_old } else { dlr };
        let (decay, d_eps): (F, F) = (-cast::<F>(self.options.weight_decay) * dlr, cast::<F>(d) * cast(self.eps));
        let first = step.t() == 1;
        let apply = move |p: &mut F, g: F, s: &mut F, p0: &mut F, m: &mut F, v: &mut F| {
            if first {
                *p0 = *p;
            }
            let dg = d_old * g;
            *m = b1 * *m + c1 * dg;
            *v = b2 * *v + c2 * dg * dg;
            *s = beta3 * *s + scale * dg / d0;
            *p = *p + (decay * *p - dlr * *m / (v.sqrt() + d_eps));
        };
        if beta1 > 0.0 {
            step.for_each(move |p, g, [s, p0, m, v]: &mut [F; 4]| apply(p, g, s, p0, m, v));
        } else {
            step.for_each(move |p, g, [s, p0, v]: &mut [F; 3]| apply(p, g, s, p0, &mut F::zero(), v));
        }
    }
}

/// One element's share of the first pass: `g·(p₀ − p)` (nothing on the key's first step, where
/// `p₀` is `p`), and `|s|` after this step's update of `s`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn measure<F: Scalar>(first: bool, beta3: F, c: F, wd: F, p: F, g: F, s: F, p0: F) -> [F; 2] {
    let g = add_scaled(g, wd, p);
    let dot = if first { F::zero() } else { g * (p0 - p) };
    [dot, add_scaled(s * beta3, c, g).abs()]
}

//! D-Adapt Adam: Adam whose step size `d` is a lower bound on the distance to the solution.

use crate::engine::{Engine, Layout, Rule, Scalar, Scope, Step, cast};
use super::distance::{DistanceOptions, distance_options};
use crate::parts::add_scaled;
use crate::{Error, check};

/// D-Adapt Adam (Defazio & Mishchenko, 2023, "Learning-Rate-Free Learning by D-Adaptation"), as
/// the `dadaptation` package's `DAdaptAdam` computes it:
///
/// ```text
/// g ← g + λ·p                                   (coupled weight decay, the default)
/// k: steps taken;  bc = √(1 − β₂ᵏ⁺¹)/(1 − β₁ᵏ⁺¹) with bias correction, else 1;  dlr = d·lr·bc
/// first pass, over every key (with v and s before this step):
///   a = dlr·Σ g·s/(√v + ε);  s ← √β₂·s + dlr·(1 − √β₂)·g
///   r ← √β₂·r + (1 − √β₂)·a;  d ← max(d, min(r / ((1 − √β₂)·Σ|s|), d·growth_rate))
/// then each key:
///   m ← β₁·m + dlr·(1 − β₁)·g;  v ← β₂·v + (1 − β₂)·g²
///   p ← p − λ·dlr·p                             (decoupled weight decay)
///   p ← p − m / (√v + ε)                        (m carries the step size)
/// ```
///
/// `r`, `d` and `k` are optimizer-wide ([`Scope::Global`]); when every gradient is zero
/// (`Σ|s| = 0`) the moments move but the parameters, `r`, `d` and `k` do not.
///
/// Defaults (dadaptation's): learning rate 1, betas (0.9, 0.999), ε = 1e-8, weight decay 0
/// (coupled), no bias correction, d₀ = 1e-6, growth rate ∞. State: `s`, `exp_avg`,
/// `exp_avg_sq`; globals (see [`Engine::global`]): `d`, `numerator_weighted`, `sk_l1`, `k`, and
/// the last step's `d_moments` (the `d` of its `dlr`) and `bias_correction`.
///
/// [`DAdaptAdam::optax`] is optax's `contrib.dadapt_adamw`: always bias-corrected, decoupled weight
/// decay `−λ·dlr·p` added to the update `−m/(√v + ε)`, `r`'s increment scaled once by
/// `(1 − √β₂)·dlr`, and `d` and `r` rounded to the parameters' type. A key whose
/// [`Group`](crate::Group) scales its learning rate to 0 is frozen, as in [`Prodigy`](crate::Prodigy).
pub type DAdaptAdam<F = f32> = Engine<DAdaptAdamRule, F>;

/// The rule of [`DAdaptAdam`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DAdaptAdamRule {
    betas: [f64; 2],
    eps: f64,
    options: DistanceOptions,
    /// optax's arithmetic ([`DAdaptAdam::optax`]).
    #[cfg_attr(feature = "serde", serde(default))]
    optax: bool,
}

impl Default for DAdaptAdamRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.999],
            eps: 1e-8,
            options: DistanceOptions::new(false),
            optax: false,
        }
    }
}

impl<F: Scalar> DAdaptAdam<F> {
    /// optax's `contrib.dadapt_adamw`, with its defaults (weight decay 0, decoupled, bias
    /// correction on): its `estim_lr0` is [`DAdaptAdam::d0`].
    pub fn optax() -> Self {
        Self::default().with(|r| {
            r.optax = true;
            r.options = DistanceOptions::optax();
        })
    }
}

shares!(DAdaptAdamRule: betas);

setters!(DAdaptAdam {
    /// Sets ε, added to `√v` (default 1e-8), `> 0`.
    eps: f64,
});

distance_options!(DAdaptAdam);

/// The indices of [`DAdaptAdamRule`]'s globals.
const D: usize = 0;
const NUMERATOR: usize = 1;
const SK_L1: usize = 2;
const K: usize = 3;
const D_MOMENTS: usize = 4;
const BIAS_CORRECTION: usize = 5;

impl DAdaptAdamRule {
    /// `s`'s factor `dlr·(1 − √β₂)`, as each reference rounds it.
    fn s_scale<F: Scalar>(&self, dlr: f64) -> F {
        let root = self.betas[1].sqrt();
        match self.optax {
            true => cast::<F>(1.0 - root) * cast::<F>(dlr),
            false => cast(dlr * (1.0 - root)),
        }
    }
}

impl<F: Scalar> Rule<F> for DAdaptAdamRule {
    type KeyScalars = ();
    const NAME: &'static str = "DAdaptAdam";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Global;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (options.weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        check::positive("epsilon value", self.eps)?;
        let reason = "optax's dadapt_adamw has decoupled weight decay, bias correction and no \
                      growth rate";
        self.options.validate(self.optax, reason)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["s", "exp_avg", "exp_avg_sq"]
    }

    fn globals(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("d", self.options.d0),
            ("numerator_weighted", 0.0),
            ("sk_l1", 0.0),
            ("k", 0.0),
            ("d_moments", self.options.d0),
            ("bias_correction", 1.0),
        ]
    }

    fn measure<L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        let g = step.globals();
        let dlr = g[D] * step.lr() * self.options.bias_correction(self.betas, g[K]);
        if dlr == 0.0 {
            return [0.0; 4];
        }
        let root = self.betas[1].sqrt();
        let (root_f, c, eps): (F, F, F) = (cast(root), self.s_scale(dlr), cast(self.eps));
        let wd: F = cast(self.options.coupled());
        let optax = self.optax;
        let [dot, l1] = step.sum(move |p, g, [s, _, v]: &[F; 3]| {
            let g = add_scaled(g, wd, p);
            let s_new = if optax { root_f * *s + c * g } else { add_scaled(*s * root_f, c, g) };
            [g * (*s / (v.sqrt() + eps)), s_new.abs()]
        });
        let dot = dot.to_f64().unwrap_or(f64::NAN);
        let scale = if optax { 1.0 } else { dlr };
        [scale * dot, l1.to_f64().unwrap_or(f64::NAN), 0.0, 0.0]
    }

    fn reduce(&self, g: &mut [f64], [numerator, sk_l1, ..]: [f64; 4], lr: f64) {
        let d = g[D];
        g[D_MOMENTS] = d;
        g[BIAS_CORRECTION] = self.options.bias_correction(self.betas, g[K]);
        g[SK_L1] = sk_l1;
        let root = self.betas[1].sqrt();
        if self.optax {
            let r = |x: f64| cast::<F>(x).to_f64().unwrap_or(f64::NAN);
            let dlr = r(d * lr * g[BIAS_CORRECTION]);
            g[NUMERATOR] = r(r(root * g[NUMERATOR]) + r(r((1.0 - root) * dlr) * numerator));
            g[D] = d.max(r(g[NUMERATOR] / r((1.0 - root) * sk_l1)));
            g[K] += 1.0;
            return;
        }
        let weighted = root * g[NUMERATOR] + (1.0 - root) * numerator;
        if sk_l1 == 0.0 {
            return;
        }
        let d_hat = weighted / ((1.0 - root) * sk_l1);
        g[D] = d.max(d_hat.min(d * self.options.growth()));
        g[NUMERATOR] = weighted;
        g[K] += 1.0;
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let g = step.globals();
        let dlr = g[D_MOMENTS] * step.lr() * g[BIAS_CORRECTION];
        if dlr == 0.0 {
            return;
        }
        let moves = self.optax || g[SK_L1] != 0.0;
        let [beta1, beta2] = self.betas;
        let root = beta2.sqrt();
        let (b1, c1, b2, c2, root_f, eps): (F, F, F, F, F, F) = (
            cast(beta1),
            cast(dlr * (1.0 - beta1)),
            cast(beta2),
            cast(1.0 - beta2),
            cast(root),
            cast(self.eps),
        );
        let cs = self.s_scale(dlr);
        let (coupled, decay): (F, F) = (cast(self.options.coupled()), cast(self.options.decay(dlr)));
        if self.optax {
            let dlr: F = cast(dlr);
            let (c1, decay) = (cast::<F>(1.0 - beta1) * dlr, -cast::<F>(self.options.weight_decay) * dlr);
            return step.for_each(move |p, g, [s, m, v]: &mut [F; 3]| {
                *m = b1 * *m + c1 * g;
                *v = b2 * *v + c2 * g * g;
                *s = root_f * *s + cs * g;
                *p = *p + (decay * *p - *m / (v.sqrt() + eps));
            });
        }
        step.for_each(move |p, g, [s, m, v]: &mut [F; 3]| {
            let g = add_scaled(g, coupled, *p);
            *m = add_scaled(*m * b1, c1, g);
            *v = *v * b2 + c2 * g * g;
            *s = add_scaled(*s * root_f, cs, g);
            if moves {
                *p = add_scaled(*p, decay, *p);
                *p = *p - *m / (v.sqrt() + eps);
            }
        });
    }
}

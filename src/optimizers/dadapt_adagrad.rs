//! D-Adapt AdaGrad: AdaGrad's dual averaging at a step size `d` learnt from the distance travelled.

use super::distance::{DistanceOptions, distance_options, toward};
use crate::engine::{Engine, Layout, Rule, Scalar, Scope, Step, cast};
use crate::parts::add_scaled;
use crate::{Error, check};

/// The reference's first value of AdaGrad's accumulator `α` (not ε, not 0).
const ALPHA0: f64 = 1e-6;

/// D-Adapt AdaGrad (Defazio & Mishchenko, 2023, "Learning-Rate-Free Learning by D-Adaptation"),
/// as the `dadaptation` package's `DAdaptAdaGrad` computes it:
///
/// ```text
/// dlr = d·lr;  g ← g + λ·p                      (coupled weight decay)
/// first pass, over every key:
///   α ← α + g²;  s ← s + dlr·g;  w(x) = x / (√α + ε)
///   Q ← Q + Σ w(g²);  S ← S + Δ Σ w(s²);  L ← L + Δ Σ|s|   (Δ: the change of each key's sum)
///   G ← G + dlr²·Q;  d ← max(d, min((S − G)/L, d·growth_rate))
/// then each key, with the old dlr:
///   z = x₀ − s/(√α + ε);  p ← (1 − c)·p + c·z,  c = 1 − momentum
/// ```
///
/// `α` starts at 1e-6 and `x₀` is the key's parameter before its first step. `G`, `S`, `L`, `d`
/// and `k` are optimizer-wide ([`Scope::Global`]); while `L = 0` the accumulators move but the
/// parameters and the globals do not.
///
/// Defaults (dadaptation's): learning rate 1, momentum 0, ε = 1e-6, weight decay 0, d₀ = 1e-6,
/// growth rate ∞. State: `alphak`, `sk`, `x0`; globals (see [`Engine::global`]): `d`,
/// `gsq_weighted`, `sksq_weighted`, `skl1`, `k`, and the last step's `d_moments` (the `d` of its
/// `dlr`) and `moves` (1 when it moved the parameters).
pub type DAdaptAdaGrad<F = f32> = Engine<DAdaptAdaGradRule, F>;

/// The rule of [`DAdaptAdaGrad`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DAdaptAdaGradRule {
    momentum: f64,
    eps: f64,
    options: DistanceOptions,
}

impl Default for DAdaptAdaGradRule {
    fn default() -> Self {
        Self {
            momentum: 0.0,
            eps: 1e-6,
            options: DistanceOptions::new(false),
        }
    }
}

setters!(DAdaptAdaGrad {    /// Sets ε, added to `√α` (default 1e-6), `> 0`.
    eps: f64,
});

distance_options!(DAdaptAdaGrad, dual_averaging);

/// The indices of [`DAdaptAdaGradRule`]'s globals.
const D: usize = 0;
const GSQ: usize = 1;
const SKSQ: usize = 2;
const SKL1: usize = 3;
const K: usize = 4;
const D_MOMENTS: usize = 5;
const MOVES: usize = 6;

impl<F: Scalar> Rule<F> for DAdaptAdaGradRule {
    type KeyScalars = ();
    const NAME: &'static str = "DAdaptAdaGrad";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Global;

    hyperparameters!(
        Momentum => (momentum),
        WeightDecay => (options.weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("momentum value", self.momentum)?;
        check::positive("epsilon value", self.eps)?;
        self.options.validate(false, "")
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["alphak", "sk", "x0"]
    }

    fn globals(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("d", self.options.d0),
            ("gsq_weighted", 0.0),
            ("sksq_weighted", 0.0),
            ("skl1", 0.0),
            ("k", 0.0),
            ("d_moments", self.options.d0),
            ("moves", 0.0),
        ]
    }

    /// `[Σ w(g²), Δ Σ w(s²), Δ Σ|s|, 0]`, each key's changes taken as the reference takes them.
    fn measure<L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        let first = step.t() == 1;
        let (c, wd, eps, alpha0): (F, F, F, F) = (
            cast(step.globals()[D] * step.lr()),
            cast(self.options.coupled()),
            cast(self.eps),
            cast(ALPHA0),
        );
        let [g_sq, old_sq, old_l1, new_sq, new_l1] =
            step.sum(move |p, g, [alpha, s, _]: &[F; 3]| {
                let g = add_scaled(g, wd, p);
                let alpha_old = if first { alpha0 } else { *alpha };
                let (old, new) = (alpha_old.sqrt() + eps, (alpha_old + g * g).sqrt() + eps);
                let s_new = add_scaled(*s, c, g);
                [g * g / new, *s * *s / old, s.abs(), s_new * s_new / new, s_new.abs()]
            });
        let f64_of = |x: F| x.to_f64().unwrap_or(f64::NAN);
        [
            f64_of(g_sq),
            f64_of(new_sq) - f64_of(old_sq),
            f64_of(new_l1) - f64_of(old_l1),
            0.0,
        ]
    }

    fn reduce(&self, g: &mut [f64], [g_sq, sq_change, l1_change, _]: [f64; 4], lr: f64) {
        let d = g[D];
        g[D_MOMENTS] = d;
        g[MOVES] = 0.0;
        let skl1 = g[SKL1] + l1_change;
        if skl1 == 0.0 {
            return;
        }
        let dlr = d * lr;
        g[SKSQ] += sq_change;
        g[SKL1] = skl1;
        g[GSQ] += dlr * dlr * g_sq;
        if lr > 0.0 {
            let d_hat = (g[SKSQ] - g[GSQ]) / skl1;
            g[D] = d.max(d_hat.min(d * self.options.growth()));
        }
        g[MOVES] = 1.0;
        g[K] += 1.0;
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let globals = step.globals();
        let (first, moves) = (step.t() == 1, globals[MOVES] == 1.0);
        let (c, wd, eps, alpha0, keep, ck): (F, F, F, F, F, F) = (
            cast(globals[D_MOMENTS] * step.lr()),
            cast(self.options.coupled()),
            cast(self.eps),
            cast(ALPHA0),
            cast(self.momentum),
            cast(1.0 - self.momentum),
        );
        step.for_each(move |p, g, [alpha, s, x0]: &mut [F; 3]| {
            if first {
                *x0 = *p;
                *alpha = alpha0;
            }
            let g = add_scaled(g, wd, *p);
            *alpha = *alpha + g * g;
            *s = add_scaled(*s, c, g);
            if moves {
                let z = *x0 - *s / (alpha.sqrt() + eps);
                *p = toward(*p, z, keep, ck);
            }
        });
    }
}

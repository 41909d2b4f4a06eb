//! D-Adapt SGD: dual averaging at a step size `d` learnt from the distance travelled.

use super::distance::{DistanceOptions, distance_options, toward};
use crate::engine::{Engine, Layout, Rule, Scalar, Scope, Step, cast};
use crate::parts::add_scaled;
use crate::{Error, check};

/// D-Adapt SGD (Defazio & Mishchenko, 2023, "Learning-Rate-Free Learning by D-Adaptation"), as
/// the `dadaptation` package's `DAdaptSGD` computes it:
///
/// ```text
/// first step only: g₀ = ‖g‖ over every key (without weight decay)
/// dlr = d·lr/g₀;  g ← g + λ·p                   (coupled weight decay)
/// first pass, over every key (with s before this step):
///   r ← r + dlr·Σ g·s;  s ← s + dlr·g
///   d ← max(d, min(2·r/‖s‖, d·growth_rate))
/// then each key, with the old dlr:
///   z = x₀ − s;  p ← (1 − c)·p + c·z,  c = 1 − momentum
/// ```
///
/// `x₀` is the key's parameter before its first step. `r`, `d`, `g₀` and `k` are
/// optimizer-wide ([`Scope::Global`]). When the first gradient is zero (`g₀ = 0`, where the
/// reference divides by zero) nothing moves and the next step measures `g₀` again; when `‖s‖ = 0`
/// the parameters, `r`, `d` and `k` do not move.
///
/// Defaults (dadaptation's): learning rate 1, momentum 0, weight decay 0, d₀ = 1e-6, growth rate
/// ∞. State: `s`, `x0` (the reference's `z = x₀ − s` is recomputed, not stored); globals (see
/// [`Engine::global`]): `d`, `numerator_weighted`, `g0_norm`, `k`, and the last step's
/// `d_moments` (the `d` of its `dlr`) and `moves` (1 when it moved the parameters).
pub type DAdaptSgd<F = f32> = Engine<DAdaptSgdRule, F>;

/// The rule of [`DAdaptSgd`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DAdaptSgdRule {
    momentum: f64,
    options: DistanceOptions,
}

impl Default for DAdaptSgdRule {
    fn default() -> Self {
        Self {
            momentum: 0.0,
            options: DistanceOptions::new(false),
        }
    }
}

distance_options!(DAdaptSgd, dual_averaging);

/// The indices of [`DAdaptSgdRule`]'s globals.
const D: usize = 0;
const NUMERATOR: usize = 1;
const G0: usize = 2;
const K: usize = 3;
const D_MOMENTS: usize = 4;
const MOVES: usize = 5;

impl<F: Scalar> Rule<F> for DAdaptSgdRule {
    type KeyScalars = ();
    const NAME: &'static str = "DAdaptSGD";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Global;

    hyperparameters!(
        Momentum => (momentum),
        WeightDecay => (options.weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("momentum value", self.momentum)?;
        self.options.validate(false, "")
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["s", "x0"]
    }

    fn globals(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("d", self.options.d0),
            ("numerator_weighted", 0.0),
            ("g0_norm", 0.0),
            ("k", 0.0),
            ("d_moments", self.options.d0),
            ("moves", 0.0),
        ]
    }

    /// `[Σ g², Σ g·s, Σ s², 0]` with `s` after this step; on the first step, with `g₀` unknown,
    /// `[Σ g², 0, Σ (g + λ·p)², 0]` instead (`s` is still 0 then).
    fn measure<L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        if step.lr() == 0.0 {
            return [0.0; 4];
        }
        let globals = step.globals();
        let wd: F = cast(self.options.coupled());
        let f64_of = |x: F| x.to_f64().unwrap_or(f64::NAN);
        if globals[K] == 0.0 {
            let [plain, decayed] = step.sum(move |p, g, _: &[F; 2]| {
                let decayed = add_scaled(g, wd, p);
                [g * g, decayed * decayed]
            });
            return [f64_of(plain), 0.0, f64_of(decayed), 0.0];
        }
        let dlr = globals[D] * step.lr() / globals[G0];
        let c: F = cast(dlr);
        let [dot, sq] = step.sum(move |p, g, [s, _]: &[F; 2]| {
            let g = add_scaled(g, wd, p);
            let s_new = add_scaled(*s, c, g);
            [g * *s, s_new * s_new]
        });
        [0.0, dlr * f64_of(dot), f64_of(sq), 0.0]
    }

    fn reduce(&self, g: &mut [f64], [g_sq, numerator, sk_sq, _]: [f64; 4], lr: f64) {
        g[D_MOMENTS] = g[D];
        g[MOVES] = 0.0;
        if g[K] == 0.0 {
            g[G0] = g_sq.sqrt();
        }
        if g[G0] == 0.0 || sk_sq == 0.0 {
            return;
        }
        let weighted = g[NUMERATOR] + numerator;
        if lr > 0.0 {
            let d = g[D];
            g[D] = d.max((2.0 * weighted / sk_sq.sqrt()).min(d * self.options.growth()));
        }
        g[NUMERATOR] = weighted;
        g[MOVES] = 1.0;
        g[K] += 1.0;
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let globals = step.globals();
        let (first, g0, moves) = (step.t() == 1, globals[G0], globals[MOVES] == 1.0);
        let c: F = cast(globals[D_MOMENTS] * step.lr() / g0);
        let (wd, keep, ck): (F, F, F) = (
            cast(self.options.coupled()),
            cast(self.momentum),
            cast(1.0 - self.momentum),
        );
        step.for_each(move |p, g, [s, x0]: &mut [F; 2]| {
            if first {
                *x0 = *p;
            }
            if g0 == 0.0 {
                return;
            }
            *s = add_scaled(*s, c, add_scaled(g, wd, *p));
            if moves {
                *p = toward(*p, *x0 - *s, keep, ck);
            }
        });
    }
}

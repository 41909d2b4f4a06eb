//! D-Adapt Lion: Lion at a step size `d` learnt from the distance travelled.

use crate::engine::{Engine, Layout, Rule, Scalar, Scope, Step, cast};
use crate::parts::{add_scaled, sign};
use crate::{Error, check};

/// D-Adapt Lion (Defazio & Mishchenko's D-Adaptation applied to Lion), as the `dadaptation`
/// package's `DAdaptLion` computes it:
///
/// ```text
/// dlr = d·lr;  u = sign(β₁·m + (1 − β₁)·g)
/// first pass, over every key (with m and s before this step):
///   a = dlr·Σ u·s;  s ← √β₂·s + (1 − √β₂)·dlr·u
///   r ← √β₂·r + (1 − √β₂)·a;  d ← max(d, r / ((1 − √β₂)·Σ|s|))
/// then each key, with the old dlr:
///   p ← p·(1 − dlr·λ) − dlr·u;  m ← β₂·m + (1 − β₂)·dlr·g     (m carries dlr, g does not)
/// ```
///
/// `r`, `d` and `k` are optimizer-wide ([`Scope::Global`]); when `Σ|s| = 0` the parameters and
/// the state move but `r`, `d` and `k` do not. There is no growth limit.
///
/// Defaults (dadaptation's): learning rate 1, betas (0.9, 0.99), weight decay 0 (decoupled),
/// d₀ = 1e-6. State: `exp_avg`, `s`; globals (see [`Engine::global`]): `d`,
/// `numerator_weighted`, `k`, and the last step's `d_moments`. A key whose
/// [`Group`](crate::Group) scales its learning rate to 0 is frozen, as in
/// [`Prodigy`](crate::Prodigy).
pub type DAdaptLion<F = f32> = Engine<DAdaptLionRule, F>;

/// The rule of [`DAdaptLion`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DAdaptLionRule {
    betas: [f64; 2],
    weight_decay: f64,
    d0: f64,
}

impl Default for DAdaptLionRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.99],
            weight_decay: 0.0,
            d0: 1e-6,
        }
    }
}

shares!(DAdaptLionRule: betas);

setters!(DAdaptLion {
    /// Sets the weight decay λ (default 0), `>= 0`, decoupled: `p ← p·(1 − dlr·λ)`.
    weight_decay: f64,
    /// Sets d₀, the first estimate of `d` (default 1e-6), `> 0`.
    d0: f64,
});

/// The indices of [`DAdaptLionRule`]'s globals.
const D: usize = 0;
const NUMERATOR: usize = 1;
const K: usize = 2;
const D_MOMENTS: usize = 3;

impl<F: Scalar> Rule<F> for DAdaptLionRule {
    type KeyScalars = ();
    const NAME: &'static str = "DAdaptLion";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Global;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::betas(self.betas)?;
        check::non_negative("weight_decay value", self.weight_decay)?;
        check::positive("d0 value", self.d0)
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["exp_avg", "s"]
    }

    fn globals(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("d", self.d0),
            ("numerator_weighted", 0.0),
            ("k", 0.0),
            ("d_moments", self.d0),
        ]
    }

    fn measure<L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        let dlr = step.globals()[D] * step.lr();
        if dlr == 0.0 {
            return [0.0; 4];
        }
        let root = self.betas[1].sqrt();
        let (b1, c1, root_f, cs): (F, F, F, F) = (
            cast(self.betas[0]),
            cast(1.0 - self.betas[0]),
            cast(root),
            cast((1.0 - root) * dlr),
        );
        let [dot, l1] = step.sum(move |_, g, [m, s]: &[F; 2]| {
            let u = sign(add_scaled(*m * b1, c1, g));
            [u * *s, add_scaled(*s * root_f, cs, u).abs()]
        });
        [dlr * dot.to_f64().unwrap_or(f64::NAN), l1.to_f64().unwrap_or(f64::NAN), 0.0, 0.0]
    }

    fn reduce(&self, g: &mut [f64], [numerator, sk_l1, ..]: [f64; 4], _: f64) {
        let root = self.betas[1].sqrt();
        g[D_MOMENTS] = g[D];
        let weighted = root * g[NUMERATOR] + (1.0 - root) * numerator;
        if sk_l1 == 0.0 {
            return;
        }
        g[D] = g[D].max(weighted / ((1.0 - root) * sk_l1));
        g[NUMERATOR] = weighted;
        g[K] += 1.0;
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let dlr = step.globals()[D_MOMENTS] * step.lr();
        if dlr == 0.0 {
            return;
        }
        let [beta1, beta2] = self.betas;
        let root = beta2.sqrt();
        let (keep, neg_dlr, b1, c1, b2, c2, root_f, cs): (F, F, F, F, F, F, F, F) = (
            cast(1.0 - dlr * self.weight_decay),
            cast(-dlr),
            cast(beta1),
            cast(1.0 - beta1),
            cast(beta2),
            cast((1.0 - beta2) * dlr),
            cast(root),
            cast((1.0 - root) * dlr),
        );
        step.for_each(move |p, g, [m, s]: &mut [F; 2]| {
            *p = *p * keep;
            let u = sign(add_scaled(*m * b1, c1, g));
            *p = add_scaled(*p, neg_dlr, u);
            *m = add_scaled(*m * b2, c2, g);
            *s = add_scaled(*s * root_f, cs, u);
        });
    }
}

//! Ranger: RAdam inside Lookahead, as one optimizer.

use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast, kahan_add};
use crate::optimizers::adam::OptimiUpdate;
use crate::optimizers::radam::optimi_scale;
use crate::parts::{GradientOptions, add_alpha};
use crate::{Error, Store, check};

/// Ranger (Wright, 2019; Lookahead: Zhang et al., 2019, "Lookahead Optimizer: k steps forward,
/// 1 step back"), as torch-optimi's `Ranger` computes it: [`RAdam::optimi`](crate::RAdam::optimi)'s
/// step on fast weights, and every `k` steps the slow weights move towards them and the fast
/// weights start again from the slow ones:
///
/// ```text
/// p ← RAdam(p, g)                         optimi's, with its debiased betas
/// every k-th step:  φ ← φ + α·(p − φ);  p ← φ
/// ```
///
/// The slow weights `φ` start as a copy of the parameter. With Kahan summation
/// ([`Rounding::Kahan`](crate::Rounding::Kahan) on a [`Mixed`](crate::Mixed) layout) the
/// synchronisation goes through the compensation too, in optimi's order, so that bfloat16
/// parameters follow optimi bit for bit.
///
/// Defaults (optimi's): learning rate 0.001 (optimi requires one), betas (0.9, 0.99), ε = 1e-6,
/// `k` = 6, α = 0.5, weight decay 0, decoupled (coupled with
/// [`decoupled_weight_decay(false)`](crate::Engine::decoupled_weight_decay), fully decoupled with
/// [`fully_decoupled_weight_decay`](crate::Engine::fully_decoupled_weight_decay)). State:
/// `exp_avg`, `exp_avg_sq`, `la_param` (the slow weights). [`Lookahead`](crate::lookahead::Lookahead)
/// wraps any optimizer the same way, with optax's arithmetic.
pub type Ranger<F = f32> = Engine<RangerRule, F>;

/// The rule of [`Ranger`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RangerRule {
    betas: [f64; 2],
    eps: f64,
    k: u64,
    alpha: f64,
    options: GradientOptions,
}

impl Default for RangerRule {
    fn default() -> Self {
        Self {
            betas: [0.9, 0.99],
            eps: 1e-6,
            k: 6,
            alpha: 0.5,
            options: GradientOptions::decoupled(),
        }
    }
}

shares!(RangerRule: options, decoupled, fully_decoupled, betas);

setters!(Ranger {
    /// Sets ε, added to `√v` (default 1e-6).
    eps: f64,
    /// Sets `k`, the number of steps between synchronisations, `>= 1` (default 6).
    k: u64,
    /// Sets α, how far the slow weights move towards the fast ones, in `[0, 1]` (default 0.5).
    alpha: f64,
});

impl<F: Scalar> Rule<F> for RangerRule {
    type KeyScalars = ();
    const NAME: &'static str = "Ranger";
    const DEFAULT_LR: f64 = 0.001;

    hyperparameters!(
        Momentum => (betas[0]),
        Beta2 => (betas[1]),
        WeightDecay => (options.weight_decay),
    );

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("epsilon value", self.eps)?;
        check::betas(self.betas)?;
        if self.k == 0 {
            return check::fail("k", 0.0, "a whole number >= 1");
        }
        if !(0.0..=1.0).contains(&self.alpha) {
            return check::fail("alpha", self.alpha, "in [0, 1]");
        }
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["exp_avg", "exp_avg_sq", "la_param"]
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (lr, t) = (step.lr(), step.t());
        let scale = optimi_scale(lr, self.betas[1], t);
        let radam = OptimiUpdate::new(&step, lr, &self.options, self.betas, self.eps, scale);
        let (first, sync, compensated) = (t == 1, t % self.k == 0, step.compensated());
        let alpha: F = cast(self.alpha);
        let round = L::Param::rounded;
        step.for_each_compensated(
            #[inline(always)]
            move |p, g, [m, v, slow]: &mut [F; 3], comp| {
                if first {
                    *slow = *p;
                }
                let inc = radam.update::<L>(p, g, m, v);
                match (sync, compensated) {
                    (false, false) => return inc,
                    (false, true) => (*p, *comp) = kahan_add::<F, L::Param>(*p, *comp, inc),
                    (true, false) => {
                        let fast = round(*p + inc);
                        *slow = add_alpha::<F, L>(*slow, alpha, round(fast - *slow));
                        *p = *slow;
                    }
                    (true, true) => {
                        let (fast, c) = kahan_add::<F, L::Param>(*p, *comp, inc);
                        let c = add_alpha::<F, L>(round(c), alpha, round(fast - *slow));
                        let moved = round(*slow + c);
                        *comp = add_alpha::<F, L>(c, alpha, round(*slow - moved));
                        (*slow, *p) = (moved, moved);
                    }
                }
                F::zero()
            },
        );
    }
}

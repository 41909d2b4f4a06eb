//! DoG and DoWG: SGD at a step size learnt from the distance travelled from the start.

use crate::engine::{Engine, Layout, Rule, Scalar, Scope, Step, cast};
use crate::parts::add_scaled;
use crate::{Error, check};

/// DoG, "Distance over Gradients" (Ivgi, Hinder & Carmon, 2023), as optax's `contrib.dog`
/// computes it:
///
/// ```text
/// g ← g + λ·p                                    (with weight decay)
/// r ← max(r, ‖p − p₀‖);  G ← G + ‖g‖²;  η = r/√(G + ε)     (norms over every key)
/// p ← p − lr·η·g
/// ```
///
/// `p₀` is the parameter before its first step, and `r` starts at the initial step's
/// [`DogInit`] value. A key's [`Group`](crate::Group) weight decay replaces λ. Defaults (optax's): learning rate 1, initial step
/// `DogInit::Heuristic(1e-6)`, ε = 1e-8, no weight decay. State: `init_params`; globals (see
/// [`Engine::global`]): `max_dist`, `sum_sq_norm_grads`, `k`, and the last step's size `eta`.
/// Like optax's, its scalars are kept rounded to the parameters' type.
pub type Dog<F = f32> = Engine<DogRule, F>;

/// DoWG, "Distance over Weighted Gradients" (Khaled, Mishchenko & Jin, 2023), as optax's
/// `contrib.dowg` computes it:
///
/// ```text
/// g ← g + λ·p                                    (with weight decay)
/// r² ← max(r², ‖p − p₀‖²);  v ← v + r²·‖g‖²;  η = r²/(√v + ε)   (norms over every key)
/// p ← p − lr·η·g
/// ```
///
/// Defaults (optax's): learning rate 1, initial `r²` = ε, ε = 1e-4, no weight decay. State:
/// `init_params`; globals: `estim_sq_dist`, `weighted_sq_norm_grads`, `k`, and the last step's
/// size `eta`. Its scalars are kept rounded to the parameters' type, as optax's.
pub type Dowg<F = f32> = Engine<DowgRule, F>;

/// Where [`Dog`]'s distance estimate `r` starts (optax's `init_step`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum DogInit {
    /// `r₀` = the value (optax's `("distance", value)`).
    Distance(f64),
    /// `r₀` = value·(1 + ‖p₀‖), over every key at the first step (`("heuristic", value)`).
    Heuristic(f64),
    /// `r₀` = 0 and a first step of size value (`("learning_rate", value)`).
    LearningRate(f64),
}

/// The rule of [`Dog`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DogRule {
    init_step: DogInit,
    eps: f64,
    weight_decay: Option<f64>,
}

impl Default for DogRule {
    fn default() -> Self {
        Self {
            init_step: DogInit::Heuristic(1e-6),
            eps: 1e-8,
            weight_decay: None,
        }
    }
}

/// The rule of [`Dowg`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct DowgRule {
    init_estim_sq_dist: Option<f64>,
    eps: f64,
    weight_decay: Option<f64>,
}

impl Default for DowgRule {
    fn default() -> Self {
        Self {
            init_estim_sq_dist: None,
            eps: 1e-4,
            weight_decay: None,
        }
    }
}

setters!(Dog {
    /// Sets where `r` starts (default `DogInit::Heuristic(1e-6)`).
    init_step: DogInit,
    /// Sets ε, added to `G` under the root (default 1e-8), `>= 0`.
    eps: f64,
});

setters!(Dowg {
    /// Sets ε, added to `√v` and the first `r²` (default 1e-4), `>= 0`.
    eps: f64,
});

/// The weight decay builder of both.
macro_rules! weight_decay {
    ($($alias:ident),+) => {$(
        impl<F: Scalar> $alias<F> {
            /// Sets the weight decay λ, added to the gradient: `g ← g + λ·p` (default: none).
            #[must_use]
            pub fn weight_decay(self, weight_decay: f64) -> Self {
                self.with(|r| r.weight_decay = Some(weight_decay))
            }
        }
    )+};
}
weight_decay!(Dog, Dowg);

impl<F: Scalar> Dowg<F> {
    /// Sets the first estimate of the squared distance `r²` (default: ε), `> 0`.
    #[must_use]
    pub fn init_estim_sq_dist(self, init_estim_sq_dist: f64) -> Self {
        self.with(|r| r.init_estim_sq_dist = Some(init_estim_sq_dist))
    }
}

/// The indices of both rules' globals.
const DIST: usize = 0;
const GRADS: usize = 1;
const K: usize = 2;
const ETA: usize = 3;

/// The weight decay of a key: its [`Group`](crate::Group)'s, else the rule's, else none.
fn decay<F: Scalar, L: Layout<F>>(step: &Step<'_, F, L>, wd: Option<f64>) -> F {
    cast(step.weight_decay().or(wd).unwrap_or(0.0))
}

/// `[‖p − p₀‖², ‖g‖², ‖p‖², 0]` of one key, `g` with weight decay `wd`; `p₀ = p` on the key's
/// first step, before it is stored.
fn measure<F: Scalar, L: Layout<F>>(step: &mut Step<'_, F, L>, wd: Option<f64>) -> [f64; 4] {
    let (first, wd) = (step.t() == 1, decay(step, wd));
    let [dist, grads, params] = step.sum(move |p, g, [p0]: &[F; 1]| {
        let away = if first { F::zero() } else { *p0 - p };
        let g = add_scaled(g, wd, p);
        [away * away, g * g, p * p]
    });
    let f64_of = |x: F| x.to_f64().unwrap_or(f64::NAN);
    [f64_of(dist), f64_of(grads), f64_of(params), 0.0]
}

/// `p ← p − lr·(η·g)`, `g` with weight decay `wd`, keeping `p₀` on the key's first step.
fn descend<F: Scalar, L: Layout<F>>(step: Step<'_, F, L>, wd: Option<f64>) {
    let (first, wd) = (step.t() == 1, decay(&step, wd));
    let (eta, neg_lr): (F, F) = (cast(step.globals()[ETA]), cast(-step.lr()));
    step.for_each(move |p, g, [p0]: &mut [F; 1]| {
        if first {
            *p0 = *p;
        }
        *p = *p + neg_lr * (eta * add_scaled(g, wd, *p));
    });
}

/// `x` rounded to `F`: optax keeps these scalars in the parameters' type.
fn round<F: Scalar>(x: f64) -> f64 {
    cast::<F>(x).to_f64().unwrap_or(f64::NAN)
}

impl<F: Scalar> Rule<F> for DogRule {
    type KeyScalars = ();
    const NAME: &'static str = "DoG";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Global;

    fn validate(&self) -> Result<(), Error> {
        let (DogInit::Distance(v) | DogInit::Heuristic(v) | DogInit::LearningRate(v)) =
            self.init_step;
        check::positive("init_step value", v)?;
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("weight_decay value", self.weight_decay.unwrap_or(0.0))
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["init_params"]
    }

    fn globals(&self) -> Vec<(&'static str, f64)> {
        vec![("max_dist", 0.0), ("sum_sq_norm_grads", 0.0), ("k", 0.0), ("eta", 0.0)]
    }

    fn measure<L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        measure(step, self.weight_decay)
    }

    fn reduce(&self, g: &mut [f64], [dist, grads, params, _]: [f64; 4], _: f64) {
        let first = g[K] == 0.0;
        if first {
            g[DIST] = match self.init_step {
                DogInit::Distance(v) => round::<F>(v),
                DogInit::Heuristic(v) => round::<F>(v * round::<F>(1.0 + round::<F>(params.sqrt()))),
                DogInit::LearningRate(_) => 0.0,
            };
        }
        g[DIST] = g[DIST].max(round::<F>(dist.sqrt()));
        g[GRADS] = round::<F>(g[GRADS] + round::<F>(grads));
        g[ETA] = match self.init_step {
            DogInit::LearningRate(v) if first => round::<F>(v),
            _ => round::<F>(g[DIST] / round::<F>(round::<F>(g[GRADS] + self.eps).sqrt())),
        };
        g[K] += 1.0;
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        descend(step, self.weight_decay);
    }
}

impl<F: Scalar> Rule<F> for DowgRule {
    type KeyScalars = ();
    const NAME: &'static str = "DoWG";
    const DEFAULT_LR: f64 = 1.0;
    const SCOPE: Scope = Scope::Global;

    fn validate(&self) -> Result<(), Error> {
        if let Some(d) = self.init_estim_sq_dist {
            check::positive("init_estim_sq_dist value", d)?;
        }
        check::non_negative("epsilon value", self.eps)?;
        check::non_negative("weight_decay value", self.weight_decay.unwrap_or(0.0))
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["init_params"]
    }

    fn globals(&self) -> Vec<(&'static str, f64)> {
        let start = self.init_estim_sq_dist.unwrap_or(self.eps);
        vec![("estim_sq_dist", start), ("weighted_sq_norm_grads", 0.0), ("k", 0.0), ("eta", 0.0)]
    }

    fn measure<L: Layout<F>>(&self, step: &mut Step<'_, F, L>) -> [f64; 4] {
        measure(step, self.weight_decay)
    }

    fn reduce(&self, g: &mut [f64], [dist, grads, ..]: [f64; 4], _: f64) {
        g[DIST] = round::<F>(g[DIST]).max(round::<F>(dist));
        g[GRADS] = round::<F>(round::<F>(g[DIST] * round::<F>(grads)) + g[GRADS]);
        g[ETA] = round::<F>(g[DIST] / round::<F>(round::<F>(g[GRADS].sqrt()) + self.eps));
        g[K] += 1.0;
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        descend(step, self.weight_decay);
    }
}

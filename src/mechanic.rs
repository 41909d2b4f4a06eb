//! Mechanic around any optimizer (Cutkosky et al., 2023, "Mechanic: A Learning Rate Tuner"),
//! exact to `optax.contrib.mechanize`.
//!
//! Mechanic learns the scale of the base optimizer's updates. It keeps the point `x₀` where each
//! key started, runs the base optimizer to get its update `Δ`, and moves the parameters to
//! `x₀ − S·δ`, `δ` the base's accumulated updates and `S = Σᵢ sᵢ` a scale learnt online by
//! `n` coin-betting accumulators with betas `βᵢ = 1 − 10⁻ⁱ`:
//!
//! ```text
//! S = Σ s;   u = g + λ·S·‖g‖/(‖p‖ + ε)·p;   δ_prev = (x₀ − p)/(S + ε);   h = ⟨u, δ_prev⟩
//! m ← max(β·m, |h| + ε);   v ← β²·v + h²;   r ← β·r + clip(h, −m_old, m_old)·s
//! s ← (s_init/n·m + max(0, r)) / (√v + ε)
//! p ← x₀ − (Σ s)·(δ_prev − Δ)
//! ```
//!
//! with norms and products over every key updated. Defaults (optax's): weight decay λ 0.01,
//! ε 1e-8, s_init 1e-6, 6 betas. The base optimizer keeps its own state and learning rate (optax
//! suggests a base rate of 1, schedule included: Mechanic learns the scale).
//!
//! ```
//! use ndarray::{ArrayD, IxDyn};
//! use ndoptim::mechanic::Mechanic;
//! use ndoptim::{Adam, Optimizer, Params};
//!
//! let mut params: Params<f64> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[2]), 1.0))].into();
//! let grads: Params<f64> = [("w".to_string(), ArrayD::from_elem(IxDyn(&[2]), 1.0))].into();
//! let mut opt = Mechanic::new(Adam::pytorch().lr(1.0)).num_betas(3);
//! for _ in 0..3 {
//!     opt.update(&mut params, &grads)?;
//! }
//! assert_eq!(opt.s().len(), 3);
//! assert!(opt.global("s").unwrap() > 0.0);
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! optax takes `x₀` from every parameter at its first update; here each key's `x₀` is its value
//! at its own first update (the same when every key is updated from the start). The base steps
//! a buffer of the wrapper's, so that its errors change nothing. Checkpoint
//! [`Mechanic::checkpoint`] (`x₀`, the accumulators) beside the base optimizer's.

use crate::buffered::Buffered;
use crate::engine::{Engine, Layout, Rule, Scalar, Step, cast};
use crate::tensor::{each_of_two, each_pair};
use crate::{Error, Optimizer, Params, check};

/// The rule of a [`Mechanic`]'s own state: `x0` per key, and the accumulators, kept in `f64`
/// (values of the element type). Its step receives the base optimizer's stepped buffer as its
/// "gradient".
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MechanicRule {
    weight_decay: f64,
    eps: f64,
    s_init: f64,
    /// The accumulators `m`, `v`, `r` and `s`, one entry per beta each.
    m: Vec<f64>,
    v: Vec<f64>,
    r: Vec<f64>,
    s: Vec<f64>,
    /// `S` before and after the step under way, set by the wrapper before the last pass.
    #[cfg_attr(feature = "serde", serde(skip))]
    scales: [f64; 2],
}

impl MechanicRule {
    fn with_betas(mut self, n: usize) -> Self {
        (self.m, self.v, self.r) = (vec![0.0; n], vec![0.0; n], vec![0.0; n]);
        self.s = vec![self.s_init; n];
        self
    }
}

impl<F: Scalar> Rule<F> for MechanicRule {
    type KeyScalars = ();
    const NAME: &'static str = "mechanize";
    const DEFAULT_LR: f64 = 0.0;

    fn validate(&self) -> Result<(), Error> {
        check::non_negative("weight_decay value", self.weight_decay)?;
        check::non_negative("epsilon value", self.eps)?;
        check::positive("s_init value", self.s_init)?;
        let n = self.s.len();
        if n == 0 || [&self.m, &self.v, &self.r].iter().any(|a| a.len() != n) {
            return check::fail(
                "num_betas",
                n as f64,
                "a whole number >= 1, the length of every accumulator",
            );
        }
        Ok(())
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["x0"]
    }

    /// `p ← x₀ − S_new·((x₀ − p)/(S_old + ε) − Δ)`, with `Δ = stepped − p`, as optax returns it
    /// (`p_new − p`, added to `p`).
    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let [old, new] = self.scales;
        let (shrink, scale): (F, F) = (cast(old + self.eps), cast(new));
        let first = step.t() == 1;
        step.for_each(move |p, stepped, [x0]: &mut [F; 1]| {
            if first {
                *x0 = *p;
            }
            let delta = (*x0 - *p) / shrink - (stepped - *p);
            *p = *p + ((*x0 - scale * delta) - *p);
        });
    }
}

/// Mechanic around the optimizer `O` (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct Mechanic<O, F: Scalar> {
    base: Buffered<O, F>,
    /// `x0` and the accumulators: an engine whose rule finishes the step, for its checks, lazy
    /// state and checkpoints.
    state: Engine<MechanicRule, F>,
    /// Each key's sums, kept in the order of the keys' names: the total does not depend on the
    /// order of the maps, and once the keys are known nothing is allocated.
    measured: Vec<(String, [F; 4])>,
}

impl<O: Optimizer<F>, F: Scalar> Mechanic<O, F> {
    /// Mechanic around `base`, with optax's defaults: weight decay 0.01, ε 1e-8, s_init 1e-6,
    /// 6 betas.
    pub fn new(base: O) -> Self {
        let rule = MechanicRule {
            weight_decay: 0.01,
            eps: 1e-8,
            s_init: 1e-6,
            m: Vec::new(),
            v: Vec::new(),
            r: Vec::new(),
            s: Vec::new(),
            scales: [0.0; 2],
        };
        Self {
            base: Buffered::new(base),
            state: Engine::new(rule.with_betas(6)),
            measured: Vec::new(),
        }
    }

    rule_builders!(
        /// Sets Mechanic's weight decay λ, `>= 0` (default 0.01), not the base optimizer's.
        weight_decay: f64,
        /// Sets ε, `>= 0` (default 1e-8).
        eps: f64,
    );

    /// Sets the initial scale, `> 0` (default 1e-6), and restarts the accumulators.
    #[must_use]
    pub fn s_init(mut self, s_init: f64) -> Self {
        let rule = self.state.rule_mut();
        rule.s_init = s_init;
        *rule = rule.clone().with_betas(rule.s.len());
        self
    }

    /// Sets the number of accumulators `n`, `>= 1`, with betas `1 − 10⁻ⁱ` for `i = 1..=n`
    /// (default 6), and restarts them.
    #[must_use]
    pub fn num_betas(mut self, n: usize) -> Self {
        let rule = self.state.rule_mut();
        *rule = rule.clone().with_betas(n);
        self
    }

    /// The scales `s`, one per beta; their sum is the scale applied to the base's updates.
    pub fn s(&self) -> &[f64] {
        &self.state.rule().s
    }

    base_and_checkpoint!(MechanicRule, (), "`x0` and the accumulators");

    /// `[‖g‖², ‖p‖², ⟨g, x₀ − p⟩, ⟨p, x₀ − p⟩]` over the keys of `grads`, in `F` as optax sums,
    /// added in the order of the keys' names.
    fn sums(&mut self, params: &Params<F>, grads: &Params<F>) -> [F; 4] {
        for (_, sums) in &mut self.measured {
            *sums = [F::zero(); 4];
        }
        for (key, g) in grads {
            let Some(p) = params.get(key) else { continue };
            let x0 = self.state.state(key).map(|(_, x0)| x0);
            let mut key_sums = [F::zero(); 4];
            // A key's first update starts at x₀ = p.
            each_of_two(p, g, |i, p, g| {
                let d = x0.map_or(F::zero(), |x0| x0[i] - p);
                let [gg, pp, gd, pd] = &mut key_sums;
                (*gg, *pp, *gd, *pd) = (*gg + g * g, *pp + p * p, *gd + g * d, *pd + p * d);
            });
            match self.measured.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
                Ok(i) => self.measured[i].1 = key_sums,
                Err(i) => self.measured.insert(i, (key.clone(), key_sums)),
            }
        }
        let mut sums = [F::zero(); 4];
        for (_, key_sums) in &self.measured {
            for (total, &s) in sums.iter_mut().zip(key_sums) {
                *total = *total + s;
            }
        }
        sums
    }

    /// The accumulators after a step with the sums of [`Mechanic::sums`]; returns `S` before
    /// and after.
    fn learn(&mut self, [gg, pp, gd, pd]: [F; 4]) -> [f64; 2] {
        let rule = self.state.rule_mut();
        let f = |x: f64| -> F { cast(x) };
        let (eps, wd) = (f(rule.eps), f(rule.weight_decay));
        let old = rule.s.iter().fold(F::zero(), |a, &s| a + f(s));
        let decay = wd * old * gg.sqrt() / (pp.sqrt() + eps);
        let h = (gd + decay * pd) / (old + eps);
        let n = rule.s.len();
        let share = f(rule.s_init / n as f64);
        let mut new = F::zero();
        for i in 0..n {
            let beta = f(1.0 - 0.1f64.powf((i + 1) as f64));
            let (m, v, r, s) = (f(rule.m[i]), f(rule.v[i]), f(rule.r[i]), f(rule.s[i]));
            let m_new = (beta * m).max(h.abs() + eps);
            let v_new = beta * beta * v + h * h;
            let r_new = beta * r + h.max(-m).min(m) * s;
            let s_new = (share * m_new + r_new.max(F::zero())) / (v_new.sqrt() + eps);
            let back = |x: F| x.to_f64().unwrap_or(f64::NAN);
            (rule.m[i], rule.v[i], rule.r[i], rule.s[i]) =
                (back(m_new), back(v_new), back(r_new), back(s_new));
            new = new + s_new;
        }
        [old, new].map(|x| x.to_f64().unwrap_or(f64::NAN))
    }
}

impl<O: Optimizer<F>, F: Scalar> Optimizer<F> for Mechanic<O, F> {
    /// The base optimizer's step, then Mechanic's scale.
    ///
    /// # Errors
    ///
    /// The checks of [`Optimizer::update`] and those of the base optimizer, all before anything
    /// is written: after an error, parameters and state are as they were.
    fn update(&mut self, params: &mut Params<F>, grads: &Params<F>) -> Result<(), Error> {
        Rule::<F>::validate(self.state.rule())?;
        self.state.check_update(params, grads)?;
        self.base.step(params, grads, |_, buffer, p| {
            each_pair(buffer, p, |_, b, p| *b = p)
        })?;
        let sums = self.sums(params, grads);
        self.state.rule_mut().scales = self.learn(sums);
        self.base.finish(&mut self.state, params)
    }

    forward_optimizer!(
        F,
        base: learning_rate,
        hyperparameters,
        modes,
        update_named_through_map,
    );

    /// Drops `x0`, restarts the accumulators and drops the base optimizer's state.
    fn reset(&mut self) {
        self.state.reset();
        let rule = self.state.rule_mut();
        *rule = rule.clone().with_betas(rule.s.len());
        self.base.reset();
    }

    fn name(&self) -> &'static str {
        "mechanize"
    }

    /// Mechanic's sums run over every key.
    fn scope(&self) -> crate::Scope {
        crate::Scope::Global
    }

    /// `"s"`: the scale `Σ s` applied to the base's updates; the base's own otherwise.
    fn global(&self, name: &str) -> Option<f64> {
        match name {
            "s" => Some(self.s().iter().sum()),
            _ => self.base.global(name),
        }
    }
}

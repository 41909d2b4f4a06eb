//! L-BFGS for full-batch problems: `torch.optim.LBFGS`, with its optional strong-Wolfe line
//! search, exact to its iterates and its count of function evaluations.
//!
//! Unlike the [`Optimizer`](crate::Optimizer)s, L-BFGS evaluates the function itself, several
//! times per call: [`Lbfgs::step`] takes a closure that computes the loss at the parameters and
//! fills their gradients.
//!
//! ```
//! use std::collections::HashMap;
//! use ndarray::{ArrayD, arr1};
//! use ndoptim::lbfgs::{Lbfgs, LineSearch};
//!
//! // Rosenbrock's valley, from (-1.5, 2).
//! let mut params: HashMap<String, ArrayD<f64>> =
//!     HashMap::from([("xy".to_string(), arr1(&[-1.5, 2.0]).into_dyn())]);
//! let mut lbfgs = Lbfgs::default().line_search(LineSearch::StrongWolfe);
//! for _ in 0..5 {
//!     lbfgs.step(&mut params, |p, g| {
//!         let (x, y) = (p["xy"][0], p["xy"][1]);
//!         let r = y - x * x;
//!         let gxy = g.get_mut("xy").unwrap();
//!         gxy[0] = -2.0 * (1.0 - x) - 400.0 * x * r;
//!         gxy[1] = 200.0 * r;
//!         (1.0 - x).powi(2) + 100.0 * r * r
//!     })?;
//! }
//! assert!((params["xy"][0] - 1.0).abs() < 1e-4 && (params["xy"][1] - 1.0).abs() < 1e-4);
//! # Ok::<(), ndoptim::Error>(())
//! ```
//!
//! The parameters are one vector to L-BFGS: their keys in sorted order, each array's elements in
//! its logical (row-major) order. The history is built on that vector, so the keys and shapes
//! must stay the same from call to call ([`Lbfgs::reset`] starts over).

use std::collections::VecDeque;

use ndarray::ArrayD;

use crate::engine::{Scalar, cast};
use crate::{Error, Params, check};

/// The line search of [`Lbfgs`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum LineSearch {
    /// A fixed step of the learning rate along the direction (PyTorch's `line_search_fn=None`).
    #[default]
    None,
    /// PyTorch's strong-Wolfe search (`line_search_fn="strong_wolfe"`: `c1 = 1e-4`, `c2 = 0.9`,
    /// at most `max_eval` evaluations in all), a port of minFunc's.
    StrongWolfe,
}

/// What one [`Lbfgs::step`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Call {
    /// Evaluations of the closure.
    pub evaluations: u64,
    /// Iterations (directions taken).
    pub iterations: u64,
}

/// L-BFGS (Nocedal, 1980), as `torch.optim.LBFGS`: a quasi-Newton method that keeps the last
/// `history_size` pairs of steps and gradient changes to approximate the inverse Hessian.
///
/// Each [`Lbfgs::step`] runs up to `max_iter` iterations and `max_eval` evaluations, and stops
/// early when the largest gradient element is at most `tolerance_grad`, or a step or the change
/// of the loss is below `tolerance_change`. The history carries over from call to call.
///
/// Defaults, PyTorch's: learning rate 1, `max_iter` 20, `max_eval` `max_iter · 5 / 4`,
/// `tolerance_grad` 1e-7, `tolerance_change` 1e-9, `history_size` 100, no line search.
///
/// Arithmetic follows PyTorch's: `x + t·d` and the two-loop recursion's updates are fused
/// multiply-adds, as PyTorch's `add_(…, alpha=…)` computes them on the CPU, so that the iterates
/// match its own to the last bit where the problem allows (`tests/conformance.rs`).
#[derive(Clone, Debug)]
pub struct Lbfgs<F: Scalar = f64> {
    lr: f64,
    max_iter: u64,
    max_eval: Option<u64>,
    tolerance_grad: f64,
    tolerance_change: f64,
    history_size: usize,
    line_search: LineSearch,
    maximize: bool,
    state: Option<State<F>>,
    grads: Params<F>,
    last: Call,
}

/// The history and the running totals, kept between calls (PyTorch's `state`).
#[derive(Clone, Debug)]
struct State<F> {
    /// The sorted keys and shapes the vector is made of.
    layout: Vec<(String, Vec<usize>)>,
    func_evals: u64,
    n_iter: u64,
    d: Vec<F>,
    t: f64,
    /// Gradient changes `y` and steps `s`, oldest first, with `1 / (y·s)`.
    old_dirs: VecDeque<Vec<F>>,
    old_stps: VecDeque<Vec<F>>,
    ro: VecDeque<f64>,
    h_diag: f64,
    prev_flat_grad: Vec<F>,
    prev_loss: f64,
    /// The two-loop recursion's coefficients, and the vectors of a pair not (yet) kept.
    al: Vec<f64>,
    spare: [Vec<F>; 2],
    /// The iterate before the last one when the last was taken without an evaluation (the last
    /// iteration of a call without line search): the last finite iterate until it is evaluated.
    unverified_from: Option<Vec<F>>,
}

impl<F: Scalar> Default for Lbfgs<F> {
    fn default() -> Self {
        Lbfgs {
            lr: 1.0,
            max_iter: 20,
            max_eval: None,
            tolerance_grad: 1e-7,
            tolerance_change: 1e-9,
            history_size: 100,
            line_search: LineSearch::None,
            maximize: false,
            state: None,
            grads: Params::new(),
            last: Call::default(),
        }
    }
}

macro_rules! lbfgs_setters {
    ($($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name(mut self, $name: $ty) -> Self {
                self.$name = $name;
                self
            }
        )*
    };
}

impl<F: Scalar> Lbfgs<F> {
    lbfgs_setters! {
        /// Sets the learning rate, `>= 0` (default 1): the step along the direction, or the
        /// line search's first trial.
        lr: f64,
        /// Sets the iterations per call, `>= 1` (default 20).
        max_iter: u64,
        /// Sets the largest gradient element at which a call stops, `>= 0` (default 1e-7).
        tolerance_grad: f64,
        /// Sets the step and loss change below which a call stops, `>= 0` (default 1e-9).
        tolerance_change: f64,
        /// Sets how many pairs the history keeps, `>= 1` (default 100).
        history_size: usize,
        /// Sets the line search (default none).
        line_search: LineSearch,
        /// Maximizes the closure's value instead (default `false`).
        maximize: bool,
    }

    /// Sets the evaluations per call, `>= 1` (default `max_iter · 5 / 4`).
    #[must_use]
    pub fn max_eval(mut self, max_eval: u64) -> Self {
        self.max_eval = Some(max_eval);
        self
    }

    /// The learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.lr
    }

    /// Sets the learning rate, for schedules; the history is kept.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] if `lr` is negative or not finite; nothing changes then.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<(), Error> {
        check::learning_rate(lr)?;
        self.lr = lr;
        Ok(())
    }

    /// What the last [`Lbfgs::step`] did (zeros before the first).
    pub fn last_call(&self) -> Call {
        self.last
    }

    /// Evaluations and iterations since the history began (PyTorch's `func_evals` and `n_iter`).
    pub fn totals(&self) -> Call {
        self.state.as_ref().map_or(Call::default(), |s| Call {
            evaluations: s.func_evals,
            iterations: s.n_iter,
        })
    }

    /// Drops the history: the next call starts with a steepest-descent step, on any parameters.
    pub fn reset(&mut self) {
        self.state = None;
        self.grads.clear();
    }

    /// Checks every hyperparameter.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidHyperparameter`] naming the first one out of range.
    pub fn validate(&self) -> Result<(), Error> {
        check::learning_rate(self.lr)?;
        if self.max_iter == 0 {
            check::fail("max_iter", 0.0, "a whole number >= 1")?;
        }
        if self.max_eval == Some(0) {
            check::fail("max_eval", 0.0, "a whole number >= 1")?;
        }
        if self.history_size == 0 {
            check::fail("history_size", 0.0, "a whole number >= 1")?;
        }
        check::non_negative("tolerance_grad", self.tolerance_grad)?;
        check::non_negative("tolerance_change", self.tolerance_change)
    }

    /// One call of PyTorch's `step(closure)`: up to `max_iter` iterations, each evaluating
    /// `closure(params, grads)`, which returns the loss at `params` and writes the gradients
    /// into `grads` (a map with the keys and shapes of `params`, zeroed before each call; a key
    /// left alone has a zero gradient). Returns the loss at the parameters the call started
    /// from; the parameters are left at the last iterate.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidHyperparameter`]; [`Error::StateShapeMismatch`] or
    ///   [`Error::KeySetChanged`] if the parameters are not those the history was built on.
    ///   Nothing has changed then.
    /// - [`Error::NonFiniteLoss`] if the closure returns NaN or infinity;
    ///   [`Error::ShapeMismatch`] or [`Error::UnknownKey`] if it leaves a gradient of another
    ///   shape or adds one for a key `params` lacks. The parameters are then the last iterate
    ///   whose loss was finite (trial points of the line search are not iterates), and the
    ///   history is dropped ([`Lbfgs::reset`]): it described points the search has left. Without
    ///   a line search, PyTorch ends a call that runs `max_iter` iterations at an iterate it has
    ///   not evaluated; if the next call finds its loss not finite, the parameters go back to
    ///   the iterate before it. A call whose first evaluation fails otherwise leaves the
    ///   parameters where they were.
    pub fn step<C>(&mut self, params: &mut Params<F>, mut closure: C) -> Result<f64, Error>
    where
        C: FnMut(&Params<F>, &mut Params<F>) -> f64,
    {
        self.validate()?;
        let layout = self.layout(params)?;
        let n = layout
            .iter()
            .map(|(_, s)| s.iter().product::<usize>())
            .sum();
        let mut state = self.state.take().unwrap_or_else(|| State::new(layout, n));
        if self.grads.len() != state.layout.len() {
            self.grads = state
                .layout
                .iter()
                .map(|(k, s)| (k.clone(), ArrayD::zeros(s.as_slice())))
                .collect();
        }
        let mut x = Vec::with_capacity(n);
        for (key, _) in &state.layout {
            x.extend(params[key].iter().copied());
        }
        let mut run = Run {
            lbfgs: self,
            params,
            closure: &mut closure,
            evaluations: 0,
            trial: vec![F::zero(); n],
            pool: std::array::from_fn(|_| vec![F::zero(); n]),
        };
        let result = run.call(&mut state, &mut x);
        let evaluations = run.evaluations;
        match result {
            Ok((loss, iterations)) => {
                self.last = Call {
                    evaluations,
                    iterations,
                };
                self.state = Some(state);
                Ok(loss)
            }
            Err(e) => {
                // A non-finite loss at the start condemns an iterate taken unevaluated.
                let condemned = evaluations == 1 && matches!(e, Error::NonFiniteLoss { .. });
                let last_finite = state.unverified_from.as_ref().filter(|_| condemned);
                scatter(params, &state.layout, last_finite.unwrap_or(&x));
                self.last = Call::default();
                self.reset();
                Err(e)
            }
        }
    }

    /// The sorted keys and shapes of `params`, checked against the history's.
    fn layout(&self, params: &Params<F>) -> Result<Vec<(String, Vec<usize>)>, Error> {
        let mut layout: Vec<(String, Vec<usize>)> = params
            .iter()
            .map(|(k, p)| (k.clone(), p.shape().to_vec()))
            .collect();
        layout.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let Some(state) = &self.state else {
            return Ok(layout);
        };
        for (key, shape) in &layout {
            match state.layout.binary_search_by(|(k, _)| k.as_str().cmp(key)) {
                Ok(i) if &state.layout[i].1 == shape => {}
                Ok(i) => {
                    return Err(Error::StateShapeMismatch {
                        key: key.clone(),
                        state_shape: state.layout[i].1.clone(),
                        param_shape: shape.clone(),
                    });
                }
                Err(_) => return Err(Error::KeySetChanged { key: key.clone() }),
            }
        }
        if let Some((key, _)) = state.layout.iter().find(|(k, _)| !params.contains_key(k)) {
            return Err(Error::KeySetChanged { key: key.clone() });
        }
        Ok(layout)
    }
}

impl<F: Scalar> State<F> {
    fn new(layout: Vec<(String, Vec<usize>)>, n: usize) -> Self {
        State {
            layout,
            func_evals: 0,
            n_iter: 0,
            d: vec![F::zero(); n],
            t: 0.0,
            old_dirs: VecDeque::new(),
            old_stps: VecDeque::new(),
            ro: VecDeque::new(),
            h_diag: 1.0,
            prev_flat_grad: vec![F::zero(); n],
            prev_loss: 0.0,
            al: Vec::new(),
            spare: [vec![F::zero(); n], vec![F::zero(); n]],
            unverified_from: None,
        }
    }
}

/// Writes the vector `x` into the parameters.
fn scatter<F: Scalar>(params: &mut Params<F>, layout: &[(String, Vec<usize>)], x: &[F]) {
    let mut at = 0;
    for (key, _) in layout {
        if let Some(p) = params.get_mut(key) {
            let len = p.len();
            p.iter_mut()
                .zip(&x[at..at + len])
                .for_each(|(p, &v)| *p = v);
            at += len;
        }
    }
}

fn dot<F: Scalar>(a: &[F], b: &[F]) -> f64 {
    let mut sum = F::zero();
    for (&a, &b) in a.iter().zip(b) {
        sum = sum + a * b;
    }
    sum.to_f64().unwrap_or(f64::NAN)
}

fn abs_max<F: Scalar>(a: &[F]) -> f64 {
    let max = a
        .iter()
        .fold(F::zero(), |m, &v| if v.abs() > m { v.abs() } else { m });
    max.to_f64().unwrap_or(f64::NAN)
}

/// `y ← y + alpha·x`, fused as PyTorch's CPU `add_(x, alpha=…)`.
fn axpy<F: Scalar>(y: &mut [F], alpha: f64, x: &[F]) {
    let alpha: F = cast(alpha);
    y.iter_mut()
        .zip(x)
        .for_each(|(y, &x)| *y = alpha.mul_add(x, *y));
}

/// One call's evaluations.
struct Run<'a, F: Scalar, C> {
    lbfgs: &'a mut Lbfgs<F>,
    params: &'a mut Params<F>,
    closure: &'a mut C,
    evaluations: u64,
    /// A point off the iterate, and the line search's gradients: the bracket's two, the newest
    /// and the first, at most four at once.
    trial: Vec<F>,
    pool: [Vec<F>; 4],
}

impl<F: Scalar, C: FnMut(&Params<F>, &mut Params<F>) -> f64> Run<'_, F, C> {
    /// The loss and gradient at the parameters as they are, the loss negated and the gradient
    /// gathered negated when maximizing.
    fn evaluate(&mut self, layout: &[(String, Vec<usize>)], g: &mut [F]) -> Result<f64, Error> {
        let grads = &mut self.lbfgs.grads;
        grads.values_mut().for_each(|g| g.fill(F::zero()));
        let loss = (self.closure)(self.params, grads);
        self.evaluations += 1;
        if !loss.is_finite() {
            return Err(Error::NonFiniteLoss { loss });
        }
        if let Some(key) = grads.keys().find(|k| !self.params.contains_key(*k)) {
            return Err(Error::UnknownKey { key: key.clone() });
        }
        let mut at = 0;
        for (key, shape) in layout {
            let Some(grad) = grads.get(key).filter(|gr| gr.shape() == shape.as_slice()) else {
                return Err(Error::ShapeMismatch {
                    key: key.clone(),
                    param_shape: shape.clone(),
                    grad_shape: grads.get(key).map_or(Vec::new(), |gr| gr.shape().to_vec()),
                });
            };
            for (g, &v) in g[at..].iter_mut().zip(grad.iter()) {
                *g = if self.lbfgs.maximize { -v } else { v };
            }
            at += grad.len();
        }
        Ok(if self.lbfgs.maximize { -loss } else { loss })
    }

    /// The loss and gradient at `x + t·d` (PyTorch's `_directional_evaluate`); the parameters
    /// are left at `x`.
    fn directional(
        &mut self,
        layout: &[(String, Vec<usize>)],
        x: &[F],
        t: f64,
        d: &[F],
        slot: usize,
    ) -> Result<f64, Error> {
        let mut trial = std::mem::take(&mut self.trial);
        trial.copy_from_slice(x);
        axpy(&mut trial, t, d);
        scatter(self.params, layout, &trial);
        self.trial = trial;
        let mut g = std::mem::take(&mut self.pool[slot]);
        let loss = self.evaluate(layout, &mut g);
        self.pool[slot] = g;
        scatter(self.params, layout, x);
        loss
    }

    /// PyTorch's `step` body: returns the loss the call began at and the iterations it ran.
    fn call(&mut self, st: &mut State<F>, x: &mut Vec<F>) -> Result<(f64, u64), Error> {
        let lb = self.lbfgs.clone_options();
        let n = x.len();
        let mut g = vec![F::zero(); n];
        let layout = std::mem::take(&mut st.layout);
        let result = self.iterate(&lb, st, &layout, x, &mut g);
        st.layout = layout;
        result
    }

    fn iterate(
        &mut self,
        lb: &Options,
        st: &mut State<F>,
        layout: &[(String, Vec<usize>)],
        x: &mut Vec<F>,
        g: &mut [F],
    ) -> Result<(f64, u64), Error> {
        let orig = self.evaluate(layout, g)?;
        st.unverified_from = None;
        let mut loss = orig;
        let mut current_evals = 1;
        st.func_evals += 1;
        let orig = if lb.maximize { -orig } else { orig };
        if abs_max(g) <= lb.tolerance_grad {
            return Ok((orig, 0));
        }
        let mut n_iter = 0;
        while n_iter < lb.max_iter {
            n_iter += 1;
            st.n_iter += 1;
            if st.n_iter == 1 {
                st.d.iter_mut().zip(g.iter()).for_each(|(d, &g)| *d = -g);
                st.old_dirs.clear();
                st.old_stps.clear();
                st.ro.clear();
                st.h_diag = 1.0;
            } else {
                st.direction(g, lb.history_size);
            }
            st.prev_flat_grad.copy_from_slice(g);
            st.prev_loss = loss;
            let mut t = if st.n_iter == 1 {
                let sum = g.iter().fold(F::zero(), |s, &v| s + v.abs());
                let inverse = 1.0 / sum.to_f64().unwrap_or(f64::NAN);
                (if inverse < 1.0 { inverse } else { 1.0 }) * lb.lr
            } else {
                lb.lr
            };
            let gtd = dot(g, &st.d);
            if gtd > -lb.tolerance_change {
                st.t = t;
                break;
            }
            let ls_evals;
            let opt_cond;
            match lb.line_search {
                LineSearch::StrongWolfe => {
                    let max_ls = lb.max_eval.saturating_sub(current_evals);
                    let found = self.strong_wolfe(layout, x, t, &st.d, loss, g, gtd, max_ls, lb)?;
                    (loss, t, ls_evals) = found;
                    axpy(x, t, &st.d);
                    opt_cond = abs_max(g) <= lb.tolerance_grad;
                }
                LineSearch::None => {
                    let mut trial = std::mem::take(&mut self.trial);
                    trial.copy_from_slice(x);
                    axpy(&mut trial, t, &st.d);
                    if n_iter == lb.max_iter {
                        // PyTorch does not evaluate the last iterate of a call.
                        std::mem::swap(x, &mut trial);
                        st.unverified_from = Some(trial.clone());
                        (opt_cond, ls_evals) = (false, 0);
                    } else {
                        scatter(self.params, layout, &trial);
                        let evaluated = self.evaluate(layout, g);
                        if evaluated.is_ok() {
                            std::mem::swap(x, &mut trial);
                        }
                        self.trial = trial;
                        loss = evaluated?;
                        (opt_cond, ls_evals) = (abs_max(g) <= lb.tolerance_grad, 1);
                    }
                }
            }
            st.t = t;
            current_evals += ls_evals;
            st.func_evals += ls_evals;
            if n_iter == lb.max_iter || current_evals >= lb.max_eval || opt_cond {
                break;
            }
            let step_max = st.d.iter().fold(0.0f64, |m, &d| {
                let v = (d * cast::<F>(t)).abs().to_f64().unwrap_or(f64::NAN);
                if v > m { v } else { m }
            });
            if step_max <= lb.tolerance_change || (loss - st.prev_loss).abs() < lb.tolerance_change
            {
                break;
            }
        }
        scatter(self.params, layout, x);
        Ok((orig, n_iter))
    }

    /// PyTorch's `_strong_wolfe`: returns the loss, step and evaluations, the gradient at the
    /// step in `g`.
    #[allow(clippy::too_many_arguments)]
    fn strong_wolfe(
        &mut self,
        layout: &[(String, Vec<usize>)],
        x: &[F],
        mut t: f64,
        d: &[F],
        f: f64,
        g: &mut [F],
        gtd: f64,
        max_ls: u64,
        lb: &Options,
    ) -> Result<(f64, f64, u64), Error> {
        const C1: f64 = 1e-4;
        const C2: f64 = 0.9;
        let d_norm = abs_max(d);
        self.pool[0].copy_from_slice(g);
        let (first, mut new) = (0, 1);
        let mut f_new = self.directional(layout, x, t, d, new)?;
        let mut evals = 1;
        let mut gtd_new = dot(&self.pool[new], d);
        let (mut t_prev, mut f_prev, mut g_prev, mut gtd_prev) = (0.0, f, first, gtd);
        let mut done = false;
        let mut ls_iter = 0;
        let mut bracket = [0.0; 2];
        let mut bracket_f = [0.0; 2];
        let mut bracket_g = [first; 2];
        let mut bracket_gtd = [0.0; 2];
        let mut len = 2;
        let free = |used: &[usize]| (0..4).find(|i| !used.contains(i)).unwrap_or(3);
        while ls_iter < max_ls {
            if f_new > f + C1 * t * gtd || (ls_iter > 1 && f_new >= f_prev) {
                (bracket, bracket_f) = ([t_prev, t], [f_prev, f_new]);
                (bracket_g, bracket_gtd) = ([g_prev, new], [gtd_prev, gtd_new]);
                break;
            }
            if gtd_new.abs() <= -C2 * gtd {
                (bracket[0], bracket_f[0], bracket_g[0], len) = (t, f_new, new, 1);
                done = true;
                break;
            }
            if gtd_new >= 0.0 {
                (bracket, bracket_f) = ([t_prev, t], [f_prev, f_new]);
                (bracket_g, bracket_gtd) = ([g_prev, new], [gtd_prev, gtd_new]);
                break;
            }
            let (min_step, max_step) = (t + 0.01 * (t - t_prev), t * 10.0);
            let tmp = t;
            t = cubic_interpolate(
                (t_prev, f_prev, gtd_prev),
                (t, f_new, gtd_new),
                Some((min_step, max_step)),
            );
            (t_prev, f_prev, g_prev, gtd_prev) = (tmp, f_new, new, gtd_new);
            new = free(&[first, g_prev]);
            f_new = self.directional(layout, x, t, d, new)?;
            evals += 1;
            gtd_new = dot(&self.pool[new], d);
            ls_iter += 1;
        }
        if ls_iter == max_ls {
            (bracket, bracket_f, bracket_g) = ([0.0, t], [f, f_new], [first, new]);
        }
        let mut insuf_progress = false;
        let (mut low, mut high) = if bracket_f[0] <= bracket_f[len - 1] {
            (0, 1)
        } else {
            (1, 0)
        };
        while !done && ls_iter < max_ls {
            if (bracket[1] - bracket[0]).abs() * d_norm < lb.tolerance_change {
                break;
            }
            t = cubic_interpolate(
                (bracket[0], bracket_f[0], bracket_gtd[0]),
                (bracket[1], bracket_f[1], bracket_gtd[1]),
                None,
            );
            let (b_max, b_min) = (bracket[0].max(bracket[1]), bracket[0].min(bracket[1]));
            let eps = 0.1 * (b_max - b_min);
            if (b_max - t).min(t - b_min) < eps {
                if insuf_progress || t >= b_max || t <= b_min {
                    t = if (t - b_max).abs() < (t - b_min).abs() {
                        b_max - eps
                    } else {
                        b_min + eps
                    };
                    insuf_progress = false;
                } else {
                    insuf_progress = true;
                }
            } else {
                insuf_progress = false;
            }
            new = free(&bracket_g);
            f_new = self.directional(layout, x, t, d, new)?;
            evals += 1;
            gtd_new = dot(&self.pool[new], d);
            ls_iter += 1;
            if f_new > f + C1 * t * gtd || f_new >= bracket_f[low] {
                (bracket[high], bracket_f[high]) = (t, f_new);
                (bracket_g[high], bracket_gtd[high]) = (new, gtd_new);
                (low, high) = if bracket_f[0] <= bracket_f[1] {
                    (0, 1)
                } else {
                    (1, 0)
                };
            } else {
                if gtd_new.abs() <= -C2 * gtd {
                    done = true;
                } else if gtd_new * (bracket[high] - bracket[low]) >= 0.0 {
                    (bracket[high], bracket_f[high]) = (bracket[low], bracket_f[low]);
                    (bracket_g[high], bracket_gtd[high]) = (bracket_g[low], bracket_gtd[low]);
                }
                (bracket[low], bracket_f[low]) = (t, f_new);
                (bracket_g[low], bracket_gtd[low]) = (new, gtd_new);
            }
        }
        g.copy_from_slice(&self.pool[bracket_g[low]]);
        Ok((bracket_f[low], bracket[low], evals))
    }
}

impl<F: Scalar> State<F> {
    /// The two-loop recursion: updates the history with the last step and gradient change, and
    /// sets `d` to the approximate inverse Hessian times the negative gradient `g`.
    fn direction(&mut self, g: &[F], history_size: usize) {
        let t: F = cast(self.t);
        let [mut y, mut s] = std::mem::take(&mut self.spare);
        let pairs = y.iter_mut().zip(&mut s);
        for ((y, s), ((&g, &p), &d)) in pairs.zip(g.iter().zip(&self.prev_flat_grad).zip(&self.d)) {
            *y = g - p;
            *s = d * t;
        }
        let ys = dot(&y, &s);
        if ys > 1e-10 {
            if self.old_dirs.len() == history_size {
                self.ro.pop_front();
                if let (Some(y), Some(s)) = (self.old_dirs.pop_front(), self.old_stps.pop_front()) {
                    self.spare = [y, s];
                }
            }
            self.h_diag = ys / dot(&y, &y);
            self.old_dirs.push_back(y);
            self.old_stps.push_back(s);
            self.ro.push_back(1.0 / ys);
        }
        if self.spare[0].len() != g.len() {
            self.spare = [vec![F::zero(); g.len()], vec![F::zero(); g.len()]];
        }
        let num_old = self.old_dirs.len();
        self.al.resize(num_old, 0.0);
        let q = &mut self.d;
        q.iter_mut().zip(g).for_each(|(q, &g)| *q = -g);
        for i in (0..num_old).rev() {
            self.al[i] = dot(&self.old_stps[i], q) * self.ro[i];
            axpy(q, -self.al[i], &self.old_dirs[i]);
        }
        let h: F = cast(self.h_diag);
        q.iter_mut().for_each(|q| *q = *q * h);
        for i in 0..num_old {
            let be_i = dot(&self.old_dirs[i], q) * self.ro[i];
            axpy(q, self.al[i] - be_i, &self.old_stps[i]);
        }
    }
}

/// minFunc's cubic interpolation of two points with values and slopes, clamped to `bounds`
/// (by default the points' interval); the interval's middle when the cubic has no minimum.
fn cubic_interpolate(
    (x1, f1, g1): (f64, f64, f64),
    (x2, f2, g2): (f64, f64, f64),
    bounds: Option<(f64, f64)>,
) -> f64 {
    let (lo, hi) = bounds.unwrap_or(if x1 <= x2 { (x1, x2) } else { (x2, x1) });
    let d1 = g1 + g2 - 3.0 * (f1 - f2) / (x1 - x2);
    let d2_square = d1 * d1 - g1 * g2;
    if d2_square >= 0.0 {
        let d2 = d2_square.sqrt();
        let min_pos = if x1 <= x2 {
            x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2.0 * d2))
        } else {
            x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2.0 * d2))
        };
        // Python's max and min, argument order included.
        let clamped = if lo > min_pos { lo } else { min_pos };
        if hi < clamped { hi } else { clamped }
    } else {
        (lo + hi) / 2.0
    }
}

/// The hyperparameters one call reads.
struct Options {
    lr: f64,
    max_iter: u64,
    max_eval: u64,
    tolerance_grad: f64,
    tolerance_change: f64,
    history_size: usize,
    line_search: LineSearch,
    maximize: bool,
}

impl<F: Scalar> Lbfgs<F> {
    fn clone_options(&self) -> Options {
        Options {
            lr: self.lr,
            max_iter: self.max_iter,
            max_eval: self.max_eval.unwrap_or(self.max_iter.saturating_mul(5) / 4),
            tolerance_grad: self.tolerance_grad,
            tolerance_change: self.tolerance_change,
            history_size: self.history_size,
            line_search: self.line_search,
            maximize: self.maximize,
        }
    }
}

//! Adafactor: Adam-like steps from factored second moments.

use ndarray::IxDyn;

use crate::engine::{
    Engine, Layout, Parts, Rule, Scalar, Scope, Step, cast, for_each_slice, sum_slice,
};
use crate::parts::{GradientOptions, Lerp};
use crate::{Error, check};

/// Adafactor (Shazeer & Stern, 2018, "Adafactor: Adaptive Learning Rates with Sublinear Memory
/// Cost"), as `torch.optim.Adafactor` computes it.
///
/// For a parameter of two or more dimensions the second moment is kept factored over its last
/// two: a row factor `R` (shape `[…, rows, 1]`) and a column factor `C` (shape `[…, 1, cols]`),
/// rows + cols numbers per matrix instead of rows × cols. Vectors and scalars keep a full `V`.
///
/// ```text
/// g ← −g if maximize;  w = t^τ;  ρₜ = min(lr, 1/√t);  α = max(ε₂, RMS(p))·ρₜ
/// p ← p·(1 − lr·λ)                                        (decoupled weight decay)
/// ≥ 2-D:  R ← lerp(R, mean(g², last axis), w);  C ← lerp(C, mean(g², second-last axis), w)
///         V̂ = R·C / max(mean(R), ε₁)
/// else:   V ← lerp(V, g², w);  V̂ = V
/// U = g / √max(V̂, ε₁²);   p ← p − α / max(1, RMS(U)/d) · U
/// ```
///
/// Defaults: learning rate 0.01 (the cap on ρₜ), τ (`beta2_decay`) = −0.8, ε₁ = the element type's
/// machine epsilon (PyTorch's `eps=(None, 1e-3)`), ε₂ = 1e-3, d = 1, weight decay 0. State:
/// `row_var` and `col_var`, or `variance`, with PyTorch's names and shapes.
///
/// Adafactor is not elementwise: it reduces over rows and columns and over the whole update.
/// Its rule takes the parameter, gradient and state whole through [`Step::parts`] and runs three
/// passes (statistics, update norm, update) with no temporary arrays.
pub type Adafactor<F = f32> = Engine<AdafactorRule, F>;

/// The rule of [`Adafactor`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct AdafactorRule {
    beta2_decay: f64,
    eps1: Option<f64>,
    eps2: f64,
    d: f64,
    options: GradientOptions,
}

impl Default for AdafactorRule {
    fn default() -> Self {
        Self {
            beta2_decay: -0.8,
            eps1: None,
            eps2: 1e-3,
            d: 1.0,
            options: GradientOptions::decoupled(),
        }
    }
}

shares!(AdafactorRule: options);

setters!(Adafactor {
    /// Sets τ, the decay rate of β₂ (`1 − β₂ₜ = t^τ`), `<= 0` (default −0.8).
    beta2_decay: f64,
    /// Sets ε₁, the floor of the variance estimate's root (`None`, the default: the element
    /// type's machine epsilon).
    eps1: Option<f64>,
    /// Sets ε₂, the floor of the parameter's RMS in the step size (default 1e-3).
    eps2: f64,
});

impl<F: Scalar> Adafactor<F> {
    /// Sets d, the clipping threshold of the update's RMS, `>= 1` (default 1).
    #[must_use]
    pub fn d(self, d: f64) -> Self {
        self.with(|r| r.d = d)
    }
}

impl<F: Scalar> Rule<F> for AdafactorRule {
    type KeyScalars = ();
    const NAME: &'static str = "Adafactor";
    const DEFAULT_LR: f64 = 0.01;
    const SCOPE: Scope = Scope::Tensor;

    hyperparameters!(WeightDecay => (options.weight_decay));

    fn validate(&self) -> Result<(), Error> {
        if !(self.beta2_decay <= 0.0 && self.beta2_decay.is_finite()) {
            check::fail("beta2_decay value", self.beta2_decay, "a finite number <= 0")?;
        }
        if let Some(eps1) = self.eps1 {
            check::non_negative("epsilon1 value", eps1)?;
        }
        check::non_negative("epsilon2 value", self.eps2)?;
        if !(self.d >= 1.0 && self.d.is_finite()) {
            check::fail("clipping threshold d", self.d, "a finite number >= 1")?;
        }
        self.options.validate()
    }

    fn slot_names(&self) -> Vec<&'static str> {
        vec!["row_var", "col_var", "variance"]
    }

    fn slots(&self, _key: &str, shape: &[usize]) -> Vec<(&'static str, IxDyn)> {
        let nd = shape.len();
        if nd < 2 {
            return vec![("variance", IxDyn(shape))];
        }
        let (mut row, mut col) = (shape.to_vec(), shape.to_vec());
        row[nd - 1] = 1;
        col[nd - 2] = 1;
        vec![("row_var", IxDyn(&row)), ("col_var", IxDyn(&col))]
    }

    fn scratch(&self, _key: &str, shape: &[usize]) -> usize {
        // Eight partial sums per column, for the column statistics of a matrix.
        match shape {
            [.., _, c] => c.saturating_mul(8),
            _ => 0,
        }
    }

    fn step<L: Layout<F>>(&self, step: Step<'_, F, L>, _: &mut ()) {
        let (lr, t, wd) = (step.lr(), step.t() as f64, step.weight_decay());
        let Parts {
            params: p,
            grads: g,
            state,
            scratch,
        } = step.parts();
        if p.is_empty() {
            return;
        }
        // The last two axes are factored: rows × columns.
        let (nd, n) = (p.ndim(), p.len());
        let (r, c) = if nd >= 2 { (p.shape()[nd - 2], p.shape()[nd - 1]) } else { (1, n) };
        let shape = (nd, r, c);
        let g = g.as_standard_layout();
        let Some(gs) = g.as_slice() else { return };
        match p.as_slice_mut() {
            Some(ps) => self.update(lr, t, wd, ps, gs, shape, state, scratch),
            None => {
                // Other layouts run on a row-major copy (the one case that allocates).
                let mut copy = p.as_standard_layout().into_owned();
                if let Some(ps) = copy.as_slice_mut() {
                    self.update(lr, t, wd, ps, gs, shape, state, scratch);
                }
                p.assign(&copy);
            }
        }
    }
}

impl AdafactorRule {
    /// One step on row-major data: statistics, the update's RMS, then the update. `shape` is
    /// (number of axes, rows, columns).
    ///
    /// Every pass is the engine's dispatched fused loop or eight-lane sum over a contiguous run
    /// (a row, or a whole vector), so that it vectorizes for the CPU; each sum adds its terms in
    /// the order of the reference's vectorized reduction (element `i` into lane `i % 8`).
    #[allow(clippy::too_many_arguments)] // one step's inputs, split out of `step` for the layouts
    fn update<F: Scalar>(
        &self,
        lr: f64,
        t: f64,
        wd: Option<f64>,
        p: &mut [F],
        g: &[F],
        shape: (usize, usize, usize),
        state: &mut [F],
        scratch: &mut [F],
    ) {
        let n = p.len();
        let eps1: F = self.eps1.map_or(F::epsilon(), cast);
        let floor = eps1 * eps1;
        let lerp = Lerp::<F>::new(t.powf(self.beta2_decay));
        let rho = lr.min(1.0 / t.sqrt());
        let [squares_p] = sum_slice::<F, [F; 0], 1>(p, g, &[], &|p, _, _| [p * p]);
        let rms_p = squares_p.sqrt().to_f64().unwrap_or(f64::NAN) / (n as f64).sqrt();
        let alpha = self.eps2.max(rms_p) * rho;
        let (sign, keep) = (self.options.sign::<F>(), self.options.keep::<F>(lr, wd));

        // `rows` has the second-moment factor of each row, `cols` of each column (per matrix of
        // the batch); a vector is one row whose "factor" is its full second moment.
        let (nd, r, c) = shape;
        let (rows, cols) = state.split_at_mut(if nd >= 2 { n / c } else { n });
        if nd >= 2 {
            let (r_f, c_f): (F, F) = (cast(r as f64), cast(c as f64));
            for (v, row) in rows.iter_mut().zip(g.chunks_exact(c)) {
                let [squares] = sum_slice::<F, [F; 0], 1>(row, row, &[], &|_, x, _| [x * x]);
                let root = squares.sqrt();
                *v = lerp.apply(*v, root * root / c_f);
            }
            // Column sums across rows: row i adds into partial sum i % 8 of every column.
            let lanes = &mut scratch[..8 * c];
            for (matrix, cols) in g.chunks_exact(r * c).zip(cols.chunks_exact_mut(c)) {
                lanes.fill(F::zero());
                for (i, row) in matrix.chunks_exact(c).enumerate() {
                    let lane = &mut lanes[(i % 8) * c..(i % 8 + 1) * c];
                    for_each_slice::<F, [F; 0]>(lane, row, [], &move |s, x, _| *s = *s + x * x);
                }
                for (j, v) in cols.iter_mut().enumerate() {
                    let squares = (0..8).fold(F::zero(), |s, l| s + lanes[l * c + j]);
                    let root = squares.sqrt();
                    *v = lerp.apply(*v, root * root / r_f);
                }
            }
        } else {
            for_each_slice::<F, [F; 0]>(rows, g, [], &move |v, x, _| *v = lerp.apply(*v, x * x));
        }
        // A vector is one row of factor 1 whose column factors are its variances, with mean 1:
        // `1·v/1` is exactly `v`, so one loop serves both.
        let one = [F::one()];
        let (rows, cols, r, mean_of) = if nd >= 2 {
            (&*rows, cols, r, true)
        } else {
            (&one[..], rows, 1, false)
        };
        let inv_root = move |rv: F, cv: F, mean: F| F::one() / (rv * cv / mean).max(floor).sqrt();
        // Each row: its parameters and gradient, its row factor, its matrix's column factors and
        // mean row factor.
        let mut rows_of = |p: &mut [F], f: RowPass<'_, F>| {
            let matrices = p.chunks_exact_mut(r * c).zip(g.chunks_exact(r * c));
            for (b, (pm, gm)) in matrices.enumerate() {
                let row_factors = &rows[b * r..(b + 1) * r];
                let mean = if mean_of {
                    (row_factors.iter().fold(F::zero(), |s, &x| s + x) / cast(r as f64)).max(eps1)
                } else {
                    F::one()
                };
                let col_factors = &mut cols[b * c..(b + 1) * c];
                let rows = pm.chunks_exact_mut(c).zip(gm.chunks_exact(c)).zip(row_factors);
                for ((pr, gr), &rv) in rows {
                    f(pr, gr, rv, &mut *col_factors, mean);
                }
            }
        };

        let mut squares = F::zero();
        rows_of(p, &mut |pr, gr, rv, cf, mean| {
            let [row] = sum_slice::<F, [F; 1], 1>(pr, gr, &[cf], &move |_, x, &[cv]| {
                let u = inv_root(rv, cv, mean) * x;
                [u * u]
            });
            squares = squares + row;
        });
        let rms_u = squares.sqrt().to_f64().unwrap_or(f64::NAN) / ((n as f64).sqrt() * self.d);
        let coef: F = cast(-alpha / rms_u.max(1.0));
        rows_of(p, &mut |pr, gr, rv, cf, mean| {
            for_each_slice::<F, [F; 1]>(pr, gr, [cf], &move |p, x, &mut [cv]| {
                *p = *p * keep + coef * (inv_root(rv, cv, mean) * (x * sign));
            });
        });
    }
}

/// A pass over the rows of a step: `f(p_row, g_row, row factor, column factors, mean row factor)`.
type RowPass<'a, F> = &'a mut dyn FnMut(&mut [F], &[F], F, &mut [F], F);

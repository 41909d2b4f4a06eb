//! Adafactor: Adam-like steps from factored second moments.

use ndarray::IxDyn;

use crate::engine::{Engine, Parts, Rule, Scalar, Step, cast};
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

/// `√(Σx²)` in the element type, as `torch.norm`: summed in eight interleaved partial sums (as
/// a vectorized reduction does) rather than one chain of dependent additions.
fn norm<'a, F: Scalar>(xs: impl IntoIterator<Item = &'a F>) -> F {
    sum(xs.into_iter().map(|&x| x * x)).sqrt()
}

/// A sum in eight interleaved partial sums.
fn sum<F: Scalar>(xs: impl IntoIterator<Item = F>) -> F {
    let mut lanes = [F::zero(); 8];
    for (i, x) in xs.into_iter().enumerate() {
        lanes[i % 8] = lanes[i % 8] + x;
    }
    lanes.iter().fold(F::zero(), |s, &x| s + x)
}

impl<F: Scalar> Rule<F> for AdafactorRule {
    type KeyScalars = ();
    const NAME: &'static str = "Adafactor";
    const DEFAULT_LR: f64 = 0.01;

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

    fn slot_names(&self) -> &'static [&'static str] {
        &["row_var", "col_var", "variance"]
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

    fn step(&self, step: Step<'_, F>, _: &mut ()) {
        let (lr, t, wd) = (step.lr(), step.t() as f64, step.weight_decay());
        let Parts {
            params: p,
            grads: g,
            state,
            ..
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
            Some(ps) => self.update(lr, t, wd, ps, gs, shape, state),
            None => {
                // Other layouts run on a row-major copy (the one case that allocates).
                let mut copy = p.as_standard_layout().into_owned();
                if let Some(ps) = copy.as_slice_mut() {
                    self.update(lr, t, wd, ps, gs, shape, state);
                }
                p.assign(&copy);
            }
        }
    }
}

/// A pass over one row: its parameters, its gradient, its row factor, the column factors and the
/// mean row factor of its matrix.
type RowPass<'a, F> = dyn FnMut(&mut [F], &[F], F, &[F], F) + 'a;

impl AdafactorRule {
    /// One step on row-major data: statistics, the update's RMS, then the update.
    /// `shape` is (number of axes, rows, columns).
    #[allow(clippy::too_many_arguments)] // one step's inputs, split out of `step` for the layouts
    fn update<F: Scalar>(&self, lr: f64, t: f64, wd: Option<f64>, p: &mut [F], g: &[F], shape: (usize, usize, usize), state: &mut [F]) {
        let n = p.len();
        let eps1: F = self.eps1.map_or(F::epsilon(), cast);
        let floor = eps1 * eps1;
        let lerp = Lerp::<F>::new(t.powf(self.beta2_decay));
        let rho = lr.min(1.0 / t.sqrt());
        let rms_p = norm(p.iter()).to_f64().unwrap_or(f64::NAN) / (n as f64).sqrt();
        let alpha = self.eps2.max(rms_p) * rho;
        let (sign, keep) = (self.options.sign::<F>(), self.options.keep::<F>(lr, wd));

        // `rows` has the second-moment factor of each row, `cols` of each column (per matrix of
        // the batch); a vector is one row whose "factor" is its full second moment.
        let (nd, r, c) = shape;
        let (rows, cols) = state.split_at_mut(if nd >= 2 { n / c } else { n });
        if nd >= 2 {
            let (r_f, c_f): (F, F) = (cast(r as f64), cast(c as f64));
            for (v, row) in rows.iter_mut().zip(g.chunks_exact(c)) {
                let root = norm(row);
                *v = lerp.apply(*v, root * root / c_f);
            }
            for (b, matrix) in g.chunks_exact(r * c).enumerate() {
                for (j, v) in cols[b * c..(b + 1) * c].iter_mut().enumerate() {
                    let root = norm(matrix.iter().skip(j).step_by(c));
                    *v = lerp.apply(*v, root * root / r_f);
                }
            }
        } else {
            for (v, &x) in rows.iter_mut().zip(g) {
                *v = lerp.apply(*v, x * x);
            }
        }
        // A vector is one row of factor 1 whose column factors are its variances, with mean 1:
        // `1·v/1` is exactly `v`, so one loop serves both.
        let one = [F::one()];
        let (rows, cols, r, mean_of) = if nd >= 2 {
            (&*rows, &*cols, r, true)
        } else {
            (&one[..], &*rows, 1, false)
        };
        let inv_root = move |rv: F, cv: F, mean: F| F::one() / (rv * cv / mean).max(floor).sqrt();
        // Runs `f(p_row, g_row, row factor, column factors, mean row factor)` row by row.
        let for_rows = |p: &mut [F], f: &mut RowPass<'_, F>| {
            let matrices = p.chunks_exact_mut(r * c).zip(g.chunks_exact(r * c));
            for (b, (pm, gm)) in matrices.enumerate() {
                let row_factors = &rows[b * r..(b + 1) * r];
                let mean = if mean_of {
                    (row_factors.iter().fold(F::zero(), |s, &x| s + x) / cast(r as f64)).max(eps1)
                } else {
                    F::one()
                };
                let col_factors = &cols[b * c..(b + 1) * c];
                for ((pr, gr), &rv) in pm.chunks_exact_mut(c).zip(gm.chunks_exact(c)).zip(row_factors) {
                    f(pr, gr, rv, col_factors, mean);
                }
            }
        };

        let mut squares = F::zero();
        for_rows(p, &mut |_, gr, rv, cf, mean| {
            squares = squares
                + sum(gr.iter().zip(cf).map(|(&x, &cv)| {
                    let u = inv_root(rv, cv, mean) * x;
                    u * u
                }));
        });
        let rms_u = squares.sqrt().to_f64().unwrap_or(f64::NAN) / ((n as f64).sqrt() * self.d);
        let coef: F = cast(-alpha / rms_u.max(1.0));
        for_rows(p, &mut |pr, gr, rv, cf, mean| {
            for ((p, &x), &cv) in pr.iter_mut().zip(gr).zip(cf) {
                *p = *p * keep + coef * (inv_root(rv, cv, mean) * (x * sign));
            }
        });
    }
}

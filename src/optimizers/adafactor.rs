//! Adafactor: Adam-like steps from factored second moments.

use ndarray::{Axis, IxDyn};

use crate::engine::{Engine, Rule, Scalar, Step, cast};
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

/// `√(Σx²)` in the element type, as `torch.norm`.
fn norm<'a, F: Scalar>(xs: impl IntoIterator<Item = &'a F>) -> F {
    xs.into_iter().fold(F::zero(), |s, &x| s + x * x).sqrt()
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

    fn slots(&self, shape: &[usize]) -> Vec<(&'static str, IxDyn)> {
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
        let (lr, t) = (step.lr(), step.t() as f64);
        let prep = self.options.at::<F>(lr);
        let (mut p, g, state) = step.parts();
        let n = p.len();
        if n == 0 {
            return;
        }
        let eps1: F = self.eps1.map_or(F::epsilon(), cast);
        let floor = eps1 * eps1;
        let lerp = Lerp::<F>::new(t.powf(self.beta2_decay));
        let rho = lr.min(1.0 / t.sqrt());
        let rms_p = norm(p.iter()).to_f64().unwrap_or(f64::NAN) / (n as f64).sqrt();
        let alpha = self.eps2.max(rms_p) * rho;

        // Pass 1: the second-moment statistics, and `inv_root(k)`, 1/√V̂ of element k (row-major).
        let shape = g.shape();
        let nd = shape.len();
        let (rows, cols) = if nd >= 2 { (shape[nd - 2], shape[nd - 1]) } else { (1, n) };
        let (row_var, col_var) = state.split_at_mut(if nd >= 2 { n / cols } else { n });
        if nd >= 2 {
            let (rows_f, cols_f): (F, F) = (cast(rows as f64), cast(cols as f64));
            for (r, lane) in row_var.iter_mut().zip(g.lanes(Axis(nd - 1))) {
                let root = norm(lane);
                *r = lerp.apply(*r, root * root / cols_f);
            }
            for (c, lane) in col_var.iter_mut().zip(g.lanes(Axis(nd - 2))) {
                let root = norm(lane);
                *c = lerp.apply(*c, root * root / rows_f);
            }
        } else {
            for (v, &x) in row_var.iter_mut().zip(g.iter()) {
                *v = lerp.apply(*v, x * x);
            }
        }
        let (row_var, col_var) = (&*row_var, &*col_var);
        let row_mean = |b: usize| {
            let rs = &row_var[b * rows..(b + 1) * rows];
            let mean = rs.iter().fold(F::zero(), |s, &x| s + x) / cast(rows as f64);
            mean.max(eps1)
        };
        let mut batch = (usize::MAX, F::one());
        let mut inv_root = move |k: usize| {
            let v = if nd >= 2 {
                let b = k / (rows * cols);
                if batch.0 != b {
                    batch = (b, row_mean(b));
                }
                row_var[k / cols] * col_var[b * cols + k % cols] / batch.1
            } else {
                row_var[k]
            };
            F::one() / v.max(floor).sqrt()
        };

        // Pass 2: the RMS of the update U = g/√V̂ clips the step.
        let mut sum = F::zero();
        for (k, &x) in g.iter().enumerate() {
            let u = inv_root(k) * x;
            sum = sum + u * u;
        }
        let rms_u = sum.sqrt().to_f64().unwrap_or(f64::NAN) / ((n as f64).sqrt() * self.d);
        let coef: F = cast(-alpha / rms_u.max(1.0));

        // Pass 3: decay and step.
        for (k, (p, &x)) in p.iter_mut().zip(g.iter()).enumerate() {
            let x = prep.apply(p, x);
            *p = *p + coef * (inv_root(k) * x);
        }
    }
}

//! The book's multi-layer network (`common/multi_layer_net.py`): affine layers with ReLU or
//! sigmoid between them, softmax with cross-entropy at the end, gradients by backpropagation.
//! Its parameters live in a [`Params`] map under the book's keys `W1..Wn`, `b1..bn`, so any
//! ndoptim optimizer trains it. Example code, not part of the library.

use ndarray::{Array1, Array2, ArrayView2, Axis, Ix1, Ix2, LinalgScalar, ScalarOperand};
use ndoptim::init::{Init, Layout};
use ndoptim::{Params, Scalar};
use rand::Rng;

/// The activation between affine layers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    Relu,
    Sigmoid,
    Tanh,
}

impl Activation {
    pub fn apply<F: Scalar>(self, x: F) -> F {
        match self {
            Activation::Relu => x.max(F::zero()),
            Activation::Sigmoid => F::one() / (F::one() + (-x).exp()),
            Activation::Tanh => x.tanh(),
        }
    }

    /// The derivative at the input whose output is `y`.
    fn slope<F: Scalar>(self, y: F) -> F {
        match self {
            Activation::Relu => {
                if y > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Activation::Sigmoid => y * (F::one() - y),
            Activation::Tanh => F::one() - y * y,
        }
    }
}

/// An element type the network computes in.
pub trait Real: Scalar + LinalgScalar + ScalarOperand {}
impl<T: Scalar + LinalgScalar + ScalarOperand> Real for T {}

/// A fully connected network.
#[derive(Clone)]
pub struct Net<F> {
    pub params: Params<F>,
    layers: usize,
    activation: Activation,
}

impl<F: Real> Net<F> {
    /// Layers of `sizes` (input, hidden…, output), weights drawn from `init`, biases zero.
    pub fn new<R: Rng + ?Sized>(
        sizes: &[usize],
        activation: Activation,
        init: Init,
        rng: &mut R,
    ) -> Self {
        let mut params = Params::new();
        for (i, w) in sizes.windows(2).enumerate() {
            let weight = init
                .sample(&[w[0], w[1]], Layout::InOut, rng)
                .expect("layer sizes are positive");
            params.insert(format!("W{}", i + 1), weight);
            params.insert(format!("b{}", i + 1), Array1::zeros(w[1]).into_dyn());
        }
        Net {
            params,
            layers: sizes.len() - 1,
            activation,
        }
    }

    fn weight(&self, i: usize) -> ArrayView2<'_, F> {
        self.params[&format!("W{i}")]
            .view()
            .into_dimensionality::<Ix2>()
            .expect("weights are matrices")
    }

    fn bias(&self, i: usize) -> ndarray::ArrayView1<'_, F> {
        self.params[&format!("b{i}")]
            .view()
            .into_dimensionality::<Ix1>()
            .expect("biases are vectors")
    }

    /// The outputs of every layer, the input first; the last holds the scores (before softmax).
    pub fn forward(&self, x: ArrayView2<'_, F>) -> Vec<Array2<F>> {
        let mut outs = vec![x.to_owned()];
        for i in 1..=self.layers {
            let mut z = outs[i - 1].dot(&self.weight(i)) + self.bias(i);
            if i < self.layers {
                z.mapv_inplace(|v| self.activation.apply(v));
            }
            outs.push(z);
        }
        outs
    }

    /// Mean cross-entropy of the softmax of the scores against the labels, and the gradient of
    /// every parameter.
    pub fn gradient(&self, x: ArrayView2<'_, F>, labels: &[u8]) -> (F, Params<F>) {
        let outs = self.forward(x);
        let (mut dy, loss) = softmax_cross_entropy(outs[self.layers].view(), labels);
        let mut grads = Params::new();
        for i in (1..=self.layers).rev() {
            grads.insert(format!("W{i}"), outs[i - 1].t().dot(&dy).into_dyn());
            grads.insert(format!("b{i}"), dy.sum_axis(Axis(0)).into_dyn());
            if i > 1 {
                let mut da = dy.dot(&self.weight(i).t());
                da.zip_mut_with(&outs[i - 1], |d, &y| *d = *d * self.activation.slope(y));
                dy = da;
            }
        }
        (loss, grads)
    }

    /// Mean cross-entropy loss.
    pub fn loss(&self, x: ArrayView2<'_, F>, labels: &[u8]) -> F {
        softmax_cross_entropy(self.forward(x)[self.layers].view(), labels).1
    }

    /// The fraction of rows whose highest score is their label.
    pub fn accuracy(&self, x: ArrayView2<'_, F>, labels: &[u8]) -> f64 {
        let scores = &self.forward(x)[self.layers];
        let right = scores
            .outer_iter()
            .zip(labels)
            .filter(|(row, label)| {
                let best = row
                    .iter()
                    .enumerate()
                    .fold(
                        (0, F::neg_infinity()),
                        |b, (j, &v)| if v > b.1 { (j, v) } else { b },
                    );
                best.0 == usize::from(**label)
            })
            .count();
        right as f64 / labels.len().max(1) as f64
    }
}

/// The book's `softmax` + `cross_entropy_error` (with its 1e-7 inside the log), and the gradient
/// of their mean with respect to the scores.
fn softmax_cross_entropy<F: Real>(scores: ArrayView2<'_, F>, labels: &[u8]) -> (Array2<F>, F) {
    let batch: F = F::from(labels.len()).unwrap_or_else(F::one);
    let tiny: F = F::from(1e-7).unwrap_or_else(F::zero);
    let mut y = scores.to_owned();
    let mut loss = F::zero();
    for (mut row, &label) in y.outer_iter_mut().zip(labels) {
        let max = row.fold(F::neg_infinity(), |m, &v| m.max(v));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
        let t = usize::from(label);
        loss = loss - (row[t] + tiny).ln();
        row[t] = row[t] - F::one();
    }
    y.mapv_inplace(|v| v / batch);
    (y, loss / batch)
}

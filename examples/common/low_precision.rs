//! Training the book's network with its weights stored in bfloat16: the network computes in f32
//! on the bf16 values (as mixed-precision training without a master copy does), gradients are
//! rounded to bf16, and a low-precision optimizer updates the bf16 weights. Example code.

use half::bf16;
use ndoptim::{Error, Optimizer, Params};

/// An optimizer of bf16 parameters seen as an optimizer of the network's f32 parameters: it
/// keeps the bf16 weights, and after each update the f32 ones are their exact values.
#[derive(Debug)]
pub struct Bf16Weights<O> {
    inner: O,
    weights: Option<Params<bf16>>,
}

impl<O: Optimizer<bf16>> Bf16Weights<O> {
    pub fn new(inner: O) -> Self {
        Self {
            inner,
            weights: None,
        }
    }
}

fn rounded(p: &Params<f32>) -> Params<bf16> {
    p.iter()
        .map(|(k, a)| (k.clone(), a.mapv(bf16::from_f32)))
        .collect()
}

/// The f32 parameters set to the bf16 weights' exact values.
fn copy_back(params: &mut Params<f32>, weights: &Params<bf16>) {
    for (key, p) in params.iter_mut() {
        if let Some(w) = weights.get(key) {
            p.zip_mut_with(w, |p, w| *p = w.to_f32());
        }
    }
}

impl<O: Optimizer<bf16>> Bf16Weights<O> {
    /// Moves the bf16 weights with `f` (an update, or a change of mode), then the f32 ones.
    fn through(
        &mut self,
        params: &mut Params<f32>,
        f: impl FnOnce(&mut O, &mut Params<bf16>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let weights = self.weights.get_or_insert_with(|| rounded(params));
        f(&mut self.inner, weights)?;
        copy_back(params, weights);
        Ok(())
    }
}

impl<O: Optimizer<bf16>> Optimizer<f32> for Bf16Weights<O> {
    fn update(&mut self, params: &mut Params<f32>, grads: &Params<f32>) -> Result<(), Error> {
        self.through(params, |o, w| o.update(w, &rounded(grads)))
    }

    fn eval(&mut self, params: &mut Params<f32>) -> Result<(), Error> {
        self.through(params, |o, w| o.eval(w))
    }

    fn train(&mut self, params: &mut Params<f32>) -> Result<(), Error> {
        self.through(params, |o, w| o.train(w))
    }

    ndoptim::forward_optimizer!(
        f32,
        inner: learning_rate,
        hyperparameters,
        name,
        scope,
        update_named_through_map,
        named_modes_through_map,
    );

    fn reset(&mut self) {
        self.inner.reset();
        self.weights = None;
    }
}

//! Training the book's network with its weights stored in bfloat16: the network computes in f32
//! on the bf16 values (as mixed-precision training without a master copy does), gradients are
//! rounded to bf16, and a low-precision optimizer updates the bf16 weights. Example code.

use half::bf16;
use ndoptim::{Error, Named, Optimizer, Params};

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

impl<O: Optimizer<bf16>> Optimizer<f32> for Bf16Weights<O> {
    fn update(&mut self, params: &mut Params<f32>, grads: &Params<f32>) -> Result<(), Error> {
        let weights = self.weights.get_or_insert_with(|| rounded(params));
        self.inner.update(weights, &rounded(grads))?;
        for (key, p) in params.iter_mut() {
            if let Some(w) = weights.get(key) {
                p.zip_mut_with(w, |p, w| *p = w.to_f32());
            }
        }
        Ok(())
    }

    fn update_named(&mut self, _: &mut [Named<'_, f32>]) -> Result<(), Error> {
        Err(Error::IncompatibleOptions {
            reason: "the example's bf16 weights take maps only",
        })
    }

    fn learning_rate(&self) -> f64 {
        self.inner.learning_rate()
    }

    fn set_learning_rate(&mut self, lr: f64) -> Result<(), Error> {
        self.inner.set_learning_rate(lr)
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.weights = None;
    }

    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

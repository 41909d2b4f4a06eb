//! The examples' network: backpropagation agrees with numerical differentiation.
#![cfg(feature = "init")]

#[path = "../examples/common/net.rs"]
#[allow(dead_code)]
mod net;

use ndarray::Array2;
use ndoptim::init::Init;
use net::{Activation, Net};
use rand::SeedableRng;
use rand::rngs::StdRng;

#[test]
fn backpropagation_matches_numerical_gradients() {
    for activation in [Activation::Relu, Activation::Sigmoid, Activation::Tanh] {
        let mut rng = StdRng::seed_from_u64(5);
        let mut net = Net::<f64>::new(&[6, 5, 4, 3], activation, Init::Xavier, &mut rng);
        // Non-zero biases, so that their gradients are exercised away from the start.
        for (k, b) in net.params.iter_mut().filter(|(k, _)| k.starts_with('b')) {
            b.mapv_inplace(|_| 0.05 * k.len() as f64);
        }
        let x = Array2::from_shape_fn((4, 6), |(i, j)| ((i * 7 + j * 3) % 5) as f64 / 4.0 - 0.5);
        let labels = [0u8, 2, 1, 2];
        let (_, grads) = net.gradient(x.view(), &labels);
        let h = 1e-5;
        for (key, grad) in &grads {
            for idx in 0..grad.len() {
                let at = |net: &mut Net<f64>, delta: f64| {
                    let p = net.params.get_mut(key).unwrap();
                    let v = p.as_slice_mut().unwrap();
                    v[idx] += delta;
                    let l = net.loss(x.view(), &labels);
                    net.params.get_mut(key).unwrap().as_slice_mut().unwrap()[idx] -= delta;
                    l
                };
                let numerical = (at(&mut net, h) - at(&mut net, -h)) / (2.0 * h);
                let analytic = grad.as_slice().unwrap()[idx];
                assert!(
                    (numerical - analytic).abs() <= 1e-7 + 1e-5 * analytic.abs(),
                    "{activation:?} {key}[{idx}]: backprop {analytic}, numerical {numerical}"
                );
            }
        }
    }
}

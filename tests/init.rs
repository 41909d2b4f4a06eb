//! Weight initialisation: fans, gains, and the standard deviations of what is drawn.
#![cfg(feature = "init")]

use ndoptim::Error;
use ndoptim::init::{FanMode, Fans, Init, Layout, Nonlinearity, gain};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn std_of(a: &ndarray::ArrayD<f64>) -> (f64, f64) {
    let n = a.len() as f64;
    let mean = a.sum() / n;
    (
        mean,
        (a.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt(),
    )
}

#[test]
fn drawn_weights_have_the_documented_standard_deviation() {
    let mut rng = StdRng::seed_from_u64(7);
    // fan_in 400, fan_out 250 in the book's layout; [250, 400] in PyTorch's.
    let cases = [
        (Init::Normal { std: 0.01 }, 0.01),
        (Init::Xavier, 1.0 / 400f64.sqrt()),
        (Init::He, (2.0 / 400f64).sqrt()),
        (Init::XavierNormal { gain: 1.0 }, (2.0 / 650f64).sqrt()),
        (
            Init::XavierUniform {
                gain: gain(Nonlinearity::Tanh),
            },
            5.0 / 3.0 * (2.0 / 650f64).sqrt(),
        ),
        (
            Init::KaimingNormal {
                gain: gain(Nonlinearity::Relu),
                mode: FanMode::FanIn,
            },
            (2.0 / 400f64).sqrt(),
        ),
        (
            Init::KaimingUniform {
                gain: 1.0,
                mode: FanMode::FanOut,
            },
            1.0 / 250f64.sqrt(),
        ),
    ];
    for (init, want) in cases {
        for (shape, layout) in [([400, 250], Layout::InOut), ([250, 400], Layout::OutIn)] {
            let w = init.sample::<f64, _>(&shape, layout, &mut rng).unwrap();
            let (mean, std) = std_of(&w);
            // 100,000 draws: the sample std is within 1% of the true one with overwhelming odds.
            assert!(
                (std / want - 1.0).abs() < 0.01,
                "{init:?}: std {std} vs {want}"
            );
            assert!(mean.abs() < 4.0 * want / 316.0, "{init:?}: mean {mean}");
            assert_eq!(init.std(Fans::of(&shape, layout).unwrap()), want);
        }
    }
}

#[test]
fn uniform_initialisations_stay_in_their_bounds() {
    let mut rng = StdRng::seed_from_u64(8);
    let w = Init::XavierUniform { gain: 1.0 }
        .sample::<f32, _>(&[30, 20], Layout::InOut, &mut rng)
        .unwrap();
    let a = (6.0f32 / 50.0).sqrt();
    assert!(w.iter().all(|x| x.abs() <= a));
    assert!(w.iter().any(|x| x.abs() > 0.9 * a));
}

#[test]
fn the_same_seed_gives_the_same_weights() {
    let draw = |seed| {
        Init::He
            .sample::<f32, _>(&[50, 10], Layout::InOut, &mut StdRng::seed_from_u64(seed))
            .unwrap()
    };
    assert_eq!(draw(3), draw(3));
    assert_ne!(draw(3), draw(4));
}

#[test]
fn fans_follow_each_layout() {
    assert_eq!(
        Fans::of(&[784, 100], Layout::InOut).unwrap(),
        Fans {
            fan_in: 784,
            fan_out: 100
        }
    );
    // A convolution kernel [out 16, in 3, 5, 5], as torch.nn.init reads it.
    assert_eq!(
        Fans::of(&[16, 3, 5, 5], Layout::OutIn).unwrap(),
        Fans {
            fan_in: 75,
            fan_out: 400
        }
    );
    assert_eq!(gain(Nonlinearity::LeakyRelu(0.0)), 2f64.sqrt());
    assert_eq!(gain(Nonlinearity::Selu), 0.75);
}

#[test]
fn shapes_without_fans_are_errors() {
    let mut rng = StdRng::seed_from_u64(1);
    let err = Init::He
        .sample::<f32, _>(&[10], Layout::InOut, &mut rng)
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidShape { ref shape, .. } if shape == &[10]),
        "{err}"
    );
    assert!(
        Init::Xavier
            .sample::<f32, _>(&[0, 5], Layout::InOut, &mut rng)
            .is_err()
    );
    // A plain Gaussian needs no fans.
    assert_eq!(
        Init::Normal { std: 1.0 }
            .sample::<f32, _>(&[10], Layout::InOut, &mut rng)
            .unwrap()
            .len(),
        10
    );
    let err = Init::Normal { std: -1.0 }
        .sample::<f32, _>(&[10], Layout::InOut, &mut rng)
        .unwrap_err();
    assert!(err.to_string().contains("standard deviation"), "{err}");
}

//! The book's Figure 6-8: the four optimizers on `f(x, y) = x²/20 + y²` from (-7, 2), 30 steps,
//! against the paths of `tests/data/book_fig6_8.json`.

mod common;

use std::path::Path;

use ndarray::arr0;
use ndoptim::{AdaGrad, Adam, Momentum, Optimizer, Params, Sgd};

#[test]
fn paths_equal_the_book() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/book_fig6_8.json");
    let reference = common::read_json(&path).unwrap();
    let runs = reference["runs"].as_object().unwrap();
    assert_eq!(runs.len(), 4);
    for (name, run) in runs {
        let h = &run["hyperparameters"];
        let lr = h["lr"].as_f64().unwrap();
        let mut opt: Box<dyn Optimizer<f64>> = match name.as_str() {
            "SGD" => Box::new(Sgd::default().lr(lr)),
            "Momentum" => Box::new(
                Momentum::default()
                    .lr(lr)
                    .momentum(h["momentum"].as_f64().unwrap()),
            ),
            "AdaGrad" => Box::new(AdaGrad::default().lr(lr)),
            "Adam" => Box::new(
                Adam::default()
                    .lr(lr)
                    .beta1(h["beta1"].as_f64().unwrap())
                    .beta2(h["beta2"].as_f64().unwrap()),
            ),
            other => panic!("unexpected run {other}"),
        };
        let mut p = Params::from([
            ("x".to_string(), arr0(-7.0).into_dyn()),
            ("y".to_string(), arr0(2.0).into_dyn()),
        ]);
        let want = run["path"].as_array().unwrap();
        assert_eq!(want.len(), 31);
        for (i, point) in want.iter().enumerate() {
            if i > 0 {
                let (x, y) = (p["x"][[]], p["y"][[]]);
                let g = Params::from([
                    ("x".to_string(), arr0(x / 10.0).into_dyn()),
                    ("y".to_string(), arr0(2.0 * y).into_dyn()),
                ]);
                opt.update(&mut p, &g).unwrap();
            }
            for (key, want) in ["x", "y"].iter().zip(point.as_array().unwrap()) {
                let (got, want) = (p[*key][[]], want.as_f64().unwrap());
                let err = common::relative_error(got, want);
                assert!(
                    err <= 1e-12,
                    "{name} step {i} {key}: {got} vs {want} ({err:e})"
                );
            }
        }
    }
}

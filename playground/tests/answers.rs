//! The playground's answers, natively: the surfaces' gradients, the catalog, and errors that
//! name what was wrong.

use ndoptim_playground::{Request, Surface, answer, catalog, grid, run};

#[test]
fn gradients_match_central_differences() {
    for surface in Surface::ALL {
        let (view, start) = surface.view();
        for [x, y] in [start, [view[0] * 0.3, view[3] * 0.7], [0.4, -0.2]] {
            let h = 1e-6;
            let dx = (surface.value(x + h, y) - surface.value(x - h, y)) / (2.0 * h);
            let dy = (surface.value(x, y + h) - surface.value(x, y - h)) / (2.0 * h);
            let [gx, gy] = surface.gradient(x, y);
            for (g, d) in [(gx, dx), (gy, dy)] {
                assert!(
                    (g - d).abs() <= 1e-5 * (1.0 + g.abs()),
                    "{surface:?} at ({x}, {y}): {g} vs {d}"
                );
            }
        }
    }
}

#[test]
fn the_catalog_offers_the_books_four_with_their_learning_rates() {
    let all = catalog();
    for label in ["SGD", "Momentum", "AdaGrad", "Adam"] {
        let entry = all.iter().find(|e| e.label == label).expect(label);
        assert!(
            entry.hyperparameters.iter().any(|(n, _)| n == "lr"),
            "{label}"
        );
    }
    assert_eq!(all.len(), ndoptim::registry::optimizers::<f64>().len());
}

fn book(optimizer: &str, lr: f64) -> Request {
    Request {
        surface: Surface::Book,
        start: [-7.0, 2.0],
        steps: 30,
        optimizer: optimizer.into(),
        hyperparameters: vec![("lr".into(), lr)],
    }
}

#[test]
fn paths_hold_every_step_and_stop_when_they_diverge() {
    let path = run(&book("SGD", 0.95)).unwrap();
    assert_eq!(
        (path.points.len(), path.losses.len(), path.diverged),
        (31, 31, false)
    );
    // SGD's first step by hand: x − lr·x/10, y − lr·2y.
    assert_eq!(path.points[1], [-7.0 - 0.95 * -0.7, 2.0 - 0.95 * 4.0]);
    let wild = run(&Request {
        steps: 2000,
        ..book("SGD", 1.5)
    })
    .unwrap();
    assert!(wild.diverged && wild.points.len() < 2001);
    assert!(wild.points.iter().flatten().all(|v| v.is_finite()));
}

#[test]
fn bad_queries_are_errors_that_say_what_is_wrong() {
    let err = |q: &str| {
        let a: serde_json::Value = serde_json::from_str(&answer(q)).unwrap();
        a["error"].as_str().unwrap_or_default().to_string()
    };
    let q = |r: &Request| serde_json::json!({ "path": r }).to_string();
    assert!(err(&q(&book("Adamm", 0.1))).contains("\"Adamm\""));
    assert!(err(&q(&book("Adam", -1.0))).contains("learning rate"));
    let mut r = book("Adam", 0.1);
    r.hyperparameters = vec![("beta3".into(), 0.5)];
    assert!(err(&q(&r)).contains("\"beta3\""));
    r = book("Adam", 0.1);
    r.steps = 10_000_000;
    assert!(err(&q(&r)).contains("steps"));
    assert!(err("{\"path\": 3}").contains("cannot read"));
    assert!(err(r#"{"grid": {"surface": "book", "columns": 1, "rows": 5}}"#).contains("grid"));
    assert!(err(r#""catalog""#).is_empty());
}

#[test]
fn grids_run_from_the_views_top_left() {
    let values = grid(Surface::Saddle, 3, 2).unwrap();
    // The saddle's view is [-2, 2] × [-2, 2]: the first row is y = 2, the second y = -2.
    assert_eq!(values, vec![0.0, -4.0, 0.0, 0.0, -4.0, 0.0]);
}

/// Whatever the reader picks at its defaults runs: every optimizer of the catalog on every
/// surface from its default start, 50 steps, an answer with its points (or a divergence).
#[test]
fn every_optimizer_walks_every_surface() {
    for entry in catalog() {
        for surface in Surface::ALL {
            let request = Request {
                surface,
                start: surface.view().1,
                steps: 50,
                optimizer: entry.label.clone(),
                hyperparameters: entry.hyperparameters.clone(),
            };
            let path =
                run(&request).unwrap_or_else(|e| panic!("{} on {surface:?}: {e}", entry.label));
            assert!(
                path.diverged || path.points.len() == 51,
                "{} on {surface:?}",
                entry.label
            );
            assert_eq!(path.points[0], request.start);
        }
    }
}

//! Figure 6-8 of *Deep Learning from Scratch* in the browser: any of ndoptim's optimizers on a
//! two-parameter surface, its path step by step.
//!
//! The page (`www/`) sends a [`Request`] as JSON to the WebAssembly build of this crate and draws
//! the [`Response`]; the `paths` binary answers the same JSON natively, which is how the browser
//! test checks the page's numbers. As in the book, `x` and `y` are two 0-d parameters of one map,
//! so per-key rules (trust ratios, Muon's fallback for rank < 2) see two scalars.

use ndoptim::ndarray::{ArrayD, arr0};
use ndoptim::{Hyperparameter, Optimizer, Params, registry};
use serde::{Deserialize, Serialize};

#[cfg(target_arch = "wasm32")]
mod wasm;

/// A surface to minimise: `value` and its gradient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Surface {
    /// The book's `x²/20 + y²`, steep in `y` and shallow in `x`.
    Book,
    /// Rosenbrock's `(1 − x)² + 100(y − x²)²`, a curved valley with its minimum at (1, 1).
    Rosenbrock,
    /// Beale's `(1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²`, minimum at (3, 0.5).
    Beale,
    /// The saddle `x² − y²`: no minimum; a path starting near `y = 0` shows how fast an
    /// optimizer escapes it.
    Saddle,
}

impl Surface {
    /// Every surface, in the page's order.
    pub const ALL: [Surface; 4] = [
        Surface::Book,
        Surface::Rosenbrock,
        Surface::Beale,
        Surface::Saddle,
    ];

    /// The surface's value at `(x, y)`.
    pub fn value(self, x: f64, y: f64) -> f64 {
        match self {
            Surface::Book => x * x / 20.0 + y * y,
            Surface::Rosenbrock => (1.0 - x).powi(2) + 100.0 * (y - x * x).powi(2),
            Surface::Beale => {
                let [a, b, c] = beale_terms(x, y);
                a * a + b * b + c * c
            }
            Surface::Saddle => x * x - y * y,
        }
    }

    /// The gradient at `(x, y)`, as the book writes it for its surface (`x/10`, `2y`).
    pub fn gradient(self, x: f64, y: f64) -> [f64; 2] {
        match self {
            Surface::Book => [x / 10.0, 2.0 * y],
            Surface::Rosenbrock => [
                -2.0 * (1.0 - x) - 400.0 * x * (y - x * x),
                200.0 * (y - x * x),
            ],
            Surface::Beale => {
                let [a, b, c] = beale_terms(x, y);
                [
                    2.0 * (a * (y - 1.0) + b * (y * y - 1.0) + c * (y * y * y - 1.0)),
                    2.0 * x * (a + 2.0 * b * y + 3.0 * c * y * y),
                ]
            }
            Surface::Saddle => [2.0 * x, -2.0 * y],
        }
    }

    /// The page's view of the surface: `[x_min, x_max, y_min, y_max]`, and where paths start by
    /// default (the book's (-7, 2) for its surface).
    pub fn view(self) -> ([f64; 4], [f64; 2]) {
        match self {
            Surface::Book => ([-10.0, 10.0, -5.0, 5.0], [-7.0, 2.0]),
            Surface::Rosenbrock => ([-2.0, 2.0, -1.0, 3.0], [-1.5, 2.0]),
            Surface::Beale => ([-4.5, 4.5, -4.5, 4.5], [1.0, 1.5]),
            Surface::Saddle => ([-2.0, 2.0, -2.0, 2.0], [-1.5, 0.01]),
        }
    }
}

fn beale_terms(x: f64, y: f64) -> [f64; 3] {
    [
        1.5 - x + x * y,
        2.25 - x + x * y * y,
        2.625 - x + x * y * y * y,
    ]
}

/// The hyperparameters the page offers, by the names it shows them under.
const HYPERPARAMETERS: [(&str, Hyperparameter); 4] = [
    ("lr", Hyperparameter::LearningRate),
    ("momentum", Hyperparameter::Momentum),
    ("beta2", Hyperparameter::Beta2),
    ("weight_decay", Hyperparameter::WeightDecay),
];

/// One path to compute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The surface.
    pub surface: Surface,
    /// The starting point `(x, y)`.
    pub start: [f64; 2],
    /// The number of updates.
    pub steps: usize,
    /// A label of [`ndoptim::registry`].
    pub optimizer: String,
    /// Hyperparameters to set, by the names [`catalog`] gives; the rest keep their defaults.
    #[serde(default)]
    pub hyperparameters: Vec<(String, f64)>,
}

/// A computed path.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The points, the start first: `steps + 1` of them unless the path left the finite numbers.
    pub points: Vec<[f64; 2]>,
    /// The surface's value at each point.
    pub losses: Vec<f64>,
    /// Set when the path stopped early: its last point was not finite.
    pub diverged: bool,
}

/// One optimizer of the catalog: its registry label and the hyperparameters it has, with their
/// defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The registry label.
    pub label: String,
    /// `(name, default)` for each hyperparameter of the page the optimizer has.
    pub hyperparameters: Vec<(String, f64)>,
}

/// Every optimizer of the registry, with its hyperparameters.
pub fn catalog() -> Vec<Entry> {
    registry::optimizers::<f64>()
        .into_iter()
        .map(|r| Entry {
            label: r.label.to_string(),
            hyperparameters: HYPERPARAMETERS
                .iter()
                .filter_map(|&(name, h)| Some((name.to_string(), r.optimizer.hyperparameter(h)?)))
                .collect(),
        })
        .collect()
}

/// What the page asks, as JSON: `"catalog"`, `{"grid": {...}}` or `{"path": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Query {
    /// The optimizers and surfaces the page offers: a [`Catalog`].
    Catalog,
    /// The surface's values on a grid over its view, for the contour plot: `rows` rows of
    /// `columns` values, the first row at the view's top (`y_max`).
    Grid {
        /// The surface.
        surface: Surface,
        /// Values per row.
        columns: usize,
        /// Rows.
        rows: usize,
    },
    /// A path: a [`Response`].
    Path(Request),
}

/// The optimizers and surfaces the page offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// Every optimizer of the registry, with its hyperparameters.
    pub optimizers: Vec<Entry>,
    /// Every surface with its view and default start (see [`Surface::view`]).
    pub surfaces: Vec<(Surface, [f64; 4], [f64; 2])>,
}

/// Answers one JSON [`Query`], as the page and the `paths` binary send them, in JSON: a
/// [`Catalog`], the grid's values, a [`Response`], or `{"error": "..."}`.
pub fn answer(query: &str) -> String {
    let answer = serde_json::from_str::<Query>(query)
        .map_err(|e| format!("a query the playground cannot read: {e}"))
        .and_then(|q| match q {
            Query::Catalog => Ok(serde_json::to_value(Catalog {
                optimizers: catalog(),
                surfaces: Surface::ALL
                    .iter()
                    .map(|&s| (s, s.view().0, s.view().1))
                    .collect(),
            })),
            Query::Grid {
                surface,
                columns,
                rows,
            } => grid(surface, columns, rows).map(serde_json::to_value),
            Query::Path(request) => run(&request).map(serde_json::to_value),
        });
    let json = match answer {
        Ok(Ok(value)) => value,
        Ok(Err(e)) => serde_json::json!({ "error": e.to_string() }),
        Err(e) => serde_json::json!({ "error": e }),
    };
    json.to_string()
}

/// The surface's values on a grid over its view (see [`Query::Grid`]).
///
/// # Errors
///
/// A grid of fewer than 2 or more than 2000 values a side.
pub fn grid(surface: Surface, columns: usize, rows: usize) -> Result<Vec<f64>, String> {
    if !(2..=2000).contains(&columns) || !(2..=2000).contains(&rows) {
        return Err(format!(
            "a grid of 2 to 2000 values a side, not {columns} by {rows}"
        ));
    }
    let ([x0, x1, y0, y1], _) = surface.view();
    let at = |i: usize, n: usize, lo: f64, hi: f64| lo + (hi - lo) * i as f64 / (n - 1) as f64;
    Ok((0..rows)
        .flat_map(|r| {
            let y = at(rows - 1 - r, rows, y0, y1);
            (0..columns).map(move |c| surface.value(at(c, columns, x0, x1), y))
        })
        .collect())
}

/// Runs `request`'s optimizer from its start for its steps.
///
/// # Errors
///
/// An unknown optimizer or hyperparameter, or a value the optimizer refuses (its own message).
pub fn run(request: &Request) -> Result<Response, String> {
    const MAX_STEPS: usize = 100_000;
    if request.steps > MAX_STEPS {
        return Err(format!("at most {MAX_STEPS} steps, not {}", request.steps));
    }
    let mut opt: Box<dyn Optimizer<f64>> = registry::by_label(&request.optimizer)
        .ok_or_else(|| format!("no optimizer is labelled {:?}", request.optimizer))?;
    for (name, value) in &request.hyperparameters {
        let h = HYPERPARAMETERS
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, h)| h)
            .ok_or_else(|| format!("no hyperparameter is named {name:?}"))?;
        opt.set_hyperparameter(h, *value)
            .map_err(|e| format!("{}: {e}", request.optimizer))?;
    }
    let surface = request.surface;
    let [x0, y0] = request.start;
    let point = |p: &Params<f64>| [p["x"][[]], p["y"][[]]];
    let scalar = |v: f64| -> ArrayD<f64> { arr0(v).into_dyn() };
    let mut params = Params::from([("x".to_string(), scalar(x0)), ("y".to_string(), scalar(y0))]);
    let mut grads = params.clone();
    let mut response = Response {
        points: vec![request.start],
        losses: vec![surface.value(x0, y0)],
        diverged: false,
    };
    for _ in 0..request.steps {
        let [x, y] = point(&params);
        let [gx, gy] = surface.gradient(x, y);
        for (key, g) in [("x", gx), ("y", gy)] {
            if let Some(slot) = grads.get_mut(key) {
                slot[[]] = g;
            }
        }
        opt.update(&mut params, &grads)
            .map_err(|e| format!("{}: {e}", request.optimizer))?;
        let [x, y] = point(&params);
        let loss = surface.value(x, y);
        if !(x.is_finite() && y.is_finite() && loss.is_finite()) {
            response.diverged = true;
            break;
        }
        response.points.push([x, y]);
        response.losses.push(loss);
    }
    Ok(response)
}

//! SVG figures for the experiments (plotters' SVG backend: no system libraries). Example code.

use std::path::Path;

use plotters::prelude::*;

/// Any plotting failure, as a message.
pub type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// The colours of the series, in order (matplotlib's tab10, then five more).
pub const COLOURS: [RGBColor; 15] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 0),
    RGBColor(174, 199, 232),
    RGBColor(255, 187, 120),
    RGBColor(152, 223, 138),
    RGBColor(197, 176, 213),
];

/// Curves `(name, points)` on one chart.
pub fn lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> PlotResult {
    let root = SVGBackend::new(path, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (_, pts) in series {
        for &(x, y) in pts.iter().filter(|(_, y)| y.is_finite()) {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
    }
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, y0.min(0.0)..y1 + 0.05 * (y1 - y0.min(0.0)))?;
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (i, (name, pts)) in series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// The plane a figure of paths shows: its ranges and the function's minimum, marked.
pub struct Plane {
    pub x: std::ops::Range<f64>,
    pub y: std::ops::Range<f64>,
    pub minimum: (f64, f64),
}

/// Figure 6-8's plane: `f(x, y) = x²/20 + y²`.
pub const FIG_6_8: Plane = Plane {
    x: -10.0..10.0,
    y: -5.0..5.0,
    minimum: (0.0, 0.0),
};

/// Figure 6-8: one panel per optimizer (two by two), the contour lines of the function
/// (`contours`) and the optimizer's path.
pub fn paths(
    path: &Path,
    plane: &Plane,
    contours: &[Vec<(f64, f64)>],
    runs: &[(String, Vec<(f64, f64)>)],
) -> PlotResult {
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((2, 2));
    for ((name, pts), panel) in runs.iter().zip(panels.iter()) {
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(35)
            .build_cartesian_2d(plane.x.clone(), plane.y.clone())?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("x")
            .y_desc("y")
            .draw()?;
        for line in contours {
            chart.draw_series(LineSeries::new(
                line.iter().copied(),
                RGBColor(170, 170, 170).stroke_width(1),
            ))?;
        }
        let red = RGBColor(214, 39, 40);
        chart.draw_series(LineSeries::new(pts.iter().copied(), red.stroke_width(2)))?;
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, red.filled())))?;
        chart.draw_series(std::iter::once(Cross::new(
            plane.minimum,
            6,
            BLACK.stroke_width(2),
        )))?;
    }
    root.present()?;
    Ok(())
}

/// One histogram per layer, side by side: `(title, values in [lo, hi])`.
pub fn histograms(
    path: &Path,
    title: &str,
    lo: f64,
    hi: f64,
    layers: &[(String, Vec<f64>)],
) -> PlotResult {
    let root = SVGBackend::new(path, (1100, 280)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, body) = root.split_vertically(36);
    top.titled(title, ("sans-serif", 22))?;
    let panels = body.split_evenly((1, layers.len()));
    let bins = 30;
    for ((name, values), panel) in layers.iter().zip(panels.iter()) {
        let width = (hi - lo) / bins as f64;
        let mut counts = vec![0usize; bins];
        for &v in values {
            let b = (((v - lo) / width) as isize).clamp(0, bins as isize - 1) as usize;
            counts[b] += 1;
        }
        let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64 * 1.05;
        let mut chart = ChartBuilder::on(panel)
            .caption(name, ("sans-serif", 16))
            .margin(6)
            .x_label_area_size(25)
            .y_label_area_size(if name.ends_with("1-layer") { 45 } else { 10 })
            .build_cartesian_2d(lo..hi, 0f64..top)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(3)
            .y_labels(if name.ends_with("1-layer") { 4 } else { 0 })
            .draw()?;
        chart.draw_series(counts.iter().enumerate().map(|(b, &c)| {
            let x = lo + b as f64 * width;
            Rectangle::new(
                [(x, 0.0), (x + width * 0.95, c as f64)],
                COLOURS[0].filled(),
            )
        }))?;
    }
    root.present()?;
    Ok(())
}

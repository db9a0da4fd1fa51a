//! Charts of a report's time series, as SVG and PNG (plotters, no system libraries).
//!
//! PNG text needs a font: the crate embeds DejaVu Sans Mono (Bitstream Vera licence, see
//! `assets/DejaVuSansMono.LICENSE`) and registers it with plotters' `ab_glyph` renderer, so
//! charts look the same on a laptop with no fonts installed.

use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::SimError;
use crate::metrics::Sample;
use crate::report::Report;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSansMono.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // A failure leaves text unrendered in PNGs; SVG text does not need the font.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// One chart: a title, a y-axis label and how to read the value from a sample.
struct Spec {
    file: &'static str,
    title: &'static str,
    y: &'static str,
    value: fn(&Sample, f64) -> f64,
}

const SPECS: [Spec; 4] = [
    Spec {
        file: "lag",
        title: "Consumer lag",
        y: "messages not yet consumed",
        value: |s, _| s.lag_messages as f64,
    },
    Spec {
        file: "throughput",
        title: "Deliveries per second",
        y: "messages/s",
        value: |s, secs| s.delivered as f64 / secs,
    },
    Spec {
        file: "latency",
        title: "Worst end-to-end latency per interval",
        y: "ms",
        value: |s, _| s.latency_max_ms,
    },
    Spec {
        file: "throttled",
        title: "Throttled requests per second",
        y: "requests/s",
        value: |s, secs| s.throttled as f64 / secs,
    },
];

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

type Series = Vec<(String, Vec<(f64, f64)>)>;

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    y_label: &str,
    series: &Series,
    faults: &[(f64, f64)],
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let x_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.0))
        .fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|x| x.1))
        .fold(0.0, f64::max)
        .max(1.0)
        * 1.1;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("simulated seconds")
        .y_desc(y_label)
        .draw()
        .map_err(e)?;
    for &(a, b) in faults {
        let b = b.min(x_max);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(a, 0.0), (b, y_max)],
                RGBColor(255, 225, 225).filled(),
            )))
            .map_err(e)?;
    }
    for (i, (name, points)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(e)?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Draws every chart of `report` into `dir` as `<name>.svg` and `<name>.png`.
pub(crate) fn write_charts(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    register_font();
    let faults: Vec<(f64, f64)> = report
        .faults
        .iter()
        .map(|f| {
            let end = f
                .end()
                .min(report.duration.plus(crate::SimTime::from_secs(3600)));
            (
                f.at.as_secs_f64(),
                end.as_secs_f64().max(f.at.as_secs_f64() + 0.5),
            )
        })
        .collect();
    let mut written = Vec::new();
    for spec in &SPECS {
        let series: Series = report
            .services
            .iter()
            .map(|s| {
                let mut prev = 0.0;
                let points = s
                    .samples
                    .iter()
                    .map(|x| {
                        let secs = (x.t_s - prev).max(1e-9);
                        prev = x.t_s;
                        (x.t_s, (spec.value)(x, secs))
                    })
                    .collect();
                (s.service.name().to_string(), points)
            })
            .collect();
        let svg = dir.join(format!("{}.svg", spec.file));
        draw(
            SVGBackend::new(&svg, (960, 540)).into_drawing_area(),
            spec.title,
            spec.y,
            &series,
            &faults,
        )
        .map_err(|message| SimError::Chart {
            path: svg.display().to_string(),
            message,
        })?;
        written.push(svg);
        let png = dir.join(format!("{}.png", spec.file));
        draw(
            BitMapBackend::new(&png, (960, 540)).into_drawing_area(),
            spec.title,
            spec.y,
            &series,
            &faults,
        )
        .map_err(|message| SimError::Chart {
            path: png.display().to_string(),
            message,
        })?;
        written.push(png);
    }
    Ok(written)
}

//! The load–latency chart of `kgate bench gateway`, as SVG (plotters, as the simulator's
//! charts): send→ack latency against offered load on a log scale, one colour per path, p50
//! solid and p99 dashed, so a reader sees where each path's queueing starts; and the time the
//! TLS gateway itself held the requests, so a reader sees how little of the gap is kgate's.

use std::path::Path;
use std::sync::Once;

use anyhow::Context;
use plotters::prelude::*;

/// One path's line: its label and (offered load in %, p50 ms, p99 ms) points.
pub struct CurveLine {
    /// The path's name in the legend.
    pub label: String,
    /// (offered load %, p50 ms, p99 ms), by load.
    pub points: Vec<(f64, f64, f64)>,
}

/// plotters measures text with a font even for SVG: the simulator's embedded DejaVu Sans Mono
/// (Bitstream Vera licence, `simulator/assets/DejaVuSansMono.LICENSE`), so the chart needs no
/// system fonts.
static FONT: &[u8] = include_bytes!("../../simulator/assets/DejaVuSansMono.ttf");
static REGISTER: Once = Once::new();

const COLORS: [RGBColor; 4] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
];

/// Draws the curve into `file` (SVG).
///
/// # Errors
/// When the file cannot be written.
pub fn write_curve(file: &Path, title: &str, lines: &[CurveLine]) -> anyhow::Result<()> {
    REGISTER.call_once(|| {
        // On failure the text is left out of the chart; the lines are still drawn.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(0.0, f64::max)
        .max(10.0)
        * 1.08;
    // Log scale: a 3 ms line and a 300 ms line (a path near saturation) both stay readable.
    let values = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter().flat_map(|p| [p.1, p.2]))
    };
    let hi = values().fold(0.0, f64::max).max(1.0);
    let lo = values().filter(|v| *v > 0.0).fold(hi, f64::min);
    let y_min = 10f64.powf(lo.log10().floor()).min(hi / 10.0);
    let y_max = 10f64.powf(hi.log10().ceil()).max(y_min * 10.0);
    let e = |err: DrawingAreaErrorKind<std::io::Error>| anyhow::anyhow!("{err}");
    let root = SVGBackend::new(file, (960, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("offered load, % of the slowest path's peak")
        .y_desc("latency, ms (log scale)")
        .axis_desc_style(("sans-serif", 16))
        .draw()
        .map_err(e)?;
    for (i, line) in lines.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let style = color.stroke_width(2);
        chart
            .draw_series(LineSeries::new(
                line.points.iter().map(|p| (p.0, p.1.max(y_min))),
                style,
            ))
            .map_err(e)?
            .label(format!("{} p50", line.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart
            .draw_series(DashedLineSeries::new(
                line.points.iter().map(|p| (p.0, p.2.max(y_min))),
                10,
                6,
                style,
            ))
            .map_err(e)?
            .label(format!("{} p99", line.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 8, y)], style));
        chart
            .draw_series(
                line.points
                    .iter()
                    .flat_map(|p| [(p.0, p.1.max(y_min)), (p.0, p.2.max(y_min))])
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present()
        .map_err(e)
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

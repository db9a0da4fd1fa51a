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

/// How a chart's y axis is scaled.
#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Linear,
    /// For latencies: a 3 ms line and a 30 s line both stay readable.
    Log,
}

/// One line per service of a chart: a label suffix, how to read the value from a sample
/// (`None` where there is nothing to show, such as a latency without deliveries), and whether
/// it is dashed.
struct Line {
    suffix: &'static str,
    value: fn(&Sample, f64) -> Option<f64>,
    dashed: bool,
}

/// One chart: a file name, a title, a y-axis label, a scale and its lines.
struct Spec {
    file: &'static str,
    title: &'static str,
    y: &'static str,
    scale: Scale,
    lines: &'static [Line],
}

fn positive(x: f64) -> Option<f64> {
    (x > 0.0).then_some(x)
}

const SPECS: [Spec; 4] = [
    Spec {
        file: "lag",
        title: "Consumer lag",
        y: "messages not yet consumed",
        scale: Scale::Linear,
        lines: &[Line {
            suffix: "",
            value: |s, _| Some(s.lag_messages as f64),
            dashed: false,
        }],
    },
    Spec {
        file: "throughput",
        title: "Deliveries per second",
        y: "messages/s",
        scale: Scale::Linear,
        lines: &[Line {
            suffix: "",
            value: |s, secs| Some(s.delivered as f64 / secs),
            dashed: false,
        }],
    },
    Spec {
        file: "latency",
        title: "End-to-end latency per interval: p50 solid, p99 dashed",
        y: "ms (log scale)",
        scale: Scale::Log,
        lines: &[
            Line {
                suffix: " p50",
                value: |s, _| positive(s.latency_p50_ms),
                dashed: false,
            },
            Line {
                suffix: " p99",
                value: |s, _| positive(s.latency_p99_ms),
                dashed: true,
            },
        ],
    },
    Spec {
        file: "throttled",
        title: "Throttled requests per second",
        y: "requests/s",
        scale: Scale::Linear,
        lines: &[Line {
            suffix: "",
            value: |s, secs| Some(s.throttled as f64 / secs),
            dashed: false,
        }],
    },
];

const COLORS: [RGBColor; 5] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
];

/// One drawn line: label, service index (its colour and width), dashed, points.
struct Drawn {
    label: String,
    service: usize,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// A fault window on the time axis, with the fault's name.
struct Window {
    from: f64,
    to: f64,
    name: String,
}

/// A tick label: whole numbers without a decimal point, large ones shortened (`12k`, `1.5M`),
/// small ones with at most two decimals.
pub(crate) fn tick(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(format!("{:.1}", v / 1e6)))
    } else if a >= 1e4 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        trim(format!("{v:.2}"))
    }
}

/// Line width of service `i` of `n`: the first is widest, so a line drawn later on top of an
/// equal one leaves the earlier visible as a border.
fn width(i: usize, n: usize) -> u32 {
    2 + 2 * (n.saturating_sub(1).saturating_sub(i)) as u32
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    spec: &Spec,
    lines: &[Drawn],
    services: usize,
    faults: &[Window],
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    root.fill(&WHITE).map_err(e)?;
    let x_max = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0))
        .fold(1.0, f64::max);
    let values = || lines.iter().flat_map(|l| l.points.iter().map(|p| p.1));
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(spec.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(86);
    let x_fmt = |x: &f64| tick(*x);
    let y_fmt = |y: &f64| tick(*y);
    match spec.scale {
        Scale::Linear => {
            let y_max = values().fold(0.0, f64::max).max(1.0) * 1.1;
            let mut chart = builder
                .build_cartesian_2d(0f64..x_max, 0f64..y_max)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("simulated seconds")
                .y_desc(spec.y)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(e)?;
            plot(&root, &mut chart, lines, services, faults, (0.0, y_max)).map_err(e)?;
        }
        Scale::Log => {
            let hi = values().fold(0.0, f64::max).max(1.0);
            let lo = values().filter(|v| *v > 0.0).fold(hi, f64::min);
            let y_min = 10f64.powf(lo.log10().floor()).min(hi / 10.0);
            let y_max = 10f64.powf(hi.log10().ceil()).max(y_min * 10.0);
            let mut chart = builder
                .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("simulated seconds")
                .y_desc(spec.y)
                .x_label_formatter(&x_fmt)
                .y_label_formatter(&y_fmt)
                .axis_desc_style(("sans-serif", 16))
                .draw()
                .map_err(e)?;
            plot(&root, &mut chart, lines, services, faults, (y_min, y_max)).map_err(e)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Fault windows (shaded, named at the top), then the lines, then the legend.
fn plot<'a, DB, X, Y>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: &[Drawn],
    services: usize,
    faults: &[Window],
    (y_lo, y_hi): (f64, f64),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    let x_max = chart.x_range().end;
    for w in faults {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(w.from, y_lo), (w.to.min(x_max), y_hi)],
            RGBColor(255, 225, 225).filled(),
        )))?;
    }
    for (k, w) in faults.iter().enumerate() {
        // Named in pixels just inside the window's top-left corner, staggered so that
        // neighbouring windows keep their names apart.
        let (px, py) = chart.backend_coord(&(w.from, y_hi));
        root.draw(&Text::new(
            w.name.clone(),
            (px + 4, py + 4 + 16 * (k % 3) as i32),
            ("sans-serif", 14).into_font().color(&RGBColor(160, 30, 30)),
        ))?;
    }
    for l in lines {
        let color = COLORS[l.service % COLORS.len()];
        let w = width(l.service, services);
        let style = color.stroke_width(w);
        let anno = if l.dashed {
            chart.draw_series(DashedLineSeries::new(
                l.points.iter().copied(),
                10,
                6,
                style,
            ))?
        } else {
            chart.draw_series(LineSeries::new(l.points.iter().copied(), style))?
        };
        let dashed = l.dashed;
        anno.label(l.label.as_str()).legend(move |(x, y)| {
            if dashed {
                PathElement::new(vec![(x, y), (x + 8, y)], color.stroke_width(w))
            } else {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(w))
            }
        });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    Ok(())
}

/// Draws every chart of `report` into `dir` as `<name>.svg` and `<name>.png`.
pub(crate) fn write_charts(report: &Report, dir: &Path) -> Result<Vec<PathBuf>, SimError> {
    register_font();
    let faults: Vec<Window> = report
        .faults
        .iter()
        .map(|f| {
            let end = f
                .end()
                .min(report.duration.plus(crate::SimTime::from_secs(3600)));
            Window {
                from: f.at.as_secs_f64(),
                to: end.as_secs_f64().max(f.at.as_secs_f64() + 0.5),
                name: f.kind.name().to_string(),
            }
        })
        .collect();
    let services = report.services.len();
    let mut written = Vec::new();
    for spec in &SPECS {
        let mut lines = Vec::new();
        for (i, s) in report.services.iter().enumerate() {
            for line in spec.lines {
                let mut prev = 0.0;
                let points = s
                    .samples
                    .iter()
                    .filter_map(|x| {
                        let secs = (x.t_s - prev).max(1e-9);
                        prev = x.t_s;
                        (line.value)(x, secs).map(|v| (x.t_s, v))
                    })
                    .collect();
                lines.push(Drawn {
                    label: format!("{}{}", s.service.name(), line.suffix),
                    service: i,
                    dashed: line.dashed,
                    points,
                });
            }
        }
        let svg = dir.join(format!("{}.svg", spec.file));
        draw(
            SVGBackend::new(&svg, (960, 540)).into_drawing_area(),
            spec,
            &lines,
            services,
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
            spec,
            &lines,
            services,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_ticks_have_no_decimal_point_and_large_ones_are_short() {
        assert_eq!(tick(0.0), "0");
        assert_eq!(tick(300.0), "300");
        assert_eq!(tick(2500.0), "2500");
        assert_eq!(tick(12_000.0), "12k");
        assert_eq!(tick(1_500_000.0), "1.5M");
        assert_eq!(tick(0.25), "0.25");
        assert_eq!(tick(2.5), "2.5");
    }

    #[test]
    fn each_interval_carries_the_p50_and_p99_the_latency_chart_draws() {
        let w = crate::WorkloadSpec::named("payments", 500.0).unwrap();
        let r = crate::Scenario::compare(
            w,
            crate::SimTime::from_secs(5),
            &[crate::ServiceKind::Kafka],
        )
        .unwrap()
        .run()
        .unwrap();
        let s = &r.services[0];
        let busy: Vec<&Sample> = s.samples.iter().filter(|x| x.delivered > 100).collect();
        assert!(busy.len() >= 4);
        for x in busy {
            assert!(x.latency_p50_ms > 0.0, "{x:?}");
            assert!(x.latency_p50_ms <= x.latency_p99_ms, "{x:?}");
            assert!(x.latency_p99_ms <= x.latency_max_ms, "{x:?}");
            // Each interval's median is the run's median, within the histogram's 3%.
            let ratio = x.latency_p50_ms / s.latency.p50_ms;
            assert!((0.9..1.1).contains(&ratio), "{x:?}");
        }
    }

    #[test]
    fn the_first_service_is_drawn_widest_so_overlapping_lines_stay_visible() {
        let widths: Vec<u32> = (0..4).map(|i| width(i, 4)).collect();
        assert_eq!(widths, [8, 6, 4, 2]);
    }
}

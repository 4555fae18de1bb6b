//! The report's charts as inline SVG, drawn with plotters' SVG backend.
//!
//! plotters draws the axes, grid, labels, the windows' counts and the threshold lines.
//! The marks that link to alerts (windows that fired, alerts on the timeline) are added
//! after it as SVG `<a>` elements, at the pixels plotters' chart maps their data to:
//! plotters' backends draw shapes, not links. Each fired mark carries its count and the
//! threshold from the alert (`data-count`, `data-threshold`) and draws that threshold as
//! a short tick, so the page shows (and a test can check) the spike above its threshold.
//!
//! Time is on the x axis in days since the epoch, so plotters' round key points fall on
//! UTC midnights.

use anyhow::{Result, anyhow};
use chrono::DateTime;
use html_escape::encode_quoted_attribute as escape;
use minewatch_guest::catalog::{LAUNCH_SPIKE, LAUNCH_SPIKE_DENSITY};
use minewatch_guest::{DAY_MS, Timestamp};
use plotters::coord::ranged1d::{IntoSegmentedCoord, SegmentValue};
use plotters::prelude::*;

use super::{AlertFacts, MAX_CHART_POINTS, PrincipalChart, Report, WindowFacts, show_time};

/// Chart size in SVG pixels (scaled to the page width by CSS).
const WIDTH: u32 = 1100;
/// Height of the chart of a principal with alerts.
const RATE_HEIGHT: u32 = 300;
/// Height of the chart of a principal without alerts.
const QUIET_HEIGHT: u32 = 210;
/// Left margin for the y labels.
const Y_LABELS: u32 = 60;

/// Colours: the two rate rules, the counts, and each detection.
pub const STDEV_COLOR: RGBColor = RGBColor(224, 98, 13);
/// `ec2-launch-spike-density`'s colour.
pub const DENSITY_COLOR: RGBColor = RGBColor(123, 63, 181);
/// Window counts.
pub const COUNT_COLOR: RGBColor = RGBColor(58, 110, 165);
const FLOOR_COLOR: RGBColor = RGBColor(140, 140, 140);
const GRID: RGBColor = RGBColor(236, 238, 242);
const AXIS: RGBColor = RGBColor(150, 155, 165);

/// A detection's colour, as a CSS hex string.
pub fn detection_color(slug: &str) -> &'static str {
    match slug {
        "ec2-unseen-region" => "#2a7ab9",
        "ec2-unseen-ami" => "#2e9d5b",
        "ec2-unseen-instance-type" => "#b8860b",
        "ec2-unseen-user" => "#8c564b",
        LAUNCH_SPIKE => "#e0620d",
        LAUNCH_SPIKE_DENSITY => "#7b3fb5",
        _ => "#555555",
    }
}

/// The time range every chart of a report shares: whole UTC days around the span.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    /// First day, in days since the epoch.
    pub from: f64,
    /// Day after the last, in days since the epoch.
    pub to: f64,
}

impl Frame {
    /// Whole days around `first..=last` (ms since the epoch).
    pub fn around(first: Timestamp, last: Timestamp) -> Frame {
        let from = first.div_euclid(DAY_MS);
        let to = last.div_euclid(DAY_MS) + 1;
        Frame {
            from: from as f64,
            to: to.max(from + 1) as f64,
        }
    }

    fn x(t: Timestamp) -> f64 {
        t as f64 / DAY_MS as f64
    }

    fn label(self, day: f64) -> String {
        let t = (day * DAY_MS as f64).round() as i64;
        let format = if self.to - self.from > 150.0 {
            "%Y-%m-%d"
        } else {
            "%b %d"
        };
        DateTime::from_timestamp_millis(t)
            .map(|t| t.format(format).to_string())
            .unwrap_or_default()
    }
}

fn plot_error<E: std::fmt::Display>(error: E) -> anyhow::Error {
    anyhow!("failed to draw a chart: {error}")
}

/// Puts the overlay elements inside the SVG plotters wrote, before its end tag.
fn splice(mut svg: String, overlay: &str) -> String {
    if let Some(end) = svg.rfind("</svg>") {
        svg.insert_str(end, overlay);
    }
    svg
}

/// A link around `shapes` to an alert, with a tooltip.
fn link(alert: &AlertFacts, class: &str, data: &str, shapes: &str) -> String {
    let title = format!(
        "{} at {}: {}",
        alert.detection,
        show_time(alert.time),
        alert.alert["message"].as_str().unwrap_or_default()
    );
    format!(
        "<a href=\"#{id}\" class=\"{class}\" data-alert=\"{id}\" data-detection=\"{det}\"{data}><title>{title}</title>{shapes}</a>\n",
        id = alert.id,
        det = escape(&alert.detection),
        title = escape(&title),
    )
}

/// The timeline: every alert on its detection's row, over event time.
///
/// # Errors
/// plotters failed to draw (it writes to a string, so only on a bug).
pub fn timeline(report: &Report, frame: Frame) -> Result<String> {
    let rows: Vec<&str> = report.detections.iter().map(|d| d.slug.as_str()).collect();
    let n = rows.len().max(1) as i32;
    let height = 70 + 34 * n as u32;
    let mut svg = String::new();
    let mut overlay = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(28)
            .y_label_area_size(175)
            .build_cartesian_2d(frame.from..frame.to, (0..n).into_segmented())
            .map_err(plot_error)?;
        let label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => rows
                .get(*i as usize)
                .copied()
                .unwrap_or_default()
                .to_string(),
            SegmentValue::Last => String::new(),
        };
        let x_label = |d: &f64| frame.label(*d);
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(AXIS)
            .x_labels(12)
            .y_labels(n as usize)
            .x_label_formatter(&x_label)
            .y_label_formatter(&label)
            .label_style(("sans-serif", 13).into_font().color(&RGBColor(60, 64, 72)))
            .draw()
            .map_err(plot_error)?;
        for alert in &report.alerts {
            let Some(row) = rows.iter().position(|r| *r == alert.detection) else {
                continue;
            };
            let (x, y) =
                chart.backend_coord(&(Frame::x(alert.time), SegmentValue::CenterOf(row as i32)));
            let shape = format!(
                "<circle cx=\"{x}\" cy=\"{y}\" r=\"6\" fill=\"{}\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>",
                detection_color(&alert.detection)
            );
            overlay.push_str(&link(alert, "mark timeline-mark", "", &shape));
        }
        root.present().map_err(plot_error)?;
    }
    Ok(splice(svg, &overlay))
}

/// Keeps at most about [`MAX_CHART_POINTS`] windows: when there are more, the busiest
/// window of each pixel column, and every window that raised an alert.
fn thin(windows: &[WindowFacts], frame: Frame, columns: usize) -> Vec<&WindowFacts> {
    if windows.len() <= MAX_CHART_POINTS {
        return windows.iter().collect();
    }
    let mut best: Vec<Option<&WindowFacts>> = vec![None; columns];
    let mut kept = Vec::new();
    for w in windows {
        if !w.alerts.is_empty() {
            kept.push(w);
            continue;
        }
        let at = ((Frame::x(w.start) - frame.from) / (frame.to - frame.from) * columns as f64)
            .clamp(0.0, columns as f64 - 1.0) as usize;
        if best[at].is_none_or(|b| b.count < w.count) {
            best[at] = Some(w);
        }
    }
    kept.extend(best.into_iter().flatten());
    kept.sort_by_key(|w| w.start);
    kept
}

/// A threshold line as segments (gaps where the rule was not armed), one point per
/// pixel column at most, clamped to the chart's top.
fn line_segments(
    points: &[(Timestamp, Option<f64>)],
    frame: Frame,
    columns: usize,
    top: f64,
) -> Vec<Vec<(f64, f64)>> {
    let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current: Vec<(f64, f64)> = Vec::new();
    let mut last_column = usize::MAX;
    for (t, value) in points {
        let Some(value) = value else {
            if !current.is_empty() {
                segments.push(std::mem::take(&mut current));
            }
            continue;
        };
        let x = Frame::x(*t);
        let column = ((x - frame.from) / (frame.to - frame.from) * columns as f64) as usize;
        let point = (x, value.min(top));
        if column == last_column
            && let Some(previous) = current.last_mut()
        {
            *previous = point;
        } else {
            current.push(point);
        }
        last_column = column;
    }
    if !current.is_empty() {
        segments.push(current);
    }
    segments
}

/// The chart of one principal's windows with the thresholds of both rules.
///
/// # Errors
/// plotters failed to draw (it writes to a string, so only on a bug).
pub fn principal(report: &Report, chart: &PrincipalChart, frame: Frame) -> Result<String> {
    let rates = &report.rates;
    let timeline = rates.timelines.get(&chart.scope);
    // Each rule's line: the global population's timeline, or this principal's windows.
    let line =
        |own: bool, pick: fn(&WindowFacts) -> Option<f64>| -> Vec<(Timestamp, Option<f64>)> {
            let source: &[WindowFacts] = match (own, timeline) {
                (false, Some(timeline)) => timeline,
                _ => &chart.windows,
            };
            source.iter().map(|w| (w.start, pick(w))).collect()
        };
    let stdev = line(rates.per_principal.0, |w| w.stdev_threshold);
    let density = line(rates.per_principal.1, |w| w.density_threshold);
    let floor = rates.floors.iter().map(|(_, f)| *f).max().unwrap_or(0) as f64;
    let mut levels: Vec<f64> = stdev
        .iter()
        .chain(&density)
        .filter_map(|(_, v)| *v)
        .filter(|v| v.is_finite())
        .collect();
    levels.sort_by(f64::total_cmp);
    let typical = levels.get(levels.len() * 9 / 10).copied().unwrap_or(0.0);
    let top = (chart.busiest as f64).max(floor).max(typical).max(1.0) * 1.18 + 1.0;
    let columns = (WIDTH - Y_LABELS) as usize;
    let alerts: Vec<&AlertFacts> = report
        .alerts
        .iter()
        .filter(|a| a.chart.as_deref() == Some(chart.id.as_str()))
        .collect();
    let mut svg = String::new();
    let mut overlay = String::new();
    {
        // Principals without alerts get a lower chart: they are context.
        let height = if alerts.is_empty() {
            QUIET_HEIGHT
        } else {
            RATE_HEIGHT
        };
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let mut plot = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(28)
            .x_label_area_size(28)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(frame.from..frame.to, 0f64..top)
            .map_err(plot_error)?;
        let x_label = |d: &f64| frame.label(*d);
        let y_label = |v: &f64| format!("{v:.0}");
        plot.configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .axis_style(AXIS)
            .x_labels(12)
            .y_labels(if alerts.is_empty() { 4 } else { 6 })
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .y_desc(format!("per {} min", rates.window_minutes))
            .label_style(("sans-serif", 13).into_font().color(&RGBColor(60, 64, 72)))
            .axis_desc_style(("sans-serif", 13).into_font().color(&RGBColor(60, 64, 72)))
            .draw()
            .map_err(plot_error)?;
        if floor > 0.0 {
            plot.draw_series(DashedLineSeries::new(
                [(frame.from, floor), (frame.to, floor)],
                6,
                5,
                FLOOR_COLOR.stroke_width(1),
            ))
            .map_err(plot_error)?;
        }
        let points = thin(&chart.windows, frame, columns);
        plot.draw_series(points.iter().map(|w| {
            Circle::new(
                (Frame::x(w.start), w.count as f64),
                3,
                COUNT_COLOR.mix(0.75).filled(),
            )
        }))
        .map_err(plot_error)?;
        for (points, color) in [(&stdev, STDEV_COLOR), (&density, DENSITY_COLOR)] {
            for segment in line_segments(points, frame, columns, top) {
                plot.draw_series(LineSeries::new(segment, color.stroke_width(2)))
                    .map_err(plot_error)?;
            }
        }
        for alert in &alerts {
            let rate = alert.detection == LAUNCH_SPIKE || alert.detection == LAUNCH_SPIKE_DENSITY;
            if !rate {
                // Unseen-value alerts of this principal: a diamond along the top edge.
                let (x, y) = plot.backend_coord(&(Frame::x(alert.time), top));
                let y = y + 8;
                let shape = format!(
                    "<path d=\"M{x} {} L{} {y} L{x} {} L{} {y} Z\" fill=\"{}\" stroke=\"#ffffff\"/>",
                    y - 7,
                    x + 6,
                    y + 7,
                    x - 6,
                    detection_color(&alert.detection)
                );
                overlay.push_str(&link(alert, "mark unseen-mark", "", &shape));
                continue;
            }
            let (Some(window), Some(count), Some(threshold)) = (
                alert.window,
                alert.evidence("count"),
                alert.evidence("threshold"),
            ) else {
                continue;
            };
            // The window's final count (the alert's count is the one that crossed).
            let final_count = chart
                .windows
                .iter()
                .find(|w| w.start == window)
                .map_or(count, |w| w.count as f64);
            let (x, y) = plot.backend_coord(&(Frame::x(window), final_count));
            let (_, ty) = plot.backend_coord(&(Frame::x(window), threshold.min(top)));
            let (color, shape) = if alert.detection == LAUNCH_SPIKE {
                (
                    "#e0620d",
                    format!(
                        "<circle class=\"fired-window\" cx=\"{x}\" cy=\"{y}\" r=\"6\" fill=\"#e0620d\" stroke=\"#ffffff\" stroke-width=\"1.5\"/>"
                    ),
                )
            } else {
                (
                    "#7b3fb5",
                    format!(
                        "<circle class=\"fired-window\" cx=\"{x}\" cy=\"{y}\" r=\"10\" fill=\"none\" stroke=\"#7b3fb5\" stroke-width=\"2.5\"/>"
                    ),
                )
            };
            let tick = format!(
                "<line class=\"threshold-tick\" x1=\"{}\" x2=\"{}\" y1=\"{ty}\" y2=\"{ty}\" stroke=\"{color}\" stroke-width=\"3\"/>",
                x - 9,
                x + 9
            );
            // In words beside the mark: where it crossed, and the threshold then.
            let (rule, dy) = if alert.detection == LAUNCH_SPIKE {
                ("stdev rule", -4)
            } else {
                ("density rule", 12)
            };
            let (anchor, dx) = if x > (WIDTH as i32) - 320 {
                ("end", -16)
            } else {
                ("start", 16)
            };
            let words = format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\" font-family=\"sans-serif\" font-size=\"12\" fill=\"{color}\">{rule}: fired at {count:.0} of {final_count:.0}, threshold {threshold:.2}</text>",
                x + dx,
                y + dy
            );
            let data = format!(
                " data-window=\"{}\" data-count=\"{final_count}\" data-threshold=\"{threshold}\"",
                super::format_time(window)
            );
            overlay.push_str(&link(
                alert,
                "mark fired",
                &data,
                &format!("{tick}{shape}{words}"),
            ));
        }
        root.present().map_err(plot_error)?;
    }
    Ok(splice(svg, &overlay))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(start: Timestamp, count: u64) -> WindowFacts {
        WindowFacts {
            start,
            count,
            stdev_threshold: None,
            density_threshold: None,
            alerts: Vec::new(),
        }
    }

    #[test]
    fn thinning_keeps_each_columns_busiest_window_and_every_alert() {
        let frame = Frame::around(0, 99 * DAY_MS);
        let mut windows: Vec<WindowFacts> = (0..(MAX_CHART_POINTS as i64 * 3))
            .map(|i| window(i * DAY_MS / 50, 1 + (i % 7) as u64))
            .collect();
        windows[10].alerts.push("alert-1".into());
        windows[10].count = 1;
        let kept = thin(&windows, frame, 100);
        assert!(kept.len() <= 101, "{}", kept.len());
        assert!(kept.iter().any(|w| w.alerts == ["alert-1"]));
        assert!(
            kept.iter()
                .filter(|w| w.alerts.is_empty())
                .all(|w| w.count == 7)
        );
    }

    #[test]
    fn lines_break_where_a_rule_is_not_armed_and_stay_on_the_chart() {
        let frame = Frame::around(0, 9 * DAY_MS);
        let points = [
            (0, Some(3.0)),
            (DAY_MS, Some(4.0)),
            (2 * DAY_MS, None),
            (3 * DAY_MS, Some(500.0)),
        ];
        let segments = line_segments(&points, frame, 1000, 50.0);
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[0], vec![(0.0, 3.0), (1.0, 4.0)]);
        assert_eq!(segments[1], vec![(3.0, 50.0)]);
    }

    #[test]
    fn frames_are_whole_days() {
        let frame = Frame::around(DAY_MS + 5, 3 * DAY_MS - 1);
        assert_eq!(frame, Frame { from: 1.0, to: 3.0 });
        assert_eq!(frame.label(1.0), "Jan 02");
    }
}

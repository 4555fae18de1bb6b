//! The report as one self-contained HTML page: inline CSS and SVG, no script, nothing
//! to fetch (the icon is an empty data URL, fonts are the reader's own sans-serif).

use std::fmt::Write;

use html_escape::encode_quoted_attribute as escape;
use minewatch_guest::catalog::{LAUNCH_SPIKE, LAUNCH_SPIKE_DENSITY};
use serde_json::Value;

use super::charts::{self, Frame, detection_color};
use super::{KeyStatus, MAX_SET_ROWS, PrincipalChart, Report, SetFacts, show_time};

/// Rows of the "other principals" table in the page (the JSON has them all).
const MAX_OTHER_ROWS: usize = 50;

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const STYLE: &str = r#"
:root { --ink:#1d2430; --muted:#5b6472; --line:#e3e6eb; --bg:#f6f7f9; --card:#ffffff;
  --stdev:#e0620d; --density:#7b3fb5; --count:#3a6ea5; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
header { background:#16202e; color:#f3f5f8; padding:28px 40px 22px; }
header h1 { margin:0 0 4px; font-size:26px; font-weight:650; letter-spacing:.2px; }
header p { margin:2px 0; color:#c5ccd6; font-size:14px; }
header code { color:#f3f5f8; }
nav { background:#1f2b3b; padding:8px 40px; }
nav a { color:#dfe5ee; margin-right:22px; text-decoration:none; font-size:14px; }
nav a:hover { text-decoration:underline; }
main { max-width:1240px; margin:0 auto; padding:8px 40px 40px; }
section { margin-top:30px; }
h2 { font-size:20px; margin:0 0 12px; padding-bottom:6px; border-bottom:2px solid var(--line); }
h3 { font-size:16px; margin:0 0 6px; word-break:break-all; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 20px;
  margin-bottom:16px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:12px; margin-bottom:16px; }
.tile { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:12px 16px; }
.tile b { display:block; font-size:24px; font-weight:650; }
.tile span { color:var(--muted); font-size:13px; }
.tile.alerts b { color:#c0392b; }
.cols { display:grid; grid-template-columns:1fr 1fr; gap:16px; }
.cols.wide { grid-template-columns:5fr 2fr; }
table { border-collapse:collapse; width:100%; font-size:14px; }
th, td { text-align:left; padding:5px 10px 5px 0; border-bottom:1px solid var(--line); vertical-align:top; }
td.t { white-space:nowrap; }
th { color:var(--muted); font-weight:600; font-size:13px; }
td.n, th.n { text-align:right; font-variant-numeric:tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size:13px; }
svg { display:block; width:100%; height:auto; }
svg a.mark:hover circle, svg a.mark:hover path { stroke:#000; }
.legend { display:flex; flex-wrap:wrap; gap:6px 18px; font-size:13px; color:var(--muted); margin:4px 0 8px; }
.legend i { display:inline-block; width:14px; height:10px; margin-right:6px; vertical-align:middle; border-radius:2px; }
.legend i.line { height:3px; }
.legend i.dash { height:0; border-top:2px dashed #8c8c8c; }
.legend i.ring { width:12px; height:12px; border-radius:50%; border:2.5px solid var(--density); background:none; }
.legend i.dot { width:10px; height:10px; border-radius:50%; }
.muted { color:var(--muted); }
.slug { white-space:nowrap; }
.note { color:var(--muted); font-size:13px; margin:6px 0; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600;
  color:#fff; vertical-align:middle; }
.sev-critical { background:#8e1b1b; } .sev-high { background:#c0392b; } .sev-medium { background:#d9822b; }
.sev-low { background:#3b7dd8; } .sev-informational { background:#7d8794; }
.status { font-size:12px; padding:1px 7px; border-radius:9px; white-space:nowrap; }
.status.alerted { background:#fde2df; color:#a52a1a; }
.status.learning { background:#e8eef8; color:#2f5592; }
.status.known { background:#eef0f2; color:#5b6472; }
.alert { border-left:5px solid #999; }
.alert:target { outline:3px solid #f0a35e; }
.alert header { background:none; color:inherit; padding:0; }
.alert h3 { display:flex; gap:10px; align-items:center; flex-wrap:wrap; word-break:normal; }
.alert .msg { margin:6px 0 10px; }
.alert dl { display:grid; grid-template-columns:max-content 1fr; gap:2px 16px; margin:0; font-size:13px; }
.alert dt { color:var(--muted); }
.alert dd { margin:0; word-break:break-all; }
.kv { display:flex; flex-wrap:wrap; gap:4px 22px; font-size:14px; margin:2px 0 6px; }
.kv span { color:var(--muted); }
footer { max-width:1240px; margin:0 auto; padding:0 40px 40px; color:var(--muted); font-size:13px; }
@media (max-width: 900px) { .cols, .cols.wide { grid-template-columns:1fr; } main, header, nav { padding-left:16px; padding-right:16px; } }
"#;

/// Renders the page.
pub fn render(report: &Report) -> String {
    let mut page = String::with_capacity(256 * 1024);
    let title = "minewatch backtest report";
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <link rel=\"icon\" href=\"data:,\">\n<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
    );
    header(&mut page, report);
    page.push_str("<main>\n");
    summary(&mut page, report);
    let frame = report
        .span
        .map(|s| Frame::around(s.first, s.last))
        .unwrap_or(Frame { from: 0.0, to: 1.0 });
    timeline(&mut page, report, frame);
    rates(&mut page, report, frame);
    sets(&mut page, report);
    alerts(&mut page, report);
    page.push_str("</main>\n");
    footer(&mut page, report);
    page.push_str("</body>\n</html>\n");
    page
}

fn header(page: &mut String, report: &Report) {
    let span = match report.span {
        Some(s) => format!(
            "{} to {} ({:.1} days of event time)",
            show_time(s.first),
            show_time(s.last),
            (s.last - s.first) as f64 / 86_400_000.0
        ),
        None => "no subscribed records with an event time".into(),
    };
    let inputs: Vec<String> = report
        .inputs
        .iter()
        .map(|i| format!("<code>{}</code>", escape(i)))
        .collect();
    let _ = write!(
        page,
        "<header>\n<h1>minewatch backtest</h1>\n<p>{} over {}</p>\n<p>{}; tenant <code>{}</code>; {} alerts</p>\n</header>\n\
         <nav><a href=\"#summary\">Summary</a><a href=\"#timeline\">Timeline</a><a href=\"#rates\">Launch rates</a>\
         <a href=\"#sets\">First-seen sets</a><a href=\"#alerts\">Alerts</a></nav>\n",
        escape(&report.detector),
        inputs.join(", "),
        escape(&span),
        escape(&report.tenant),
        thousands(report.alerts.len() as u64),
    );
}

fn tile(page: &mut String, class: &str, value: &str, label: &str) {
    let _ = write!(
        page,
        "<div class=\"tile {class}\"><b>{value}</b><span>{label}</span></div>"
    );
}

fn summary(page: &mut String, report: &Report) {
    let s = &report.summary;
    page.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"tiles\">");
    tile(page, "", &thousands(s.records), "records read");
    tile(page, "", &thousands(s.processed), "for the detector");
    tile(page, "", &thousands(s.failed_calls), "failed calls");
    tile(page, "", &thousands(s.unsubscribed), "not subscribed");
    tile(page, "", &thousands(s.total_skipped()), "skipped");
    tile(page, "alerts", &thousands(s.total_alerts()), "alerts");
    if let Some(span) = report.span {
        tile(
            page,
            "",
            &format!("{:.1}", (span.last - span.first) as f64 / 86_400_000.0),
            "days of event time",
        );
    }
    page.push_str("</div>\n<div class=\"cols wide\">\n<div class=\"card\"><h3>Alerts by detection</h3><table>\
                   <tr><th>detection</th><th>severity</th><th class=\"n\">alerts</th><th>first</th></tr>\n");
    for d in &report.detections {
        let count = s.alerts.get(&d.slug).copied().unwrap_or(0);
        let first = report
            .alerts
            .iter()
            .find(|a| a.detection == d.slug)
            .map(|a| format!("<a href=\"#{}\">{}</a>", a.id, show_time(a.time)))
            .unwrap_or_else(|| "<span class=\"muted\">-</span>".into());
        let severity = format!("{:?}", d.severity).to_lowercase();
        let _ = writeln!(
            page,
            "<tr><td><i style=\"display:inline-block;width:10px;height:10px;border-radius:50%;background:{}\"></i> \
             {} <span class=\"muted mono slug\">{}</span></td><td><span class=\"badge sev-{severity}\">{severity}</span></td>\
             <td class=\"n\">{}</td><td class=\"t\">{first}</td></tr>",
            detection_color(&d.slug),
            escape(&d.name),
            escape(&d.slug),
            thousands(count),
        );
    }
    for (slug, count) in &s.alerts {
        if report.detection(slug).is_none() {
            let _ = writeln!(
                page,
                "<tr><td class=\"mono\">{}</td><td></td><td class=\"n\">{}</td><td></td></tr>",
                escape(slug),
                thousands(*count)
            );
        }
    }
    page.push_str(
        "</table></div>\n<div class=\"card\"><h3>Records skipped, by reason</h3><table>\
                   <tr><th>reason</th><th class=\"n\">records</th></tr>\n",
    );
    if s.skipped.is_empty() {
        page.push_str("<tr><td class=\"muted\">none</td><td></td></tr>\n");
    }
    for (reason, n) in &s.skipped {
        let _ = writeln!(
            page,
            "<tr><td class=\"mono\">{}</td><td class=\"n\">{}</td></tr>",
            escape(reason),
            thousands(*n)
        );
    }
    if s.unreadable_inputs > 0 {
        let _ = writeln!(
            page,
            "<tr><td>inputs that could not be read</td><td class=\"n\">{}</td></tr>",
            thousands(s.unreadable_inputs)
        );
    }
    let _ = write!(
        page,
        "</table><p class=\"note\">Failed calls (an <code>errorCode</code>, DryRun included) reach the detector \
         but neither alert nor learn. Records the detector does not subscribe to are dropped unparsed.</p>\
         </div>\n</div>\n</section>\n"
    );
}

fn chart_or_error(result: anyhow::Result<String>) -> String {
    result.unwrap_or_else(|error| {
        tracing::warn!(error = format!("{error:#}"), "Chart not drawn.");
        format!(
            "<p class=\"note\">Chart not drawn: {}</p>",
            escape(&format!("{error:#}"))
        )
    })
}

fn timeline(page: &mut String, report: &Report, frame: Frame) {
    page.push_str(
        "<section id=\"timeline\">\n<h2>Alerts over event time</h2>\n<div class=\"card\">\n",
    );
    page.push_str("<div class=\"legend\">");
    for d in &report.detections {
        let _ = write!(
            page,
            "<span><i class=\"dot\" style=\"background:{}\"></i>{}</span>",
            detection_color(&d.slug),
            escape(&d.slug)
        );
    }
    page.push_str("</div>\n");
    page.push_str(&chart_or_error(charts::timeline(report, frame)));
    page.push_str("<p class=\"note\">Each dot is an alert at its event time; it links to the alert below.</p>\n</div>\n</section>\n");
}

fn rate_legend(page: &mut String, report: &Report) {
    let rates = &report.rates;
    let floor = rates.floors.iter().map(|(_, f)| *f).max().unwrap_or(0);
    let _ = writeln!(
        page,
        "<div class=\"legend\"><span><i class=\"dot\" style=\"background:var(--count)\"></i>a {} min window with launches \
         ({})</span><span><i class=\"line\" style=\"background:var(--stdev)\"></i>ec2-launch-spike threshold \
         (mean + k&#183;stdev)</span><span><i class=\"line\" style=\"background:var(--density)\"></i>\
         ec2-launch-spike-density threshold (tail probability)</span><span><i class=\"dash\"></i>min_count {floor}: \
         fewer never alert</span><span><i class=\"dot\" style=\"background:var(--stdev)\"></i>window that fired \
         ec2-launch-spike</span><span><i class=\"ring\"></i>window that fired the density rule</span>\
         <span><i style=\"background:#2a7ab9;transform:rotate(45deg);width:9px;height:9px\"></i>unseen-value alert \
         of this principal</span></div>",
        rates.window_minutes,
        escape(&rates.unit),
    );
}

fn rates(page: &mut String, report: &Report, frame: Frame) {
    let rates = &report.rates;
    let _ = write!(
        page,
        "<section id=\"rates\">\n<h2>Launch rates</h2>\n<div class=\"card\"><p>{} per principal in {} minute \
         windows, for {} principals with launches; charts for the {} with alerts or among the {} with the most \
         launches.</p><p class=\"note\">{}</p><p class=\"note\">{}</p>",
        escape(&rates.unit),
        rates.window_minutes,
        thousands(rates.principals_with_launches as u64),
        rates.charts.len(),
        report.limits.top_principals,
        escape(&rates.rules),
        escape(&rates.method),
    );
    rate_legend(page, report);
    if rates.per_principal == (false, false) {
        page.push_str(
            "<p class=\"note\">Both rules compare a window with every principal's windows, so their \
             thresholds are the same line on every chart.</p>",
        );
    }
    page.push_str("</div>\n");
    for chart in &rates.charts {
        principal(page, report, chart, frame);
    }
    if !rates.others.is_empty() {
        let _ = writeln!(
            page,
            "<div class=\"card\"><h3>Principals without a chart</h3><p class=\"note\">{} principals, fewest \
             launches last; the first {} are listed (the JSON report lists all).</p><table><tr><th>principal</th>\
             <th class=\"n\">launches</th><th class=\"n\">windows</th><th class=\"n\">busiest window</th></tr>",
            thousands(rates.others.len() as u64),
            MAX_OTHER_ROWS
        );
        for other in rates.others.iter().take(MAX_OTHER_ROWS) {
            let _ = writeln!(
                page,
                "<tr><td class=\"mono\">{}{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&other.scope),
                escape(&other.principal),
                thousands(other.launches),
                thousands(other.windows as u64),
                thousands(other.busiest)
            );
        }
        page.push_str("</table></div>\n");
    }
    page.push_str("</section>\n");
}

fn principal(page: &mut String, report: &Report, chart: &PrincipalChart, frame: Frame) {
    let fired: Vec<String> = chart
        .alerts
        .iter()
        .filter_map(|id| report.alerts.iter().find(|a| &a.id == id))
        .map(|a| {
            format!(
                "<a href=\"#{}\">{} at {}</a>",
                a.id,
                escape(&a.detection),
                show_time(a.time)
            )
        })
        .collect();
    let _ = write!(
        page,
        "<article class=\"card\" id=\"{}\" data-principal=\"{}\"><h3 class=\"mono\">{}{}</h3>\n<div class=\"kv\">\
         <div><span>launches</span> {}</div><div><span>windows with launches</span> {}</div>\
         <div><span>busiest window</span> {}</div><div><span>alerts</span> {}</div></div>\n",
        chart.id,
        escape(&chart.principal),
        escape(&chart.scope),
        escape(&chart.principal),
        thousands(chart.launches),
        thousands(chart.windows_with_launches as u64),
        thousands(chart.busiest),
        if fired.is_empty() {
            "none".to_string()
        } else {
            fired.join(", ")
        },
    );
    page.push_str(&chart_or_error(charts::principal(report, chart, frame)));
    if chart.windows.len() > super::MAX_CHART_POINTS {
        let _ = write!(
            page,
            "<p class=\"note\">{} windows: drawn as the busiest window of each pixel column, plus every window \
             that fired.</p>",
            thousands(chart.windows.len() as u64)
        );
    }
    page.push_str("</article>\n");
}

fn sets(page: &mut String, report: &Report) {
    page.push_str("<section id=\"sets\">\n<h2>First-seen sets</h2>\n");
    if report.sets.is_empty() {
        page.push_str("<div class=\"card muted\">No first-seen set was written.</div>\n");
    }
    for set in &report.sets {
        set_card(page, report, set);
    }
    page.push_str("</section>\n");
}

fn set_card(page: &mut String, report: &Report, set: &SetFacts) {
    let title = set
        .detection
        .as_deref()
        .and_then(|slug| report.detection(slug))
        .map(|d| d.name.clone())
        .unwrap_or_else(|| set.name.clone());
    let learning = match (set.learning_start, set.learned_at) {
        (Some(start), Some(at)) if set.still_learning => format!(
            "learning since {}; <b>still learning</b> until {} ({} days): new keys do not alert yet",
            show_time(start),
            show_time(at),
            set.learning_days.unwrap_or(0)
        ),
        (Some(start), Some(at)) => format!(
            "learning since {}; learned on {} ({} days)",
            show_time(start),
            show_time(at),
            set.learning_days.unwrap_or(0)
        ),
        (Some(start), None) => format!("learning since {}", show_time(start)),
        _ => String::new(),
    };
    let this_run = set
        .this_run
        .as_ref()
        .map(|r| {
            format!(
                "this run: {} sightings, {} new keys",
                thousands(r.sightings),
                thousands(r.new_keys)
            )
        })
        .unwrap_or_else(|| "not touched by this run".into());
    let counts: Vec<String> = set
        .by_status
        .iter()
        .map(|(status, n)| {
            format!(
                "<span class=\"status {}\">{} {}</span>",
                status_class(*status),
                thousands(*n as u64),
                status.label()
            )
        })
        .collect();
    let _ = write!(
        page,
        "<article class=\"card\" id=\"set-{}\"><h3>{} <span class=\"muted mono\">{}</span></h3>\n\
         <p class=\"note\">{} keys; {learning}; {this_run}</p><p>{}</p>\n<table><tr><th>key</th><th>first seen</th>\
         <th>last seen</th><th class=\"n\">sightings</th><th>status</th></tr>\n",
        escape(&set.name.replace('/', "-")),
        escape(&title),
        escape(&set.name),
        thousands(set.keys_total as u64),
        counts.join(" "),
    );
    for key in set.keys.iter().take(MAX_SET_ROWS) {
        let links: Vec<String> = key
            .alerts
            .iter()
            .map(|id| format!(" <a href=\"#{id}\">{id}</a>"))
            .collect();
        let _ = writeln!(
            page,
            "<tr><td class=\"mono\">{}</td><td class=\"t\">{}</td><td class=\"t\">{}</td><td class=\"n\">{}</td>\
             <td class=\"t\"><span class=\"status {}\">{}</span>{}</td></tr>",
            escape(&key.key),
            show_time(key.first_seen),
            show_time(key.last_seen),
            thousands(key.count),
            status_class(key.status),
            key.status.label(),
            links.join(""),
        );
    }
    page.push_str("</table>");
    if set.keys.len() > MAX_SET_ROWS {
        let _ = write!(
            page,
            "<p class=\"note\">{} of {} keys shown (alerted first, then the newest); the JSON report lists all.</p>",
            MAX_SET_ROWS,
            thousands(set.keys.len() as u64)
        );
    }
    page.push_str("</article>\n");
}

fn status_class(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::Alerted => "alerted",
        KeyStatus::Learning => "learning",
        KeyStatus::Known => "known",
    }
}

/// A JSON value as text for the page.
fn plain(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(plain).collect::<Vec<_>>().join(", "),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => {
                if f != 0.0 && f.abs() < 0.01 {
                    format!("{f:.3e}")
                } else {
                    format!("{f:.2}")
                }
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

fn definitions(page: &mut String, value: &Value) {
    page.push_str("<dl>");
    if let Value::Object(map) = value {
        for (key, value) in map {
            let text = match value {
                Value::Object(_) => value
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| format!("{k} {}", plain(v)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default(),
                other => plain(other),
            };
            let _ = write!(page, "<dt>{}</dt><dd>{}</dd>", escape(key), escape(&text));
        }
    }
    page.push_str("</dl>");
}

fn alerts(page: &mut String, report: &Report) {
    page.push_str("<section id=\"alerts\">\n<h2>Alerts</h2>\n");
    if report.alerts.is_empty() {
        page.push_str("<div class=\"card muted\">No alert.</div>\n");
    }
    for alert in &report.alerts {
        let a = &alert.alert;
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let severity = text(&a["severity"]);
        let chart = alert
            .chart
            .as_ref()
            .map(|id| format!(" &#183; <a href=\"#{id}\">launch chart of the principal</a>"))
            .unwrap_or_default();
        let rate = alert.detection == LAUNCH_SPIKE || alert.detection == LAUNCH_SPIKE_DENSITY;
        let _ = write!(
            page,
            "<article class=\"card alert\" id=\"{}\" style=\"border-left-color:{}\">\n<h3>{} \
             <span class=\"badge sev-{}\">{}</span><span class=\"muted mono\">{}</span></h3>\n\
             <div class=\"kv\"><div><span>time</span> {}</div><div><span>{}</span> <code>{}</code></div>\
             <div><span>risk</span> {}</div><div><span>ATT&amp;CK</span> {}</div></div>\n<p class=\"msg\">{}</p>\
             <p class=\"note\"><a href=\"#timeline\">timeline</a>{chart}</p>\n<div class=\"cols\"><div><h4>Evidence</h4>",
            alert.id,
            detection_color(&alert.detection),
            escape(&text(&a["name"])),
            escape(&severity),
            escape(&severity),
            escape(&alert.detection),
            show_time(alert.time),
            if rate { "principal" } else { "new value" },
            escape(&text(&a["key"])),
            escape(&plain(&a["risk_score"])),
            escape(&plain(&a["mitre_attack"])),
            escape(&text(&a["message"])),
        );
        definitions(page, &a["evidence"]);
        page.push_str("</div><div><h4>Event</h4>");
        definitions(page, &a["event"]);
        page.push_str("</div></div>\n</article>\n");
    }
    page.push_str("</section>\n");
}

fn footer(page: &mut String, report: &Report) {
    let _ = writeln!(
        page,
        "<footer><p>Written by minewatch {} <code>report</code>. Limits: launch charts for every principal with an \
         alert plus the {} with the most launches; at most {} points per chart; {} keys per set here. \
         <code>--json</code> writes the same facts as data, with every window of the charted principals and every key.</p></footer>",
        escape(&report.minewatch_version),
        report.limits.top_principals,
        thousands(report.limits.max_chart_points as u64),
        report.limits.max_set_rows,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}

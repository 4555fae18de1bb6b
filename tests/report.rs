//! `minewatch report` over the generated scenario: the page holds every alert, a chart
//! per incident principal with the spike plotted above its threshold, the first-seen
//! sets; the JSON holds the same facts; the page renders in a real headless Chromium.
//! Also the wording of `baseline build` (what it learned, what would have fired) and of
//! the alert messages, and that runs off a terminal draw no progress bar.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use scraper::{ElementRef, Html, Selector};
use serde_json::Value;

use crate::util::{Dir, alerts, command, generate_scenario, setup_in};

fn select(selector: &str) -> Selector {
    Selector::parse(selector).unwrap()
}

fn attr<'a>(element: &ElementRef<'a>, name: &str) -> &'a str {
    element
        .value()
        .attr(name)
        .unwrap_or_else(|| panic!("{name} missing on {}", element.html()))
}

fn number(element: &ElementRef<'_>, name: &str) -> f64 {
    attr(element, name).parse().unwrap()
}

/// The scenario, the alerts `run` gives on it, and the report's HTML and JSON: made
/// once for the tests of this file.
struct Fixture {
    dir: Dir,
    alerts: Vec<Value>,
    html: String,
    json: Value,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        // Under the target directory, the previous run's fixture removed first.
        let parent = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
        for old in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            if old
                .file_name()
                .to_string_lossy()
                .starts_with("minewatch-test-")
            {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let (dir, _) = setup_in(&parent);
        generate_scenario(&dir, 7, "trail.ndjson");
        let out = command(&dir)
            .args(["run", "--memory", "--input", "trail.ndjson"])
            .ok(&dir);
        let alerts = alerts(&out.stdout);
        let out = command(&dir)
            .args(["report", "--memory", "--input", "trail.ndjson"])
            .args(["--output", "report.html"])
            .ok(&dir);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("wrote the report to report.html"),
            "{stderr}"
        );
        command(&dir)
            .args(["report", "--memory", "--json", "--input", "trail.ndjson"])
            .args(["--output", "report.json"])
            .ok(&dir);
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        let json =
            serde_json::from_slice(&std::fs::read(dir.join("report.json")).unwrap()).unwrap();
        Fixture {
            dir,
            alerts,
            html,
            json,
        }
    })
}

/// `(detection, key)` of alerts as a set.
fn keys(alerts: &[Value]) -> BTreeSet<(String, String)> {
    alerts
        .iter()
        .map(|a| {
            (
                a["detection"].as_str().unwrap().to_string(),
                a["key"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_page_has_every_alert_of_run_with_an_anchor_linked_from_the_timeline() {
    let f = fixture();
    assert!(f.alerts.len() >= 8, "the scenario injects incidents");
    let page = Html::parse_document(&f.html);
    let cards: Vec<ElementRef> = page.select(&select("article.alert")).collect();
    assert_eq!(cards.len(), f.alerts.len());
    let mut shown = BTreeSet::new();
    for card in &cards {
        let detection = card
            .select(&select("h3 span.mono"))
            .next()
            .unwrap()
            .text()
            .collect::<String>();
        let key = card
            .select(&select(".kv code"))
            .next()
            .unwrap()
            .text()
            .collect();
        shown.insert((detection, key));
    }
    assert_eq!(shown, keys(&f.alerts));
    let ids: BTreeSet<&str> = cards.iter().map(|c| attr(c, "id")).collect();
    let marks: BTreeSet<&str> = page
        .select(&select("#timeline svg a.timeline-mark"))
        .map(|a| attr(&a, "href").trim_start_matches('#'))
        .collect();
    assert_eq!(
        marks, ids,
        "every alert is a dot on the timeline, linking to it"
    );
    // Every in-page link lands on something.
    let anchors: BTreeSet<&str> = page
        .select(&select("[id]"))
        .map(|e| attr(&e, "id"))
        .collect();
    for link in page.select(&select("a[href]")) {
        let href = attr(&link, "href");
        let target = href
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("a link leaves the page: {href}"));
        assert!(anchors.contains(target), "dangling link {href}");
    }
}

#[test]
fn the_page_is_self_contained() {
    let f = fixture();
    let page = Html::parse_document(&f.html);
    assert_eq!(page.select(&select("script")).count(), 0);
    for element in page.select(&select("[src], link[href], image, use")) {
        let target = element
            .value()
            .attr("src")
            .or(element.value().attr("href"))
            .unwrap_or_default();
        assert!(
            target.starts_with("data:") || target.starts_with('#'),
            "fetches {target}"
        );
    }
    assert!(!f.html.contains("url(http") && !f.html.contains("@import"));
    assert!(f.html.len() < 2_000_000, "{} bytes", f.html.len());
}

#[test]
fn each_incident_principal_has_a_chart_with_its_alerts_and_the_spike_above_its_threshold() {
    let f = fixture();
    let page = Html::parse_document(&f.html);
    let principals: BTreeSet<&str> = f
        .alerts
        .iter()
        .map(|a| a["event"]["principal"].as_str().unwrap())
        .collect();
    assert!(principals.len() >= 3, "{principals:?}");
    for principal in &principals {
        let selector = select(&format!("#rates article[data-principal=\"{principal}\"]"));
        let chart = page
            .select(&selector)
            .next()
            .unwrap_or_else(|| panic!("no chart for {principal}"));
        assert_eq!(chart.select(&select("svg")).count(), 1, "{principal}");
        let linked: BTreeSet<&str> = chart
            .select(&select("svg a.mark"))
            .map(|a| attr(&a, "data-alert"))
            .collect();
        let expected: BTreeSet<String> = f
            .alerts
            .iter()
            .enumerate()
            .filter(|(_, a)| a["event"]["principal"] == *principal)
            .map(|(i, _)| format!("alert-{}", i + 1))
            .collect();
        let linked: BTreeSet<String> = linked.into_iter().map(String::from).collect();
        assert_eq!(
            linked, expected,
            "the chart of {principal} marks its alerts"
        );
    }
    let spikes = ["ec2-launch-spike", "ec2-launch-spike-density"];
    let fired: Vec<ElementRef> = page.select(&select("#rates svg a.fired")).collect();
    let rate_alerts = f
        .alerts
        .iter()
        .filter(|a| spikes.contains(&a["detection"].as_str().unwrap()))
        .count();
    assert_eq!(fired.len(), rate_alerts);
    assert!(rate_alerts >= 2, "both rate rules fire on the burst");
    for mark in fired {
        let count = number(&mark, "data-count");
        let threshold = number(&mark, "data-threshold");
        assert!(count > threshold, "{}", mark.html());
        // Plotted: the window's point is above (a smaller y than) its threshold's tick.
        let point = mark.select(&select("circle.fired-window")).next().unwrap();
        let tick = mark.select(&select("line.threshold-tick")).next().unwrap();
        assert!(
            number(&point, "cy") + 10.0 < number(&tick, "y1"),
            "{}",
            mark.html()
        );
    }
    // The threshold lines themselves are drawn (plotters' polylines in the rules' colours).
    let chart = page
        .select(&select("#rates article svg"))
        .next()
        .unwrap()
        .html();
    assert!(chart.contains("polyline"), "threshold lines are drawn");
}

#[test]
fn the_json_has_the_same_facts_and_recomputed_thresholds_agree_with_the_alerts() {
    let f = fixture();
    let json = &f.json;
    let alerts: Vec<Value> = json["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["alert"].clone())
        .collect();
    assert_eq!(keys(&alerts), keys(&f.alerts));
    assert_eq!(
        json["summary"]["alerts"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>(),
        f.alerts.len() as u64
    );
    let first = json["span"]["first"].as_str().unwrap();
    assert!(first.starts_with("20"), "{first}");
    // The burst's window: its count is above both recomputed thresholds, and the
    // thresholds agree with those in the alerts (judged a few launches earlier).
    let charts = json["rates"]["charts"].as_array().unwrap();
    let mut checked = 0;
    for alert in json["alerts"].as_array().unwrap() {
        let detection = alert["alert"]["detection"].as_str().unwrap();
        let field = match detection {
            "ec2-launch-spike" => "stdev_threshold",
            "ec2-launch-spike-density" => "density_threshold",
            _ => continue,
        };
        let chart = charts
            .iter()
            .find(|c| c["id"] == alert["chart"])
            .expect("rate alerts link to a chart");
        let window = chart["windows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| {
                w["alerts"]
                    .as_array()
                    .is_some_and(|a| a.contains(&alert["id"]))
            })
            .expect("the alert's window is in its chart");
        let count = window["count"].as_f64().unwrap();
        let recomputed = window[field].as_f64().unwrap();
        let alerted = alert["alert"]["evidence"]["threshold"].as_f64().unwrap();
        assert!(count > recomputed, "{window}");
        assert!(
            (recomputed - alerted).abs() <= 0.25 * alerted.max(1.0),
            "recomputed {recomputed} vs alert {alerted}"
        );
        checked += 1;
    }
    assert!(checked >= 2);
    // First-seen sets: the attacker's region is a key that alerted, and links to it.
    let sets = json["sets"].as_array().unwrap();
    let regions = sets
        .iter()
        .find(|s| s["name"] == "ec2-unseen-region")
        .unwrap();
    assert_eq!(regions["still_learning"], false);
    let region_alert = f
        .alerts
        .iter()
        .position(|a| a["detection"] == "ec2-unseen-region")
        .unwrap();
    let key = f.alerts[region_alert]["key"].as_str().unwrap();
    let entry = regions["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key"] == key)
        .unwrap();
    assert_eq!(entry["status"], "alerted");
    assert_eq!(entry["alerts"][0], format!("alert-{}", region_alert + 1));
    assert!(
        regions["by_status"]["learning"].as_u64().unwrap() >= 1,
        "the regions used while learning are marked so: {}",
        regions["by_status"]
    );
}

#[test]
fn alert_messages_read_naturally_per_detection() {
    let f = fixture();
    for alert in &f.alerts {
        let message = alert["message"].as_str().unwrap();
        let key = alert["key"].as_str().unwrap();
        let principal = alert["event"]["principal"].as_str().unwrap();
        assert_eq!(
            message.matches(principal).count(),
            1,
            "the principal is named once: {message}"
        );
        let expected = match alert["detection"].as_str().unwrap() {
            "ec2-unseen-region" => format!(" in region {key}, never used before ("),
            "ec2-unseen-ami" => format!(" from AMI {key}, an image never used before ("),
            "ec2-unseen-instance-type" => {
                format!(" of type {key}, an instance type never used before (")
            }
            "ec2-unseen-user" => " for the first time (".to_string(),
            _ => "-minute window from ".to_string(),
        };
        assert!(message.contains(&expected), "{expected:?} in {message}");
        assert!(!message.contains(" 1 known regions"), "{message}");
    }
}

#[test]
fn baseline_build_says_what_it_learned_and_what_would_have_fired() {
    let f = fixture();
    let out = command(&f.dir)
        .args([
            "baseline",
            "build",
            "--state",
            "state",
            "--input",
            "trail.ndjson",
        ])
        .ok(&f.dir);
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("learned from "), "{stderr}");
    assert!(stderr.contains("  learned ec2-unseen-region: "), "{stderr}");
    assert!(stderr.contains("  learned launch rates: "), "{stderr}");
    assert!(
        stderr.contains("  would have fired ec2-launch-spike: 1 (learning only: not sent)"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(" alerts"),
        "no 'alerts' after a learn-only run: {stderr}"
    );
    // Not a terminal: no progress bar, so no carriage returns or cursor movement.
    assert!(
        !stderr.contains('\r') && !stderr.contains("\u{1b}["),
        "{stderr:?}"
    );
}

/// A Chromium (Debian's `chromium`), or none; under `CI=true` a missing one fails.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .flat_map(|name| {
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .map(move |dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .find(|path| path.is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "chromium is not installed (.ci/run installs Debian's chromium)"
        );
        eprintln!("skipping: no chromium on PATH (apt-get install chromium)");
    }
    found
}

/// Runs headless Chromium on `page` with `args`, in a fresh profile; returns stdout and stderr.
fn headless(chromium: &Path, page: &Path, args: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("chromium starts");
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed: {stderr}");
    (stdout, stderr)
}

/// Console messages Chromium logged (`CONSOLE` lines with `--enable-logging=stderr`).
fn console(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains("CONSOLE")).collect()
}

#[test]
fn the_page_renders_in_headless_chromium_without_console_errors_and_leaves_a_screenshot() {
    let Some(chromium) = chromium() else { return };
    let f = fixture();
    // The check can fail: a page that logs an error is caught.
    let bad = f.dir.write(
        "bad.html",
        "<!doctype html><title>x</title><script>console.error('broken report')</script>",
    );
    let (_, stderr) = headless(&chromium, &bad, &["--dump-dom"]);
    assert!(
        console(&stderr).iter().any(|l| l.contains("broken report")),
        "console errors are visible in Chromium's log: {stderr}"
    );

    let page = f.dir.join("report.html");
    let (dom, stderr) = headless(&chromium, &page, &["--dump-dom"]);
    assert_eq!(console(&stderr), Vec::<&str>::new(), "{stderr}");
    let rendered = Html::parse_document(&dom);
    assert_eq!(
        rendered.select(&select("article.alert")).count(),
        f.alerts.len()
    );
    assert!(rendered.select(&select("#rates svg circle")).count() > 10);

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    let (_, stderr) = headless(
        &chromium,
        &page,
        &[
            "--window-size=1280,2600",
            &format!("--screenshot={}", png.display()),
        ],
    );
    assert_eq!(console(&stderr), Vec::<&str>::new(), "{stderr}");
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    // 1280 x 2600 pixels in the header; a blank page would compress to a few KB.
    assert_eq!(&bytes[16..24], &[0, 0, 5, 0, 0, 0, 10, 40]);
    assert!(bytes.len() > 50_000, "{} bytes", bytes.len());
    std::fs::copy(&page, shots.join("report.html")).unwrap();
    eprintln!("screenshot of the report: {}", png.display());
}

#[test]
fn a_run_over_files_shows_a_progress_bar_on_a_terminal() {
    let f = fixture();
    // util-linux `script` gives the run a pseudo-terminal and logs what it drew.
    let run = format!(
        "{} run --memory --input trail.ndjson > /dev/null",
        env!("CARGO_BIN_EXE_minewatch")
    );
    let status = Command::new("script")
        .args(["-qec", &run, "pty.log"])
        .current_dir(f.dir.path())
        .env_remove("MINEWATCH_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .expect("script (util-linux) runs");
    assert!(status.success());
    let drawn = std::fs::read_to_string(f.dir.join("pty.log")).unwrap();
    let size = std::fs::metadata(f.dir.join("trail.ndjson")).unwrap().len();
    let total = format!("/{:.2} MiB", size as f64 / (1024.0 * 1024.0));
    assert!(
        drawn.contains(&total),
        "the bar shows the total size {total}: {drawn}"
    );
    assert!(
        drawn.contains(" records") && drawn.contains("ETA"),
        "{drawn}"
    );
    assert!(
        drawn.contains("alerts ec2-launch-spike: 1"),
        "the summary follows: {drawn}"
    );
}

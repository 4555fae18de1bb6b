//! Writing a scenario to disk in the layouts the detector reads: NDJSON,
//! CloudTrail's S3 archive of gzipped `{"Records":[...]}` files, EventBridge
//! envelopes, CloudWatch Logs subscription envelopes as Firehose writes them to S3,
//! `aws cloudtrail lookup-events` pages, and NDJSON with interleaved garbage lines.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::write::GzEncoder;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use super::Scenario;
use super::incidents::ATTACKER_IP;
use super::records::{ALNUM, Rng, datetime, hash, uuid};
use chrono::{Datelike, Timelike};

/// How [`write`] lays a scenario out on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One file, one CloudTrail record per line.
    Ndjson,
    /// A directory in CloudTrail's S3 layout: `AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json.gz`.
    S3Archive,
    /// One file, one EventBridge "AWS API Call via CloudTrail" envelope per line.
    EventBridge,
    /// Like [`Layout::Ndjson`] with garbage lines interleaved that must not change any alert.
    NdjsonWithGarbage,
    /// One file as Firehose writes a CloudWatch Logs subscription to S3: one gzip member
    /// per `DATA_MESSAGE` envelope (up to [`LOG_EVENTS`] events of one log stream),
    /// back to back with no separator, and a `CONTROL_MESSAGE` now and then.
    CloudWatchLogs,
    /// One file of `aws cloudtrail lookup-events` pages (pretty JSON, [`PAGE`] events
    /// each, newest first as the API returns them, concatenated as a paginating script
    /// appends them).
    LookupEvents,
}

/// Log events per CloudWatch Logs envelope.
const LOG_EVENTS: usize = 50;
/// Events per `lookup-events` page (the API's largest page).
const PAGE: usize = 50;

/// What [`write`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteSummary {
    /// Files written.
    pub files: usize,
    /// CloudTrail records written (every event of the scenario, duplicates included).
    pub records: usize,
    /// Garbage lines written (only [`Layout::NdjsonWithGarbage`]).
    pub garbage_lines: usize,
}

/// Length of one S3 delivery slot in seconds.
const SLOT: i64 = 300;
/// Length of the string field of the one huge garbage line.
pub(crate) const HUGE_LEN: usize = 2_000_000;

/// Writes `scenario` to `path` (a file, or a directory for [`Layout::S3Archive`]).
pub fn write(scenario: &Scenario, layout: Layout, path: &Path) -> Result<WriteSummary> {
    let aws_only = !matches!(layout, Layout::Ndjson | Layout::NdjsonWithGarbage);
    if aws_only && scenario.events.iter().any(|e| e.get("eventID").is_none()) {
        anyhow::bail!(
            "layout {layout:?} wraps CloudTrail records only; Google Cloud and Azure records go in the ndjson layouts"
        );
    }
    let mut rng = layout_rng(scenario);
    match layout {
        Layout::Ndjson => write_lines(path, scenario.events.iter().map(line)),
        Layout::EventBridge => {
            let lines = scenario.events.iter().map(|e| envelope(e, &mut rng));
            write_lines(path, lines)
        }
        Layout::NdjsonWithGarbage => write_garbage(scenario, path, &mut rng),
        Layout::S3Archive => write_s3(scenario, path, &mut rng),
        Layout::CloudWatchLogs => write_cloudwatch(&scenario.events, path, &mut rng),
        Layout::LookupEvents => write_lookup_events(&scenario.events, path),
    }
}

/// The random names of a layout are seeded from the scenario itself, so output is reproducible.
fn layout_rng(scenario: &Scenario) -> Rng {
    let first = scenario
        .events
        .first()
        .and_then(|e| e.get("eventID"))
        .and_then(Value::as_str)
        .unwrap_or("");
    Rng::seed_from_u64(hash(&[first, &scenario.events.len().to_string()]))
}

fn line(v: &Value) -> String {
    serde_json::to_string(v).expect("a JSON value always serializes")
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    Ok(BufWriter::with_capacity(1 << 20, f))
}

fn write_lines(path: &Path, lines: impl Iterator<Item = String>) -> Result<WriteSummary> {
    let mut out = create(path)?;
    let mut records = 0;
    for l in lines {
        out.write_all(l.as_bytes())?;
        out.write_all(b"\n")?;
        records += 1;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(WriteSummary {
        files: 1,
        records,
        garbage_lines: 0,
    })
}

fn str_field<'a>(v: &'a Value, key: &str) -> Result<&'a str> {
    match v.get(key).and_then(Value::as_str) {
        Some(s) => Ok(s),
        None => bail!("record without a string {key}: cannot place it"),
    }
}

fn event_time(v: &Value) -> Result<i64> {
    let s = str_field(v, "eventTime")?;
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|d| d.timestamp())
        .with_context(|| format!("bad eventTime {s:?}"))
}

fn envelope(record: &Value, rng: &mut Rng) -> String {
    let source = record
        .get("eventSource")
        .and_then(Value::as_str)
        .unwrap_or("");
    let service = source.split('.').next().unwrap_or(source);
    line(&json!({
        "version": "0",
        "id": uuid(rng),
        "detail-type": "AWS API Call via CloudTrail",
        "source": format!("aws.{service}"),
        "account": record.get("recipientAccountId").cloned().unwrap_or(Value::Null),
        "time": record.get("eventTime").cloned().unwrap_or(Value::Null),
        "region": record.get("awsRegion").cloned().unwrap_or(Value::Null),
        "resources": [],
        "detail": record,
    }))
}

/// Groups records by account, region and 5-minute slot; a redelivered record goes in the next slot.
fn write_s3(scenario: &Scenario, dir: &Path, rng: &mut Rng) -> Result<WriteSummary> {
    let mut files: BTreeMap<(String, String, i64), Vec<&Value>> = BTreeMap::new();
    let mut first_slot: HashMap<&str, i64> = HashMap::new();
    for e in &scenario.events {
        let account = str_field(e, "recipientAccountId")?;
        let region = str_field(e, "awsRegion")?;
        let id = str_field(e, "eventID")?;
        let mut slot = event_time(e)?.div_euclid(SLOT);
        match first_slot.get(id) {
            Some(&s) => slot = s + 1,
            None => {
                first_slot.insert(id, slot);
            }
        }
        files
            .entry((account.to_string(), region.to_string(), slot))
            .or_default()
            .push(e);
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut records = 0;
    for ((account, region, slot), recs) in &files {
        let at = datetime((slot + 1) * SLOT);
        let folder = dir.join(format!(
            "AWSLogs/{account}/CloudTrail/{region}/{:04}/{:02}/{:02}",
            at.year(),
            at.month(),
            at.day()
        ));
        fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
        let suffix: String = (0..16)
            .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
            .collect();
        let name = format!(
            "{account}_CloudTrail_{region}_{:04}{:02}{:02}T{:02}{:02}Z_{suffix}.json.gz",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute()
        );
        let path = folder.join(name);
        let f = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut gz = GzEncoder::new(BufWriter::new(f), Compression::default());
        gz.write_all(b"{\"Records\":[")?;
        for (i, r) in recs.iter().enumerate() {
            if i > 0 {
                gz.write_all(b",")?;
            }
            serde_json::to_writer(&mut gz, r)?;
        }
        gz.write_all(b"]}")?;
        gz.finish()?
            .flush()
            .with_context(|| format!("writing {}", path.display()))?;
        records += recs.len();
    }
    Ok(WriteSummary {
        files: files.len(),
        records,
        garbage_lines: 0,
    })
}

/// CloudTrail's log stream name in its CloudWatch Logs group.
fn log_stream(record: &Value) -> String {
    let account = record
        .get("recipientAccountId")
        .and_then(Value::as_str)
        .unwrap_or("");
    let region = record
        .get("awsRegion")
        .and_then(Value::as_str)
        .unwrap_or("");
    format!("{account}_CloudTrail_{region}")
}

/// A `DATA_MESSAGE` envelope of `records`, all of one log stream.
fn data_message(records: &[Value], rng: &mut Rng) -> Result<Value> {
    let events = records
        .iter()
        .map(|r| {
            let id: String = (0..56)
                .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                .collect();
            Ok(json!({"id": id, "timestamp": event_time(r)? * 1000, "message": line(r)}))
        })
        .collect::<Result<Vec<Value>>>()?;
    Ok(json!({
        "messageType": "DATA_MESSAGE",
        "owner": records[0].get("recipientAccountId").cloned().unwrap_or(Value::Null),
        "logGroup": "aws-cloudtrail-logs-minewatch",
        "logStream": log_stream(&records[0]),
        "subscriptionFilters": ["minewatch"],
        "logEvents": events,
    }))
}

/// The subscription's health check, as CloudWatch Logs sends it.
fn control_message() -> Value {
    json!({
        "messageType": "CONTROL_MESSAGE",
        "owner": "CloudwatchLogs",
        "logGroup": "",
        "logStream": "",
        "subscriptionFilters": [],
        "logEvents": [{"id": "", "timestamp": 0,
            "message": "CWL CONTROL MESSAGE: Checking health of destination Firehose."}],
    })
}

/// Consecutive records grouped into `DATA_MESSAGE` envelopes of one log stream each.
fn cloudwatch_envelopes(records: &[Value], rng: &mut Rng) -> Result<Vec<Value>> {
    let mut envelopes = Vec::new();
    let mut start = 0;
    while start < records.len() {
        let stream = log_stream(&records[start]);
        let mut end = start + 1;
        while end < records.len() && end - start < LOG_EVENTS && log_stream(&records[end]) == stream
        {
            end += 1;
        }
        envelopes.push(data_message(&records[start..end], rng)?);
        start = end;
    }
    Ok(envelopes)
}

fn write_cloudwatch(records: &[Value], path: &Path, rng: &mut Rng) -> Result<WriteSummary> {
    let mut out = create(path)?;
    for (i, envelope) in cloudwatch_envelopes(records, rng)?.iter().enumerate() {
        if i % 25 == 0 {
            let mut gz = GzEncoder::new(&mut out, Compression::default());
            serde_json::to_writer(&mut gz, &control_message())?;
            gz.finish()?;
        }
        let mut gz = GzEncoder::new(&mut out, Compression::default());
        serde_json::to_writer(&mut gz, envelope)?;
        gz.finish()?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(WriteSummary {
        files: 1,
        records: records.len(),
        garbage_lines: 0,
    })
}

/// `records` as `aws cloudtrail lookup-events` pages: newest first, [`PAGE`] a page,
/// each page but the last with a `NextToken`.
fn lookup_events_pages(records: &[Value]) -> Result<Vec<Value>> {
    let newest_first: Vec<&Value> = records.iter().rev().collect();
    let pages = newest_first.len().div_ceil(PAGE);
    newest_first
        .chunks(PAGE)
        .enumerate()
        .map(|(i, chunk)| {
            let events = chunk
                .iter()
                .map(|r| {
                    let time = datetime(event_time(r)?);
                    Ok(json!({
                        "EventId": r.get("eventID").cloned().unwrap_or(Value::Null),
                        "EventName": r.get("eventName").cloned().unwrap_or(Value::Null),
                        "ReadOnly": r.get("readOnly").map_or("false".into(), ToString::to_string),
                        "EventTime": time.format("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
                        "EventSource": r.get("eventSource").cloned().unwrap_or(Value::Null),
                        "Username": r.pointer("/userIdentity/userName").cloned().unwrap_or(Value::Null),
                        "Resources": [],
                        "CloudTrailEvent": line(r),
                    }))
                })
                .collect::<Result<Vec<Value>>>()?;
            let mut page = json!({ "Events": events });
            if i + 1 < pages {
                page["NextToken"] = format!("page-{}", i + 1).into();
            }
            Ok(page)
        })
        .collect()
}

fn write_lookup_events(records: &[Value], path: &Path) -> Result<WriteSummary> {
    let mut out = create(path)?;
    for page in lookup_events_pages(records)? {
        serde_json::to_writer_pretty(&mut out, &page)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(WriteSummary {
        files: 1,
        records: records.len(),
        garbage_lines: 0,
    })
}

const NOISE: [&str; 6] = [
    "2026-01-12 03:14:07,512 WARN cloudtrail-forwarder: retrying batch (connection reset by peer)",
    "<html><body><h1>502 Bad Gateway</h1></body></html>",
    "Records:",
    "\u{1f}\u{8b}\u{8}binary-junk",
    "eventName=RunInstances awsRegion=us-east-1 (not json)",
    "}{",
];

/// The garbage lines of a scenario, in no particular order.
fn garbage(scenario: &Scenario, rng: &mut Rng) -> Vec<String> {
    let events = &scenario.events;
    let mut out = Vec::new();
    let rounds = (events.len() / 1000).max(2);
    for k in 0..rounds {
        if !events.is_empty() {
            // A real record cut in half: never valid JSON.
            let full = line(&events[rng.random_range(0..events.len())]);
            let mut cut = full.len() / 2;
            while !full.is_char_boundary(cut) {
                cut -= 1;
            }
            out.push(full[..cut].to_string());
        }
        out.push(NOISE[k % NOISE.len()].to_string());
        out.push(if k % 2 == 0 {
            String::new()
        } else {
            "   ".to_string()
        });
        out.push(r#"{"msg":"healthcheck ok"}"#.to_string());
        out.push("[1,2,3]".to_string());
        out.push("42".to_string());
    }
    out.push(format!(
        r#"{{"kind":"debug-dump","source":"forwarder","blob":"{}"}}"#,
        "A".repeat(HUGE_LEN)
    ));
    // Ordinary successful RunInstances with a fresh eventID but a wrongly typed field.
    let launches = events.iter().filter(|e| {
        e.get("eventName").and_then(Value::as_str) == Some("RunInstances")
            && e.get("errorCode").is_none()
            && e.get("sourceIPAddress").and_then(Value::as_str) != Some(ATTACKER_IP)
    });
    for (i, e) in launches.step_by(25).enumerate() {
        let mut copy = e.clone();
        copy["eventID"] = uuid(rng).into();
        if i % 2 == 0 {
            copy["requestParameters"]["instanceType"] = json!({"value": "t3.micro"});
        } else {
            copy["awsRegion"] = json!(1);
        }
        out.push(line(&copy));
    }
    out
}

fn write_garbage(scenario: &Scenario, path: &Path, rng: &mut Rng) -> Result<WriteSummary> {
    let junk = garbage(scenario, rng);
    let n = scenario.events.len();
    let mut at: Vec<(usize, usize)> = (0..junk.len())
        .map(|j| (rng.random_range(0..=n), j))
        .collect();
    at.sort_unstable();
    let mut out = create(path)?;
    let mut next = at.iter().peekable();
    for i in 0..=n {
        while let Some(&&(pos, j)) = next.peek() {
            if pos != i {
                break;
            }
            out.write_all(junk[j].as_bytes())?;
            out.write_all(b"\n")?;
            next.next();
        }
        if let Some(e) = scenario.events.get(i) {
            serde_json::to_writer(&mut out, e)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(WriteSummary {
        files: 1,
        records: n,
        garbage_lines: junk.len(),
    })
}

//! `minewatch-generate`: writes a seeded CloudTrail scenario (weeks of activity plus
//! incidents) in one of the layouts minewatch reads, and optionally the alerts it must give.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use minewatch_generator::{Layout, Spec};

/// Write a realistic CloudTrail scenario (weeks of activity plus incidents).
#[derive(Debug, Parser)]
#[command(name = "minewatch-generate", version, max_term_width = 100)]
struct Args {
    /// Where to write: a file (ndjson, eventbridge, cloudwatch, lookup-events, garbage) or a
    /// directory (s3).
    #[arg(long, short, value_name = "PATH")]
    output: PathBuf,
    /// Layout of the output.
    #[arg(long, value_enum, default_value = "ndjson")]
    layout: LayoutArg,
    /// Days of activity.
    #[arg(long, default_value_t = 45)]
    days: u32,
    /// Random seed; the same seed gives the same bytes.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Average events per day.
    #[arg(long, default_value_t = 1000)]
    events_per_day: u32,
    /// Leave the incidents out (normal activity only).
    #[arg(long)]
    no_incidents: bool,
    /// Add Google Cloud and Azure audit logs (with their own incidents) to CloudTrail;
    /// only with the ndjson layouts.
    #[arg(long)]
    other_clouds: bool,
    /// Also write the expected alerts (detection, key) as NDJSON here.
    #[arg(long, value_name = "FILE")]
    expected: Option<PathBuf>,
}

/// Output layouts.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum LayoutArg {
    /// One record per line.
    Ndjson,
    /// CloudTrail's S3 delivery layout of gzipped {"Records":[...]} files.
    S3,
    /// NDJSON of EventBridge envelopes.
    Eventbridge,
    /// NDJSON with garbage lines mixed in.
    Garbage,
    /// CloudWatch Logs subscription envelopes as Firehose writes them to S3 (gzip
    /// members back to back).
    Cloudwatch,
    /// `aws cloudtrail lookup-events` pages, newest first.
    LookupEvents,
}

impl From<LayoutArg> for Layout {
    fn from(arg: LayoutArg) -> Self {
        match arg {
            LayoutArg::Ndjson => Layout::Ndjson,
            LayoutArg::S3 => Layout::S3Archive,
            LayoutArg::Eventbridge => Layout::EventBridge,
            LayoutArg::Garbage => Layout::NdjsonWithGarbage,
            LayoutArg::Cloudwatch => Layout::CloudWatchLogs,
            LayoutArg::LookupEvents => Layout::LookupEvents,
        }
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("minewatch-generate: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<()> {
    anyhow::ensure!(
        args.no_incidents || args.days >= 21,
        "--days {}: the scenario's incidents start after a 20-day history, so it needs at \
         least 21 days; add --no-incidents for a shorter one",
        args.days
    );
    let spec = Spec {
        seed: args.seed,
        days: args.days,
        events_per_day: args.events_per_day,
        incidents: !args.no_incidents,
        other_clouds: args.other_clouds,
        ..Spec::default()
    };
    let scenario = minewatch_generator::generate(&spec);
    let written = minewatch_generator::write(&scenario, args.layout.into(), &args.output)?;
    if let Some(path) = &args.expected {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("failed to create {}", path.display()))?,
        );
        for alert in &scenario.expected {
            serde_json::to_writer(&mut out, alert)?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
    }
    eprintln!(
        "minewatch-generate: wrote {} records ({} garbage lines) in {} files to {}; {} alerts expected",
        written.records,
        written.garbage_lines,
        written.files,
        args.output.display(),
        scenario.expected.len()
    );
    Ok(())
}

//! The `minewatch` command: parses the command line and runs one subcommand.

mod cli;

/// mimalloc instead of glibc malloc: the reader thread allocates parsed records and the
/// pipeline thread frees them, and glibc's arena locks made that cross-thread traffic
/// the top of the profile (RunInstances-only `run`: 8,600 -> see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use minewatch::config::{Config, EngineKind, StoreBackend};
use minewatch::replay;
use minewatch::report::ReportOptions;
use minewatch::runtime::Engines;
use minewatch::serve::{self, outputs::OutputConfig};
use minewatch::sources::fluent::ForwardConfig;
use minewatch::sources::http::HttpSourceConfig;
use minewatch::store::BaselineStore;
use minewatch::store::redis::{RedisConfig, RedisStore};
use minewatch::summary::{LearnedSummary, RunSummary};
use minewatch::{DetectorSpec, build_detector, build_limited_detector, share};

use cli::{BaselineCommand, Cli, Command, DetectorArgs, LogFormat, SecretArgs};

/// Whether logs (and the end-of-run summary) are JSON lines (`--log-format json`).
static JSON_LOGS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Returns the pages mimalloc keeps after frees to the OS, for the sources' memory
/// budget (see `minewatch::sources::budget`). The crate's one `unsafe`: a call into
/// mimalloc's C API, which the `mimalloc` crate does not wrap.
#[allow(unsafe_code)]
fn return_freed_pages() {
    // SAFETY: `mi_collect` takes no pointers and may be called from any thread.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

fn main() -> ExitCode {
    minewatch::sources::budget::set_return_freed(return_freed_pages);
    let cli = Cli::parse();
    let (filter, bad_filter) = match std::env::var("MINEWATCH_LOG") {
        Err(_) => (tracing_subscriber::EnvFilter::new("info"), None),
        Ok(text) => match tracing_subscriber::EnvFilter::try_new(&text) {
            Ok(filter) => (filter, None),
            Err(error) => (
                tracing_subscriber::EnvFilter::new("info"),
                Some((text, error)),
            ),
        },
    };
    let logs = tracing_subscriber::fmt()
        .with_writer(|| minewatch::progress::LogWriter)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => {
            JSON_LOGS.store(true, std::sync::atomic::Ordering::Relaxed);
            logs.json().init();
        }
    }
    if let Some((text, error)) = bad_filter {
        tracing::warn!(
            MINEWATCH_LOG = %text,
            %error,
            "MINEWATCH_LOG is not a valid log filter (e.g. `debug`, `minewatch=debug,info`); logging at info."
        );
    }
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(error) if is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("minewatch: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// The end-of-run summary on stderr: as text, or with `--log-format json` as one JSON
/// log line whose `summary` field holds the counts.
fn print_summary(text: &dyn std::fmt::Display, summary: &RunSummary) {
    if JSON_LOGS.load(std::sync::atomic::Ordering::Relaxed) {
        let counts = serde_json::to_string(summary).expect("summaries serialize");
        tracing::info!(summary = %counts, "Finished.");
    } else {
        eprint!("{text}");
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Run(args) => {
            let mut config = resolve(&args.detector)?;
            if let Some(format) = args.format {
                config.format = format;
            }
            if let Some(flag) = &args.output {
                config.outputs = vec![OutputConfig::from_flag(
                    flag,
                    config.format,
                    args.passthrough,
                )];
            } else if config.outputs.is_empty() {
                config.outputs = vec![OutputConfig::from_flag(
                    "-",
                    config.format,
                    args.passthrough,
                )];
            }
            if let Some(field) = &config.route_field {
                tracing::warn!(
                    route_field = %field,
                    tenant = %config.tenant,
                    "run reads everything as one tenant (--tenant picks which); route_field \
                     and route_values apply to serve only."
                );
            }
            let pipeline = serve::build_pipeline(&config, false)?;
            let driven =
                replay::drive(&config, replay::inputs(&args.inputs.input), pipeline, None)?;
            print_summary(&driven.summary, &driven.summary);
            Ok(exit_code(&driven.summary))
        }
        Command::Serve(args) => {
            let mut config = resolve(&args.detector)?;
            apply_serve_flags(&mut config, &args);
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .context("failed to start the async runtime")?;
            let summary = runtime.block_on(async {
                let shutdown = serve::signal();
                let listeners = serve::Listeners::bind(&config).await?;
                let reload = args.detector.config.clone().map(|path| {
                    let flags = args.clone();
                    serve::reload::Reload {
                        path,
                        overrides: Box::new(move |config: &mut Config| {
                            apply_flags(config, &flags.detector);
                            apply_serve_flags(config, &flags);
                        }),
                    }
                });
                serve::serve_with_reload(config, listeners, shutdown, reload).await
            })?;
            print_summary(&summary, &summary);
            Ok(ExitCode::SUCCESS)
        }
        Command::Baseline(BaselineCommand::Build(args)) => {
            let mut config = resolve(&args.detector)?;
            config.outputs.clear();
            let request = replay::TapRequest {
                learn_only: true,
                ..replay::TapRequest::default()
            };
            let tapped = replay::replay_tapped(&config, replay::inputs(&args.input), request)?;
            let summary = tapped.driven.summary;
            print_summary(
                &LearnedSummary {
                    summary: &summary,
                    learned: &tapped.log,
                },
                &summary,
            );
            Ok(exit_code(&summary))
        }
        Command::Baseline(BaselineCommand::Show(args)) => {
            let config = baseline_config(args.config.as_deref())?;
            show(&state_dir(args.state, &config), args.json, args.keys)
        }
        Command::Baseline(BaselineCommand::Export(args)) => {
            let config = baseline_config(args.config.as_deref())?;
            let redis = match &args.redis {
                Some(url) => Some(RedisConfig {
                    url: url.clone(),
                    key_prefix: args.key_prefix.clone(),
                    ..RedisConfig::default()
                }),
                None if args.state.is_none() && config.store.backend == StoreBackend::Redis => {
                    Some(config.store.redis.clone())
                }
                None => None,
            };
            let store = match redis {
                Some(redis) => RedisStore::new(redis)?.snapshot(args.tenant.as_deref())?,
                None => BaselineStore::open_existing(&state_dir(args.state, &config))?,
            };
            if let Some(tenant) = &args.tenant
                && !store.tenant_names().contains(tenant)
            {
                anyhow::bail!(
                    "no baselines of tenant {tenant:?} (tenants with baselines: {})",
                    store.tenant_names().join(", ")
                );
            }
            let mut out: Box<dyn Write> = match args.output.as_deref() {
                None | Some("-") => Box::new(std::io::stdout().lock()),
                Some(path) => Box::new(
                    std::fs::File::create(path)
                        .with_context(|| format!("failed to create {path}"))?,
                ),
            };
            let entries = store.export(args.tenant.as_deref(), &mut out)?;
            out.flush()?;
            eprintln!("minewatch: exported {entries} baseline entries");
            Ok(ExitCode::SUCCESS)
        }
        Command::Baseline(BaselineCommand::Import(args)) => {
            let config = baseline_config(args.config.as_deref())?;
            let mut store = BaselineStore::open(&state_dir(args.state, &config))?;
            let mut input: Box<dyn BufRead> = if args.input == "-" {
                Box::new(std::io::stdin().lock())
            } else {
                let file = std::fs::File::open(&args.input)
                    .with_context(|| format!("failed to open {}", args.input))?;
                Box::new(BufReader::new(file))
            };
            let summary = store
                .import(&mut input)
                .with_context(|| format!("failed to import {}", args.input))?;
            store.commit()?;
            eprintln!(
                "minewatch: imported {} entries ({} sightings)",
                summary.entries, summary.sightings
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Detections(args) => detections(args.component.as_deref(), args.json),
        Command::Validate(args) => validate(&args.config, &args.secrets),
        Command::Report(args) => {
            let config = resolve(&args.detector)?;
            let options = ReportOptions {
                top_principals: args.top_principals,
            };
            let report = minewatch::report::backtest(&config, &args.inputs.input, options)?;
            print_summary(&report.summary, &report.summary);
            let output = args.output.as_deref().unwrap_or("-");
            report.write(output, args.json)?;
            if output != "-" {
                eprintln!(
                    "minewatch: wrote the report to {output}: {} alerts, {} of {} principals with launches charted",
                    report.alerts.len(),
                    report.rates.charts.len(),
                    report.rates.principals_with_launches
                );
            }
            Ok(exit_code(&report.summary))
        }
    }
}

/// The state directory a baseline command reads: `--state`, else the config's.
fn state_dir(flag: Option<PathBuf>, config: &Config) -> PathBuf {
    flag.unwrap_or_else(|| config.state_dir.clone())
}

/// The configuration a baseline command was given, or the defaults.
fn baseline_config(path: Option<&Path>) -> Result<Config> {
    path.map_or_else(|| Ok(Config::default()), Config::load)
}

/// The configuration file (if any) with the command-line flags applied over it.
fn resolve(args: &DetectorArgs) -> Result<Config> {
    let mut config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(tenant) = &args.tenant {
        let known: Vec<&str> = std::iter::once(config.tenant.as_str())
            .chain(config.tenants.iter().map(|t| t.name.as_str()))
            .collect();
        anyhow::ensure!(
            config.tenants.is_empty() || known.contains(&tenant.as_str()),
            "--tenant {tenant}: no such tenant in the configuration (tenants: {})",
            known.join(", ")
        );
    }
    apply_flags(&mut config, args);
    config.check()?;
    Ok(config)
}

/// Applies the command-line flags over a config read from the file.
fn apply_flags(config: &mut Config, args: &DetectorArgs) {
    if let Some(state) = &args.state {
        config.state_dir = state.clone();
        config.memory = false;
    }
    if args.memory {
        config.memory = true;
    }
    if let Some(url) = &args.redis {
        config.store.backend = StoreBackend::Redis;
        config.store.redis.url = url.clone();
    }
    if let Some(component) = &args.component {
        config.component = Some(component.clone());
    }
    if let Some(engine) = args.engine {
        config.engine = engine;
    }
    if let Some(tenant) = &args.tenant {
        config.tenant = tenant.clone();
    }
    if let Some(field) = &args.record_field {
        config.record_field = Some(field.clone());
    }
}

/// Applies the flags of `serve` over the config (at start, and again over the file at
/// each reload, so a reload keeps honouring them).
fn apply_serve_flags(config: &mut Config, args: &cli::ServeArgs) {
    if let Some(format) = args.format {
        config.format = format;
    }
    if let Some(listen) = &args.http {
        config
            .sources
            .http
            .get_or_insert_with(HttpSourceConfig::default)
            .listen = listen.clone();
    }
    if let Some(listen) = &args.forward {
        config
            .sources
            .forward
            .get_or_insert_with(ForwardConfig::default)
            .listen = listen.clone();
    }
    apply_secrets(config, &args.secrets);
    if !args.output.is_empty() {
        config.outputs = args
            .output
            .iter()
            .map(|flag| OutputConfig::from_flag(flag, config.format, args.passthrough))
            .collect();
    } else if config.outputs.is_empty() {
        config.outputs = vec![OutputConfig::from_flag(
            "-",
            config.format,
            args.passthrough,
        )];
    }
}

/// Applies the sources' secrets given as flags or environment variables.
fn apply_secrets(config: &mut Config, secrets: &SecretArgs) {
    if let Some(token) = &secrets.http_token {
        match config.sources.http.as_mut() {
            Some(http) => http.token = Some(minewatch::sinks::http::Secret::new(token.clone())),
            None => tracing::warn!(
                "An HTTP token is set (--http-token or MINEWATCH_HTTP_TOKEN) but there is no \
                 HTTP source; ignoring it."
            ),
        }
    }
    if let Some(key) = &secrets.forward_shared_key {
        match config.sources.forward.as_mut() {
            Some(forward) => forward.shared_key = Some(key.clone()),
            None => tracing::warn!(
                "A Forward shared key is set (--forward-shared-key or \
                 MINEWATCH_FORWARD_SHARED_KEY) but there is no Forward source; ignoring it."
            ),
        }
    }
}

fn exit_code(summary: &RunSummary) -> ExitCode {
    if summary.unreadable_inputs > 0 {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    }
}

fn show(dir: &Path, json: bool, keys: bool) -> Result<ExitCode> {
    let store = BaselineStore::open_existing(dir)?;
    let sets = store.sets();
    let visible = |set: &str| !set.contains("rate/");
    if json {
        let out: Vec<serde_json::Value> = sets
            .iter()
            .map(|s| {
                let mut v = serde_json::to_value(s).expect("summaries serialize");
                if keys && visible(&s.set) {
                    v["entries"] = serde_json::json!(store
                        .keys(&s.tenant, &s.set)
                        .iter()
                        .map(|(k, s)| serde_json::json!({"key": k, "first_seen": minewatch_guest::time::format_time(s.first_seen), "last_seen": minewatch_guest::time::format_time(s.last_seen), "count": s.count}))
                        .collect::<Vec<_>>());
                }
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<10} {:<40} {:>8}  {:<20}  {:<20}",
        "TENANT", "SET", "KEYS", "LEARNING SINCE", "LATEST"
    );
    for s in &sets {
        println!(
            "{:<10} {:<40} {:>8}  {:<20}  {:<20}",
            s.tenant,
            s.set,
            s.keys,
            s.learning_start.as_deref().unwrap_or("-"),
            s.latest.as_deref().unwrap_or("-")
        );
        if keys && visible(&s.set) {
            for (key, sighting) in store.keys(&s.tenant, &s.set) {
                println!(
                    "    {key}  first {}  last {}  x{}",
                    minewatch_guest::time::format_time(sighting.first_seen),
                    minewatch_guest::time::format_time(sighting.last_seen),
                    sighting.count
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn detections(component: Option<&Path>, json: bool) -> Result<ExitCode> {
    let detector = build_detector(
        EngineKind::Component,
        component,
        "{}",
        share(BaselineStore::in_memory()),
    )?;
    let info = detector.info();
    if json {
        let mut value = serde_json::to_value(info)?;
        value["default_settings"] =
            serde_json::from_str(&info.default_settings).unwrap_or(serde_json::Value::Null);
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} {}", info.name, info.version);
    for d in &info.detections {
        let severity = format!("{:?}", d.severity).to_lowercase();
        let mitre = d.mitre_attack.join(",");
        println!(
            "{:<26} {severity:<8} risk {:>3}  {mitre:<20} {}",
            d.slug, d.risk_score, d.name
        );
        if !d.splunk_id.is_empty() {
            println!("{:<26} splunk {}", "", d.splunk_id);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn validate(path: &Path, secrets: &SecretArgs) -> Result<ExitCode> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut config = match Config::parse(path) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("minewatch: {error:#}");
            return Ok(ExitCode::from(1));
        }
    };
    apply_secrets(&mut config, secrets);
    problems.extend(config.problems());
    if let Err(error) = config.sources.check() {
        problems.extend(format!("{error:#}").lines().map(str::to_string));
    }
    // The listeners' certificate files, as `serve` would load them.
    let sources = [
        (
            "http",
            config
                .sources
                .http
                .as_ref()
                .map(HttpSourceConfig::tls_files),
        ),
        (
            "forward",
            config
                .sources
                .forward
                .as_ref()
                .map(ForwardConfig::tls_files),
        ),
    ];
    for (source, files) in sources {
        let Some(Ok(Some(files))) = files else {
            continue;
        };
        match files.load(source == "http") {
            Ok((_, findings)) => sort_findings(
                &format!("[sources.{source}]"),
                findings,
                &mut problems,
                &mut warnings,
            ),
            Err(error) => problems.push(format!("[sources.{source}] {error:#}")),
        }
    }
    for (i, output) in config.outputs.iter().enumerate() {
        let name = output.display_name(i);
        match output.check() {
            Ok(findings) => sort_findings(
                &format!("output {name}:"),
                findings,
                &mut problems,
                &mut warnings,
            ),
            Err(error) => problems.push(format!("output {name}: {error:#}")),
        }
    }
    // Every tenant's detector, each on the shared engines, each problem reported.
    let engines = Engines::new()?;
    for spec in config.tenant_specs().unwrap_or_default() {
        let detector = build_limited_detector(
            &engines,
            &DetectorSpec {
                engine: spec.engine,
                component: spec.component.as_deref(),
                settings: &spec.settings,
                limits: spec.limits,
            },
            share(BaselineStore::in_memory()),
        );
        if let Err(error) = detector {
            problems.push(format!("tenant {}: {error:#}", spec.name));
        }
    }
    match config.store.backend {
        StoreBackend::Redis => {
            if let Err(error) =
                RedisStore::new(config.store.redis.clone()).and_then(|mut s| s.ping())
            {
                problems.push(format!("{error:#}"));
            }
        }
        // Checked without opening it: validate changes nothing, and a running serve
        // holds the store.
        StoreBackend::Embedded if !config.memory => {
            if let Err(problem) = writable_dir(&config.state_dir) {
                problems.push(format!(
                    "state_dir {}: {problem}",
                    config.state_dir.display()
                ));
            }
        }
        StoreBackend::Embedded => {}
    }
    for warning in &warnings {
        eprintln!("minewatch: warning: {warning}");
    }
    if problems.is_empty() {
        eprintln!("minewatch: {} is valid", path.display());
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &problems {
        eprintln!("minewatch: {problem}");
    }
    Ok(ExitCode::from(1))
}

/// Whether `dir` is (or can become) a writable directory, without creating anything:
/// its nearest existing ancestor (itself, if it exists) must be a writable directory.
fn writable_dir(dir: &Path) -> std::result::Result<(), String> {
    let mut at = dir;
    loop {
        match std::fs::metadata(at) {
            Ok(meta) if !meta.is_dir() => {
                return Err(format!("{} is not a directory", at.display()));
            }
            Ok(meta) if meta.permissions().readonly() => {
                return Err(format!("{} is read-only", at.display()));
            }
            Ok(_) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                at = match at.parent() {
                    Some(parent) if !parent.as_os_str().is_empty() => parent,
                    _ => Path::new("."),
                };
            }
            Err(error) => return Err(format!("{}: {error}", at.display())),
        }
    }
}

/// Files certificate findings under problems or warnings, prefixed with where they are.
fn sort_findings(
    place: &str,
    findings: Vec<minewatch::tls::Finding>,
    problems: &mut Vec<String>,
    warnings: &mut Vec<String>,
) {
    for finding in findings {
        match finding {
            minewatch::tls::Finding::Problem(text) => problems.push(format!("{place} {text}")),
            minewatch::tls::Finding::Warning(text) => warnings.push(format!("{place} {text}")),
        }
    }
}

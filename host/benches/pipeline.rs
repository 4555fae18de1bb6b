//! End-to-end and hot-path benchmarks of the detection pipeline.
//!
//! Run with `cargo bench --bench pipeline` (release build). It prints the machine, the
//! inputs and every figure; nothing is asserted. Sections:
//! 1. a mixed CloudTrail stream through `minewatch run`, against `grep -c RunInstances`
//!    and the real Vector and Fluent Bit each keeping the stream's RunInstances records
//!    (`MINEWATCH_VECTOR`, `MINEWATCH_FLUENT_BIT`; by default `../shared/peers/`);
//! 2. a RunInstances-only stream through the component and through the native build of
//!    the same logic (the sandbox's cost as a ratio);
//! 3. baseline memory per key and lookup cost at 1 M and 10 M keys;
//! 4. the same inputs through `minewatch run` with each baseline store: embedded in
//!    memory, embedded durable (redb), and Redis (a `redis-server` the bench starts on
//!    loopback, append-only file fsynced every second and on every write).
//!
//! Set `MINEWATCH_BENCH_QUICK=1` for a fast smoke run with smaller inputs. Name sections
//! to run only those: `cargo bench --bench pipeline -- launches` (`mixed`, `launches`,
//! `stores`, `memory`).

use std::alloc::{GlobalAlloc, Layout};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use minewatch::config::EngineKind;
use minewatch::intake::FieldSet;
use minewatch::store::BaselineStore;
use minewatch_generator::Spec;
use minewatch_guest::Baseline;
use minewatch_guest::batch::PackedBatch;
use minewatch_guest::projection::FieldPath;
use serde_json::Value;

mod common;
use common::print_machine;

/// The binary's allocator (mimalloc), counting live heap bytes so memory per key is
/// exact and the in-process figures pay what `minewatch` pays per allocation.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code, reason = "a counting wrapper around mimalloc")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() -> anyhow::Result<()> {
    let quick = std::env::var_os("MINEWATCH_BENCH_QUICK").is_some();
    // cargo passes `--bench`; any other argument names a section to run.
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |section: &str| named.is_empty() || named.iter().any(|n| n == section);
    print_machine();
    if run("mixed") {
        mixed_stream(if quick { 500 } else { 4000 })?;
    }
    if run("launches") {
        launches(if quick { 20_000 } else { 100_000 })?;
    }
    if run("stores") {
        store_backends(
            if quick { 500 } else { 4000 },
            if quick { 5_000 } else { 20_000 },
        )?;
    }
    if run("memory") {
        for keys in if quick {
            vec![100_000]
        } else {
            vec![1_000_000, 10_000_000]
        } {
            baseline_memory(keys);
        }
    }
    Ok(())
}

/// Best wall time of `runs` runs of a command, in seconds.
fn best_of(runs: usize, mut command: impl FnMut() -> Command) -> f64 {
    (0..runs)
        .map(|_| {
            let started = Instant::now();
            let out = command().output().expect("command runs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn mixed_stream(events_per_day: u32) -> anyhow::Result<()> {
    let spec = Spec {
        events_per_day,
        ..Spec::default()
    };
    let scenario = minewatch_generator::generate(&spec);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("mixed.ndjson");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut launches = 0;
    for event in &scenario.events {
        launches += usize::from(event["eventName"] == "RunInstances");
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    drop(out);
    let bytes = std::fs::metadata(&path)?.len() as f64;
    let events = scenario.events.len() as f64;
    println!(
        "\n[mixed stream] generated 45-day scenario: {} events, {:.1} MB, {:.2}% RunInstances",
        events,
        bytes / 1e6,
        100.0 * launches as f64 / events
    );
    let peers = Peers::find(dir.path());
    let (grep_path, run_path) = (path.clone(), path.clone());
    let mut contenders: Vec<Contender> = vec![
        (
            "grep -c RunInstances",
            Box::new(move || {
                let mut c = Command::new("grep");
                c.args(["-c", "RunInstances"]).arg(&grep_path);
                c
            }),
        ),
        (
            "minewatch run --memory",
            Box::new(move || {
                let mut c = Command::new(env!("CARGO_BIN_EXE_minewatch"));
                c.args(["run", "--memory", "--input"])
                    .arg(&run_path)
                    .env("MINEWATCH_LOG", "error");
                c
            }),
        ),
    ];
    contenders.extend(peers.commands(&path));
    // Rounds interleave the contenders, so a slow spell of the machine hits them alike.
    let mut best = vec![f64::INFINITY; contenders.len()];
    for _ in 0..3 {
        for (slot, (_, command)) in best.iter_mut().zip(&contenders) {
            *slot = slot.min(best_of(1, command));
        }
    }
    for version in &peers.versions {
        println!("  {version}");
    }
    for ((name, _), seconds) in contenders.iter().zip(&best) {
        println!(
            "  {name:<34} {seconds:>7.3} s  {:>6.0} MB/s  {:>9.0} events/s  {:>6.2}x grep",
            bytes / 1e6 / seconds,
            events / seconds,
            seconds / best[0]
        );
    }
    println!(
        "  (minewatch's target: <= 3x grep; every contender keeps the RunInstances records of the same file, best of 3 interleaved rounds)"
    );
    Ok(())
}

/// A command timed on the mixed stream, with its name in the table.
type Contender = (&'static str, Box<dyn Fn() -> Command>);

/// The real Vector and Fluent Bit (`MINEWATCH_VECTOR`, `MINEWATCH_FLUENT_BIT`, by default
/// the builds in `../shared/peers`), each configured to do the least its user would to
/// keep the RunInstances records of a file of CloudTrail NDJSON.
struct Peers {
    vector: Option<(String, PathBuf)>,
    fluent_bit: Option<(String, PathBuf)>,
    versions: Vec<String>,
}

impl Peers {
    fn find(dir: &Path) -> Peers {
        let found = |variable: &str, default: &str| {
            let binary = std::env::var_os(variable).map_or_else(
                || Path::new(env!("CARGO_MANIFEST_DIR")).join(default),
                PathBuf::from,
            );
            let out = Command::new(&binary).arg("--version").output().ok()?;
            let version = String::from_utf8_lossy(&out.stdout);
            Some((version.lines().next()?.trim().to_string(), binary))
        };
        let vector = found("MINEWATCH_VECTOR", "../../shared/peers/vector");
        let fluent_bit = found("MINEWATCH_FLUENT_BIT", "../../shared/peers/fluent-bit");
        // Vector: stdin → parse the JSON → keep RunInstances → discard; exits at the
        // input's end.
        let vector_config = dir.join("vector.toml");
        std::fs::write(
            &vector_config,
            r#"
[sources.trail]
type = "stdin"
[transforms.parsed]
type = "remap"
inputs = ["trail"]
source = ". = parse_json!(.message)"
[transforms.launches]
type = "filter"
inputs = ["parsed"]
condition = '.eventName == "RunInstances"'
[sinks.discard]
type = "blackhole"
inputs = ["launches"]
print_interval_secs = 0
"#,
        )
        .expect("write vector.toml");
        // Fluent Bit: tail with the json parser → grep RunInstances → null; exits at the
        // file's end.
        std::fs::write(
            dir.join("parsers.conf"),
            "[PARSER]\n    Name   json\n    Format json\n",
        )
        .expect("write parsers.conf");
        let fluent_bit_config = dir.join("fluent-bit.conf");
        std::fs::write(
            &fluent_bit_config,
            format!(
                "[SERVICE]\n    Parsers_File {}\n    Grace 1\n    Log_Level error\n\n\
                 [INPUT]\n    Name tail\n    Path ${{TRAIL}}\n    Parser json\n    Read_from_Head true\n    Exit_On_Eof true\n\n\
                 [FILTER]\n    Name grep\n    Match *\n    Regex eventName ^RunInstances$\n\n\
                 [OUTPUT]\n    Name null\n    Match *\n",
                dir.join("parsers.conf").display()
            ),
        )
        .expect("write fluent-bit.conf");
        let versions = [
            (&vector, "Vector", "MINEWATCH_VECTOR"),
            (&fluent_bit, "Fluent Bit", "MINEWATCH_FLUENT_BIT"),
        ]
        .into_iter()
        .map(|(peer, name, variable)| match peer {
            Some((version, _)) => format!("peer: {version}"),
            None => format!("peer: {name} not found ({variable}): skipped"),
        })
        .collect();
        let with = |peer: Option<(String, PathBuf)>, config: &Path| {
            peer.map(|(_, binary)| (config.display().to_string(), binary))
        };
        Peers {
            vector: with(vector, &vector_config),
            fluent_bit: with(fluent_bit, &fluent_bit_config),
            versions,
        }
    }

    /// The peers' commands over `trail`, named as in the bench's table.
    fn commands(&self, trail: &Path) -> Vec<Contender> {
        let mut commands: Vec<Contender> = Vec::new();
        if let Some((config, binary)) = self.vector.clone() {
            let trail = trail.to_path_buf();
            commands.push((
                "vector (stdin, parse_json, filter)",
                Box::new(move || {
                    let mut c = Command::new(&binary);
                    c.args(["--quiet", "--config", &config])
                        .stdin(std::fs::File::open(&trail).expect("the trail"));
                    c
                }),
            ));
        }
        if let Some((config, binary)) = self.fluent_bit.clone() {
            let trail = trail.to_path_buf();
            commands.push((
                "fluent-bit (tail json, grep)",
                Box::new(move || {
                    let mut c = Command::new(&binary);
                    c.args(["--quiet", "-c", &config]).env("TRAIL", &trail);
                    c
                }),
            ));
        }
        commands
    }
}

/// A RunInstances-only stream: the scenario's successful launches, replayed with fresh
/// event ids and times a few seconds apart, so the rules do their full work per event.
fn launch_stream(count: usize) -> Vec<Value> {
    let scenario = minewatch_generator::generate(&Spec::default());
    let templates: Vec<&Value> = scenario
        .events
        .iter()
        .filter(|e| e["eventName"] == "RunInstances" && e.get("errorCode").is_none())
        .collect();
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
        .unwrap()
        .timestamp();
    (0..count)
        .map(|i| {
            let mut event = templates[i % templates.len()].clone();
            event["eventID"] = Value::String(format!("bench-{i:012}"));
            let time = chrono::DateTime::from_timestamp(start + (i as i64) * 7, 0).unwrap();
            event["eventTime"] = Value::String(time.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            event
        })
        .collect()
}

/// `lines`, each parsed by `parse`, projected to `paths` in batches of 512 as the
/// pipeline builds them.
fn batches(
    lines: &[String],
    paths: &[FieldPath],
    parse: impl Fn(&str) -> Value,
) -> Vec<PackedBatch> {
    lines
        .chunks(512)
        .map(|chunk| {
            let mut batch = PackedBatch::new(paths.len());
            for line in chunk {
                batch.push_record(&parse(line), paths).unwrap();
            }
            batch
        })
        .collect()
}

fn launches(count: usize) -> anyhow::Result<()> {
    let events = launch_stream(count);
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    let bytes: usize = lines.iter().map(String::len).sum();
    println!(
        "\n[RunInstances only] {count} successful launches replayed from the scenario, {:.1} MB",
        bytes as f64 / 1e6
    );
    let info = minewatch_guest::Detector::describe();
    let paths: Vec<FieldPath> = info
        .fields
        .iter()
        .map(|p| FieldPath::parse(p).unwrap())
        .collect();
    // Parse and drop, as the pipeline does (keeping 100,000 parsed trees alive would
    // measure page faults, not parsing).
    let started = Instant::now();
    let mut fields = 0;
    for line in &lines {
        let value: Value = serde_json::from_str(line).unwrap();
        fields += value.as_object().map_or(0, |o| o.len());
    }
    let parse = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let projected = batches(&lines, &paths, |l| serde_json::from_str(l).unwrap());
    let parse_and_project = started.elapsed().as_secs_f64();
    // What `run` does when nothing needs whole records: parse straight into the
    // detectors' fields, then project.
    let cut_fields = FieldSet::new(info.fields.iter().map(String::as_str));
    let started = Instant::now();
    let cut = batches(&lines, &paths, |l| cut_fields.parse(l.as_bytes()).unwrap());
    let cut_and_project = started.elapsed().as_secs_f64();
    assert!(cut == projected, "the cut changed a projection");
    println!(
        "  host parse (serde_json Value)      {:>9.0} events/s ({fields} top-level fields)\n  host parse + projection            {:>9.0} events/s\n  host parse cut to the fields + projection {:>9.0} events/s (what `run` does)",
        count as f64 / parse,
        count as f64 / parse_and_project,
        count as f64 / cut_and_project
    );
    // Three rounds, the engines interleaved, best of each: this machine's neighbours
    // move single runs by 10-20%. Batches are projected before the clock starts, so the
    // time is the detector's alone.
    let mut best = [f64::INFINITY; 2];
    let mut alerts = [0; 2];
    for _round in 0..3 {
        for (slot, engine) in [EngineKind::Native, EngineKind::Component]
            .into_iter()
            .enumerate()
        {
            let store = minewatch::share(BaselineStore::in_memory());
            let mut detector = minewatch::build_detector(engine, None, "{}", store)?;
            let started = Instant::now();
            let mut found = 0;
            for batch in &projected {
                found += detector.detect("bench", batch)?.alerts.len();
            }
            best[slot] = best[slot].min(started.elapsed().as_secs_f64());
            alerts[slot] = found;
        }
    }
    for (slot, engine) in ["native", "component"].into_iter().enumerate() {
        println!(
            "  detect, {engine:<9}         {:>9.0} events/s  ({:.3} s best of 3, {} alerts, batches of 512, in-memory baselines)",
            count as f64 / best[slot],
            best[slot],
            alerts[slot]
        );
    }
    println!(
        "  component / native time   {:.2}x (target <= 1.5x)",
        best[1] / best[0]
    );
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("launches.ndjson");
    std::fs::write(&path, lines.join("\n") + "\n")?;
    let mut walls = Vec::new();
    for engine in ["native", "component"] {
        let wall = best_of(2, || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_minewatch"));
            c.args(["run", "--memory", "--engine", engine, "--input"])
                .arg(&path)
                .env("MINEWATCH_LOG", "error");
            c
        });
        walls.push(wall);
        println!(
            "  minewatch run, {engine:<9}   {:>9.0} events/s end to end (parse on the reader thread, detect on the pipeline thread)",
            count as f64 / wall
        );
    }
    println!(
        "  end to end component / native {:.2}x",
        walls[1] / walls[0]
    );
    Ok(())
}

/// A `redis-server` for the backend comparison, killed when dropped.
struct RedisServer {
    child: std::process::Child,
    url: String,
}

impl RedisServer {
    fn start(dir: &Path, fsync: &str) -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", fsync])
            .arg("--dir")
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/0"),
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        None
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn store_backends(events_per_day: u32, launch_count: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mixed = dir.path().join("mixed.ndjson");
    let scenario = minewatch_generator::generate(&Spec {
        events_per_day,
        ..Spec::default()
    });
    let text: String = scenario.events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&mixed, text)?;
    let launches = dir.path().join("launches.ndjson");
    let text: String = launch_stream(launch_count)
        .iter()
        .map(|e| format!("{e}\n"))
        .collect();
    std::fs::write(&launches, text)?;
    println!("\n[baseline stores] minewatch run over the same inputs, best of 2");
    let inputs = [
        ("mixed 45-day stream", &mixed, scenario.events.len()),
        ("RunInstances only", &launches, launch_count),
    ];
    let mut redis = Vec::new();
    for fsync in ["everysec", "always"] {
        let data = dir.path().join(format!("redis-{fsync}"));
        std::fs::create_dir_all(&data)?;
        match RedisServer::start(&data, fsync) {
            Some(server) => redis.push((format!("redis, appendfsync {fsync}"), server)),
            None => println!("  redis-server not available: Redis rows skipped"),
        }
    }
    let mut fresh = 0;
    for (name, path, events) in inputs {
        println!("  {name} ({events} events):");
        let mut row = |label: &str, store: &dyn Fn(&mut Command, usize)| {
            let wall = best_of(2, || {
                // Every run starts from empty baselines: a new state dir or tenant.
                fresh += 1;
                let mut c = Command::new(env!("CARGO_BIN_EXE_minewatch"));
                c.arg("run");
                store(&mut c, fresh);
                c.arg("--input").arg(path).env("MINEWATCH_LOG", "error");
                c
            });
            println!(
                "    {label:<28} {:>9.0} events/s  ({wall:.3} s)",
                events as f64 / wall
            );
        };
        row("embedded, memory", &|c, _| {
            c.arg("--memory");
        });
        row("embedded, redb", &|c, n| {
            c.arg("--state").arg(dir.path().join(format!("state-{n}")));
        });
        for (label, server) in &redis {
            row(label, &|c, n| {
                c.args(["--redis", &server.url, "--tenant", &format!("bench-{n}")]);
            });
        }
    }
    Ok(())
}

/// Live heap bytes (requested sizes; allocator overhead not included).
fn heap_bytes() -> u64 {
    LIVE.load(Ordering::Relaxed) as u64
}

fn baseline_memory(keys: usize) {
    let mut store = BaselineStore::in_memory();
    let before = heap_bytes();
    let started = Instant::now();
    {
        let mut tenant = store.tenant("bench");
        for i in 0..keys {
            // AMI-shaped keys: 21 bytes, like ami-0123456789abcdef0.
            let key = format!("ami-{i:017x}");
            tenant.observe("ec2-unseen-ami", 0, &[(&key, 1_700_000_000_000 + i as i64)]);
        }
    }
    let insert = started.elapsed().as_secs_f64();
    let after = heap_bytes();
    let probes = 1_000_000.min(keys);
    let started = Instant::now();
    {
        let mut tenant = store.tenant("bench");
        for i in 0..probes {
            let key = format!("ami-{:017x}", (i * 7919) % keys);
            tenant.observe("ec2-unseen-ami", 0, &[(&key, 1_800_000_000_000)]);
        }
    }
    let lookup = started.elapsed().as_secs_f64();
    println!(
        "\n[baseline] {keys} keys of 21 bytes: {:.0} heap bytes per key (target <= 128), insert {:.0} ns/key, observe of a known key {:.0} ns",
        (after.saturating_sub(before)) as f64 / keys as f64,
        insert * 1e9 / keys as f64,
        lookup * 1e9 / probes as f64
    );
}

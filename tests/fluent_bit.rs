//! The Fluent Bit plugin (`guest/fluent-bit/`): the detections as a core `wasm32-wasip1`
//! module, driven here with wasmtime exactly as Fluent Bit's `filter_wasm` drives it
//! (`event_format json`): the tag and the record are copied into the module with its
//! exported `malloc`, NUL-terminated, the filter function is called with their addresses,
//! lengths and the record time, the NUL-terminated JSON it returns replaces the record,
//! and both copies are released with the module's `free`. One instance lives for a whole
//! stream, as in Fluent Bit 4.1.2 and later. WASI gives it one directory, as the
//! accessible path `.`, and nothing else.
//!
//! The plugin is built once per test process with `cargo build -p minewatch-fluent-bit
//! --target wasm32-wasip1 --profile guest` into `target/fluent-bit-plugin`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;
use wasmtime::{Config, Engine, Linker, Memory, Module, Store, TypedFunc};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::node_host::host_alerts;
use crate::util::{command, data, generate_scenario, setup};

/// The field the plugin adds to a record that triggers detections.
const ALERTS: &str = "minewatch_alerts";
/// The filter function, as `function_name` names it in Fluent Bit's configuration.
const FUNCTION: &str = "minewatch_filter";

/// The repository root.
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The compiled plugin, built once per test process.
fn plugin_module() -> &'static (Engine, Module) {
    static MODULE: OnceLock<Result<(Engine, Module), String>> = OnceLock::new();
    match MODULE.get_or_init(|| load(plugin_wasm())) {
        Ok(module) => module,
        Err(error) => panic!("{error}"),
    }
}

/// The plugin's `.wasm` file, built once per test process.
pub fn plugin_wasm() -> &'static Path {
    static WASM: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match WASM.get_or_init(build) {
        Ok(wasm) => wasm,
        Err(error) => panic!("{error}"),
    }
}

fn build() -> Result<PathBuf, String> {
    let target_dir = repo().join("target/fluent-bit-plugin");
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(repo())
        .args([
            "build",
            "-p",
            "minewatch-fluent-bit",
            "--target",
            "wasm32-wasip1",
        ])
        .args(["--profile", "guest"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS");
    if std::env::var_os("CI").is_some() {
        cargo.env("RUSTFLAGS", "-D warnings");
    }
    let out = cargo
        .output()
        .map_err(|e| format!("cannot run cargo to build the Fluent Bit plugin: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the Fluent Bit plugin failed (is the wasm32-wasip1 target installed? \
             run `rustup target add wasm32-wasip1`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(target_dir.join("wasm32-wasip1/guest/minewatch_fluent_bit.wasm"))
}

fn load(wasm: &Path) -> Result<(Engine, Module), String> {
    // Fluent Bit's WAMR runs the module without SIMD; so must this engine.
    let mut config = Config::new();
    config.wasm_simd(false).wasm_relaxed_simd(false);
    let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
    let module = Module::from_file(&engine, wasm)
        .map_err(|e| format!("{} does not load without SIMD: {e:#}", wasm.display()))?;
    Ok((engine, module))
}

/// One instance of the plugin, as one Fluent Bit `filter_wasm` keeps it.
struct Plugin {
    store: Store<WasiP1Ctx>,
    memory: Memory,
    malloc: TypedFunc<u32, u32>,
    free: TypedFunc<u32, ()>,
    filter: TypedFunc<(u32, u32, u32, u32, u32, u32), u32>,
    stderr: MemoryOutputPipe,
}

impl Plugin {
    /// A fresh instance whose only accessible path is `dir`, as `.`.
    fn new(dir: &Path) -> Plugin {
        let (engine, module) = plugin_module();
        let stderr = MemoryOutputPipe::new(1 << 20);
        let wasi = WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .preopened_dir(dir, ".", FsPerms::ReadOnly)
            .unwrap()
            .build_p1();
        let mut linker = Linker::new(engine);
        p1::add_to_linker_sync(&mut linker, |wasi| wasi).unwrap();
        let mut store = Store::new(engine, wasi);
        let instance = linker.instantiate(&mut store, module).unwrap();
        Plugin {
            memory: instance.get_memory(&mut store, "memory").unwrap(),
            malloc: instance.get_typed_func(&mut store, "malloc").unwrap(),
            free: instance.get_typed_func(&mut store, "free").unwrap(),
            filter: instance.get_typed_func(&mut store, FUNCTION).unwrap(),
            store,
            stderr,
        }
    }

    /// Copies `bytes` and a NUL into the module's memory, as Fluent Bit does.
    fn copy_in(&mut self, bytes: &[u8]) -> u32 {
        let address = self
            .malloc
            .call(&mut self.store, bytes.len() as u32 + 1)
            .unwrap();
        assert_ne!(address, 0, "the plugin's malloc failed");
        let at = address as usize;
        let memory = self.memory.data_mut(&mut self.store);
        memory[at..at + bytes.len()].copy_from_slice(bytes);
        memory[at + bytes.len()] = 0;
        address
    }

    /// Filters one record; returns what replaces it.
    fn call(&mut self, tag: &str, record: &[u8]) -> Vec<u8> {
        let tag_at = self.copy_in(tag.as_bytes());
        let record_at = self.copy_in(record);
        let args = (
            tag_at,
            tag.len() as u32,
            1_772_445_600,
            0,
            record_at,
            record.len() as u32,
        );
        let result = match self.filter.call(&mut self.store, args) {
            Ok(result) => result as usize,
            Err(trap) => panic!(
                "the filter trapped on {}: {trap:#}\nstderr: {}",
                String::from_utf8_lossy(record),
                self.stderr()
            ),
        };
        let memory = self.memory.data(&self.store);
        let length = memory[result..]
            .iter()
            .position(|&b| b == 0)
            .expect("the result is NUL-terminated");
        let out = memory[result..result + length].to_vec();
        self.free.call(&mut self.store, tag_at).unwrap();
        self.free.call(&mut self.store, record_at).unwrap();
        out
    }

    /// Everything the plugin wrote to stderr so far.
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents()).into_owned()
    }

    /// Filters every line of an NDJSON text in order; returns the alerts added.
    fn alerts(&mut self, ndjson: &[u8]) -> Vec<Value> {
        ndjson
            .split(|&b| b == b'\n')
            .filter(|line| !line.trim_ascii().is_empty())
            .flat_map(|line| {
                let out = self.call("aws.cloudtrail", line);
                added_alerts(line, &out)
            })
            .collect()
    }
}

/// The alerts the plugin added to `record`, after checking that it changed nothing
/// else: the output is the record byte for byte, or the record with `,"minewatch_alerts":
/// [...]` before its closing brace.
fn added_alerts(record: &[u8], out: &[u8]) -> Vec<Value> {
    if out == record {
        return Vec::new();
    }
    let body = record.trim_ascii_end();
    let prefix = &body[..body.len() - 1];
    let field = format!(",\"{ALERTS}\":");
    assert!(
        out.starts_with(prefix) && out[prefix.len()..].starts_with(field.as_bytes()),
        "the plugin changed more than adding alerts:\nin:  {}\nout: {}",
        String::from_utf8_lossy(record),
        String::from_utf8_lossy(out)
    );
    let mut value: Value = serde_json::from_slice(out).expect("the output is JSON");
    let Some(Value::Array(alerts)) = value.as_object_mut().unwrap().remove(ALERTS) else {
        panic!("{ALERTS} is not a list: {}", String::from_utf8_lossy(out));
    };
    assert!(!alerts.is_empty(), "an empty {ALERTS} was added");
    let original: Value = serde_json::from_slice(record).unwrap();
    assert_eq!(value, original, "the record itself changed");
    alerts
}

/// The conformance cases' event files.
fn conformance_cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(data("conformance"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.join("events.ndjson"))
        .collect();
    cases.sort();
    assert_eq!(cases.len(), 8, "the suite has eight cases: {cases:?}");
    cases
}

#[test]
fn the_module_has_fluent_bits_abi_and_needs_only_wasi() {
    let (_, module) = plugin_module();
    let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
    for name in ["memory", "malloc", "free", FUNCTION] {
        assert!(
            exports.iter().any(|e| e == name),
            "no export {name}: {exports:?}"
        );
    }
    for import in module.imports() {
        assert_eq!(
            import.module(),
            "wasi_snapshot_preview1",
            "{}",
            import.name()
        );
    }
}

#[test]
fn every_conformance_case_gives_the_rust_hosts_alerts() {
    let (dir, _) = setup();
    for events in conformance_cases() {
        let expected = host_alerts(&dir, &[], &events);
        assert!(!expected.is_empty(), "{}: no alerts", events.display());
        let mut plugin = Plugin::new(dir.path());
        let got = plugin.alerts(&std::fs::read(&events).unwrap());
        assert_eq!(
            got,
            expected,
            "{}: plugin and host disagree",
            events.display()
        );
        assert!(
            plugin
                .stderr()
                .contains("detections ready: tenant \"default\", no seed."),
            "{}",
            plugin.stderr()
        );
    }
}

#[test]
fn the_generated_scenario_gives_the_rust_hosts_alerts() {
    let (dir, _) = setup();
    generate_scenario(&dir, 7, "s.ndjson");
    let scenario = dir.join("s.ndjson");
    let expected = host_alerts(&dir, &[], &scenario);
    let detections: std::collections::BTreeSet<&str> = expected
        .iter()
        .map(|a| a["detection"].as_str().unwrap())
        .collect();
    assert_eq!(detections.len(), 6, "every detection fires: {detections:?}");
    let mut plugin = Plugin::new(dir.path());
    assert_eq!(plugin.alerts(&std::fs::read(&scenario).unwrap()), expected);
}

#[test]
fn records_without_alerts_come_back_byte_for_byte() {
    let (dir, _) = setup();
    let mut plugin = Plugin::new(dir.path());
    let events = std::fs::read_to_string(&conformance_cases()[0]).unwrap();
    let launch: Value = serde_json::from_str(events.lines().next().unwrap()).unwrap();
    // A subscribed launch before any learning, pretty-printed (not how serde_json writes it).
    let pretty = serde_json::to_string_pretty(&launch).unwrap();
    // Other CloudTrail calls, as public trails record them.
    let other: Value = serde_json::from_slice(
        &std::fs::read(data(
            "cloudtrail/traildiscover/events/EC2/DescribeVolumes.json.cloudtrail",
        ))
        .unwrap(),
    )
    .unwrap();
    let other = format!("{}  ", other[0]);
    // A failed launch (DryRun) is subscribed but never alerts.
    let mut dry = launch.clone();
    dry["errorCode"] = "Client.DryRunOperation".into();
    dry["awsRegion"] = "ap-south-2".into();
    let dry = dry.to_string();
    for record in [pretty.as_str(), other.as_str(), dry.as_str()] {
        assert_eq!(
            String::from_utf8(plugin.call("aws.cloudtrail", record.as_bytes())).unwrap(),
            record
        );
    }
}

#[test]
fn malformed_input_comes_back_unchanged_without_a_trap() {
    let (dir, _) = setup();
    let mut plugin = Plugin::new(dir.path());
    let deep = format!(
        "{}\"RunInstances\"{}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let garbage: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json RunInstances".to_vec(),
        br#"{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances""#.to_vec(),
        br#"["RunInstances"]"#.to_vec(),
        br#""RunInstances""#.to_vec(),
        b"42".to_vec(),
        b"{\"eventName\":\"RunInstances\",\"x\":\"\xff\xfe\"}".to_vec(),
        deep.into_bytes(),
        br#"{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances"}"#.to_vec(),
        br#"{"eventSource":"ec2.amazonaws.com","eventName":"Run\u0049nstances","eventTime":5}"#
            .to_vec(),
        br#"{"eventSource":"ec2.amazonaws.com","eventName":"RunInstances","eventTime":"soon","awsRegion":["x"]}"#
            .to_vec(),
    ];
    for record in &garbage {
        assert_eq!(
            plugin.call("aws.cloudtrail", record),
            *record,
            "{}",
            String::from_utf8_lossy(record)
        );
    }
    // The instance is unharmed: a case after the garbage still gives the host's alerts.
    let events = &conformance_cases()[0];
    let expected = host_alerts(&dir, &[], events);
    assert_eq!(plugin.alerts(&std::fs::read(events).unwrap()), expected);
    assert!(!plugin.stderr().contains("trapped"), "{}", plugin.stderr());
}

#[test]
fn a_seed_export_makes_learned_keys_known() {
    let (dir, _) = setup();
    let events = data("conformance/learning-gate/events.ndjson");
    let unseeded = host_alerts(&dir, &[], &events);
    assert!(!unseeded.is_empty());
    // Learn the same events into a state directory, export it, and seed the plugin with it.
    command(&dir)
        .args(["baseline", "build", "--state", "st", "--input"])
        .args([&events])
        .ok(&dir);
    command(&dir)
        .args([
            "baseline",
            "export",
            "--state",
            "st",
            "--output",
            "seed.ndjson",
        ])
        .ok(&dir);
    let exported = std::fs::read_to_string(dir.join("seed.ndjson")).unwrap();
    dir.write("minewatch-filter.json", r#"{"seed": "seed.ndjson"}"#);
    let mut plugin = Plugin::new(dir.path());
    let got = plugin.alerts(&std::fs::read(&events).unwrap());
    let entries = exported.lines().count();
    assert!(
        plugin
            .stderr()
            .contains(&format!("{entries} baseline entries from seed.ndjson")),
        "{}",
        plugin.stderr()
    );
    // Exactly what the host says over the learned state, and none of the first run's keys.
    let expected = {
        let out = command(&dir)
            .args(["run", "--state", "st", "--input"])
            .args([&events])
            .ok(&dir);
        crate::util::alerts(&out.stdout)
    };
    assert_eq!(got, expected);
    for alert in &unseeded {
        let key = (&alert["detection"], &alert["key"]);
        assert!(
            !got.iter().any(|a| (&a["detection"], &a["key"]) == key),
            "{key:?} was in the seed and still alerted"
        );
    }
}

#[test]
fn the_settings_file_sets_tenant_and_detector_settings() {
    let (dir, _) = setup();
    let events = data("conformance/role-sessions/events.ndjson");
    dir.write(
        "minewatch-filter.json",
        r#"{"tenant": "acme", "detector": {"identity": "arn"}}"#,
    );
    dir.write(
        "minewatch.toml",
        "tenant = \"acme\"\n[detector]\nidentity = \"arn\"\n",
    );
    let expected = host_alerts(&dir, &["--config", "minewatch.toml"], &events);
    assert!(expected.iter().all(|a| a["tenant"] == "acme"));
    let mut plugin = Plugin::new(dir.path());
    assert_eq!(plugin.alerts(&std::fs::read(&events).unwrap()), expected);
    // The same events with the default identity give other alerts: the setting took.
    let default_identity = host_alerts(&dir, &[], &events);
    assert_ne!(
        crate::util::pairs(&expected),
        crate::util::pairs(&default_identity)
    );
}

#[test]
fn a_bad_settings_file_turns_detection_off_and_says_why() {
    let (dir, _) = setup();
    dir.write(
        "minewatch-filter.json",
        r#"{"detector": {"identiti": "arn"}}"#,
    );
    let mut plugin = Plugin::new(dir.path());
    let events = std::fs::read(&conformance_cases()[0]).unwrap();
    assert_eq!(plugin.alerts(&events), Vec::<Value>::new());
    let stderr = plugin.stderr();
    assert!(
        stderr.contains("minewatch-filter.json: detector settings:")
            && stderr.contains("identiti")
            && stderr.contains("detection is off"),
        "{stderr}"
    );
}

#[test]
fn the_examples_settings_file_loads() {
    let example = repo().join("examples/fluent-bit-filter");
    let mut plugin = Plugin::new(&example);
    let events = std::fs::read(&conformance_cases()[0]).unwrap();
    assert!(!plugin.alerts(&events).is_empty());
    assert!(
        plugin
            .stderr()
            .contains("detections ready: tenant \"default\", no seed."),
        "{}",
        plugin.stderr()
    );
}

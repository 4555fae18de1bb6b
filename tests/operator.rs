//! What an operator trips over: a lossless transform mode, config checks that tell the
//! whole truth and change nothing, `--memory` that writes nothing, mistakes named,
//! errors a user can act on, idempotent imports, logs as configured.

use std::collections::BTreeSet;

use minewatch_generator::{Layout, Spec};
use serde_json::Value;

use crate::util::{Server, alerts, command, scenario_in, setup, write_scenario};

/// The generated 30-day scenario with the generator's defaults (seed 7, 1,000 events a day).
fn thirty_days() -> Spec {
    Spec {
        days: 30,
        ..Spec::default()
    }
}

#[test]
fn passthrough_writes_every_line_it_reads_byte_for_byte() {
    let (dir, _) = setup();
    let want = scenario_in(&dir, Layout::NdjsonWithGarbage, "dirty.ndjson");
    let out = command(&dir)
        .args([
            "run",
            "--memory",
            "--passthrough",
            "--input",
            "dirty.ndjson",
        ])
        .ok(&dir);
    let input = std::fs::read(dir.join("dirty.ndjson")).unwrap();
    let read: Vec<&[u8]> = input
        .strip_suffix(b"\n")
        .unwrap()
        .split(|&b| b == b'\n')
        .collect();
    let written: Vec<&[u8]> = out
        .stdout
        .strip_suffix(b"\n")
        .unwrap()
        .split(|&b| b == b'\n')
        .collect();
    assert_eq!(written.len(), read.len());
    let mut enriched = Vec::new();
    for (line, (before, after)) in read.iter().zip(&written).enumerate() {
        if before == after {
            continue;
        }
        // Only alerting lines change: the same bytes, the alerts appended as last key.
        let body = before.strip_suffix(b"}").unwrap();
        assert!(after.starts_with(body), "line {} changed", line + 1);
        let value: Value = serde_json::from_slice(after).unwrap();
        enriched.extend(value["minewatch_alerts"].as_array().unwrap().clone());
    }
    let got: BTreeSet<(String, String)> = enriched
        .iter()
        .map(|a| {
            (
                a["detection"].as_str().unwrap().into(),
                a["key"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn passthrough_keeps_wrappers_and_documents_whole() {
    let (dir, _) = setup();
    scenario_in(&dir, Layout::Ndjson, "scenario.ndjson");
    // Each record under Fluent Bit's `log`, beside the fields the shipper adds.
    let wrapped: String = std::fs::read_to_string(dir.join("scenario.ndjson"))
        .unwrap()
        .lines()
        .map(|l| {
            format!(
                "{}\n",
                serde_json::json!({"log": l, "stream": "stdout", "time": "2026-01-01T00:00:00Z"})
            )
        })
        .collect();
    dir.write("wrapped.ndjson", &wrapped);
    let out = command(&dir)
        .args([
            "run",
            "--memory",
            "--passthrough",
            "--input",
            "wrapped.ndjson",
        ])
        .ok(&dir);
    let lines: Vec<Value> = out
        .stdout
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert_eq!(lines.len(), wrapped.lines().count());
    assert!(
        lines
            .iter()
            .all(|l| l["stream"] == "stdout" && l["log"].is_string())
    );
    let tagged = lines
        .iter()
        .filter(|l| l.get("minewatch_alerts").is_some())
        .count();
    assert!(tagged >= 5, "{tagged}");
    // A pretty-printed delivery file: one line, keys in their order.
    let pretty = "{\n  \"Records\": [\n    {\"eventVersion\": \"1.09\", \"eventSource\": \"s3.amazonaws.com\",\n     \"eventName\": \"GetObject\"}\n  ]\n}\n";
    dir.write("pretty.json", pretty);
    let out = command(&dir)
        .args(["run", "--memory", "--passthrough", "--input", "pretty.json"])
        .ok(&dir);
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "{\"Records\":[{\"eventVersion\":\"1.09\",\"eventSource\":\"s3.amazonaws.com\",\"eventName\":\"GetObject\"}]}\n"
    );
}

#[test]
fn validate_reports_every_problem_and_creates_nothing() {
    let (dir, mut cmd) = setup();
    let config = dir.write(
        "bad.toml",
        "batch_events = 0\nstate_dir = \"state/deeper\"\n\
         [[outputs]]\ntype = \"http\"\nname = \"siem\"\nendpoint = \"not a url\"\n\
         [[outputs]]\ntype = \"http\"\nname = \"siem\"\nendpoint = \"ftp://example.com/x\"\n\
         [[tenants]]\nname = \"bad name!\"\n",
    );
    let out = cmd
        .args(["validate", "--config"])
        .args([&config])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for problem in [
        "batch_events must be at least 1",
        "two outputs are named \"siem\"",
        "tenant name \"bad name!\"",
        "\"not a url\" is not a URL",
        "\"ftp://example.com/x\" must start with http:// or https://",
    ] {
        assert!(
            stderr.contains(problem),
            "{problem} missing from:\n{stderr}"
        );
    }
    assert!(
        !dir.join("state").exists(),
        "validate created the state directory"
    );
    assert!(!dir.join("minewatch-state").exists());
}

#[test]
fn validate_works_beside_a_serve_holding_the_store_and_readers_name_the_holder() {
    let (dir, _) = setup();
    let config = dir.write("minewatch.toml", "state_dir = \"held\"\n");
    let server = Server::start(
        &dir,
        &[
            "--http",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let out = command(&dir)
        .args(["validate", "--config"])
        .args([&config])
        .ok(&dir);
    assert!(String::from_utf8_lossy(&out.stderr).contains("is valid"));
    let shown = command(&dir)
        .args(["baseline", "show", "--config"])
        .args([&config])
        .assert_exit(&dir, 1);
    assert!(
        String::from_utf8_lossy(&shown.stderr).contains("held by another minewatch process"),
        "{}",
        String::from_utf8_lossy(&shown.stderr)
    );
    server.stop();
}

#[test]
fn memory_keeps_nothing_on_disk_and_a_spool_needs_a_directory() {
    let (dir, _) = setup();
    let output =
        "[[outputs]]\ntype = \"http\"\nname = \"siem\"\nendpoint = \"http://127.0.0.1:9/\"\n";
    let without = dir.write("without.toml", format!("memory = true\n{output}"));
    let out = command(&dir)
        .args(["run", "--config"])
        .args([&without])
        .stdin("")
        .assert_exit(&dir, 1);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("spools undelivered alerts on disk, but memory = true"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let with = dir.write(
        "with.toml",
        format!("memory = true\nspool_dir = \"spool\"\n{output}"),
    );
    command(&dir)
        .args(["run", "--config"])
        .args([&with])
        .stdin("")
        .ok(&dir);
    assert!(dir.join("spool/siem").is_dir());
    assert!(
        !dir.join("minewatch-state").exists(),
        "memory wrote a state directory"
    );
}

#[test]
fn mistakes_are_named() {
    let (dir, _) = setup();
    let tenants = dir.write("tenants.toml", "[[tenants]]\nname = \"gpu\"\n");
    let out = command(&dir)
        .args(["run", "--memory", "--tenant", "gpuu", "--config"])
        .args([&tenants])
        .stdin("")
        .assert_exit(&dir, 1);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("--tenant gpuu: no such tenant in the configuration (tenants: default, gpu)")
    );
    let shadow = dir.write("shadow.toml", "[[tenants]]\nname = \"default\"\n");
    let out = command(&dir)
        .args(["run", "--memory", "--config"])
        .args([&shadow])
        .stdin("")
        .assert_exit(&dir, 1);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("[[tenants]] name = \"default\" is the default tenant")
    );
    let routed = dir.write("routed.toml", "route_field = \"recipientAccountId\"\n");
    let out = command(&dir)
        .args(["run", "--memory", "--config"])
        .args([&routed])
        .stdin("")
        .ok(&dir);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("route_field and route_values apply to serve only")
    );
    let out = command(&dir)
        .args(["baseline", "export", "--state", "nowhere"])
        .assert_exit(&dir, 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no baselines in nowhere"));
    assert!(!dir.join("nowhere").exists());
    write_scenario(&dir, &thirty_days(), Layout::Ndjson, "s.ndjson");
    command(&dir)
        .args(["baseline", "build", "--state", "st", "--input", "s.ndjson"])
        .ok(&dir);
    let out = command(&dir)
        .args(["baseline", "export", "--state", "st", "--tenant", "acme"])
        .assert_exit(&dir, 1);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no baselines of tenant \"acme\" (tenants with baselines: default)")
    );
}

#[test]
fn errors_say_what_to_change() {
    let (dir, _) = setup();
    for (table, message) in [
        (
            "scope = \"bogus\"",
            "minewatch: detector.scope: unknown variant `bogus`, expected `global` or `account`\n",
        ),
        (
            "[detector.launch_spike]\nk = \"x\"",
            "minewatch: detector.launch_spike.k: invalid type: string \"x\", expected f64\n",
        ),
    ] {
        let config = dir.write("d.toml", format!("[detector]\n{table}\n"));
        let out = command(&dir)
            .args(["run", "--memory", "--config"])
            .args([&config])
            .stdin("")
            .assert_exit(&dir, 1);
        assert_eq!(String::from_utf8_lossy(&out.stderr), message);
    }
    dir.write("text.wasm", "hello");
    dir.write("core.wasm", b"\0asm\x01\0\0\0");
    for (file, says) in [
        ("text.wasm", "not a WebAssembly file"),
        (
            "core.wasm",
            "a core WebAssembly module, not a component: build the detector with `cargo build --target wasm32-wasip2",
        ),
    ] {
        let out = command(&dir)
            .args(["run", "--memory", "--component", file])
            .stdin("")
            .assert_exit(&dir, 1);
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn importing_an_export_twice_changes_nothing() {
    let (dir, _) = setup();
    write_scenario(&dir, &thirty_days(), Layout::Ndjson, "s.ndjson");
    command(&dir)
        .args(["baseline", "build", "--state", "a", "--input", "s.ndjson"])
        .ok(&dir);
    let export = |state: &str| {
        let mut lines: Vec<String> = String::from_utf8(
            command(&dir)
                .args(["baseline", "export", "--state", state])
                .ok(&dir)
                .stdout,
        )
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
        lines.sort();
        lines
    };
    let original = export("a");
    dir.write("a.ndjson", original.join("\n") + "\n");
    for _ in 0..2 {
        command(&dir)
            .args(["baseline", "import", "--state", "b", "--input", "a.ndjson"])
            .ok(&dir);
    }
    assert_eq!(export("b"), original);
}

#[test]
fn json_logs_cover_the_summary_and_a_bad_log_filter_is_reported() {
    let (dir, _) = setup();
    write_scenario(&dir, &thirty_days(), Layout::Ndjson, "s.ndjson");
    let out = command(&dir)
        .args([
            "run",
            "--log-format",
            "json",
            "--memory",
            "--input",
            "s.ndjson",
        ])
        .env("MINEWATCH_LOG", "debug,[")
        .ok(&dir);
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["fields"]["MINEWATCH_LOG"] == "debug,[")
    );
    let summary = lines
        .iter()
        .find(|l| l["fields"]["message"] == "Finished.")
        .unwrap();
    let counts: Value =
        serde_json::from_str(summary["fields"]["summary"].as_str().unwrap()).unwrap();
    assert!(counts["records"].as_u64().unwrap() > 1000);
    assert_eq!(
        alerts(&out.stdout).len() as u64,
        counts["alerts"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum::<u64>()
    );
}

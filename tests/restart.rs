//! Baselines are durable: a restart changes nothing, and kill -9 loses no learned key.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::util::{alerts, command, data, generate_scenario, launch, ndjson, setup};

#[test]
fn two_halves_with_a_restart_give_the_alerts_of_one_run() {
    let (dir, _) = setup();
    generate_scenario(&dir, 7, "all.ndjson");
    let text = std::fs::read_to_string(dir.join("all.ndjson")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let (first, second) = lines.split_at(lines.len() / 2);
    dir.write("first.ndjson", first.join("\n") + "\n");
    dir.write("second.ndjson", second.join("\n") + "\n");

    let run = |state: &str, input: &str| {
        let mut cmd = command(&dir);
        cmd.args(["run", "--state"])
            .args([dir.join(state)])
            .args(["--input"])
            .args([dir.join(input)])
            .ok(&dir)
            .stdout
    };
    let whole = run("one", "all.ndjson");
    let mut halves = run("two", "first.ndjson");
    halves.extend(run("two", "second.ndjson"));
    assert!(alerts(&whole).len() >= 5);
    assert_eq!(
        String::from_utf8(halves).unwrap(),
        String::from_utf8(whole).unwrap()
    );
}

#[test]
fn a_key_learned_before_kill_9_is_not_new_after_it() {
    let (dir, _) = setup();
    let config = dir.write("fast.toml", "idle_flush_ms = 50\n");
    let history = std::fs::read_to_string(data("conformance/learning-gate/events.ndjson")).unwrap();
    let stranger = launch(
        "2026-03-25T10:00:00Z",
        "arn:aws:iam::111122223333:user/mallory",
        "sa-east-1",
        "ami-0aaaaaaaaaaaa0001",
        "t3.micro",
        "first-visit",
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_minewatch"))
        .current_dir(dir.path())
        .args([
            "run",
            "--state",
            "state",
            "--output",
            "alerts.ndjson",
            "--config",
        ])
        .arg(&config)
        .env("MINEWATCH_LOG", "minewatch=debug")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(history.as_bytes()).unwrap();
    stdin.write_all(ndjson(&[stranger]).as_bytes()).unwrap();
    stdin.flush().unwrap();
    // Wait (bounded) until the stranger's alerts are written and the baselines committed.
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no commit logged: {seen:#?}"));
        let committed = line.contains("Committed baselines.");
        seen.push(line);
        if committed
            && std::fs::read_to_string(dir.join("alerts.ndjson"))
                .unwrap_or_default()
                .contains("sa-east-1")
        {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(stdin);

    let first = alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap());
    assert!(
        first
            .iter()
            .any(|a| a["detection"] == "ec2-unseen-region" && a["key"] == "sa-east-1")
    );

    let again = launch(
        "2026-03-26T10:00:00Z",
        "arn:aws:iam::111122223333:user/mallory",
        "sa-east-1",
        "ami-0aaaaaaaaaaaa0001",
        "t3.micro",
        "second-visit",
    );
    let mut cmd = command(&dir);
    let out = cmd
        .args(["run", "--state"])
        .args([dir.join("state")])
        .stdin(ndjson(&[again]))
        .ok(&dir);
    assert_eq!(
        alerts(&out.stdout),
        Vec::<serde_json::Value>::new(),
        "sa-east-1 and mallory survived kill -9"
    );
}

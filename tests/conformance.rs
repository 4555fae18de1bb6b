//! Runs every case of `tests/data/conformance` (a copy of the shared conformance suite).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::{data, pairs, setup};

fn check_case(name: &str, engine: &str) {
    let case = data("conformance").join(name);
    let expected: Value =
        serde_json::from_slice(&std::fs::read(case.join("expected.json")).unwrap()).unwrap();
    let (dir, mut cmd) = setup();
    let out = cmd
        .args(["run", "--memory", "--engine", engine, "--input"])
        .args([case.join("events.ndjson")])
        .ok(&dir);
    let got = pairs(&crate::util::alerts(&out.stdout));
    let pair = |v: &Value, key: &str| {
        (
            v["detection"].as_str().unwrap().to_string(),
            v[key].as_str().unwrap().to_string(),
        )
    };
    for want in expected["expect"].as_array().unwrap() {
        let want = pair(want, "key");
        assert!(
            got.contains(&want),
            "{name} ({engine}): missing {want:?}; got {got:#?}"
        );
    }
    for detection in expected["exact_for"].as_array().unwrap() {
        let detection = detection.as_str().unwrap();
        let mut raised: Vec<_> = got
            .iter()
            .filter(|(d, _)| d == detection)
            .cloned()
            .collect();
        let mut wanted: Vec<_> = expected["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| pair(v, "key"))
            .filter(|(d, _)| d == detection)
            .collect();
        raised.sort();
        wanted.sort();
        assert_eq!(raised, wanted, "{name} ({engine}): alerts of {detection}");
    }
    for forbidden in expected["forbid"].as_array().unwrap() {
        let (detection, part) = pair(forbidden, "key_contains");
        assert!(
            !got.iter()
                .any(|(d, k)| *d == detection && k.contains(&part)),
            "{name} ({engine}): forbidden {detection} containing {part}; got {got:#?}"
        );
    }
}

fn cases() -> BTreeSet<String> {
    std::fs::read_dir(data("conformance"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn every_case_passes_in_the_component() {
    let cases = cases();
    assert_eq!(cases.len(), 8, "the suite has eight cases: {cases:?}");
    for case in &cases {
        check_case(case, "component");
    }
}

#[test]
fn every_case_passes_in_the_native_build() {
    for case in &cases() {
        check_case(case, "native");
    }
}

#[test]
fn the_copy_matches_the_shared_suite_when_present() {
    let Some(shared) = crate::util::shared("conformance") else {
        return;
    };
    for case in cases() {
        for file in ["events.ndjson", "expected.json"] {
            let ours = std::fs::read(data("conformance").join(&case).join(file)).unwrap();
            let theirs = std::fs::read(shared.join(&case).join(file)).unwrap();
            assert!(
                ours == theirs,
                "tests/data/conformance/{case}/{file} differs from shared/"
            );
        }
    }
}

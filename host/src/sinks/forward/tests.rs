//! Tests of the forward output's pieces.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::*;

#[test]
fn chunk_ids_are_16_random_bytes_in_base64() {
    let id = chunk_id();
    assert_eq!(id.len(), 24);
    assert_eq!(STANDARD.decode(&id).unwrap().len(), 16);
    assert_ne!(chunk_id(), chunk_id());
}

#[test]
fn messages_are_forward_mode_with_event_times() {
    let config: ForwardConfig =
        serde_json::from_value(serde_json::json!({"address": "127.0.0.1:24224"})).unwrap();
    let delivery = config.delivery().unwrap();
    let bytes = delivery
        .message(
            &[
                br#"{"time":"2024-12-16T18:41:07.250Z","n":1,"f":1.5,"neg":-2}"#,
                b"[1]",
            ],
            "abc",
        )
        .unwrap();
    let message = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
    let parts = message.as_array().unwrap();
    assert_eq!(parts[0].as_str(), Some("minewatch.alert"));
    let entries = parts[1].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let first = entries[0].as_array().unwrap();
    let Pack::Ext(0, data) = &first[0] else {
        panic!("not an EventTime: {}", first[0]);
    };
    assert_eq!(data[..4], 1_734_374_467u32.to_be_bytes());
    assert_eq!(data[4..], 250_000_000u32.to_be_bytes());
    assert_eq!(map_get(&first[1], "n").and_then(Pack::as_u64), Some(1));
    assert_eq!(map_get(&first[1], "f").and_then(Pack::as_f64), Some(1.5));
    assert_eq!(map_get(&first[1], "neg").and_then(Pack::as_i64), Some(-2));
    let second = entries[1].as_array().unwrap();
    assert!(map_get(&second[1], "message").is_some());
    assert_eq!(
        map_get(&parts[2], "chunk").and_then(Pack::as_str),
        Some("abc")
    );
    assert_eq!(map_get(&parts[2], "size").and_then(Pack::as_u64), Some(2));
}

#[test]
fn settings_are_checked() {
    for (json, needle) in [
        (serde_json::json!({"address": "localhost"}), "host:port"),
        (serde_json::json!({"address": "h:1", "tag": ""}), "tag"),
        (
            serde_json::json!({"address": "h:1", "ack_timeout_secs": 0}),
            "ack_timeout_secs",
        ),
        (
            serde_json::json!({"address": "h:1", "username": "u"}),
            "password",
        ),
        (
            serde_json::json!({"address": "h:1", "username": "u", "password": "p"}),
            "shared_key",
        ),
        (
            serde_json::json!({"address": "h:1", "ca_file": "ca.pem"}),
            "need tls = true",
        ),
        (
            serde_json::json!({"address": "h:1", "tls": true, "ca_file": "/nonexistent/ca.pem"}),
            "ca_file /nonexistent/ca.pem: cannot read it",
        ),
        (
            serde_json::json!({"address": "h:1", "tls": true, "tls_server_name": "no such name"}),
            "tls_server_name",
        ),
    ] {
        let config: ForwardConfig = serde_json::from_value(json).unwrap();
        let error = format!("{:#}", config.delivery().err().unwrap());
        assert!(error.contains(needle), "{error}");
    }
    let config: ForwardConfig =
        serde_json::from_value(serde_json::json!({"address": "h:1", "shared_key": "k3y"})).unwrap();
    assert!(!format!("{config:?}").contains("k3y"));
}

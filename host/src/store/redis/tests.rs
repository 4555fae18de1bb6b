use minewatch_guest::Sighting;

use super::text::{escape, parse_sighting, unescape};
use super::{RedisConfig, RedisStore};

#[test]
fn names_cannot_forge_another_tenants_keys() {
    let store = RedisStore::new(RedisConfig::default()).unwrap();
    let forged = store.key("a", "set", "x:b:set:y");
    let other = store.key("a:set:x", "set", "b:set:y");
    assert_ne!(forged, other);
    assert_eq!(forged, "minewatch:a:set:x%3Ab%3Aset%3Ay");
    assert_eq!(escape("50%|"), "50%25%7C");
    for name in ["x:b:set:y", "50%3A|", "%%:"] {
        assert_eq!(unescape(&escape(name)), name);
    }
}

#[test]
fn tls_files_need_a_rediss_url_and_must_load() {
    let plain = RedisConfig {
        ca_file: Some("ca.pem".into()),
        ..RedisConfig::default()
    };
    let error = format!("{:#}", RedisStore::new(plain).unwrap_err());
    assert!(error.contains("need a rediss:// URL"), "{error}");
    let missing = RedisConfig {
        url: "rediss://redis.internal:6380/0".into(),
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..RedisConfig::default()
    };
    let error = format!("{:#}", RedisStore::new(missing).unwrap_err());
    assert!(
        error.contains("[store.redis]") && error.contains("ca_file /nonexistent/ca.pem"),
        "{error}"
    );
}

#[test]
fn sightings_round_trip_through_their_text() {
    assert_eq!(parse_sighting("").unwrap(), None);
    assert_eq!(
        parse_sighting("-5,1700000000000,3").unwrap(),
        Some(Sighting {
            first_seen: -5,
            last_seen: 1_700_000_000_000,
            count: 3
        })
    );
    assert!(parse_sighting("1,2").is_err());
}

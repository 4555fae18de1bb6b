//! CloudTrail `eventTime` parsing.
//!
//! Real trails write `2026-03-02T10:00:00Z`; exports and fixtures also carry RFC 3339
//! offsets, fractional seconds, and a space instead of `T` with or without a zone
//! (taken as UTC). Anything else is not a time.

use chrono::{DateTime, NaiveDateTime};

use crate::model::Timestamp;

/// Parses an event time into milliseconds since the epoch, UTC.
pub fn parse_event_time(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    let naive = text.strip_suffix('Z').unwrap_or(text);
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(naive, format).ok())
        .map(|t| t.and_utc().timestamp_millis())
}

/// Formats a timestamp as RFC 3339 UTC with second precision (milliseconds when present).
pub fn format_time(time: Timestamp) -> String {
    match DateTime::from_timestamp_millis(time) {
        Some(t) if time % 1000 == 0 => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(t) => t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => time.to_string(),
    }
}

/// Formats a timestamp as a UTC date, for messages.
pub fn format_date(time: Timestamp) -> String {
    DateTime::from_timestamp_millis(time)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| time.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_found_in_real_data() {
        let z = parse_event_time("2024-12-16T18:41:07Z").unwrap();
        assert_eq!(z, 1_734_374_467_000);
        assert_eq!(parse_event_time("2024-12-16 18:41:07.000000000"), Some(z));
        assert_eq!(parse_event_time("2024-12-16 18:41:07"), Some(z));
        assert_eq!(parse_event_time("2024-12-16 18:41:07Z"), Some(z));
        assert_eq!(parse_event_time("2024-12-16T19:41:07+01:00"), Some(z));
        assert_eq!(parse_event_time("2024-12-16T18:41:07.250Z"), Some(z + 250));
    }

    #[test]
    fn rejects_placeholders() {
        for bad in [
            "redacted",
            "...",
            "",
            "20131102T010628Z",
            "2024-13-01T00:00:00Z",
        ] {
            assert_eq!(parse_event_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_rfc3339() {
        assert_eq!(format_time(1_734_374_467_000), "2024-12-16T18:41:07Z");
        assert_eq!(format_time(1_734_374_467_250), "2024-12-16T18:41:07.250Z");
        assert_eq!(format_date(1_734_374_467_000), "2024-12-16");
    }
}

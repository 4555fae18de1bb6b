//! How names and sightings are written in Redis: names percent-encoded (`%`, `:`, `|`)
//! so no name reaches another's keys, SCAN patterns glob-escaped, and a sighting as
//! `first,last,count` (ms, ms, sightings).

use anyhow::{Result, anyhow};
use minewatch_guest::Sighting;

/// Percent-encodes the characters that structure keys and journal marks.
pub(super) fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            ':' => out.push_str("%3A"),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape`].
pub(super) fn unescape(name: &str) -> String {
    name.replace("%3A", ":")
        .replace("%7C", "|")
        .replace("%25", "%")
}

/// Escapes the characters SCAN's glob pattern gives a meaning.
pub(super) fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `first,last,count`, or nothing for "".
pub(super) fn parse_sighting(text: &str) -> Result<Option<Sighting>> {
    if text.is_empty() {
        return Ok(None);
    }
    let mut parts = text.split(',');
    let mut next = || {
        parts
            .next()
            .ok_or_else(|| anyhow!("malformed sighting {text:?} in Redis"))
    };
    Ok(Some(Sighting {
        first_seen: next()?.parse()?,
        last_seen: next()?.parse()?,
        count: next()?.parse()?,
    }))
}

//! Writes no one waits an answer for, queued until the next round trip or the commit,
//! folded: one touch per set and key, one histogram call per series.

use hashbrown::HashMap;
use minewatch_guest::Timestamp;

use super::scripts::{SCRIPTS, Script};

/// Sightings of one cached key folded together: earliest, latest, how many.
type Touch = (Timestamp, Timestamp, u64);

/// Writes that wait for the next round trip, folded: one touch per set and key, one
/// histogram call per series.
#[derive(Default)]
pub(super) struct Queued {
    /// Set key → forget window and, per key, (earliest, latest, sightings).
    pub(super) touches: HashMap<String, (i64, HashMap<Box<str>, Touch>)>,
    /// Series key → journal and the changes' arguments (mark, bucket, previous,
    /// current), in order.
    pub(super) records: HashMap<String, (String, Vec<String>)>,
}

impl Queued {
    pub(super) fn is_empty(&self) -> bool {
        self.touches.is_empty() && self.records.is_empty()
    }

    /// The queued writes as script calls on `pipe`, answers ignored.
    pub(super) fn add_to(&self, pipe: &mut redis::Pipeline, shas: &[String; SCRIPTS]) {
        for (set, (forget, keys)) in &self.touches {
            let call = pipe
                .cmd("EVALSHA")
                .arg(&shas[Script::Touch as usize])
                .arg(0)
                .arg(set)
                .arg(forget);
            for (key, (earliest, latest, count)) in keys {
                call.arg(&**key).arg(earliest).arg(latest).arg(count);
            }
            call.ignore();
        }
        for (series, (journal, changes)) in &self.records {
            pipe.cmd("EVALSHA")
                .arg(&shas[Script::Record as usize])
                .arg(0)
                .arg(series)
                .arg(journal)
                .arg(changes)
                .ignore();
        }
    }
}

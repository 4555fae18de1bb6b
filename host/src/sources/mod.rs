//! Network sources of `serve`: HTTP (Vector's `http` sink, Fluent Bit / Fluentd
//! `out_http`) and the Fluent Forward protocol.

pub mod http;

use anyhow::Result;
use serde_json::Value;

use crate::intake::{Location, Skip, Visitor};

/// Collects what the intake decoders find in one request or chunk.
#[derive(Debug, Default)]
pub struct Collected {
    /// Records with their location.
    pub records: Vec<(Value, Location)>,
    /// Skips with reasons.
    pub skips: Vec<Skip>,
    /// The configured field holding the record, if any.
    pub record_field: Option<String>,
}

impl Visitor for Collected {
    fn record(&mut self, record: Value, location: Location) -> Result<()> {
        self.records.push((record, location));
        Ok(())
    }

    fn skip(&mut self, skip: Skip) {
        self.skips.push(skip);
    }

    fn record_field(&self) -> Option<&str> {
        self.record_field.as_deref()
    }
}

//! Writing a flushed batch to the outputs: alerts then incident records to alert
//! outputs (native or OCSF), and every pending input, with the alerts it triggered in
//! [`ALERTS_FIELD`], to passthrough outputs.

use anyhow::Result;
use minewatch_guest::Alert;
use serde_json::Value;

use super::Pipeline;
use crate::alert::Format;
use crate::incidents::Incident;

/// The field passthrough outputs add to an event: the alerts it triggered.
pub const ALERTS_FIELD: &str = "minewatch_alerts";

/// A passed-through line with `alerts` added: as the last key of the object it holds,
/// the rest of its bytes unchanged; a line that is not an object (an array of records)
/// becomes `{"records": <line>, "minewatch_alerts": [...]}`.
fn with_alerts(line: &[u8], alerts: &[Value]) -> Vec<u8> {
    let field =
        serde_json::to_vec(&serde_json::json!({ ALERTS_FIELD: alerts })).expect("alerts serialize");
    // `{"minewatch_alerts":[...]}` without its braces.
    let member = &field[1..field.len() - 1];
    let trimmed = line.trim_ascii_end();
    let mut out = Vec::with_capacity(line.len() + field.len() + 12);
    match trimmed
        .strip_suffix(b"}")
        .filter(|_| trimmed.trim_ascii_start().starts_with(b"{"))
    {
        Some(body) => {
            out.extend_from_slice(body);
            if !body.trim_ascii_start()[1..].trim_ascii().is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(member);
            out.push(b'}');
        }
        None => {
            out.extend_from_slice(b"{\"records\":");
            out.extend_from_slice(trimmed);
            out.push(b',');
            out.extend_from_slice(member);
            out.push(b'}');
        }
    }
    out
}

/// What a passthrough output passes on, waiting for its batch's alerts.
pub(super) enum Pending {
    /// A record that came without its line (a request or chunk of `serve`), and its
    /// index in the batch when the detector subscribes to it.
    Record { record: Value, event: Option<usize> },
    /// A line of input as it was read, and the batch indices of its records.
    Line { raw: Vec<u8>, events: Vec<usize> },
}

impl Pipeline {
    /// Writes alerts and then incident records to alert outputs, and the pending
    /// events to passthrough outputs.
    pub(super) fn emit(&mut self, alerts: &[Alert], incidents: &[Incident]) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        self.line_start = 0;
        if self.options.learn_only {
            return Ok(());
        }
        let tenant = &self.options.tenant;
        let rendered: Vec<[Value; 2]> = if self.outputs.is_empty() {
            Vec::new()
        } else {
            alerts
                .iter()
                .map(|a| {
                    [
                        self.wiring.renderers[0].render(a, tenant),
                        self.wiring.renderers[1].render(a, tenant),
                    ]
                })
                .collect()
        };
        let incidents: Vec<[Value; 2]> = incidents
            .iter()
            .map(|i| {
                [
                    crate::incidents::render::native(i),
                    crate::incidents::render::ocsf(i),
                ]
            })
            .collect();
        if self.outputs.iter().all(|o| o.passthrough) {
            // A transform writes its input's lines only; the incident must not vanish.
            for [native, _] in &incidents {
                tracing::warn!(
                    incident = %native,
                    "An incident record has no alert output to go to (only passthrough \
                     outputs); add an alert output, or turn incidents off with \
                     [incidents] enabled = false."
                );
            }
        }
        for output in &mut self.outputs {
            let format = match output.format {
                Format::Native => 0,
                Format::Ocsf => 1,
            };
            if !output.passthrough {
                for record in rendered.iter().chain(&incidents) {
                    output.sink.write(&record[format])?;
                }
                continue;
            }
            for item in &pending {
                let triggered = |events: &[usize]| -> Vec<Value> {
                    alerts
                        .iter()
                        .zip(&rendered)
                        .filter(|(a, _)| events.contains(&(a.event_index as usize)))
                        .map(|(_, r)| r[format].clone())
                        .collect()
                };
                match item {
                    Pending::Line { raw, events } => {
                        let triggered = triggered(events);
                        if triggered.is_empty() {
                            output.sink.write_line(raw)?;
                        } else {
                            output.sink.write_line(&with_alerts(raw, &triggered))?;
                        }
                    }
                    Pending::Record { record, event } => {
                        let triggered = triggered(event.as_slice());
                        if triggered.is_empty() {
                            output.sink.write(record)?;
                        } else {
                            let mut enriched = record.clone();
                            if let Value::Object(map) = &mut enriched {
                                map.insert(ALERTS_FIELD.to_string(), Value::Array(triggered));
                            }
                            output.sink.write(&enriched)?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

//! What a pipeline derives from its detector's description, built again when the
//! detector is swapped: subscriptions, field paths, renderers, prefilter, correlator.

use anyhow::Result;
use minewatch_guest::DetectorInfo;
use minewatch_guest::projection::FieldPath;

use super::PipelineOptions;
use crate::alert::{Format, Renderer};
use crate::incidents::Correlator;
use crate::intake::Prefilter;

/// What a pipeline derives from its detector's description.
pub(super) struct Wiring {
    /// (eventSource, eventName) pairs; a handful, so a scan beats hashing.
    pub(super) subscriptions: Vec<(String, String)>,
    /// The detector's fields, projected out of each subscribed record.
    pub(super) paths: Vec<FieldPath>,
    /// Native and OCSF, indexed by [`Format`] as 0 and 1.
    pub(super) renderers: [Renderer; 2],
    /// None when a passthrough output needs every line.
    pub(super) prefilter: Option<Prefilter>,
    /// None in `learn_only` runs, or when incidents are off.
    pub(super) correlator: Option<Correlator>,
}

impl Wiring {
    pub(super) fn new(
        info: &DetectorInfo,
        passthrough: bool,
        options: &PipelineOptions,
    ) -> Result<Wiring> {
        let paths = info
            .fields
            .iter()
            .map(|p| FieldPath::parse(p).map_err(anyhow::Error::msg))
            .collect::<Result<Vec<_>>>()?;
        let subscriptions = info.subscribed_events();
        let renderers = [
            Renderer::new(info.clone(), Format::Native),
            Renderer::new(info.clone(), Format::Ocsf),
        ];
        let prefilter = (!passthrough).then(|| {
            Prefilter::new(
                info.subscriptions
                    .iter()
                    .flat_map(|s| s.event_names.iter().map(String::as_str)),
                info.fields.iter().map(String::as_str),
            )
            // A dead-letter file keeps the whole records of a failed batch.
            .cutting_records(options.dead_letter.is_none())
        });
        let correlator = if options.learn_only {
            None
        } else {
            Correlator::new(&options.incidents, info, &options.detector_settings)
        };
        Ok(Wiring {
            subscriptions,
            paths,
            renderers,
            prefilter,
            correlator,
        })
    }
}

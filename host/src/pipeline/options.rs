//! What a pipeline is built with: its [`PipelineOptions`] and its [`Output`]s.

use std::sync::Arc;

use crate::alert::Format;
use crate::dead_letter::DeadLetter;
use crate::incidents::IncidentSettings;
use crate::sinks::AlertSink;

/// How a pipeline treats what it reads.
#[derive(Debug, Clone)]
pub struct PipelineOptions {
    /// Tenant whose baselines are used.
    pub tenant: String,
    /// Events handed to the detector per call.
    pub batch_events: usize,
    /// Learn the baselines without emitting alerts (`baseline build`).
    pub learn_only: bool,
    /// Where batches go when the detector is stopped on them; without one they are
    /// logged and counted only.
    pub dead_letter: Option<Arc<DeadLetter>>,
    /// How alerts add up to incidents (not in `learn_only` runs).
    pub incidents: IncidentSettings,
    /// The detector's settings as JSON (its `scope` decides the incidents' risk object).
    pub detector_settings: String,
}

impl Default for PipelineOptions {
    fn default() -> Self {
        PipelineOptions {
            tenant: "default".into(),
            batch_events: 512,
            learn_only: false,
            dead_letter: None,
            incidents: IncidentSettings::default(),
            detector_settings: "{}".into(),
        }
    }
}

/// One destination with what it wants.
pub struct Output {
    /// Name for logs and metrics.
    pub name: String,
    /// Where items go.
    pub sink: Box<dyn AlertSink>,
    /// Alert format.
    pub format: Format,
    /// Every input event, with its alerts in [`ALERTS_FIELD`], instead of alerts alone.
    pub passthrough: bool,
}

impl Output {
    /// An alert output in the native format.
    pub fn alerts(name: &str, sink: Box<dyn AlertSink>) -> Output {
        Output {
            name: name.to_string(),
            sink,
            format: Format::Native,
            passthrough: false,
        }
    }
}

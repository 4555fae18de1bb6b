//! Components built against the 0.1.0 contract (`wit/0.1.0/minewatch.wit`), whose
//! `detect` takes a list of events instead of a packed batch.
//!
//! Everything else in 0.1.0 has the shapes of 0.2.0, and component types are
//! structural (a record is its field names and types, whatever package declares it), so
//! the host links its very `baseline` and `log` functions under the 0.1.0 names and
//! lifts 0.1.0 results into the 0.2.0 bindings' types. Only the events are lowered as
//! 0.1.0 has them, by the two types below.

use anyhow::{Context, Result};
use minewatch_guest::batch::{FieldRef, PackedBatch};
use wasmtime::component::{Component, ComponentType, Instance, Linker, Lower, TypedFunc};
use wasmtime::{AsContextMut, Store, StoreContextMut};

use super::GuestState;
use crate::bindings::{baseline as wit_baseline, log as wit_log, types as wit};

/// Name of the detector export of a 0.1.0 component.
pub(super) const EXPORT: &str = "minewatch:detector/detector@0.1.0";

/// The 0.1.0 `field` variant.
#[derive(ComponentType, Lower)]
#[component(variant)]
enum LegacyField {
    #[component(name = "absent")]
    Absent,
    #[component(name = "text")]
    Text(String),
    #[component(name = "texts")]
    Texts(Vec<String>),
    #[component(name = "other")]
    Other(String),
}

/// The 0.1.0 `event` record.
#[derive(ComponentType, Lower)]
#[component(record)]
struct LegacyEvent {
    fields: Vec<LegacyField>,
}

/// The events of `batch` as 0.1.0 lowers them, each with its strings.
fn legacy_events(batch: &PackedBatch) -> Vec<LegacyEvent> {
    let view = batch.batch();
    (0..view.len())
        .map(|event| LegacyEvent {
            fields: (0..batch.width())
                .map(|index| match view.field(event, index) {
                    FieldRef::Absent => LegacyField::Absent,
                    FieldRef::Text(s) => LegacyField::Text(s.to_owned()),
                    FieldRef::Texts(list) => {
                        LegacyField::Texts(list.into_iter().map(str::to_owned).collect())
                    }
                    FieldRef::Other(json) => LegacyField::Other(json.to_owned()),
                })
                .collect(),
        })
        .collect()
}

/// Defines the 0.1.0 `baseline` and `log` imports, each the host's 0.2.0 function.
pub(super) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    use wit_baseline::Host as _;
    type Cx<'a> = StoreContextMut<'a, GuestState>;
    let mut baseline = linker.instance("minewatch:detector/baseline@0.1.0")?;
    baseline.func_wrap(
        "observe",
        |mut cx: Cx<'_>, (set, forget_after, sightings): (String, i64, Vec<_>)| {
            Ok((cx.data_mut().observe(set, forget_after, sightings)?,))
        },
    )?;
    baseline.func_wrap(
        "add",
        |mut cx: Cx<'_>, (counter, increments): (String, Vec<_>)| {
            Ok((cx.data_mut().add(counter, increments)?,))
        },
    )?;
    baseline.func_wrap(
        "record-values",
        |mut cx: Cx<'_>, (series, changes): (String, Vec<_>)| {
            cx.data_mut().record_values(series, changes)
        },
    )?;
    baseline.func_wrap(
        "histogram",
        |mut cx: Cx<'_>, (series, from, to): (String, i64, i64)| {
            Ok((cx.data_mut().histogram(series, from, to)?,))
        },
    )?;
    let mut log = linker.instance("minewatch:detector/log@0.1.0")?;
    log.func_wrap(
        "emit",
        |mut cx: Cx<'_>, (level, message): (wit_log::Level, String)| {
            wit_log::Host::emit(cx.data_mut(), level, message)
        },
    )?;
    Ok(())
}

/// Whether `component` exports the 0.1.0 detector interface.
pub(super) fn exports_legacy(component: &Component) -> bool {
    component.get_export_index(None, EXPORT).is_some()
}

/// The three exports of an instantiated 0.1.0 component, typed once when found.
pub(super) struct LegacyExports {
    describe: TypedFunc<(), (wit::DetectorInfo,)>,
    configure: TypedFunc<(String,), (Result<(), String>,)>,
    detect: TypedFunc<(Vec<LegacyEvent>,), (wit::Outcome,)>,
}

impl LegacyExports {
    /// Finds and type-checks the exports.
    ///
    /// # Errors
    /// One is missing or has other types than 0.1.0 gives it.
    pub(super) fn new(store: &mut Store<GuestState>, instance: &Instance) -> Result<Self> {
        let interface = instance
            .get_export_index(&mut *store, None, EXPORT)
            .context("no detector export")?;
        let mut index = |name: &str| {
            instance
                .get_export_index(&mut *store, Some(&interface), name)
                .with_context(|| format!("{EXPORT} exports no function `{name}`"))
        };
        let (describe, configure, detect) =
            (index("describe")?, index("configure")?, index("detect")?);
        Ok(LegacyExports {
            describe: instance.get_typed_func(&mut *store, describe)?,
            configure: instance.get_typed_func(&mut *store, configure)?,
            detect: instance.get_typed_func(&mut *store, detect)?,
        })
    }

    pub(super) fn describe(&self, store: impl AsContextMut) -> wasmtime::Result<wit::DetectorInfo> {
        Ok(self.describe.call(store, ())?.0)
    }

    pub(super) fn configure(
        &self,
        store: impl AsContextMut,
        settings: &str,
    ) -> wasmtime::Result<Result<(), String>> {
        Ok(self.configure.call(store, (settings.to_string(),))?.0)
    }

    pub(super) fn detect(
        &self,
        store: impl AsContextMut,
        batch: &PackedBatch,
    ) -> wasmtime::Result<wit::Outcome> {
        Ok(self.detect.call(store, (legacy_events(batch),))?.0)
    }
}

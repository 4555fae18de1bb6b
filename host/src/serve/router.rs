//! Hands each record of a request or chunk to its tenant's pipeline thread.
//!
//! A request pinned to a tenant (HTTP `/tenants/<name>/events`, a Forward tag prefix)
//! goes whole to that tenant; otherwise records are split by the routing field. Every
//! tenant's part is submitted at once and the request is answered when all parts are
//! committed; if one is refused the whole request is refused, so the client resends it
//! (parts already committed are then seen twice: unseen keys are learned already and
//! the rate rules drop `eventID`s they have counted, so no alert repeats).

use std::collections::HashMap;
use std::sync::RwLock;

use serde_json::Value;

use super::worker::{Receipt, Receiving, Refused, Submitter};
use crate::intake::{Location, Prefilter, Skip};
use crate::tenants::Routes;

/// The tenants' queues and how to choose between them.
#[derive(Debug)]
pub struct TenantRouter {
    routes: Routes,
    submitters: HashMap<String, Submitter>,
    /// Each tenant's byte-level prefilter (none when a passthrough output needs every
    /// record), and the union sources apply: some tenant's pipeline may want what it
    /// passes; none when a tenant has no prefilter. A hot reload updates both.
    prefilters: RwLock<Prefilters>,
}

/// (each tenant's prefilter, their union).
type Prefilters = (HashMap<String, Option<Prefilter>>, Option<Prefilter>);

/// The prefilter sources may apply for these tenants', keeping the routing field of
/// records cut to their fields.
fn union(prefilters: &HashMap<String, Option<Prefilter>>, routes: &Routes) -> Option<Prefilter> {
    let all: Option<Vec<&Prefilter>> = prefilters.values().map(Option::as_ref).collect();
    let union = all.map(Prefilter::union)?;
    Some(match &routes.route_field {
        Some(field) => union.keeping(field),
        None => union,
    })
}

impl TenantRouter {
    /// A router over one submitter per tenant.
    pub fn new(
        routes: Routes,
        submitters: HashMap<String, Submitter>,
        prefilters: HashMap<String, Option<Prefilter>>,
    ) -> TenantRouter {
        let shared = union(&prefilters, &routes);
        TenantRouter {
            routes,
            submitters,
            prefilters: RwLock::new((prefilters, shared)),
        }
    }

    /// The prefilter sources apply before parsing, if any.
    pub fn prefilter(&self) -> Option<Prefilter> {
        self.prefilters
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .1
            .clone()
    }

    /// `tenant`'s queue.
    pub fn submitter(&self, tenant: &str) -> Option<&Submitter> {
        self.submitters.get(tenant)
    }

    /// Replaces `tenant`'s prefilter after it took a new detector.
    pub fn set_prefilter(&self, tenant: &str, prefilter: Option<Prefilter>) {
        let mut guard = self
            .prefilters
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.0.insert(tenant.to_string(), prefilter);
        guard.1 = union(&guard.0, &self.routes);
    }

    /// Each tenant whose pipeline looks wedged (see [`Submitter::stalled`]), with why, in
    /// words; sorted by tenant.
    pub fn stalled(&self, bound: std::time::Duration) -> Vec<String> {
        let mut tenants: Vec<(&String, &Submitter)> = self.submitters.iter().collect();
        tenants.sort_by_key(|(name, _)| *name);
        tenants
            .into_iter()
            .filter_map(|(name, submitter)| match submitter.stalled(bound) {
                Ok(None) => None,
                Ok(Some(idle)) => Some(format!(
                    "tenant {name}: its pipeline has jobs waiting and has taken none for {} s \
                     (the bound is {} s)",
                    idle.as_secs(),
                    bound.as_secs()
                )),
                Err(why) => Some(format!("tenant {name}: {why}")),
            })
            .collect()
    }

    /// True when `tenant` is served.
    pub fn has(&self, tenant: &str) -> bool {
        self.submitters.contains_key(tenant)
    }

    /// The tenant a Forward tag pins, if any.
    pub fn for_tag(&self, tag: &str) -> Option<&str> {
        self.routes.for_tag(tag)
    }

    /// Submits records to their tenants and waits until every part is committed.
    /// `pinned` sends them all to one tenant. Skips and prefiltered lines are counted
    /// by the pinned (or default) tenant. `receiving` is released once every part is
    /// queued.
    ///
    /// # Errors
    /// A part was refused ([`Refused`]); `pinned` names an unknown tenant.
    pub async fn submit(
        &self,
        pinned: Option<&str>,
        records: Vec<(Value, Location)>,
        skips: Vec<Skip>,
        filtered: u64,
        receiving: Receiving,
    ) -> Result<Receipt, Refused> {
        let home = pinned.unwrap_or(&self.routes.default);
        let mut parts: HashMap<&str, Vec<(Value, Location)>> = HashMap::new();
        if pinned.is_some() || self.routes.route_field.is_none() {
            parts.insert(home, records);
        } else {
            parts.insert(home, Vec::new());
            for (record, location) in records {
                let tenant = self.routes.for_record(&record);
                parts.entry(tenant).or_default().push((record, location));
            }
        }
        let mut skips = Some(skips);
        // Every part is queued before any is awaited, so the tenants work in parallel.
        let mut waits = Vec::with_capacity(parts.len());
        for (tenant, records) in parts {
            let submitter = self
                .submitters
                .get(tenant)
                .ok_or_else(|| Refused::Failed(format!("no tenant named {tenant:?}")))?;
            let (skips, filtered) = if tenant == home {
                (skips.take().unwrap_or_default(), filtered)
            } else {
                (Vec::new(), 0)
            };
            waits.push(submitter.enqueue(records, skips, filtered));
        }
        drop(receiving);
        let mut total = Receipt::default();
        let mut refusal = None;
        for wait in waits {
            let verdict = match wait {
                Ok(answer) => answer.await.unwrap_or(Err(Refused::Closed)),
                Err(refused) => Err(refused),
            };
            match verdict {
                Ok(receipt) => {
                    total.records += receipt.records;
                    total.alerts += receipt.alerts;
                    total.skipped += receipt.skipped;
                }
                Err(refused) => refusal = refusal.or(Some(refused)),
            }
        }
        match refusal {
            Some(refused) => Err(refused),
            None => Ok(total),
        }
    }
}

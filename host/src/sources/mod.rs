//! Network sources of `serve`: HTTP (Vector's `http` sink, Fluent Bit / Fluentd
//! `out_http`) and the Fluent Forward protocol.

pub mod fluent;
pub mod http;

use anyhow::Result;
use serde_json::Value;

use crate::intake::{Location, Skip, Visitor};

/// How a listener is exposed, for [`check_exposure`].
#[derive(Debug, Clone, Copy)]
pub struct Exposure {
    /// `http` or `forward`, as in `[sources.<source>]`.
    pub source: &'static str,
    /// Where it listens.
    pub listen: std::net::SocketAddr,
    /// The name of its secret setting (`token`, `shared_key`) when one is set.
    pub secret: Option<&'static str>,
    /// Whether it speaks TLS.
    pub tls: bool,
    /// Whether it requires client certificates.
    pub client_certificates: bool,
    /// `allow_plaintext = true`.
    pub allow_plaintext: bool,
    /// `allow_unauthenticated = true`.
    pub allow_unauthenticated: bool,
}

/// Refuses a listener beyond loopback that would send its secret in clear, or that
/// would take events from anyone; loopback listeners pass.
///
/// # Errors
/// Why the listener is refused, and the settings that would make it acceptable.
pub fn check_exposure(exposure: &Exposure) -> Result<()> {
    let Exposure { source, listen, .. } = *exposure;
    if listen.ip().is_loopback() {
        return Ok(());
    }
    let (flag, variable) = match source {
        "http" => ("--http-token", "MINEWATCH_HTTP_TOKEN"),
        _ => ("--forward-shared-key", "MINEWATCH_FORWARD_SHARED_KEY"),
    };
    if let Some(secret) = exposure.secret
        && !exposure.tls
        && !exposure.allow_plaintext
    {
        anyhow::bail!(
            "[sources.{source}] listens on {listen}, beyond loopback, without TLS, so its \
             {secret} would cross the network in clear for anyone on the path to read and \
             reuse: set tls_cert and tls_key, listen on a loopback address, or set \
             allow_plaintext = true if the network between the clients and minewatch is \
             private (a pod network, or a TLS-terminating proxy in front)"
        );
    }
    if exposure.secret.is_none() && !exposure.client_certificates && !exposure.allow_unauthenticated
    {
        let secret = match source {
            "http" => "token",
            _ => "shared_key",
        };
        anyhow::bail!(
            "[sources.{source}] listens on {listen}, beyond loopback, with no {secret}, so \
             anyone who can reach it can feed it events (and teach the baselines whatever \
             they like): set {secret} (or {flag} / {variable}) together with tls_cert and \
             tls_key, require client certificates with tls_client_ca, listen on a loopback \
             address, or set allow_unauthenticated = true if only trusted clients can reach it"
        );
    }
    if !exposure.tls {
        tracing::warn!(
            source,
            %listen,
            "A listener beyond loopback has no TLS: events cross the network in clear."
        );
    }
    Ok(())
}

/// Collects what the intake decoders find in one request or chunk.
#[derive(Debug, Default)]
pub struct Collected {
    /// Records with their location.
    pub records: Vec<(Value, Location)>,
    /// Skips with reasons.
    pub skips: Vec<Skip>,
    /// The configured field holding the record, if any.
    pub record_field: Option<String>,
    /// Lines rejected unparsed by the prefilter.
    pub filtered: u64,
    /// The pipeline's prefilter, if it has one.
    pub prefilter: Option<crate::intake::Prefilter>,
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

    fn wants(&self, line: &[u8]) -> bool {
        self.prefilter.as_ref().is_none_or(|p| p.wants(line))
    }

    fn filtered(&mut self, lines: u64) {
        self.filtered += lines;
    }
    fn fields(&self) -> Option<&crate::intake::FieldSet> {
        self.prefilter
            .as_ref()
            .map(crate::intake::Prefilter::fields)
    }
}

/// Hands Forward chunks to the pipelines: each record (or the record inside the
/// configured field) goes to the tenant its tag prefix (or routing field) picks; the
/// chunk is acknowledged once every part is committed.
pub struct ForwardIntake {
    /// The tenants' queues.
    pub router: std::sync::Arc<crate::serve::router::TenantRouter>,
    /// The field holding each record, if configured.
    pub record_field: Option<String>,
}

impl fluent::ForwardHandler for ForwardIntake {
    fn handle(
        &self,
        batch: fluent::ForwardBatch,
        receiving: crate::serve::worker::Receiving,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), fluent::Refusal>> + Send + '_>>
    {
        Box::pin(async move {
            let source: std::sync::Arc<str> = format!("forward:{}", batch.tag).into();
            let mut collected = Collected {
                record_field: self.record_field.clone(),
                ..Collected::default()
            };
            for (i, entry) in batch.records.into_iter().enumerate() {
                let location = Location {
                    source: source.clone(),
                    line: None,
                    record: Some(i as u64 + 1),
                };
                // Collecting never fails.
                let _ = crate::intake::visit_value(entry.record, &location, &mut collected);
            }
            metrics::counter!("minewatch_received_events_total", "source" => "forward")
                .increment(collected.records.len() as u64);
            use crate::serve::worker::Refused;
            let pinned = self.router.for_tag(&batch.tag);
            match self
                .router
                .submit(
                    pinned,
                    collected.records,
                    collected.skips,
                    collected.filtered,
                    receiving,
                )
                .await
            {
                Ok(_) => Ok(()),
                Err(Refused::Busy | Refused::OutputsFull(_)) => Err(fluent::Refusal::Busy),
                Err(Refused::Failed(why)) => Err(fluent::Refusal::Failed(why)),
                Err(Refused::Closed) => Err(fluent::Refusal::Failed("shutting down".into())),
            }
        })
    }
}

//! Network sources of `serve`: HTTP (Vector's `http` sink, Fluent Bit / Fluentd
//! `out_http`) and the Fluent Forward protocol.

pub mod budget;
pub mod fluent;
pub mod http;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::RwLock;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::intake::{Location, Skip, Visitor};

/// Where a source listens: `host:port`, the host an IP address (`[::1]:8686` for IPv6)
/// or a name such as `localhost`, resolved when the listener is checked and bound.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ListenAddr {
    host: String,
    port: u16,
}

impl ListenAddr {
    /// The addresses the host resolves to, with the port.
    ///
    /// # Errors
    /// The name does not resolve, or resolves to nothing.
    pub fn resolve(&self) -> Result<Vec<SocketAddr>> {
        let addresses: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve the listen address {self}"))?
            .collect();
        anyhow::ensure!(
            !addresses.is_empty(),
            "the listen address {self} resolves to no address"
        );
        Ok(addresses)
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(address: SocketAddr) -> ListenAddr {
        ListenAddr {
            host: address.ip().to_string(),
            port: address.port(),
        }
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> Result<ListenAddr> {
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(address.into());
        }
        let Some((host, port)) = text.rsplit_once(':') else {
            anyhow::bail!(
                "invalid listen address {text:?}: expected host:port, e.g. 127.0.0.1:8686 or localhost:8686"
            );
        };
        let port = port
            .parse::<u16>()
            .with_context(|| format!("invalid port in listen address {text:?}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        anyhow::ensure!(
            (!host.is_empty() && !host.contains(':')) || host.parse::<std::net::IpAddr>().is_ok(),
            "invalid host in listen address {text:?}"
        );
        Ok(ListenAddr {
            host: host.to_string(),
            port,
        })
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = anyhow::Error;

    fn try_from(text: String) -> Result<ListenAddr> {
        text.parse()
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// A source's secret (the HTTP token, the Forward shared key) as it is in force: read
/// per request or connection, so a reload can replace it while the source serves.
#[derive(Default)]
pub struct LiveSecret(RwLock<Option<String>>);

impl std::fmt::Debug for LiveSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.get().is_some();
        f.debug_tuple("LiveSecret")
            .field(&if set { "<redacted>" } else { "<none>" })
            .finish()
    }
}

impl LiveSecret {
    /// A secret in force from the start; `None` means no authentication.
    pub fn new(secret: Option<String>) -> LiveSecret {
        LiveSecret(RwLock::new(secret))
    }

    /// The secret now in force.
    pub fn get(&self) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Puts `secret` in force; true when it differs from the one before.
    pub fn set(&self, secret: Option<String>) -> bool {
        let mut guard = self
            .0
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = *guard != secret;
        *guard = secret;
        changed
    }
}

/// How a listener is exposed, for [`check_exposure`].
#[derive(Debug, Clone, Copy)]
pub struct Exposure {
    /// `http` or `forward`, as in `[sources.<source>]`.
    pub source: &'static str,
    /// Where it listens (one of the addresses its `listen` resolves to).
    pub listen: SocketAddr,
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

    fn prefilter(&self) -> Option<&crate::intake::Prefilter> {
        self.prefilter.as_ref()
    }

    fn filtered(&mut self, lines: u64) {
        self.filtered += lines;
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
            let started = std::time::Instant::now();
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
            let verdict = match self
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
            };
            let status = match &verdict {
                Ok(()) => "ok",
                Err(fluent::Refusal::Busy) => "busy",
                Err(fluent::Refusal::Failed(_)) => "error",
            };
            metrics::counter!("minewatch_requests_total", "source" => "forward", "status" => status)
                .increment(1);
            metrics::histogram!("minewatch_ack_seconds", "source" => "forward")
                .record(started.elapsed().as_secs_f64());
            verdict
        })
    }
}

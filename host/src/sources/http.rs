//! The HTTP source: `POST /events` (the default tenant, or split by the routing field),
//! `POST /tenants/{name}/events` (one tenant; 404 for an unknown name), plus
//! `GET /health` and `GET /metrics`.
//!
//! Bodies are what Vector's `http` sink and Fluent Bit / Fluentd `out_http` send: a JSON
//! array, NDJSON (the last line may lack its newline) or concatenated objects, with
//! `Content-Encoding` gzip, zstd or deflate (decoded by tower-http before the size
//! limit applies, so a compressed bomb cannot get past it). Each record is a CloudTrail
//! event, an EventBridge envelope, or an object whose configured `record_field` holds
//! one. The reply comes after the batch is processed and its alerts are synced: 200 with
//! counts; 400 with the reason for a body with no decodable record; 401 without the
//! configured bearer token; 429 or 503 with `Retry-After` under back-pressure. Vector
//! retries 408, 429 and 5xx; a retried batch does not double-count, because the rate
//! rules drop `eventID`s they have counted and unseen keys are already learned.
//!
//! With `tls_cert` and `tls_key` the listener speaks HTTPS only (see [`crate::tls`]);
//! with `tls_client_ca` too, a client must present a certificate signed by that CA.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use tower_http::decompression::RequestDecompressionLayer;

use super::Collected;
use crate::intake::{ReadOptions, read_stream};
use crate::serve::router::TenantRouter;
use crate::serve::worker::{Receiving, Refused};
use crate::sinks::http::Secret;

/// Settings of the HTTP source.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Address to listen on; loopback unless you mean otherwise. Beyond loopback,
    /// `serve` refuses to start without a token (or `tls_client_ca`), and with a token
    /// but no TLS, unless `allow_unauthenticated` or `allow_plaintext` says otherwise.
    pub listen: SocketAddr,
    /// When set, requests must carry `Authorization: Bearer <token>` (not `/health`).
    /// `--http-token` or the `MINEWATCH_HTTP_TOKEN` environment variable override it.
    pub token: Option<Secret>,
    /// PEM certificate chain (leaf first) to serve HTTPS with; needs `tls_key`.
    /// Re-read on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert` (PKCS #8, PKCS #1 or SEC1, unencrypted).
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: when set, every client must present a certificate signed by
    /// one of them (mutual TLS). Re-read on SIGHUP.
    pub tls_client_ca: Option<PathBuf>,
    /// Start even though a token would cross the network in clear (a listener beyond
    /// loopback with a token and no TLS), e.g. on a private pod network or behind a
    /// TLS-terminating proxy.
    pub allow_plaintext: bool,
    /// Start even though anyone who reaches the listener may send events (a listener
    /// beyond loopback with neither a token nor `tls_client_ca`).
    pub allow_unauthenticated: bool,
    /// Largest accepted body after decompression.
    pub max_body_bytes: usize,
    /// Seconds a client is told to wait (`Retry-After`) under back-pressure.
    pub retry_after_secs: u32,
}

impl Default for HttpSourceConfig {
    fn default() -> Self {
        HttpSourceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8686)),
            token: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            allow_plaintext: false,
            allow_unauthenticated: false,
            max_body_bytes: 64 << 20,
            retry_after_secs: 1,
        }
    }
}

impl HttpSourceConfig {
    /// The listener's TLS files, if it serves TLS.
    ///
    /// # Errors
    /// Only one of `tls_cert` and `tls_key`, or `tls_client_ca` without them.
    pub fn tls_files(&self) -> anyhow::Result<Option<crate::tls::server::ServerTlsFiles>> {
        crate::tls::server::ServerTlsFiles::from_settings(
            "http",
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
            self.tls_client_ca.as_deref(),
        )
    }

    /// Checks the values serde cannot, and refuses to expose the listener beyond
    /// loopback without protection (see [`crate::sources::check_exposure`]).
    ///
    /// # Errors
    /// What is wrong, and what to set instead.
    pub fn check(&self) -> anyhow::Result<()> {
        if self
            .token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            anyhow::bail!("[sources.http] token is empty: remove it, or set a real one");
        }
        let tls = self.tls_files()?;
        crate::sources::check_exposure(&crate::sources::Exposure {
            source: "http",
            listen: self.listen,
            secret: self.token.as_ref().map(|_| "token"),
            tls: tls.is_some(),
            client_certificates: self.tls_client_ca.is_some(),
            allow_plaintext: self.allow_plaintext,
            allow_unauthenticated: self.allow_unauthenticated,
        })
    }
}

/// What the handlers share.
pub struct HttpState {
    /// The tenants' queues.
    pub router: Arc<TenantRouter>,
    /// The source's settings.
    pub config: HttpSourceConfig,
    /// Limits applied while decoding.
    pub read: ReadOptions,
    /// The field holding each record, if configured.
    pub record_field: Option<String>,
    /// Renders `/metrics`, when a recorder is installed.
    pub metrics: Option<PrometheusHandle>,
}

/// The routes of the HTTP source.
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/events", post(events))
        .route("/tenants/{tenant}/events", post(tenant_events))
        .route("/health", get(health))
        .route("/metrics", get(render_metrics))
        .layer(RequestDecompressionLayer::new())
        .with_state(state)
}

fn authorized(state: &HttpState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.config.token else {
        return true;
    };
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given == token.expose())
}

async fn events(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    answer(&state, None, &headers, body).await
}

async fn tenant_events(
    State(state): State<Arc<HttpState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&state, Some(&tenant), &headers, body).await
}

/// Reads the body (decompressed, within `max_body_bytes`) and ingests it; the request
/// counts as being received (see [`Receiving`]) from its headers until it is queued.
async fn answer(
    state: &Arc<HttpState>,
    tenant: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let receiving = Receiving::start();
    let body = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
        Ok(body) => body,
        Err(error) => return body_error(&error),
    };
    let response = match tenant {
        Some(name) if !state.router.has(name) => reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no tenant named {name:?}")}),
            None,
        ),
        _ => ingest(state, tenant, headers, body, receiving).await,
    };
    let status = response.status().as_u16().to_string();
    metrics::counter!("minewatch_requests_total", "source" => "http", "status" => status)
        .increment(1);
    metrics::histogram!("minewatch_ack_seconds", "source" => "http")
        .record(started.elapsed().as_secs_f64());
    response
}

async fn ingest(
    state: &Arc<HttpState>,
    tenant: Option<&str>,
    headers: &HeaderMap,
    body: Bytes,
    receiving: Receiving,
) -> Response {
    if !authorized(state, headers) {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong bearer token"}),
            None,
        );
    }
    metrics::counter!("minewatch_received_bytes_total", "source" => "http")
        .increment(body.len() as u64);
    let read = state.read;
    let record_field = state.record_field.clone();
    // NDJSON lines of events no tenant wants are counted, not parsed.
    let prefilter = state.router.prefilter();
    let source = match tenant {
        Some(name) => format!("http:/tenants/{name}/events"),
        None => "http:/events".to_string(),
    };
    let decoded = tokio::task::spawn_blocking(move || {
        let mut collected = Collected {
            record_field,
            prefilter,
            ..Collected::default()
        };
        read_stream(&body[..], source.into(), read, &mut collected).map(|()| collected)
    })
    .await;
    let collected = match decoded {
        Ok(Ok(collected)) => collected,
        Ok(Err(error)) => {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": format!("{error:#}")}),
                None,
            );
        }
        Err(_) => {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "decoder failed"}),
                None,
            );
        }
    };
    let empty_body = collected
        .skips
        .iter()
        .all(|s| s.reason.as_str() == "empty-input");
    if collected.records.is_empty() && collected.filtered == 0 && !empty_body {
        let reason = &collected.skips[0];
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": format!("no CloudTrail record in the body: {} ({})", reason.detail, reason.reason.as_str())}),
            None,
        );
    }
    let verdict = state
        .router
        .submit(
            tenant,
            collected.records,
            collected.skips,
            collected.filtered,
            receiving,
        )
        .await;
    let retry = Some(state.config.retry_after_secs);
    match verdict {
        Ok(receipt) => reply(StatusCode::OK, json!(receipt), None),
        Err(Refused::Busy) => reply(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"error": "pipeline queue full"}),
            retry,
        ),
        Err(Refused::OutputsFull(why)) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": why}),
            retry,
        ),
        Err(Refused::Closed) => reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "shutting down"}),
            retry,
        ),
        Err(Refused::Failed(why)) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": why}),
            retry,
        ),
    }
}

/// The answer to a body that could not be read: 413 past `max_body_bytes` (after
/// decompression), 400 when it does not decompress or arrives broken.
fn body_error(error: &axum::Error) -> Response {
    let too_large = std::error::Error::source(error)
        .is_some_and(|e| e.is::<http_body_util::LengthLimitError>());
    let (status, what) = if too_large {
        (StatusCode::PAYLOAD_TOO_LARGE, "body over max_body_bytes")
    } else {
        (StatusCode::BAD_REQUEST, "failed to read the body")
    };
    reply(status, json!({"error": format!("{what}: {error}")}), None)
}

fn reply(status: StatusCode, body: serde_json::Value, retry_after: Option<u32>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

async fn health() -> Response {
    reply(StatusCode::OK, json!({"status": "ok"}), None)
}

async fn render_metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers) {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong bearer token"}),
            None,
        );
    }
    match &state.metrics {
        Some(handle) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => reply(
            StatusCode::NOT_FOUND,
            json!({"error": "metrics are off"}),
            None,
        ),
    }
}

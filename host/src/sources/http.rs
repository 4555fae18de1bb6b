//! The HTTP source: `POST /events` (the default tenant, or split by the routing field),
//! `POST /tenants/{name}/events` (one tenant; 404 for an unknown name), the Amazon Data
//! Firehose endpoints `POST /firehose` and `POST /tenants/{name}/firehose`, plus
//! `GET /health`, `GET /ready` and `GET /metrics`.
//!
//! Events bodies are what Vector's `http` sink and Fluent Bit / Fluentd `out_http` send: a
//! JSON array, NDJSON (the last line may lack its newline) or concatenated objects, or,
//! labelled `application/msgpack`, a msgpack stream of maps or `[time, map]` /
//! `[[time, metadata], map]` entries (Fluent Bit's default `Format msgpack`; see
//! `payload.rs`). Any body may carry `Content-Encoding` gzip, zstd or deflate (decoded by
//! tower-http before the size limit applies, so a compressed bomb cannot get past it).
//! Each record is a CloudTrail event, an EventBridge envelope, or an object whose
//! configured `record_field` holds one.
//!
//! Firehose deliveries (`firehose.rs`) are a JSON object whose `records[].data` are
//! base64, each holding gzip or plain input the intake reads like a file (a CloudWatch Logs
//! subscription envelope, a CloudTrail event). A POST to the events routes carrying
//! Firehose's `X-Amz-Firehose-Request-Id` or `-Protocol-Version` header is read as one too.
//! Firehose sends its access key in `X-Amz-Firehose-Access-Key`, which these requests may
//! use instead of the bearer token, and needs its own reply shape: `requestId` (echoed)
//! and `timestamp`, plus `errorMessage` on failure.
//!
//! The reply comes after the batch is processed and its alerts are synced: 200 with
//! counts, also when what a well-formed body holds is not CloudTrail (those records are
//! counted skips: Vector drops a batch answered 400 for good); 400 with the reason only for
//! a body that does not decode at all (not JSON, NDJSON or msgpack, broken compression, not
//! a Firehose delivery); 401 without the configured token; 413 past `max_body_bytes`; 429
//! or 503 with `Retry-After` under back-pressure; 500 when processing failed. Vector
//! retries 408, 429 and 5xx, Firehose anything but 200; a retried batch does not
//! double-count, because the rate rules drop `eventID`s they have counted and unseen keys
//! are already learned.
//!
//! With `tls_cert` and `tls_key` the listener speaks HTTPS only (see [`crate::tls`]);
//! with `tls_client_ca` too, a client must present a certificate signed by that CA.

mod firehose;
pub(crate) mod payload;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http_body_util::BodyExt;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Deserialize;
use serde_json::json;
use tower_http::decompression::RequestDecompressionLayer;

use super::Collected;
use super::budget::{Budget, OverBudget, Reservation};
use crate::intake::ReadOptions;
use crate::serve::router::TenantRouter;
use crate::serve::worker::{Receipt, Receiving, Refused};
use crate::sinks::http::Secret;

/// Settings of the HTTP source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// Address to listen on, `host:port` (an IP address or a name such as `localhost`);
    /// loopback unless you mean otherwise. Beyond loopback,
    /// `serve` refuses to start without a token (or `tls_client_ca`), and with a token
    /// but no TLS, unless `allow_unauthenticated` or `allow_plaintext` says otherwise.
    pub listen: super::ListenAddr,
    /// When set, requests must carry `Authorization: Bearer <token>` (not `/health` or
    /// `/ready`); a reload puts a changed token in force for the next request;
    /// Firehose deliveries may carry it in `X-Amz-Firehose-Access-Key` instead.
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
    /// Largest accepted body after decompression; for a Firehose delivery, also the most
    /// its records' data may take once base64- and gzip-decoded, together.
    pub max_body_bytes: usize,
    /// Seconds a client is told to wait (`Retry-After`) under back-pressure.
    pub retry_after_secs: u32,
}

impl Default for HttpSourceConfig {
    fn default() -> Self {
        HttpSourceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8686)).into(),
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
        for listen in self.listen.resolve()? {
            crate::sources::check_exposure(&crate::sources::Exposure {
                source: "http",
                listen,
                secret: self.token.as_ref().map(|_| "token"),
                tls: tls.is_some(),
                client_certificates: self.tls_client_ca.is_some(),
                allow_plaintext: self.allow_plaintext,
                allow_unauthenticated: self.allow_unauthenticated,
            })?;
        }
        Ok(())
    }
}

/// What the handlers share.
pub struct HttpState {
    /// The tenants' queues.
    pub router: Arc<TenantRouter>,
    /// The source's settings (its `token` is not read: see `token`).
    pub config: HttpSourceConfig,
    /// The token in force, which a reload may replace.
    pub token: Arc<super::LiveSecret>,
    /// What `/ready` checks; without it `/ready` answers like `/health`.
    pub readiness: Option<Arc<crate::serve::ready::Readiness>>,
    /// Limits applied while decoding.
    pub read: ReadOptions,
    /// The field holding each record, if configured.
    pub record_field: Option<String>,
    /// Renders `/metrics`, when a recorder is installed.
    pub metrics: Option<PrometheusHandle>,
    /// The sources' memory budget: bodies as they arrive, inflated and parsed.
    pub budget: Budget,
}

/// The routes of the HTTP source. Every answer is counted in
/// `minewatch_requests_total{source="http", status}`, and every error answer has a JSON
/// body `{"error": ...}`, also those given before a handler runs (an unsupported
/// `Content-Encoding`, an unknown path or method).
pub fn router(state: Arc<HttpState>) -> Router {
    Router::new()
        .route("/events", post(events))
        .route("/tenants/{tenant}/events", post(tenant_events))
        .route("/firehose", post(firehose_delivery))
        .route("/tenants/{tenant}/firehose", post(tenant_firehose_delivery))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .fallback(not_found)
        .layer(RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn(finish))
        .with_state(state)
}

/// Counts the answer and gives an error answer without a JSON body one.
async fn finish(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let response = json_error(response).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("minewatch_requests_total", "source" => "http", "status" => status)
        .increment(1);
    response
}

/// An error answer whose body is not JSON (axum's and tower-http's own) as
/// `{"error": ...}`, its text kept when it has one.
async fn json_error(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_string())
        .unwrap_or_default();
    let reason = match status {
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            let accepted = parts
                .headers
                .get(header::ACCEPT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("gzip, zstd, deflate");
            format!(
                "unsupported Content-Encoding: send the body uncompressed or as one of {accepted}"
            )
        }
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if allowed.is_empty() {
                "method not allowed on this path".to_string()
            } else {
                format!("method not allowed on this path; allowed: {allowed}")
            }
        }
        _ if !text.is_empty() => text,
        _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = serde_json::to_vec(&json!({"error": reason})).unwrap_or_default();
    Response::from_parts(parts, Body::from(body))
}

async fn not_found() -> Response {
    reply(
        StatusCode::NOT_FOUND,
        json!({"error": "no such path: POST /events, /tenants/<name>/events, /firehose or /tenants/<name>/firehose; GET /health, /ready or /metrics"}),
        None,
    )
}

/// The header Firehose sends its access key in.
const FIREHOSE_ACCESS_KEY: HeaderName = HeaderName::from_static("x-amz-firehose-access-key");
/// The header naming a Firehose request (the same on every attempt).
const FIREHOSE_REQUEST_ID: HeaderName = HeaderName::from_static("x-amz-firehose-request-id");
/// The header with the version of Firehose's request format.
const FIREHOSE_PROTOCOL_VERSION: HeaderName =
    HeaderName::from_static("x-amz-firehose-protocol-version");

/// Whether the request carries the configured token: as a bearer token, or, for a
/// Firehose delivery, as its access key.
fn authorized(state: &HttpState, headers: &HeaderMap, firehose: bool) -> bool {
    let Some(token) = state.token.get() else {
        return true;
    };
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let bearer = header(header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|given| given == token);
    let access_key = firehose && header(FIREHOSE_ACCESS_KEY).is_some_and(|k| k == token);
    bearer || access_key
}

/// What a route expects in its bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// `/events`: JSON or msgpack records (or a Firehose delivery, by its headers).
    Events,
    /// `/firehose`: Firehose deliveries only.
    Firehose,
}

async fn events(State(state): State<Arc<HttpState>>, headers: HeaderMap, body: Body) -> Response {
    answer(&state, None, Route::Events, &headers, body).await
}

async fn tenant_events(
    State(state): State<Arc<HttpState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&state, Some(&tenant), Route::Events, &headers, body).await
}

async fn firehose_delivery(
    State(state): State<Arc<HttpState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&state, None, Route::Firehose, &headers, body).await
}

async fn tenant_firehose_delivery(
    State(state): State<Arc<HttpState>>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    answer(&state, Some(&tenant), Route::Firehose, &headers, body).await
}

/// What became of a request, before it is put in the reply shape its sender reads.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Processed and committed.
    Processed(Receipt),
    /// Not processed (or not wholly): the sender should fix or resend it.
    Refused {
        /// The status to answer with.
        status: StatusCode,
        /// Why, for the sender.
        reason: String,
        /// Whether to tell the sender when to retry (back-pressure, failures).
        retry: bool,
    },
}

impl Outcome {
    /// 503 with `Retry-After`: the sources' memory budget is taken for now.
    fn over_budget(over: OverBudget) -> Outcome {
        Outcome::Refused {
            status: StatusCode::SERVICE_UNAVAILABLE,
            reason: over.to_string(),
            retry: true,
        }
    }

    /// A refusal the sender should not simply retry.
    fn refused(status: StatusCode, reason: impl Into<String>) -> Outcome {
        Outcome::Refused {
            status,
            reason: reason.into(),
            retry: false,
        }
    }
}

/// The reply shape a request gets.
#[derive(Debug)]
enum Protocol {
    /// minewatch's own: the receipt, or `{"error": ...}`.
    Events,
    /// Firehose's: `{"requestId", "timestamp"}`, plus `errorMessage` on failure.
    Firehose {
        /// The request's id, from its header or else its body.
        request_id: Option<String>,
    },
}

impl Protocol {
    /// Firehose's on the Firehose routes and for requests with Firehose's headers.
    fn of(route: Route, headers: &HeaderMap) -> Protocol {
        let firehose_headers = headers.contains_key(FIREHOSE_REQUEST_ID)
            || headers.contains_key(FIREHOSE_PROTOCOL_VERSION);
        if route == Route::Firehose || firehose_headers {
            Protocol::Firehose {
                request_id: headers
                    .get(FIREHOSE_REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
            }
        } else {
            Protocol::Events
        }
    }

    fn is_firehose(&self) -> bool {
        matches!(self, Protocol::Firehose { .. })
    }

    /// The response: status, body and, for a retryable refusal, `Retry-After`.
    fn render(&self, outcome: Outcome, retry_after_secs: u32) -> Response {
        let (status, body, retry) = match (self, outcome) {
            (Protocol::Events, Outcome::Processed(receipt)) => {
                (StatusCode::OK, json!(receipt), false)
            }
            (
                Protocol::Events,
                Outcome::Refused {
                    status,
                    reason,
                    retry,
                },
            ) => (status, json!({"error": reason}), retry),
            (Protocol::Firehose { request_id }, outcome) => {
                let mut body = json!({"requestId": request_id, "timestamp": now_millis()});
                match outcome {
                    Outcome::Processed(receipt) => {
                        tracing::debug!(
                            request_id,
                            records = receipt.records,
                            skipped = receipt.skipped,
                            alerts = receipt.alerts,
                            "Took a Firehose delivery."
                        );
                        (StatusCode::OK, body, false)
                    }
                    Outcome::Refused {
                        status,
                        reason,
                        retry,
                    } => {
                        tracing::warn!(
                            request_id,
                            status = status.as_u16(),
                            error = %reason,
                            "Refused a Firehose delivery; Firehose retries it."
                        );
                        body["errorMessage"] = reason.into();
                        (status, body, retry)
                    }
                }
            }
        };
        reply(status, body, retry.then_some(retry_after_secs))
    }
}

/// Milliseconds since the Unix epoch, now.
fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Reads the body (decompressed, within `max_body_bytes`), ingests it and answers in
/// the shape the sender reads; the request counts as being received (see
/// [`Receiving`]) from its headers until it is queued.
async fn answer(
    state: &Arc<HttpState>,
    tenant: Option<&str>,
    route: Route,
    headers: &HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let receiving = Receiving::start();
    let mut protocol = Protocol::of(route, headers);
    let outcome = match collect(body, state.config.max_body_bytes, &state.budget).await {
        Err(refused) => refused,
        Ok(_) if tenant.is_some_and(|name| !state.router.has(name)) => Outcome::refused(
            StatusCode::NOT_FOUND,
            format!("no tenant named {:?}", tenant.unwrap_or_default()),
        ),
        Ok(body) => {
            ingest(
                state,
                tenant,
                route,
                &mut protocol,
                headers,
                body,
                receiving,
            )
            .await
        }
    };
    let response = protocol.render(outcome, state.config.retry_after_secs);
    metrics::histogram!("minewatch_ack_seconds", "source" => "http")
        .record(started.elapsed().as_secs_f64());
    response
}

async fn ingest(
    state: &Arc<HttpState>,
    tenant: Option<&str>,
    route: Route,
    protocol: &mut Protocol,
    headers: &HeaderMap,
    body: Received,
    receiving: Receiving,
) -> Outcome {
    let Received { body, mut held } = body;
    if !authorized(state, headers, protocol.is_firehose()) {
        let reason = if protocol.is_firehose() {
            "missing or wrong X-Amz-Firehose-Access-Key: set the access key of the Firehose \
             stream's HTTP endpoint destination to the token of [sources.http]"
        } else {
            "missing or wrong token: send the token of [sources.http] as \
             `Authorization: Bearer <token>`"
        };
        return Outcome::refused(StatusCode::UNAUTHORIZED, reason);
    }
    metrics::counter!("minewatch_received_bytes_total", "source" => "http")
        .increment(body.len() as u64);
    let path = match (tenant, route) {
        (Some(name), Route::Events) => format!("http:/tenants/{name}/events"),
        (Some(name), Route::Firehose) => format!("http:/tenants/{name}/firehose"),
        (None, Route::Events) => "http:/events".to_string(),
        (None, Route::Firehose) => "http:/firehose".to_string(),
    };
    let source: Arc<str> = path.into();
    let read = state.read;
    let limit = state.config.max_body_bytes;
    let mut collected = Collected {
        record_field: state.record_field.clone(),
        // NDJSON lines of events no tenant wants are counted, not parsed.
        prefilter: state.router.prefilter(),
        ..Collected::default()
    };
    let firehose = protocol.is_firehose();
    let msgpack = payload::is_msgpack(headers);
    // Besides the body, the parsed records take about twice its bytes until processed.
    if let Err(over) = held.cover(held.bytes() + PARSED_PER_BODY_BYTE * body.len()) {
        return Outcome::over_budget(over);
    }
    let budget = state.budget.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        let found = if firehose {
            firehose::decode(&body, source, read, limit, &budget, &mut collected)
        } else {
            payload::decode(&body, msgpack, source, read, limit, &budget, &mut collected)
                .map(|()| None)
        };
        found.map(|request_id| (collected, request_id))
    })
    .await;
    let collected = match decoded {
        Ok(Ok((collected, body_request_id))) => {
            metrics::counter!("minewatch_received_events_total", "source" => "http")
                .increment(collected.records.len() as u64);
            if let Protocol::Firehose { request_id } = protocol
                && request_id.is_none()
            {
                *request_id = body_request_id;
            }
            collected
        }
        Ok(Err(refused)) => return refused,
        Err(_) => {
            return Outcome::refused(StatusCode::INTERNAL_SERVER_ERROR, "decoder failed");
        }
    };
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
    let (status, reason) = match verdict {
        Ok(receipt) => return Outcome::Processed(receipt),
        Err(Refused::Busy) => (StatusCode::TOO_MANY_REQUESTS, "pipeline queue full".into()),
        Err(Refused::OutputsFull(why)) => (StatusCode::SERVICE_UNAVAILABLE, why),
        Err(Refused::Closed) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()),
        Err(Refused::Failed(why)) => (StatusCode::INTERNAL_SERVER_ERROR, why),
    };
    Outcome::Refused {
        status,
        reason,
        retry: true,
    }
}

/// Parsed records are counted as this many times the body bytes they came from.
const PARSED_PER_BODY_BYTE: usize = 2;

/// Reads the body (decompressed as it arrives), covering its buffer in the memory budget
/// as it grows by half at a time (and both buffers while it moves to a bigger one), so
/// it holds at most 1.5x what arrived: 413 past
/// `limit`, 503 when the budget cannot cover it, 400 when it does not decompress or
/// arrives broken.
async fn collect(body: Body, limit: usize, budget: &Budget) -> Result<Received, Outcome> {
    let mut body = body;
    let mut held = budget.reservation("http");
    let mut buffer: Vec<u8> = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            Outcome::refused(
                StatusCode::BAD_REQUEST,
                format!("failed to read the body: {error}"),
            )
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let len = buffer.len() + data.len();
        if len > limit {
            return Err(Outcome::refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "body over max_body_bytes ({limit} bytes, after decompression): send \
                     smaller batches or raise [sources.http] max_body_bytes"
                ),
            ));
        }
        held.grow(&mut buffer, len, 0, limit)
            .map_err(Outcome::over_budget)?;
        buffer.extend_from_slice(&data);
    }
    Ok(Received {
        body: Bytes::from(buffer),
        held,
    })
}

/// A request body as received, and the share of the memory budget that covers it.
struct Received {
    body: Bytes,
    held: Reservation,
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

/// 200 `{"status":"ready"}`, or 503 `{"status":"not ready","reasons":[...]}` (see
/// [`crate::serve::ready`]); no token needed.
async fn ready(State(state): State<Arc<HttpState>>) -> Response {
    let reasons = match state.readiness.clone() {
        None => Vec::new(),
        Some(readiness) => tokio::task::spawn_blocking(move || readiness.reasons())
            .await
            .unwrap_or_else(|_| vec!["the readiness check panicked".to_string()]),
    };
    if reasons.is_empty() {
        reply(StatusCode::OK, json!({"status": "ready"}), None)
    } else {
        reply(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not ready", "reasons": reasons}),
            None,
        )
    }
}

async fn render_metrics(State(state): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    if !authorized(&state, &headers, false) {
        return reply(
            StatusCode::UNAUTHORIZED,
            json!({"error": "missing or wrong token: send the token of [sources.http] as `Authorization: Bearer <token>`"}),
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

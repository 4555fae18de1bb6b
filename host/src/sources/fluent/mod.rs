//! Fluent Forward protocol (v1) source: a server that Fluent Bit, Fluentd, Vector and the
//! fluent-logger libraries can forward CloudTrail records to.
//!
//! This module owns the public surface ([`serve`], [`ForwardConfig`], [`ForwardHandler`]
//! and the batch types); `protocol/` owns the wire format (framing, the four event modes,
//! EventTime, the HELO/PING/PONG handshake, acks) and `server.rs` owns sockets, connections,
//! timeouts and shutdown.
//!
//! What is supported, against the Forward Protocol Specification v1:
//! - Message `[tag, time, record, option?]`, Forward `[tag, [[time, record], ...], option?]`,
//!   PackedForward `[tag, bin|str, option?]` and CompressedPackedForward (option
//!   `compressed: "gzip"`, several concatenated gzip members allowed; `"text"` means
//!   uncompressed, as fluent-logger-node sends it).
//! - Time as integer seconds, EventTime (ext type 0: big-endian u32 seconds, u32 nanoseconds),
//!   a float, or nil (replaced by the arrival time, as Fluentd does); entries may also use
//!   Fluent Bit's `[[time, metadata], record]` shape, whose metadata is ignored.
//! - The `chunk` option: once the handler accepts the batch the server answers
//!   `{"ack": <chunk>}`; on a [`Refusal`] it answers nothing, so the client resends.
//! - Shared-key authentication (HELO/PING/PONG) when [`ForwardConfig::shared_key`] is set;
//!   user/password authentication is not offered (HELO carries an empty `auth`).
//! - Heartbeats: a msgpack nil message is ignored, a TCP connect-and-close is logged at debug
//!   only, and a UDP socket on the listener's address answers every datagram with the
//!   single byte `0x00` (the spec's UDP heartbeat reply).
//! - Fluent Bit metrics and traces (option `fluent_signal` 1 or 2) are acknowledged and
//!   dropped with one warning per connection: only logs are events here.
//!
//! Anything that is not msgpack, or is msgpack of the wrong shape, closes that connection
//! with one warning and never affects the others; so does a message over
//! [`ForwardConfig::max_message_bytes`]. (Fluentd's in_forward also takes JSON; this server
//! does not, and closes such a connection as garbage.) Individual entries that are
//! malformed (bad time, record not a map) are dropped and counted in
//! [`ForwardBatch::dropped`].
//!
//! TLS ([`serve_tls`]): with `tls_cert` and `tls_key` every connection starts with a TLS
//! handshake (Fluent Bit's and Fluentd's `out_forward` with `tls on`), run in the
//! connection's own task within a timeout, so a client that stalls or fails it affects
//! nobody else; the shared-key handshake then runs inside TLS. UDP heartbeats stay
//! plaintext (they carry nothing).

pub(crate) mod protocol;
mod server;

#[cfg(test)]
mod peer_tests;
#[cfg(test)]
mod tests;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

pub use server::{serve, serve_live, serve_tls};

// The msgpack helpers the HTTP source shares with Forward.
pub(crate) use protocol::{ProtocolError, StreamEntry, gunzip, read_entries};

use crate::serve::worker::Receiving;

/// What the server hands to the pipeline: one decoded chunk of events for one tag.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardBatch {
    /// The Fluent tag the client sent the events under.
    pub tag: String,
    /// The events whose record was a map, in the order the client sent them.
    pub records: Vec<ForwardRecord>,
    /// How many entries of this chunk were dropped (record not a map, unusable time, entry of
    /// the wrong shape).
    pub dropped: usize,
}

/// One event: its time and its record converted to JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardRecord {
    /// The event time the client attached.
    pub time: ForwardTime,
    /// The msgpack map converted to JSON: binary strings become UTF-8 (lossy), EventTime
    /// values become fractional seconds, other ext types become null, number, boolean and nil
    /// keys become their JSON text, and container keys the name of their kind ("a map").
    pub record: serde_json::Value,
}

/// An event time with nanosecond precision, in seconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ForwardTime {
    /// Whole seconds since the Unix epoch.
    pub seconds: u64,
    /// Nanoseconds within the second, below 1,000,000,000.
    pub nanos: u32,
}

/// Why a batch was not accepted; the server then sends no ack, so the client retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The pipeline is saturated; the client should retry later.
    Busy,
    /// The pipeline failed to take the batch, for the given reason.
    Failed(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Busy => f.write_str("the pipeline is busy"),
            Refusal::Failed(reason) => write!(f, "the pipeline failed: {reason}"),
        }
    }
}

/// Receives decoded batches; the server acks a chunk only after `handle` returns `Ok`.
pub trait ForwardHandler: Send + Sync + 'static {
    /// Takes one batch; messages of one connection are handed over one at a time, in order.
    /// `receiving` marks the chunk as on its way since its first bytes; drop it once the
    /// batch is queued (or refused).
    fn handle(
        &self,
        batch: ForwardBatch,
        receiving: Receiving,
    ) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + '_>>;
}

/// Settings of the Forward server, deserialisable from the configuration file.
#[derive(Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ForwardConfig {
    /// Address to listen on (TCP, and UDP for heartbeats), `host:port` (an IP address or a
    /// name such as `localhost`); loopback unless you mean otherwise. Beyond loopback, `serve` refuses to start without a shared key (or
    /// `tls_client_ca`), and with a shared key but no TLS, unless
    /// `allow_unauthenticated` or `allow_plaintext` says otherwise.
    pub listen: crate::sources::ListenAddr,
    /// Shared key for the HELO/PING/PONG handshake; none disables authentication.
    /// `--forward-shared-key` or the `MINEWATCH_FORWARD_SHARED_KEY` environment variable
    /// override it.
    pub shared_key: Option<String>,
    /// PEM certificate chain (leaf first) to serve TLS with; needs `tls_key`. Re-read
    /// on SIGHUP.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `tls_cert` (PKCS #8, PKCS #1 or SEC1, unencrypted).
    pub tls_key: Option<std::path::PathBuf>,
    /// PEM CA certificates: when set, every client must present a certificate signed by
    /// one of them (Fluent Bit's `tls.crt_file`/`tls.key_file`). Re-read on SIGHUP.
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Start even though the shared key's handshake would cross the network in clear (a
    /// listener beyond loopback with a shared key and no TLS).
    pub allow_plaintext: bool,
    /// Start even though anyone who reaches the listener may send events (a listener
    /// beyond loopback with neither a shared key nor `tls_client_ca`).
    pub allow_unauthenticated: bool,
    /// Server hostname sent in HELO/PONG.
    pub self_hostname: String,
    /// Largest accepted message (bytes) before the connection is closed as abusive.
    pub max_message_bytes: usize,
    /// Largest decompressed payload (bytes) of one CompressedPackedForward message.
    pub max_decompressed_bytes: usize,
    /// Idle connections are closed after this many seconds.
    pub idle_timeout_secs: u64,
    /// Connections beyond this many at once are closed right after being accepted.
    pub max_connections: usize,
    /// Whether to answer UDP heartbeats on the listener's address and port.
    pub udp_heartbeat: bool,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 24224)).into(),
            shared_key: None,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            allow_plaintext: false,
            allow_unauthenticated: false,
            self_hostname: "minewatch".to_owned(),
            max_message_bytes: 64 * 1024 * 1024,
            max_decompressed_bytes: 256 * 1024 * 1024,
            idle_timeout_secs: 300,
            max_connections: 1024,
            udp_heartbeat: true,
        }
    }
}

impl fmt::Debug for ForwardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The shared key is a secret: show only whether one is set.
        f.debug_struct("ForwardConfig")
            .field("listen", &self.listen)
            .field(
                "shared_key",
                &self.shared_key.as_ref().map(|_| "<redacted>"),
            )
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .field("tls_client_ca", &self.tls_client_ca)
            .field("allow_plaintext", &self.allow_plaintext)
            .field("allow_unauthenticated", &self.allow_unauthenticated)
            .field("self_hostname", &self.self_hostname)
            .field("max_message_bytes", &self.max_message_bytes)
            .field("max_decompressed_bytes", &self.max_decompressed_bytes)
            .field("idle_timeout_secs", &self.idle_timeout_secs)
            .field("max_connections", &self.max_connections)
            .field("udp_heartbeat", &self.udp_heartbeat)
            .finish()
    }
}

impl ForwardConfig {
    /// Checks the settings for values the server cannot work with.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(key) = &self.shared_key
            && key.is_empty()
        {
            anyhow::bail!("fluent shared_key is empty: remove it to disable authentication");
        }
        if self.self_hostname.is_empty() {
            anyhow::bail!("fluent self_hostname must not be empty");
        }
        if self.max_message_bytes == 0 {
            anyhow::bail!("fluent max_message_bytes must be positive");
        }
        if self.max_decompressed_bytes == 0 {
            anyhow::bail!("fluent max_decompressed_bytes must be positive");
        }
        if self.idle_timeout_secs == 0 {
            anyhow::bail!("fluent idle_timeout_secs must be positive");
        }
        if self.max_connections == 0 {
            anyhow::bail!("fluent max_connections must be positive");
        }
        self.tls_files()?;
        Ok(())
    }

    /// The listener's TLS files, if it serves TLS.
    ///
    /// # Errors
    /// Only one of `tls_cert` and `tls_key`, or `tls_client_ca` without them.
    pub fn tls_files(&self) -> anyhow::Result<Option<crate::tls::server::ServerTlsFiles>> {
        crate::tls::server::ServerTlsFiles::from_settings(
            "forward",
            self.tls_cert.as_deref(),
            self.tls_key.as_deref(),
            self.tls_client_ca.as_deref(),
        )
    }

    /// [`ForwardConfig::validate`], and refuses to expose the listener beyond loopback
    /// without protection (see [`crate::sources::check_exposure`]).
    ///
    /// # Errors
    /// What is wrong, and what to set instead.
    pub fn check(&self) -> anyhow::Result<()> {
        self.validate()?;
        for listen in self.listen.resolve()? {
            crate::sources::check_exposure(&crate::sources::Exposure {
                source: "forward",
                listen,
                secret: self.shared_key.as_ref().map(|_| "shared_key"),
                tls: self.tls_cert.is_some(),
                client_certificates: self.tls_client_ca.is_some(),
                allow_plaintext: self.allow_plaintext,
                allow_unauthenticated: self.allow_unauthenticated,
            })?;
        }
        Ok(())
    }
}

//! The `forward` output: a Fluent Forward protocol v1 client, for Fluent Bit's and
//! Fluentd's `in_forward` (and Vector's `fluent` source).
//!
//! Each batch is one Forward-mode message on a kept-alive TCP connection:
//! `[tag, [[EventTime, record], ...], {"chunk": <base64 id>, "size": <events>}]`, where
//! EventTime is MessagePack ext type 0 holding big-endian 32-bit seconds and
//! nanoseconds, taken from the item's time (see [`super::http`]) or else the current
//! time. With `require_ack` (the default) the batch counts as delivered only when the
//! receiver answers `{"ack": <the same chunk id>}` within `ack_timeout_secs`; otherwise
//! the connection is dropped and the batch is sent again on a new one (the receiver may
//! then see it twice: at-least-once). Without it, a batch counts as delivered once
//! written to the socket, and a receiver crash can lose it.
//!
//! With `shared_key` set, each connection starts with the protocol's handshake: the
//! server's `HELO` (nonce, user-auth salt), our `PING` carrying
//! `sha512_hex(salt + self_hostname + nonce + shared_key)` (and, when the server asks
//! for user authentication, `sha512_hex(auth_salt + username + password)`), and the
//! server's `PONG`, whose digest `sha512_hex(salt + server_hostname + nonce +
//! shared_key)` is checked.
//!
//! With `tls = true` the connection is TLS first (as Fluent Bit's `out_forward` with
//! `tls on` expects), and everything above runs inside it: the receiver's certificate is
//! verified against the system trust store or `ca_file`, by the host of `address` or
//! `tls_server_name` (also sent as SNI), and `tls_cert`/`tls_key` are presented when it
//! asks for a client certificate. A certificate the receiver or minewatch refuses is
//! logged once at ERROR; alerts stay spooled until it is fixed.

use std::io::{BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use rmpv::Value as Pack;
use serde::Deserialize;

use super::http::{Secret, item_time};
use super::settings::{Destination, NetworkOutput};
use super::spool::{Delivery, DeliveryError};
use crate::tls::client::ClientTls;

mod connection;
mod message;
#[cfg(test)]
mod tests;

use connection::{Auth, Connection, SendError, Transport, alive, handshake, map_get};
use message::{chunk_id, event_time, to_pack};

/// The `forward` output's settings: [`ForwardDestination`] with the TLS and spool
/// settings (the TLS ones need `tls = true`).
pub type ForwardConfig = NetworkOutput<ForwardDestination>;

/// The Fluent Forward receiver the `forward` output sends to, and how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardDestination {
    /// The receiver as `host:port`, e.g. `127.0.0.1:24224`.
    pub address: String,
    /// The events' tag.
    #[serde(default = "default_tag")]
    pub tag: String,
    /// Wait for the receiver's acknowledgement of each batch before forgetting it.
    #[serde(default = "default_require_ack")]
    pub require_ack: bool,
    /// How long to wait for an acknowledgement, in seconds.
    #[serde(default = "default_ack_timeout_secs")]
    pub ack_timeout_secs: u64,
    /// How long to wait for a TCP connection (and for the handshake), in seconds.
    #[serde(default = "default_connect_timeout_secs")]
    pub connect_timeout_secs: u64,
    /// How long one write to the socket may block, in seconds.
    #[serde(default = "default_write_timeout_secs")]
    pub write_timeout_secs: u64,
    /// The receiver's `shared_key`, to run the authentication handshake (default: none).
    #[serde(default)]
    pub shared_key: Option<Secret>,
    /// The host name sent in the handshake (default: this machine's host name).
    #[serde(default)]
    pub self_hostname: Option<String>,
    /// User name, for a receiver that asks for user authentication.
    #[serde(default)]
    pub username: Option<String>,
    /// Password of `username`.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Speak TLS (Fluent Bit / Fluentd `in_forward` with `tls on`); the handshake and
    /// events then travel encrypted.
    #[serde(default)]
    pub tls: bool,
    /// The name the receiver's certificate must hold, also sent as SNI (Fluent Bit's
    /// `tls.vhost`) [default: the host of `address`].
    #[serde(default)]
    pub tls_server_name: Option<String>,
}

/// Default tag of the events.
pub const DEFAULT_TAG: &str = "minewatch.alert";

fn default_tag() -> String {
    DEFAULT_TAG.to_string()
}

fn default_require_ack() -> bool {
    true
}

fn default_ack_timeout_secs() -> u64 {
    30
}

fn default_connect_timeout_secs() -> u64 {
    10
}

fn default_write_timeout_secs() -> u64 {
    30
}

impl Destination for ForwardDestination {
    type Delivery = ForwardDelivery;
    const TYPE: &'static str = "forward";

    fn uses_tls(&self) -> bool {
        self.tls
    }

    fn delivery(&self, client_tls: &ClientTls, name: &str) -> Result<ForwardDelivery> {
        let valid_address = self.address.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid_address {
            bail!(
                "address {:?} must be host:port, e.g. 127.0.0.1:24224",
                self.address
            );
        }
        if self.tag.is_empty() {
            bail!("tag must not be empty");
        }
        for (setting, value) in [
            ("ack_timeout_secs", self.ack_timeout_secs),
            ("connect_timeout_secs", self.connect_timeout_secs),
            ("write_timeout_secs", self.write_timeout_secs),
        ] {
            if value == 0 {
                bail!("{setting} must be above 0");
            }
        }
        if self.username.is_some() != self.password.is_some() {
            bail!("username and password go together; set both or neither");
        }
        if self.username.is_some() && self.shared_key.is_none() {
            bail!(
                "username needs shared_key: user authentication is part of the shared-key handshake"
            );
        }
        let tls = if self.tls {
            let host = self
                .tls_server_name
                .as_deref()
                .or_else(|| self.address.rsplit_once(':').map(|(host, _)| host))
                .unwrap_or_default();
            let server_name = crate::tls::client::server_name(host).with_context(|| {
                if self.tls_server_name.is_some() {
                    "tls_server_name".to_string()
                } else {
                    format!("address {:?}", self.address)
                }
            })?;
            Some((client_tls.rustls(name)?, server_name))
        } else {
            if client_tls.any_set() || self.tls_server_name.is_some() {
                bail!("ca_file, tls_verify, tls_cert, tls_key and tls_server_name need tls = true");
            }
            None
        };
        let auth = self.shared_key.as_ref().map(|key| Auth {
            shared_key: key.clone(),
            self_hostname: self
                .self_hostname
                .clone()
                .or_else(super::http::hostname)
                .unwrap_or_else(|| "minewatch".to_string()),
            username: self.username.clone(),
            password: self.password.clone(),
        });
        Ok(ForwardDelivery {
            address: self.address.clone(),
            tag: self.tag.clone(),
            require_ack: self.require_ack,
            ack_timeout: Duration::from_secs(self.ack_timeout_secs),
            connect_timeout: Duration::from_secs(self.connect_timeout_secs),
            write_timeout: Duration::from_secs(self.write_timeout_secs),
            auth,
            tls,
            connection: None,
            auth_error_logged: false,
        })
    }
}

/// Sends batches as Forward-mode messages over TCP.
pub struct ForwardDelivery {
    address: String,
    tag: String,
    require_ack: bool,
    ack_timeout: Duration,
    connect_timeout: Duration,
    write_timeout: Duration,
    auth: Option<Auth>,
    tls: Option<(
        Arc<rustls::ClientConfig>,
        rustls_pki_types::ServerName<'static>,
    )>,
    connection: Option<Connection>,
    auth_error_logged: bool,
}

impl ForwardDelivery {
    /// The Forward-mode message for `lines` with chunk id `chunk`.
    ///
    /// # Errors
    /// A line is not JSON, or the message cannot be encoded.
    pub fn message(&self, lines: &[&[u8]], chunk: &str) -> Result<Vec<u8>> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut entries = Vec::with_capacity(lines.len());
        for line in lines {
            let record: serde_json::Value =
                serde_json::from_slice(line).context("a spooled line is not JSON")?;
            let record = match record {
                serde_json::Value::Object(_) => to_pack(record),
                other => Pack::Map(vec![(Pack::from("message"), to_pack(other))]),
            };
            let (secs, nanos) = item_time(line)
                .and_then(|(s, n)| u32::try_from(s).ok().map(|s| (s, n)))
                .unwrap_or((
                    u32::try_from(now.as_secs()).unwrap_or(u32::MAX),
                    now.subsec_nanos(),
                ));
            entries.push(Pack::Array(vec![event_time(secs, nanos), record]));
        }
        let mut options = vec![(Pack::from("size"), Pack::from(lines.len() as u64))];
        if self.require_ack {
            options.push((Pack::from("chunk"), Pack::from(chunk)));
        }
        let message = Pack::Array(vec![
            Pack::from(self.tag.as_str()),
            Pack::Array(entries),
            Pack::Map(options),
        ]);
        let mut bytes = Vec::with_capacity(lines.iter().map(|l| l.len() + 16).sum());
        rmpv::encode::write_value(&mut bytes, &message)
            .context("failed to encode a Forward message")?;
        Ok(bytes)
    }

    fn send(&mut self, message: &[u8], chunk: &str) -> Result<(), SendError> {
        if self.connection.as_mut().is_some_and(|c| !alive(c))
            && let Some(stale) = self.connection.take()
        {
            stale.close();
        }
        if self.connection.is_none() {
            self.connection = Some(self.connect()?);
        }
        let Some(connection) = self.connection.as_mut() else {
            return Err(SendError::Other(anyhow!("no connection")));
        };
        let written = connection
            .writer()
            .write_all(message)
            .and_then(|()| connection.writer().flush());
        if let Err(error) = written {
            return Err(connection.refusal(&self.address).unwrap_or_else(|| {
                anyhow!(error)
                    .context(format!("failed to send to {}", self.address))
                    .into()
            }));
        }
        if !self.require_ack {
            return Ok(());
        }
        connection
            .tcp()
            .set_read_timeout(Some(self.ack_timeout))
            .context("failed to set a socket timeout")?;
        let answer = match rmpv::decode::read_value(&mut connection.reader) {
            Ok(answer) => answer,
            Err(error) => {
                return Err(connection.refusal(&self.address).unwrap_or_else(|| {
                    anyhow!(
                        "no acknowledgement from {} within {} s ({error})",
                        self.address,
                        self.ack_timeout.as_secs()
                    )
                    .into()
                }));
            }
        };
        if answer
            .as_array()
            .and_then(|a| a.first())
            .and_then(Pack::as_str)
            == Some("HELO")
        {
            return Err(SendError::Auth(anyhow!(
                "{} asks for the shared-key handshake; set the output's shared_key",
                self.address
            )));
        }
        let acked = map_get(&answer, "ack").and_then(Pack::as_str);
        if acked != Some(chunk) {
            return Err(SendError::Other(anyhow!(
                "{} acknowledged {acked:?}, not chunk {chunk}",
                self.address
            )));
        }
        Ok(())
    }

    fn connect(&self) -> Result<Connection, SendError> {
        let addrs = self
            .address
            .to_socket_addrs()
            .with_context(|| format!("failed to resolve {}", self.address))?;
        let mut last_error = None;
        let mut stream = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(error) => last_error = Some(error),
            }
        }
        let stream = match (stream, last_error) {
            (Some(stream), _) => stream,
            (None, Some(error)) => {
                return Err(anyhow!(error)
                    .context(format!("failed to connect to {}", self.address))
                    .into());
            }
            (None, None) => return Err(anyhow!("{} resolves to no address", self.address).into()),
        };
        stream
            .set_nodelay(true)
            .context("failed to set TCP_NODELAY")?;
        stream
            .set_write_timeout(Some(self.write_timeout))
            .context("failed to set a socket timeout")?;
        stream
            .set_read_timeout(Some(self.connect_timeout))
            .context("failed to set a socket timeout")?;
        let transport = match &self.tls {
            None => Transport::Plain(stream),
            Some((config, name)) => {
                let session = rustls::ClientConnection::new(config.clone(), name.clone())
                    .context("failed to start a TLS session")?;
                let mut tls = rustls::StreamOwned::new(session, stream);
                while tls.conn.is_handshaking() {
                    if let Err(error) = tls.conn.complete_io(&mut tls.sock) {
                        let why = match crate::tls::rustls_error(&error) {
                            Some(tls_error) => crate::tls::explain(tls_error),
                            None => error.to_string(),
                        };
                        return Err(SendError::Tls(anyhow!(
                            "TLS handshake with {} failed: {why}",
                            self.address
                        )));
                    }
                }
                Transport::Tls(Box::new(tls))
            }
        };
        let mut connection = Connection {
            reader: BufReader::new(transport),
        };
        if let Some(auth) = &self.auth {
            handshake(&mut connection, auth, &self.address)?;
        }
        Ok(connection)
    }
}

impl Delivery for ForwardDelivery {
    fn deliver(&mut self, lines: &[&[u8]]) -> Result<(), DeliveryError> {
        let chunk = chunk_id();
        let message = self
            .message(lines, &chunk)
            .map_err(DeliveryError::Rejected)?;
        match self.send(&message, &chunk) {
            Ok(()) => {
                self.auth_error_logged = false;
                Ok(())
            }
            Err(failure) => {
                if let Some(connection) = self.connection.take() {
                    connection.close();
                }
                // Settings an operator must fix are logged once until a send succeeds.
                let (error, fix) = match failure {
                    SendError::Auth(error) => (
                        error,
                        Some(
                            "Forward receiver refused the handshake; fix the output's credentials. Alerts stay spooled.",
                        ),
                    ),
                    SendError::Tls(error) => (
                        error,
                        Some(
                            "TLS with the Forward receiver failed; fix the output's TLS settings or the receiver's certificate. Alerts stay spooled.",
                        ),
                    ),
                    SendError::Other(error) => (error, None),
                };
                if let Some(fix) = fix
                    && !self.auth_error_logged
                {
                    self.auth_error_logged = true;
                    tracing::error!(address = %self.address, error = format!("{error:#}"), "{fix}");
                }
                Err(DeliveryError::Retry(error))
            }
        }
    }
}

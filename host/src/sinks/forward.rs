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

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use rmpv::Value as Pack;
use serde::Deserialize;
use sha2::{Digest, Sha512};

use super::http::{Secret, item_time};
use super::retry::random_u64;
use super::settings::{Destination, NetworkOutput};
use super::spool::{Delivery, DeliveryError};
use crate::tls::client::ClientTls;

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

#[derive(Clone)]
struct Auth {
    shared_key: Secret,
    self_hostname: String,
    username: Option<String>,
    password: Option<Secret>,
}

/// The byte stream under the Forward protocol: the socket, or TLS over it.
enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(stream) => stream,
            Transport::Tls(tls) => &tls.sock,
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.read(buf),
            Transport::Tls(tls) => tls.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Plain(stream) => stream.write(buf),
            Transport::Tls(tls) => tls.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Transport::Plain(stream) => stream.flush(),
            Transport::Tls(tls) => tls.flush(),
        }
    }
}

/// One connection to the receiver; reads are buffered, writes go straight through.
struct Connection {
    reader: BufReader<Transport>,
}

impl Connection {
    fn tcp(&self) -> &TcpStream {
        self.reader.get_ref().tcp()
    }

    fn writer(&mut self) -> &mut Transport {
        self.reader.get_mut()
    }

    /// Why the receiver dropped a TLS connection, when it said so with an alert (as a
    /// TLS 1.3 server does after the handshake when it refuses the client's
    /// certificate); read after a failed write or read.
    fn refusal(&mut self, address: &str) -> Option<SendError> {
        let Transport::Tls(tls) = self.writer() else {
            return None;
        };
        let _ = tls.sock.set_read_timeout(Some(Duration::from_secs(1)));
        let mut byte = [0u8; 1];
        let error = tls.read(&mut byte).err()?;
        let why = crate::tls::rustls_error(&error)?;
        Some(SendError::Tls(anyhow!(
            "{address} refused the TLS connection: {}",
            crate::tls::explain(why)
        )))
    }

    /// Closes the connection (with a TLS close_notify first, best effort).
    fn close(mut self) {
        if let Transport::Tls(tls) = self.writer() {
            tls.conn.send_close_notify();
            let _ = tls.conn.write_tls(&mut tls.sock);
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
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

/// A failure of one send, before it is turned into a [`DeliveryError`].
enum SendError {
    /// The receiver refused our credentials (operator action needed).
    Auth(anyhow::Error),
    /// The TLS handshake failed: a certificate either side refused, or no TLS there.
    Tls(anyhow::Error),
    /// Anything else: network, timeout, protocol.
    Other(anyhow::Error),
}

impl From<anyhow::Error> for SendError {
    fn from(error: anyhow::Error) -> Self {
        SendError::Other(error)
    }
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

/// Whether a kept connection still looks usable: no EOF and no unexpected bytes.
///
/// Over TLS, records the receiver sent since (session tickets, a close_notify) are read
/// and processed first; any application data among them means the connection is out of
/// step.
fn alive(connection: &mut Connection) -> bool {
    if !connection.reader.buffer().is_empty() || connection.tcp().set_nonblocking(true).is_err() {
        return false;
    }
    let idle = match connection.writer() {
        Transport::Plain(stream) => {
            let mut byte = [0u8; 1];
            matches!(stream.peek(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        }
        Transport::Tls(tls) => loop {
            match tls.conn.read_tls(&mut tls.sock) {
                Ok(0) => break false,
                Ok(_) => match tls.conn.process_new_packets() {
                    Ok(state)
                        if state.plaintext_bytes_to_read() == 0 && !state.peer_has_closed() => {}
                    _ => break false,
                },
                Err(e) => break e.kind() == std::io::ErrorKind::WouldBlock,
            }
        },
    };
    connection.tcp().set_nonblocking(false).is_ok() && idle
}

/// Runs HELO, PING, PONG on a new connection.
fn handshake(connection: &mut Connection, auth: &Auth, address: &str) -> Result<(), SendError> {
    let helo = match rmpv::decode::read_value(&mut connection.reader) {
        Ok(helo) => helo,
        Err(error) => {
            return Err(connection.refusal(address).unwrap_or_else(|| {
                anyhow!("no HELO from {address} ({error}); is shared_key set on the receiver?")
                    .into()
            }));
        }
    };
    let fields = helo
        .as_array()
        .filter(|a| a.len() == 2 && a[0].as_str() == Some("HELO"));
    let Some(fields) = fields else {
        return Err(anyhow!("{address} sent {helo} instead of HELO").into());
    };
    let nonce = map_get(&fields[1], "nonce")
        .map(bytes_of)
        .unwrap_or_default();
    let user_salt = map_get(&fields[1], "auth")
        .map(bytes_of)
        .unwrap_or_default();
    let salt = format!("{:016x}{:016x}", random_u64(), random_u64());
    let key = auth.shared_key.expose().as_bytes();
    let digest = sha512_hex(&[salt.as_bytes(), auth.self_hostname.as_bytes(), &nonce, key]);
    let (username, password_digest) = if user_salt.is_empty() {
        (String::new(), String::new())
    } else {
        let (Some(user), Some(password)) = (&auth.username, &auth.password) else {
            return Err(SendError::Auth(anyhow!(
                "{address} asks for user authentication; set the output's username and password"
            )));
        };
        let digest = sha512_hex(&[&user_salt, user.as_bytes(), password.expose().as_bytes()]);
        (user.clone(), digest)
    };
    let ping = Pack::Array(vec![
        Pack::from("PING"),
        Pack::from(auth.self_hostname.as_str()),
        Pack::from(salt.as_str()),
        Pack::from(digest),
        Pack::from(username),
        Pack::from(password_digest),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &ping).context("failed to encode PING")?;
    connection
        .writer()
        .write_all(&bytes)
        .and_then(|()| connection.writer().flush())
        .with_context(|| format!("failed to send PING to {address}"))?;
    let pong = rmpv::decode::read_value(&mut connection.reader)
        .map_err(|error| anyhow!("no PONG from {address} ({error})"))?;
    let fields = pong
        .as_array()
        .filter(|a| a.len() == 5 && a[0].as_str() == Some("PONG"));
    let Some(fields) = fields else {
        return Err(anyhow!("{address} sent {pong} instead of PONG").into());
    };
    if fields[1].as_bool() != Some(true) {
        let reason = fields[2].as_str().unwrap_or("no reason given");
        return Err(SendError::Auth(anyhow!(
            "{address} refused authentication: {reason}"
        )));
    }
    let server_hostname = fields[3].as_str().unwrap_or_default();
    let expected = sha512_hex(&[salt.as_bytes(), server_hostname.as_bytes(), &nonce, key]);
    if !fields[4]
        .as_str()
        .is_some_and(|digest| digest.eq_ignore_ascii_case(&expected))
    {
        return Err(SendError::Auth(anyhow!(
            "{address} answered with a wrong shared-key digest; the shared_key differs"
        )));
    }
    Ok(())
}

/// A MessagePack value's bytes, whether sent as binary or as a string.
fn bytes_of(value: &Pack) -> Vec<u8> {
    match value {
        Pack::Binary(bytes) => bytes.clone(),
        Pack::String(text) => text.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

/// The value under string key `key` of a MessagePack map.
fn map_get<'a>(value: &'a Pack, key: &str) -> Option<&'a Pack> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// Lowercase hex SHA-512 of the concatenated `parts`.
fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .fold(String::with_capacity(128), |mut out, b| {
            out.push_str(&format!("{b:02x}"));
            out
        })
}

/// An EventTime: ext type 0, big-endian seconds then nanoseconds.
fn event_time(secs: u32, nanos: u32) -> Pack {
    let mut data = Vec::with_capacity(8);
    data.extend_from_slice(&secs.to_be_bytes());
    data.extend_from_slice(&nanos.to_be_bytes());
    Pack::Ext(0, data)
}

/// A JSON value as MessagePack.
fn to_pack(value: serde_json::Value) -> Pack {
    match value {
        serde_json::Value::Null => Pack::Nil,
        serde_json::Value::Bool(b) => Pack::Boolean(b),
        serde_json::Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Pack::from(u)
            } else if let Some(i) = n.as_i64() {
                Pack::from(i)
            } else {
                Pack::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        serde_json::Value::String(s) => Pack::from(s),
        serde_json::Value::Array(items) => Pack::Array(items.into_iter().map(to_pack).collect()),
        serde_json::Value::Object(map) => Pack::Map(
            map.into_iter()
                .map(|(k, v)| (Pack::from(k), to_pack(v)))
                .collect(),
        ),
    }
}

/// A unique chunk id: 16 random bytes in base64.
fn chunk_id() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_le_bytes());
    base64(&bytes)
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = (u32::from(group[0]) << 16)
            | (u32::from(group.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(group.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        for (input, output) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), output);
        }
        assert_eq!(chunk_id().len(), 24);
        assert_ne!(chunk_id(), chunk_id());
    }

    #[test]
    fn sha512_hex_matches_the_standard_vector() {
        assert_eq!(
            sha512_hex(&[b"a", b"bc"]),
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
    }

    #[test]
    fn messages_are_forward_mode_with_event_times() {
        let config: ForwardConfig =
            serde_json::from_value(serde_json::json!({"address": "127.0.0.1:24224"})).unwrap();
        let delivery = config.delivery().unwrap();
        let bytes = delivery
            .message(
                &[
                    br#"{"time":"2024-12-16T18:41:07.250Z","n":1,"f":1.5,"neg":-2}"#,
                    b"[1]",
                ],
                "abc",
            )
            .unwrap();
        let message = rmpv::decode::read_value(&mut &bytes[..]).unwrap();
        let parts = message.as_array().unwrap();
        assert_eq!(parts[0].as_str(), Some("minewatch.alert"));
        let entries = parts[1].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        let first = entries[0].as_array().unwrap();
        let Pack::Ext(0, data) = &first[0] else {
            panic!("not an EventTime: {}", first[0]);
        };
        assert_eq!(data[..4], 1_734_374_467u32.to_be_bytes());
        assert_eq!(data[4..], 250_000_000u32.to_be_bytes());
        assert_eq!(map_get(&first[1], "n").and_then(Pack::as_u64), Some(1));
        assert_eq!(map_get(&first[1], "f").and_then(Pack::as_f64), Some(1.5));
        assert_eq!(map_get(&first[1], "neg").and_then(Pack::as_i64), Some(-2));
        let second = entries[1].as_array().unwrap();
        assert!(map_get(&second[1], "message").is_some());
        assert_eq!(
            map_get(&parts[2], "chunk").and_then(Pack::as_str),
            Some("abc")
        );
        assert_eq!(map_get(&parts[2], "size").and_then(Pack::as_u64), Some(2));
    }

    #[test]
    fn settings_are_checked() {
        for (json, needle) in [
            (serde_json::json!({"address": "localhost"}), "host:port"),
            (serde_json::json!({"address": "h:1", "tag": ""}), "tag"),
            (
                serde_json::json!({"address": "h:1", "ack_timeout_secs": 0}),
                "ack_timeout_secs",
            ),
            (
                serde_json::json!({"address": "h:1", "username": "u"}),
                "password",
            ),
            (
                serde_json::json!({"address": "h:1", "username": "u", "password": "p"}),
                "shared_key",
            ),
            (
                serde_json::json!({"address": "h:1", "ca_file": "ca.pem"}),
                "need tls = true",
            ),
            (
                serde_json::json!({"address": "h:1", "tls": true, "ca_file": "/nonexistent/ca.pem"}),
                "ca_file /nonexistent/ca.pem: cannot read it",
            ),
            (
                serde_json::json!({"address": "h:1", "tls": true, "tls_server_name": "no such name"}),
                "tls_server_name",
            ),
        ] {
            let config: ForwardConfig = serde_json::from_value(json).unwrap();
            let error = format!("{:#}", config.delivery().err().unwrap());
            assert!(error.contains(needle), "{error}");
        }
        let config: ForwardConfig =
            serde_json::from_value(serde_json::json!({"address": "h:1", "shared_key": "k3y"}))
                .unwrap();
        assert!(!format!("{config:?}").contains("k3y"));
    }
}

//! One connection to a Forward receiver: TCP or TLS, kept alive between batches, and
//! the shared-key handshake that opens it.

use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, anyhow};
use rmpv::Value as Pack;

use crate::sinks::http::Secret;
use crate::sinks::retry::random_u64;
use crate::sources::fluent::protocol::sha512_hex;
#[derive(Clone)]
pub(super) struct Auth {
    pub(super) shared_key: Secret,
    pub(super) self_hostname: String,
    pub(super) username: Option<String>,
    pub(super) password: Option<Secret>,
}

/// The byte stream under the Forward protocol: the socket, or TLS over it.
pub(super) enum Transport {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Transport {
    pub(super) fn tcp(&self) -> &TcpStream {
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
pub(super) struct Connection {
    pub(super) reader: BufReader<Transport>,
}

impl Connection {
    pub(super) fn tcp(&self) -> &TcpStream {
        self.reader.get_ref().tcp()
    }

    pub(super) fn writer(&mut self) -> &mut Transport {
        self.reader.get_mut()
    }

    /// Why the receiver dropped a TLS connection, when it said so with an alert (as a
    /// TLS 1.3 server does after the handshake when it refuses the client's
    /// certificate); read after a failed write or read.
    pub(super) fn refusal(&mut self, address: &str) -> Option<SendError> {
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
    pub(super) fn close(mut self) {
        if let Transport::Tls(tls) = self.writer() {
            tls.conn.send_close_notify();
            let _ = tls.conn.write_tls(&mut tls.sock);
        }
        let _ = self.tcp().shutdown(Shutdown::Both);
    }
}

/// Whether a kept connection still looks usable: no EOF and no unexpected bytes.
///
/// Over TLS, records the receiver sent since (session tickets, a close_notify) are read
/// and processed first; any application data among them means the connection is out of
/// step.
pub(super) fn alive(connection: &mut Connection) -> bool {
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
pub(super) fn handshake(
    connection: &mut Connection,
    auth: &Auth,
    address: &str,
) -> Result<(), SendError> {
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
pub(super) fn bytes_of(value: &Pack) -> Vec<u8> {
    match value {
        Pack::Binary(bytes) => bytes.clone(),
        Pack::String(text) => text.as_bytes().to_vec(),
        _ => Vec::new(),
    }
}

/// The value under string key `key` of a MessagePack map.
pub(super) fn map_get<'a>(value: &'a Pack, key: &str) -> Option<&'a Pack> {
    value
        .as_map()?
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// A failure of one send, before it is turned into a `DeliveryError`.
pub(super) enum SendError {
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

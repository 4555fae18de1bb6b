//! The shared-key handshake: HELO (the server's nonce), the client's PING checked
//! against the nonce and the key (SHA-512 digests, lower-case hex, compared in constant
//! time), and the PONG that accepts or refuses it.

use rmpv::{Value, ValueRef};
use sha2::{Digest, Sha512};

use super::json::lossy;
use super::read_one;

fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).expect("writing msgpack to a Vec cannot fail");
    out
}

/// Encodes HELO: `["HELO", {"nonce": <bin>, "auth": "", "keepalive": true}]`; the empty
/// `auth` tells the client that no user/password authentication is required.
pub(crate) fn encode_helo(nonce: &[u8]) -> Vec<u8> {
    encode(&Value::Array(vec![
        Value::from("HELO"),
        Value::Map(vec![
            (Value::from("nonce"), Value::Binary(nonce.to_vec())),
            (Value::from("auth"), Value::from("")),
            (Value::from("keepalive"), Value::Boolean(true)),
        ]),
    ]))
}

/// Encodes PONG: `["PONG", accepted, reason, self_hostname, digest]`.
pub(crate) fn encode_pong(
    accepted: bool,
    reason: &str,
    self_hostname: &str,
    digest: &str,
) -> Vec<u8> {
    encode(&Value::Array(vec![
        Value::from("PONG"),
        Value::Boolean(accepted),
        Value::from(reason),
        Value::from(self_hostname),
        Value::from(digest),
    ]))
}

/// Lower-case hex SHA-512 of the concatenated parts, as the handshake digests are defined.
pub(crate) fn sha512_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The server's answer to the client's first message when a shared key is configured.
#[derive(Debug)]
pub(crate) struct PingVerdict {
    /// The encoded PONG to send.
    pub(crate) pong: Vec<u8>,
    /// Why the client was refused, or `None` when it authenticated.
    pub(crate) refusal: Option<String>,
    /// The hostname the client announced, if it got that far.
    pub(crate) client_hostname: Option<String>,
}

/// Checks a PING (`["PING", client_hostname, salt, digest, username, password]`) against
/// the nonce sent in HELO and the shared key, and prepares the PONG.
pub(crate) fn answer_ping(
    frame: &[u8],
    nonce: &[u8],
    shared_key: &str,
    self_hostname: &str,
) -> PingVerdict {
    let refuse = |reason: &str, client_hostname: Option<String>| PingVerdict {
        pong: encode_pong(false, reason, self_hostname, ""),
        refusal: Some(reason.to_owned()),
        client_hostname,
    };
    let Ok(ValueRef::Array(items)) = read_one(frame) else {
        return refuse("expected a PING message", None);
    };
    let text = |value: &ValueRef<'_>| match value {
        ValueRef::String(text) => Some(text.as_bytes().to_vec()),
        ValueRef::Binary(bytes) => Some(bytes.to_vec()),
        _ => None,
    };
    let (Some(ping), Some(hostname), Some(salt), Some(digest)) = (
        items.first().and_then(text),
        items.get(1).and_then(text),
        items.get(2).and_then(text),
        items.get(3).and_then(text),
    ) else {
        return refuse("expected a PING message", None);
    };
    if ping != b"PING" || items.len() != 6 {
        return refuse("expected a PING message", None);
    }
    let client_hostname = Some(lossy(&hostname));
    if hostname == self_hostname.as_bytes() {
        return refuse(
            "same hostname between input and output: invalid configuration",
            client_hostname,
        );
    }
    let expected = sha512_hex(&[&salt, &hostname, nonce, shared_key.as_bytes()]);
    if !constant_time_eq(expected.as_bytes(), &digest.to_ascii_lowercase()) {
        return refuse("shared key mismatch", client_hostname);
    }
    let proof = sha512_hex(&[
        &salt,
        self_hostname.as_bytes(),
        nonce,
        shared_key.as_bytes(),
    ]);
    PingVerdict {
        pong: encode_pong(true, "", self_hostname, &proof),
        refusal: None,
        client_hostname,
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

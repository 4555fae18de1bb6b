//! `[store.redis]`: how to reach Redis, and the client built from it (plain, or TLS
//! for `rediss://` with its CA and client certificate files read and checked up front).

use anyhow::{Context, Result};
use serde::Deserialize;

/// How to reach Redis (`[store]` in the config).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db` (Redis 7 or Valkey), or `rediss://...` for
    /// TLS (rustls; the server's certificate is verified against the system trust store
    /// or `ca_file`, by the URL's host name).
    pub url: String,
    /// First part of every key, so several deployments can share one server.
    pub key_prefix: String,
    /// Longest wait for a connection or an answer before the call counts as failed.
    pub timeout_ms: u64,
    /// PEM CA certificates that sign the server's certificate, trusted instead of the
    /// system trust store; `rediss://` only.
    pub ca_file: Option<std::path::PathBuf>,
    /// PEM client certificate chain, for a server with `tls-auth-clients yes`; needs
    /// `tls_key`; `rediss://` only.
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of `tls_cert` (PKCS #8, PKCS #1 or SEC1, unencrypted).
    pub tls_key: Option<std::path::PathBuf>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379/0".into(),
            key_prefix: "minewatch".into(),
            timeout_ms: 2000,
            ca_file: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The client for `config`: plain, or TLS for `rediss://` with the CA and client
/// certificate files (checked here, so a bad file is an error now, not at connection).
pub(super) fn client(config: &RedisConfig) -> Result<redis::Client> {
    let invalid = || format!("invalid Redis URL {}", config.url);
    let tls = crate::tls::client::ClientTls {
        ca_file: config.ca_file.clone(),
        verify: true,
        cert: config.tls_cert.clone(),
        key: config.tls_key.clone(),
    };
    if !config.url.starts_with("rediss://") {
        anyhow::ensure!(
            !tls.any_set(),
            "[store.redis] ca_file, tls_cert and tls_key need a rediss:// URL"
        );
        return redis::Client::open(config.url.as_str()).with_context(invalid);
    }
    // The Redis client asks rustls for the process's default provider.
    crate::tls::provider();
    tls.findings().context("[store.redis]")?;
    if tls.ca_file.is_none() && tls.cert.is_none() {
        return redis::Client::open(config.url.as_str()).with_context(invalid);
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("failed to read {}", path.display()))
    };
    let client_tls = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    let root_cert = tls.ca_file.as_deref().map(read).transpose()?;
    redis::Client::build_with_tls(
        config.url.as_str(),
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .with_context(invalid)
}

//! The listeners' side of TLS: certificate files, a reloadable server configuration, the
//! handshake of one accepted connection, and a TLS listener for axum.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::{Finding, inspect_certificates, read_certificates, read_private_key};

/// How long a client may take to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes one listener runs at once; more connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

/// The certificate files of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerTlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key of the leaf.
    pub key: PathBuf,
    /// PEM CA certificates that sign the client certificates required, if any.
    pub client_ca: Option<PathBuf>,
}

impl ServerTlsFiles {
    /// The files named by a source's settings: none without `tls_cert` and `tls_key`.
    ///
    /// # Errors
    /// Only one of `tls_cert` and `tls_key` is set, or `tls_client_ca` without them.
    pub fn from_settings(
        source: &str,
        cert: Option<&Path>,
        key: Option<&Path>,
        client_ca: Option<&Path>,
    ) -> Result<Option<ServerTlsFiles>> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(ServerTlsFiles {
                cert: cert.to_path_buf(),
                key: key.to_path_buf(),
                client_ca: client_ca.map(Path::to_path_buf),
            })),
            (None, None) if client_ca.is_some() => bail!(
                "[sources.{source}] tls_client_ca needs tls_cert and tls_key: client \
                 certificates are checked during a TLS handshake"
            ),
            (None, None) => Ok(None),
            (Some(_), None) => {
                bail!("[sources.{source}] tls_cert needs tls_key, the certificate's private key")
            }
            (None, Some(_)) => {
                bail!("[sources.{source}] tls_key needs tls_cert, the certificate it belongs to")
            }
        }
    }

    /// Reads the files and builds the server configuration (HTTP/1.1 offered by ALPN
    /// when `alpn_http` is set). Validity periods are reported as findings, not errors.
    ///
    /// # Errors
    /// A file cannot be read or holds the wrong thing, or the key does not belong to
    /// the certificate; the message says which.
    pub fn load(&self, alpn_http: bool) -> Result<(Arc<ServerConfig>, Vec<Finding>)> {
        let chain = read_certificates(&self.cert, "tls_cert")?;
        let key = read_private_key(&self.key, "tls_key")?;
        let now = super::now();
        let mut findings = inspect_certificates(&chain, &self.cert, "tls_cert", now);
        let builder = ServerConfig::builder_with_provider(super::provider())
            .with_safe_default_protocol_versions()
            .context("the TLS provider offers no protocol version")?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let cas = read_certificates(path, "tls_client_ca")?;
                findings.extend(inspect_certificates(&cas, path, "tls_client_ca", now));
                let mut roots = rustls::RootCertStore::empty();
                for (i, ca) in cas.into_iter().enumerate() {
                    roots.add(ca).map_err(|error| {
                        anyhow!(
                            "tls_client_ca {}: certificate #{} cannot be a trust anchor ({error})",
                            path.display(),
                            i + 1
                        )
                    })?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), super::provider())
                        .build()
                        .map_err(|error| {
                            anyhow!("tls_client_ca {}: unusable ({error})", path.display())
                        })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|error| match error {
                rustls::Error::InconsistentKeys(_) => anyhow!(
                    "tls_key {} does not belong to tls_cert {} (the key's public half differs \
                     from the certificate's)",
                    self.key.display(),
                    self.cert.display()
                ),
                other => anyhow!(
                    "tls_cert {} with tls_key {}: {other}",
                    self.cert.display(),
                    self.key.display()
                ),
            })?;
        if alpn_http {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
        }
        Ok((Arc::new(config), findings))
    }
}

/// A listener's TLS configuration, replaced in place when the certificates are reloaded.
pub struct ServerTls {
    source: &'static str,
    alpn_http: bool,
    files: RwLock<ServerTlsFiles>,
    config: RwLock<Arc<ServerConfig>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("source", &self.source)
            .field("files", &*read(&self.files))
            .finish()
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl ServerTls {
    /// Loads the files of `source` (`"http"` or `"forward"`) and logs what it serves.
    ///
    /// # Errors
    /// See [`ServerTlsFiles::load`].
    pub fn load(source: &'static str, files: &ServerTlsFiles) -> Result<Arc<ServerTls>> {
        let alpn_http = source == "http";
        let (config, findings) = files
            .load(alpn_http)
            .with_context(|| format!("[sources.{source}] TLS"))?;
        let tls = ServerTls {
            source,
            alpn_http,
            files: RwLock::new(files.clone()),
            config: RwLock::new(config),
        };
        tls.report("Serving TLS.", &findings);
        Ok(Arc::new(tls))
    }

    /// The files in use.
    pub fn files(&self) -> ServerTlsFiles {
        read(&self.files).clone()
    }

    /// Reads `files` again (new paths or new contents) and uses them for new connections;
    /// connections already open keep their session.
    ///
    /// # Errors
    /// The new files do not load; the old configuration stays.
    pub fn reload(&self, files: &ServerTlsFiles) -> Result<()> {
        let (config, findings) = files
            .load(self.alpn_http)
            .with_context(|| format!("[sources.{}] TLS", self.source))?;
        *write(&self.config) = config;
        *write(&self.files) = files.clone();
        self.report("Reloaded the TLS certificate.", &findings);
        Ok(())
    }

    fn report(&self, message: &str, findings: &[Finding]) {
        let files = read(&self.files);
        let summary = read_certificates(&files.cert, "tls_cert")
            .ok()
            .and_then(|chain| chain.first().and_then(super::summarize));
        let (names, not_after) = summary
            .map(|s| (s.names.join(","), s.not_after))
            .unwrap_or_default();
        tracing::info!(
            source = self.source,
            cert = %files.cert.display(),
            %names,
            %not_after,
            client_certificates = files.client_ca.is_some(),
            "{message}"
        );
        for finding in findings {
            match finding {
                Finding::Problem(text) | Finding::Warning(text) => {
                    tracing::warn!(source = self.source, problem = %text, "TLS certificate needs attention.");
                }
            }
        }
    }

    /// An acceptor on the current configuration.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(read(&self.config).clone())
    }

    /// Runs the handshake of an accepted connection, within [`HANDSHAKE_TIMEOUT`]. A
    /// failure is logged (at debug for a client that closed before saying anything,
    /// such as a TCP health check), counted in
    /// `minewatch_tls_handshake_errors_total{source, reason}`, and gives `None`.
    pub async fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<TlsStream<TcpStream>> {
        let handshake = self.acceptor().accept(stream);
        let failure = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
            Ok(Ok(stream)) => return Some(stream),
            Ok(Err(error)) => error,
            Err(_) => std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs()),
            ),
        };
        let (reason, text) = match super::rustls_error(&failure) {
            Some(
                error @ rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
            ) => (
                "client-certificate",
                format!("{error}: the client's certificate is not signed by a CA in tls_client_ca"),
            ),
            Some(
                error @ (rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented),
            ) => ("client-certificate", super::explain(error)),
            Some(error) => ("protocol", super::explain(error)),
            None if failure.kind() == std::io::ErrorKind::UnexpectedEof => (
                "closed",
                "the client closed the connection during the handshake".into(),
            ),
            None if failure.kind() == std::io::ErrorKind::TimedOut => {
                ("timeout", failure.to_string())
            }
            None => ("io", failure.to_string()),
        };
        metrics::counter!(
            "minewatch_tls_handshake_errors_total",
            "source" => self.source,
            "reason" => reason
        )
        .increment(1);
        if reason == "closed" {
            tracing::debug!(source = self.source, %peer, error = %text, "TLS handshake failed; closing the connection.");
        } else {
            tracing::warn!(source = self.source, %peer, error = %text, "TLS handshake failed; closing the connection.");
        }
        None
    }
}

/// A TCP listener that hands axum only connections whose TLS handshake succeeded.
///
/// Handshakes run concurrently in a background task (at most 256 at once, each within
/// [`HANDSHAKE_TIMEOUT`]), so a slow or hostile client never holds up the others.
/// Dropping the listener stops the task and closes the socket.
pub struct TlsListener {
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `listener` with `tls`.
    ///
    /// # Errors
    /// The listener has no local address.
    pub fn new(listener: TcpListener, tls: Arc<ServerTls>) -> std::io::Result<TlsListener> {
        let local = listener.local_addr()?;
        let (tx, incoming) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(listener, tls, tx));
        Ok(TlsListener {
            incoming,
            local,
            task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Arc<ServerTls>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let mut handshakes = JoinSet::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => break accepted,
                    Err(error) => {
                        tracing::warn!(%error, source = tls.source, "Failed to accept a connection; retrying shortly.");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
            }
        };
        let (tls, tx) = (tls.clone(), tx.clone());
        handshakes.spawn(async move {
            let _slot = slot;
            if let Some(stream) = tls.accept(stream, peer).await {
                let _ = tx.send((stream, peer)).await;
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(connection) => connection,
            // The accept task ended (it only does when aborted): accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

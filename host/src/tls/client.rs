//! The outputs' side of TLS: whom to trust, whether to verify, which client certificate
//! to present, as a rustls configuration (the `forward` output) or a ureq one (the
//! `http` and `splunk_hec` outputs).

use std::io::Read;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use rustls::ClientConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use serde::{Deserialize, Serialize};

use super::{Finding, inspect_certificates, read_certificates, read_private_key};

/// The TLS settings of one output, read from its flat keys `ca_file`, `tls_verify`,
/// `tls_cert` and `tls_key`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    /// PEM file of the CA certificates that sign the receiver's certificate, trusted
    /// instead of the system trust store (as curl's `--cacert`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Verify the receiver's certificate and host name (`tls_verify`, default `true`).
    /// `false` accepts any certificate, so anyone on the path can read and change what
    /// is sent; minewatch says so in a WARN log at start.
    #[serde(rename = "tls_verify", default = "verify_by_default")]
    pub verify: bool,
    /// PEM certificate chain to present when the receiver asks for a client certificate
    /// (mutual TLS, `tls_cert`); needs `tls_key`.
    #[serde(rename = "tls_cert", default)]
    pub cert: Option<PathBuf>,
    /// PEM private key of `cert` (`tls_key`; PKCS #8, PKCS #1 or SEC1, unencrypted).
    #[serde(rename = "tls_key", default)]
    pub key: Option<PathBuf>,
}

impl Default for ClientTls {
    fn default() -> Self {
        ClientTls {
            ca_file: None,
            verify: true,
            cert: None,
            key: None,
        }
    }
}

fn verify_by_default() -> bool {
    true
}

/// The files read for a [`ClientTls`].
struct Loaded {
    roots: Arc<Vec<CertificateDer<'static>>>,
    identity: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    findings: Vec<Finding>,
}

impl ClientTls {
    /// Whether any TLS key is set (an error on a plaintext endpoint).
    pub fn any_set(&self) -> bool {
        self.ca_file.is_some() || !self.verify || self.cert.is_some() || self.key.is_some()
    }

    fn load(&self) -> Result<Loaded> {
        let now = super::now();
        let mut findings = Vec::new();
        let roots = match &self.ca_file {
            Some(path) => {
                let cas = read_certificates(path, "ca_file")?;
                findings.extend(inspect_certificates(&cas, path, "ca_file", now));
                Arc::new(cas)
            }
            None if self.verify => super::system_roots()?,
            None => Arc::new(Vec::new()),
        };
        let identity = match (&self.cert, &self.key) {
            (Some(cert), Some(key)) => {
                let chain = read_certificates(cert, "tls_cert")?;
                findings.extend(inspect_certificates(&chain, cert, "tls_cert", now));
                Some((chain, read_private_key(key, "tls_key")?))
            }
            (None, None) => None,
            (Some(_), None) => bail!("tls_cert needs tls_key, the certificate's private key"),
            (None, Some(_)) => bail!("tls_key needs tls_cert, the certificate it belongs to"),
        };
        Ok(Loaded {
            roots,
            identity,
            findings,
        })
    }

    /// The rustls configuration, after reading and checking every file. Certificates
    /// that expired or expire soon are logged as warnings naming `output`, and so is
    /// `tls_verify = false`.
    ///
    /// # Errors
    /// A file cannot be read or holds the wrong thing, the key does not belong to the
    /// certificate, or (without `ca_file`) the system trust store is empty.
    pub fn rustls(&self, output: &str) -> Result<Arc<ClientConfig>> {
        let loaded = self.load()?;
        self.report(output, &loaded.findings);
        Ok(Arc::new(self.build(&loaded)?))
    }

    /// The same settings for ureq (the `http` and `splunk_hec` outputs), and the rustls
    /// configuration they amount to (for a [`Probe`]).
    ///
    /// # Errors
    /// As for [`ClientTls::rustls`].
    pub fn ureq(&self, output: &str) -> Result<(ureq::tls::TlsConfig, Arc<ClientConfig>)> {
        let loaded = self.load()?;
        self.report(output, &loaded.findings);
        // Built here too, so that a key that does not fit its certificate is an error
        // now, not a failure at the first connection.
        let rustls = Arc::new(self.build(&loaded)?);
        let mut builder = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::Rustls)
            .unversioned_rustls_crypto_provider(super::provider())
            .use_sni(true)
            .disable_verification(!self.verify);
        if self.verify {
            builder = builder.root_certs(ureq::tls::RootCerts::new_with_certs(
                &loaded
                    .roots
                    .iter()
                    .map(|c| ureq::tls::Certificate::from_der(c).to_owned())
                    .collect::<Vec<_>>(),
            ));
        }
        if let (Some((chain, _)), Some(key_path)) = (&loaded.identity, &self.key) {
            let pem = std::fs::read(key_path).map_err(|error| {
                anyhow!("tls_key {}: cannot read it ({error})", key_path.display())
            })?;
            let key = ureq::tls::PrivateKey::from_pem(&pem)
                .map_err(|error| anyhow!("tls_key {}: {error}", key_path.display()))?;
            let chain: Vec<ureq::tls::Certificate<'static>> = chain
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c).to_owned())
                .collect();
            builder = builder.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)));
        }
        Ok((builder.build(), rustls))
    }

    /// Reads and checks every file without building a connection (for `minewatch
    /// validate`): validity problems, and `tls_verify = false` as a warning.
    ///
    /// # Errors
    /// As for [`ClientTls::rustls`].
    pub fn findings(&self) -> Result<Vec<Finding>> {
        let loaded = self.load()?;
        self.build(&loaded)?;
        let mut findings = loaded.findings;
        if !self.verify {
            findings.push(Finding::Warning(
                "tls_verify = false: the receiver's certificate is not checked, so anyone on \
                 the network path can read and change what this output sends"
                    .into(),
            ));
        }
        Ok(findings)
    }

    fn report(&self, output: &str, findings: &[Finding]) {
        if !self.verify {
            tracing::warn!(
                output,
                "TLS certificate verification is off (tls_verify = false): anyone on the \
                 network path can read and change what this output sends."
            );
            if self.ca_file.is_some() {
                tracing::warn!(output, "ca_file is ignored while tls_verify = false.");
            }
        }
        for finding in findings {
            match finding {
                Finding::Problem(text) | Finding::Warning(text) => {
                    tracing::warn!(output, problem = %text, "TLS certificate needs attention.");
                }
            }
        }
    }

    fn build(&self, loaded: &Loaded) -> Result<ClientConfig> {
        let provider = super::provider();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|error| anyhow!("the TLS provider offers no protocol version ({error})"))?;
        let builder = if self.verify {
            let mut roots = rustls::RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(loaded.roots.iter().cloned());
            if added == 0 {
                match &self.ca_file {
                    Some(path) => bail!(
                        "ca_file {}: none of its certificates can be a trust anchor",
                        path.display()
                    ),
                    None => {
                        bail!("the system trust store holds no usable CA certificate; set ca_file")
                    }
                }
            }
            builder.with_root_certificates(roots)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        };
        match &loaded.identity {
            None => Ok(builder.with_no_client_auth()),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|error| match error {
                    rustls::Error::InconsistentKeys(_) => {
                        let shown = |p: &Option<PathBuf>| {
                            p.as_ref()
                                .map(|p| p.display().to_string())
                                .unwrap_or_default()
                        };
                        anyhow!(
                            "tls_key {} does not belong to tls_cert {}",
                            shown(&self.key),
                            shown(&self.cert)
                        )
                    }
                    other => anyhow!("tls_cert with tls_key: {other}"),
                }),
        }
    }
}

/// Finds out why a receiver dropped a TLS connection right after the handshake.
///
/// In TLS 1.3 a server checks the client's certificate only after the client has
/// finished its side of the handshake, so an HTTP client that is refused for want of a
/// certificate sees its request fail with a broken pipe or a reset, and the server's
/// alert saying why goes unread. A probe makes one connection of its own with the same
/// settings, reads that alert, and says what it means.
#[derive(Debug, Clone)]
pub struct Probe {
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    host: String,
    port: u16,
}

impl Probe {
    /// A probe of `host:port` with `config`.
    ///
    /// # Errors
    /// `host` cannot be a TLS server name.
    pub fn new(config: Arc<ClientConfig>, host: &str, port: u16) -> Result<Probe> {
        Ok(Probe {
            config,
            name: server_name(host)?,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port,
        })
    }

    /// Connects, shakes hands and waits up to `timeout` for a refusal; the TLS error
    /// found, explained, or `None` when the receiver accepted the connection.
    pub fn diagnose(&self, timeout: Duration) -> Option<String> {
        let address = (self.host.as_str(), self.port).to_socket_addrs().ok()?;
        let socket = address
            .into_iter()
            .find_map(|a| TcpStream::connect_timeout(&a, timeout).ok())?;
        socket.set_read_timeout(Some(timeout)).ok()?;
        socket.set_write_timeout(Some(timeout)).ok()?;
        let session = rustls::ClientConnection::new(self.config.clone(), self.name.clone()).ok()?;
        let mut tls = rustls::StreamOwned::new(session, socket);
        while tls.conn.is_handshaking() {
            if let Err(error) = tls.conn.complete_io(&mut tls.sock) {
                return super::rustls_error(&error).map(super::explain);
            }
        }
        // An accepted client hears nothing until it sends a request: the read times out.
        let mut byte = [0u8; 1];
        let error = tls.read_exact(&mut byte).err()?;
        super::rustls_error(&error).map(super::explain)
    }
}

/// Whether a transport error is a connection lost (not refused or timed out).
pub(crate) fn connection_lost(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    matches!(
        error.kind(),
        BrokenPipe | ConnectionReset | ConnectionAborted | UnexpectedEof
    )
}

/// The name to verify a receiver by (and send as SNI when it is a DNS name).
///
/// # Errors
/// `host` is neither a DNS name nor an IP address.
pub fn server_name(host: &str) -> Result<ServerName<'static>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string())
        .map_err(|_| anyhow!("{host:?} is not a host name or IP address TLS can verify"))
}

/// Accepts any server certificate (`tls_verify = false`), still checking that the
/// server holds the key of the certificate it showed.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

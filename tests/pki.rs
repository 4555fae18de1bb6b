//! Certificates made for one test (rcgen), TLS clients and an HTTPS receiver that plays
//! Splunk HEC or any alert receiver.

use std::io::{BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

/// A private CA whose files live in a test directory.
pub struct Pki {
    dir: PathBuf,
    name: String,
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate and its key, as files.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The PEM certificate.
    pub cert: PathBuf,
    /// The PEM private key.
    pub key: PathBuf,
}

impl Identity {
    /// The certificate's path as text, for configs.
    pub fn cert(&self) -> &str {
        self.cert.to_str().unwrap()
    }

    /// The key's path as text, for configs.
    pub fn key(&self) -> &str {
        self.key.to_str().unwrap()
    }

    /// The DER bytes of the certificate.
    pub fn der(&self) -> Vec<u8> {
        let pem = std::fs::read(&self.cert).unwrap();
        rustls_pki_types::CertificateDer::pem_slice_iter(&pem)
            .next()
            .unwrap()
            .unwrap()
            .to_vec()
    }
}

use rustls_pki_types::pem::PemObject;

impl Pki {
    /// A new CA named `name`; its certificate goes to `<dir>/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("minewatch test CA {name}"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pki = Pki {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            ca,
        };
        std::fs::write(pki.ca(), pki.ca.pem()).unwrap();
        pki
    }

    /// The CA certificate file.
    pub fn ca(&self) -> PathBuf {
        self.dir.join(format!("{}-ca.pem", self.name))
    }

    /// The CA certificate file as text.
    pub fn ca_str(&self) -> String {
        self.ca().to_str().unwrap().to_string()
    }

    /// A server certificate for `localhost` and `127.0.0.1`.
    pub fn server(&self, stem: &str) -> Identity {
        self.issue(
            stem,
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )
    }

    /// A client certificate with common name `stem`.
    pub fn client(&self, stem: &str) -> Identity {
        self.issue(stem, &[stem], ExtendedKeyUsagePurpose::ClientAuth)
    }

    fn issue(&self, stem: &str, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Identity {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, stem);
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let identity = Identity {
            cert: self.dir.join(format!("{}-{stem}.pem", self.name)),
            key: self.dir.join(format!("{}-{stem}-key.pem", self.name)),
        };
        std::fs::write(&identity.cert, cert.pem()).unwrap();
        std::fs::write(&identity.key, key.serialize_pem()).unwrap();
        identity
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Vec<rustls_pki_types::CertificateDer<'static>> {
    rustls_pki_types::CertificateDer::pem_file_iter(path)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn key(path: &Path) -> rustls_pki_types::PrivateKeyDer<'static> {
    rustls_pki_types::PrivateKeyDer::from_pem_file(path).unwrap()
}

/// A rustls server configuration for `identity`, requiring client certificates signed
/// by `client_ca` when given.
pub fn server_config(identity: &Identity, client_ca: Option<&Path>) -> Arc<rustls::ServerConfig> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certificates(ca) {
                roots.add(cert).unwrap();
            }
            builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider(),
                )
                .build()
                .unwrap(),
            )
        }
    };
    Arc::new(
        builder
            .with_single_cert(certificates(&identity.cert), key(&identity.key))
            .unwrap(),
    )
}

/// An HTTPS client (ureq) trusting `ca`, presenting `identity` when given.
pub fn https_agent(ca: &Path, identity: Option<&Identity>) -> ureq::Agent {
    let roots: Vec<ureq::tls::Certificate<'static>> = certificates(ca)
        .iter()
        .map(|c| ureq::tls::Certificate::from_der(c).to_owned())
        .collect();
    let mut tls = ureq::tls::TlsConfig::builder()
        .unversioned_rustls_crypto_provider(provider())
        .root_certs(ureq::tls::RootCerts::new_with_certs(&roots));
    if let Some(identity) = identity {
        let chain: Vec<ureq::tls::Certificate<'static>> = certificates(&identity.cert)
            .iter()
            .map(|c| ureq::tls::Certificate::from_der(c).to_owned())
            .collect();
        let key = ureq::tls::PrivateKey::from_pem(&std::fs::read(&identity.key).unwrap())
            .unwrap()
            .to_owned();
        tls = tls.client_cert(Some(ureq::tls::ClientCert::new_with_certs(&chain, key)));
    }
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls.build())
        .build()
        .into()
}

/// The certificate a TLS server at `addr` shows, verified against `ca` for `localhost`.
pub fn peer_certificate(addr: SocketAddr, ca: &Path) -> Vec<u8> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(ca) {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut session = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    while session.is_handshaking() {
        session.complete_io(&mut socket).unwrap();
    }
    session.peer_certificates().unwrap()[0].to_vec()
}

/// One request an [`HttpsReceiver`] took.
#[derive(Debug, Clone)]
pub struct Request {
    /// Request path.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
    /// The server name the client sent (SNI).
    pub sni: Option<String>,
    /// Whether the client presented a certificate.
    pub client_certificate: bool,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTPS receiver on loopback: answers every request 200 with a HEC success body and
/// keeps what it got, and the handshakes that failed.
pub struct HttpsReceiver {
    /// Its address.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    failures: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HttpsReceiver {
    /// Starts on a free port with `config`.
    pub fn start(config: Arc<rustls::ServerConfig>) -> HttpsReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (kept, failed, stopped) = (requests.clone(), failures.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let (config, kept, failed) = (config.clone(), kept.clone(), failed.clone());
                std::thread::spawn(move || {
                    if let Err(error) = converse(stream, config, &kept) {
                        failed.lock().unwrap().push(error);
                    }
                });
            }
        });
        HttpsReceiver {
            addr,
            requests,
            failures,
            stop,
            thread: Some(thread),
        }
    }

    /// Every request taken so far.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Every failed connection so far, with its error.
    pub fn failures(&self) -> Vec<String> {
        self.failures.lock().unwrap().clone()
    }

    /// Waits (up to two minutes) until `ready` holds for the requests taken.
    pub fn wait_until(&self, what: &str, ready: impl Fn(&[Request]) -> bool) -> Vec<Request> {
        for _ in 0..1200 {
            let requests = self.requests();
            if ready(&requests) {
                return requests;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the receiver never got {what}: {:#?}\nfailures: {:#?}",
            self.requests(),
            self.failures()
        );
    }
}

impl Drop for HttpsReceiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves one connection: the handshake, then requests until the client closes.
fn converse(
    stream: std::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    kept: &Mutex<Vec<Request>>,
) -> Result<(), String> {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let session = rustls::ServerConnection::new(config).unwrap();
    let mut tls = rustls::StreamOwned::new(session, stream);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .map_err(|e| format!("handshake: {e}"))?;
    }
    let sni = tls.conn.server_name().map(str::to_string);
    let client_certificate = tls.conn.peer_certificates().is_some();
    let mut reader = std::io::BufReader::new(tls);
    loop {
        let mut request_line = String::new();
        match reader.read_line(&mut request_line) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(error) if error.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(error) => return Err(format!("read: {error}")),
        }
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader
                .read_line(&mut line)
                .map_err(|e| format!("read: {e}"))?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        reader
            .read_exact(&mut body)
            .map_err(|e| format!("read: {e}"))?;
        kept.lock().unwrap().push(Request {
            path,
            headers,
            body: String::from_utf8(body).unwrap(),
            sni: sni.clone(),
            client_certificate,
        });
        let answer = br#"{"text":"Success","code":0}"#;
        let stream = reader.get_mut();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        )
        .and_then(|()| stream.write_all(answer))
        .and_then(|()| stream.flush())
        .map_err(|e| format!("write: {e}"))?;
    }
}

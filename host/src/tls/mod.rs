//! TLS on every network edge, with rustls and its `ring` provider.
//!
//! - [`client`]: the outputs' side. The `http` and `splunk_hec` outputs on `https://`
//!   endpoints (through ureq's rustls support) and the `forward` output with `tls = true`
//!   (rustls over the blocking socket) verify the receiver against the system trust
//!   store, or against `ca_file` alone when it is set, and can present a client
//!   certificate (`tls_cert`, `tls_key`).
//! - [`server`]: the listeners' side. The HTTP and Forward sources with `tls_cert` and
//!   `tls_key` speak TLS only; with `tls_client_ca` they require client certificates
//!   signed by it. The files are read again on reload (SIGHUP), and a client whose
//!   handshake fails is logged, counted in `minewatch_tls_handshake_errors_total` and
//!   closed without touching anyone else.
//! - This module: reading PEM files (certificate chains and PKCS #8, PKCS #1 or SEC1 keys)
//!   with errors that say what the file holds instead, and [`inspect_certificates`], which
//!   `minewatch validate` and the listeners use to report expired or not yet valid
//!   certificates.
//!
//! Why the system store (rustls-native-certs) rather than a compiled-in Mozilla list
//! (webpki-roots): it is what Fluent Bit, Vector and curl trust on the same machine, a
//! private CA installed with `update-ca-certificates` (or mounted into a container's
//! `/etc/ssl/certs`) just works, `SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured, and the
//! roots are updated with the operating system instead of with minewatch releases. It is
//! loaded once per process. rustls-platform-verifier would give the same roots on Linux
//! through a second verifier stack; the plain root store serves ureq and the Forward
//! output alike.

pub mod client;
pub mod server;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::{Arc, OnceLock};

use anyhow::{Result, anyhow, bail};
use rustls::crypto::CryptoProvider;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The crypto provider of every TLS connection: `ring`. It is also installed as the
/// process default, for the Redis client, which asks rustls for the default.
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| {
            let provider = rustls::crypto::ring::default_provider();
            // Fails only when a default is installed already, which is then kept.
            let _ = provider.clone().install_default();
            Arc::new(provider)
        })
        .clone()
}

/// The system's trusted root certificates (loaded once).
///
/// # Errors
/// The store holds no usable certificate.
pub fn system_roots() -> Result<Arc<Vec<CertificateDer<'static>>>> {
    static ROOTS: OnceLock<Result<Arc<Vec<CertificateDer<'static>>>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let loaded = rustls_native_certs::load_native_certs();
            if loaded.certs.is_empty() {
                let why = loaded
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "the system trust store holds no CA certificate{why}: install the \
                     ca-certificates package, point SSL_CERT_FILE at a bundle, or set ca_file"
                ));
            }
            if let Some(error) = loaded.errors.first() {
                tracing::warn!(
                    %error,
                    certificates = loaded.certs.len(),
                    "Some system CA certificates could not be read; using the others."
                );
            }
            Ok(Arc::new(loaded.certs))
        })
        .clone()
        .map_err(|message| anyhow!(message))
}

/// What a PEM section is, in words.
fn kind_name(kind: SectionKind) -> &'static str {
    match kind {
        SectionKind::Certificate => "a certificate",
        SectionKind::PublicKey => "a public key",
        SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey => {
            "a private key"
        }
        SectionKind::Crl => "a certificate revocation list",
        SectionKind::Csr => "a certificate signing request",
        _ => "an unsupported PEM block",
    }
}

/// Every PEM section of a file, or why there is none.
fn read_pem(path: &Path, setting: &str) -> Result<Vec<(SectionKind, Vec<u8>)>> {
    let bytes = std::fs::read(path)
        .map_err(|error| anyhow!("{setting} {}: cannot read it ({error})", path.display()))?;
    let mut sections = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
        sections.push(
            section.map_err(|error| {
                anyhow!("{setting} {}: not valid PEM ({error})", path.display())
            })?,
        );
    }
    if sections.is_empty() {
        if memchr::memmem::find(&bytes, b"ENCRYPTED PRIVATE KEY").is_some()
            || memchr::memmem::find(&bytes, b"Proc-Type: 4,ENCRYPTED").is_some()
        {
            bail!(
                "{setting} {}: the private key is encrypted; minewatch reads unencrypted keys \
                 only (decrypt it with `openssl pkey -in KEY -out KEY.plain`, readable by \
                 minewatch's user alone)",
                path.display()
            );
        }
        bail!(
            "{setting} {}: no PEM block in it (expected text starting with -----BEGIN ...; \
             convert DER files with `openssl x509 -inform der`)",
            path.display()
        );
    }
    Ok(sections)
}

/// What the sections of a file are, e.g. "a private key".
fn found(sections: &[(SectionKind, Vec<u8>)]) -> String {
    let mut kinds: Vec<&str> = sections.iter().map(|(k, _)| kind_name(*k)).collect();
    kinds.dedup();
    kinds.join(" and ")
}

/// The certificates of a PEM file, in order (leaf first for a chain).
///
/// # Errors
/// The file cannot be read, is not PEM, holds no certificate, or holds a certificate
/// that does not parse; the message names `setting`, the file and what it holds.
pub fn read_certificates(path: &Path, setting: &str) -> Result<Vec<CertificateDer<'static>>> {
    let sections = read_pem(path, setting)?;
    let certificates: Vec<CertificateDer<'static>> = sections
        .iter()
        .filter(|(kind, _)| *kind == SectionKind::Certificate)
        .map(|(_, der)| CertificateDer::from(der.clone()))
        .collect();
    if certificates.is_empty() {
        bail!(
            "{setting} {}: holds no certificate, only {}",
            path.display(),
            found(&sections)
        );
    }
    for (i, certificate) in certificates.iter().enumerate() {
        if let Err(error) = x509_parser::parse_x509_certificate(certificate) {
            bail!(
                "{setting} {}: certificate #{} is not a valid X.509 certificate ({error})",
                path.display(),
                i + 1
            );
        }
    }
    Ok(certificates)
}

/// The one private key of a PEM file.
///
/// # Errors
/// The file cannot be read, is not PEM, is encrypted, or holds no key or several.
pub fn read_private_key(path: &Path, setting: &str) -> Result<PrivateKeyDer<'static>> {
    let sections = read_pem(path, setting)?;
    let mut keys: Vec<PrivateKeyDer<'static>> = sections
        .iter()
        .filter_map(|(kind, der)| PrivateKeyDer::from_pem(*kind, der.clone()))
        .collect();
    match keys.len() {
        1 => Ok(keys.remove(0)),
        0 => bail!(
            "{setting} {}: holds no private key, only {}",
            path.display(),
            found(&sections)
        ),
        n => bail!(
            "{setting} {}: holds {n} private keys; keep the one that belongs to the certificate",
            path.display()
        ),
    }
}

/// What is wrong or worth knowing about a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// The certificate cannot work as it is (expired, not yet valid).
    Problem(String),
    /// It works, but will not for long.
    Warning(String),
}

/// A certificate's names and expiry, for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateSummary {
    /// DNS names and IP addresses of its subject alternative names, else its common name.
    pub names: Vec<String>,
    /// When it expires, RFC 3339.
    pub not_after: String,
}

/// Warn this long before a certificate expires.
const EXPIRY_WARNING_SECS: i64 = 30 * 86_400;

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp(secs, 0).map_or_else(
        || secs.to_string(),
        |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    )
}

/// The names and expiry of a certificate (the leaf of a chain).
pub fn summarize(certificate: &CertificateDer<'_>) -> Option<CertificateSummary> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).ok()?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                x509_parser::extensions::GeneralName::DNSName(dns) => names.push(dns.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(ip) => {
                    let ip = match ip.len() {
                        4 => <[u8; 4]>::try_from(*ip).ok().map(std::net::IpAddr::from),
                        16 => <[u8; 16]>::try_from(*ip).ok().map(std::net::IpAddr::from),
                        _ => None,
                    };
                    names.extend(ip.map(|ip| ip.to_string()));
                }
                _ => {}
            }
        }
    }
    if names.is_empty() {
        names.extend(
            parsed
                .subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok().map(str::to_string)),
        );
    }
    Some(CertificateSummary {
        names,
        not_after: rfc3339(parsed.validity().not_after.timestamp()),
    })
}

/// Checks the validity period of every certificate of a file at `now` (Unix seconds).
pub fn inspect_certificates(
    certificates: &[CertificateDer<'_>],
    path: &Path,
    setting: &str,
    now: i64,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (i, certificate) in certificates.iter().enumerate() {
        let Ok((_, parsed)) = x509_parser::parse_x509_certificate(certificate) else {
            continue;
        };
        let which = if certificates.len() == 1 {
            String::new()
        } else {
            format!(" certificate #{}", i + 1)
        };
        let not_before = parsed.validity().not_before.timestamp();
        let not_after = parsed.validity().not_after.timestamp();
        let file = path.display();
        if now > not_after {
            findings.push(Finding::Problem(format!(
                "{setting} {file}:{which} expired on {}",
                rfc3339(not_after)
            )));
        } else if now < not_before {
            findings.push(Finding::Problem(format!(
                "{setting} {file}:{which} is not valid before {}",
                rfc3339(not_before)
            )));
        } else if not_after - now < EXPIRY_WARNING_SECS {
            findings.push(Finding::Warning(format!(
                "{setting} {file}:{which} expires on {}",
                rfc3339(not_after)
            )));
        }
    }
    findings
}

/// The current time in Unix seconds.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Says what a rustls error means for whoever configures minewatch.
pub(crate) fn explain(error: &rustls::Error) -> String {
    use rustls::{CertificateError, Error};
    let hint = match error {
        Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the peer's certificate is not signed by a CA this side trusts; set ca_file to \
             the CA that signed it"
        }
        Error::InvalidCertificate(CertificateError::NotValidForName)
        | Error::InvalidCertificate(CertificateError::NotValidForNameContext { .. }) => {
            "the certificate does not name the host that was dialled; connect by a name it \
             holds (or set tls_server_name on a forward output)"
        }
        Error::InvalidCertificate(CertificateError::Expired)
        | Error::InvalidCertificate(CertificateError::ExpiredContext { .. }) => {
            "the certificate has expired"
        }
        Error::InvalidCertificate(CertificateError::NotValidYet)
        | Error::InvalidCertificate(CertificateError::NotValidYetContext { .. }) => {
            "the certificate is not valid yet (check both clocks)"
        }
        Error::NoCertificatesPresented => {
            "the client sent no certificate, and this listener requires one (tls_client_ca)"
        }
        Error::AlertReceived(rustls::AlertDescription::CertificateRequired) => {
            "the peer requires a client certificate; set tls_cert and tls_key"
        }
        Error::AlertReceived(
            rustls::AlertDescription::UnknownCA | rustls::AlertDescription::BadCertificate,
        ) => "the peer refused our certificate",
        Error::InvalidMessage(_) => "the peer does not speak TLS here (plaintext on a TLS port?)",
        _ => "",
    };
    if hint.is_empty() {
        error.to_string()
    } else {
        format!("{error}: {hint}")
    }
}

/// The rustls error inside an I/O error, if there is one.
pub(crate) fn rustls_error(error: &std::io::Error) -> Option<&rustls::Error> {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// A ureq transport error, with the meaning of a TLS failure spelled out.
pub(crate) fn explain_ureq(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Rustls(tls) => format!("TLS failed: {}", explain(tls)),
        ureq::Error::Io(io) => match rustls_error(io) {
            Some(tls) => format!("TLS failed: {}", explain(tls)),
            None => error.to_string(),
        },
        other => other.to_string(),
    }
}

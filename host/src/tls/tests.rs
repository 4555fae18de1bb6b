//! Certificate files, server and client configurations, and the exposure rules, with
//! certificates made by rcgen for each test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};

use super::client::ClientTls;
use super::server::ServerTlsFiles;
use super::*;
use crate::sources::{Exposure, check_exposure};

/// A CA in a temporary directory that issues server and client certificates.
struct Pki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "minewatch unit-test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Issues a certificate for `names` valid from `from` to `to` (days from today, at
    /// midnight UTC) and writes `<stem>.pem` and `<stem>-key.pem`.
    fn issue(&self, stem: &str, names: &[&str], from: i64, to: i64) -> (PathBuf, PathBuf) {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let ((y1, m1, d1), (y2, m2, d2)) = (day(from), day(to));
        params.not_before = rcgen::date_time_ymd(y1, m1, d1);
        params.not_after = rcgen::date_time_ymd(y2, m2, d2);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.ca).unwrap();
        let (cert_path, key_path) = (
            self.path(&format!("{stem}.pem")),
            self.path(&format!("{stem}-key.pem")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    fn current(&self, stem: &str) -> (PathBuf, PathBuf) {
        self.issue(stem, &["localhost", "127.0.0.1"], -1, 365)
    }
}

/// Year, month and day `offset` days from today (UTC).
fn day(offset: i64) -> (i32, u8, u8) {
    use chrono::Datelike;
    let date = chrono::DateTime::from_timestamp(now() + offset * 86_400, 0)
        .unwrap()
        .date_naive();
    (date.year(), date.month() as u8, date.day() as u8)
}

fn text(error: anyhow::Error) -> String {
    format!("{error:#}")
}

#[test]
fn files_holding_the_wrong_thing_say_what_they_hold() {
    let pki = Pki::new();
    let (cert, key) = pki.current("server");
    let error = text(read_certificates(&key, "tls_cert").unwrap_err());
    assert!(
        error.contains("holds no certificate, only a private key"),
        "{error}"
    );
    assert!(error.contains(&key.display().to_string()), "{error}");
    let error = text(read_private_key(&cert, "tls_key").unwrap_err());
    assert!(
        error.contains("holds no private key, only a certificate"),
        "{error}"
    );
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate at all\n").unwrap();
    let error = text(read_certificates(&garbage, "ca_file").unwrap_err());
    assert!(error.contains("no PEM block"), "{error}");
    let encrypted = pki.path("encrypted.pem");
    std::fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let error = text(read_private_key(&encrypted, "tls_key").unwrap_err());
    assert!(error.contains("encrypted"), "{error}");
    let missing = pki.path("missing.pem");
    let error = text(read_certificates(&missing, "tls_cert").unwrap_err());
    assert!(error.contains("cannot read it"), "{error}");
    let two_keys = pki.path("two-keys.pem");
    let key_text = std::fs::read_to_string(&key).unwrap();
    std::fs::write(&two_keys, format!("{key_text}{key_text}")).unwrap();
    let error = text(read_private_key(&two_keys, "tls_key").unwrap_err());
    assert!(error.contains("holds 2 private keys"), "{error}");
}

#[test]
fn a_key_of_another_certificate_is_refused_by_name() {
    let pki = Pki::new();
    let (cert, _) = pki.current("server");
    let (_, other_key) = pki.current("other");
    let files = ServerTlsFiles {
        cert: cert.clone(),
        key: other_key.clone(),
        client_ca: None,
    };
    let error = text(files.load(true).unwrap_err());
    assert!(error.contains("does not belong to tls_cert"), "{error}");
    let client = ClientTls {
        ca_file: Some(pki.path("ca.pem")),
        verify: true,
        cert: Some(cert),
        key: Some(other_key),
    };
    let error = text(client.rustls("test").unwrap_err());
    assert!(error.contains("does not belong to tls_cert"), "{error}");
}

#[test]
fn certificates_that_expired_or_expire_soon_are_reported() {
    let pki = Pki::new();
    let now = now();
    let (expired, _) = pki.issue("expired", &["localhost"], -10, -1);
    let (soon, _) = pki.issue("soon", &["localhost"], -1, 5);
    let (early, _) = pki.issue("early", &["localhost"], 2, 10);
    let (fine, _) = pki.current("fine");
    let findings = |path: &Path| {
        inspect_certificates(
            &read_certificates(path, "tls_cert").unwrap(),
            path,
            "tls_cert",
            now,
        )
    };
    assert!(
        matches!(&findings(&expired)[..], [Finding::Problem(t)] if t.contains("expired on")),
        "{:?}",
        findings(&expired)
    );
    assert!(
        matches!(&findings(&soon)[..], [Finding::Warning(t)] if t.contains("expires on")),
        "{:?}",
        findings(&soon)
    );
    assert!(
        matches!(&findings(&early)[..], [Finding::Problem(t)] if t.contains("not valid before")),
        "{:?}",
        findings(&early)
    );
    assert_eq!(findings(&fine), vec![]);
    let summary = summarize(&read_certificates(&fine, "tls_cert").unwrap()[0]).unwrap();
    assert_eq!(summary.names, ["localhost", "127.0.0.1"]);
}

#[test]
fn server_settings_go_together() {
    let p = Path::new("x.pem");
    assert!(
        ServerTlsFiles::from_settings("http", None, None, None)
            .unwrap()
            .is_none()
    );
    let error = text(ServerTlsFiles::from_settings("http", Some(p), None, None).unwrap_err());
    assert!(error.contains("tls_cert needs tls_key"), "{error}");
    let error = text(ServerTlsFiles::from_settings("forward", None, Some(p), None).unwrap_err());
    assert!(
        error.contains("[sources.forward] tls_key needs tls_cert"),
        "{error}"
    );
    let error = text(ServerTlsFiles::from_settings("http", None, None, Some(p)).unwrap_err());
    assert!(
        error.contains("tls_client_ca needs tls_cert and tls_key"),
        "{error}"
    );
    let pki = Pki::new();
    let (cert, key) = pki.current("server");
    let files =
        ServerTlsFiles::from_settings("http", Some(&cert), Some(&key), Some(&pki.path("ca.pem")))
            .unwrap()
            .unwrap();
    let (config, findings) = files.load(true).unwrap();
    assert!(findings.is_empty());
    assert_eq!(config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    // A CA file holding a key instead of certificates is named.
    let bad_ca = ServerTlsFiles {
        client_ca: Some(key.clone()),
        ..files
    };
    let error = text(bad_ca.load(false).unwrap_err());
    assert!(
        error.contains("tls_client_ca") && error.contains("holds no certificate"),
        "{error}"
    );
}

#[test]
fn client_settings_are_checked_and_verification_off_is_a_warning() {
    let pki = Pki::new();
    let (cert, key) = pki.current("client");
    let lonely = ClientTls {
        ca_file: None,
        verify: true,
        cert: Some(cert.clone()),
        key: None,
    };
    let error = text(lonely.findings().unwrap_err());
    assert!(error.contains("tls_cert needs tls_key"), "{error}");
    let off = ClientTls {
        ca_file: None,
        verify: false,
        cert: None,
        key: None,
    };
    assert!(off.any_set());
    assert!(
        matches!(&off.findings().unwrap()[..], [Finding::Warning(t)] if t.contains("tls_verify = false"))
    );
    let mutual = ClientTls {
        ca_file: Some(pki.path("ca.pem")),
        verify: true,
        cert: Some(cert),
        key: Some(key),
    };
    assert_eq!(mutual.findings().unwrap(), vec![]);
    assert!(mutual.ureq("test").is_ok());
    assert!(client::server_name("[::1]").is_ok());
    assert!(client::server_name("bad name!").is_err());
}

fn exposure(listen: &str) -> Exposure {
    Exposure {
        source: "http",
        listen: listen.parse::<SocketAddr>().unwrap(),
        secret: None,
        tls: false,
        client_certificates: false,
        allow_plaintext: false,
        allow_unauthenticated: false,
    }
}

#[test]
fn listeners_beyond_loopback_must_be_protected() {
    // Loopback needs nothing.
    assert!(check_exposure(&exposure("127.0.0.1:8686")).is_ok());
    assert!(check_exposure(&exposure("[::1]:8686")).is_ok());
    // No token: anyone could send events.
    let error = text(check_exposure(&exposure("0.0.0.0:8686")).unwrap_err());
    for needle in [
        "no token",
        "MINEWATCH_HTTP_TOKEN",
        "allow_unauthenticated = true",
    ] {
        assert!(error.contains(needle), "{needle}: {error}");
    }
    let forward = Exposure {
        source: "forward",
        ..exposure("[::]:24224")
    };
    let error = text(check_exposure(&forward).unwrap_err());
    assert!(
        error.contains("no shared_key") && error.contains("--forward-shared-key"),
        "{error}"
    );
    // A token without TLS would travel in clear.
    let token = Exposure {
        secret: Some("token"),
        ..exposure("10.0.0.5:8686")
    };
    let error = text(check_exposure(&token).unwrap_err());
    assert!(
        error.contains("in clear") && error.contains("allow_plaintext = true"),
        "{error}"
    );
    assert!(check_exposure(&Exposure { tls: true, ..token }).is_ok());
    assert!(
        check_exposure(&Exposure {
            allow_plaintext: true,
            ..token
        })
        .is_ok()
    );
    // Client certificates authenticate too; the explicit opt-out is honoured.
    assert!(
        check_exposure(&Exposure {
            tls: true,
            client_certificates: true,
            ..exposure("0.0.0.0:8686")
        })
        .is_ok()
    );
    assert!(
        check_exposure(&Exposure {
            allow_unauthenticated: true,
            ..exposure("0.0.0.0:8686")
        })
        .is_ok()
    );
}

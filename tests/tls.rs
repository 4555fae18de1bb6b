//! TLS on every edge of `minewatch serve`, with certificates made for each test: HTTPS
//! outputs (Splunk HEC with a private CA, mutual TLS), the HTTPS source with client
//! certificates, Forward over TLS between two sidecars, reloading certificates on
//! SIGHUP, the refusal to expose secrets or open intake beyond loopback, and what
//! `validate` says about certificate files.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use crate::pki::{HttpsReceiver, Pki, Request, https_agent, peer_certificate, server_config};
use crate::util::{Dir, Server, alerts, command, data, is_incident, post, setup, unique_pairs};

/// The conformance case with a failed DryRun and four new values of mallory's.
fn events() -> Vec<u8> {
    std::fs::read(data("conformance/failures-ignored/events.ndjson")).unwrap()
}

/// What `minewatch run` raises over [`events`].
fn expected(dir: &Dir) -> BTreeSet<(String, String)> {
    let input = data("conformance/failures-ignored/events.ndjson");
    let out = command(dir)
        .args(["run", "--memory", "--input", path(&input)])
        .ok(dir);
    let pairs = unique_pairs(&alerts(&out.stdout));
    assert_eq!(pairs.len(), 4, "{pairs:?}");
    pairs
}

/// The alerts inside HEC event envelopes.
fn hec_events(requests: &[Request]) -> Vec<Value> {
    hec_envelopes(requests)
        .into_iter()
        .map(|e| e["event"].clone())
        .filter(|e| !is_incident(e))
        .collect()
}

/// Every HEC envelope posted, incident records' included.
fn hec_envelopes(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .flat_map(|r| r.body.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(&l).unwrap())
        .collect()
}

/// The alerts posted to an `http` output as NDJSON lines.
fn posted_alerts(requests: &[Request]) -> Vec<Value> {
    requests
        .iter()
        .flat_map(|r| r.body.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str::<Value>(&l).unwrap())
        .filter(|r| !is_incident(r))
        .collect()
}

/// Alerts in an NDJSON file, waiting (up to two minutes) until there are `count`.
fn wait_for_alerts(path: &Path, count: usize) -> Vec<Value> {
    for _ in 0..1200 {
        let found = std::fs::read(path).map(|b| alerts(&b)).unwrap_or_default();
        if found.len() >= count {
            return found;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{} never held {count} alerts", path.display());
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn splunk_hec_over_https_needs_the_private_ca_or_tls_verify_off() {
    let (dir, _) = setup();
    let expected = expected(&dir);
    let pki = Pki::new(dir.path(), "hec");
    let receiver = HttpsReceiver::start(server_config(&pki.server("splunk"), None));
    let config = |name: &str, extra: &str| {
        dir.write(
            &format!("{name}.toml"),
            format!(
                "memory = true\nspool_dir = \"spool\"\n[[outputs]]\ntype = \"splunk_hec\"\nname = \"{name}\"\n\
                 endpoint = \"https://localhost:{}\"\ntoken = \"hec-token\"\nretry_max_ms = 500\n{extra}",
                receiver.addr.port()
            ),
        )
    };

    // With the private CA: delivered over TLS, to the name dialled (SNI).
    let trusted = config("trusted", &format!("ca_file = {:?}\n", pki.ca_str()));
    let server = Server::start(&dir, &["--http", "127.0.0.1:0", "--config", path(&trusted)]);
    let (status, reply) = post(&server.url("/events"), &events(), &[]);
    assert_eq!(status, 200, "{reply}");
    let requests = receiver.wait_until("four alerts", |r| hec_events(r).len() >= 4);
    server.stop();
    for request in &requests {
        assert_eq!(request.path, "/services/collector/event");
        assert_eq!(request.header("authorization"), Some("Splunk hec-token"));
        assert_eq!(request.sni.as_deref(), Some("localhost"));
    }
    assert_eq!(unique_pairs(&hec_events(&requests)), expected);
    // Mallory's four first uses add up to an incident, under its own sourcetype.
    let incident_types: Vec<Value> = hec_envelopes(&receiver.requests())
        .iter()
        .filter(|e| is_incident(&e["event"]))
        .map(|e| e["sourcetype"].clone())
        .collect();
    assert_eq!(incident_types, ["minewatch:incident", "minewatch:incident"]);

    // Without it the system trust store does not know the CA: nothing is sent, and the
    // log says why and what to set.
    let untrusted = config("untrusted", "");
    let server = Server::start(
        &dir,
        &["--http", "127.0.0.1:0", "--config", path(&untrusted)],
    );
    let (status, reply) = post(&server.url("/events"), &events(), &[]);
    assert_eq!(status, 200, "the alerts are spooled: {reply}");
    server.wait_for_log("Delivery failed; retrying with backoff.", 1);
    let log = server.stop();
    let line = log
        .lines()
        .find(|l| l.contains("Delivery failed") && l.contains("output=untrusted"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("UnknownIssuer") && line.contains("set ca_file"),
        "{line}"
    );
    assert_eq!(
        hec_events(&receiver.requests()).len(),
        4,
        "nothing more arrived"
    );
    assert!(
        receiver.failures().iter().any(|f| f.contains("handshake")),
        "{:?}",
        receiver.failures()
    );

    // tls_verify = false takes any certificate, with a WARN at start; the spool of the
    // refused run is another output's, so only the new alerts arrive.
    let unverified = config("unverified", "tls_verify = false\n");
    let server = Server::start(
        &dir,
        &["--http", "127.0.0.1:0", "--config", path(&unverified)],
    );
    assert!(
        server
            .log()
            .contains("TLS certificate verification is off (tls_verify = false)"),
        "{}",
        server.log()
    );
    let (status, reply) = post(&server.url("/events"), &events(), &[]);
    assert_eq!(status, 200, "{reply}");
    receiver.wait_until("four more alerts", |r| hec_events(r).len() >= 8);
    server.stop();
}

#[test]
fn an_https_output_presents_its_client_certificate_and_fails_clearly_without() {
    let (dir, _) = setup();
    let expected = expected(&dir);
    let pki = Pki::new(dir.path(), "mtls");
    let client = pki.client("minewatch-sensor");
    let receiver = HttpsReceiver::start(server_config(&pki.server("receiver"), Some(&pki.ca())));
    let endpoint = format!("https://localhost:{}/alerts", receiver.addr.port());
    let config = dir.write(
        "mtls.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\n\
             [[outputs]]\ntype = \"http\"\nname = \"with-cert\"\nendpoint = \"{endpoint}\"\n\
             ca_file = {ca:?}\ntls_cert = {cert:?}\ntls_key = {key:?}\n\
             [[outputs]]\ntype = \"http\"\nname = \"no-cert\"\nendpoint = \"{endpoint}\"\n\
             ca_file = {ca:?}\nretry_max_ms = 500\n",
            ca = pki.ca_str(),
            cert = client.cert(),
            key = client.key(),
        ),
    );
    let server = Server::start(&dir, &["--http", "127.0.0.1:0", "--config", path(&config)]);
    let (status, reply) = post(&server.url("/events"), &events(), &[]);
    assert_eq!(status, 200, "{reply}");
    let requests = receiver.wait_until("four alerts", |r| posted_alerts(r).len() >= 4);
    server.wait_for_log("output=no-cert", 1);
    let log = server.stop();
    assert!(requests.iter().all(|r| r.client_certificate));
    assert_eq!(unique_pairs(&posted_alerts(&requests)), expected);
    assert_eq!(
        posted_alerts(&receiver.requests()).len(),
        4,
        "only with-cert got through"
    );
    let line = log
        .lines()
        .find(|l| l.contains("Delivery failed") && l.contains("output=no-cert"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.contains("CertificateRequired") && line.contains("set tls_cert and tls_key"),
        "{line}"
    );
    assert!(
        receiver
            .failures()
            .iter()
            .any(|f| f.contains("NoCertificatesPresented") || f.contains("certificate")),
        "{:?}",
        receiver.failures()
    );
}

#[test]
fn the_https_source_takes_clients_with_certificates_and_counts_the_others() {
    let (dir, _) = setup();
    let expected = expected(&dir);
    let pki = Pki::new(dir.path(), "source");
    let server_identity = pki.server("minewatch");
    let sensor = pki.client("sensor");
    let stranger = Pki::new(dir.path(), "stranger").client("stranger");
    let config = dir.write(
        "https.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\n[sources.http]\nlisten = \"127.0.0.1:0\"\n\
             tls_cert = {:?}\ntls_key = {:?}\ntls_client_ca = {:?}\n",
            server_identity.cert(),
            server_identity.key(),
            pki.ca_str()
        ),
    );
    let server = Server::start(
        &dir,
        &["--config", path(&config), "--output", "alerts.ndjson"],
    );
    assert!(server.log().contains("Serving TLS."), "{}", server.log());
    let base = format!("https://localhost:{}", server.http.port());

    let good = https_agent(&pki.ca(), Some(&sensor));
    let mut response = good
        .post(format!("{base}/events"))
        .send(&events()[..])
        .unwrap();
    assert_eq!(
        response.status().as_u16(),
        200,
        "{}",
        response.body_mut().read_to_string().unwrap_or_default()
    );

    // No client certificate, one from another CA, and plaintext HTTP: each is refused
    // at the handshake, logged and counted, and the server carries on.
    let anonymous = https_agent(&pki.ca(), None);
    let refused = anonymous.get(format!("{base}/health")).call();
    assert!(refused.is_err(), "{refused:?}");
    let foreign = https_agent(&pki.ca(), Some(&stranger));
    assert!(foreign.get(format!("{base}/health")).call().is_err());
    let plain: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    assert!(
        plain
            .get(format!("http://127.0.0.1:{}/health", server.http.port()))
            .call()
            .is_err()
    );
    server.wait_for_log("TLS handshake failed; closing the connection.", 3);
    let mut metrics = good.get(format!("{base}/metrics")).call().unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let text = metrics.body_mut().read_to_string().unwrap();
    let count = |reason: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with("minewatch_tls_handshake_errors_total")
                    && l.contains("source=\"http\"")
                    && l.contains(&format!("reason=\"{reason}\""))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(count("client-certificate"), 2, "{text}");
    assert_eq!(count("protocol"), 1, "{text}");
    let log = server.stop();
    assert!(
        log.contains("client sent no certificate") && log.contains("UnknownIssuer"),
        "{log}"
    );
    assert_eq!(
        unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap())),
        expected
    );
}

#[test]
fn forward_over_tls_between_two_sidecars_with_client_certificates_and_a_shared_key() {
    let (dir, _) = setup();
    let expected = expected(&dir);
    let pki = Pki::new(dir.path(), "forward");
    let receiver_identity = pki.server("receiver");
    let sender_identity = pki.client("sender");
    // The receiver: Forward over TLS, client certificates required, the shared key from
    // the environment.
    let receiving = dir.write(
        "receiver.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\nstate_dir = \"receiver-state\"\n[sources.forward]\nlisten = \"127.0.0.1:0\"\n\
             tls_cert = {:?}\ntls_key = {:?}\ntls_client_ca = {:?}\n\
             [[outputs]]\ntype = \"file\"\npath = \"received.ndjson\"\n",
            receiver_identity.cert(),
            receiver_identity.key(),
            pki.ca_str()
        ),
    );
    let receiver = Server::start_env(
        &dir,
        &["--config", path(&receiving)],
        &["Fluent Forward"],
        &[("MINEWATCH_FORWARD_SHARED_KEY", "forward-s3cret")],
    );
    // The sender passes every event on, alerts attached, over TLS by the name in the
    // receiver's certificate; a second output has no client certificate to show.
    let sending = dir.write(
        "sender.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\nstate_dir = \"sender-state\"\n\
             [[outputs]]\ntype = \"file\"\npath = \"sent.ndjson\"\n\
             [[outputs]]\ntype = \"forward\"\nname = \"relay\"\npassthrough = true\n\
             address = \"127.0.0.1:{port}\"\ntls = true\ntls_server_name = \"localhost\"\n\
             ca_file = {ca:?}\ntls_cert = {:?}\ntls_key = {:?}\nshared_key = \"forward-s3cret\"\n\
             [[outputs]]\ntype = \"forward\"\nname = \"anonymous\"\naddress = \"127.0.0.1:{port}\"\n\
             tls = true\ntls_server_name = \"localhost\"\nca_file = {ca:?}\n\
             shared_key = \"forward-s3cret\"\nretry_max_ms = 500\n",
            sender_identity.cert(),
            sender_identity.key(),
            port = receiver.forward.port(),
            ca = pki.ca_str(),
        ),
    );
    let sender = Server::start(&dir, &["--http", "127.0.0.1:0", "--config", path(&sending)]);
    let (status, reply) = post(&sender.url("/events"), &events(), &[]);
    assert_eq!(status, 200, "{reply}");
    let received = wait_for_alerts(&dir.join("received.ndjson"), 4);
    sender.wait_for_log("TLS with the Forward receiver failed", 1);
    let sent_log = sender.stop();
    let received_log = receiver.stop();
    assert_eq!(unique_pairs(&received), expected);
    let refusal = sent_log
        .lines()
        .find(|l| l.contains("TLS with the Forward receiver failed"))
        .unwrap();
    assert!(
        refusal.contains("CertificateRequired") && refusal.contains("set tls_cert and tls_key"),
        "{refusal}"
    );
    assert!(
        received_log.contains("client sent no certificate"),
        "{received_log}"
    );
    assert_eq!(
        unique_pairs(&alerts(&std::fs::read(dir.join("sent.ndjson")).unwrap())),
        expected
    );
}

#[test]
fn certificates_are_read_again_on_sighup_and_bad_ones_are_rejected() {
    let (dir, _) = setup();
    let pki = Pki::new(dir.path(), "reload");
    let first = pki.server("first");
    let live_cert = dir.join("live.pem");
    let live_key = dir.join("live-key.pem");
    std::fs::copy(&first.cert, &live_cert).unwrap();
    std::fs::copy(&first.key, &live_key).unwrap();
    let config = dir.write(
        "reload.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\n[sources.http]\nlisten = \"127.0.0.1:0\"\ntls_cert = {:?}\ntls_key = {:?}\n",
            path(&live_cert),
            path(&live_key)
        ),
    );
    let server = Server::start(&dir, &["--config", path(&config)]);
    assert_eq!(peer_certificate(server.http, &pki.ca()), first.der());

    // Renewed files are not watched: the old certificate serves until SIGHUP.
    let second = pki.server("second");
    std::fs::copy(&second.cert, &live_cert).unwrap();
    std::fs::copy(&second.key, &live_key).unwrap();
    assert_eq!(peer_certificate(server.http, &pki.ca()), first.der());
    server.signal("HUP");
    server.wait_for_log("Reloaded the TLS certificate.", 1);
    assert_eq!(peer_certificate(server.http, &pki.ca()), second.der());

    // A key that does not fit is rejected; the second certificate keeps serving.
    std::fs::copy(&first.key, &live_key).unwrap();
    server.signal("HUP");
    server.wait_for_log("Rejected the new TLS certificate; the old one stays.", 1);
    assert_eq!(peer_certificate(server.http, &pki.ca()), second.der());
    let log = server.stop();
    assert!(log.contains("does not belong to tls_cert"), "{log}");
}

#[test]
fn secrets_and_open_intake_are_not_exposed_beyond_loopback() {
    let (dir, _) = setup();
    // No token at all on every interface.
    let out = command(&dir)
        .args(["serve", "--memory", "--http", "0.0.0.0:0"])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("with no token") && stderr.contains("allow_unauthenticated = true"),
        "{stderr}"
    );
    // A token from the flag, but no TLS: it would travel in clear.
    let out = command(&dir)
        .args([
            "serve",
            "--memory",
            "--http",
            "0.0.0.0:0",
            "--http-token",
            "t0ken",
        ])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("token would cross the network in clear")
            && stderr.contains("allow_plaintext = true"),
        "{stderr}"
    );
    // The shared key from the environment counts the same.
    let out = command(&dir)
        .args(["serve", "--memory", "--forward", "[::]:0"])
        .env("MINEWATCH_FORWARD_SHARED_KEY", "k3y")
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[sources.forward]") && stderr.contains("shared_key would cross"),
        "{stderr}"
    );
    // Saying so explicitly is accepted (checked with validate, which binds nothing).
    let allowed = dir.write(
        "allowed.toml",
        "memory = true\nspool_dir = \"spool\"\n[sources.http]\nlisten = \"0.0.0.0:8686\"\nallow_plaintext = true\n",
    );
    let out = command(&dir)
        .args(["validate", "--config", path(&allowed)])
        .env("MINEWATCH_HTTP_TOKEN", "t0ken")
        .ok(&dir);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is valid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A token from the environment guards a loopback listener.
    let server = Server::start_env(
        &dir,
        &[
            "--memory",
            "--http",
            "127.0.0.1:0",
            "--output",
            "alerts.ndjson",
        ],
        &["HTTP"],
        &[("MINEWATCH_HTTP_TOKEN", "env-t0ken")],
    );
    let (status, _) = post(&server.url("/events"), &events(), &[]);
    assert_eq!(status, 401);
    let (status, reply) = post(
        &server.url("/events"),
        &events(),
        &[("Authorization", "Bearer env-t0ken")],
    );
    assert_eq!(status, 200, "{reply}");
    server.stop();
}

#[test]
fn validate_says_what_is_wrong_with_each_certificate_file() {
    let (dir, _) = setup();
    let pki = Pki::new(dir.path(), "validate");
    let server = pki.server("server");
    let other = pki.server("other");
    let config = dir.write(
        "broken.toml",
        format!(
            "memory = true\nspool_dir = \"spool\"\n\
             [sources.http]\nlisten = \"127.0.0.1:8686\"\ntls_cert = {key:?}\ntls_key = {key:?}\n\
             [sources.forward]\nlisten = \"127.0.0.1:24224\"\ntls_cert = {cert:?}\ntls_key = {other_key:?}\n\
             [[outputs]]\ntype = \"splunk_hec\"\nname = \"hec\"\nendpoint = \"https://splunk:8088\"\n\
             token = \"t\"\nca_file = \"missing-ca.pem\"\n\
             [[outputs]]\ntype = \"http\"\nname = \"lax\"\nendpoint = \"https://alerts:443/\"\n\
             tls_verify = false\n\
             [[outputs]]\ntype = \"forward\"\nname = \"fwd\"\naddress = \"127.0.0.1:24225\"\n\
             ca_file = {ca:?}\n",
            key = server.key(),
            cert = server.cert(),
            other_key = other.key(),
            ca = pki.ca_str(),
        ),
    );
    let out = command(&dir)
        .args(["validate", "--config", path(&config)])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "[sources.http] tls_cert",
        "holds no certificate, only a private key",
        "[sources.forward] tls_key",
        "does not belong to tls_cert",
        "output hec:",
        "missing-ca.pem: cannot read it",
        "warning: output lax: tls_verify = false",
        "output fwd:",
        "need tls = true",
    ] {
        assert!(stderr.contains(needle), "{needle:?} not in:\n{stderr}");
    }
}

/// A TLS-only `redis-server` on a free loopback port, killed when dropped.
struct TlsRedis {
    child: std::process::Child,
    port: u16,
}

impl TlsRedis {
    fn start(dir: &Dir, identity: &crate::pki::Identity, ca: &Path) -> TlsRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(["--tls-port", &port.to_string()])
            .args([
                "--tls-cert-file",
                identity.cert(),
                "--tls-key-file",
                identity.key(),
            ])
            .args(["--tls-ca-cert-file", path(ca), "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is needed for this test (.ci/run installs it)");
        TlsRedis { child, port }
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn baselines_in_redis_over_tls_with_a_private_ca() {
    let (dir, _) = setup();
    let expected = expected(&dir);
    let pki = Pki::new(dir.path(), "redis");
    let redis = TlsRedis::start(&dir, &pki.server("redis"), &pki.ca());
    let url = format!("rediss://localhost:{}/0", redis.port);
    let store = |extra: &str| {
        format!(
            "[store]\nbackend = \"redis\"\n[store.redis]\nurl = \"{url}\"\ntimeout_ms = 1000\n{extra}"
        )
    };
    let trusted = dir.write(
        "trusted.toml",
        store(&format!("ca_file = {:?}\n", pki.ca_str())),
    );
    // validate pings the server: wait until it answers over TLS.
    let mut ready = false;
    for _ in 0..200 {
        let out = command(&dir)
            .args(["validate", "--config", path(&trusted)])
            .output_raw();
        if out.status.success() {
            ready = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(ready, "redis-server never answered over TLS");
    // The system trust store does not know the private CA.
    let untrusted = dir.write("untrusted.toml", store(""));
    let out = command(&dir)
        .args(["validate", "--config", path(&untrusted)])
        .assert_exit(&dir, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("UnknownIssuer") || stderr.contains("certificate"),
        "{stderr}"
    );
    let server = Server::start(
        &dir,
        &[
            "--config",
            path(&trusted),
            "--http",
            "127.0.0.1:0",
            "--output",
            "alerts.ndjson",
        ],
    );
    let (status, reply) = post(&server.url("/events"), &events(), &[]);
    assert_eq!(status, 200, "{reply}");
    server.stop();
    assert_eq!(
        unique_pairs(&alerts(&std::fs::read(dir.join("alerts.ndjson")).unwrap())),
        expected
    );
}

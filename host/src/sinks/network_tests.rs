//! Network tests of the spooled outputs against receivers written here: a loopback
//! HTTP server (for `http` and `splunk_hec`) and a Fluent Forward server, each on
//! 127.0.0.1 only, with bounded loops and short timeouts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::AlertSink;
use super::forward::ForwardConfig;
use super::hec::HecConfig;
use super::http::HttpConfig;
use super::spool::{Depth, SpoolOptions, open, output_dir};

/// Longest any test waits for a condition.
const PATIENCE: Duration = Duration::from_secs(10);

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A free loopback port (bound, then released).
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn alert(n: usize) -> Value {
    json!({
        "detection": "aws-cryptomining-gpu-instance",
        "n": n,
        "time": format!("2024-12-16T18:41:{:02}.{:03}Z", n % 60, n % 1000),
        "message": "line with \"quotes\"\nand a newline",
    })
}

fn write_batch(sink: &mut dyn AlertSink, range: std::ops::Range<usize>) {
    assert!(sink.has_room());
    for n in range {
        sink.write(&alert(n)).unwrap();
    }
    sink.flush().unwrap();
}

fn numbers(items: &[Value]) -> Vec<usize> {
    items
        .iter()
        .map(|v| v["n"].as_u64().unwrap() as usize)
        .collect()
}

/// One request as the test receiver saw it.
#[derive(Debug, Clone)]
struct Request {
    path: String,
    headers: Vec<(String, String)>,
    /// Decompressed body.
    body: Vec<u8>,
    status: u16,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Responder = Box<dyn FnMut(usize, &Request) -> (u16, String) + Send>;

/// A loopback HTTP/1.1 receiver answering each request by `responder(index, request)`.
struct Receiver {
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    fn start(addr: SocketAddr, mut responder: Responder) -> Receiver {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = serve(stream, &seen, &mut responder);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Receiver {
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Items of the requests answered 2xx, in order.
    fn accepted_items(&self) -> Vec<Value> {
        self.requests()
            .iter()
            .filter(|r| (200..300).contains(&r.status))
            .flat_map(|r| parse_body(&r.body))
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// JSON values of a body: NDJSON, a JSON array, or concatenated objects.
fn parse_body(body: &[u8]) -> Vec<Value> {
    let values: Vec<Value> = serde_json::Deserializer::from_slice(body)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    match values.as_slice() {
        [Value::Array(items)] => items.clone(),
        _ => values,
    }
}

fn serve(
    stream: TcpStream,
    seen: &Mutex<Vec<Request>>,
    responder: &mut Responder,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((k, v)) = trimmed.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut request = Request {
        path,
        headers,
        body: Vec::new(),
        status: 0,
    };
    let length: usize = request
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body)?;
    if request.header("content-encoding") == Some("gzip") {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain)?;
        body = plain;
    }
    request.body = body;
    let index = seen.lock().unwrap().len();
    let (status, answer) = responder(index, &request);
    request.status = status;
    seen.lock().unwrap().push(request);
    let mut stream = stream;
    write!(
        stream,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
        answer.len()
    )?;
    stream.flush()
}

fn http_config(addr: SocketAddr, extra: Value) -> HttpConfig {
    let mut config = json!({
        "endpoint": format!("http://{addr}/ingest"),
        "batch_max_events": 7,
        "retry_initial_ms": 20,
        "retry_max_ms": 100,
        "timeout_secs": 5,
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(config).unwrap()
}

#[test]
fn http_delivers_ndjson_in_order_with_headers() {
    let addr = free_addr();
    let receiver = Receiver::start(addr, Box::new(|_, _| (200, String::new())));
    let tmp = tempfile::tempdir().unwrap();
    let config = http_config(addr, json!({"headers": {"Authorization": "Bearer t0ken"}}));
    let mut sink = config.build("vector", tmp.path()).unwrap();
    for start in (0..50).step_by(10) {
        write_batch(&mut sink, start..start + 10);
    }
    assert!(sink.close(PATIENCE), "spool should drain");
    assert_eq!(
        numbers(&receiver.accepted_items()),
        (0..50).collect::<Vec<_>>()
    );
    let requests = receiver.requests();
    assert!(
        requests.len() >= 8,
        "batches of at most 7: {}",
        requests.len()
    );
    for request in &requests {
        assert_eq!(request.path, "/ingest");
        assert_eq!(request.header("content-type"), Some("application/x-ndjson"));
        assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
        assert!(request.body.ends_with(b"\n"));
        assert!(parse_body(&request.body).len() <= 7);
    }
    assert_eq!(sink.depth().lines, 0);
    assert!(!sink.dead_letter_path().exists());
}

#[test]
fn http_json_array_with_gzip_suits_fluent_bit() {
    let addr = free_addr();
    let receiver = Receiver::start(addr, Box::new(|_, _| (201, String::new())));
    let tmp = tempfile::tempdir().unwrap();
    let config = http_config(
        addr,
        json!({"framing": "json_array", "compression": "gzip"}),
    );
    // As the pipeline holds it: boxed, watched through a handle.
    let sink = config.build("fluent-bit", tmp.path()).unwrap();
    let handle = sink.handle();
    let mut sink: Box<dyn AlertSink> = Box::new(sink);
    write_batch(sink.as_mut(), 0..5);
    assert!(handle.wait_drained(PATIENCE));
    drop(sink);
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("content-type"), Some("application/json"));
    assert_eq!(requests[0].header("content-encoding"), Some("gzip"));
    let array: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(numbers(array.as_array().unwrap()), vec![0, 1, 2, 3, 4]);
}

#[test]
fn http_outage_then_recovery_delivers_every_line_once_in_order() {
    let addr = free_addr();
    let tmp = tempfile::tempdir().unwrap();
    let config = http_config(addr, json!({}));
    let mut sink = config.build("outage", tmp.path()).unwrap();
    // Receiver down: connections refused, flushes still succeed into the spool.
    for start in (0..60).step_by(12) {
        write_batch(&mut sink, start..start + 12);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(sink.depth().lines, 60);
    // Back, but busy: the first four requests get 503, then 200.
    let receiver = Receiver::start(
        addr,
        Box::new(|i, _| {
            if i < 4 {
                (503, "busy".into())
            } else {
                (200, String::new())
            }
        }),
    );
    write_batch(&mut sink, 60..75);
    assert!(sink.close(PATIENCE), "spool should drain after the outage");
    assert_eq!(
        numbers(&receiver.accepted_items()),
        (0..75).collect::<Vec<_>>()
    );
    let statuses: Vec<u16> = receiver.requests().iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..4], &[503; 4]);
    assert!(!sink.dead_letter_path().exists());
}

#[test]
fn http_restart_resumes_what_was_not_delivered() {
    let addr = free_addr();
    let tmp = tempfile::tempdir().unwrap();
    let config = http_config(addr, json!({}));
    {
        let mut sink = config.build("restart", tmp.path()).unwrap();
        write_batch(&mut sink, 0..20);
        assert!(
            !sink.close(Duration::from_millis(100)),
            "nothing can be delivered yet"
        );
    }
    let receiver = Receiver::start(addr, Box::new(|_, _| (200, String::new())));
    let mut sink = config.build("restart", tmp.path()).unwrap();
    write_batch(&mut sink, 20..25);
    assert!(sink.close(PATIENCE));
    assert_eq!(
        numbers(&receiver.accepted_items()),
        (0..25).collect::<Vec<_>>()
    );
}

#[test]
fn http_400_moves_the_batch_to_the_dead_letter_file() {
    let addr = free_addr();
    let receiver = Receiver::start(
        addr,
        Box::new(|i, _| {
            if i == 0 {
                (400, "{\"error\":\"bad\"}".into())
            } else {
                (200, String::new())
            }
        }),
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = http_config(addr, json!({}))
        .build("dlq", tmp.path())
        .unwrap();
    write_batch(&mut sink, 0..3);
    let dead_letter = sink.dead_letter_path().to_path_buf();
    wait_until("the dead-letter file", || {
        dead_letter.exists() && sink.depth().lines == 0
    });
    write_batch(&mut sink, 3..5);
    assert!(sink.close(PATIENCE));
    let refused: Vec<Value> = std::fs::read_to_string(&dead_letter)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(numbers(&refused), vec![0, 1, 2]);
    assert_eq!(refused[0], alert(0));
    assert_eq!(numbers(&receiver.accepted_items()), vec![3, 4]);
}

#[test]
fn http_full_spool_pushes_back_until_the_receiver_is_back() {
    let addr = free_addr();
    let tmp = tempfile::tempdir().unwrap();
    let config = http_config(
        addr,
        json!({"spool_max_bytes": 2000, "spool_segment_bytes": 500}),
    );
    let mut sink = config.build("full", tmp.path()).unwrap();
    let handle = sink.handle();
    let mut written = 0;
    while sink.has_room() {
        assert!(written < 1000, "the spool never filled");
        write_batch(&mut sink, written..written + 5);
        written += 5;
    }
    assert!(handle.depth().bytes >= 2000);
    let receiver = Receiver::start(addr, Box::new(|_, _| (200, String::new())));
    assert!(handle.wait_drained(PATIENCE));
    assert!(sink.has_room());
    drop(sink);
    assert_eq!(
        numbers(&receiver.accepted_items()),
        (0..written).collect::<Vec<_>>()
    );
    assert_eq!(handle.depth(), Depth::default());
    assert!(!handle.wait_drained(Duration::from_millis(1)));
}

#[test]
fn a_spooled_line_that_is_not_json_goes_to_the_dead_letter_file() {
    let addr = free_addr();
    let receiver = Receiver::start(addr, Box::new(|_, _| (200, String::new())));
    let tmp = tempfile::tempdir().unwrap();
    let dir = output_dir(tmp.path(), "corrupt").unwrap();
    {
        let (mut writer, _reader) = open(&dir, "corrupt", &SpoolOptions::default()).unwrap();
        writer
            .append(&serde_json::to_vec(&alert(0)).unwrap())
            .unwrap();
        writer.append(b"{not json").unwrap();
        writer
            .append(&serde_json::to_vec(&alert(1)).unwrap())
            .unwrap();
        writer.sync().unwrap();
    }
    let mut sink = http_config(addr, json!({}))
        .build("corrupt", tmp.path())
        .unwrap();
    assert!(sink.close(PATIENCE));
    assert_eq!(numbers(&receiver.accepted_items()), vec![0, 1]);
    assert_eq!(
        std::fs::read_to_string(sink.dead_letter_path()).unwrap(),
        "{not json\n"
    );
}

#[test]
fn hec_sends_authorized_envelopes_and_retries_a_busy_collector() {
    let addr = free_addr();
    let receiver = Receiver::start(
        addr,
        Box::new(|i, _| {
            if i == 0 {
                (503, r#"{"text":"Server is busy","code":9}"#.into())
            } else {
                (200, r#"{"text":"Success","code":0}"#.into())
            }
        }),
    );
    let tmp = tempfile::tempdir().unwrap();
    let config: HecConfig = serde_json::from_value(json!({
        "endpoint": format!("http://{addr}"),
        "token": "11111111-2222-3333-4444-555555555555",
        "host": "sensor-7",
        "index": "cloudtrail_alerts",
        "retry_initial_ms": 20,
        "retry_max_ms": 100,
    }))
    .unwrap();
    let mut sink = config.build("splunk", tmp.path()).unwrap();
    write_batch(&mut sink, 0..4);
    assert!(sink.close(PATIENCE));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "one busy answer, one success");
    for request in &requests {
        assert_eq!(request.path, "/services/collector/event");
        assert_eq!(
            request.header("authorization"),
            Some("Splunk 11111111-2222-3333-4444-555555555555")
        );
    }
    let events = parse_body(&requests[1].body);
    assert_eq!(events.len(), 4);
    for (n, event) in events.iter().enumerate() {
        assert_eq!(event["event"], alert(n));
        assert_eq!(event["host"], "sensor-7");
        assert_eq!(event["source"], "minewatch");
        assert_eq!(event["sourcetype"], "minewatch:alert");
        assert_eq!(event["index"], "cloudtrail_alerts");
        let expected = 1_734_374_460.0 + n as f64 + (n as f64) / 1000.0;
        assert!(
            (event["time"].as_f64().unwrap() - expected).abs() < 1e-6,
            "{event}"
        );
    }
}

#[test]
fn hec_bad_token_dead_letters_the_batch() {
    let addr = free_addr();
    let _receiver = Receiver::start(
        addr,
        Box::new(|_, _| (403, r#"{"text":"Invalid token","code":4}"#.into())),
    );
    let tmp = tempfile::tempdir().unwrap();
    let config: HecConfig = serde_json::from_value(json!({
        "endpoint": format!("http://{addr}"), "token": "wrong", "retry_initial_ms": 20,
    }))
    .unwrap();
    let mut sink = config.build("splunk", tmp.path()).unwrap();
    write_batch(&mut sink, 0..2);
    assert!(sink.close(PATIENCE), "a refused batch counts as handled");
    let refused = std::fs::read_to_string(sink.dead_letter_path()).unwrap();
    assert_eq!(refused.lines().count(), 2);
}

/// What the test Forward server does with each message.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AckMode {
    Always,
    /// Reads the first message but never answers it.
    SkipFirst,
}

/// A message the Forward server decoded.
#[derive(Debug, Clone)]
struct Received {
    chunk: String,
    /// (seconds, nanoseconds, record as JSON) per entry.
    entries: Vec<(u32, u32, Value)>,
    acked: bool,
}

/// A loopback Fluent Forward server.
struct ForwardServer {
    received: Arc<Mutex<Vec<Received>>>,
    errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ForwardServer {
    fn start(addr: SocketAddr, mode: AckMode, shared_key: Option<&'static str>) -> ForwardServer {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, failed, stopped) = (
            Arc::clone(&received),
            Arc::clone(&errors),
            Arc::clone(&stop),
        );
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(error) =
                            forward_connection(stream, mode, shared_key, &seen, &stopped)
                        {
                            failed.lock().unwrap().push(error);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        ForwardServer {
            received,
            errors,
            stop,
            thread: Some(thread),
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn acked_records(&self) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|m| m.acked)
            .flat_map(|m| m.entries.into_iter().map(|(_, _, record)| record))
            .collect()
    }
}

impl Drop for ForwardServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn pack_to_json(value: &rmpv::Value) -> Value {
    match value {
        rmpv::Value::Nil => Value::Null,
        rmpv::Value::Boolean(b) => json!(b),
        rmpv::Value::Integer(i) => i.as_u64().map_or_else(|| json!(i.as_i64()), |u| json!(u)),
        rmpv::Value::F64(f) => json!(f),
        rmpv::Value::F32(f) => json!(f),
        rmpv::Value::String(s) => json!(s.as_str()),
        rmpv::Value::Array(items) => Value::Array(items.iter().map(pack_to_json).collect()),
        rmpv::Value::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), pack_to_json(v)))
                .collect(),
        ),
        other => panic!("unexpected MessagePack value {other}"),
    }
}

fn sha512_hex(parts: &[&[u8]]) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn send_pack(stream: &mut TcpStream, value: &rmpv::Value) {
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, value).unwrap();
    stream.write_all(&bytes).unwrap();
}

/// Serves one connection: optional handshake, then messages until EOF or stop.
fn forward_connection(
    stream: TcpStream,
    mode: AckMode,
    shared_key: Option<&str>,
    seen: &Mutex<Vec<Received>>,
    stopped: &AtomicBool,
) -> Result<(), String> {
    use rmpv::Value as P;
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let get = |value: &P, key: &str| -> Option<P> {
        value
            .as_map()?
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.clone())
    };
    if let Some(key) = shared_key {
        let nonce = b"0123456789abcdef".to_vec();
        send_pack(
            &mut writer,
            &P::Array(vec![
                P::from("HELO"),
                P::Map(vec![
                    (P::from("nonce"), P::Binary(nonce.clone())),
                    (P::from("auth"), P::from("")),
                    (P::from("keepalive"), P::Boolean(true)),
                ]),
            ]),
        );
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let ping = rmpv::decode::read_value(&mut reader).map_err(|e| e.to_string())?;
        let ping = ping.as_array().ok_or("PING is not an array")?.clone();
        if ping.len() != 6 || ping[0].as_str() != Some("PING") {
            return Err(format!("bad PING {ping:?}"));
        }
        let hostname = ping[1].as_str().unwrap_or_default().to_string();
        let salt = ping[2].as_str().unwrap_or_default().to_string();
        let expected = sha512_hex(&[salt.as_bytes(), hostname.as_bytes(), &nonce, key.as_bytes()]);
        if ping[3].as_str() != Some(expected.as_str()) {
            send_pack(
                &mut writer,
                &P::Array(vec![
                    P::from("PONG"),
                    P::Boolean(false),
                    P::from("shared_key mismatch"),
                    P::from(""),
                    P::from(""),
                ]),
            );
            return Ok(());
        }
        let digest = sha512_hex(&[salt.as_bytes(), b"receiver.test", &nonce, key.as_bytes()]);
        send_pack(
            &mut writer,
            &P::Array(vec![
                P::from("PONG"),
                P::Boolean(true),
                P::from(""),
                P::from("receiver.test"),
                P::from(digest),
            ]),
        );
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        if stopped.load(Ordering::Relaxed) || Instant::now() > deadline {
            return Ok(());
        }
        // Wait for the first byte with a short timeout, then read the message whole.
        match reader.fill_buf() {
            Ok([]) => return Ok(()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return Ok(()),
        }
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let message = rmpv::decode::read_value(&mut reader).map_err(|e| e.to_string())?;
        reader
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let parts = message.as_array().ok_or("message is not an array")?;
        if parts.len() != 3 || parts[0].as_str() != Some("minewatch.alert") {
            return Err(format!("not a Forward-mode message: {message}"));
        }
        let mut entries = Vec::new();
        for entry in parts[1].as_array().ok_or("entries are not an array")? {
            let pair = entry.as_array().ok_or("entry is not an array")?;
            let P::Ext(0, data) = &pair[0] else {
                return Err(format!("time is not an EventTime: {}", pair[0]));
            };
            if data.len() != 8 {
                return Err("EventTime is not 8 bytes".into());
            }
            let secs = u32::from_be_bytes(data[..4].try_into().unwrap());
            let nanos = u32::from_be_bytes(data[4..].try_into().unwrap());
            entries.push((secs, nanos, pack_to_json(&pair[1])));
        }
        let chunk = get(&parts[2], "chunk")
            .and_then(|c| c.as_str().map(str::to_string))
            .ok_or("no chunk")?;
        if get(&parts[2], "size").and_then(|s| s.as_u64()) != Some(entries.len() as u64) {
            return Err("size option does not match".into());
        }
        let first = seen.lock().unwrap().is_empty();
        let acked = !(mode == AckMode::SkipFirst && first);
        seen.lock().unwrap().push(Received {
            chunk: chunk.clone(),
            entries,
            acked,
        });
        if acked {
            send_pack(&mut writer, &P::Map(vec![(P::from("ack"), P::from(chunk))]));
        }
    }
}

fn forward_config(addr: SocketAddr, extra: Value) -> ForwardConfig {
    let mut config = json!({
        "address": addr.to_string(),
        "ack_timeout_secs": 1,
        "connect_timeout_secs": 2,
        "retry_initial_ms": 20,
        "retry_max_ms": 100,
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    serde_json::from_value(config).unwrap()
}

#[test]
fn forward_sends_acked_messages_with_event_times() {
    let addr = free_addr();
    let server = ForwardServer::start(addr, AckMode::Always, None);
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = forward_config(addr, json!({"batch_max_events": 4}))
        .build("fluent", tmp.path())
        .unwrap();
    write_batch(&mut sink, 0..6);
    write_batch(&mut sink, 6..10);
    assert!(sink.close(PATIENCE));
    drop(sink);
    let received = server.received();
    assert!(received.len() >= 3, "batches of at most 4");
    for message in &received {
        assert!(message.acked);
        for (secs, nanos, record) in &message.entries {
            let n = record["n"].as_u64().unwrap() as u32;
            assert_eq!(*secs, 1_734_374_460 + n);
            assert_eq!(*nanos, n * 1_000_000);
        }
    }
    assert_eq!(
        server.acked_records(),
        (0..10).map(alert).collect::<Vec<_>>()
    );
    assert!(
        server.errors.lock().unwrap().is_empty(),
        "{:?}",
        server.errors.lock().unwrap()
    );
}

#[test]
fn forward_resends_a_batch_that_was_not_acknowledged() {
    let addr = free_addr();
    let server = ForwardServer::start(addr, AckMode::SkipFirst, None);
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = forward_config(addr, json!({}))
        .build("fluent", tmp.path())
        .unwrap();
    write_batch(&mut sink, 0..3);
    assert!(sink.close(PATIENCE));
    drop(sink);
    let received = server.received();
    assert_eq!(received.len(), 2, "sent, not acknowledged, sent again");
    assert!(!received[0].acked && received[1].acked);
    assert_ne!(received[0].chunk, received[1].chunk);
    assert_eq!(received[0].entries, received[1].entries);
    assert_eq!(
        server.acked_records(),
        (0..3).map(alert).collect::<Vec<_>>()
    );
}

#[test]
fn forward_shared_key_handshake() {
    let addr = free_addr();
    let server = ForwardServer::start(addr, AckMode::Always, Some("s3cret"));
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = forward_config(
        addr,
        json!({"shared_key": "s3cret", "self_hostname": "sensor.test"}),
    )
    .build("secure", tmp.path())
    .unwrap();
    write_batch(&mut sink, 0..2);
    assert!(sink.close(PATIENCE));
    drop(sink);
    assert_eq!(
        server.acked_records(),
        (0..2).map(alert).collect::<Vec<_>>()
    );
    assert!(
        server.errors.lock().unwrap().is_empty(),
        "{:?}",
        server.errors.lock().unwrap()
    );
}

#[test]
fn forward_wrong_shared_key_keeps_the_lines_spooled() {
    let addr = free_addr();
    let server = ForwardServer::start(addr, AckMode::Always, Some("right"));
    let tmp = tempfile::tempdir().unwrap();
    let mut sink = forward_config(addr, json!({"shared_key": "wrong"}))
        .build("secure", tmp.path())
        .unwrap();
    write_batch(&mut sink, 0..2);
    assert!(!sink.close(Duration::from_millis(300)));
    assert_eq!(sink.depth().lines, 2);
    assert!(!sink.dead_letter_path().exists());
    drop(sink);
    assert!(server.received().is_empty());
}

//! Unit tests of the Forward source: hand-built msgpack for every mode and time format, acks
//! byte for byte, messages split across and coalesced into TCP segments, garbage and
//! oversized messages, refusals, the shared-key handshake, heartbeats, idle timeout and
//! shutdown. Everything runs on loopback.

use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flate2::Compression;
use flate2::write::GzEncoder;
use rmpv::{Value, ValueRef};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::timeout;

use super::protocol::{self, Decoded, FrameScanner, Limits, ProtocolError};
use super::{ForwardBatch, ForwardConfig, ForwardHandler, ForwardTime, Refusal, serve};
use crate::sources::budget::Budget;

/// How long a test waits for something that should happen promptly.
pub(super) const WAIT: Duration = Duration::from_secs(10);

/// Decides whether the test handler accepts a batch.
pub(super) type Decide = Box<dyn Fn(&ForwardBatch) -> Result<(), Refusal> + Send + Sync>;

/// A handler that passes every batch (accepted or not) to the test through a channel.
struct Collector {
    batches: mpsc::UnboundedSender<ForwardBatch>,
    decide: Decide,
    gate: Option<Arc<Notify>>,
}

impl ForwardHandler for Collector {
    fn handle(
        &self,
        batch: ForwardBatch,
        _receiving: crate::serve::worker::Receiving,
    ) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + '_>> {
        Box::pin(async move {
            let verdict = (self.decide)(&batch);
            let _ = self.batches.send(batch);
            // The test sees the batch before the gate opens: the handler is then in flight.
            if let Some(gate) = &self.gate {
                gate.notified().await;
            }
            verdict
        })
    }
}

/// A server on an ephemeral loopback port with a collecting handler.
pub(super) struct TestServer {
    pub(super) addr: SocketAddr,
    batches: mpsc::UnboundedReceiver<ForwardBatch>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Starts a server that accepts everything.
    pub(super) async fn start(config: ForwardConfig) -> Self {
        Self::start_with(config, Box::new(|_| Ok(())), None).await
    }

    /// Starts a server whose handler applies `decide` and, if given, then waits for `gate`
    /// before returning the verdict.
    pub(super) async fn start_with(
        config: ForwardConfig,
        decide: Decide,
        gate: Option<Arc<Notify>>,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (sender, batches) = mpsc::unbounded_channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let handler = Arc::new(Collector {
            batches: sender,
            decide,
            gate,
        });
        let task = tokio::spawn(serve(listener, config, handler, async move {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            batches,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The next batch the handler saw.
    pub(super) async fn next_batch(&mut self) -> ForwardBatch {
        timeout(WAIT, self.batches.recv())
            .await
            .expect("timed out waiting for a batch")
            .expect("the server dropped its handler")
    }

    /// Every batch the handler has seen so far, without waiting.
    pub(super) fn drain(&mut self) -> Vec<ForwardBatch> {
        let mut batches = Vec::new();
        while let Ok(batch) = self.batches.try_recv() {
            batches.push(batch);
        }
        batches
    }

    /// Asks the server to stop, without waiting for it.
    fn trigger_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops the server, waits for `serve` to return `Ok`, and returns the batches the
    /// handler saw that the test had not taken yet.
    pub(super) async fn stop(mut self) -> Vec<ForwardBatch> {
        self.trigger_stop();
        let task = self.task.take().unwrap();
        timeout(WAIT, task)
            .await
            .expect("serve did not return after shutdown")
            .unwrap()
            .unwrap();
        self.drain()
    }
}

fn test_config() -> ForwardConfig {
    ForwardConfig {
        udp_heartbeat: false,
        ..ForwardConfig::default()
    }
}

fn pack(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value).unwrap();
    out
}

fn s(text: &str) -> Value {
    Value::from(text)
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(key, value)| (s(key), value.clone()))
            .collect(),
    )
}

fn event_time(seconds: u32, nanos: u32) -> Value {
    let mut bytes = seconds.to_be_bytes().to_vec();
    bytes.extend_from_slice(&nanos.to_be_bytes());
    Value::Ext(0, bytes)
}

fn time(seconds: u64, nanos: u32) -> ForwardTime {
    ForwardTime { seconds, nanos }
}

/// A small CloudTrail-like record.
fn record(n: u64) -> Value {
    map(&[
        ("eventName", s("RunInstances")),
        ("eventSource", s("ec2.amazonaws.com")),
        ("n", Value::from(n)),
        (
            "requestParameters",
            map(&[
                ("instanceType", s("p3.16xlarge")),
                ("minCount", Value::from(4)),
            ]),
        ),
    ])
}

fn record_json(n: u64) -> serde_json::Value {
    json!({
        "eventName": "RunInstances",
        "eventSource": "ec2.amazonaws.com",
        "n": n,
        "requestParameters": {"instanceType": "p3.16xlarge", "minCount": 4},
    })
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The exact bytes of `{"ack": chunk}` for a short chunk id.
fn ack_bytes(chunk: &str) -> Vec<u8> {
    assert!(chunk.len() < 32);
    let mut out = vec![0x81, 0xa3, b'a', b'c', b'k', 0xa0 | chunk.len() as u8];
    out.extend_from_slice(chunk.as_bytes());
    out
}

async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.unwrap();
}

/// Reads exactly the bytes of the ack for `chunk`.
async fn expect_ack(stream: &mut TcpStream, chunk: &str) {
    let expected = ack_bytes(chunk);
    let mut got = vec![0; expected.len()];
    timeout(WAIT, stream.read_exact(&mut got))
        .await
        .expect("timed out waiting for an ack")
        .expect("connection failed before the ack");
    assert_eq!(got, expected, "ack bytes for chunk {chunk:?}");
}

/// Reads one whole msgpack value.
async fn read_value(stream: &mut TcpStream) -> Value {
    let mut buf = Vec::new();
    let mut scanner = FrameScanner::default();
    loop {
        if let Some(len) = scanner.scan(&buf, 1 << 20).unwrap() {
            assert_eq!(len, buf.len(), "the server sent more than one value");
            return rmpv::decode::read_value(&mut &buf[..]).unwrap();
        }
        let mut chunk = [0u8; 4096];
        let n = timeout(WAIT, stream.read(&mut chunk))
            .await
            .expect("timed out waiting for a msgpack value")
            .unwrap();
        assert!(n > 0, "connection closed while waiting for a msgpack value");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Asserts that the server closes the connection (EOF or reset) without sending anything.
async fn expect_closed(stream: &mut TcpStream) {
    let mut byte = [0u8; 1];
    match timeout(WAIT, stream.read(&mut byte)).await {
        Err(_) => panic!("the server did not close the connection"),
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("expected the connection to close, got {n} byte(s): {byte:?}"),
    }
}

fn message(tag: &str, time: Value, record: Value, option: Option<Value>) -> Vec<u8> {
    let mut items = vec![s(tag), time, record];
    items.extend(option);
    pack(&Value::Array(items))
}

fn chunk_option(chunk: &str) -> Option<Value> {
    Some(map(&[("chunk", s(chunk))]))
}

fn packed_entries(entries: &[Value]) -> Vec<u8> {
    entries.iter().flat_map(pack).collect()
}

#[tokio::test]
async fn message_mode_acks_only_when_asked() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    send(
        &mut client,
        &message(
            "aws.cloudtrail",
            Value::from(1_700_000_000u64),
            record(1),
            None,
        ),
    )
    .await;
    send(
        &mut client,
        &message(
            "aws.cloudtrail",
            event_time(1_700_000_001, 5),
            record(2),
            chunk_option("c2"),
        ),
    )
    .await;
    // The first bytes back are the ack of the second message: the first got none.
    expect_ack(&mut client, "c2").await;

    let first = server.next_batch().await;
    assert_eq!(first.tag, "aws.cloudtrail");
    assert_eq!(first.dropped, 0);
    assert_eq!(first.records.len(), 1);
    assert_eq!(first.records[0].time, time(1_700_000_000, 0));
    assert_eq!(first.records[0].record, record_json(1));
    let second = server.next_batch().await;
    assert_eq!(second.records[0].time, time(1_700_000_001, 5));
    assert_eq!(second.records[0].record, record_json(2));
    server.stop().await;
}

#[tokio::test]
async fn forward_mode_takes_every_time_format() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    let entries = Value::Array(vec![
        Value::Array(vec![event_time(1_700_000_000, 123_456_789), record(0)]),
        Value::Array(vec![Value::from(1_700_000_001u64), record(1)]),
        Value::Array(vec![Value::F64(1_700_000_002.25), record(2)]),
        Value::Array(vec![Value::F32(1.5), record(3)]),
        // Fluent Bit 2.x: [[time, metadata], record].
        Value::Array(vec![
            Value::Array(vec![event_time(1_700_000_004, 4), map(&[])]),
            record(4),
        ]),
    ]);
    let option = map(&[("chunk", s("fw-1")), ("size", Value::from(5))]);
    send(
        &mut client,
        &pack(&Value::Array(vec![s("fw.tag"), entries, option])),
    )
    .await;
    expect_ack(&mut client, "fw-1").await;

    let batch = server.next_batch().await;
    assert_eq!(batch.tag, "fw.tag");
    assert_eq!(batch.dropped, 0);
    let times: Vec<_> = batch.records.iter().map(|r| r.time).collect();
    assert_eq!(
        times,
        vec![
            time(1_700_000_000, 123_456_789),
            time(1_700_000_001, 0),
            time(1_700_000_002, 250_000_000),
            time(1, 500_000_000),
            time(1_700_000_004, 4),
        ]
    );
    for (n, got) in batch.records.iter().enumerate() {
        assert_eq!(got.record, record_json(n as u64));
    }
    server.stop().await;
}

#[tokio::test]
async fn packed_forward_accepts_bin_and_str_payloads() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    let entries = packed_entries(&[
        Value::Array(vec![event_time(1_700_000_000, 1), record(0)]),
        Value::Array(vec![
            Value::Array(vec![event_time(1_700_000_001, 2), map(&[])]),
            record(1),
        ]),
    ]);
    let as_bin = pack(&Value::Array(vec![
        s("packed.bin"),
        Value::Binary(entries.clone()),
        map(&[("chunk", s("pb")), ("size", Value::from(2))]),
    ]));
    // Fluentd's out_forward sends the packed stream as a msgpack str (not valid UTF-8).
    let mut as_str = vec![0x93, 0xaa];
    as_str.extend_from_slice(b"packed.str");
    as_str.push(0xda);
    as_str.extend_from_slice(&(entries.len() as u16).to_be_bytes());
    as_str.extend_from_slice(&entries);
    as_str.extend_from_slice(&pack(&map(&[("chunk", s("ps"))])));
    send(&mut client, &as_bin).await;
    send(&mut client, &as_str).await;
    expect_ack(&mut client, "pb").await;
    expect_ack(&mut client, "ps").await;

    for tag in ["packed.bin", "packed.str"] {
        let batch = server.next_batch().await;
        assert_eq!(batch.tag, tag);
        assert_eq!(batch.dropped, 0);
        assert_eq!(batch.records.len(), 2);
        assert_eq!(batch.records[0].time, time(1_700_000_000, 1));
        assert_eq!(batch.records[1].time, time(1_700_000_001, 2));
        assert_eq!(batch.records[0].record, record_json(0));
        assert_eq!(batch.records[1].record, record_json(1));
    }
    server.stop().await;
}

#[tokio::test]
async fn compressed_packed_forward_inflates_concatenated_members() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    let first: Vec<Value> = (0..3)
        .map(|n| Value::Array(vec![Value::from(1_700_000_000 + n), record(n)]))
        .collect();
    let second: Vec<Value> = (3..5)
        .map(|n| Value::Array(vec![event_time(1_700_000_000 + n as u32, 7), record(n)]))
        .collect();
    let mut payload = gzip(&packed_entries(&first));
    payload.extend(gzip(&packed_entries(&second)));
    let option = map(&[
        ("chunk", s("gz")),
        ("compressed", s("gzip")),
        ("size", Value::from(5)),
    ]);
    send(
        &mut client,
        &pack(&Value::Array(vec![
            s("gz.tag"),
            Value::Binary(payload),
            option,
        ])),
    )
    .await;
    expect_ack(&mut client, "gz").await;

    let batch = server.next_batch().await;
    assert_eq!(batch.records.len(), 5);
    for (n, got) in batch.records.iter().enumerate() {
        assert_eq!(got.record, record_json(n as u64));
    }
    assert_eq!(batch.records[4].time, time(1_700_000_004, 7));
    server.stop().await;
}

#[tokio::test]
async fn unusable_entries_are_dropped_and_counted() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    let t = Value::from(1_700_000_000u64);
    let entries = Value::Array(vec![
        Value::Array(vec![t.clone(), s("not a map")]),
        Value::Array(vec![t.clone(), Value::Nil]),
        Value::Array(vec![s("yesterday"), map(&[])]),
        Value::Array(vec![Value::from(-5), map(&[])]),
        Value::Array(vec![Value::Ext(0, vec![1, 2, 3]), map(&[])]),
        Value::from(7),
        Value::Array(vec![t.clone(), record(9), Value::Nil]),
        Value::Array(vec![t, record(1)]),
    ]);
    send(
        &mut client,
        &pack(&Value::Array(vec![
            s("mixed"),
            entries,
            chunk_option("mx").unwrap(),
        ])),
    )
    .await;
    expect_ack(&mut client, "mx").await;
    let batch = server.next_batch().await;
    assert_eq!(batch.dropped, 7);
    assert_eq!(batch.records.len(), 1);
    assert_eq!(batch.records[0].record, record_json(1));

    // A Message-mode record that is not a map is dropped too, and the chunk still acked.
    send(
        &mut client,
        &message(
            "mixed",
            Value::from(1u64),
            Value::from(3),
            chunk_option("m2"),
        ),
    )
    .await;
    expect_ack(&mut client, "m2").await;
    let batch = server.next_batch().await;
    assert_eq!((batch.records.len(), batch.dropped), (0, 1));
    server.stop().await;
}

#[tokio::test]
async fn nil_time_means_now_and_nil_message_is_a_heartbeat() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // A lone nil (heartbeat) is ignored, then a Message with a nil time.
    let mut bytes = vec![0xc0];
    bytes.extend(message("now", Value::Nil, record(0), chunk_option("n")));
    send(&mut client, &bytes).await;
    expect_ack(&mut client, "n").await;
    let after = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let batch = server.next_batch().await;
    let seconds = batch.records[0].time.seconds;
    assert!(
        (before..=after).contains(&seconds),
        "{seconds} not in {before}..={after}"
    );
    server.stop().await;
}

#[tokio::test]
async fn messages_split_into_tiny_segments_are_reassembled() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    let entries: Vec<Value> = (0..20)
        .map(|n| Value::Array(vec![event_time(1_700_000_000, n as u32), record(n)]))
        .collect();
    let bytes = pack(&Value::Array(vec![
        s("split"),
        Value::Binary(packed_entries(&entries)),
        chunk_option("sp").unwrap(),
    ]));
    assert!(bytes.len() > 1000);
    for (i, piece) in bytes.chunks(7).enumerate() {
        send(&mut client, piece).await;
        if i % 8 == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    expect_ack(&mut client, "sp").await;
    let batch = server.next_batch().await;
    assert_eq!(batch.records.len(), 20);
    assert_eq!(batch.records[19].record, record_json(19));
    server.stop().await;
}

#[tokio::test]
async fn coalesced_messages_are_handled_in_order() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    let mut bytes = Vec::new();
    for n in 0..4u64 {
        bytes.extend(message(
            "co",
            Value::from(n),
            record(n),
            chunk_option(&format!("c{n}")),
        ));
    }
    // Three and a half messages in one write, the rest in a second.
    let cut = bytes.len() - 10;
    send(&mut client, &bytes[..cut]).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    send(&mut client, &bytes[cut..]).await;
    for n in 0..4u64 {
        expect_ack(&mut client, &format!("c{n}")).await;
        let batch = server.next_batch().await;
        assert_eq!(batch.records[0].record, record_json(n));
        assert_eq!(batch.records[0].time, time(n, 0));
    }
    server.stop().await;
}

#[tokio::test]
async fn garbage_closes_only_the_connection_that_sent_it() {
    let mut server = TestServer::start(test_config()).await;
    let mut good = connect(server.addr).await;
    send(
        &mut good,
        &message("ok", Value::from(1u64), record(1), chunk_option("g1")),
    )
    .await;
    expect_ack(&mut good, "g1").await;

    let garbage: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0xc1],
        pack(&Value::Array(vec![Value::from(1), Value::from(2)])),
        pack(&Value::Array(vec![s("tag"), Value::from(1u64)])),
        pack(&Value::Array(vec![
            s("tag"),
            Value::from(1u64),
            record(1),
            s("option"),
        ])),
        pack(&Value::Array(vec![
            s("tag"),
            Value::Binary(vec![0x92, 0x01]),
            map(&[("chunk", s("t"))]),
        ])),
        pack(&Value::Array(vec![
            s("tag"),
            Value::Binary(vec![1, 2, 3]),
            map(&[("compressed", s("gzip"))]),
        ])),
        pack(&Value::Array(vec![
            s("tag"),
            Value::Binary(vec![]),
            map(&[("compressed", s("zstd"))]),
        ])),
        pack(&s("just a string")),
    ];
    for bytes in &garbage {
        let mut bad = connect(server.addr).await;
        send(&mut bad, bytes).await;
        expect_closed(&mut bad).await;
    }

    send(
        &mut good,
        &message("ok", Value::from(2u64), record(2), chunk_option("g2")),
    )
    .await;
    expect_ack(&mut good, "g2").await;
    let tags: Vec<_> = [server.next_batch().await, server.next_batch().await]
        .into_iter()
        .map(|batch| batch.tag)
        .collect();
    assert_eq!(tags, ["ok", "ok"]);
    assert!(server.drain().is_empty(), "garbage reached the handler");
    server.stop().await;
}

#[tokio::test]
async fn oversized_messages_close_the_connection() {
    let config = ForwardConfig {
        max_message_bytes: 1024,
        max_decompressed_bytes: 4096,
        ..test_config()
    };
    let mut server = TestServer::start(config).await;

    // A header that announces more than the limit is refused before the payload arrives.
    let mut declared = connect(server.addr).await;
    send(
        &mut declared,
        &[0x93, 0xa3, b't', b'a', b'g', 0xc5, 0x10, 0x00],
    )
    .await;
    expect_closed(&mut declared).await;

    // Many small items that add up past the limit.
    let mut creeping = connect(server.addr).await;
    send(
        &mut creeping,
        &[0x93, 0xa3, b't', b'a', b'g', 0xdc, 0xff, 0xff],
    )
    .await;
    let mut closed = false;
    for _ in 0..50 {
        if creeping.write_all(&[0x01; 64]).await.is_err() {
            closed = true;
            break;
        }
    }
    if !closed {
        expect_closed(&mut creeping).await;
    }

    // A small gzip bomb: 64 KiB of zeros compress far below max_message_bytes.
    let bomb = gzip(&vec![0u8; 64 * 1024]);
    assert!(bomb.len() < 1000);
    let mut bombing = connect(server.addr).await;
    send(
        &mut bombing,
        &pack(&Value::Array(vec![
            s("tag"),
            Value::Binary(bomb),
            map(&[("compressed", s("gzip")), ("chunk", s("b"))]),
        ])),
    )
    .await;
    expect_closed(&mut bombing).await;

    // A normal message still goes through on a new connection.
    let mut fine = connect(server.addr).await;
    send(
        &mut fine,
        &message("tag", Value::from(1u64), record(1), chunk_option("f")),
    )
    .await;
    expect_ack(&mut fine, "f").await;
    assert_eq!(server.next_batch().await.records.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn refused_batches_get_no_ack() {
    let decide: Decide = Box::new(|batch| match batch.tag.as_str() {
        "busy" => Err(Refusal::Busy),
        "fail" => Err(Refusal::Failed("disk full".to_owned())),
        _ => Ok(()),
    });
    let mut server = TestServer::start_with(test_config(), decide, None).await;
    let mut client = connect(server.addr).await;
    for (tag, chunk) in [("busy", "r1"), ("fail", "r2"), ("fine", "r3")] {
        send(
            &mut client,
            &message(tag, Value::from(1u64), record(1), chunk_option(chunk)),
        )
        .await;
    }
    // Only the accepted chunk is acknowledged, and the connection stays usable.
    expect_ack(&mut client, "r3").await;
    let tags: Vec<_> = [
        server.next_batch().await,
        server.next_batch().await,
        server.next_batch().await,
    ]
    .into_iter()
    .map(|batch| batch.tag)
    .collect();
    assert_eq!(tags, ["busy", "fail", "fine"]);
    send(
        &mut client,
        &message("fine", Value::from(2u64), record(2), chunk_option("r4")),
    )
    .await;
    expect_ack(&mut client, "r4").await;
    server.stop().await;
}

fn auth_config() -> ForwardConfig {
    ForwardConfig {
        shared_key: Some("s3cret".to_owned()),
        self_hostname: "minewatch-test".to_owned(),
        ..test_config()
    }
}

/// Reads HELO and returns its nonce, checking the message's shape.
async fn read_helo(stream: &mut TcpStream) -> Vec<u8> {
    let helo = read_value(stream).await;
    let items = helo.as_array().expect("HELO is an array");
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_str(), Some("HELO"));
    let options = items[1].as_map().expect("HELO options are a map");
    let get = |key: &str| {
        options
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("HELO has no {key}"))
    };
    assert_eq!(get("auth"), s(""));
    assert_eq!(get("keepalive"), Value::Boolean(true));
    let nonce = get("nonce");
    let nonce = nonce.as_slice().expect("the nonce is binary").to_vec();
    assert_eq!(nonce.len(), 16);
    nonce
}

fn ping(hostname: &str, salt: &str, nonce: &[u8], key: &str) -> Vec<u8> {
    let digest =
        protocol::sha512_hex(&[salt.as_bytes(), hostname.as_bytes(), nonce, key.as_bytes()]);
    pack(&Value::Array(vec![
        s("PING"),
        s(hostname),
        s(salt),
        s(&digest),
        s(""),
        s(""),
    ]))
}

#[tokio::test]
async fn shared_key_handshake_authenticates_the_client() {
    let mut server = TestServer::start(auth_config()).await;
    let mut client = connect(server.addr).await;
    let nonce = read_helo(&mut client).await;
    send(
        &mut client,
        &ping("client.example", "salt-123", &nonce, "s3cret"),
    )
    .await;
    let pong = read_value(&mut client).await;
    let expected_digest =
        protocol::sha512_hex(&[b"salt-123", b"minewatch-test", &nonce, b"s3cret"]);
    assert_eq!(
        pong,
        Value::Array(vec![
            s("PONG"),
            Value::Boolean(true),
            s(""),
            s("minewatch-test"),
            s(&expected_digest),
        ])
    );
    send(
        &mut client,
        &message("auth", Value::from(1u64), record(1), chunk_option("a1")),
    )
    .await;
    expect_ack(&mut client, "a1").await;
    assert_eq!(server.next_batch().await.tag, "auth");

    // Every connection gets its own nonce.
    let mut other = connect(server.addr).await;
    assert_ne!(read_helo(&mut other).await, nonce);
    server.stop().await;
}

#[tokio::test]
async fn shared_key_handshake_refuses_bad_clients() {
    let mut server = TestServer::start(auth_config()).await;
    // Each case: the PONG reason, and the client's first message given the HELO nonce.
    type FirstMessage = Box<dyn Fn(&[u8]) -> Vec<u8>>;
    let cases: Vec<(&str, FirstMessage)> = vec![
        (
            "shared key mismatch",
            Box::new(|nonce| ping("client.example", "salt", nonce, "wrong")),
        ),
        (
            "same hostname between input and output: invalid configuration",
            Box::new(|nonce| ping("minewatch-test", "salt", nonce, "s3cret")),
        ),
        (
            "expected a PING message",
            Box::new(|_| message("sneaky", Value::from(1u64), record(1), chunk_option("x"))),
        ),
    ];
    for (reason, first_message) in cases {
        let mut client = connect(server.addr).await;
        let nonce = read_helo(&mut client).await;
        send(&mut client, &first_message(&nonce)).await;
        let pong = read_value(&mut client).await;
        assert_eq!(
            pong,
            Value::Array(vec![
                s("PONG"),
                Value::Boolean(false),
                s(reason),
                s("minewatch-test"),
                s(""),
            ])
        );
        expect_closed(&mut client).await;
    }
    assert!(server.drain().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_over_tcp_and_udp() {
    let config = ForwardConfig {
        udp_heartbeat: true,
        ..ForwardConfig::default()
    };
    let mut server = TestServer::start(config).await;
    // TCP heartbeat: connect and close.
    for _ in 0..3 {
        drop(connect(server.addr).await);
    }
    // UDP heartbeat: one byte back per datagram.
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..2 {
        udp.send_to(&[0], server.addr).await.unwrap();
        let mut reply = [0xffu8; 8];
        let (n, from) = timeout(WAIT, udp.recv_from(&mut reply))
            .await
            .expect("no UDP heartbeat reply")
            .unwrap();
        assert_eq!((&reply[..n], from), (&[0u8][..], server.addr));
    }
    let mut client = connect(server.addr).await;
    send(
        &mut client,
        &message("hb", Value::from(1u64), record(1), chunk_option("h")),
    )
    .await;
    expect_ack(&mut client, "h").await;
    assert_eq!(server.next_batch().await.tag, "hb");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_lets_the_in_flight_chunk_finish_and_be_acked() {
    let gate = Arc::new(Notify::new());
    let mut server =
        TestServer::start_with(test_config(), Box::new(|_| Ok(())), Some(Arc::clone(&gate))).await;
    let mut idle = connect(server.addr).await;
    let mut busy = connect(server.addr).await;
    send(
        &mut busy,
        &message("late", Value::from(1u64), record(1), chunk_option("late")),
    )
    .await;
    // The handler has the batch and waits for the gate.
    assert_eq!(server.next_batch().await.tag, "late");
    // Nothing is acknowledged while the handler holds the chunk (an ack written before
    // the handler was called would be in the socket's buffer by now).
    let mut early = [0u8; 1];
    assert!(
        matches!(busy.try_read(&mut early), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the chunk was acknowledged before its handler answered"
    );

    server.trigger_stop();
    // The idle connection is closed at once; serve waits for the in-flight chunk.
    expect_closed(&mut idle).await;
    assert!(!server.task.as_ref().unwrap().is_finished());
    // The listener is gone before connections are told to stop.
    assert!(TcpStream::connect(server.addr).await.is_err());
    gate.notify_one();
    expect_ack(&mut busy, "late").await;
    expect_closed(&mut busy).await;
    assert!(server.stop().await.is_empty());
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = ForwardConfig {
        idle_timeout_secs: 1,
        ..test_config()
    };
    let mut server = TestServer::start(config).await;
    let mut client = connect(server.addr).await;
    // A connection in use is not closed under it: its chunk is read and acked...
    send(
        &mut client,
        &message("idle", Value::from(1u64), record(1), chunk_option("i")),
    )
    .await;
    expect_ack(&mut client, "i").await;
    assert_eq!(server.next_batch().await.tag, "idle");
    // ...and once it goes quiet, it is closed.
    expect_closed(&mut client).await;
    server.stop().await;
}

#[tokio::test]
async fn fluent_bit_metrics_are_acked_but_not_handled() {
    let mut server = TestServer::start(test_config()).await;
    let mut client = connect(server.addr).await;
    let metrics = pack(&Value::Array(vec![
        s("metrics"),
        Value::Binary(vec![0xde, 0xad, 0xbe, 0xef]),
        map(&[("fluent_signal", Value::from(1)), ("chunk", s("m"))]),
    ]));
    send(&mut client, &metrics).await;
    expect_ack(&mut client, "m").await;
    send(
        &mut client,
        &message("logs", Value::from(1u64), record(1), chunk_option("l")),
    )
    .await;
    expect_ack(&mut client, "l").await;
    assert_eq!(server.next_batch().await.tag, "logs");
    server.stop().await;
}

#[test]
fn scanner_finds_message_ends_at_every_split() {
    // A message using every msgpack format, followed by a second message.
    let mut bytes = vec![0xdc, 0x00, 0x21]; // array16 of 33 items
    bytes.extend([0x05, 0xe0, 0xc0, 0xc2, 0xc3]); // fixint, negative fixint, nil, false, true
    bytes.extend([0xcc, 1, 0xcd, 1, 2, 0xce, 1, 2, 3, 4]); // uint8/16/32
    bytes.extend([0xcf, 0, 0, 0, 0, 0, 0, 0, 1]); // uint64
    bytes.extend([0xd0, 1, 0xd1, 1, 2, 0xd2, 1, 2, 3, 4]); // int8/16/32
    bytes.extend([0xd3, 0, 0, 0, 0, 0, 0, 0, 1]); // int64
    bytes.extend([0xca, 0, 0, 0, 0, 0xcb, 0, 0, 0, 0, 0, 0, 0, 0]); // float32/64
    bytes.extend([
        0xa2, b'h', b'i', 0xd9, 1, b'x', 0xda, 0, 1, b'y', 0xdb, 0, 0, 0, 1, b'z',
    ]);
    bytes.extend([0xc4, 1, 9, 0xc5, 0, 1, 9, 0xc6, 0, 0, 0, 1, 9]); // bin8/16/32
    bytes.extend([0xd4, 1, 9, 0xd5, 1, 9, 9, 0xd6, 1, 9, 9, 9, 9]); // fixext1/2/4
    bytes.extend([0xd7, 0, 1, 2, 3, 4, 5, 6, 7, 8]); // fixext8 (EventTime)
    bytes.push(0xd8);
    bytes.push(5);
    bytes.extend([7; 16]); // fixext16
    bytes.extend([0xc7, 1, 5, 9, 0xc8, 0, 1, 5, 9, 0xc9, 0, 0, 0, 1, 5, 9]); // ext8/16/32
    bytes.extend([0xdd, 0, 0, 0, 1, 0x90]); // array32 holding an empty fixarray
    bytes.extend([0xde, 0, 1, 0xa1, b'k', 0x80]); // map16 {"k": {}}
    bytes.extend([0xdf, 0, 0, 0, 1, 0x01, 0x81, 0x02, 0x03]); // map32 {1: {2: 3}}
    let first_len = bytes.len();
    let mut rest = &bytes[..];
    let decoded = rmpv::decode::read_value(&mut rest).unwrap();
    assert_eq!(decoded.as_array().unwrap().len(), 33);
    assert!(rest.is_empty(), "the hand-built message has stray bytes");
    bytes.extend(pack(&Value::Array(vec![s("second"), Value::from(1)])));

    for cut in 0..bytes.len() {
        let mut scanner = FrameScanner::default();
        let first = scanner.scan(&bytes[..cut], 1 << 20).unwrap();
        if cut < first_len {
            assert_eq!(first, None, "cut at {cut}");
            // Resuming with the whole buffer finds the same end.
            assert_eq!(scanner.scan(&bytes, 1 << 20).unwrap(), Some(first_len));
        } else {
            assert_eq!(first, Some(first_len), "cut at {cut}");
        }
    }
    // Growing one byte at a time with one scanner.
    let mut scanner = FrameScanner::default();
    let found = (0..=bytes.len())
        .find_map(|end| scanner.scan(&bytes[..end], 1 << 20).unwrap())
        .unwrap();
    assert_eq!(found, first_len);
    assert_eq!(
        scanner.scan(&bytes[first_len..], 1 << 20).unwrap(),
        Some(bytes.len() - first_len)
    );
}

#[test]
fn scanner_rejects_bad_markers_depth_and_size() {
    let mut scanner = FrameScanner::default();
    assert!(matches!(
        scanner.scan(&[0xc1], 100),
        Err(ProtocolError::Garbage(_))
    ));
    let deep = vec![0x91; 1000];
    let mut scanner = FrameScanner::default();
    assert!(matches!(
        scanner.scan(&deep, 1 << 20),
        Err(ProtocolError::Garbage(_))
    ));
    let mut scanner = FrameScanner::default();
    assert!(matches!(
        scanner.scan(&[0xc6, 0, 1, 0, 0], 1000),
        Err(ProtocolError::TooLarge { .. })
    ));
    // An array16 of 65535 one-byte items grows past the limit without announcing it.
    let mut growing = vec![0xdc, 0xff, 0xff, 1];
    let mut scanner = FrameScanner::default();
    assert_eq!(scanner.scan(&growing, 1000).unwrap(), None);
    growing.extend([1; 1000]);
    assert!(matches!(
        scanner.scan(&growing, 1000),
        Err(ProtocolError::TooLarge { .. })
    ));
}

#[test]
fn records_convert_to_json() {
    let value = Value::Map(vec![
        (s("bin"), Value::Binary(b"caf\xc3\xa9".to_vec())),
        (s("bad_utf8"), Value::Binary(vec![0x66, 0xff])),
        (s("ext"), Value::Ext(5, vec![1, 2])),
        (s("when"), event_time(1_700_000_000, 500_000_000)),
        (Value::from(7), s("int key")),
        (Value::Binary(b"bkey".to_vec()), Value::Boolean(true)),
        (s("neg"), Value::from(-3)),
        (s("big"), Value::from(u64::MAX)),
        (s("nan"), Value::F64(f64::NAN)),
        (
            s("nested"),
            Value::Array(vec![Value::Nil, Value::F32(0.5), map(&[("a", s("b"))])]),
        ),
    ]);
    let bytes = pack(&value);
    let json = protocol::to_json(&protocol::read_one(&bytes).unwrap());
    assert_eq!(
        json,
        json!({
            "bin": "café",
            "bad_utf8": "f\u{fffd}",
            "ext": null,
            "when": 1_700_000_000.5,
            "7": "int key",
            "bkey": true,
            "neg": -3,
            "big": u64::MAX,
            "nan": null,
            "nested": [null, 0.5, {"a": "b"}],
        })
    );
}

#[test]
fn event_time_decoding_normalises_and_rounds() {
    let limits = Limits {
        max_decompressed_bytes: 1 << 20,
        budget: Budget::default(),
    };
    let decode = |time: Value| {
        let bytes = message("t", time, map(&[]), None);
        match protocol::decode_message(&bytes, &limits).unwrap() {
            Decoded::Events(chunk) => chunk.batch.records[0].time,
            Decoded::Heartbeat => panic!("not a heartbeat"),
        }
    };
    assert_eq!(decode(event_time(10, 1_500_000_000)), time(11, 500_000_000));
    assert_eq!(decode(Value::F64(2.999_999_999_9)), time(3, 0));
    assert_eq!(decode(Value::from(u64::MAX)), time(u64::MAX, 0));
    let bytes = pack(&Value::Nil);
    assert!(matches!(
        protocol::decode_message(&bytes, &limits).unwrap(),
        Decoded::Heartbeat
    ));
}

#[test]
fn ack_echoes_any_chunk_encoding() {
    let long = "x".repeat(40);
    let ack = protocol::encode_ack(&ValueRef::from(long.as_str()));
    let mut expected = vec![0x81, 0xa3, b'a', b'c', b'k', 0xd9, 40];
    expected.extend(long.as_bytes());
    assert_eq!(ack, expected);
    assert_eq!(
        protocol::encode_ack(&ValueRef::from("YWJj")),
        ack_bytes("YWJj")
    );
}

#[test]
fn config_defaults_unknown_fields_and_secrets() {
    let config: ForwardConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(config.shared_key, None);
    assert_eq!(config.self_hostname, "minewatch");
    assert_eq!(config.max_message_bytes, 64 * 1024 * 1024);
    assert_eq!(config.idle_timeout_secs, 300);
    assert!(config.udp_heartbeat);
    config.validate().unwrap();

    let error = serde_json::from_value::<ForwardConfig>(json!({"sharedkey": "x"})).unwrap_err();
    assert!(error.to_string().contains("unknown field"), "{error}");

    let config: ForwardConfig =
        serde_json::from_value(json!({"shared_key": "hunter2", "idle_timeout_secs": 5})).unwrap();
    assert_eq!(config.idle_timeout_secs, 5);
    assert!(!format!("{config:?}").contains("hunter2"));

    let empty_key = ForwardConfig {
        shared_key: Some(String::new()),
        ..ForwardConfig::default()
    };
    assert!(empty_key.validate().is_err());
}

#[test]
fn sha512_hex_matches_the_standard_vector() {
    assert_eq!(
        protocol::sha512_hex(&[b"a", b"bc"]),
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
         2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
    );
}

#[test]
fn container_keys_are_named_by_their_kind_not_written_out() {
    // Maps as keys of maps as keys: written out, each level escaped the one inside it
    // again, and 40 levels of this took gigabytes (the forward_stream fuzz target).
    let mut key = map(&[("k", s("v"))]);
    for _ in 0..40 {
        key = Value::Map(vec![(key, s("x"))]);
    }
    let value = Value::Map(vec![(key, s("deep")), (Value::Array(vec![]), s("list"))]);
    let json = protocol::to_json(&protocol::read_one(&pack(&value)).unwrap());
    assert_eq!(json, json!({"a map": "deep", "an array": "list"}));
}

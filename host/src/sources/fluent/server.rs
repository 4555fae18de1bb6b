//! Sockets of the Forward server: the accept loop, one task per connection (handshake,
//! framing, handing batches to the handler, acks, idle timeout), the UDP heartbeat
//! responder and graceful shutdown.
//!
//! A connection handles one message at a time: it reads only while the message at the head
//! of its buffer is incomplete, and does not read while the handler holds a batch, so a
//! connection never buffers more than one message (plus one read) and a slow pipeline pushes
//! back on the client through TCP.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::timeout;
use tracing::{debug, error, info, warn};

use super::protocol::{self, Decoded, FrameScanner, Limits, ProtocolError};
use super::{ForwardConfig, ForwardHandler, Refusal};
use crate::serve::worker::Receiving;
use crate::sources::LiveSecret;
use crate::sources::budget::{Budget, Reservation};
use crate::tls::server::ServerTls;

/// Messages at least this large are decoded (and inflated) on a blocking thread.
const BLOCKING_DECODE_BYTES: usize = 256 * 1024;

/// How much buffer space each socket read asks for.
const READ_CHUNK: usize = 64 * 1024;

/// The least time between two warnings that the connection limit was reached.
const FULL_WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Serves the Forward protocol on `listener` until `shutdown` resolves, then stops accepting,
/// lets in-flight chunks finish (and be acked), and returns.
///
/// When [`ForwardConfig::udp_heartbeat`] is set, a UDP socket bound to the listener's
/// address answers each datagram with the single byte `0x00`; if that port cannot be bound
/// the server logs a warning and serves TCP alone. Connections idle in a read are closed at
/// shutdown; a handler call that never returns keeps `serve` from returning.
pub async fn serve(
    listener: TcpListener,
    config: ForwardConfig,
    handler: Arc<dyn ForwardHandler>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    serve_tls(listener, config, None, handler, shutdown).await
}

/// [`serve`], with every connection over TLS when `tls` is given (its certificates can
/// be replaced while serving, see [`ServerTls::reload`]). A failed handshake is logged
/// and counted by [`ServerTls::accept`] and closes that connection only.
pub async fn serve_tls(
    listener: TcpListener,
    config: ForwardConfig,
    tls: Option<Arc<ServerTls>>,
    handler: Arc<dyn ForwardHandler>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let key = Arc::new(LiveSecret::new(config.shared_key.clone()));
    serve_live(
        listener,
        config,
        tls,
        key,
        Budget::default(),
        handler,
        shutdown,
    )
    .await
}

/// [`serve_tls`], with the shared key read from `key` as each connection starts (its
/// HELO, or none when `key` holds none), so a reload can replace it while serving;
/// `config.shared_key` is not used.
pub async fn serve_live(
    listener: TcpListener,
    config: ForwardConfig,
    tls: Option<Arc<ServerTls>>,
    key: Arc<LiveSecret>,
    budget: Budget,
    handler: Arc<dyn ForwardHandler>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    config.validate()?;
    let address = listener.local_addr()?;
    let config = Arc::new(config);

    let heartbeats = if config.udp_heartbeat {
        match UdpSocket::bind(address).await {
            Ok(socket) => Some(tokio::spawn(answer_heartbeats(socket))),
            Err(error) => {
                warn!(%error, %address, "Serving Forward without UDP heartbeats because the UDP port could not be bound.");
                None
            }
        }
    } else {
        None
    };

    info!(
        %address,
        shared_key = key.get().is_some(),
        tls = tls.is_some(),
        "Serving the Fluent Forward protocol."
    );
    let (stop, stopped) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(config.max_connections));
    let mut connections = JoinSet::new();
    let mut last_full_warning: Option<Instant> = None;
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match Arc::clone(&slots).try_acquire_owned() {
                    Ok(slot) => {
                        connections.spawn(connection(
                            stream,
                            peer,
                            Arc::clone(&config),
                            tls.clone(),
                            key.get(),
                            budget.clone(),
                            Arc::clone(&handler),
                            stopped.clone(),
                            slot,
                        ));
                    }
                    Err(_) => {
                        if last_full_warning.is_none_or(|at| at.elapsed() >= FULL_WARNING_INTERVAL) {
                            last_full_warning = Some(Instant::now());
                            warn!(
                                peer = %peer,
                                max_connections = config.max_connections,
                                "Refusing Forward connections: the connection limit is reached."
                            );
                        }
                        drop(stream);
                    }
                },
                Err(error) => {
                    warn!(%error, %address, "Failed to accept a Forward connection; retrying shortly.");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
        while let Some(finished) = connections.try_join_next() {
            report_task(finished);
        }
    }

    drop(listener);
    if let Some(heartbeats) = heartbeats {
        heartbeats.abort();
    }
    // Receivers only ever wait for `true`; a send error means no connection is left.
    let _ = stop.send(true);
    let remaining = connections.len();
    if remaining > 0 {
        info!(
            connections = remaining,
            "Stopped accepting Forward connections; letting in-flight chunks finish."
        );
    }
    while let Some(finished) = connections.join_next().await {
        report_task(finished);
    }
    info!(%address, "Stopped serving the Fluent Forward protocol.");
    Ok(())
}

fn report_task(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished
        && error.is_panic()
    {
        error!(%error, "A Forward connection task panicked.");
    }
}

/// Answers every UDP datagram with one `0x00` byte, the Forward spec's heartbeat reply.
async fn answer_heartbeats(socket: UdpSocket) {
    let mut datagram = [0u8; 64];
    loop {
        match socket.recv_from(&mut datagram).await {
            Ok((_, peer)) => {
                if let Err(error) = socket.send_to(&[0], peer).await {
                    debug!(%error, peer = %peer, "Could not answer a UDP heartbeat.");
                }
            }
            Err(error) => {
                debug!(%error, "Could not receive a UDP heartbeat.");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Runs one connection (its TLS handshake first, when configured) to its end and logs
/// why it ended.
#[expect(
    clippy::too_many_arguments,
    reason = "one connection's parts, each handed on once"
)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    config: Arc<ForwardConfig>,
    tls: Option<Arc<ServerTls>>,
    shared_key: Option<String>,
    budget: Budget,
    handler: Arc<dyn ForwardHandler>,
    mut stopped: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    // Acks are small and awaited by the client: send them without Nagle's delay.
    if let Err(error) = stream.set_nodelay(true) {
        debug!(%error, peer = %peer, "Could not disable Nagle's algorithm on a Forward connection.");
    }
    debug!(peer = %peer, "Accepted a Forward connection.");
    match tls {
        None => converse(stream, peer, config, shared_key, budget, handler, stopped).await,
        Some(tls) => {
            let handshake = tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => return,
                handshake = tls.accept(stream, peer) => handshake,
            };
            if let Some(stream) = handshake {
                converse(stream, peer, config, shared_key, budget, handler, stopped).await;
            }
        }
    }
}

/// Runs the Forward protocol on an established stream and logs why it ended.
async fn converse<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    config: Arc<ForwardConfig>,
    shared_key: Option<String>,
    budget: Budget,
    handler: Arc<dyn ForwardHandler>,
    stopped: watch::Receiver<bool>,
) {
    let idle_timeout_secs = config.idle_timeout_secs;
    let mut connection = Connection {
        stream,
        peer,
        idle: Duration::from_secs(idle_timeout_secs),
        config,
        shared_key,
        handler,
        buf: BytesMut::new(),
        buffered: budget.reservation("forward"),
        budget,
        scanner: FrameScanner::default(),
        warned_signal: false,
        receiving: None,
    };
    match connection.run(stopped).await {
        Ok(()) => debug!(peer = %peer, "Closed a Forward connection."),
        Err(Close::Protocol(error @ ProtocolError::TooLarge { .. })) => {
            warn!(%error, peer = %peer, "Closing a Forward connection that sent an oversized message.");
        }
        Err(Close::Protocol(error @ ProtocolError::OverBudget(_))) => {
            warn!(%error, peer = %peer, "Closing a Forward connection without its ack: the sources' memory budget is taken; the client will send the chunk again.");
        }
        Err(Close::Protocol(error)) => {
            warn!(%error, peer = %peer, "Closing a Forward connection that sent garbage.");
        }
        Err(Close::AuthFailed {
            reason,
            client_hostname,
        }) => warn!(
            %reason,
            peer = %peer,
            client_hostname = client_hostname.as_deref().unwrap_or("?"),
            "Closing a Forward connection that failed shared-key authentication."
        ),
        Err(Close::Idle) => {
            debug!(peer = %peer, idle_timeout_secs, "Closing an idle Forward connection.");
        }
        Err(Close::Truncated { buffered }) => debug!(
            peer = %peer,
            buffered,
            "A Forward client closed its connection in the middle of a message."
        ),
        Err(Close::Io(error)) => debug!(%error, peer = %peer, "A Forward connection failed."),
        Err(Close::Internal(error)) => {
            error!(%error, peer = %peer, "Closing a Forward connection after an internal error.");
        }
    }
}

/// Why a connection ended early.
enum Close {
    /// The client sent garbage or an oversized message.
    Protocol(ProtocolError),
    /// The client failed the shared-key handshake.
    AuthFailed {
        reason: String,
        client_hostname: Option<String>,
    },
    /// Nothing was read or written for the idle timeout.
    Idle,
    /// The client closed the connection with a partial message buffered.
    Truncated { buffered: usize },
    /// The socket failed.
    Io(io::Error),
    /// A bug: the decoder panicked.
    Internal(String),
}

/// One client connection.
struct Connection<S> {
    stream: S,
    peer: SocketAddr,
    idle: Duration,
    config: Arc<ForwardConfig>,
    /// The shared key in force when the connection started, if any.
    shared_key: Option<String>,
    handler: Arc<dyn ForwardHandler>,
    /// Bytes read but not yet handled; it always starts at a message boundary.
    buf: BytesMut,
    /// Covers `buf`'s capacity in the sources' memory budget.
    buffered: Reservation,
    /// The sources' memory budget, for decoding.
    budget: Budget,
    scanner: FrameScanner,
    warned_signal: bool,
    /// Held while part of a message is buffered, until its batch is queued.
    receiving: Option<Receiving>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Handles messages until the client closes, the server stops, or something is wrong.
    async fn run(&mut self, mut stopped: watch::Receiver<bool>) -> Result<(), Close> {
        let mut nonce = None;
        if self.shared_key.is_some() {
            let fresh: [u8; 16] = rand::random();
            self.write(&protocol::encode_helo(&fresh)).await?;
            nonce = Some(fresh);
        }
        let mut stopping = false;
        loop {
            let scanned = self
                .scanner
                .scan(&self.buf, self.config.max_message_bytes)
                .map_err(Close::Protocol)?;
            if let Some(len) = scanned {
                let frame = self.buf.split_to(len).freeze();
                // A message already buffered behind this one waits for this one's verdict,
                // so it is not on its way to the pipeline: no guard for it until more is read.
                let receiving = self.receiving.take().unwrap_or_else(Receiving::start);
                match nonce.take() {
                    Some(nonce) => self.authenticate(&frame, &nonce).await?,
                    None => self.handle_message(frame, receiving).await?,
                }
                continue;
            }
            // Complete messages already buffered are handled even when stopping: without
            // acks, the client believes they were delivered.
            if stopping {
                return Ok(());
            }
            self.buf.reserve(READ_CHUNK);
            self.buffered
                .cover(self.buf.capacity())
                .map_err(|over| Close::Protocol(ProtocolError::OverBudget(over)))?;
            tokio::select! {
                biased;
                _ = stopped.wait_for(|stop| *stop) => stopping = true,
                read = timeout(self.idle, self.stream.read_buf(&mut self.buf)) => match read {
                    Err(_) => return Err(Close::Idle),
                    Ok(Err(error)) => return Err(Close::Io(error)),
                    Ok(Ok(0)) if self.buf.is_empty() => return Ok(()),
                    Ok(Ok(0)) => return Err(Close::Truncated { buffered: self.buf.len() }),
                    Ok(Ok(_)) => {
                        if self.receiving.is_none() {
                            self.receiving = Some(Receiving::start());
                        }
                    }
                },
            }
        }
    }

    /// Checks the client's PING against the HELO nonce and answers PONG.
    async fn authenticate(&mut self, frame: &[u8], nonce: &[u8]) -> Result<(), Close> {
        let shared_key = self.shared_key.as_deref().unwrap_or_default();
        let verdict = protocol::answer_ping(frame, nonce, shared_key, &self.config.self_hostname);
        self.write(&verdict.pong).await?;
        match verdict.refusal {
            None => {
                debug!(
                    peer = %self.peer,
                    client_hostname = verdict.client_hostname.as_deref().unwrap_or("?"),
                    "Authenticated a Forward client."
                );
                Ok(())
            }
            Some(reason) => {
                // Best effort: let the PONG reach the client before the connection goes.
                let _ = timeout(self.idle, self.stream.shutdown()).await;
                Err(Close::AuthFailed {
                    reason,
                    client_hostname: verdict.client_hostname,
                })
            }
        }
    }

    /// Decodes one event message, hands it to the handler and acks it when accepted.
    async fn handle_message(&mut self, frame: Bytes, receiving: Receiving) -> Result<(), Close> {
        metrics::counter!("minewatch_received_bytes_total", "source" => "forward")
            .increment(frame.len() as u64);
        let limits = Limits {
            max_decompressed_bytes: self.config.max_decompressed_bytes,
            budget: self.budget.clone(),
        };
        let decoded = if frame.len() >= BLOCKING_DECODE_BYTES {
            tokio::task::spawn_blocking(move || protocol::decode_message(&frame, &limits))
                .await
                .map_err(|error| Close::Internal(error.to_string()))?
        } else {
            protocol::decode_message(&frame, &limits)
        };
        let chunk = match decoded.map_err(Close::Protocol)? {
            Decoded::Heartbeat => return Ok(()),
            Decoded::Events(chunk) => chunk,
        };
        if let Some(signal) = chunk.foreign_signal {
            if !self.warned_signal {
                self.warned_signal = true;
                warn!(
                    peer = %self.peer,
                    tag = %chunk.batch.tag,
                    fluent_signal = signal,
                    "Dropping Fluent Bit metrics or traces: this source takes logs only."
                );
            }
            return self.send_ack(chunk.ack).await;
        }
        if let Some(reason) = chunk.first_drop {
            debug!(
                peer = %self.peer,
                tag = %chunk.batch.tag,
                dropped = chunk.batch.dropped,
                first_reason = reason,
                "Dropped Forward entries that are not usable events."
            );
        }
        if chunk.batch.records.is_empty() && chunk.batch.dropped == 0 {
            return self.send_ack(chunk.ack).await;
        }
        let tag = chunk.batch.tag.clone();
        let records = chunk.batch.records.len();
        // The events' share of the memory budget is given back once they are handled.
        let held = chunk.held;
        let handled = self.handler.handle(chunk.batch, receiving).await;
        drop(held);
        match handled {
            Ok(()) => self.send_ack(chunk.ack).await,
            Err(refusal) => {
                match (&refusal, chunk.ack.is_some()) {
                    (_, false) => warn!(
                        %refusal,
                        peer = %self.peer,
                        tag,
                        records,
                        "Dropping a Forward chunk the pipeline refused; the client asked for no ack, so it will not resend it."
                    ),
                    (Refusal::Busy, true) => debug!(
                        peer = %self.peer,
                        tag,
                        records,
                        "Not acknowledging a Forward chunk while the pipeline is busy; the client will resend it."
                    ),
                    (Refusal::Failed(_), true) => warn!(
                        %refusal,
                        peer = %self.peer,
                        tag,
                        records,
                        "Not acknowledging a Forward chunk the pipeline failed to take; the client will resend it."
                    ),
                }
                Ok(())
            }
        }
    }

    async fn send_ack(&mut self, ack: Option<Vec<u8>>) -> Result<(), Close> {
        match ack {
            Some(ack) => self.write(&ack).await,
            None => Ok(()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), Close> {
        match timeout(self.idle, self.stream.write_all(bytes)).await {
            Err(_) => Err(Close::Idle),
            Ok(Err(error)) => Err(Close::Io(error)),
            Ok(Ok(())) => Ok(()),
        }
    }
}

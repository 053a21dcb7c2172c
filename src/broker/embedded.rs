//! [`EmbeddedBroker`]: a thread with a single-threaded tokio runtime that
//! accepts MQTT connections and hands their packets to the [`Router`].
//!
//! Each connection is two tasks: the reader (decodes packets, enforces the
//! keep-alive, calls the router) and the writer (drains the connection's
//! bounded packet queue into the socket, a batch at a time). Whoever wants
//! the connection closed (a takeover, a full queue, a failed write) wakes
//! its `close` notification; the reader then ends, tells the router, and
//! gives the writer a moment to flush.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet};
use rumqttc::mqttbytes::{check, Error as CodecError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Notify};

use super::router::{valid_topic, Link, Message, Router};

/// Largest packet accepted from a client (remaining length).
pub const MAX_PACKET: usize = 1 << 20;
/// Packets waiting to be written to one connection before it counts as not
/// keeping up and is closed.
pub const OUTGOING_QUEUE: usize = 16_384;
/// A connection must send CONNECT within this.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After a connection ends, what is still queued for it may take this long
/// to be written.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);
/// Writes are batched up to about this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// An MQTT 3.1.1 broker running inside this process (see the module docs of
/// [`crate::broker`] for what it supports). Stops on drop: the listener
/// closes, every client connection is closed, state is gone.
pub struct EmbeddedBroker {
    addr: SocketAddr,
    router: Arc<Mutex<Router>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl fmt::Debug for EmbeddedBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedBroker").field("addr", &self.addr).finish()
    }
}

impl EmbeddedBroker {
    /// Starts on 127.0.0.1 at a port the system picks; [`url`](Self::url)
    /// tells which. Returns once the port is bound: clients may connect at
    /// once.
    pub fn start() -> io::Result<EmbeddedBroker> {
        EmbeddedBroker::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Starts on `addr` (port 0: any free port). There is no
    /// authentication: bind loopback addresses only.
    pub fn start_on(addr: SocketAddr) -> io::Result<EmbeddedBroker> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let router = Arc::new(Mutex::new(Router::new()));
        let (stop, stopped) = oneshot::channel();
        let shared = router.clone();
        // The runtime is built, run and dropped on the broker's own thread,
        // so that start() and drop work from inside an async context too.
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new().name("mqtt-broker".into()).spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                match TcpListener::from_std(listener) {
                    Ok(listener) => {
                        let _ = ready_tx.send(Ok(()));
                        accept_loop(listener, shared, stopped).await
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
            // Dropping the runtime here drops every connection task,
            // which closes their sockets.
        })?;
        match ready.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(io::Error::other("the embedded broker's thread ended on start")),
        }
        tracing::debug!(%addr, "embedded MQTT broker started");
        Ok(EmbeddedBroker {
            addr,
            router,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://{}", self.addr)
    }

    /// Clients connected right now.
    pub fn connected_clients(&self) -> usize {
        lock(&self.router).connected_clients()
    }

    /// Retained messages stored right now.
    pub fn retained_count(&self) -> usize {
        lock(&self.router).retained_count()
    }

    /// Stops the broker and waits for its thread (the same as dropping it).
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
            tracing::debug!(addr = %self.addr, "embedded MQTT broker stopped");
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// The router's lock; a panic while it was held (a bug) does not take the
/// rest of the broker down with it.
fn lock(router: &Mutex<Router>) -> MutexGuard<'_, Router> {
    router.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn accept_loop(listener: TcpListener, router: Arc<Mutex<Router>>, mut stopped: oneshot::Receiver<()>) {
    let mut next_id = 0u64;
    loop {
        tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    next_id += 1;
                    tokio::spawn(connection(stream, router.clone(), next_id));
                }
                Err(e) => {
                    // Out of file descriptors, say: wait a little rather than spin.
                    tracing::warn!("embedded broker: accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
}

/// Why a connection ended.
enum End {
    /// DISCONNECT: the only clean end (no Last Will).
    Disconnect,
    Eof,
    Io(io::Error),
    Codec(CodecError),
    KeepAliveExpired,
    Closed,
    ProtocolError(&'static str),
    UnsupportedLevel(u8),
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::Disconnect => f.write_str("DISCONNECT"),
            End::Eof => f.write_str("closed by the client without DISCONNECT"),
            End::Io(e) => write!(f, "socket error: {e}"),
            End::Codec(e) => write!(f, "malformed packet: {e}"),
            End::KeepAliveExpired => f.write_str("nothing received for 1.5 keep-alive periods"),
            End::Closed => f.write_str("closed by the broker (taken over, or not keeping up)"),
            End::ProtocolError(what) => write!(f, "protocol error: {what}"),
            End::UnsupportedLevel(level) => write!(f, "protocol level {level}, not 4 (MQTT 3.1.1)"),
        }
    }
}

async fn connection(stream: TcpStream, router: Arc<Mutex<Router>>, id: u64) {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let (tx, rx) = mpsc::channel(OUTGOING_QUEUE);
    let close = Arc::new(Notify::new());
    let link = Link {
        id,
        tx,
        close: close.clone(),
    };
    let mut writer = tokio::spawn(write_loop(wr, rx, close.clone()));
    let mut buf = BytesMut::with_capacity(4096);

    let connect = match tokio::time::timeout(CONNECT_TIMEOUT, read_connect(&mut rd, &mut buf)).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(End::UnsupportedLevel(level))) => {
            // MQTT 3.1.1, 3.1.2-2: CONNACK 0x01, then close. MQTT 5 and 3.1
            // clients say so plainly to their user.
            tracing::debug!(
                link = id,
                "embedded broker: CONNECT with protocol level {level}; refused"
            );
            link.send(Packet::ConnAck(ConnAck::new(
                ConnectReturnCode::RefusedProtocolVersion,
                false,
            )));
            None
        }
        Ok(Err(end)) => {
            tracing::debug!(link = id, "embedded broker: no valid CONNECT: {end}");
            None
        }
        Err(_) => {
            tracing::debug!(
                link = id,
                "embedded broker: no CONNECT within {CONNECT_TIMEOUT:?}; closing"
            );
            None
        }
    };
    if let Some(connect) = connect {
        serve(connect, &router, &link, &mut rd, &mut buf).await;
    }
    drop(link);
    // The writer ends once every sender is gone (ours above, the router's
    // when the session let go of the link) and its queue is written.
    if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer).await.is_err() {
        writer.abort();
    }
}

/// After a CONNECT: accept it (or refuse it), then serve packets until the
/// connection ends; then the router learns of the end.
async fn serve(connect: Connect, router: &Mutex<Router>, link: &Link, rd: &mut OwnedReadHalf, buf: &mut BytesMut) {
    let client_id = if !connect.client_id.is_empty() {
        connect.client_id.clone()
    } else if connect.clean_session {
        format!("embedded-anonymous-{}", link.id)
    } else {
        // MQTT 3.1.1, 3.1.3-8: an empty id needs a clean session.
        link.send(Packet::ConnAck(ConnAck::new(ConnectReturnCode::BadClientId, false)));
        return;
    };
    let will = match connect.last_will {
        Some(w) if !valid_topic(&w.topic) => {
            tracing::debug!(client_id, "embedded broker: a Last Will on an invalid topic; closing");
            return;
        }
        Some(w) => Some(Message {
            topic: w.topic,
            payload: w.message,
            qos: w.qos,
            retain: w.retain,
        }),
        None => None,
    };
    let session_present = lock(router).connect(&client_id, connect.clean_session, link.clone(), will);
    tracing::debug!(
        client_id,
        clean_session = connect.clean_session,
        session_present,
        keep_alive = connect.keep_alive,
        "embedded broker: client connected"
    );
    // MQTT 3.1.1, 3.1.2-24: nothing from the client for one and a half
    // keep-alive periods ends the connection.
    let limit = (connect.keep_alive > 0).then(|| Duration::from_millis(u64::from(connect.keep_alive) * 1500));

    let end = loop {
        let read = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, read_packet(rd, buf))
                    .await
                    .unwrap_or(Err(End::KeepAliveExpired)),
                None => read_packet(rd, buf).await,
            }
        };
        let packet = tokio::select! {
            biased;
            _ = link.close.notified() => break End::Closed,
            packet = read => packet,
        };
        let packet = match packet {
            Ok(p) => p,
            Err(end) => break end,
        };
        let mut r = lock(router);
        if !r.is_current(&client_id, link.id) {
            break End::Closed;
        }
        match packet {
            Packet::Publish(p) if !valid_topic(&p.topic) => break End::ProtocolError("PUBLISH to an invalid topic"),
            Packet::Publish(p) => r.client_publish(&client_id, link, &p),
            Packet::PubAck(ack) => r.puback(&client_id, ack.pkid),
            Packet::PubRel(rel) => r.client_pubrel(&client_id, link, rel.pkid),
            // The broker never sends QoS 2, so it expects no PUBREC or PUBCOMP.
            Packet::PubRec(_) | Packet::PubComp(_) => {}
            Packet::Subscribe(s) => r.subscribe(&client_id, link, &s),
            Packet::Unsubscribe(u) => r.unsubscribe(&client_id, link, &u),
            Packet::PingReq => link.send(Packet::PingResp),
            Packet::Disconnect => {
                r.forget_will(&client_id, link.id);
                break End::Disconnect;
            }
            Packet::Connect(_) => break End::ProtocolError("a second CONNECT"),
            Packet::ConnAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) | Packet::PingResp => {
                break End::ProtocolError("a packet only a server sends")
            }
        }
    };
    tracing::debug!(client_id, "embedded broker: connection ended: {end}");
    lock(router).disconnected(&client_id, link.id);
}

/// Reads until `buf` starts with a whole packet. Cancel-safe: bytes read
/// stay in `buf`.
async fn read_frame(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<(), End> {
    loop {
        match check(buf.iter(), MAX_PACKET) {
            Ok(_) => return Ok(()),
            Err(CodecError::InsufficientBytes(_)) => {}
            Err(e) => return Err(End::Codec(e)),
        }
        match rd.read_buf(buf).await {
            Ok(0) => return Err(End::Eof),
            Ok(_) => {}
            Err(e) => return Err(End::Io(e)),
        }
    }
}

/// The next packet. Cancel-safe.
async fn read_packet(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<Packet, End> {
    read_frame(rd, buf).await?;
    Packet::read(buf, MAX_PACKET).map_err(End::Codec)
}

/// The first packet, which must be an MQTT 3.1.1 CONNECT. The protocol
/// level is looked at before decoding: rumqttc's v4 decoder would misread
/// an MQTT 5 CONNECT rather than say what it is.
async fn read_connect(rd: &mut OwnedReadHalf, buf: &mut BytesMut) -> Result<Connect, End> {
    read_frame(rd, buf).await?;
    match connect_level(buf) {
        Some(4) => {}
        Some(level) => return Err(End::UnsupportedLevel(level)),
        None => return Err(End::ProtocolError("the first packet is not CONNECT")),
    }
    match Packet::read(buf, MAX_PACKET).map_err(End::Codec)? {
        Packet::Connect(c) => Ok(c),
        _ => Err(End::ProtocolError("the first packet is not CONNECT")),
    }
}

/// The protocol level of the CONNECT at the start of `frame` (4: MQTT
/// 3.1.1, 3: 3.1, 5: 5.0); None when it is no CONNECT.
fn connect_level(frame: &[u8]) -> Option<u8> {
    if frame.first()? >> 4 != 1 {
        return None;
    }
    // The remaining length: bytes with the high bit set, then one without.
    let mut i = 1;
    while frame.get(i)? & 0x80 != 0 {
        i += 1;
    }
    let name_at = i + 1;
    let name_len = usize::from(u16::from_be_bytes([*frame.get(name_at)?, *frame.get(name_at + 1)?]));
    frame.get(name_at + 2 + name_len).copied()
}

async fn write_loop(mut wr: OwnedWriteHalf, mut rx: mpsc::Receiver<Packet>, close: Arc<Notify>) {
    let mut buf = BytesMut::with_capacity(4096);
    while let Some(first) = rx.recv().await {
        buf.clear();
        let mut next = Some(first);
        while let Some(packet) = next.take() {
            if let Err(e) = packet.write(&mut buf, usize::MAX) {
                tracing::warn!("embedded broker: cannot encode {packet:?}: {e}");
                close.notify_one();
                return;
            }
            if buf.len() < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if wr.write_all(&buf).await.is_err() {
            close.notify_one();
            return;
        }
    }
    let _ = wr.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::Protocol;

    fn connect_frame(protocol: Protocol, client_id: &str) -> BytesMut {
        let mut c = Connect::new(client_id);
        c.protocol = protocol;
        let mut buf = BytesMut::new();
        Packet::Connect(c).write(&mut buf, usize::MAX).unwrap();
        buf
    }

    #[test]
    fn the_protocol_level_is_read_from_a_connect_frame_whatever_its_length() {
        assert_eq!(connect_level(&connect_frame(Protocol::V4, "c")), Some(4));
        assert_eq!(connect_level(&connect_frame(Protocol::V5, "c")), Some(5));
        // A remaining length of two bytes.
        assert_eq!(connect_level(&connect_frame(Protocol::V4, &"x".repeat(300))), Some(4));
        // MQTT 3.1: protocol name "MQIsdp", level 3.
        let v31 = [
            0x10, 0x0c, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0x00, 0x0a,
        ];
        assert_eq!(connect_level(&v31), Some(3));
        let mut pingreq = BytesMut::new();
        Packet::PingReq.write(&mut pingreq, usize::MAX).unwrap();
        assert_eq!(connect_level(&pingreq), None);
        assert_eq!(connect_level(&[]), None);
    }
}

//! Does an MQTT broker answer at a URL? A CONNECT over a plain blocking
//! socket and a CONNACK back, all within one deadline: no runtime needed,
//! nothing left running after it returns.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{Connect, ConnectReturnCode, Packet};
use rumqttc::mqttbytes::Error as CodecError;

use crate::config::BrokerUrl;

/// Connects to `url` (`mqtt://host[:port]`), sends an MQTT 3.1.1 CONNECT
/// (clean session, a client id of its own) and waits for the CONNACK, all
/// within `timeout`. `Ok` when the broker accepts the connection (then a
/// DISCONNECT closes it cleanly); otherwise what went wrong, in words:
/// nothing listening, no answer in time, not MQTT, or refused (with the
/// broker's return code). `mqtts://` URLs are not probed (an error).
///
/// Name resolution happens before the deadline starts: give an address,
/// or `localhost`, for a strictly bounded probe.
pub fn probe(url: &str, timeout: Duration) -> Result<(), String> {
    let url = BrokerUrl::parse(url)?;
    if url.tls {
        return Err(format!("{url}: probing a TLS listener is not supported"));
    }
    let addrs: Vec<_> = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve the host: {e}"))?
        .collect();
    let deadline = Instant::now() + timeout;
    let left = |what: &str| {
        let now = Instant::now();
        if now >= deadline {
            Err(format!("{url}: no answer within {timeout:?} ({what})"))
        } else {
            Ok(deadline - now)
        }
    };

    let mut stream = None;
    let mut last_error = format!("{url}: the host has no address");
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, left("connecting")?) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last_error = format!("{url}: cannot connect to {addr}: {e}"),
        }
    }
    let mut stream = stream.ok_or(last_error)?;
    let _ = stream.set_nodelay(true);

    let mut connect = Connect::new(format!("flatback-probe-{}", std::process::id()));
    connect.keep_alive = 10;
    connect.clean_session = true;
    let mut out = BytesMut::new();
    Packet::Connect(connect)
        .write(&mut out, usize::MAX)
        .map_err(|e| format!("encoding CONNECT: {e}"))?;
    stream
        .set_write_timeout(Some(left("sending CONNECT")?))
        .and_then(|()| stream.write_all(&out))
        .map_err(|e| io_error(&url, "sending CONNECT", timeout, e))?;

    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 256];
    let ack = loop {
        match Packet::read(&mut buf, 1024) {
            Ok(Packet::ConnAck(ack)) => break ack,
            Ok(other) => return Err(format!("{url}: answered {other:?} to CONNECT, not CONNACK")),
            Err(CodecError::InsufficientBytes(_)) => {}
            Err(e) => return Err(format!("{url}: not an MQTT answer: {e}")),
        }
        stream
            .set_read_timeout(Some(left("waiting for CONNACK")?))
            .map_err(|e| io_error(&url, "waiting for CONNACK", timeout, e))?;
        match stream.read(&mut chunk) {
            Ok(0) => return Err(format!("{url}: closed the connection without a CONNACK")),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(&url, "waiting for CONNACK", timeout, e)),
        }
    };
    if ack.code != ConnectReturnCode::Success {
        return Err(format!("{url}: the broker refused the connection ({:?})", ack.code));
    }
    let mut bye = BytesMut::new();
    if Packet::Disconnect.write(&mut bye, usize::MAX).is_ok() {
        let _ = stream.write_all(&bye);
    }
    Ok(())
}

fn io_error(url: &BrokerUrl, what: &str, timeout: Duration, e: std::io::Error) -> String {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => format!("{url}: no answer within {timeout:?} ({what})"),
        _ => format!("{url}: {what}: {e}"),
    }
}

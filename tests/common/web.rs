//! Web helpers for the tests and the web bench: a small HTTP/1.1 client on
//! loopback (requests, server-sent event streams), and a W3C WebDriver
//! client driving Debian's headless Chromium through its chromedriver.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A response: status, headers (lower-case names), body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// One request on a connection of its own (`Connection: close`); `headers`
/// as `("Name", "value")`.
pub fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    send(&mut s, addr, method, path, headers, body).unwrap();
    let raw = read_response(&mut s);
    parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: no HTTP response in {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

fn send(
    s: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (n, v) in headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)
}

/// A connection to `addr` (IPv4) from the local address `from`, so that
/// the server sees another client: 127.0.0.2, say, beside 127.0.0.1. Gives
/// up after `timeout` (connecting and each read or write after).
pub fn connect_from(from: Ipv4Addr, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let SocketAddr::V4(to) = addr else {
        panic!("connect_from: {addr} is not IPv4")
    };
    let sin = |ip: Ipv4Addr, port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(ip).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, owned by the TcpStream at once (closed on
    // every error path by its drop); the addresses outlive the calls.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let stream = TcpStream::from_raw_fd(fd);
        // Linux bounds a blocking connect by the send timeout.
        stream.set_write_timeout(Some(timeout))?;
        stream.set_read_timeout(Some(timeout))?;
        let local = sin(from, 0);
        if libc::bind(stream.as_raw_fd(), (&raw const local).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let remote = sin(*to.ip(), to.port());
        if libc::connect(stream.as_raw_fd(), (&raw const remote).cast(), len) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stream)
    }
}

/// [`request`] from the local address `from` ([`connect_from`]); an error
/// instead of a panic when the server does not answer within `timeout`.
pub fn request_from(
    from: Ipv4Addr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> std::io::Result<Response> {
    request_from_with(from, addr, method, path, headers, b"", timeout)
}

/// [`request_from`] with a body.
pub fn request_from_with(
    from: Ipv4Addr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout: Duration,
) -> std::io::Result<Response> {
    let mut s = connect_from(from, addr, timeout)?;
    send(&mut s, addr, method, path, headers, body)?;
    let raw = read_response(&mut s);
    parse_response(&raw).ok_or_else(|| {
        std::io::Error::other(format!(
            "{method} {path} from {from}: no HTTP response in {:?}",
            String::from_utf8_lossy(&raw)
        ))
    })
}

/// The status and headers of a response, read up to the end of its head
/// and no further (a stream's body never ends).
pub fn response_head(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Response {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    send(&mut s, addr, method, path, headers, b"").unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let mut r = parse_response(&raw).unwrap_or_else(|| {
        panic!(
            "{method} {path}: no response head in {:?}",
            String::from_utf8_lossy(&raw)
        )
    });
    r.body.clear();
    r
}

/// A whole response: its head, then the body by its length, or its chunks,
/// or until the peer closes (a server may keep the connection open).
fn read_response(s: &mut TcpStream) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let chunked = head
                .lines()
                .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
            let body = &raw[end + 4..];
            let done = match length {
                Some(n) => body.len() >= n,
                None if chunked => body.windows(5).any(|w| w == b"0\r\n\r\n"),
                None => false,
            };
            if done {
                return raw;
            }
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return raw,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
}

pub fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, &[], b"")
}

fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Some(Response { status, headers, body })
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap_or("0").trim(), 16).unwrap_or(0);
        if size == 0 || b.len() < eol + 2 + size {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
        b = &b[(eol + 4 + size).min(b.len())..];
    }
    out
}

/// A server-sent events stream, read line by line.
pub struct EventStream {
    reader: BufReader<TcpStream>,
    chunked: bool,
    pending: Vec<u8>,
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub event: String,
    pub data: String,
}

impl EventStream {
    pub fn open(addr: SocketAddr, path: &str) -> EventStream {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        s.set_nodelay(true).unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
            .unwrap();
        let mut reader = BufReader::new(s);
        let mut chunked = false;
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "{path}: {line}");
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
            let l = line.to_ascii_lowercase();
            if l.starts_with("transfer-encoding") && l.contains("chunked") {
                chunked = true;
            }
        }
        EventStream {
            reader,
            chunked,
            pending: Vec::new(),
        }
    }

    /// The next event, waiting at most `timeout` (`None` then).
    pub fn next(&mut self, timeout: Duration) -> Option<Sse> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(end) = self.pending.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.pending.drain(..end + 2).collect();
                let text = String::from_utf8_lossy(&block);
                let mut ev = Sse {
                    event: "message".into(),
                    data: String::new(),
                };
                let mut any = false;
                for l in text.lines() {
                    if let Some(e) = l.strip_prefix("event: ") {
                        ev.event = e.to_string();
                        any = true;
                    } else if let Some(d) = l.strip_prefix("data: ") {
                        ev.data.push_str(d);
                        any = true;
                    }
                }
                if any {
                    return Some(ev);
                }
                continue;
            }
            let now = Instant::now();
            if now >= until {
                return None;
            }
            self.reader.get_ref().set_read_timeout(Some(until - now)).unwrap();
            if self.chunked {
                let mut size = String::new();
                if self.reader.read_line(&mut size).ok()? == 0 {
                    return None;
                }
                let n = usize::from_str_radix(size.trim(), 16).ok()?;
                let mut buf = vec![0; n + 2];
                self.reader.read_exact(&mut buf).ok()?;
                buf.truncate(n);
                self.pending.extend_from_slice(&buf);
            } else {
                let mut buf = [0u8; 4096];
                let n = self.reader.read(&mut buf).ok()?;
                if n == 0 {
                    return None;
                }
                self.pending.extend_from_slice(&buf[..n]);
            }
        }
    }
}

/// Milliseconds since the epoch, the clock the pages stamp with.
pub fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Fails with a clear message when Chromium or its driver is missing.
pub fn require_chromium() {
    assert!(
        Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(),
        "these tests need Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): run tests/setup.sh"
    );
}

/// chromedriver on a free loopback port, and one headless Chromium session.
pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

fn driver_call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let text = body.map(|b| b.to_string()).unwrap_or_default();
    let headers: &[(&str, &str)] = if body.is_some() {
        &[("Content-Type", "application/json")]
    } else {
        &[]
    };
    let r = request(addr, method, path, headers, text.as_bytes());
    let v = r.json();
    assert!(r.status == 200, "WebDriver {method} {path}: {} {}", r.status, r.text());
    v["value"].clone()
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` x `height`.
    pub fn start(width: u32, height: u32) -> Browser {
        require_chromium();
        let port = super::mosquitto::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let until = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "chromedriver did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio",
                    format!("--user-data-dir={}", profile.path().display()),
                    format!("--window-size={width},{height}"),
                ]
            }
        }}});
        let v = driver_call(port, "POST", "/session", Some(&caps));
        let session = v["sessionId"].as_str().expect("a session id").to_string();
        let b = Browser {
            driver,
            port,
            session,
            _profile: profile,
        };
        b.call("POST", "/window/rect", Some(&json!({"width": width, "height": height})));
        b
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        driver_call(self.port, method, &format!("/session/{}{path}", self.session), body)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(&json!({ "url": url })));
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub fn eval(&self, script: &str, args: &[Value]) -> Value {
        self.call("POST", "/execute/sync", Some(&json!({"script": script, "args": args})))
    }

    /// Waits until `script` returns something other than null or false;
    /// returns it. Polled every 20 ms until `timeout`.
    pub fn wait(&self, what: &str, timeout: Duration, script: &str, args: &[Value]) -> Value {
        let until = Instant::now() + timeout;
        loop {
            let v = self.eval(script, args);
            if !v.is_null() && v != Value::Bool(false) {
                return v;
            }
            assert!(Instant::now() < until, "timed out after {timeout:?} waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Vec<u8> {
        use base64::Engine;
        let v = self.call("GET", "/screenshot", None);
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("base64"))
            .expect("a PNG")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let addr: SocketAddr = ([127, 0, 0, 1], self.port).into();
        let _ = std::panic::catch_unwind(|| request(addr, "DELETE", &format!("/session/{}", self.session), &[], b""));
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

//! The web view against one client that tries to lock everyone else out
//! (issue 22): a cap on connections per client address, wrong tokens
//! rate-limited per address, and the security headers on every route.
//! `flatback run` with a simulated mat and a real Mosquitto on loopback;
//! the other client connects from 127.0.0.2.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::mosquitto::{free_port, Broker};
use common::mqtt::{write_config, Daemon, Subscriber};
use common::web;

const T: Duration = Duration::from_secs(40);
const TOKEN: &str = "coach-token-0123456789";
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const MAT: &str = "[[mats]]\nid = \"m\"\nsource = \"sim\"\nkind = \"clean_set\"\n";

/// A gateway `gym` with one simulated mat, its web view on a free loopback
/// port with the token in a file; returns the config and the web address.
fn gateway(dir: &Path, broker: &Broker) -> (PathBuf, SocketAddr) {
    let port = free_port();
    let path = dir.join("web-token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    let extra = format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n\n{MAT}",
        path.display()
    );
    (
        write_config(dir, &broker.url(), "gym", &extra),
        ([127, 0, 0, 1], port).into(),
    )
}

fn start(dir: &Path, broker: &Broker) -> (Daemon, SocketAddr) {
    let (config, addr) = gateway(dir, broker);
    let mut daemon = Daemon::run(&config, &["--speed", "10"], &[]);
    daemon.wait_listening(addr, T);
    (daemon, addr)
}

/// One sample of `/metrics` (a family without labels, or with them as
/// printed), read from 127.0.0.2.
fn metric(addr: SocketAddr, name: &str) -> f64 {
    let r = web::request_from(OTHER, addr, "GET", "/metrics", &[], Duration::from_secs(10)).expect("/metrics");
    let text = r.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// The soft limit on open files raised (bounded by the hard one) so that
/// the test's own sockets fit.
fn raise_open_files(want: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            lim.rlim_cur = want.min(lim.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
    assert!(
        lim.rlim_cur >= 400,
        "the open-file limit {} is too low for this test",
        lim.rlim_cur
    );
}

/// 300 connections from 127.0.0.1 that each send half a request head and
/// then a header line every 2 s (reconnecting when closed, as a stranger
/// would); meanwhile 127.0.0.2 gets at least 99 of 100 `GET /health`
/// answered 200, and the mat's states keep reaching the broker.
#[test]
fn one_client_with_300_trickling_connections_locks_nobody_out() {
    raise_open_files(4096);
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let sub = Subscriber::connect(broker.port(), "limits-test", false, &["flatback/gym/m/state"]);
    let (mut daemon, addr) = start(dir.path(), &broker);
    sub.wait_msg("flatback/gym/m/state", 0, T, |_| true);

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attacker = {
        let stop = stop.clone();
        std::thread::spawn(move || trickle(addr, 300, &stop))
    };
    // The attack is in place once the gateway holds the cap's worth of
    // 127.0.0.1's connections and has refused the rest once.
    let until = Instant::now() + T;
    while !(metric(addr, "flatback_web_refused_per_client_total") >= 268.0
        && metric(addr, "flatback_web_connections") >= 32.0)
    {
        assert!(Instant::now() < until, "the attack never took hold");
        std::thread::sleep(Duration::from_millis(50));
    }
    let states_before = sub.on("flatback/gym/m/state").len();
    let frames_before = metric(addr, "flatback_frames_total{mat=\"m\"}");

    // 100 requests over 15 s, so that they span several trickle rounds and
    // the header deadline's cut-offs (10 s) with their reconnections.
    let mut ok = 0;
    let mut failures = Vec::new();
    for k in 0..100 {
        let t = Instant::now();
        match web::request_from(OTHER, addr, "GET", "/health", &[], Duration::from_secs(5)) {
            Ok(r) if r.status == 200 => ok += 1,
            Ok(r) => failures.push(format!("#{k}: {} {}", r.status, r.text())),
            Err(e) => failures.push(format!("#{k}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(150).saturating_sub(t.elapsed()));
    }
    let held = metric(addr, "flatback_web_connections");
    let refused_per_client = metric(addr, "flatback_web_refused_per_client_total");
    let refused_globally = metric(addr, "flatback_web_refused_total");
    let frames_after = metric(addr, "flatback_frames_total{mat=\"m\"}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let rounds = attacker.join().unwrap();
    eprintln!(
        "{ok} of 100 /health answered 200 from {OTHER}; {rounds} trickle rounds; \
         {refused_per_client} connections refused per client, {refused_globally} globally; {held} open"
    );
    assert!(ok >= 99, "{ok} of 100 answered 200: {failures:?}");
    assert!(rounds >= 5, "the attacker trickled {rounds} rounds only");
    assert!(held >= 32.0, "the attacker held {held} connections: no attack");
    assert!(
        held <= 40.0,
        "{held} connections open: more than the cap from one address"
    );
    assert_eq!(refused_globally, 0.0, "the global cap was never reached");
    // The gateway's own work went on meanwhile.
    assert!(frames_after > frames_before, "frames {frames_before} -> {frames_after}");
    let states_after = sub.on("flatback/gym/m/state").len();
    assert!(
        states_after > states_before,
        "no state reached the broker during the attack ({states_before} before)"
    );
    daemon.term();
    assert!(daemon.wait_exit(T).success(), "{}", daemon.stderr());
}

/// Holds `n` connections from 127.0.0.1, each with half a request head and
/// a header line every 2 s, reconnecting those the server closed; until
/// `stop`. Returns the rounds made.
fn trickle(addr: SocketAddr, n: usize, stop: &std::sync::atomic::AtomicBool) -> u32 {
    let mut conns: Vec<Option<TcpStream>> = (0..n).map(|_| None).collect();
    let mut rounds = 0;
    // Bounded: the test stops it after its 100 requests (about 20 s).
    for _ in 0..120 {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        let round = Instant::now();
        for (k, slot) in conns.iter_mut().enumerate() {
            // Closed by the server (refused, or cut off by its deadline)?
            let open = slot.as_mut().is_some_and(|s| {
                let mut b = [0u8; 256];
                matches!(s.read(&mut b), Err(e) if e.kind() == ErrorKind::WouldBlock)
                    && s.write_all(format!("X-Trickle-{rounds}: {k}\r\n").as_bytes()).is_ok()
            });
            if !open {
                *slot = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    .ok()
                    .and_then(|mut s| {
                        (s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").is_ok() && s.set_nonblocking(true).is_ok())
                            .then_some(s)
                    });
            }
        }
        rounds += 1;
        // The trickle's pace, not a wait for anything.
        while round.elapsed() < Duration::from_secs(2) && !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    rounds
}

/// 11 wrong tokens within a minute from 127.0.0.1: 401 for the first 10,
/// 429 (with Retry-After) from the 11th, even with the right token; the
/// right token from 127.0.0.2 still works.
#[test]
fn wrong_tokens_are_limited_per_address() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, addr) = start(dir.path(), &broker);
    let command = "/api/mat/m/command/new_set";
    let wrong = "Bearer wrong-token-0123456789";
    for k in 1..=10 {
        let r = web::request(addr, "POST", command, &[("Authorization", wrong)], b"");
        assert_eq!(r.status, 401, "wrong token #{k}: {}", r.text());
    }
    let r = web::request(addr, "POST", command, &[("Authorization", wrong)], b"");
    assert_eq!(r.status, 429, "the 11th wrong token: {}", r.text());
    let retry: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_security_headers(&r, "429");
    let right = format!("Bearer {TOKEN}");
    let r = web::request(addr, "POST", command, &[("Authorization", &right)], b"");
    assert_eq!(r.status, 429, "the right token from the guessing address: {}", r.text());
    // Reading is not limited.
    assert_eq!(web::get(addr, "/api/info").status, 200);

    let r = web::request_from(OTHER, addr, "POST", command, &[("Authorization", &right)], T).unwrap();
    assert_eq!(r.status, 200, "the right token from {OTHER}: {}", r.text());
    assert_eq!(metric(addr, "flatback_web_rate_limited_total"), 2.0);
    daemon.term();
    assert!(daemon.wait_exit(T).success(), "{}", daemon.stderr());
    assert!(!daemon.stderr().contains(TOKEN), "the token is never logged");
}

fn assert_security_headers(r: &web::Response, what: &str) {
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
        "{what}: Content-Security-Policy {csp:?}"
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
}

/// Every route the server knows, with the status it answers here: pages,
/// assets, streams, JSON, `/metrics`, `/health`, commands with and without
/// the token, and the errors (404, 405, 401).
const ROUTES: &[(&str, &str, bool, u16)] = &[
    // (method, path, with the token, status)
    ("GET", "/", false, 200),
    ("HEAD", "/", false, 200),
    ("GET", "/mat/gym/m", false, 200),
    ("GET", "/grid/m", false, 200),
    ("GET", "/grid/nope", false, 404),
    ("GET", "/pictures/m", false, 200),
    ("GET", "/app.css", false, 200),
    ("GET", "/app.js", false, 200),
    ("GET", "/favicon.ico", false, 204),
    ("GET", "/api/info", false, 200),
    ("GET", "/api/floor", false, 200),
    ("GET", "/api/mat/gym/m", false, 200),
    ("GET", "/api/pictures/m", false, 200),
    ("GET", "/api/pictures/m/999.svg", false, 404),
    ("GET", "/metrics", false, 200),
    ("GET", "/health", false, 200),
    ("GET", "/no/such/page", false, 404),
    ("DELETE", "/", false, 405),
    ("POST", "/api/mat/m/command/new_set", false, 401),
    ("POST", "/api/mat/m/command/new_set", true, 200),
    ("POST", "/api/mat/m/command/nope", true, 404),
    ("POST", "/api/mat/zz/command/new_set", true, 404),
    ("POST", "/no/such/command", true, 404),
];

/// Walks [`ROUTES`]: each answers as expected and carries the three
/// security headers; a stream's head is read and the stream left. And
/// every route pattern of `handle` in src/web/server.rs is walked, so a
/// new page without a place here fails this test.
#[test]
fn every_route_carries_the_security_headers() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, addr) = start(dir.path(), &broker);
    // /health is 200 once the mat delivers frames.
    let until = Instant::now() + T;
    while web::get(addr, "/health").status != 200 {
        assert!(Instant::now() < until, "/health never 200");
        std::thread::sleep(Duration::from_millis(50));
    }
    let right = format!("Bearer {TOKEN}");
    for &(method, path, token, status) in ROUTES {
        let headers: &[(&str, &str)] = if token { &[("Authorization", &right)] } else { &[] };
        let r = web::response_head(addr, method, path, headers);
        let what = format!("{method} {path}");
        assert_eq!(r.status, status, "{what}");
        assert_security_headers(&r, &what);
    }
    // hyper's own answer to a request head that is too big has no body
    // (nothing to sniff or frame), and the connection closes.
    let big = "x".repeat(64 * 1024);
    let r = web::request(addr, "GET", "/", &[("X-Big", &big)], b"");
    assert_eq!(r.status, 431);
    assert!(r.body.is_empty(), "{}", r.text());

    for pattern in handle_patterns() {
        assert!(
            ROUTES.iter().any(|(_, path, _, _)| matches_pattern(path, &pattern)),
            "the route {pattern:?} of src/web/server.rs is not walked: add it to ROUTES in tests/web_limits.rs"
        );
    }
    daemon.term();
    assert!(daemon.wait_exit(T).success(), "{}", daemon.stderr());
}

/// The slice patterns of `handle`'s match arms, one segment each: a
/// literal (`"api"`) or a binding (`None`).
fn handle_patterns() -> Vec<Vec<Option<String>>> {
    let src = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/web/server.rs")).unwrap();
    let body = src
        .split("async fn handle(")
        .nth(1)
        .expect("fn handle in src/web/server.rs")
        .split("\n}\n")
        .next()
        .unwrap();
    let patterns: Vec<Vec<Option<String>>> = body
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('[') && l.contains("=>"))
        .filter_map(|l| {
            let inner = l.strip_prefix('[')?.split(']').next()?;
            Some(
                inner
                    .split(',')
                    .map(|s| s.trim())
                    .map(|s| s.strip_prefix('"').map(|s| s.trim_end_matches('"').to_string()))
                    .collect(),
            )
        })
        .collect();
    assert!(patterns.len() >= 10, "read {} route patterns only", patterns.len());
    patterns
}

fn matches_pattern(path: &str, pattern: &[Option<String>]) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    segments.len() == pattern.len()
        && segments
            .iter()
            .zip(pattern)
            .all(|(s, p)| p.as_ref().is_none_or(|p| p == s))
}

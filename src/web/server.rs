//! The HTTP/1.1 side: hyper's connection state machine (bounded header
//! buffer, a deadline on reading the headers), at most `max_connections`
//! connections at once and at most `max_connections_per_client` from one
//! address, a route per page and stream, and the limits that keep a
//! stranger's request from stalling the gateway or changing it: bodies are
//! never read (commands carry none), only GET and HEAD change nothing, POST
//! needs the token, and an address that sent 10 wrong tokens in a minute is
//! refused (429) until the minute is over. Every response carries the
//! security headers ([`secure`]), whatever route made it.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, Semaphore};

use super::floor::FloorUpdate;
use super::{assets, Web};
use crate::wire::MatCommand;

pub type Body = BoxBody<Bytes, Infallible>;

/// A client must send its request's headers within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The connection's read buffer, and so the largest request head.
const MAX_HEAD: usize = 16 * 1024;
/// A comment line on every stream this often, so that a browser (or a
/// proxy) keeps it open and a vanished client is noticed.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// How often a mat's live look is sent (it is handed over at this rate).
const LIVE_EVERY: Duration = Duration::from_millis(100);

/// The client's address, put in each request's extensions for the
/// handlers (the wrong-token limit).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub IpAddr);

/// Connections open per client address (only addresses with one open are
/// kept, so at most `max_connections` entries).
struct PerClient {
    cap: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of `ip`, given back when dropped.
struct ClientSlot(Arc<PerClient>, IpAddr);

impl PerClient {
    fn take(self: &Arc<Self>, ip: IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(ClientSlot(self.clone(), ip))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.0.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// Serves `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, web: Arc<Web>) {
    let slots = Arc::new(Semaphore::new(web.max_connections));
    let per_client = Arc::new(PerClient {
        cap: web.max_connections_per_client,
        open: Mutex::new(HashMap::new()),
    });
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, say: wait a little rather than spin.
                tracing::warn!("web: accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // An IPv4 client of a `[::]` listener is one address, however it came.
        let ip = peer.ip().to_canonical();
        let Some(client_slot) = per_client.take(ip) else {
            web.metrics().web_refused_per_client.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            web.metrics().web_refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let web = web.clone();
        web.metrics().web_connections.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let metrics_web = web.clone();
            let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                let web = web.clone();
                req.extensions_mut().insert(Peer(ip));
                async move {
                    let mut r = handle(&web, req).await;
                    secure(&mut r);
                    Ok::<_, Infallible>(r)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service)
                .await;
            metrics_web.metrics().web_connections.fetch_sub(1, Ordering::Relaxed);
            drop((permit, client_slot));
        });
    }
}

/// The security headers, on every response whatever route made it (set
/// here, once, so that a new page cannot forget them): no framing by
/// another site, no content sniffing, and no Referer, so that a personal
/// link never leaks to where a page leads.
fn secure(r: &mut Response<Body>) {
    let h = r.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
        ),
    );
}

pub(super) fn full(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", body.into())
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    full(status, "application/json", body)
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }).to_string())
}

/// An id as the configuration allows them (letters, digits, `_`, `-`).
fn id(s: &str) -> Option<&str> {
    crate::config::check_id(s).ok().map(|()| s)
}

async fn handle(web: &Arc<Web>, req: Request<Incoming>) -> Response<Body> {
    web.metrics().web_requests.fetch_add(1, Ordering::Relaxed);
    let path = req.uri().path().to_string();
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let method = req.method().clone();
    if super::athletes::owns(&method, &parts) {
        return super::athletes::handle(web, req, &parts).await;
    }
    if method == Method::POST {
        return match parts.as_slice() {
            ["api", "mat", mat, "command", name] => command(web, &req, mat, name),
            _ => error(StatusCode::NOT_FOUND, "no such command"),
        };
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD or POST");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return r;
    }
    match parts.as_slice() {
        [""] => page(assets::FLOOR),
        ["mat", gw, mat] if id(gw).is_some() && id(mat).is_some() => page(assets::MAT),
        ["grid", mat] if web.own.iter().any(|m| m == mat) => page(assets::GRID),
        ["pictures", mat] if web.own.iter().any(|m| m == mat) => page(assets::PICTURES),
        ["app.css"] => full(StatusCode::OK, "text/css; charset=utf-8", assets::CSS),
        ["app.js"] => full(StatusCode::OK, "text/javascript; charset=utf-8", assets::JS),
        ["favicon.ico"] => text(StatusCode::NO_CONTENT, ""),
        ["api", "info"] => json(StatusCode::OK, web.info.clone()),
        ["api", "floor"] => floor_stream(web),
        ["api", "mat", gw, mat] if id(gw).is_some() && id(mat).is_some() => mat_stream(web, gw, mat),
        ["api", "pictures", mat] if web.own.iter().any(|m| m == mat) => json(StatusCode::OK, web.pictures.list(mat)),
        ["api", "pictures", mat, n] if web.own.iter().any(|m| m == mat) => {
            match n
                .strip_suffix(".svg")
                .and_then(|n| n.parse().ok())
                .and_then(|n| web.pictures.get(mat, n))
            {
                Some(svg) => full(StatusCode::OK, "image/svg+xml", svg),
                None => error(StatusCode::NOT_FOUND, "no such picture"),
            }
        }
        ["metrics"] => {
            web.outbox.refresh_metrics();
            full(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                web.metrics().render(),
            )
        }
        ["health"] => {
            let h = web.metrics().health(crate::daemon::metrics::now_ms());
            if h.ok {
                text(StatusCode::OK, "ok\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", h.problems.join("\n")))
            }
        }
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

fn page(html: &'static str) -> Response<Body> {
    full(StatusCode::OK, "text/html; charset=utf-8", html)
}

/// `POST /api/mat/MAT/command/NAME` with `Authorization: Bearer TOKEN`: the
/// token first, so that without it nothing about the mats is learnt and
/// nothing changes. The body is never read. An address that sent
/// [`super::token::GUESSES`] wrong tokens within a minute gets 429 until that
/// minute is over, even with the right token (so guessing learns nothing).
/// 429 for an address that sent too many wrong tokens this minute (every
/// route that takes a token asks this first).
pub(super) fn rate_limited(web: &Web, req: &Request<Incoming>) -> Option<Response<Body>> {
    let peer = req.extensions().get::<Peer>().map(|p| p.0);
    let left = peer.and_then(|ip| web.guesses.blocked(ip, Instant::now()))?;
    web.metrics().web_rate_limited.fetch_add(1, Ordering::Relaxed);
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        "too many wrong tokens from this address: try again when the minute is over",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(left.as_secs().max(1)));
    Some(r)
}

/// The request's client address.
pub(super) fn peer(req: &Request<Incoming>) -> Option<std::net::IpAddr> {
    req.extensions().get::<Peer>().map(|p| p.0)
}

/// A wrong token from the request's address, counted towards its limit.
pub(super) fn wrong_token(web: &Web, req: &Request<Incoming>) {
    wrong_token_from(web, peer(req));
}

pub(super) fn wrong_token_from(web: &Web, peer: Option<std::net::IpAddr>) {
    if let Some(ip) = peer {
        web.guesses.wrong(ip, Instant::now());
    }
}

fn command(web: &Web, req: &Request<Incoming>, mat: &str, name: &str) -> Response<Body> {
    if let Some(r) = rate_limited(web, req) {
        return r;
    }
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "));
    let authorised = match (&web.token, given) {
        (Some(token), Some(given)) => token.matches(given),
        _ => false,
    };
    // Only a token given counts as a guess (a page without one is no attack).
    if !authorised && web.token.is_some() && req.headers().contains_key(header::AUTHORIZATION) {
        wrong_token(web, req);
    }
    if !authorised {
        let why = if web.token.is_none() {
            "read-only: this gateway has no [web] token_file"
        } else {
            "a wrong or missing token"
        };
        let mut r = error(StatusCode::UNAUTHORIZED, why);
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"flatback\""),
        );
        return r;
    }
    let Some(command) = MatCommand::ALL.into_iter().find(|c| c.name() == name) else {
        return error(
            StatusCode::NOT_FOUND,
            "unknown command: reset_counters, new_set or rereference",
        );
    };
    if !web.own.iter().any(|m| m == mat) {
        return error(StatusCode::NOT_FOUND, "not a mat of this gateway");
    }
    tracing::info!(mat, command = %command, "command from the web view");
    let name = command.name();
    web.outbox.command(mat, command);
    json(
        StatusCode::OK,
        serde_json::json!({ "mat": mat, "command": name }).to_string(),
    )
}

/// A server-sent events body fed by a channel; the stream's task ends when
/// the client goes (the body is dropped, the channel closes).
struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

fn sse(event: &str, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() + event.len() + 16);
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

/// Counts a stream's client while it lives.
struct Client(Arc<Web>);

impl Client {
    fn new(web: &Arc<Web>) -> Client {
        web.metrics().web_clients.fetch_add(1, Ordering::Relaxed);
        Client(web.clone())
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.0.metrics().web_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

fn stream_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut r = Response::new(ChannelBody(rx).boxed());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// `GET /api/floor`: `floor` (every tile) first, then `tiles` (the tiles
/// that changed) and `floor` again when the floor changes shape.
fn floor_stream(web: &Arc<Web>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let client = Client::new(web);
    tokio::spawn(async move {
        let web = &client.0;
        let (first, mut updates) = web.floor.subscribe();
        if tx.send(sse("floor", &first)).await.is_err() {
            return;
        }
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        loop {
            let out = tokio::select! {
                u = updates.recv() => match u {
                    Ok(FloorUpdate::Floor(b)) => sse("floor", &b),
                    Ok(FloorUpdate::Tiles(b)) => sse("tiles", &b),
                    // Behind: the whole floor as it is now.
                    Err(broadcast::error::RecvError::Lagged(_)) => sse("floor", &web.floor.snapshot()),
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = keepalive.tick() => Bytes::from_static(b": keepalive\n\n"),
                _ = tx.closed() => return,
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    });
    stream_response(rx)
}

/// `GET /api/mat/GATEWAY/MAT`: the mat's tile (`tile`) whenever it changes,
/// and for this gateway's own mats their live look (`live`: the raw frame,
/// contact, the descent under way) ten times a second.
fn mat_stream(web: &Arc<Web>, gateway: &str, mat: &str) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let client = Client::new(web);
    let (gateway, mat) = (gateway.to_string(), mat.to_string());
    tokio::spawn(async move {
        let web = &client.0;
        let own = gateway == web.gateway && web.own.contains(&mat);
        let (_, mut updates) = web.floor.subscribe();
        let mut sent: Option<Bytes> = None;
        let mut seen_live = 0;
        let mut live_tick = tokio::time::interval(LIVE_EVERY);
        live_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
        let mut first = true;
        loop {
            let mut out = Vec::new();
            if first {
                // The tile as it is now, then whenever it changes.
                first = false;
            } else {
                tokio::select! {
                    u = updates.recv() => {
                        if matches!(u, Err(broadcast::error::RecvError::Closed)) {
                            return;
                        }
                    }
                    _ = live_tick.tick(), if own => {
                        if let Some(live) = web.outbox.live(&mat, seen_live) {
                            seen_live = live.version;
                            out.push(sse("live", super::live_json(&live).as_bytes()));
                        }
                    }
                    _ = keepalive.tick() => out.push(Bytes::from_static(b": keepalive\n\n")),
                    _ = tx.closed() => return,
                }
            }
            let tile = web.floor.tile(&gateway, &mat);
            if tile.is_some() && tile != sent {
                out.push(sse("tile", tile.as_deref().unwrap_or(b"null")));
                sent = tile;
            }
            for b in out {
                if tx.send(b).await.is_err() {
                    return;
                }
            }
        }
    });
    stream_response(rx)
}

//! The athletes' pages and who is on the mat, from the web (issue 20):
//!
//! - the coach's roster (`/athletes`), one athlete's history
//!   (`/athletes/<id>`: perfect reps per set, descent, the floor, the weekly
//!   calendar, sessions, load changes; a new load confirmed, the plan set),
//!   the CSV (`/athletes.csv`, `/athletes/<id>.csv`) and the roster for the
//!   pages' "Who's training?" (`/api/roster`);
//! - the athlete's own page (`/me/<secret>`): their figures, "I'm on mat X",
//!   "this was me" for the guest sessions of the last hour on this gateway;
//! - assignments: `POST /api/mat/MAT/athlete` (the coach; `athlete=ID`, or
//!   empty for nobody) and `POST /me/<secret>/mat/MAT` (the athlete).
//!
//! Privacy: every route but the athlete's own needs the coach's token
//! (`[web] token_file`), as `Authorization: Bearer TOKEN` or the cookie the
//! token form (`/login`) sets (HttpOnly, SameSite=Strict). Without it: 401,
//! and nothing of the roster in the answer. The pages are drawn here, with
//! their charts as inline SVG: no script, nothing from elsewhere, and no
//! Referer leaves them (the personal link is in the URL).
//!
//! Everything reads through [`crate::history::Handle`] on a blocking thread,
//! and the figures come from [`crate::history::figures`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use super::server::{full, Body};
use super::Web;
use crate::history::figures::{self, AthleteFigures, Floor, SessionFigures};
use crate::history::model::{now_ms, LoadChange, SessionQuery};
use crate::history::{secret, Athlete, Handle, HistoryStore, Load, Plan, SessionKey, SessionRecord, StoreError, Who};
use crate::wire::MatCommand;

/// The coach's cookie: the token, hex-encoded.
pub const COOKIE: &str = "flatback_coach";
/// The largest form body read.
const MAX_BODY: usize = 8 * 1024;
/// A client must send its form within this time.
const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Weeks of the calendar.
const WEEKS_SHOWN: usize = 12;
/// "This was me": guest sessions that started this recently.
const CLAIM_WINDOW_MS: i64 = 3_600_000;
/// The coach's page lists the guest sessions this recent.
const GUESTS_SHOWN_MS: i64 = 7 * 86_400_000;
/// The cookie lasts 30 days (a tablet on the floor stays logged in).
const COOKIE_MAX_AGE_S: u64 = 30 * 86_400;

/// Whether `parts` (the path's segments) is a route of this module.
pub fn owns(method: &Method, parts: &[&str]) -> bool {
    match parts {
        ["login"] | ["logout"] | ["athletes"] | ["athletes.csv"] | ["api", "roster"] => true,
        ["athletes", _] | ["athletes", _, _] => true,
        ["me", ..] => true,
        ["api", "mat", _, "athlete"] => method == Method::POST,
        _ => false,
    }
}

// ---- responses -------------------------------------------------------------

fn html(status: StatusCode, body: String) -> Response<Body> {
    full(status, "text/html; charset=utf-8", body)
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    full(status, "application/json", v.to_string())
}

fn error(status: StatusCode, message: &str) -> Response<Body> {
    json(status, serde_json::json!({ "error": message }))
}

/// 303 to a path of this gateway.
fn see_other(location: &str) -> Response<Body> {
    let mut r = full(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Only a path of this gateway (never `//host`): where a form sends back to.
fn local(next: Option<&str>) -> Option<&str> {
    next.filter(|n| n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.is_ascii())
}

/// 401: for a page the token form (which names nobody), else JSON.
fn unauthorised(page: bool, next: &str) -> Response<Body> {
    let mut r = if page {
        html(StatusCode::UNAUTHORIZED, login_html(next, None))
    } else {
        error(StatusCode::UNAUTHORIZED, "the coach's token or the athlete's own link")
    };
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"flatback\""),
    );
    r
}

fn unavailable(e: &StoreError) -> Response<Body> {
    tracing::warn!("web: history: {e}");
    error(StatusCode::SERVICE_UNAVAILABLE, "the history cannot be read now")
}

// ---- HTML --------------------------------------------------------------------

/// Escapes text for HTML (content and quoted attributes).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, page: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>flatback: {}</title>\n\
         <link rel=\"stylesheet\" href=\"/app.css\">\n</head>\n<body data-page=\"{page}\" class=\"people\">\n{body}\n</body>\n</html>\n",
        esc(title)
    )
}

fn login_html(next: &str, note: Option<&str>) -> String {
    let note = note.map_or(String::new(), |n| {
        format!("<p class=\"note bad\" id=\"login-note\">{}</p>", esc(n))
    });
    document(
        "the coach's token",
        "login",
        &format!(
            "<header class=\"bar\"><a href=\"/\" class=\"back\">&larr; floor</a><h1>The coach's token</h1></header>\n\
             <main class=\"sheet\">{note}\
             <form id=\"login-form\" method=\"post\" action=\"/login\" class=\"token\">\
             <input type=\"hidden\" name=\"next\" value=\"{}\">\
             <label>Token <input id=\"login-token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required></label> \
             <button id=\"login-submit\" type=\"submit\">Open</button></form>\
             <p class=\"note\">Athletes open their own page from their personal link.</p></main>",
            esc(next)
        ),
    )
}

fn day(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    crate::wire::payload::rfc3339(t)[..10].to_string()
}

fn minute(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64);
    let s = crate::wire::payload::rfc3339(t);
    format!("{} {} UTC", &s[..10], &s[11..16])
}

fn floor_text(f: Option<Floor>) -> String {
    match f {
        None => "–".into(),
        Some(Floor::Flat) => "flat to the bottom".into(),
        Some(Floor::Lifted(d)) => format!("{:.0}% down", d * 100.0),
    }
}

/// The floor as a number for the charts: 0 the top of the descent, 1 the
/// bottom (a flat session reached it).
fn floor_value(f: Option<Floor>) -> Option<f64> {
    match f? {
        Floor::Flat => Some(1.0),
        Floor::Lifted(d) => Some(d.clamp(0.0, 1.0)),
    }
}

fn floor_attr(f: Option<Floor>) -> String {
    match f {
        None => String::new(),
        Some(Floor::Flat) => "flat".into(),
        Some(Floor::Lifted(d)) => format!("{d:.3}"),
    }
}

/// A line of `values` (each 0..=1, drawn downwards: 1 at the bottom) as an
/// inline SVG of `w` x `h`; `None`s are skipped.
fn sparkline(class: &str, label: &str, values: &[Option<f64>], w: u32, h: u32) -> String {
    let points: Vec<(usize, f64)> = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .collect();
    let n = values.len().max(2) - 1;
    let (wf, hf) = (f64::from(w), f64::from(h));
    let xy: Vec<(f64, f64)> = points
        .iter()
        .map(|&(i, v)| (3.0 + (wf - 6.0) * i as f64 / n as f64, 3.0 + (hf - 6.0) * v))
        .collect();
    let mut svg = format!(
        "<svg class=\"{class}\" data-points=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\">\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#0b0d10\"/>\
         <line x1=\"0\" y1=\"{}\" x2=\"{w}\" y2=\"{}\" stroke=\"#2e6b45\" stroke-width=\"1\"/>",
        xy.len(),
        esc(label),
        hf - 3.0,
        hf - 3.0
    );
    if xy.len() > 1 {
        let pts: Vec<String> = xy.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"#6fa8ff\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        );
    }
    for (x, y) in &xy {
        let _ = write!(svg, "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"#6fa8ff\"/>");
    }
    svg.push_str("</svg>");
    svg
}

/// Perfect reps of each set, session after session, as bars; the plan's
/// reps and the ready threshold as lines.
fn sets_chart(sessions: &[SessionFigures], plan: Plan, ready_reps: u32) -> String {
    let bars: Vec<(usize, u32, u32)> = sessions
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.sets.iter().map(move |set| (i, set.perfect, set.reps)))
        .collect();
    let top = bars
        .iter()
        .map(|b| b.2)
        .chain([plan.reps, ready_reps])
        .max()
        .unwrap_or(1)
        .max(1);
    let (w, h) = (24 * bars.len().max(1) as u32 + 8 * sessions.len() as u32 + 8, 120u32);
    let y = |v: u32| 110.0 - 100.0 * f64::from(v) / f64::from(top);
    let mut svg = format!(
        "<svg class=\"sets-chart\" data-bars=\"{}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"perfect reps per set\">\
         <rect x=\"0\" y=\"0\" width=\"{w}\" height=\"{h}\" fill=\"#0b0d10\"/>",
        bars.len()
    );
    let mut x = 8.0;
    let mut last = None;
    for (i, perfect, reps) in &bars {
        if last.is_some_and(|l| l != *i) {
            x += 8.0;
        }
        last = Some(*i);
        let _ = write!(
            svg,
            "<rect x=\"{x:.0}\" y=\"{:.1}\" width=\"18\" height=\"{:.1}\" fill=\"#3a4450\"/>\
             <rect x=\"{x:.0}\" y=\"{:.1}\" width=\"18\" height=\"{:.1}\" fill=\"#2fbf71\"><title>{perfect} perfect of {reps}</title></rect>",
            y(*reps),
            110.0 - y(*reps),
            y(*perfect),
            110.0 - y(*perfect)
        );
        x += 24.0;
    }
    for (v, colour) in [(plan.reps, "#f0a020"), (ready_reps, "#e0312f")] {
        let _ = write!(
            svg,
            "<line x1=\"0\" y1=\"{0:.1}\" x2=\"{w}\" y2=\"{0:.1}\" stroke=\"{colour}\" stroke-dasharray=\"4 3\" stroke-width=\"1\"/>",
            y(v)
        );
    }
    svg.push_str("</svg>");
    svg
}

// ---- forms and auth --------------------------------------------------------

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// `application/x-www-form-urlencoded`, decoded.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let decode = |s: &[u8]| -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => match (hex_value(s[i + 1]), hex_value(s[i + 2])) {
                    (Some(a), Some(b)) => {
                        out.push(a * 16 + b);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split(|&b| b == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.iter().position(|&b| b == b'=') {
            Some(i) => (decode(&p[..i]), decode(&p[i + 1..])),
            None => (decode(p), String::new()),
        })
        .collect()
}

struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

/// The request's form body, bounded in size and time.
async fn read_form(req: Request<Incoming>) -> Result<Form, Response<Body>> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Ok(Ok(c)) => Ok(Form(parse_form(&c.to_bytes()))),
        Ok(Err(_)) => Err(error(StatusCode::PAYLOAD_TOO_LARGE, "a form of at most 8 KiB")),
        Err(_) => Err(error(StatusCode::REQUEST_TIMEOUT, "the form did not arrive in time")),
    }
}

fn query(req: &Request<Incoming>) -> Form {
    Form(parse_form(req.uri().query().unwrap_or("").as_bytes()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.len() % 2 != 0 || b.len() > 1024 {
        return None;
    }
    b.chunks(2)
        .map(|p| Some(hex_value(p[0])? * 16 + hex_value(p[1])?))
        .collect()
}

/// The coach's cookie's value, if the request carries one.
fn cookie(req: &Request<Incoming>) -> Option<Vec<u8>> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == COOKIE)
        .and_then(|(_, v)| unhex(v.trim()))
}

/// Whether the request carries the coach's token (Bearer or cookie).
pub fn is_coach(web: &Web, req: &Request<Incoming>) -> bool {
    let Some(token) = &web.token else { return false };
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .is_some_and(|given| token.matches(given));
    let coach = bearer || cookie(req).is_some_and(|c| token.matches(&c));
    if !coach && (req.headers().contains_key(header::AUTHORIZATION) || cookie(req).is_some()) {
        // A token given and wrong: a guess, counted like the commands' ones.
        super::server::wrong_token(web, req);
    }
    coach
}

/// Runs `f` on the store on a blocking thread.
async fn store<T: Send + 'static>(
    handle: &Handle,
    f: impl FnOnce(&mut dyn HistoryStore) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let handle = handle.clone();
    tokio::task::spawn_blocking(move || handle.with(f))
        .await
        .unwrap_or_else(|e| Err(StoreError::Database(format!("the store's task: {e}"))))
}

// ---- routes ------------------------------------------------------------------

/// Serves a route [`owns`] said is this module's.
pub async fn handle(web: &Arc<Web>, req: Request<Incoming>, parts: &[&str]) -> Response<Body> {
    let method = req.method().clone();
    let get = method == Method::GET || method == Method::HEAD;
    let post = method == Method::POST;
    if !get && !post {
        let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "GET, HEAD or POST");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
        return r;
    }
    if let Some(r) = super::server::rate_limited(web, &req) {
        return r;
    }
    // The athlete's own link, and the token form.
    match (parts, post) {
        (["login"], false) => {
            let q = query(&req);
            let next = local(q.get("next")).unwrap_or("/athletes").to_string();
            return html(StatusCode::OK, login_html(&next, None));
        }
        (["login"], true) => return login(web, req).await,
        (["logout"], true) => {
            let mut r = see_other("/");
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"))
                    .expect("ASCII"),
            );
            return r;
        }
        (["me", secret], false) => return me_page(web, secret, &query(&req)).await,
        (["me", secret, "mat", mat], true) => return me_assign(web, secret, mat).await,
        (["me", secret, "claim"], true) => return me_claim(web, req, secret).await,
        (["me", ..], _) => return error(StatusCode::NOT_FOUND, "no such page"),
        _ => {}
    }
    // The coach's: the token first, so that without it nothing is learnt.
    if !is_coach(web, &req) {
        let page = get && !matches!(parts, ["api", ..]) && !parts.last().is_some_and(|p| p.ends_with(".csv"));
        return unauthorised(page, &format!("/{}", parts.join("/")));
    }
    let Some(history) = web.history.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "no history on this gateway ([history] database = \"\")",
        );
    };
    match (parts, post) {
        (["athletes"], false) => roster_page(web, &history).await,
        (["athletes"], true) => add_athlete(req, &history).await,
        (["athletes.csv"], false) => csv(&history, None).await,
        (["api", "roster"], false) => roster_json(&history).await,
        (["api", "mat", mat, "athlete"], true) => assign(web, req, &history, mat).await,
        (["athletes", id], false) => match id.strip_suffix(".csv") {
            Some(id) => csv(&history, Some(id.to_string())).await,
            None => athlete_page(web, &history, id).await,
        },
        (["athletes", id, "load"], true) => set_load(req, &history, id).await,
        (["athletes", id, "plan"], true) => set_plan(req, &history, id).await,
        (["athletes", id, "claim"], true) => coach_claim(req, &history, id).await,
        (_, true) => error(StatusCode::NOT_FOUND, "no such form"),
        _ => error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `POST /login` (`token`, `next`): the cookie, then back to `next`; without
/// `next`, 200 (the pages' own token form).
async fn login(web: &Web, req: Request<Incoming>) -> Response<Body> {
    let peer = super::server::peer(&req);
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let given = form.get("token").unwrap_or("").trim();
    let next = form.get("next");
    let ok = web.token.as_ref().is_some_and(|t| t.matches(given.as_bytes()));
    if !ok {
        if web.token.is_some() {
            super::server::wrong_token_from(web, peer);
        }
        let why = if web.token.is_none() {
            "this gateway has no [web] token_file"
        } else {
            "a wrong token"
        };
        return match local(next) {
            Some(n) => {
                let mut r = html(StatusCode::UNAUTHORIZED, login_html(n, Some(why)));
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"flatback\""),
                );
                r
            }
            None => unauthorised(false, "/"),
        };
    }
    let mut r = match local(next) {
        Some(n) => see_other(n),
        None => json(StatusCode::OK, serde_json::json!({ "coach": true })),
    };
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={COOKIE_MAX_AGE_S}",
        hex(given.as_bytes())
    );
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("hex is ASCII"),
    );
    r
}

/// An athlete, their sessions and load changes, read at once.
struct Loaded {
    athlete: Athlete,
    sessions: Vec<SessionRecord>,
    changes: Vec<LoadChange>,
}

fn load_of(s: &mut dyn HistoryStore, athlete: Athlete) -> Result<Loaded, StoreError> {
    let sessions = s.sessions(&SessionQuery::of(Who::Athlete(athlete.id.clone())))?;
    let changes = s.load_changes(&athlete.id)?;
    Ok(Loaded {
        athlete,
        sessions,
        changes,
    })
}

fn figures_of(web: &Web, l: &Loaded) -> AthleteFigures {
    figures::athlete(
        &l.sessions,
        &l.athlete.load,
        &l.changes,
        &web.athletes.thresholds(),
        now_ms(),
        WEEKS_SHOWN,
    )
}

fn floors(f: &AthleteFigures) -> Vec<Option<f64>> {
    f.sessions.iter().map(|s| floor_value(s.floor)).collect()
}

fn header_bar(title: &str, back: &str) -> String {
    format!(
        "<header class=\"bar\"><a href=\"{back}\" class=\"back\">&larr;</a><h1>{}</h1>\
         <form method=\"post\" action=\"/logout\"><button type=\"submit\">Log out</button></form></header>",
        esc(title)
    )
}

/// `GET /athletes`: the roster, one row per athlete.
async fn roster_page(web: &Web, history: &Handle) -> Response<Body> {
    let (h, t) = (history.clone(), web.athletes.thresholds());
    let all = tokio::task::spawn_blocking(move || h.roster_figures(&t, now_ms(), WEEKS_SHOWN))
        .await
        .unwrap_or_else(|e| Err(StoreError::Database(format!("the store's task: {e}"))));
    let all = match all {
        Ok(a) => a,
        Err(e) => return unavailable(&e),
    };
    let target = web.athletes.sessions_per_week;
    let mut rows = String::new();
    for (a, f) in &all {
        let last = f.last_session();
        let _ = writeln!(
            rows,
            "<tr class=\"athlete\" data-id=\"{id}\" data-week=\"{week}\" data-best=\"{best}\" data-ready=\"{ready}\">\
             <td><a href=\"/athletes/{id}\">{name}</a></td><td>{last}</td>\
             <td class=\"week\">{week} / {target}{streak}</td><td class=\"best\">{best_text}</td>\
             <td>{spark}</td><td class=\"ready-cell\">{ready_text}</td></tr>",
            id = esc(&a.id),
            name = esc(&a.name),
            week = f.sessions_this_week,
            best = last.map_or(0, SessionFigures::best_set),
            ready = f.ready.is_some(),
            last = last.map_or("never".into(), |s| day(s.started_ms)),
            streak = if f.streak_weeks > 0 {
                let weeks = if f.streak_weeks == 1 { "week" } else { "weeks" };
                format!(" <span class=\"dim\">({} {weeks} in a row)</span>", f.streak_weeks)
            } else {
                String::new()
            },
            best_text = last.map_or("–".into(), |s| format!("{} perfect", s.best_set())),
            spark = sparkline("spark", "floor trend", &floors(f), 120, 30),
            ready_text = if f.ready.is_some() {
                "<b class=\"good\">ready to add load</b>"
            } else {
                "–"
            },
        );
    }
    let body = format!(
        "{}<main class=\"sheet\">\
         <table class=\"roster\" id=\"roster\"><thead><tr><th>Athlete</th><th>Last session</th>\
         <th>Sessions this week</th><th>Last best set</th><th>Floor trend</th><th>Load</th></tr></thead>\
         <tbody>\n{rows}</tbody></table>\
         {}\
         <form id=\"add-form\" method=\"post\" action=\"/athletes\" class=\"inline\">\
         <label>New athlete <input id=\"add-name\" name=\"name\" maxlength=\"64\" required></label> \
         <button type=\"submit\">Add</button></form>\
         <p><a id=\"csv-all\" href=\"/athletes.csv\" download>Everyone's history (CSV)</a></p>\
         <p class=\"note\">The floor: where in the descent the back lifted, per session; lower is further down \
         (the bottom line: flat all the way). Ready to add load: a set of {} perfect reps, each with a descent of \
         at least {} s.</p></main>",
        header_bar("Athletes", "/"),
        if all.is_empty() {
            "<p class=\"note\" id=\"no-athletes\">No athlete yet.</p>"
        } else {
            ""
        },
        web.athletes.ready_perfect_reps,
        web.athletes.ready_descent_s,
    );
    html(StatusCode::OK, document("athletes", "athletes", &body))
}

/// `POST /athletes` (`name`): a new athlete, then their page.
async fn add_athlete(req: Request<Incoming>, history: &Handle) -> Response<Body> {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let name = form.get("name").unwrap_or("").to_string();
    let h = history.clone();
    match store(history, move |s| s.add_athlete(&name)).await {
        Ok(a) => {
            let _ = tokio::task::spawn_blocking(move || h.refresh_roster()).await;
            see_other(&format!("/athletes/{}", a.id))
        }
        Err(StoreError::Invalid(why)) => error(StatusCode::BAD_REQUEST, &why),
        Err(e) => unavailable(&e),
    }
}

/// `GET /api/roster`: ids and display names, for "Who's training?".
async fn roster_json(history: &Handle) -> Response<Body> {
    match store(history, |s| s.athletes()).await {
        Ok(all) => json(
            StatusCode::OK,
            serde_json::Value::Array(
                all.iter()
                    .map(|a| serde_json::json!({ "id": a.id, "name": a.name }))
                    .collect(),
            ),
        ),
        Err(e) => unavailable(&e),
    }
}

/// The CSV, one row per rep: one athlete's or everyone's.
async fn csv(history: &Handle, athlete: Option<String>) -> Response<Body> {
    if athlete.as_deref().is_some_and(|id| !secret::is_athlete_id(id)) {
        return error(StatusCode::NOT_FOUND, "no such athlete");
    }
    let name = athlete.clone().unwrap_or_else(|| "everyone".into());
    let read = store(history, move |s| {
        let athletes = s.athletes()?;
        let who = match &athlete {
            Some(id) if !athletes.iter().any(|a| &a.id == id) => return Ok(None),
            Some(id) => Who::Athlete(id.clone()),
            None => Who::Everyone,
        };
        Ok(Some((s.sessions(&SessionQuery::of(who))?, athletes)))
    })
    .await;
    match read {
        Ok(Some((sessions, athletes))) => {
            let mut out = Vec::new();
            if let Err(e) = crate::history::export::write_csv(&mut out, &sessions, &athletes) {
                return error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string());
            }
            let mut r = full(StatusCode::OK, "text/csv; charset=utf-8", out);
            let disposition = format!("attachment; filename=\"flatback-{name}.csv\"");
            r.headers_mut().insert(
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&disposition).expect("an id is ASCII"),
            );
            r
        }
        Ok(None) => error(StatusCode::NOT_FOUND, "no such athlete"),
        Err(e) => unavailable(&e),
    }
}

async fn read_athlete(history: &Handle, id: &str) -> Result<Option<Loaded>, StoreError> {
    if !secret::is_athlete_id(id) {
        return Ok(None);
    }
    let id = id.to_string();
    store(history, move |s| match s.athlete(&id)? {
        Some(a) => load_of(s, a).map(Some),
        None => Ok(None),
    })
    .await
}

/// The sessions as a table: a row each, newest first.
fn sessions_table(web: &Web, f: &AthleteFigures) -> String {
    let mut rows = String::new();
    for s in f.sessions.iter().rev() {
        let sets: Vec<String> = s
            .sets
            .iter()
            .map(|set| format!("{}/{}{}", set.perfect, set.reps, if set.whole { "" } else { "*" }))
            .collect();
        let own = s.key.gateway == web.gateway && web.own.contains(&s.key.mat);
        let mat = if own && super::pictures::BUILT_IN {
            format!("<a href=\"/pictures/{0}\">{0}</a>", esc(&s.key.mat))
        } else {
            esc(&s.key.mat)
        };
        let _ = writeln!(
            rows,
            "<tr class=\"session\" data-gateway=\"{}\" data-mat=\"{}\" data-start=\"{}\" data-reps=\"{}\" data-perfect=\"{}\" data-sets=\"{}\" data-floor=\"{}\" data-descent=\"{}\">\
             <td>{}</td><td>{}/{}</td><td>{}</td><td class=\"sets\">{}</td><td>{} of {}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.key.gateway),
            esc(&s.key.mat),
            s.started_ms,
            s.reps,
            s.perfect,
            s.sets.len(),
            floor_attr(s.floor),
            s.descent_ms.map_or(String::new(), |d| d.to_string()),
            minute(s.started_ms),
            esc(&s.key.gateway),
            mat,
            esc(&s.load.label()),
            sets.join(" · "),
            s.perfect,
            s.reps,
            s.descent_ms.map_or("–".into(), |d| format!("{:.1} s", d as f64 / 1000.0)),
            floor_text(s.floor),
        );
    }
    format!(
        "<table class=\"sessions\" id=\"sessions\"><thead><tr><th>Started</th><th>Where</th><th>Load</th>\
         <th>Perfect / reps per set</th><th>Perfect</th><th>Descent (median)</th><th>Floor</th></tr></thead>\
         <tbody>\n{rows}</tbody></table>"
    )
}

fn calendar(f: &AthleteFigures, target: u32) -> String {
    let mut cells = String::new();
    for w in &f.weeks {
        let _ = writeln!(
            cells,
            "<tr class=\"week\" data-week=\"{}\" data-sessions=\"{}\" data-met=\"{}\"><td>{}</td><td>{} / {target}</td><td>{}</td></tr>",
            day(w.start_ms),
            w.sessions,
            w.met,
            day(w.start_ms),
            w.sessions,
            if w.met { "✓" } else { "" }
        );
    }
    format!(
        "<table class=\"calendar\" id=\"calendar\"><thead><tr><th>Week of</th><th>Sessions</th><th>Met</th></tr></thead>\
         <tbody>\n{cells}</tbody></table>"
    )
}

/// `GET /athletes/<id>`: one athlete's history, and the coach's forms.
async fn athlete_page(web: &Web, history: &Handle, id: &str) -> Response<Body> {
    let l = match read_athlete(history, id).await {
        Ok(Some(l)) => l,
        Ok(None) => return error(StatusCode::NOT_FOUND, "no such athlete"),
        Err(e) => return unavailable(&e),
    };
    let since = now_ms() - GUESTS_SHOWN_MS;
    let guests = store(history, move |s| {
        s.sessions(&SessionQuery {
            who: Who::Guests,
            since_ms: Some(since),
            gateway: None,
        })
    })
    .await;
    let guests = match guests {
        Ok(g) => g,
        Err(e) => return unavailable(&e),
    };
    let f = figures_of(web, &l);
    let a = &l.athlete;
    let t = web.athletes.thresholds();
    let id = esc(&a.id);
    let guests: String = guests
        .iter()
        .rev()
        .filter(|g| !g.reps.is_empty())
        .map(|g| {
            format!(
                "<li class=\"guest\" data-gateway=\"{gw}\" data-mat=\"{mat}\" data-seq=\"{seq}\">{when} on {gw}/{mat}: \
                 {reps} reps, {perfect} perfect \
                 <form method=\"post\" action=\"/athletes/{id}/claim\" class=\"inline\">\
                 <input type=\"hidden\" name=\"gateway\" value=\"{gw}\"><input type=\"hidden\" name=\"mat\" value=\"{mat}\">\
                 <input type=\"hidden\" name=\"seq\" value=\"{seq}\"><button type=\"submit\">Theirs</button></form></li>",
                gw = esc(&g.key.gateway),
                mat = esc(&g.key.mat),
                seq = g.key.start_seq,
                when = minute(g.started_ms),
                reps = g.reps.len(),
                perfect = g.reps.iter().filter(|r| r.perfect).count(),
            )
        })
        .collect();
    let ready = match &f.ready {
        Some(r) => format!(
            "<p class=\"ready\" id=\"ready\">Ready to add load: {} perfect reps of {:.0} s or more in set {} on {}. \
             Confirm the new load below.</p>",
            r.slow_perfect,
            t.ready_descent_ms as f64 / 1000.0,
            r.set,
            f.sessions
                .iter()
                .find(|s| s.key == r.session)
                .map_or(String::new(), |s| day(s.started_ms)),
        ),
        None => "<p class=\"note\" id=\"not-ready\">Not ready to add load yet.</p>".into(),
    };
    let record = f.record.as_ref().map_or("–".into(), |r| {
        format!("{} perfect (set {}, {})", r.perfect, r.set, day(r.started_ms))
    });
    let changes: String = if l.changes.is_empty() {
        "<li>none: bodyweight since the start</li>".into()
    } else {
        l.changes
            .iter()
            .map(|c| {
                format!(
                    "<li class=\"load-change\" data-kg=\"{}\">{}: {}</li>",
                    c.load.kg,
                    minute(c.at_ms),
                    esc(&c.load.label())
                )
            })
            .collect()
    };
    let mats: String = web
        .own
        .iter()
        .map(|m| format!("<option value=\"{0}\">{0}</option>", esc(m)))
        .collect();
    let descents: Vec<Option<u64>> = f.sessions.iter().map(|s| s.descent_ms).collect();
    let slowest = descents
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(t.ready_descent_ms)
        .max(1);
    let descent_values: Vec<Option<f64>> = descents
        .iter()
        .map(|d| d.map(|d| 1.0 - d as f64 / slowest as f64))
        .collect();
    let body = format!(
        "{bar}<main class=\"sheet\" data-athlete=\"{id}\">\
         <section class=\"facts\">\
         <p>Load: <b id=\"load\">{load}</b> · plan: <b id=\"plan\">{sets} sets of {reps}</b> · \
         best set: <b id=\"record\">{record}</b></p>\
         <p>Sessions this week: <b id=\"this-week\">{week} / {target}</b> · streak: <b id=\"streak\">{streak}</b> {weeks_word}</p>\
         {ready}</section>\
         <h2>Perfect reps per set</h2>{sets_chart}\
         <h2>Descent, median per session</h2>{descent_chart}\
         <h2>The floor</h2>{floor_chart}\
         <p class=\"note\">Where in the descent the back lifted, session after session: lower is further down; \
         the bottom line is flat all the way.</p>\
         <h2>Weeks</h2>{calendar}\
         <h2>Sessions</h2>{sessions}\
         <p class=\"note\">* a set the detector may have split or merged: it never counts for the load.</p>\
         <h2>Load changes</h2><ul id=\"load-changes\">{changes}</ul>\
         <form id=\"load-form\" method=\"post\" action=\"/athletes/{id}/load\" class=\"inline\">\
         <label>New load <input id=\"load-text\" name=\"text\" maxlength=\"64\" placeholder=\"2 kg dumbbell\"></label> \
         <label>kg <input id=\"load-kg\" name=\"kg\" type=\"number\" min=\"0\" max=\"200\" step=\"0.5\" required></label> \
         <button type=\"submit\">Confirm the new load</button></form>\
         <form id=\"plan-form\" method=\"post\" action=\"/athletes/{id}/plan\" class=\"inline\">\
         <label>Sets <input name=\"sets\" type=\"number\" min=\"1\" max=\"20\" value=\"{sets}\"></label> \
         <label>Reps <input name=\"reps\" type=\"number\" min=\"1\" max=\"100\" value=\"{reps}\"></label> \
         <button type=\"submit\">Set the plan</button></form>\
         <form id=\"assign-form\" method=\"post\" action=\"\" class=\"inline assign\" data-athlete=\"{id}\">\
         <input type=\"hidden\" name=\"athlete\" value=\"{id}\"><input type=\"hidden\" name=\"next\" value=\"/athletes/{id}\">\
         On a mat: {mat_buttons}</form>\
         <p><a id=\"csv\" href=\"/athletes/{id}.csv\" download>This athlete's history (CSV)</a> · \
         personal link: <code id=\"link\">{link}</code></p>\
         <h2>Guest sessions of the last week</h2>{guests}</main>",
        bar = header_bar(&a.name, "/athletes"),
        load = esc(&a.load.label()),
        sets = a.plan.sets,
        reps = a.plan.reps,
        week = f.sessions_this_week,
        target = t.sessions_per_week,
        streak = f.streak_weeks,
        weeks_word = if f.streak_weeks == 1 { "week" } else { "weeks" },
        sets_chart = sets_chart(&f.sessions, a.plan, t.ready_perfect_reps),
        descent_chart = sparkline("descent-chart", "descent time", &descent_values, 360, 80),
        floor_chart = sparkline("floor-chart", "floor trend", &floors(&f), 360, 80),
        calendar = calendar(&f, t.sessions_per_week),
        sessions = sessions_table(web, &f),
        mat_buttons = if mats.is_empty() {
            "this gateway has no mats".to_string()
        } else {
            web.own
                .iter()
                .map(|m| {
                    format!(
                        "<button type=\"submit\" formaction=\"/api/mat/{0}/athlete\">{0}</button>",
                        esc(m)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ")
        },
        link = esc(&a.link()),
        guests = if guests.is_empty() {
            "<p class=\"note\">None.</p>".to_string()
        } else {
            format!("<ul id=\"guests\">{guests}</ul>")
        },
    );
    html(StatusCode::OK, document(&a.name, "athlete", &body))
}

async fn set_load(req: Request<Incoming>, history: &Handle, id: &str) -> Response<Body> {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let text = form.get("text").unwrap_or("").trim().to_string();
    let kg = form.get("kg").unwrap_or("").trim().parse::<f64>();
    let kg = match kg {
        Ok(kg) if (0.0..=500.0).contains(&kg) => kg,
        _ => return error(StatusCode::BAD_REQUEST, "kg: a number from 0 to 500"),
    };
    if text.chars().count() > 64 || text.chars().any(char::is_control) {
        return error(StatusCode::BAD_REQUEST, "the load's words: at most 64 characters");
    }
    let (id2, load) = (id.to_string(), Load { text, kg });
    match store(history, move |s| s.set_load(&id2, &load, now_ms())).await {
        Ok(true) => see_other(&format!("/athletes/{id}")),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such athlete"),
        Err(e) => unavailable(&e),
    }
}

async fn set_plan(req: Request<Incoming>, history: &Handle, id: &str) -> Response<Body> {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let n = |k: &str, max: u32| {
        form.get(k)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|v| (1..=max).contains(v))
    };
    let (Some(sets), Some(reps)) = (n("sets", 20), n("reps", 100)) else {
        return error(StatusCode::BAD_REQUEST, "sets 1..=20 and reps 1..=100");
    };
    let id2 = id.to_string();
    match store(history, move |s| s.set_plan(&id2, Plan { sets, reps })).await {
        Ok(true) => see_other(&format!("/athletes/{id}")),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such athlete"),
        Err(e) => unavailable(&e),
    }
}

/// The session a claim form names (`gateway`, `mat`, `seq`).
fn claimed_key(form: &Form, gateway: &str) -> Option<SessionKey> {
    Some(SessionKey {
        gateway: form.get("gateway").unwrap_or(gateway).to_string(),
        mat: form.get("mat")?.to_string(),
        start_seq: form.get("seq")?.parse().ok()?,
    })
}

/// `POST /athletes/<id>/claim` (`gateway`, `mat`, `seq`): the coach gives a
/// guest session to an athlete.
async fn coach_claim(req: Request<Incoming>, history: &Handle, id: &str) -> Response<Body> {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let Some(key) = claimed_key(&form, "") else {
        return error(StatusCode::BAD_REQUEST, "gateway, mat and seq name the session");
    };
    let id2 = id.to_string();
    match store(history, move |s| s.claim(&key, &id2)).await {
        Ok(true) => see_other(&format!("/athletes/{id}")),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such guest session or athlete"),
        Err(e) => unavailable(&e),
    }
}

/// `POST /api/mat/MAT/athlete` (`athlete=ID`, or empty for nobody; `next`
/// to go back to a page).
async fn assign(web: &Web, req: Request<Incoming>, history: &Handle, mat: &str) -> Response<Body> {
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    if !web.own.iter().any(|m| m == mat) {
        return error(StatusCode::NOT_FOUND, "not a mat of this gateway");
    }
    let athlete = form.get("athlete").map(str::trim).filter(|a| !a.is_empty());
    let athlete = match athlete {
        None => None,
        Some(id) if !secret::is_athlete_id(id) => return error(StatusCode::NOT_FOUND, "not in the roster"),
        Some(id) => {
            let id2 = id.to_string();
            match store(history, move |s| s.athlete(&id2)).await {
                Ok(Some(a)) => Some(a.id),
                Ok(None) => return error(StatusCode::NOT_FOUND, "not in the roster"),
                Err(e) => return unavailable(&e),
            }
        }
    };
    tracing::info!(
        mat,
        athlete = athlete.as_deref().unwrap_or("nobody"),
        "athlete from the web view"
    );
    web.outbox.command(mat, MatCommand::Athlete(athlete.clone()));
    match local(form.get("next")) {
        Some(n) => see_other(n),
        None => json(StatusCode::OK, serde_json::json!({ "mat": mat, "athlete": athlete })),
    }
}

// ---- the athlete's own page --------------------------------------------------

async fn by_secret(web: &Web, secret: &str) -> Result<Option<(Handle, Athlete)>, StoreError> {
    let Some(history) = web.history.clone() else {
        return Ok(None);
    };
    if !secret::is_link_secret(secret) {
        return Ok(None);
    }
    let s = secret.to_string();
    Ok(store(&history, move |st| st.athlete_by_secret(&s))
        .await?
        .map(|a| (history, a)))
}

fn no_such_link() -> Response<Body> {
    error(StatusCode::NOT_FOUND, "no such link")
}

/// `GET /me/<secret>`: the athlete's own figures, "I'm on mat X", "this was
/// me".
async fn me_page(web: &Web, secret: &str, q: &Form) -> Response<Body> {
    let (history, athlete) = match by_secret(web, secret).await {
        Ok(Some(x)) => x,
        Ok(None) => return no_such_link(),
        Err(e) => return unavailable(&e),
    };
    let since = now_ms() - CLAIM_WINDOW_MS;
    let gateway = web.gateway.clone();
    let read = store(&history, move |s| {
        let l = load_of(s, athlete)?;
        let guests = s.sessions(&SessionQuery {
            who: Who::Guests,
            since_ms: Some(since),
            gateway: Some(gateway),
        })?;
        Ok((l, guests))
    })
    .await;
    let (l, guests) = match read {
        Ok(x) => x,
        Err(e) => return unavailable(&e),
    };
    let f = figures_of(web, &l);
    let a = &l.athlete;
    let t = web.athletes.thresholds();
    let base = format!("/me/{}", esc(&a.secret));
    let ready = if f.ready.is_some() {
        format!(
            "<p class=\"ready\" id=\"ready\">Ready to add load: you did {} perfect reps with a slow descent in one set. \
             Ask your coach for the next load.</p>",
            t.ready_perfect_reps
        )
    } else {
        format!(
            "<p class=\"note\" id=\"not-ready\">Load goes up after a set of {} perfect reps, each lowered in {:.0} s or more.</p>",
            t.ready_perfect_reps,
            t.ready_descent_ms as f64 / 1000.0
        )
    };
    let on = q
        .get("on")
        .filter(|m| web.own.iter().any(|o| o == m))
        .map_or(String::new(), |m| {
            format!("<p class=\"good\" id=\"on-mat\">You are on mat {}.</p>", esc(m))
        });
    let mats: String = web
        .own
        .iter()
        .map(|m| {
            format!(
                "<form method=\"post\" action=\"{base}/mat/{0}\" class=\"inline\"><button type=\"submit\" class=\"on-mat\" data-mat=\"{0}\">I'm on mat {0}</button></form>",
                esc(m)
            )
        })
        .collect();
    let claims: String = guests
        .iter()
        .filter(|g| !g.reps.is_empty())
        .map(|g| {
            format!(
                "<li class=\"guest\" data-mat=\"{mat}\" data-seq=\"{seq}\">{when} on {mat}: {reps} reps, {perfect} perfect \
                 <form method=\"post\" action=\"{base}/claim\" class=\"inline\"><input type=\"hidden\" name=\"mat\" value=\"{mat}\">\
                 <input type=\"hidden\" name=\"seq\" value=\"{seq}\"><button type=\"submit\">This was me</button></form></li>",
                mat = esc(&g.key.mat),
                seq = g.key.start_seq,
                when = minute(g.started_ms),
                reps = g.reps.len(),
                perfect = g.reps.iter().filter(|r| r.perfect).count(),
            )
        })
        .collect();
    let last = f.last_session().map_or("no session yet".into(), |s| {
        format!(
            "{}: {} perfect of {} reps, best set {}, floor {}",
            day(s.started_ms),
            s.perfect,
            s.reps,
            s.best_set(),
            floor_text(s.floor)
        )
    });
    let body = format!(
        "<header class=\"bar\"><h1>{name}</h1></header><main class=\"sheet\" data-athlete=\"{id}\">{on}\
         <section class=\"facts\"><p>This week: <b id=\"this-week\">{week} / {target}</b> sessions · streak \
         <b id=\"streak\">{streak}</b> {weeks_word}</p><p>Today's plan: <b id=\"plan\">{sets} sets of {reps}</b> at \
         <b id=\"load\">{load}</b></p><p>Best set: <b id=\"record\">{record}</b></p><p>Last session: {last}</p>{ready}</section>\
         <h2>The floor</h2>{floor_chart}\
         <h2>On a mat now</h2><div class=\"mats\">{mats}</div>\
         <h2>This was me</h2>{claims}</main>",
        name = esc(&a.name),
        id = esc(&a.id),
        week = f.sessions_this_week,
        target = t.sessions_per_week,
        streak = f.streak_weeks,
        weeks_word = if f.streak_weeks == 1 { "week" } else { "weeks" },
        sets = a.plan.sets,
        reps = a.plan.reps,
        load = esc(&a.load.label()),
        record = f.record.as_ref().map_or("–".into(), |r| format!("{} perfect", r.perfect)),
        floor_chart = sparkline("floor-chart", "floor trend", &floors(&f), 360, 80),
        claims = if claims.is_empty() {
            "<p class=\"note\" id=\"no-guests\">No guest session on this gateway in the last hour.</p>".to_string()
        } else {
            format!("<ul id=\"guests\">{claims}</ul>")
        },
    );
    html(StatusCode::OK, document(&a.name, "me", &body))
}

/// `POST /me/<secret>/mat/MAT`: "I'm on mat X".
async fn me_assign(web: &Web, secret: &str, mat: &str) -> Response<Body> {
    let athlete = match by_secret(web, secret).await {
        Ok(Some((_, a))) => a,
        Ok(None) => return no_such_link(),
        Err(e) => return unavailable(&e),
    };
    if !web.own.iter().any(|m| m == mat) {
        return error(StatusCode::NOT_FOUND, "not a mat of this gateway");
    }
    tracing::info!(mat, athlete = %athlete.id, "athlete from their own page");
    web.outbox.command(mat, MatCommand::Athlete(Some(athlete.id.clone())));
    see_other(&format!("/me/{}?on={mat}", athlete.secret))
}

/// `POST /me/<secret>/claim` (`mat`, `seq`): "this was me", for a guest
/// session of this gateway within the last hour.
async fn me_claim(web: &Web, req: Request<Incoming>, secret: &str) -> Response<Body> {
    let (history, athlete) = match by_secret(web, secret).await {
        Ok(Some(x)) => x,
        Ok(None) => return no_such_link(),
        Err(e) => return unavailable(&e),
    };
    let form = match read_form(req).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let key = (|| {
        Some(SessionKey {
            gateway: web.gateway.clone(),
            mat: form.get("mat")?.to_string(),
            start_seq: form.get("seq")?.parse().ok()?,
        })
    })();
    let Some(key) = key else {
        return error(StatusCode::BAD_REQUEST, "mat and seq name the session");
    };
    let since = now_ms() - CLAIM_WINDOW_MS;
    let id = athlete.id.clone();
    let claimed = store(&history, move |s| {
        // Only a guest session of this gateway from the last hour.
        let recent = s.sessions(&SessionQuery {
            who: Who::Guests,
            since_ms: Some(since),
            gateway: Some(key.gateway.clone()),
        })?;
        if !recent.iter().any(|g| g.key == key) {
            return Ok(false);
        }
        s.claim(&key, &id)
    })
    .await;
    match claimed {
        Ok(true) => see_other(&format!("/me/{}", athlete.secret)),
        Ok(false) => error(StatusCode::NOT_FOUND, "no such guest session in the last hour"),
        Err(e) => unavailable(&e),
    }
}

/// How the public floor names the athlete on a mat: the display name when
/// `[athletes] show_names_on_floor`, else initials; "athlete" for an id
/// the roster does not know.
pub fn floor_label(history: &Handle, id: &str, show_names: bool) -> String {
    let roster = history.roster();
    match roster.iter().find(|e| e.id == id) {
        Some(e) if show_names => e.name.clone(),
        Some(e) => {
            let initials: String = e
                .name
                .split_whitespace()
                .filter_map(|w| w.chars().next())
                .flat_map(|c| c.to_uppercase().chain(['.']))
                .collect();
            if initials.is_empty() {
                "athlete".into()
            } else {
                initials
            }
        }
        None => "athlete".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_decode() {
        let f = parse_form(b"name=Ana+Lee&text=2%20kg%2C+dumbbell&empty=&flag&bad=%zz%4");
        assert_eq!(
            f,
            [
                ("name".to_string(), "Ana Lee".to_string()),
                ("text".into(), "2 kg, dumbbell".into()),
                ("empty".into(), String::new()),
                ("flag".into(), String::new()),
                ("bad".into(), "%zz%4".into()),
            ]
        );
        assert_eq!(parse_form(b"a=%C3%AB")[0].1, "ë");
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local(Some("/athletes/a-1")), Some("/athletes/a-1"));
        assert_eq!(local(Some("//evil.example/")), None);
        assert_eq!(local(Some("https://evil.example/")), None);
        assert_eq!(local(Some("/\\evil")), None);
        assert_eq!(local(None), None);
    }

    #[test]
    fn html_is_escaped_and_the_cookie_round_trips() {
        assert_eq!(esc("<b a=\"x\">&'"), "&lt;b a=&quot;x&quot;&gt;&amp;&#39;");
        assert_eq!(unhex(&hex(b"tok;en=1")).unwrap(), b"tok;en=1");
        assert_eq!(unhex("zz"), None);
    }

    #[test]
    fn the_floor_names_by_initials_unless_names_are_shown() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::HistoryConfig {
            database: format!("sqlite:{}", dir.path().join("h.db").display()),
            ..Default::default()
        };
        let h = Handle::new(&config).unwrap();
        let ana = h.with(|s| s.add_athlete("Ana lee")).unwrap();
        let zoe = h.with(|s| s.add_athlete("zoë")).unwrap();
        assert_eq!(floor_label(&h, &ana.id, false), "athlete", "not in the cache yet");
        h.refresh_roster().unwrap();
        assert_eq!(floor_label(&h, &ana.id, false), "A.L.");
        assert_eq!(floor_label(&h, &zoe.id, false), "Z.");
        assert_eq!(floor_label(&h, &ana.id, true), "Ana lee");
        assert_eq!(floor_label(&h, "a-00000000", true), "athlete");
    }

    #[test]
    fn a_sparkline_has_a_point_per_known_value() {
        let s = sparkline("spark", "floor", &[Some(0.5), None, Some(1.0)], 120, 30);
        assert!(s.contains("data-points=\"2\""), "{s}");
        assert!(s.contains("<polyline"), "{s}");
        assert_eq!(s.matches("<circle").count(), 2);
    }
}

//! The athletes' pages and privacy (issue 20) against `flatback run` with a
//! simulated mat, a real Mosquitto and the history on a SQLite file: the
//! coach's token (Bearer or the token form's cookie) or the athlete's own
//! link, 401 without either and no name in the answer; the roster, one
//! athlete's weeks and the CSV; the athlete's own page, "this was me";
//! a new load confirmed; and who is on the mat from the mat's page and the
//! floor page in Debian's headless Chromium through WebDriver, followed on
//! the broker.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flatback::history::figures::week_start;
use flatback::history::model::SessionQuery;
use flatback::history::sqlite::SqliteStore;
use flatback::history::{HistoryEvent, HistoryStore, Load, Plan, SessionKey, Who};
use serde_json::{json, Value};

use common::history::{end, rep, session, start};
use common::mosquitto::{free_port, Broker};
use common::mqtt::{write_config, Daemon, Subscriber};
use common::web::{self, Browser, EventStream, Response};

const T: Duration = Duration::from_secs(60);
const TOKEN: &str = "coach-token-0123456789";
const DAY: i64 = 86_400_000;
const MATS: &str = "[[mats]]\nid = \"m\"\nsource = \"sim\"\nkind = \"clean_set\"\nseed = 4\n";

/// A gateway `gym` with mat `m`, its web view on a free loopback port with
/// the token in a file, athletes named for 10 minutes after getting up.
fn gateway(dir: &Path, broker: &Broker) -> (PathBuf, SocketAddr, PathBuf) {
    let port = free_port();
    let token = dir.join("web-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let extra = format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\ntoken_file = \"{}\"\n\n[athletes]\ngrace_s = 600.0\n\n{MATS}",
        token.display()
    );
    let config = write_config(dir, &broker.url(), "gym", &extra);
    (config, ([127, 0, 0, 1], port).into(), dir.join("history-gym.db"))
}

/// `flatback athlete add NAME`: (id, link).
fn add(config: &Path, name: &str) -> (String, String) {
    let out = common::flatback()
        .args(["athlete", "add", name, "--config"])
        .arg(config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    (v["id"].as_str().unwrap().into(), v["link"].as_str().unwrap().into())
}

fn now_ms() -> i64 {
    web::epoch_ms() as i64
}

/// The security headers every answer keeps.
fn assert_headers(r: &Response, what: &str) {
    assert!(
        r.header("content-security-policy")
            .is_some_and(|c| c.contains("frame-ancestors 'none'")),
        "{what}: CSP {:?}",
        r.headers
    );
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
}

/// [`call`] from another loopback address.
fn call_from(
    from: std::net::Ipv4Addr,
    addr: SocketAddr,
    method: &str,
    path: &str,
    auth: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut headers: Vec<(&str, &str)> = auth.to_vec();
    if method == "POST" {
        headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    }
    let r = web::request_from_with(
        from,
        addr,
        method,
        path,
        &headers,
        body.as_bytes(),
        Duration::from_secs(30),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_headers(&r, &format!("{method} {path} from {from}"));
    r
}

fn call(addr: SocketAddr, method: &str, path: &str, auth: &[(&str, &str)], body: &str) -> Response {
    let mut headers: Vec<(&str, &str)> = auth.to_vec();
    if method == "POST" {
        headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    }
    let r = web::request(addr, method, path, &headers, body.as_bytes());
    assert_headers(&r, &format!("{method} {path}"));
    r
}

/// The `<tr ...>` of `class` whose attributes hold `marker`, up to `</tr>`.
fn rows<'a>(page: &'a str, class: &str) -> Vec<&'a str> {
    let open = format!("<tr class=\"{class}\"");
    page.match_indices(&open)
        .map(|(i, _)| &page[i..i + page[i..].find("</tr>").unwrap()])
        .collect()
}

fn attr<'a>(tag: &'a str, name: &str) -> &'a str {
    let key = format!("{name}=\"");
    let i = tag.find(&key).unwrap_or_else(|| panic!("{name} in {tag}")) + key.len();
    &tag[i..i + tag[i..].find('"').unwrap()]
}

/// A set of `n` reps, perfect but for those in `flawed`, 5 s apart.
#[allow(clippy::too_many_arguments)]
fn set_of(
    out: &mut Vec<HistoryEvent>,
    (gw, mat): (&str, &str),
    seq: &mut u64,
    t: &mut i64,
    athlete: Option<&str>,
    set: u32,
    n: u32,
    flawed: &[u32],
) {
    for k in 1..=n {
        *seq += 1;
        *t += 5000;
        out.push(rep(gw, mat, *seq, *t, athlete, (set, k, !flawed.contains(&k))));
    }
}

/// A session of `sets` (reps, flawed reps) starting at `seq0`, `t0`.
fn session_of(
    gw: &str,
    mat: &str,
    seq0: u64,
    t0: i64,
    athlete: Option<&str>,
    sets: &[(u32, &[u32])],
) -> Vec<HistoryEvent> {
    let mut v = vec![start(gw, mat, seq0, t0, athlete)];
    let (mut seq, mut t) = (seq0, t0);
    for (i, (n, flawed)) in sets.iter().enumerate() {
        set_of(&mut v, (gw, mat), &mut seq, &mut t, athlete, i as u32 + 1, *n, flawed);
        t += 60_000;
    }
    v.push(end(gw, mat, seq + 1, t, athlete));
    v
}

fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
}

fn no_names(r: &Response, names: &[&str], what: &str) {
    let text = r.text();
    for n in names {
        assert!(!text.contains(n), "{what}: {n:?} in {text}");
    }
}

/// Ana's 3 sessions over 3 weeks on another gateway (10 reps; 12 and 10;
/// 15 perfect of 3 s or more), and guests: one of ten minutes ago on this
/// gateway (`bench`, seq 5000: claimable), one of three hours ago (seq
/// 6000), one of another gateway (seq 7000). Returns Ana's sessions this
/// week.
fn seed(db: &Path, ana: &str) -> usize {
    // Ana's 3 sessions over 3 weeks on another gateway; guests on this one.
    let now = now_ms();
    let t = [
        now - 14 * DAY - 3_600_000,
        now - 7 * DAY - 3_600_000,
        now - 2 * 3_600_000,
    ];
    let mut store = SqliteStore::open(db).unwrap();
    store.write(&session("g-old", "m1", 1, t[0], Some(ana), 10)).unwrap();
    store
        .write(&session_of(
            "g-old",
            "m1",
            100,
            t[1],
            Some(ana),
            &[(12, &[6]), (10, &[])],
        ))
        .unwrap();
    store
        .write(&session_of("g-old", "m1", 200, t[2], Some(ana), &[(15, &[])]))
        .unwrap();
    // A guest of ten minutes ago on this gateway (claimable), one of three
    // hours ago (too old), one of another gateway (not this one's).
    store
        .write(&session_of("gym", "bench", 5000, now - 600_000, None, &[(6, &[2])]))
        .unwrap();
    store
        .write(&session_of(
            "gym",
            "bench",
            6000,
            now - 3 * 3_600_000,
            None,
            &[(4, &[])],
        ))
        .unwrap();
    store
        .write(&session_of("g-other", "m1", 7000, now - 300_000, None, &[(5, &[])]))
        .unwrap();
    t.iter().filter(|&&s| week_start(s) == week_start(now)).count()
}

/// Without the token or the link, 401 and no name; with the token the
/// roster, one athlete's weeks and the CSV; the athlete's own page shows
/// them only; "this was me" moves a guest session whole; a new load
/// confirmed; assignments by the coach and by the athlete reach the mat's
/// state and its next rep; the public floor shows initials only.
#[test]
fn privacy_pages_csv_claims_and_loads_over_http() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, addr, db) = gateway(dir.path(), &broker);
    let (ana, ana_link) = add(&config, "Ana Lee");
    let (bo, bo_link) = add(&config, "Bo Chen");
    let names = ["Ana", "Lee", "Bo Chen", "Chen"];

    let this_week = seed(&db, &ana);

    let sub = Subscriber::connect(broker.port(), "athletes-web", false, &["flatback/gym/#"]);
    let mut daemon = Daemon::run(&config, &["--speed", "5"], &[]);
    daemon.wait_listening(addr, T);
    let bearer = format!("Bearer {TOKEN}");
    let coach: &[(&str, &str)] = &[("Authorization", &bearer)];

    // (a) Without the token or the link: 401, no name, nothing changed.
    let protected: Vec<(&str, String, String)> = vec![
        ("GET", "/athletes".into(), String::new()),
        ("GET", format!("/athletes/{ana}"), String::new()),
        ("GET", format!("/athletes/{ana}.csv"), String::new()),
        ("GET", "/athletes.csv".into(), String::new()),
        ("GET", "/api/roster".into(), String::new()),
        ("POST", "/athletes".into(), "name=Eve".into()),
        ("POST", format!("/athletes/{ana}/load"), "text=x&kg=2".into()),
        ("POST", format!("/athletes/{ana}/plan"), "sets=2&reps=5".into()),
        (
            "POST",
            format!("/athletes/{bo}/claim"),
            "gateway=gym&mat=bench&seq=5000".into(),
        ),
        ("POST", "/api/mat/m/athlete".into(), format!("athlete={ana}")),
        ("POST", "/api/mat/m/athlete".into(), "athlete=".into()),
    ];
    let wrong_cookie = format!("flatback_coach={}", "ab".repeat(22));
    // Each from an address of its own: ten wrong tokens from one address
    // within a minute get 429 (checked below), not 401.
    let mut from = 0u32;
    for (method, path, body) in &protected {
        for (auth, why) in [
            (vec![], "nothing"),
            (
                vec![("Authorization", "Bearer wrong-token-0123456789")],
                "a wrong token",
            ),
            (vec![("Authorization", TOKEN)], "the token without Bearer"),
            (vec![("Cookie", wrong_cookie.as_str())], "a wrong cookie"),
        ] {
            from += 1;
            let r = call_from(
                std::net::Ipv4Addr::from(0x7f00_0200 + from),
                addr,
                method,
                path,
                &auth,
                body,
            );
            assert_eq!(r.status, 401, "{method} {path} with {why}: {}", r.text());
            no_names(&r, &names, &format!("{method} {path} with {why}"));
        }
    }
    // Guessing the token: the 11th wrong one within a minute from one
    // address gets 429 on the athletes' pages too, with no name.
    let guesser = std::net::Ipv4Addr::new(127, 0, 3, 1);
    for k in 1..=11 {
        let r = call_from(
            guesser,
            addr,
            "GET",
            "/athletes",
            &[("Authorization", "Bearer guess-0123456789")],
            "",
        );
        assert_eq!(r.status, if k <= 10 { 401 } else { 429 }, "guess {k}");
        no_names(&r, &names, "a guess");
    }
    let r = call_from(
        guesser,
        addr,
        "GET",
        "/athletes",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        "",
    );
    assert_eq!(r.status, 429, "the right token learns nothing from a blocked address");
    // A page says how to get in: the token form.
    let r = call(addr, "GET", "/athletes", &[], "");
    assert!(r.text().contains("id=\"login-form\""), "{}", r.text());
    // Athlete links: a wrong secret shows nothing and assigns nothing.
    for path in [
        format!("/me/{}", "0123456789abcdef0123456789abcdef"),
        "/me/nope".to_string(),
        format!("/me/{}/mat/m", "0123456789abcdef0123456789abcdef"),
        format!("/me/{}/claim", "0123456789abcdef0123456789abcdef"),
    ] {
        let method = if path.ends_with("/m") || path.ends_with("/claim") {
            "POST"
        } else {
            "GET"
        };
        let r = call(addr, method, &path, &[], "mat=bench&seq=5000");
        assert!(r.status == 404 || r.status == 401, "{path}: {}", r.status);
        no_names(&r, &names, &path);
    }
    {
        let mut s = SqliteStore::open(&db).unwrap();
        let a = s.athlete(&ana).unwrap().unwrap();
        assert_eq!((a.load.clone(), a.plan), (Load::bodyweight(), Plan::default()));
        assert_eq!(s.athletes().unwrap().len(), 2, "no Eve");
        assert!(s
            .sessions(&SessionQuery::of(Who::Guests))
            .unwrap()
            .iter()
            .any(|g| g.key.mat == "bench" && g.key.start_seq == 5000));
    }

    // The token form: a cookie (HttpOnly, SameSite=Strict, Path=/) that
    // opens the same pages; a wrong token gets none.
    let r = call(
        addr,
        "POST",
        "/login",
        &[],
        "token=wrong-token-0123456789&next=/athletes",
    );
    assert_eq!(r.status, 401);
    assert!(r.header("set-cookie").is_none());
    let r = call(
        addr,
        "POST",
        "/login",
        &[],
        &format!("token={TOKEN}&next=//evil.example/"),
    );
    assert_eq!(r.status, 200, "not sent elsewhere: {:?}", r.header("location"));
    let r = call(addr, "POST", "/login", &[], &format!("token={TOKEN}&next=/athletes"));
    assert_eq!((r.status, r.header("location")), (303, Some("/athletes")));
    let set_cookie = r.header("set-cookie").unwrap().to_string();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    assert!(!set_cookie.contains(TOKEN), "the token itself is not the cookie's text");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let with_cookie: &[(&str, &str)] = &[("Cookie", &cookie)];
    let r = call(addr, "GET", "/athletes", with_cookie, "");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Ana Lee"));

    // (b) The roster with the token.
    let r = call(addr, "GET", "/athletes", coach, "");
    assert_eq!(r.status, 200, "{}", r.text());
    let page = r.text();
    assert!(page.contains("Ana Lee") && page.contains("Bo Chen"));
    let row = rows(&page, "athlete")
        .into_iter()
        .find(|r| attr(r, "data-id") == ana)
        .expect("Ana's row");
    assert_eq!(attr(row, "data-week"), this_week.to_string());
    assert_eq!(attr(row, "data-best"), "15", "the last session's best set");
    assert_eq!(attr(row, "data-ready"), "true", "15 perfect reps of 3 s or more");
    assert!(row.contains("class=\"spark\" data-points=\"3\""), "{row}");
    assert!(row.contains("ready to add load"));
    let bo_row = rows(&page, "athlete")
        .into_iter()
        .find(|r| attr(r, "data-id") == bo)
        .unwrap();
    assert_eq!(attr(bo_row, "data-ready"), "false");

    // One athlete's weeks.
    let r = call(addr, "GET", &format!("/athletes/{ana}"), coach, "");
    assert_eq!(r.status, 200);
    let page = r.text();
    let sessions = rows(&page, "session");
    let got: Vec<(&str, &str, &str, &str)> = sessions
        .iter()
        .map(|s| {
            (
                attr(s, "data-sets"),
                attr(s, "data-reps"),
                attr(s, "data-perfect"),
                attr(s, "data-floor"),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("1", "15", "15", "flat"),
            ("2", "22", "21", "0.750"),
            ("1", "10", "8", "0.750"),
        ],
        "newest first: sets, reps, perfect, floor"
    );
    assert!(sessions[1].contains("11/12 · 10/10"), "{}", sessions[1]);
    let weeks = rows(&page, "week");
    assert!(weeks.len() >= 3, "{weeks:?}");
    let counted: u32 = weeks
        .iter()
        .map(|w| attr(w, "data-sessions").parse::<u32>().unwrap())
        .sum();
    assert_eq!(counted, 3, "every session in the calendar");
    assert_eq!(attr(weeks.last().unwrap(), "data-sessions"), this_week.to_string());
    assert!(
        page.contains(&format!("id=\"this-week\">{this_week} / 2<")),
        "sessions this week against 2"
    );
    assert!(page.contains("class=\"sets-chart\" data-bars=\"4\""));
    assert!(page.contains("class=\"floor-chart\" data-points=\"3\""));
    assert!(page.contains("id=\"ready\""), "ready to add load");
    assert!(!page.contains("Bo Chen"), "one athlete only");

    // The CSV: a row per rep.
    let r = call(addr, "GET", &format!("/athletes/{ana}.csv"), coach, "");
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/csv"));
    assert!(r.header("content-disposition").unwrap().starts_with("attachment"));
    let csv = r.text();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], flatback::history::export::HEADER);
    assert_eq!(lines.len(), 1 + 10 + 22 + 15, "a row per rep");
    assert!(lines[1..]
        .iter()
        .all(|l| l.starts_with(&format!("{ana},Ana Lee,g-old,m1,"))));
    let all = call(addr, "GET", "/athletes.csv", coach, "").text();
    assert!(all.lines().filter(|l| l.starts_with(&ana)).count() == 47);
    assert!(all.lines().count() > 1 + 47 + 6, "the guests' reps too");

    // (c) The athlete's own page: only them.
    let r = call(addr, "GET", &ana_link, &[], "");
    assert_eq!(r.status, 200);
    let me = r.text();
    assert!(me.contains("Ana Lee") && me.contains("id=\"ready\""));
    assert!(me.contains(&format!("id=\"this-week\">{this_week} / 2<")));
    assert!(me.contains("<meta name=\"referrer\" content=\"no-referrer\">"));
    no_names(&r, &["Bo Chen"], "Ana's page");
    let r = call(addr, "GET", &bo_link, &[], "");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Bo Chen"));
    no_names(&r, &["Ana", "Lee"], "Bo's page");
    assert!(!r.text().contains(&ana), "nothing of Ana on Bo's page");
    assert!(!r.text().contains("id=\"ready\""), "Ana's readiness is hers");

    // (d) "This was me": the guest session of ten minutes ago on this
    // gateway, not the older one nor another gateway's.
    let page = r.text();
    assert!(page.contains("data-mat=\"bench\" data-seq=\"5000\""), "{page}");
    assert!(!page.contains("data-seq=\"6000\"") && !page.contains("data-seq=\"7000\""));
    let r = call(addr, "POST", &format!("{ana_link}/claim"), &[], "mat=bench&seq=6000");
    assert_eq!(r.status, 404, "older than an hour");
    let r = call(addr, "POST", &format!("{bo_link}/claim"), &[], "mat=bench&seq=5000");
    assert_eq!((r.status, r.header("location")), (303, Some(bo_link.as_str())));
    let key = SessionKey {
        gateway: "gym".into(),
        mat: "bench".into(),
        start_seq: 5000,
    };
    {
        let mut s = SqliteStore::open(&db).unwrap();
        let bos = s.sessions(&SessionQuery::of(Who::Athlete(bo.clone()))).unwrap();
        let claimed = bos.iter().find(|x| x.key == key).expect("Bo's now");
        assert_eq!(claimed.reps.len(), 6, "with all its reps");
        assert_eq!(claimed.reps.iter().filter(|r| r.perfect).count(), 5);
        let guests = s.sessions(&SessionQuery::of(Who::Guests)).unwrap();
        assert!(!guests.iter().any(|g| g.key == key), "no guest's any more");
        assert!(guests.iter().any(|g| g.key.start_seq == 6000));
    }
    let r = call(addr, "POST", &format!("{ana_link}/claim"), &[], "mat=bench&seq=5000");
    assert_eq!(r.status, 404, "claimed once");

    // A new load confirmed: later sessions carry it, ready is judged again.
    let r = call(
        addr,
        "POST",
        &format!("/athletes/{ana}/load"),
        coach,
        "text=2+kg+dumbbell&kg=2",
    );
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some(format!("/athletes/{ana}").as_str()))
    );
    let r = call(addr, "POST", &format!("/athletes/{ana}/plan"), coach, "sets=4&reps=12");
    assert_eq!(r.status, 303);
    let r = call(addr, "POST", &format!("/athletes/{ana}/plan"), coach, "sets=0&reps=12");
    assert_eq!(r.status, 400);
    {
        let mut s = SqliteStore::open(&db).unwrap();
        let a = s.athlete(&ana).unwrap().unwrap();
        assert_eq!(
            a.load,
            Load {
                text: "2 kg dumbbell".into(),
                kg: 2.0
            }
        );
        assert_eq!(a.plan, Plan { sets: 4, reps: 12 });
        assert_eq!(s.load_changes(&ana).unwrap().len(), 1);
    }
    let page = call(addr, "GET", &format!("/athletes/{ana}"), coach, "").text();
    assert!(page.contains("id=\"load\">2 kg dumbbell<") && page.contains("4 sets of 12"));
    assert!(page.contains("class=\"load-change\" data-kg=\"2\""));
    assert!(!page.contains("id=\"ready\""), "judged again at 2 kg");
    assert!(!call(addr, "GET", &ana_link, &[], "").text().contains("id=\"ready\""));

    // A new athlete from the page.
    let r = call(addr, "POST", "/athletes", coach, "name=Cy+Dee");
    assert_eq!(r.status, 303);
    let cy = r
        .header("location")
        .unwrap()
        .strip_prefix("/athletes/")
        .unwrap()
        .to_string();
    assert_eq!(
        SqliteStore::open(&db).unwrap().athlete(&cy).unwrap().unwrap().name,
        "Cy Dee"
    );
    let roster = call(addr, "GET", "/api/roster", coach, "").json();
    assert_eq!(roster.as_array().unwrap().len(), 3);

    // Assignments: an id the roster does not know is refused; the coach's
    // and the athlete's reach the mat's state and its next rep.
    assert!(
        !sub.on("flatback/gym/m/state")
            .iter()
            .any(|m| !m.json()["athlete"].is_null()),
        "the refused assignments named nobody"
    );
    let r = call(addr, "POST", "/api/mat/m/athlete", coach, "athlete=a-00000000");
    assert_eq!(r.status, 404);
    let r = call(addr, "POST", "/api/mat/nope/athlete", coach, &format!("athlete={ana}"));
    assert_eq!(r.status, 404);
    let from = sub.messages().len();
    let r = call(addr, "POST", "/api/mat/m/athlete", coach, &format!("athlete={ana}"));
    assert_eq!(r.status, 200, "{}", r.text());
    next_rep_carries(&sub, &ana, from);
    let from = sub.messages().len();
    let r = call(addr, "POST", &format!("{bo_link}/mat/m"), &[], "");
    assert_eq!(r.status, 303);
    next_rep_carries(&sub, &bo, from);
    // The public floor: initials, never the name or the id.
    let mut floor = EventStream::open(addr, "/api/floor");
    let until = Instant::now() + T;
    loop {
        let ev = floor
            .next(until.saturating_duration_since(Instant::now()))
            .expect("the floor's stream");
        assert!(!ev.data.contains("Bo Chen") && !ev.data.contains(&bo), "{}", ev.data);
        let v: Value = serde_json::from_str(&ev.data).unwrap();
        let tiles = if ev.event == "floor" { v["tiles"].clone() } else { v };
        let m = tiles.as_array().unwrap().iter().find(|t| t["id"] == "gym/m").cloned();
        if m.is_some_and(|t| t["athlete"] == "B.C.") {
            break;
        }
    }
    let from = sub.messages().len();
    let r = call(addr, "POST", "/api/mat/m/athlete", coach, "athlete=");
    assert_eq!(r.status, 200);
    sub.wait_msg("flatback/gym/m/state", from, T, |m| m.json()["athlete"].is_null());

    daemon.term();
    assert!(daemon.wait_exit(T).success(), "{}", daemon.stderr());
    assert!(!daemon.stderr().contains(TOKEN), "the token is never logged");
    assert!(!daemon.stderr().contains(&ana_link[4..]), "nor a personal link");
}

/// Waits for the mat's state to name `athlete`, then for the next rep
/// event: it carries the id.
fn next_rep_carries(sub: &Subscriber, athlete: &str, from: usize) {
    let named = sub.wait_msg("flatback/gym/m/state", from, T, |m| m.json()["athlete"] == athlete);
    let i = sub.wait_msg("flatback/gym/m/event", named, Duration::from_secs(120), |m| {
        m.json()["type"] == "rep"
    });
    assert_eq!(
        sub.messages()[i].json()["athlete"],
        athlete,
        "{}",
        sub.messages()[i].text()
    );
}

/// Who is on the mat from the mat's page ("Who's training?", shown only
/// with the coach's cookie) and from the floor page (assign and clear per
/// tile), in headless Chromium; the mat's state and its next rep carry the
/// id, the public tile initials.
#[test]
fn assignment_from_the_mat_page_and_the_floor_page_in_a_real_browser() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, addr, db) = gateway(dir.path(), &broker);
    let (ana, ana_link) = add(&config, "Ana Lee");
    let (bo, _) = add(&config, "Bo Chen");
    seed(&db, &ana);
    let sub = Subscriber::connect(broker.port(), "athletes-browser", false, &["flatback/gym/#"]);
    let mut daemon = Daemon::run(&config, &["--speed", "5"], &[]);
    daemon.wait_listening(addr, T);
    let browser = Browser::start(1000, 900);
    let base = format!("http://{addr}");

    // Without the cookie the mat page shows no roster.
    browser.goto(&format!("{base}/mat/gym/m"));
    let roster = browser.wait(
        "the mat page without the roster",
        T,
        "const w=document.getElementById('who'); return document.body.dataset.ready==='1' && w.dataset.roster ? w.dataset.roster : null;",
        &[],
    );
    assert_eq!(roster, json!("none"));
    assert_eq!(
        browser.eval(
            "return getComputedStyle(document.getElementById('who')).display==='none' && !document.body.innerText.includes('Ana');",
            &[]
        ),
        json!(true)
    );

    // The token form, then back to the mat: "Who's training?".
    browser.goto(&format!("{base}/login?next=/mat/gym/m"));
    browser.wait(
        "the token form",
        T,
        "return !!document.getElementById('login-token');",
        &[],
    );
    browser.eval(
        "document.getElementById('login-token').value=arguments[0]; document.getElementById('login-form').requestSubmit();",
        &[json!(TOKEN)],
    );
    let names = browser.wait(
        "the roster's names on the mat page",
        T,
        "if (location.pathname!=='/mat/gym/m') return null; const w=document.getElementById('who'); \
         return w.dataset.roster==='2' ? [...document.querySelectorAll('#who-list .who-name')].map(b=>b.textContent) : null;",
        &[],
    );
    assert_eq!(names, json!(["Ana Lee", "Bo Chen"]));
    assert_eq!(
        browser.eval("return document.cookie.includes('flatback_coach');", &[]),
        json!(false),
        "HttpOnly: no script reads the cookie"
    );
    let from = sub.messages().len();
    browser.eval(
        "document.querySelector('#who-list .who-name[data-athlete=\"'+arguments[0]+'\"]').click();",
        &[json!(ana)],
    );
    browser.wait(
        "the assignment accepted",
        T,
        "return document.getElementById('who-result').dataset.status==='200';",
        &[],
    );
    next_rep_carries(&sub, &ana, from);
    browser.wait(
        "the mat page's label",
        T,
        "return document.getElementById('athlete-now').dataset.athlete==='A.L.';",
        &[],
    );

    // The floor page: assign Bo on the tile, then clear.
    browser.goto(&format!("{base}/"));
    browser.wait(
        "the tile's assign controls",
        T,
        "return !!document.querySelector('.tile[data-id=\"gym/m\"] .assign-select');",
        &[],
    );
    let from = sub.messages().len();
    browser.eval(
        "const t=document.querySelector('.tile[data-id=\"gym/m\"]'); t.querySelector('.assign-select').value=arguments[0]; \
         t.querySelector('.assign-go').click();",
        &[json!(bo)],
    );
    browser.wait(
        "the floor's assignment accepted",
        T,
        "return document.querySelector('.tile[data-id=\"gym/m\"] .assign-result').dataset.status==='200';",
        &[],
    );
    next_rep_carries(&sub, &bo, from);
    browser.wait(
        "the tile names Bo by initials",
        T,
        "return document.querySelector('.tile[data-id=\"gym/m\"] .who-tile').dataset.athlete==='B.C.';",
        &[],
    );
    let from = sub.messages().len();
    browser.eval(
        "document.querySelector('.tile[data-id=\"gym/m\"] .assign-clear').click();",
        &[],
    );
    sub.wait_msg("flatback/gym/m/state", from, T, |m| m.json()["athlete"].is_null());
    browser.wait(
        "the tile cleared",
        T,
        "return document.querySelector('.tile[data-id=\"gym/m\"] .who-tile').dataset.athlete==='';",
        &[],
    );

    save_screenshot(&browser, "web-floor-athletes.png");

    // The athlete's phone: "I'm on mat m" from their own page.
    browser.goto(&format!("{base}{ana_link}"));
    browser.wait(
        "Ana's page",
        T,
        "return !!document.querySelector('.on-mat[data-mat=\"m\"]');",
        &[],
    );
    save_screenshot(&browser, "web-me.png");
    let from = sub.messages().len();
    browser.eval("document.querySelector('.on-mat[data-mat=\"m\"]').click();", &[]);
    browser.wait(
        "the page says so",
        T,
        "return !!document.getElementById('on-mat');",
        &[],
    );
    next_rep_carries(&sub, &ana, from);

    // The coach's pages: the roster, then Ana's weeks, where a guest
    // session becomes hers and a new load is confirmed, both by the forms.
    browser.goto(&format!("{base}/athletes"));
    browser.wait(
        "Ana's row",
        T,
        "const r=document.querySelector('tr.athlete[data-id=\"'+arguments[0]+'\"]'); return r && r.dataset.ready==='true';",
        &[json!(ana)],
    );
    save_screenshot(&browser, "web-athletes.png");
    browser.eval(
        "document.querySelector('tr.athlete[data-id=\"'+arguments[0]+'\"] a').click();",
        &[json!(ana)],
    );
    browser.wait(
        "Ana's weeks",
        T,
        "return [...document.querySelectorAll('tr.session')].filter(r=>r.dataset.gateway==='g-old').length===3 && !!document.getElementById('ready');",
        &[],
    );
    save_screenshot(&browser, "web-athlete.png");
    browser.eval(
        "document.querySelector('li.guest[data-gateway=\"gym\"][data-mat=\"bench\"][data-seq=\"5000\"] button').click();",
        &[],
    );
    browser.wait(
        "the guest session Ana's",
        T,
        "return document.readyState==='complete' && !!document.querySelector('tr.session[data-gateway=\"gym\"][data-mat=\"bench\"]');",
        &[],
    );
    browser.eval(
        "document.getElementById('load-text').value='2 kg dumbbell'; document.getElementById('load-kg').value='2'; \
         document.getElementById('load-form').requestSubmit();",
        &[],
    );
    browser.wait(
        "the new load",
        T,
        "const l=document.getElementById('load'); return l && l.textContent==='2 kg dumbbell' && !document.getElementById('ready');",
        &[],
    );
    {
        let mut s = SqliteStore::open(&db).unwrap();
        assert_eq!(s.athlete(&ana).unwrap().unwrap().load.kg, 2.0);
        let hers = s.sessions(&SessionQuery::of(Who::Athlete(ana.clone()))).unwrap();
        let claimed = hers
            .iter()
            .find(|x| x.key.mat == "bench" && x.key.start_seq == 5000)
            .expect("claimed");
        assert_eq!(claimed.reps.len(), 6, "whole");
    }

    drop(browser);
    daemon.term();
    assert!(daemon.wait_exit(T).success(), "{}", daemon.stderr());
}

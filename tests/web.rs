//! The gateway's web view (issue 15) against `flatback run` with simulated
//! mats and a real Mosquitto on loopback: pages driven in Debian's headless
//! Chromium through WebDriver, the HTTP side's limits, `/metrics` read by
//! Prometheus' own text-format parser (python3-prometheus-client), and
//! `/health` following a simulated bus fault.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::mosquitto::{free_port, Broker};
use common::mqtt::{write_config, Daemon, Msg, Subscriber};
use common::web::{self, Browser, EventStream};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(40);
const TOKEN: &str = "coach-token-0123456789";

/// A gateway `gym` with `mats`, its web view on a free loopback port, the
/// token in a file; returns the config and the web address.
fn gateway(dir: &Path, broker: &Broker, mats: &str, token: bool) -> (PathBuf, SocketAddr) {
    let port = free_port();
    let token_line = if token {
        let path = dir.join("web-token");
        std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
        format!("token_file = \"{}\"\n", path.display())
    } else {
        String::new()
    };
    let extra = format!("[web]\nlisten = \"127.0.0.1:{port}\"\n{token_line}\n{mats}");
    let config = write_config(dir, &broker.url(), "gym", &extra);
    (config, ([127, 0, 0, 1], port).into())
}

fn is_arch(m: &Msg, mat: &str, phase: &str) -> bool {
    m.topic == format!("flatback/gym/{mat}/event") && m.json()["type"] == "arch" && m.json()["phase"] == phase
}

/// The latest retained state of `mat` as published.
fn latest_state(sub: &Subscriber, mat: &str) -> Option<Value> {
    sub.on(&format!("flatback/gym/{mat}/state")).last().map(|m| m.json())
}

fn save_screenshot(browser: &Browser, name: &str) {
    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs").join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, png).unwrap();
}

const FLOOR_MATS: &str = r#"
[[mats]]
id = "left"
source = "sim"
kind = "fatigue"
seed = 5

[[mats]]
id = "right"
source = "sim"
kind = "clean_set"
seed = 4
seconds = 50.0
"#;

/// One browser through every page: the floor shows every mat (this
/// gateway's first, another gateway's after), a tile turns red within
/// 300 ms of the arch start reaching the broker and back within 300 ms of
/// its end; the one-mat page's counter follows the published perfect reps;
/// a command without the token is refused and changes nothing, with it the
/// counters reset; the grid shows the raw frame live; the pictures of the
/// sessions that ended. A screenshot of each page goes to docs/.
#[test]
fn pages_in_a_real_browser() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let (config, addr) = gateway(dir.path(), &broker, FLOOR_MATS, true);
    let sub = Subscriber::connect(broker.port(), "web-test", false, &["flatback/#"]);
    // Another gateway's mat on the same broker.
    sub.publish("flatback/other/bench/status", b"online", true);
    sub.publish(
        "flatback/other/bench/state",
        br#"{"occupied":false,"arching":false,"contact":null,"set":1,"set_reps":4,"set_perfect":3,"reps":4,"perfect_reps":3}"#,
        true,
    );
    let mut daemon = Daemon::run(&config, &["--speed", "5"], &[]);
    daemon.wait_listening(addr, T);
    let browser = Browser::start(1100, 800);
    let base = format!("http://{addr}");

    // The floor: every mat, this gateway's own first.
    browser.goto(&format!("{base}/"));
    let ids = browser.wait(
        "three tiles",
        T,
        "const t=[...document.querySelectorAll('.tile')].map(n=>n.dataset.id); return t.length===3 ? t : null;",
        &[],
    );
    assert_eq!(ids, json!(["gym/left", "gym/right", "other/bench"]));

    // An arch on the broker: the tile goes red within 300 ms, and back.
    let start = sub.wait_msg("flatback/gym/left/event", 0, Duration::from_secs(90), |m| {
        is_arch(m, "left", "start")
    });
    let start_ms = sub.messages()[start].received_ms;
    let end = sub.wait_msg("flatback/gym/left/event", start + 1, T, |m| is_arch(m, "left", "end"));
    let end_ms = sub.messages()[end].received_ms;
    let changes = browser.wait(
        "the tile's arch and its end",
        Duration::from_secs(5),
        "const c=(window.flatbackChanges||[]).filter(x=>x.id==='gym/left' && x.at>=arguments[0]-1000);\
         const a=c.findIndex(x=>x.status==='arching'); \
         return a>=0 && c.slice(a+1).some(x=>x.status!=='arching') ? c.slice(a) : null;",
        &[json!(start_ms)],
    );
    let red = &changes[0];
    let red_at = red["at"].as_u64().unwrap();
    assert!(
        red_at <= start_ms + 300,
        "the tile turned red {} ms after the arch start reached the broker",
        red_at as i64 - start_ms as i64
    );
    assert_eq!(red["color"], "rgb(90, 16, 16)", "red: {red}");
    let back = changes
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] != "arching")
        .unwrap();
    let back_at = back["at"].as_u64().unwrap();
    assert!(
        back_at <= end_ms + 300,
        "back {} ms after the arch end reached the broker",
        back_at as i64 - end_ms as i64
    );
    assert_ne!(back["color"], "rgb(90, 16, 16)");
    save_screenshot(&browser, "web-floor.png");

    // One mat full screen: its counter is the published perfect reps of the set.
    browser.goto(&format!("{base}/mat/gym/right"));
    browser.wait("the mat page", T, "return document.body.dataset.ready==='1';", &[]);
    sub.wait("a perfect rep of right", Duration::from_secs(90), |msgs| {
        msgs.iter()
            .rev()
            .find(|m| m.topic == "flatback/gym/right/state")
            .filter(|m| m.json()["set_perfect"].as_u64().unwrap_or(0) > 0)
            .map(|_| ())
    });
    // The page and the broker agree (both move on as reps come: compared
    // at the same moment, until they do).
    let until = Instant::now() + T;
    let shown = loop {
        let published = latest_state(&sub, "right").unwrap()["set_perfect"].to_string();
        let page = browser.eval("return document.getElementById('set-perfect').textContent;", &[]);
        if page == json!(published) && published != "0" {
            break published;
        }
        assert!(
            Instant::now() < until,
            "the page shows {page} perfect reps, the broker {published}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_ne!(shown, "0");
    // The buttons are there (a token is configured) but none is kept yet.
    assert_eq!(
        browser.eval("return document.getElementById('cmd-reset_counters').disabled;", &[]),
        json!(false)
    );
    save_screenshot(&browser, "web-mat.png");

    // Without the token: 401, and the counters go on.
    let reps_before = latest_state(&sub, "right").unwrap()["reps"].as_u64().unwrap();
    assert!(reps_before > 0);
    browser.eval(
        "localStorage.removeItem('flatback-token'); document.getElementById('cmd-reset_counters').click();",
        &[],
    );
    browser.wait(
        "the refusal",
        T,
        "return document.getElementById('command-result').dataset.status==='401';",
        &[],
    );
    sub.barrier(T);
    let from = sub.messages().len();
    // A state published after the refusal still counts every rep.
    let after = sub.wait_msg("flatback/gym/right/state", from, T, |_| true);
    let reps_after = sub.messages()[after].json()["reps"].as_u64().unwrap();
    assert!(
        reps_after >= reps_before,
        "a refused command reset the counters: {reps_before} -> {reps_after}"
    );

    // With the token typed into the page: the counters reset.
    browser.eval(
        "document.getElementById('token').value=arguments[0]; \
         document.getElementById('token-form').requestSubmit(); \
         document.getElementById('cmd-reset_counters').click();",
        &[json!(TOKEN)],
    );
    browser.wait(
        "the command accepted",
        T,
        "return document.getElementById('command-result').dataset.status==='200';",
        &[],
    );
    assert_eq!(
        browser.eval("return localStorage.getItem('flatback-token');", &[]),
        json!(TOKEN)
    );
    let from = sub.messages().len();
    sub.wait_msg("flatback/gym/right/state", from, T, |m| {
        m.json()["reps"].as_u64().is_some_and(|r| r < reps_after.max(1))
    });

    // The grid, live: a cell per taxel, updating.
    browser.goto(&format!("{base}/grid/left"));
    browser.wait(
        "16 cells with counts",
        T,
        "const c=document.querySelectorAll('#heat td'); return c.length===16 && [...c].every(x=>/^[0-9]+$/.test(x.textContent));",
        &[],
    );
    let n0 = browser.eval("return Number(document.body.dataset.updates||0);", &[]);
    browser.wait(
        "the grid updating",
        Duration::from_secs(5),
        "return Number(document.body.dataset.updates||0) >= arguments[0]+5;",
        &[n0],
    );
    save_screenshot(&browser, "web-grid.png");

    // The last sessions' pictures: right's first session ended.
    let pictures = Duration::from_secs(90);
    sub.wait_msg("flatback/gym/right/event", 0, pictures, |m| {
        m.json()["type"] == "session" && m.json()["phase"] == "end"
    });
    browser.goto(&format!("{base}/pictures/right"));
    browser.wait(
        "a picture drawn",
        T,
        "if (!document.querySelector('#pictures img')) { location.reload(); return null; } \
         const i=document.querySelector('#pictures img'); return i.complete && i.naturalWidth>0;",
        &[],
    );
    save_screenshot(&browser, "web-pictures.png");

    daemon.term();
    assert!(daemon.wait_exit(T).success(), "{}", daemon.stderr());
    assert!(!daemon.stderr().contains(TOKEN), "the token is never logged");
}

/// `/metrics` read by Prometheus' own parser: every family is there, and
/// once the mats' sources ended and the broker has everything, the events
/// counted per mat and type are exactly those published.
#[test]
fn metrics_parse_and_agree_with_the_events_published() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mats = r#"
[[mats]]
id = "a"
source = "sim"
kind = "fatigue"
seed = 3
seconds = 40.0
repeat = false

[[mats]]
id = "b"
source = "sim"
kind = "clean_set"
seed = 8
seconds = 40.0
repeat = false
"#;
    let (config, addr) = gateway(dir.path(), &broker, mats, false);
    let sub = Subscriber::connect(broker.port(), "metrics-test", false, &["flatback/gym/+/event"]);
    let mut daemon = Daemon::run(&config, &["--speed", "20"], &[]);
    daemon.wait_listening(addr, T);
    // Both sources end; the outbox empties.
    let until = Instant::now() + T;
    let samples = loop {
        let s = parse_metrics(&web::get(addr, "/metrics").text());
        let ended = ["a", "b"]
            .iter()
            .all(|m| s.get(&format!("flatback_mat_available{{mat={m}}}")) == Some(&0.0))
            && s["flatback_frames_total{mat=a}"] > 0.0;
        if ended && s["flatback_outbox_queued_events"] == 0.0 {
            break s;
        }
        assert!(Instant::now() < until, "the mats never finished: {s:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    for family in [
        "flatback_frames_total{mat=a}",
        "flatback_sampler_overruns_total{mat=b}",
        "flatback_outbox_dropped_events_total",
        "flatback_mqtt_connected",
        "flatback_mqtt_reconnects_total",
    ] {
        assert!(samples.contains_key(family), "{family} missing: {samples:?}");
    }
    assert_eq!(samples["flatback_mqtt_connected"], 1.0);
    assert_eq!(samples["flatback_mqtt_reconnects_total"], 0.0);
    let counted: BTreeMap<(String, String), u64> = samples
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix("flatback_events_total{mat=")?;
            let (mat, t) = rest.trim_end_matches('}').split_once(",type=")?;
            (*v > 0.0).then(|| ((mat.to_string(), t.to_string()), *v as u64))
        })
        .collect();
    assert!(counted.keys().any(|(_, t)| t == "rep"), "{counted:?}");
    let published = sub.wait("every counted event on the broker", T, |msgs| {
        let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
        for m in msgs.iter().filter(|m| m.topic.ends_with("/event")) {
            let mat = m.topic.split('/').nth(2).unwrap().to_string();
            *got.entry((mat, m.json()["type"].as_str().unwrap().to_string()))
                .or_default() += 1;
        }
        (got == counted).then_some(got)
    });
    assert_eq!(published, counted);
    daemon.term();
    assert!(daemon.wait_exit(T).success());
}

/// The samples of a `/metrics` text, by `name{label=value,...}` (labels
/// sorted), as Prometheus' Python client parses the text format.
fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("/usr/bin/python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 (tests/setup.sh installs it with python3-prometheus-client)");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "Prometheus' parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `/health` is 200 while every mat delivers frames, 503 with the reason
/// while a simulated SPI bus fails, and 200 again after.
#[test]
fn health_follows_a_failing_bus() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    // At 10x the bus of "flaky" fails 30 s (simulated) in, for 40 s: 3 s to
    // 7 s of wall time.
    let mats = r#"
[[mats]]
id = "steady"
source = "sim"
kind = "clean_set"

[[mats]]
id = "flaky"
source = "sim"
kind = "clean_set"
seed = 2
bus_fault_at_s = 30.0
bus_fault_for_s = 40.0
"#;
    let (config, addr) = gateway(dir.path(), &broker, mats, false);
    let mut daemon = Daemon::run(&config, &["--speed", "10"], &[]);
    daemon.wait_listening(addr, T);
    let poll = |want: u16, what: &str| {
        let until = Instant::now() + T;
        loop {
            let r = web::get(addr, "/health");
            if r.status == want {
                return r;
            }
            assert!(
                Instant::now() < until,
                "/health never {want} ({what}): {} {}",
                r.status,
                r.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert_eq!(poll(200, "frames flowing").text(), "ok\n");
    let sick = poll(503, "the bus failed");
    assert!(
        sick.text().contains("mat flaky") && sick.text().contains("source failed"),
        "{}",
        sick.text()
    );
    assert!(!sick.text().contains("steady"), "{}", sick.text());
    poll(200, "the bus back");
    daemon.term();
    assert!(daemon.wait_exit(T).success());
}

/// Nothing a stranger sends changes the gateway or stalls it: commands
/// without the token (or with a wrong one) get 401 and reset nothing; a
/// huge request head is refused; a connection that never finishes its
/// request is closed and meanwhile the pages and streams still answer.
#[test]
fn strangers_change_nothing_and_stall_nothing() {
    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let mats = "[[mats]]\nid = \"m\"\nsource = \"sim\"\nkind = \"clean_set\"\n";
    let (config, addr) = gateway(dir.path(), &broker, mats, true);
    let sub = Subscriber::connect(broker.port(), "stranger-test", false, &["flatback/gym/m/state"]);
    let mut daemon = Daemon::run(&config, &["--speed", "10"], &[]);
    daemon.wait_listening(addr, T);
    sub.wait_msg("flatback/gym/m/state", 0, T, |m| {
        m.json()["reps"].as_u64().is_some_and(|r| r >= 2)
    });

    // A slow client holds its connection open without finishing a request.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();

    for (headers, why) in [
        (vec![], "no token"),
        (
            vec![("Authorization", "Bearer wrong-token-0123456789")],
            "a wrong token",
        ),
        (
            vec![("Authorization", &format!("Bearer {TOKEN}x")[..])],
            "the token and more",
        ),
        (vec![("Authorization", TOKEN)], "the token without Bearer"),
    ] {
        let r = web::request(addr, "POST", "/api/mat/m/command/reset_counters", &headers, b"");
        assert_eq!(r.status, 401, "{why}: {}", r.text());
        assert!(r.header("www-authenticate").is_some());
    }
    let r = web::request(addr, "GET", "/api/mat/m/command/reset_counters", &[], b"");
    assert_eq!(r.status, 404, "a GET is no command");
    let r = web::request(addr, "DELETE", "/", &[], b"");
    assert_eq!(r.status, 405);
    // Reps only grow: no reset happened.
    sub.barrier(T);
    let before = sub.on("flatback/gym/m/state").last().unwrap().json()["reps"]
        .as_u64()
        .unwrap();
    let from = sub.messages().len();
    let i = sub.wait_msg("flatback/gym/m/state", from, T, |_| true);
    assert!(sub.messages()[i].json()["reps"].as_u64().unwrap() >= before);

    // A huge request head: refused, not buffered.
    let big = "x".repeat(64 * 1024);
    let r = web::request(addr, "GET", "/", &[("X-Big", &big)], b"");
    assert_eq!(r.status, 431);

    // Meanwhile the pages and the streams answer.
    let page = web::get(addr, "/");
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/app.js") && !page.text().contains("http://") && !page.text().contains("https://"));
    assert!(page
        .header("content-security-policy")
        .is_some_and(|c| c.contains("default-src 'self'")));
    let mut floor = EventStream::open(addr, "/api/floor");
    let first = floor.next(T).expect("the floor");
    assert_eq!(first.event, "floor");
    assert_eq!(
        serde_json::from_str::<Value>(&first.data).unwrap()["tiles"][0]["id"],
        "gym/m"
    );
    for path in [
        "/app.js",
        "/app.css",
        "/api/info",
        "/mat/gym/m",
        "/grid/m",
        "/pictures/m",
        "/api/pictures/m",
    ] {
        assert_eq!(web::get(addr, path).status, 200, "{path}");
    }
    assert_eq!(
        web::get(addr, "/grid/nope").status,
        404,
        "a mat of another gateway has no grid here"
    );
    assert_eq!(web::get(addr, "/api/info").json()["commands"], true);

    // The slow client is cut off after the header deadline (10 s).
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = Vec::new();
    let started = Instant::now();
    let _ = slow.read_to_end(&mut buf);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the slow connection stayed open"
    );

    // With the token the same command is taken.
    let auth = format!("Bearer {TOKEN}");
    let r = web::request(
        addr,
        "POST",
        "/api/mat/m/command/reset_counters",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let from = sub.messages().len();
    sub.wait_msg("flatback/gym/m/state", from, T, |m| {
        m.json()["reps"].as_u64().is_some_and(|r| r < before)
    });
    let r = web::request(
        addr,
        "POST",
        "/api/mat/zz/command/reset_counters",
        &[("Authorization", &auth)],
        b"",
    );
    assert_eq!(r.status, 404);
    daemon.term();
    assert!(daemon.wait_exit(T).success());
    assert!(!daemon.stderr().contains(TOKEN), "the token is never logged");
}

//! The web view as a newcomer and an operator first meet it (issue 22):
//! `flatback demo` serves it (checked in Debian's headless Chromium), and
//! the Grafana dashboard in config/grafana/ queries only series that a live
//! gateway's `/metrics` has.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mosquitto::{free_port, Broker};
use common::mqtt::{write_config, Daemon};
use common::web::{self, Browser};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(40);

/// `flatback demo` killed when the test ends, however it ends.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `flatback demo` prints its web view's address (with a token made for
/// the run) beside the `watch` hint; in Chromium that address's floor page
/// shows the demo's three mats, and the token it carried makes the mat
/// page's command buttons work.
#[test]
fn the_demo_serves_the_web_view_with_its_three_mats() {
    let broker = Broker::start();
    let mut child = common::flatback()
        .args([
            "demo",
            "--broker",
            &broker.url(),
            "--speed",
            "5",
            "--duration",
            "120",
            "--plain",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start flatback demo");
    let stderr = child.stderr.take().unwrap();
    let _demo = Demo(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let until = Instant::now() + T;
    let mut seen = Vec::new();
    let url = loop {
        let left = until.saturating_duration_since(Instant::now());
        let line = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no web address printed within {T:?}: {seen:#?}"));
        if let Some(at) = line.find("http://") {
            break line[at..].trim().to_string();
        }
        seen.push(line);
    };
    assert!(url.contains("/#token="), "the address carries the demo's token: {url}");
    let token = url.split("#token=").nth(1).unwrap().to_string();
    assert_eq!(token.len(), 32, "{token}");
    let base = url.split('#').next().unwrap().trim_end_matches('/').to_string();
    assert!(base.starts_with("http://127.0.0.1:"), "{base}");

    let browser = Browser::start(1100, 800);
    browser.goto(&url);
    let ids = browser.wait(
        "the demo's three tiles",
        T,
        "const t=[...document.querySelectorAll('.tile')].map(n=>n.dataset.id); return t.length===3 ? t : null;",
        &[],
    );
    assert_eq!(ids, json!(["demo/mat1", "demo/mat2", "demo/mat3"]));
    // The token is kept on the device and gone from the address bar.
    assert_eq!(
        browser.eval("return localStorage.getItem('flatback-token');", &[]),
        json!(token)
    );
    assert_eq!(browser.eval("return location.hash;", &[]), json!(""));

    // The buttons work: a command from the mat page is taken.
    browser.goto(&format!("{base}/mat/demo/mat1"));
    browser.wait("the mat page", T, "return document.body.dataset.ready==='1';", &[]);
    browser.eval("document.getElementById('cmd-new_set').click();", &[]);
    browser.wait(
        "the command accepted",
        T,
        "return document.getElementById('command-result').dataset.status==='200';",
        &[],
    );
}

/// The names of every `flatback_*` series the dashboard's queries use (its
/// panels' expressions and its variables' queries).
fn dashboard_series(dashboard: &Value) -> BTreeSet<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("expr" | "query" | "definition", Value::String(s)) => out.push(s.clone()),
                        _ => walk(v, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut queries = Vec::new();
    walk(dashboard, &mut queries);
    let mut names = BTreeSet::new();
    for q in &queries {
        let mut rest = q.as_str();
        while let Some(at) = rest.find("flatback_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.insert(name);
        }
    }
    names
}

/// Every series config/grafana/flatback.json queries is a family of a live
/// gateway's `/metrics`; the dashboard has panels per gateway and per mat.
#[test]
fn the_grafana_dashboard_queries_only_series_of_metrics() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/grafana/flatback.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let names = dashboard_series(&dashboard);
    assert!(names.len() >= 12, "only {names:?}");
    let panels = dashboard["panels"].as_array().unwrap();
    let exprs = |title_has: &str| -> Vec<String> {
        panels
            .iter()
            .filter(|p| p["type"] != "row" && p["title"].as_str().unwrap().contains(title_has))
            .flat_map(|p| p["targets"].as_array().unwrap().iter())
            .map(|t| t["expr"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(
        exprs("Frames per second")[0].contains("mat=~\"$mat\""),
        "a panel per mat"
    );
    assert!(
        exprs("MQTT connected")[0].contains("instance=~\"$instance\""),
        "a panel per gateway"
    );
    assert!(
        panels.iter().any(|p| p["type"] == "row" && p["repeat"] == "mat"),
        "a row repeated per mat"
    );

    let broker = Broker::start();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let extra = format!(
        "[web]\nlisten = \"127.0.0.1:{port}\"\n\n[[mats]]\nid = \"m\"\nsource = \"sim\"\nkind = \"clean_set\"\n"
    );
    let config = write_config(dir.path(), &broker.url(), "gym", &extra);
    let mut daemon = Daemon::run(&config, &["--speed", "10"], &[]);
    daemon.wait_listening(addr, T);
    let metrics = web::get(addr, "/metrics").text();
    let families: BTreeSet<&str> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.split(' ').next())
        .collect();
    let missing: Vec<&String> = names.iter().filter(|n| !families.contains(n.as_str())).collect();
    assert!(
        missing.is_empty(),
        "the dashboard queries {missing:?}, which /metrics does not have:\n{metrics}"
    );
    // And the per-mat series carry this gateway's mat.
    assert!(metrics.contains("flatback_frames_total{mat=\"m\"}"), "{metrics}");
    daemon.term();
    assert!(daemon.wait_exit(T).success(), "{}", daemon.stderr());
}

//! The web view as a newcomer and an operator first meet it (issue 22):
//! `flatback demo` serves it (checked in Debian's headless Chromium).

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::mosquitto::Broker;
use common::web::Browser;
use serde_json::json;

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

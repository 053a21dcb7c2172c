//! The web view's cost and speed: `cargo bench --bench web`.
//!
//! Two gateways run side by side for the same time on the same machine,
//! each `flatback run` with 16 simulated mats at 200 Hz (real time, through
//! emulated ADCs, the detector and MQTT to a real Mosquitto on loopback):
//! one with its web view off (`listen = ""`), one with it on and 50
//! browsers following the floor (server-sent event clients in this
//! process). Side by side, so that whatever else the machine does weighs on
//! both alike. Each gateway has its own base topic, so the web view's floor
//! holds its own 16 mats.
//!
//! - CPU: the process's user + system time over the measured window
//!   (`/proc/PID/stat`), in per cent of one core; memory: resident now and
//!   its peak (`VmRSS`, `VmHWM`);
//! - latency: from the detector's event (the `time` its envelope got when
//!   the mat handed it to the outbox) to a browser's stream delivering the
//!   tile that shows it, over every update of every client: p50 / p99 /
//!   max. Aim: p99 under 100 ms.
//!
//! Every loop is bounded in count and time.

#[allow(dead_code)]
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;
#[path = "common/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../tests/common/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "../tests/common/web.rs"]
mod web;

use process::{cpu_s, memory_mb, spawn};

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const MATS: usize = 16;
const CLIENTS: usize = 50;
const WARMUP: Duration = Duration::from_secs(8);
const MEASURE: Duration = Duration::from_secs(30);
/// The browsers all connect from 127.0.0.1 here, where 50 tablets and
/// phones would be 50 addresses: the per-client cap is lifted to let them.
const CLIENTS_CAP: usize = 2 * CLIENTS;
const KINDS: [&str; 6] = ["fatigue", "mixed", "three_sets", "bouncing", "rushed", "clean_set"];

fn config(dir: &Path, url: &str, name: &str, listen: &str) -> std::path::PathBuf {
    let mut text = format!(
        "[mqtt]\nurl = \"{url}\"\ngateway_id = \"{name}\"\nbase_topic = \"{name}\"\ndiscovery = false\n\
         outbox_dir = \"{}\"\n\n[log]\nlevel = \"warn\"\n\n[web]\nlisten = \"{listen}\"\n\
         max_connections_per_client = {CLIENTS_CAP}\n\n[history]\ndatabase = \"\"\n",
        dir.join(format!("outbox-{name}")).display()
    );
    for k in 0..MATS {
        text.push_str(&format!(
            "\n[[mats]]\nid = \"mat{}\"\nsource = \"sim\"\nkind = \"{}\"\nseed = {}\nrate_hz = 200.0\n",
            k + 1,
            KINDS[k % KINDS.len()],
            3 + k
        ));
    }
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Milliseconds since the epoch of `2024-03-05T17:04:09.123Z`.
fn rfc3339_ms(t: &str) -> Option<u64> {
    flatback::wire::payload::parse_rfc3339_ms(t).map(|ms| ms as u64)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let broker = mosquitto::Broker::start();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let port = mosquitto::free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let off = spawn(&config(dir.path(), &broker.url(), "off", ""));
    let on = spawn(&config(dir.path(), &broker.url(), "on", &format!("127.0.0.1:{port}")));
    let until = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < until, "the web view never listened");
        std::thread::sleep(Duration::from_millis(20));
    }

    // 50 browsers on the floor; each notes, for every tile it is handed with
    // a new event, how long after the detector's event it arrived.
    let latencies: Arc<Mutex<Vec<u64>>> = Arc::default();
    let measuring = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let deadline = Instant::now() + WARMUP + MEASURE + Duration::from_secs(5);
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (latencies, measuring) = (latencies.clone(), measuring.clone());
            std::thread::spawn(move || {
                let mut stream = web::EventStream::open(addr, "/api/floor");
                let mut seen = std::collections::HashMap::<String, u64>::new();
                let mut mine = Vec::new();
                let mut updates = 0u64;
                while Instant::now() < deadline {
                    let Some(ev) = stream.next(Duration::from_millis(500)) else {
                        continue;
                    };
                    let now = web::epoch_ms();
                    updates += 1;
                    let v: serde_json::Value = serde_json::from_str(&ev.data).unwrap();
                    let tiles = if ev.event == "floor" { v["tiles"].clone() } else { v };
                    for t in tiles.as_array().into_iter().flatten() {
                        let (Some(seq), Some(time)) = (t["event"]["seq"].as_u64(), t["event"]["time"].as_str()) else {
                            continue;
                        };
                        let id = t["id"].as_str().unwrap_or("").to_string();
                        if seen.insert(id, seq) == Some(seq) || ev.event == "floor" {
                            continue;
                        }
                        if measuring.load(std::sync::atomic::Ordering::Relaxed) {
                            if let Some(at) = rfc3339_ms(time) {
                                mine.push(now.saturating_sub(at));
                            }
                        }
                    }
                }
                latencies.lock().unwrap().extend(mine);
                updates
            })
        })
        .collect();

    std::thread::sleep(WARMUP);
    measuring.store(true, std::sync::atomic::Ordering::Relaxed);
    let (cpu_off0, cpu_on0, t0) = (cpu_s(off.id()), cpu_s(on.id()), Instant::now());
    std::thread::sleep(MEASURE);
    let (cpu_off1, cpu_on1, wall) = (cpu_s(off.id()), cpu_s(on.id()), t0.elapsed().as_secs_f64());
    measuring.store(false, std::sync::atomic::Ordering::Relaxed);
    let (rss_off, hwm_off) = memory_mb(off.id());
    let (rss_on, hwm_on) = memory_mb(on.id());
    let metrics = web::get(addr, "/metrics").text();
    let updates: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    for mut c in [off, on] {
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let until = Instant::now() + Duration::from_secs(15);
        while c.try_wait().unwrap().is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
    }

    let pct_off = (cpu_off1 - cpu_off0) / wall * 100.0;
    let pct_on = (cpu_on1 - cpu_on0) / wall * 100.0;
    let mut l = latencies.lock().unwrap().clone();
    l.sort_unstable();
    let clients_seen = metrics
        .lines()
        .find(|l| l.starts_with("flatback_web_clients "))
        .unwrap_or("?")
        .to_string();
    println!(
        "web view: {MATS} sim mats at 200 Hz per gateway, {CLIENTS} SSE clients on the floor, {:.0} s measured",
        wall
    );
    println!("| | web off (listen = \"\") | web on, {CLIENTS} browsers | added |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| CPU, % of one core | {pct_off:.1} | {pct_on:.1} | {:+.1} |",
        pct_on - pct_off
    );
    println!(
        "| resident memory, MB (VmRSS) | {rss_off:.1} | {rss_on:.1} | {:+.1} |",
        rss_on - rss_off
    );
    println!(
        "| peak resident, MB (VmHWM) | {hwm_off:.1} | {hwm_on:.1} | {:+.1} |",
        hwm_on - hwm_off
    );
    println!("({clients_seen}; {updates} stream updates delivered in all)");
    if l.is_empty() {
        println!("latency: no event seen");
    } else {
        println!(
            "detector event -> browser stream: {} samples, p50 {} ms, p99 {} ms, max {} ms (aim: p99 < 100 ms)",
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            l[l.len() - 1]
        );
    }
}

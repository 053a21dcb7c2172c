//! Latency and throughput of the MQTT path: `cargo bench --bench mqtt`.
//!
//! A real Mosquitto on a free loopback port (as in the tests), the real
//! publisher (outbox on disk under `target/`, synced per event; rumqttc;
//! QoS 1) in this process, and a subscriber (rumqttc, QoS 1) in this
//! process too, so both ends read the same clock:
//!
//! - latency: from `MatLink::emit` (the moment the detector hands an event
//!   over) to the subscriber receiving it, at a steady 200 events/s
//!   (far more than a mat makes), p50 / p99 / max;
//! - throughput: events emitted back to back, first emit to last receipt.
//!
//! Both outbox sync modes are measured: `background` (the default) and
//! `every_event` (a device sync before each publish).
//!
//! Aim (issue 5): p99 under 5 ms. Every loop is bounded in count and time.

#[allow(dead_code)]
#[path = "../tests/common/mosquitto.rs"]
mod mosquitto;
#[allow(dead_code)]
#[path = "../tests/common/server.rs"]
mod server;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flatback::contract::event::{Event, RepEvent};
use flatback::mqtt::{publisher, MqttConfig, Options};
use flatback::outbox::{Journal, Outbox, SyncMode};
use rumqttc::{Client, Event as MqttEvent, MqttOptions, Packet, QoS};

const LATENCY_EVENTS: u64 = 2000;
const LATENCY_RATE_HZ: f64 = 200.0;
const THROUGHPUT_EVENTS: u64 = 5000;
const LIMIT: Duration = Duration::from_secs(60);

fn rep(i: u64) -> Event {
    Event::Rep(RepEvent {
        t_ms: i * 5000,
        set: 1,
        rep: i as u32,
        perfect: true,
        arched: false,
        rushed: false,
        descent_ms: 3500,
        ascent_ms: Some(1500),
        bounce: false,
        depth: None,
    })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let broker = mosquitto::Broker::start();
    for mode in [SyncMode::Background, SyncMode::EveryEvent] {
        run(&broker, mode);
    }
}

fn run(broker: &mosquitto::Broker, mode: SyncMode) {
    println!("outbox_sync = {mode:?} (outbox under target/, on this machine's disk)");
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let config = MqttConfig {
        url: broker.url(),
        gateway_id: "bench".into(),
        discovery: false,
        outbox_dir: work.path().join("outbox"),
        outbox_max_bytes: 64 << 20,
        ..MqttConfig::default()
    };
    let opts = Options::from_config(&config).unwrap();
    let (mut store, _) = Journal::open(&config.outbox_dir, config.outbox_max_bytes).unwrap();
    store.set_sync_mode(mode);
    let (gateway, mut links) = Outbox::new(store, &["m1".to_string()]);
    let link = links.remove(0);

    // Subscriber: receipt time of each seq.
    let received: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let mut o = MqttOptions::new(format!("bench-sub-{mode:?}"), "127.0.0.1", broker.port());
    o.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut connection) = Client::new(o, 100);
    let client_stop = client.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    {
        let received = received.clone();
        std::thread::spawn(move || {
            for ev in connection.iter() {
                match ev {
                    Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                        client.subscribe("flatback/bench/m1/event", QoS::AtLeastOnce).unwrap();
                    }
                    Ok(MqttEvent::Incoming(Packet::SubAck(_))) => {
                        let _ = ready_tx.send(());
                    }
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let now = Instant::now();
                        let v: serde_json::Value = serde_json::from_slice(&p.payload).unwrap();
                        received
                            .lock()
                            .unwrap()
                            .entry(v["seq"].as_u64().unwrap())
                            .or_insert(now);
                    }
                    Err(_) => break,
                    _ => {}
                }
            }
        });
    }
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("subscriber ready");

    // The publisher on its own runtime thread.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let gw = gateway.clone();
    let publisher = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(publisher::run(
            opts,
            gw,
            async {
                let _ = stop_rx.await;
            },
            false,
            None,
        ))
    });

    let wait_for = |seq: u64| {
        let until = Instant::now() + LIMIT;
        while !received.lock().unwrap().contains_key(&seq) {
            assert!(Instant::now() < until, "event {seq} never arrived");
            std::thread::sleep(Duration::from_millis(1));
        }
    };

    // Warm-up: the connection is up once one event went through.
    let mut sent: HashMap<u64, Instant> = HashMap::new();
    let t = Instant::now();
    let seq = link.emit(&rep(0)).unwrap();
    sent.insert(seq, t);
    wait_for(seq);

    // Latency at a steady rate.
    let mut append = Vec::new();
    let period = Duration::from_secs_f64(1.0 / LATENCY_RATE_HZ);
    let start = Instant::now();
    let mut last = seq;
    for i in 1..=LATENCY_EVENTS {
        let due = start + period * i as u32;
        if let Some(d) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        let t = Instant::now();
        last = link.emit(&rep(i)).unwrap();
        append.push(t.elapsed().as_secs_f64() * 1e3);
        sent.insert(last, t);
        if start.elapsed() > LIMIT {
            break;
        }
    }
    wait_for(last);
    let got = received.lock().unwrap().clone();
    let mut lat: Vec<f64> = sent
        .iter()
        .filter(|(s, _)| **s > seq)
        .map(|(s, t)| got[s].duration_since(*t).as_secs_f64() * 1e3)
        .collect();
    lat.sort_by(f64::total_cmp);
    append.sort_by(f64::total_cmp);
    println!(
        "  latency emit -> subscriber, {} events at {LATENCY_RATE_HZ} /s: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (aim: p99 < 5 ms)",
        lat.len(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().unwrap()
    );
    println!(
        "  of which MatLink::emit (outbox append{}): p50 {:.2} ms, p99 {:.2} ms",
        if mode == SyncMode::EveryEvent {
            " + fdatasync"
        } else {
            ""
        },
        percentile(&append, 0.5),
        percentile(&append, 0.99)
    );

    // Throughput: back to back.
    let start = Instant::now();
    let mut first = 0;
    for i in 0..THROUGHPUT_EVENTS {
        let s = link.emit(&rep(i)).unwrap();
        if i == 0 {
            first = s;
        }
        last = s;
        if start.elapsed() > LIMIT {
            break;
        }
    }
    let emitted = start.elapsed();
    wait_for(last);
    let n = last - first + 1;
    let total = start.elapsed();
    println!(
        "  throughput: {n} events back to back: {:.0} events/s end to end ({:.0} events/s into the outbox)",
        n as f64 / total.as_secs_f64(),
        n as f64 / emitted.as_secs_f64()
    );
    let _ = stop_tx.send(());
    let _ = publisher.join();
    let _ = client_stop.try_disconnect();
}

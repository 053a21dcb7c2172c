//! `flatback demo`: the whole path on any machine. Simulated mats (different
//! people and exercises, read through emulated ADCs) run through the real
//! detector and the real publisher to a real MQTT broker, and the coach's
//! view watches them on that broker.
//!
//! The broker is the one given (`--broker`), else a Mosquitto on localhost
//! if one answers, else a small broker embedded in this process, so the demo
//! needs nothing installed.
//!
//! The gateway serves its web view too, on a free local port (or `--web
//! ADDR`), with a token made for the run: the address printed carries it
//! (`#token=`, which never leaves the browser), so the buttons work.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::broker::{self, Chosen};
use crate::cmd::cli::DemoArgs;
use crate::config::{Config, MatEntry, MatSourceKind};
use crate::daemon::{RunOptions, Stop};
use crate::watch::WatchOptions;

/// What the demo's mats do, in turn: a different exercise (and seed, so a
/// different person) on each.
const KINDS: [&str; 8] = [
    "mixed",
    "fatigue",
    "three_sets",
    "bouncing",
    "bent_knee",
    "single_leg",
    "rushed",
    "two_people",
];

/// The demo's configuration: `mats` simulated mats publishing to `url`, the
/// outbox in `outbox`.
pub fn config(mats: usize, url: &str, outbox: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.mqtt.url = url.to_string();
    config.mqtt.gateway_id = "demo".into();
    config.mqtt.gateway_name = "flatback demo".into();
    config.mqtt.outbox_dir = outbox.to_path_buf();
    config.mqtt.discovery_resend_max_s = 1.0;
    // The demo's history lives and dies with its outbox.
    config.history.database = format!("sqlite:{}", outbox.with_file_name("history.db").display());
    // The web view's socket is bound by `run` (a free port: several demos,
    // and the tests', share a machine's ports).
    config.web.listen = String::new();
    config.mats = (0..mats)
        .map(|k| MatEntry {
            id: format!("mat{}", k + 1),
            source: MatSourceKind::Sim,
            kind: KINDS[k % KINDS.len()].into(),
            seed: Some(11 + 7 * k as u64),
            rate_hz: 200.0,
            ..MatEntry::default()
        })
        .collect();
    config
}

/// A token for this run only: 16 random bytes in hex.
fn demo_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("/dev/urandom, for the demo's web token")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub fn run(opts: &DemoArgs) -> Result<()> {
    if !(1..=16).contains(&opts.mats) {
        bail!("--mats {}: 1 to 16", opts.mats);
    }
    if opts.duration.is_some_and(|d| !(d.is_finite() && d > 0.0)) {
        bail!("--duration: must be a positive number of seconds");
    }
    let chosen = broker::choose(
        opts.broker.as_deref(),
        broker::LOCAL_BROKER_URL,
        Duration::from_millis(400),
    )
    .context("starting the embedded MQTT broker")?;
    eprintln!("flatback demo: {}", chosen.describe());
    let state = tempfile::Builder::new()
        .prefix("flatback-demo-")
        .tempdir()
        .context("a temporary directory for the demo's outbox")?;
    let mut config = config(opts.mats, &chosen.url(), &state.path().join("outbox"));
    let web = std::net::TcpListener::bind(&opts.web).with_context(|| format!("--web {}: cannot listen", opts.web))?;
    let web_address = web.local_addr().context("the web view's address")?;
    let token = demo_token()?;
    let token_file = state.path().join("web-token");
    std::fs::write(&token_file, format!("{token}\n")).context("the demo's web token")?;
    config.web.listen = web_address.to_string();
    config.web.token_file = Some(token_file);
    super::check_built(&config)?;
    if let Chosen::Embedded { .. } = &chosen {
        eprintln!(
            "flatback demo: watch it from another terminal with: flatback watch --broker {}",
            chosen.url()
        );
    }
    let host = match web_address.ip() {
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    eprintln!(
        "flatback demo: the coach's web view (its buttons work from this link): http://{host}:{}/#token={token}",
        web_address.port()
    );
    let ids: Vec<String> = config.mats().into_iter().map(|m| m.id).collect();
    eprintln!(
        "flatback demo: {} simulated mats ({}) at {}x real time{}",
        ids.len(),
        config
            .mats
            .iter()
            .map(|m| format!("{} {}", m.id, m.kind))
            .collect::<Vec<_>>()
            .join(", "),
        opts.speed,
        opts.duration.map_or(String::new(), |d| format!(" for {d} s"))
    );

    // The coach's view, on the same broker, on a thread of its own.
    let stop = Arc::new(AtomicBool::new(false));
    let watch = WatchOptions {
        mqtt: config.mqtt.clone(),
        arch_threshold: config.detector.arch_contact,
        bell: false,
        plain: opts.plain || !std::io::stdout().is_terminal(),
    };
    let viewer = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("coach-view".into())
            .spawn(move || {
                let r = crate::watch::run_until(&watch, &stop);
                // `q` in the dashboard ends the demo too.
                stop.store(true, Ordering::Relaxed);
                r
            })
            .context("starting the coach's view")?
    };

    let run = RunOptions {
        speed: opts.speed,
        stop: Stop {
            after: opts.duration.map(Duration::from_secs_f64),
            flag: Some(stop.clone()),
        },
        exit_when_done: false,
        web_listener: Some(Arc::new(web)),
    };
    let result = crate::daemon::run(&config, &run, &crate::daemon::systemd::Notifier::disabled());
    // A moment for the view to show the last events and the mats going
    // offline, then it stops.
    if !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(500));
    }
    stop.store(true, Ordering::Relaxed);
    let viewed = viewer
        .join()
        .map_err(|_| anyhow::anyhow!("the coach's view panicked"))?;
    drop(chosen);
    result?;
    viewed
}

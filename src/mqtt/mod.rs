//! MQTT and Home Assistant: topics, payloads, discovery, commands, the
//! outbox and the publisher.
//!
//! - [`config`]: the `[mqtt]` section, the broker URL, credentials;
//! - [`topics`]: every topic name (pure);
//! - [`payload`]: event envelope, state JSON (pure);
//! - [`discovery`]: Home Assistant discovery configs (pure);
//! - [`commands`]: command parsing and validation (pure);
//! - [`outbox`]: the on-disk queue of events, crash-safe and bounded;
//! - [`tls`]: rustls (ring) client configuration;
//! - [`publisher`]: the rumqttc event loop, delivery, state, commands;
//! - [`purge`]: removes this gateway's retained discovery configs.
//!
//! [`publish`] runs a gateway whose mats are fed by any frame sources
//! (`flatback publish` uses the simulator).

pub mod commands;
pub mod config;
pub mod discovery;
pub mod outbox;
pub mod payload;
pub mod publisher;
pub mod purge;
pub mod tls;
pub mod topics;

pub use config::MqttConfig;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::detector::DetectorConfig;
use crate::frame::FrameSource;
use publisher::{Gateway, MatLink, Options};

/// A mat to publish: its id and where its frames come from.
pub struct MatSource {
    pub id: String,
    pub source: Box<dyn FrameSource + Send>,
}

/// Runs a gateway: each mat's source and detector on a thread of its own,
/// the publisher on tokio, until SIGTERM or Ctrl-C (or, with
/// `exit_when_done`, until every source has ended and the outbox is empty).
pub fn publish(mqtt: &MqttConfig, detector: &DetectorConfig, mats: Vec<MatSource>, exit_when_done: bool) -> Result<()> {
    let ids: Vec<String> = mats.iter().map(|m| m.id.clone()).collect();
    let bodies = mats
        .into_iter()
        .map(|m| {
            let detector = detector.clone();
            let mut source = m.source;
            let body: MatBody = Box::new(move |link: MatLink, stop: Arc<AtomicBool>, _alive: Arc<AtomicU64>| {
                match crate::mat::run(source.as_mut(), &detector, &link, &stop) {
                    Ok(run) => tracing::info!(
                        mat = link.id(),
                        frames = run.frames,
                        events = run.events,
                        "source ended"
                    ),
                    Err(e) => tracing::error!(mat = link.id(), "source failed: {e}"),
                }
            });
            body
        })
        .collect();
    serve(
        mqtt,
        ids,
        bodies,
        exit_when_done,
        Stop::default(),
        &crate::systemd::Notifier::disabled(),
    )
}

/// When to stop besides SIGTERM and SIGINT.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// After this long (wall clock).
    pub after: Option<std::time::Duration>,
    /// When this flag is set (looked at every 100 ms).
    pub flag: Option<Arc<AtomicBool>>,
}

impl Stop {
    async fn wait(&self) {
        let started = tokio::time::Instant::now();
        loop {
            if self.flag.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
                || self.after.is_some_and(|d| started.elapsed() >= d)
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

/// What runs a mat on its own thread: its link to the publisher, the stop
/// flag, and a counter to bump whenever it makes progress (a frame, a retry)
/// for the watchdog.
pub type MatBody = Box<dyn FnOnce(MatLink, Arc<AtomicBool>, Arc<AtomicU64>) + Send>;

/// Runs a gateway whose mats are run by `bodies` (one per id, each on a
/// thread of its own) and the publisher on tokio, until SIGTERM or Ctrl-C,
/// or `stop` says so, or with `exit_when_done` until every mat has finished
/// and the outbox is empty. Tells systemd (`notifier`): ready once every mat made progress,
/// the watchdog while every mat keeps making it, stopping at the end.
pub fn serve(
    mqtt: &MqttConfig,
    ids: Vec<String>,
    bodies: Vec<MatBody>,
    exit_when_done: bool,
    stop_when: Stop,
    notifier: &crate::systemd::Notifier,
) -> Result<()> {
    for (i, id) in ids.iter().enumerate() {
        config::check_id("mat id", id).map_err(anyhow::Error::msg)?;
        if ids[..i].contains(id) {
            anyhow::bail!("mat id \"{id}\" given twice");
        }
    }
    let opts = Options::from_config(mqtt).map_err(anyhow::Error::msg)?;
    let (mut outbox, recovery) = outbox::Outbox::open(&mqtt.outbox_dir, mqtt.outbox_max_bytes)
        .with_context(|| format!("outbox {} (mqtt.outbox_dir)", mqtt.outbox_dir.display()))?;
    outbox.set_sync_mode(mqtt.outbox_sync);
    if recovery.pending > 0 || recovery.truncated_bytes > 0 {
        tracing::info!(
            pending = recovery.pending,
            truncated_bytes = recovery.truncated_bytes,
            "outbox: events from a previous run will be delivered first"
        );
    }
    let (gateway, links) = Gateway::new(outbox, &ids);
    let stop = Arc::new(AtomicBool::new(false));
    let alive: Vec<Arc<AtomicU64>> = ids.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut threads = Vec::new();
    for ((body, link), (id, alive)) in bodies.into_iter().zip(links).zip(ids.iter().zip(&alive)) {
        let (stop, alive) = (stop.clone(), alive.clone());
        let handle = std::thread::Builder::new()
            .name(format!("mat-{id}"))
            .spawn(move || {
                body(link, stop, alive.clone());
                // Done: nothing more to watch on this mat.
                alive.store(u64::MAX, Ordering::Relaxed);
            })
            .context("starting a mat thread")?;
        threads.push(handle);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let finished = runtime.block_on(async {
        let stop_mats = stop.clone();
        let watchdog = tokio::spawn(supervise(notifier.clone_handle(), alive, ids.len()));
        let stopping = notifier.clone_handle();
        let shutdown = async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
                _ = stop_when.wait() => {}
            }
            tracing::info!("stopping");
            stopping.stopping("stopping: flushing the outbox");
            // The mats stop first, so that their last events are flushed too.
            stop_mats.store(true, Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads {
                    let _ = t.join();
                }
            })
            .await;
        };
        let finished = publisher::run(opts, gateway, shutdown, exit_when_done).await;
        watchdog.abort();
        finished
    });
    stop.store(true, Ordering::Relaxed);
    if finished.queued > 0 {
        tracing::warn!(
            queued = finished.queued,
            "events left in the outbox: the next run delivers them"
        );
    }
    Ok(())
}

/// Ready once every mat has made progress (its first frame, or its first
/// attempt at opening a failing sensor: a sensor fault never holds up the
/// service); then the watchdog, pinged only while every mat keeps making
/// progress, so a stalled pipeline gets the service restarted.
async fn supervise(notifier: crate::systemd::Notifier, alive: Vec<Arc<AtomicU64>>, mats: usize) {
    let look = notifier
        .watchdog_interval()
        .unwrap_or(std::time::Duration::from_secs(1))
        .min(std::time::Duration::from_secs(1));
    let mut last: Vec<u64> = vec![0; mats];
    let mut ready = false;
    let mut since_ping = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(look).await;
        let now: Vec<u64> = alive.iter().map(|a| a.load(Ordering::Relaxed)).collect();
        if !ready && now.iter().all(|&n| n > 0) {
            notifier.ready(&format!("{mats} mats running"));
            tracing::info!(mats, "ready");
            ready = true;
        }
        if let Some(interval) = notifier.watchdog_interval() {
            let all_moved = now.iter().zip(&last).all(|(&n, &l)| n > l || n == u64::MAX);
            if ready && since_ping.elapsed() >= interval / 2 {
                if all_moved {
                    notifier.watchdog();
                    last = now;
                    since_ping = tokio::time::Instant::now();
                } else {
                    tracing::warn!("a mat made no progress since the last watchdog ping: not pinging");
                }
            }
        }
    }
}

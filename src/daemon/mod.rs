//! The daemon owns the process: the configuration's mats, a thread per mat,
//! the async runtime, signals, the systemd watchdog. `flatback run` is it;
//! `flatback publish` and `flatback demo` build a configuration and run it.
//!
//! - [`supervise`]: one mat on its own thread: its source ([`crate::sources`])
//!   opened, fed through its [`pipeline`], opened again with backoff after a
//!   failure (the mat is unavailable meanwhile, the person's reference, set
//!   and counters survive);
//! - [`config_checks`]: what a configuration must hold beyond its sections' own
//!   checks (`flatback config check` runs it);
//! - [`pipeline`]: frames through the detector, events into the outbox, the
//!   mat's state, commands;
//! - [`watchdog`]: READY once every mat made progress, WATCHDOG while every
//!   mat keeps making it;
//! - [`signals`]: the one wait for SIGTERM and SIGINT;
//! - [`systemd`]: sd_notify and journald detection;
//! - [`cue`]: the cue at the mat, driven by its pipeline on the frame: a
//!   buzzer when the back lifts, a green/red LED, tempo ticks (GPIO);
//! - [`metrics`]: the gateway's figures (Prometheus' text, `/health`'s
//!   judgement), bumped by the mats, the outbox and the publisher;
//! - [`backoff`]: the one backoff of every retry (sources, the publisher,
//!   the history writer, the watcher), with jitter;
//! - [`repeated`]: warnings that repeat, logged once then as a count.
//!
//! The mats hand events to the outbox ([`crate::outbox`]); the publisher
//! ([`crate::mqtt::publisher`]) takes them to the broker on tokio.

pub mod backoff;
pub mod config_checks;
pub mod cue;
pub mod metrics;
pub mod pipeline;
pub mod repeated;
pub mod signals;
pub mod supervise;
pub mod systemd;
pub mod watchdog;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::Config;
use crate::mqtt::Options;
use crate::outbox::{Journal, Outbox};
use systemd::Notifier;

/// How the daemon was asked to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Simulated and replayed mats run this many times faster than real time.
    pub speed: f64,
    /// When to stop besides SIGTERM and SIGINT.
    pub stop: Stop,
    /// Stop once every mat's source has ended and every event is delivered.
    pub exit_when_done: bool,
    /// The web view's socket, bound already (`flatback demo` binds a free
    /// port so that it can print the address before the run starts);
    /// `None`: `[web] listen` is bound.
    pub web_listener: Option<Arc<std::net::TcpListener>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            speed: 1.0,
            stop: Stop::default(),
            exit_when_done: false,
            web_listener: None,
        }
    }
}

/// When to stop besides SIGTERM and SIGINT.
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// After this long (wall clock).
    pub after: Option<Duration>,
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
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The history's store (`None`: `[history] database = ""`). A SQLite file
/// is opened here so that a bad path stops the daemon at start; PostgreSQL
/// may be away at start: the writer waits for it.
fn history_handle(config: &Config) -> Result<Option<crate::history::Handle>> {
    use crate::config::history::Database;
    let database = config.history.database().map_err(crate::config::ConfigError::from)?;
    let Some(handle) = crate::history::Handle::new(&config.history) else {
        return Ok(None);
    };
    if let Database::Sqlite(_) = database {
        handle
            .refresh_roster()
            .with_context(|| format!("history.database \"{}\"", config.history.database))?;
    }
    Ok(Some(handle))
}

/// Runs the gateway: each mat on a thread of its own, the publisher on
/// tokio, until SIGTERM or SIGINT (or `options` says so). Tells systemd
/// (`notifier`) when it is ready, that it is alive, and that it stops.
pub fn run(config: &Config, options: &RunOptions, notifier: &Notifier) -> Result<()> {
    let mats = config.mats();
    let ids: Vec<String> = mats.iter().map(|m| m.id.clone()).collect();
    let opts = Options::from_config(&config.mqtt).map_err(crate::config::ConfigError::from)?;
    let mqtt = &config.mqtt;
    let (mut store, recovery) = Journal::open(&mqtt.outbox_dir, mqtt.outbox_max_bytes)
        .with_context(|| format!("outbox {} (mqtt.outbox_dir)", mqtt.outbox_dir.display()))?;
    store.set_sync_mode(mqtt.outbox_sync);
    let history = history_handle(config)?;
    if history.is_some() {
        // Before any event: none leaves the outbox before the history has it.
        store.follow_history();
    }
    if recovery.pending > 0 || recovery.truncated_bytes > 0 {
        tracing::info!(
            pending = recovery.pending,
            truncated_bytes = recovery.truncated_bytes,
            "outbox: events from a previous run will be delivered first"
        );
    }
    tracing::info!(mats = ?ids, broker = %mqtt.url, "flatback running");
    let (outbox, links) = Outbox::new(store, &ids);
    let stop = Arc::new(AtomicBool::new(false));
    let history_stop = Arc::new(AtomicBool::new(false));
    let history_web = history.clone();
    let closing = outbox.clone();
    // Home Assistant's view of the athletes: the roster for the selects and,
    // with [athletes] home_assistant, their figures.
    let (athletes_ha, athletes_follower) = match history.clone() {
        Some(handle) => {
            let (tx, rx) = tokio::sync::watch::channel(crate::wire::athlete_entities::AthletesView {
                roster: handle.roster(),
                ..Default::default()
            });
            let (athletes, outbox, stop) = (config.athletes.clone(), outbox.clone(), history_stop.clone());
            let thread = std::thread::Builder::new()
                .name("history-ha".into())
                .spawn(move || crate::history::homeassistant::follow(handle, athletes, outbox, tx, stop))
                .context("starting the athletes' follower")?;
            (Some(rx), Some(thread))
        }
        None => (None, None),
    };
    let history_writer = match history {
        Some(history) => {
            let (outbox, gateway, stop) = (
                outbox.clone(),
                crate::mqtt::options::gateway_id(mqtt),
                history_stop.clone(),
            );
            Some(
                std::thread::Builder::new()
                    .name("history".into())
                    .spawn(move || crate::history::writer::run(outbox, gateway, history, stop))
                    .context("starting the history writer")?,
            )
        }
        None => None,
    };
    let alive: Vec<Arc<AtomicU64>> = ids.iter().map(|_| Arc::new(AtomicU64::new(0))).collect();
    let mut threads = Vec::new();
    for ((mat, link), alive) in mats.into_iter().zip(links).zip(&alive) {
        let (config, stop, alive, speed) = (config.clone(), stop.clone(), alive.clone(), options.speed);
        let handle = std::thread::Builder::new()
            .name(format!("mat-{}", mat.id))
            .spawn(move || {
                supervise::mat(&config, &mat, speed, &link, &stop, &alive);
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
        // The web view: a gateway runs without it rather than not at all.
        let web = match crate::web::start(config, &opts, &outbox, history_web, options.web_listener.as_deref()).await {
            Ok(web) => web,
            Err(e) => {
                tracing::error!("web view off: {e:#}");
                None
            }
        };
        #[cfg(feature = "plot")]
        if let Some(web) = web.as_ref().filter(|_| config.web.pictures_per_mat > 0) {
            let (tx, rx) = std::sync::mpsc::sync_channel(crate::web::pictures::QUEUE);
            outbox.record_sessions(tx);
            let (pictures, detector) = (web.pictures.clone(), config.detector.clone());
            let _ = std::thread::Builder::new()
                .name("web-pictures".into())
                .spawn(move || crate::web::pictures::draw_sessions(rx, pictures, detector));
        }
        let watchdog = tokio::spawn(watchdog::run(notifier.clone_handle(), alive));
        let stopping = notifier.clone_handle();
        let stop_mats = stop.clone();
        let stop_when = options.stop.clone();
        let shutdown = async move {
            tokio::select! {
                _ = signals::terminated() => {}
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
        let finished = crate::mqtt::publisher::run(opts, outbox, shutdown, options.exit_when_done, athletes_ha).await;
        watchdog.abort();
        drop(web);
        finished
    });
    stop.store(true, Ordering::Relaxed);
    // The mats are done: the writer writes what is left, then returns.
    history_stop.store(true, Ordering::Relaxed);
    if let Some(writer) = history_writer {
        let _ = writer.join();
        // The publisher closed the outbox before the writer's last batch:
        // its head (what both have) is written again, or a restart would
        // publish those events a second time.
        if let Err(e) = closing.journal().close() {
            tracing::warn!("outbox: cannot close cleanly: {e}");
        }
    }
    if let Some(follower) = athletes_follower {
        let _ = follower.join();
    }
    if finished.queued > 0 {
        tracing::warn!(
            queued = finished.queued,
            "events left in the outbox: the next run delivers them"
        );
    }
    Ok(())
}

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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::detector::DetectorConfig;
use crate::frame::FrameSource;
use publisher::{Gateway, Options};

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
    let mut threads = Vec::new();
    for (m, link) in mats.into_iter().zip(links) {
        let stop = stop.clone();
        let detector = detector.clone();
        let mut source = m.source;
        let handle = std::thread::Builder::new()
            .name(format!("mat-{}", m.id))
            .spawn(move || {
                let r = crate::mat::run(source.as_mut(), &detector, &link, &stop);
                match &r {
                    Ok(run) => tracing::info!(
                        mat = link.id(),
                        frames = run.frames,
                        events = run.events,
                        "source ended"
                    ),
                    Err(e) => tracing::error!(mat = link.id(), "source failed: {e}"),
                }
                r
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
        let shutdown = async move {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
            }
            tracing::info!("stopping");
            // The mats stop first, so that their last events are flushed too.
            stop_mats.store(true, Ordering::Relaxed);
            let _ = tokio::task::spawn_blocking(move || {
                for t in threads {
                    let _ = t.join();
                }
            })
            .await;
        };
        publisher::run(opts, gateway, shutdown, exit_when_done).await
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

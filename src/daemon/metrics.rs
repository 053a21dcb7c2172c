//! The gateway's figures as atomics: the mats' pipelines, the outbox and the
//! publisher bump them, the web view renders them (`/metrics`, Prometheus'
//! text format) and judges the gateway's health from them (`/health`).
//!
//! Nothing here locks: a bump is one relaxed atomic operation, so the
//! per-frame path pays a couple of them and nothing else.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::contract::event::Event;

/// Event types, in the order of their counters.
pub const EVENT_TYPES: [&str; 6] = ["session", "arch", "rep", "set", "progress", "health"];

fn event_index(e: &Event) -> usize {
    match e {
        Event::Session { .. } => 0,
        Event::Arch(_) => 1,
        Event::Rep(_) => 2,
        Event::Set(_) => 3,
        Event::Progress { .. } => 4,
        Event::Health { .. } => 5,
    }
}

/// Milliseconds on the process's monotonic clock (from its first use), so
/// that an instant fits an atomic. 0 means never.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// One mat's figures.
#[derive(Debug, Default)]
pub struct MatMetrics {
    pub id: String,
    /// Frames through the detector.
    pub frames: AtomicU64,
    /// Sampler overruns (frames dropped because the ring was full).
    pub overruns: AtomicU64,
    /// Events handed to the outbox, by type ([`EVENT_TYPES`]).
    pub events: [AtomicU64; 6],
    /// When the last frame went through ([`now_ms`]; 0: none yet).
    pub last_frame_ms: AtomicU64,
    /// The mat delivers frames (its availability topic says `online`).
    pub available: AtomicBool,
    /// Source failures (the mat went unavailable).
    pub source_failures: AtomicU64,
    /// The mat's source has ended for good.
    pub finished: AtomicBool,
    /// Sampler wake-up jitter, nanoseconds (mats read by the sampler only).
    pub jitter_p50_ns: AtomicU64,
    pub jitter_p99_ns: AtomicU64,
    pub has_sampler: AtomicBool,
}

impl MatMetrics {
    /// One frame went through the detector; returns [`now_ms`].
    #[inline]
    pub fn frame(&self) -> u64 {
        let now = now_ms();
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.last_frame_ms.store(now, Ordering::Relaxed);
        now
    }

    pub fn event(&self, e: &Event) {
        self.events[event_index(e)].fetch_add(1, Ordering::Relaxed);
    }

    /// The sampler's figures, read now and then.
    pub fn sampler(&self, overruns: u64, jitter_p50_us: f64, jitter_p99_us: f64) {
        self.has_sampler.store(true, Ordering::Relaxed);
        self.overruns.store(overruns, Ordering::Relaxed);
        self.jitter_p50_ns
            .store((jitter_p50_us * 1000.0) as u64, Ordering::Relaxed);
        self.jitter_p99_ns
            .store((jitter_p99_us * 1000.0) as u64, Ordering::Relaxed);
    }
}

/// Every figure of the gateway.
#[derive(Debug, Default)]
pub struct Registry {
    pub mats: Vec<MatMetrics>,
    /// Events waiting for the broker, and dropped when the outbox was full
    /// (set by the outbox on each change).
    pub outbox_queued: AtomicU64,
    pub outbox_dropped: AtomicU64,
    /// Events the outbox could not store (a disk error): lost.
    pub outbox_failures: AtomicU64,
    /// The last event handed to the outbox was stored (true before any).
    pub outbox_accepting: AtomicBool,
    /// The publisher is connected to the broker.
    pub mqtt_connected: AtomicBool,
    /// Connections made after the first.
    pub mqtt_connections: AtomicU64,
    /// The web view's own: browsers following the live updates.
    pub web_clients: AtomicU64,
    pub web_requests: AtomicU64,
    /// Connections open (browsers, scrapers, requests under way).
    pub web_connections: AtomicU64,
    pub web_refused: AtomicU64,
    /// The athletes' history: events written, failed writes (retried),
    /// events waiting for it, and events a full outbox dropped before the
    /// history had them.
    pub history_written: AtomicU64,
    pub history_failures: AtomicU64,
    pub history_waiting: AtomicU64,
    pub history_dropped: AtomicU64,
    /// Connections refused because their client address had
    /// `max_connections_per_client` open.
    pub web_refused_per_client: AtomicU64,
    /// Commands refused (429) because their address sent too many wrong
    /// tokens in the last minute.
    pub web_rate_limited: AtomicU64,
}

/// What `/health` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub ok: bool,
    /// One line per problem (none when ok).
    pub problems: Vec<String>,
}

/// A mat that has delivered no frame for this long is not healthy.
pub const FRAMES_STALE: Duration = Duration::from_secs(2);

impl Registry {
    pub fn new(mats: &[String]) -> Registry {
        Registry {
            mats: mats
                .iter()
                .map(|id| MatMetrics {
                    id: id.clone(),
                    ..MatMetrics::default()
                })
                .collect(),
            outbox_accepting: AtomicBool::new(true),
            ..Registry::default()
        }
    }

    pub fn mat(&self, id: &str) -> Option<&MatMetrics> {
        self.mats.iter().find(|m| m.id == id)
    }

    /// Healthy while every mat delivers frames (available, the last one
    /// within [`FRAMES_STALE`] of `now_ms`) and the outbox accepts events.
    /// A mat whose source ended for good (a replay without repeat) is not
    /// counted against it.
    pub fn health(&self, now_ms: u64) -> Health {
        let mut problems = Vec::new();
        for m in &self.mats {
            if m.finished.load(Ordering::Relaxed) {
                continue;
            }
            let last = m.last_frame_ms.load(Ordering::Relaxed);
            if last == 0 {
                problems.push(format!("mat {}: no frame yet", m.id));
            } else if !m.available.load(Ordering::Relaxed) {
                problems.push(format!(
                    "mat {}: its source failed ({} failures so far); no frames",
                    m.id,
                    m.source_failures.load(Ordering::Relaxed)
                ));
            } else {
                let age = now_ms.saturating_sub(last);
                if age > FRAMES_STALE.as_millis() as u64 {
                    problems.push(format!("mat {}: no frame for {:.1} s", m.id, age as f64 / 1000.0));
                }
            }
        }
        if !self.outbox_accepting.load(Ordering::Relaxed) {
            problems.push(format!(
                "outbox: cannot store events ({} lost)",
                self.outbox_failures.load(Ordering::Relaxed)
            ));
        }
        Health {
            ok: problems.is_empty(),
            problems,
        }
    }

    /// Prometheus' text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let r = Ordering::Relaxed;
        let mut family = |name: &str, kind: &str, help: &str, samples: &mut dyn Iterator<Item = (String, String)>| {
            let _ = writeln!(out, "# HELP flatback_{name} {help}");
            let _ = writeln!(out, "# TYPE flatback_{name} {kind}");
            for (labels, value) in samples {
                if labels.is_empty() {
                    let _ = writeln!(out, "flatback_{name} {value}");
                } else {
                    let _ = writeln!(out, "flatback_{name}{{{labels}}} {value}");
                }
            }
        };
        let mat = |m: &MatMetrics| format!("mat=\"{}\"", escape(&m.id));
        family(
            "frames_total",
            "counter",
            "Frames through the detector, per mat.",
            &mut self.mats.iter().map(|m| (mat(m), m.frames.load(r).to_string())),
        );
        family(
            "sampler_overruns_total",
            "counter",
            "Frames the sampler dropped because its ring was full, per mat.",
            &mut self.mats.iter().map(|m| (mat(m), m.overruns.load(r).to_string())),
        );
        family(
            "events_total",
            "counter",
            "Events handed to the outbox, per mat and type.",
            &mut self.mats.iter().flat_map(|m| {
                EVENT_TYPES.iter().enumerate().map(move |(i, t)| {
                    (
                        format!("mat=\"{}\",type=\"{t}\"", escape(&m.id)),
                        m.events[i].load(Ordering::Relaxed).to_string(),
                    )
                })
            }),
        );
        family(
            "mat_available",
            "gauge",
            "1 while the mat delivers frames.",
            &mut self
                .mats
                .iter()
                .map(|m| (mat(m), u8::from(m.available.load(r)).to_string())),
        );
        family(
            "mat_source_failures_total",
            "counter",
            "Failures of the mat's source (it went unavailable), per mat.",
            &mut self
                .mats
                .iter()
                .map(|m| (mat(m), m.source_failures.load(r).to_string())),
        );
        family(
            "sampler_jitter_seconds",
            "gauge",
            "The sampler's wake-up time past its deadline, per mat read by the sampler (quantiles since it started).",
            &mut self
                .mats
                .iter()
                .filter(|m| m.has_sampler.load(Ordering::Relaxed))
                .flat_map(|m| {
                    [("0.5", &m.jitter_p50_ns), ("0.99", &m.jitter_p99_ns)].map(|(q, v)| {
                        (
                            format!("mat=\"{}\",quantile=\"{q}\"", escape(&m.id)),
                            seconds(v.load(Ordering::Relaxed)),
                        )
                    })
                }),
        );
        family(
            "outbox_queued_events",
            "gauge",
            "Events in the outbox waiting for the broker's acknowledgement.",
            &mut std::iter::once((String::new(), self.outbox_queued.load(r).to_string())),
        );
        family(
            "outbox_dropped_events_total",
            "counter",
            "Undelivered events dropped because the outbox was full.",
            &mut std::iter::once((String::new(), self.outbox_dropped.load(r).to_string())),
        );
        family(
            "outbox_store_failures_total",
            "counter",
            "Events the outbox could not store (lost).",
            &mut std::iter::once((String::new(), self.outbox_failures.load(r).to_string())),
        );
        for (name, kind, help, value) in [
            (
                "history_written_events_total",
                "counter",
                "Events written to the athletes' history.",
                &self.history_written,
            ),
            (
                "history_write_failures_total",
                "counter",
                "Writes to the history that failed (retried from the outbox).",
                &self.history_failures,
            ),
            (
                "history_waiting_events",
                "gauge",
                "Events kept in the outbox until the history has them.",
                &self.history_waiting,
            ),
            (
                "history_dropped_events_total",
                "counter",
                "Events a full outbox dropped before the history had them.",
                &self.history_dropped,
            ),
        ] {
            family(
                name,
                kind,
                help,
                &mut std::iter::once((String::new(), value.load(r).to_string())),
            );
        }
        family(
            "mqtt_connected",
            "gauge",
            "1 while the publisher is connected to the broker.",
            &mut std::iter::once((String::new(), u8::from(self.mqtt_connected.load(r)).to_string())),
        );
        family(
            "mqtt_reconnects_total",
            "counter",
            "Connections to the broker after the first.",
            &mut std::iter::once((
                String::new(),
                self.mqtt_connections.load(r).saturating_sub(1).to_string(),
            )),
        );
        family(
            "web_clients",
            "gauge",
            "Browsers following the live updates.",
            &mut std::iter::once((String::new(), self.web_clients.load(r).to_string())),
        );
        family(
            "web_requests_total",
            "counter",
            "HTTP requests served.",
            &mut std::iter::once((String::new(), self.web_requests.load(r).to_string())),
        );
        family(
            "web_connections",
            "gauge",
            "Connections open to the web view.",
            &mut std::iter::once((String::new(), self.web_connections.load(r).to_string())),
        );
        family(
            "web_refused_total",
            "counter",
            "Connections refused because max_connections were open.",
            &mut std::iter::once((String::new(), self.web_refused.load(r).to_string())),
        );
        family(
            "web_refused_per_client_total",
            "counter",
            "Connections refused because their client address had max_connections_per_client open.",
            &mut std::iter::once((String::new(), self.web_refused_per_client.load(r).to_string())),
        );
        family(
            "web_rate_limited_total",
            "counter",
            "Commands refused (429) because their address sent 10 wrong tokens within a minute.",
            &mut std::iter::once((String::new(), self.web_rate_limited.load(r).to_string())),
        );
        out
    }
}

fn seconds(ns: u64) -> String {
    format!("{}", ns as f64 / 1e9)
}

/// A label value escaped as the text format says (backslash, quote, newline).
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::Phase;

    #[test]
    fn health_needs_frames_from_every_mat_and_an_outbox_that_takes_events() {
        let r = Registry::new(&["a".into(), "b".into()]);
        let h = r.health(10_000);
        assert!(!h.ok);
        assert_eq!(h.problems, ["mat a: no frame yet", "mat b: no frame yet"]);
        for m in &r.mats {
            m.frame();
            m.available.store(true, Ordering::Relaxed);
        }
        let now = now_ms();
        assert!(r.health(now).ok, "{:?}", r.health(now));
        assert!(!r.health(now + 2_500).ok, "stale frames");
        r.mats[1].available.store(false, Ordering::Relaxed);
        let h = r.health(now);
        assert_eq!(h.problems.len(), 1);
        assert!(h.problems[0].starts_with("mat b: its source failed"), "{h:?}");
        r.mats[1].finished.store(true, Ordering::Relaxed);
        assert!(r.health(now).ok, "a finished mat is not waited for");
        r.outbox_accepting.store(false, Ordering::Relaxed);
        assert!(r.health(now).problems[0].starts_with("outbox"));
    }

    #[test]
    fn renders_every_family_with_labels() {
        let r = Registry::new(&["mat\"1".into()]);
        r.mats[0].event(&Event::Session {
            t_ms: 0,
            phase: Phase::Start,
        });
        r.mats[0].frame();
        r.mats[0].sampler(3, 20.0, 70.0);
        r.mqtt_connections.store(3, Ordering::Relaxed);
        let text = r.render();
        assert!(text.contains("flatback_frames_total{mat=\"mat\\\"1\"} 1\n"), "{text}");
        assert!(text.contains("flatback_events_total{mat=\"mat\\\"1\",type=\"session\"} 1\n"));
        assert!(text.contains("flatback_sampler_jitter_seconds{mat=\"mat\\\"1\",quantile=\"0.99\"} 0.00007\n"));
        assert!(text.contains("flatback_mqtt_reconnects_total 2\n"));
        assert!(text.contains("# TYPE flatback_outbox_queued_events gauge\n"));
    }
}

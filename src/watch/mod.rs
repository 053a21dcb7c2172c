//! `flatback watch`: the coach's view of every mat on a broker.
//!
//! - [`crate::dashboard`]: the dashboard's state, messages in, tiles out,
//!   which the web view shares (pure; the topics and payloads are the wire
//!   contract's, [`crate::wire`]);
//! - [`render`]: the tiles drawn with ratatui (pure, on any buffer);
//! - the MQTT connection is a [`crate::mqtt::subscriber`].
//!
//! [`run`] ties them: a full-screen dashboard on a terminal, or one plain
//! line per event when standard output is not a terminal.

pub mod render;

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};

use crate::dashboard::{BrokerLink, Dashboard, Move};
use crate::mqtt::subscriber::{self, LinkEvent, MqttLink};
use crate::mqtt::{MqttConfig, Options};
use crate::wire::topics;

/// What `flatback watch` was asked for.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    /// The broker, login and TLS, and the base topic, as the gateways'
    /// `[mqtt]` section says them.
    pub mqtt: MqttConfig,
    pub arch_threshold: f64,
    /// Ring the terminal's bell when an arch starts.
    pub bell: bool,
    /// One line per event even on a terminal.
    pub plain: bool,
}

/// How often the dashboard redraws (and how long a blink lasts).
const FRAME: Duration = Duration::from_millis(100);
const BLINK_MS: u128 = 400;

pub fn run(opts: &WatchOptions) -> Result<()> {
    run_until(opts, &AtomicBool::new(false))
}

/// As [`run`], until `stop` is set too (`flatback demo` ends its view so).
pub fn run_until(opts: &WatchOptions, stop: &AtomicBool) -> Result<()> {
    // The publisher's own resolution: the same URL, login and TLS settings
    // reach the same broker (the gateway-only parts go unused).
    let mqtt = Options::from_config(&opts.mqtt).map_err(crate::config::ConfigError::from)?;
    let broker = mqtt.broker.to_string();
    let base = opts.mqtt.base_topic.as_str();
    let describe = {
        let mqtt = mqtt.clone();
        move |e: &rumqttc::ConnectionError| mqtt.describe(e)
    };
    let link = MqttLink::connect(
        mqtt.mqtt_options(&subscriber::client_id("watch"), true, false),
        &topics::watch_filters(base),
        describe,
    );
    let dashboard = Dashboard::new(base, &broker, opts.arch_threshold);
    if opts.plain || !io::stdout().is_terminal() {
        plain(link, dashboard, &broker, stop)
    } else {
        dashboard_loop(link, dashboard, opts.bell, stop)
    }
}

/// One line per event on standard output; connection news on standard
/// error. Runs until killed, `stop`, or standard output closes.
fn plain(link: MqttLink, mut dashboard: Dashboard, broker: &str, stop: &AtomicBool) -> Result<()> {
    eprintln!("flatback watch: connecting to {broker}");
    let start = Instant::now();
    let stdout = io::stdout();
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let event = match link.recv_timeout(FRAME) {
            Ok(event) => event,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match event {
            LinkEvent::Subscribed => eprintln!("flatback watch: watching {}/# on {broker}", dashboard.base()),
            LinkEvent::Lost(why) => eprintln!("flatback watch: broker {broker}: {why}; retrying"),
            LinkEvent::Message { topic, payload } => {
                let now = start.elapsed().as_millis() as u64;
                if let Some(line) = dashboard.apply(&topic, &payload, now).line {
                    let mut out = stdout.lock();
                    if writeln!(out, "{line}").and_then(|_| out.flush()).is_err() {
                        return Ok(()); // the reader went away
                    }
                }
            }
        }
    }
    anyhow::bail!("the MQTT connection to {broker} ended")
}

/// The full-screen dashboard, until `q` (or `stop`).
fn dashboard_loop(link: MqttLink, mut dashboard: Dashboard, bell: bool, stop: &AtomicBool) -> Result<()> {
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let result = (|| -> Result<()> {
        let start = Instant::now();
        let mut columns = 1;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            let now = start.elapsed().as_millis() as u64;
            let mut ring = false;
            while let Some(event) = link.try_recv() {
                match event {
                    LinkEvent::Subscribed => dashboard.set_link(BrokerLink::Connected),
                    LinkEvent::Lost(why) => dashboard.set_link(BrokerLink::Lost(why)),
                    LinkEvent::Message { topic, payload } => {
                        ring |= dashboard.apply(&topic, &payload, now).arch_started;
                    }
                }
            }
            if ring && bell {
                let mut out = io::stdout();
                let _ = out.write_all(b"\x07").and_then(|_| out.flush());
            }
            let blink_on = (start.elapsed().as_millis() / BLINK_MS) % 2 == 0;
            let screen = dashboard.screen(now);
            terminal.draw(|frame| columns = render::draw(frame, &screen, blink_on).columns)?;
            if !event::poll(FRAME)? {
                continue;
            }
            // Resizes need nothing: the next draw lays the tiles out anew.
            let TermEvent::Key(key) = event::read()? else {
                continue;
            };
            if key.kind == KeyEventKind::Release {
                continue;
            }
            let mv = match key.code {
                KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => return Ok(()),
                KeyCode::Left => Some(Move::Left),
                KeyCode::Right => Some(Move::Right),
                KeyCode::Up => Some(Move::Up),
                KeyCode::Down => Some(Move::Down),
                KeyCode::Char('r') => {
                    if let (Some(out), Some(key)) = (dashboard.reset_selected(), dashboard.selected().cloned()) {
                        let text = match link.publish(&out.topic, out.payload.as_bytes()) {
                            Ok(()) => format!("reset sent to {}", key.mat),
                            Err(e) => format!("reset failed: {e}"),
                        };
                        dashboard.notify(text, now);
                    }
                    None
                }
                _ => None,
            };
            if let Some(mv) = mv {
                dashboard.select(mv, columns);
            }
        }
    })();
    ratatui::restore();
    result
}

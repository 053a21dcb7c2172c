//! The gateway's web view, for the coach's tablet and the athlete's phone:
//! served by the daemon itself (`[web] listen`), the pages built into the
//! binary (plain HTML, CSS and JavaScript in `assets/`: no build step, no
//! CDN, so it works on a gym LAN without internet), live by server-sent
//! events.
//!
//! - the floor (`/`): a tile per mat of every gateway on the broker, the
//!   gateway's own first, followed by the same model as `flatback watch`
//!   ([`crate::dashboard`]) on a subscribing connection of its own ([`floor`]);
//! - one mat full screen (`/mat/GATEWAY/MAT`): the bill (contact against the
//!   reference), perfect reps of the set, the descent counted aloud and a
//!   chime when the back lifts (the browser's speech synthesis and WebAudio),
//!   "ready to add load";
//! - the grid live (`/grid/MAT`, this gateway's mats): the raw frame as a
//!   heatmap, from the mat's live slot in the outbox;
//! - the last sessions' pictures (`/pictures/MAT`, feature `plot`);
//! - commands (`POST /api/mat/MAT/command/NAME`) with the token of
//!   `[web] token_file` ([`token`]);
//! - the athletes (issue 20, [`athletes`]): the coach's roster and each
//!   athlete's history, their own page (`/me/<secret>`), who is on the mat;
//! - `/metrics` (Prometheus text) and `/health`, from [`crate::daemon::metrics`].
//!
//! [`server`] is the HTTP side (hyper, HTTP/1.1, bounded).

pub mod assets;
pub mod athletes;
pub mod floor;
pub mod pictures;
pub mod server;
pub mod token;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;

use crate::config::Config;
use crate::daemon::metrics::Registry;
use crate::mqtt::subscriber::{self, MqttLink};
use crate::mqtt::Options;
use crate::outbox::{LiveLook, Outbox};
use floor::FloorFeed;
use pictures::Pictures;
use token::Token;

/// What the server's handlers share.
pub struct Web {
    /// This gateway's id and its mats.
    pub gateway: String,
    pub own: Vec<String>,
    pub outbox: Outbox,
    pub floor: Arc<FloorFeed>,
    pub token: Option<Token>,
    pub pictures: Arc<Pictures>,
    /// `/api/info`, built once.
    pub info: Bytes,
    pub max_connections: usize,
    /// The athletes' roster and history (`None`: `[history] database = ""`).
    pub history: Option<crate::history::Handle>,
    pub athletes: crate::config::AthletesConfig,
    pub max_connections_per_client: usize,
    /// Wrong tokens per client address.
    pub guesses: token::Guesses,
}

impl Web {
    pub fn metrics(&self) -> &Registry {
        self.outbox.metrics()
    }
}

/// The web view running: its address; dropping it stops following the
/// broker (the server's task ends with the runtime).
pub struct Running {
    pub address: SocketAddr,
    pub pictures: Arc<Pictures>,
    stop: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A mat's live look as the pages read it.
pub fn live_json(live: &LiveLook) -> String {
    serde_json::json!({
        "t_ms": live.t_ms,
        "rows": live.rows,
        "cols": live.cols,
        "counts": live.counts,
        "full_scale": live.full_scale,
        "occupied": live.occupied,
        "settled": live.settled,
        "in_arch": live.in_arch,
        "contact": (live.occupied && live.settled).then(|| (f64::from(live.contact) * 1000.0).round() / 1000.0),
        "descent_ms": live.descent_ms,
    })
    .to_string()
}

/// Starts the web view on the current tokio runtime, if `[web] listen`
/// asks for it: binds (or serves `bound`, a socket bound already),
/// follows the broker's floor, serves. An address that cannot be bound or
/// a token file that cannot be read is an error (the caller decides
/// whether the gateway runs without its view).
pub async fn start(
    config: &Config,
    mqtt: &Options,
    outbox: &Outbox,
    history: Option<crate::history::Handle>,
    bound: Option<&std::net::TcpListener>,
) -> Result<Option<Running>> {
    let Some(address) = config.web.address().map_err(crate::config::ConfigError::from)? else {
        return Ok(None);
    };
    let token = match &config.web.token_file {
        Some(path) => Some(Token::from_file(path)?),
        None => None,
    };
    let listener = match bound {
        Some(bound) => bound
            .try_clone()
            .and_then(|l| {
                l.set_nonblocking(true)?;
                tokio::net::TcpListener::from_std(l)
            })
            .with_context(|| format!("web.listen {address}: the socket bound for it"))?,
        None => tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("web.listen {address}: cannot listen"))?,
    };
    let address = listener.local_addr().unwrap_or(address);
    let gateway = mqtt.topics.gateway().to_string();
    let own = outbox.mat_ids();
    let floor = FloorFeed::new(
        &config.mqtt.base_topic,
        &mqtt.broker.to_string(),
        &gateway,
        &own,
        config.detector.arch_contact,
    );
    if let Some(history) = &history {
        let (history, show) = (history.clone(), config.athletes.show_names_on_floor);
        floor.set_namer(Arc::new(move |id| athletes::floor_label(&history, id, show)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let describe = {
            let mqtt = mqtt.clone();
            move |e: &rumqttc::ConnectionError| mqtt.describe(e)
        };
        let link = MqttLink::connect(
            mqtt.mqtt_options(&subscriber::client_id("web"), true, false),
            &crate::wire::topics::watch_filters(&config.mqtt.base_topic),
            describe,
        );
        let (floor, stop) = (floor.clone(), stop.clone());
        std::thread::Builder::new()
            .name("web-floor".into())
            .spawn(move || floor.follow(link, stop))
            .context("starting the web view's floor")?;
    }
    let pictures = Pictures::new(&own, config.web.pictures_per_mat);
    let info = serde_json::json!({
        "gateway": gateway,
        "own": own,
        "commands": token.is_some(),
        "progress_reps": config.detector.progress_reps,
        "arch_threshold": config.detector.arch_contact,
        "min_descent_s": config.detector.min_descent_s,
        "pictures": pictures::BUILT_IN,
        "version": env!("CARGO_PKG_VERSION"),
    })
    .to_string();
    let web = Arc::new(Web {
        gateway,
        own,
        outbox: outbox.clone(),
        floor,
        token,
        pictures: pictures.clone(),
        info: Bytes::from(info),
        max_connections: config.web.max_connections,
        history,
        athletes: config.athletes.clone(),
        max_connections_per_client: config.web.max_connections_per_client,
        guesses: token::Guesses::default(),
    });
    tokio::spawn(server::serve(listener, web));
    tracing::info!(%address, "web view listening");
    Ok(Some(Running {
        address,
        pictures,
        stop,
    }))
}

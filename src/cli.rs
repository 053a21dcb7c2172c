//! The command line: one subcommand per job.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use crate::config::{Config, DEFAULT_TOML};
use crate::detector::Detector;
use crate::frame::{Frame, FrameSource};
use crate::pacing::Paced;
use crate::recording::{RecordingReader, RecordingWriter};
use crate::replay;
use crate::sim::{Kind, Scenario, Simulator};

#[derive(Debug, Parser)]
#[command(
    name = "flatback",
    version,
    about = "Keeps backs flat during leg lifts: a pressure mat, a contact-loss detector, MQTT events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The log level when `RUST_LOG` does not say: the daemon's from its
    /// configuration (`[log] level`, default info), warn for the tools.
    pub fn log_level(&self) -> String {
        match &self.command {
            Command::Run { config, .. } => Config::load(config).map_or("info".into(), |c| c.log.level),
            // The demo's screen is the coach's view: only errors on top.
            Command::Demo { .. } => "error".into(),
            _ => "warn".into(),
        }
    }
}

/// The process exit code for an error: `EX_CONFIG` (78) for a bad
/// configuration, so systemd does not restart in a loop; 1 otherwise.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.chain().any(|e| e.is::<crate::config::ConfigError>()) {
        EX_CONFIG
    } else {
        1
    }
}

/// sysexits.h: configuration error.
pub const EX_CONFIG: u8 = 78;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the detector on a recording and print its events as JSON lines.
    Replay {
        /// Configuration file (TOML); defaults fit the reference mat.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Recording (.csv or .csv.gz).
        recording: PathBuf,
    },
    /// Record frames to a file (.csv, or .csv.gz to compress).
    Record {
        /// Where frames come from.
        #[arg(long, value_enum, default_value_t = SourceKind::Sim)]
        source: SourceKind,
        /// Stop after this many seconds of frames.
        #[arg(long)]
        seconds: Option<f64>,
        #[command(flatten)]
        sim: SimArgs,
        /// Configuration file (TOML) for `--source spi`: the mat's wiring.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Output recording; for the simulator, ground truth is written
        /// beside it as NAME.truth.json.
        file: PathBuf,
    },
    /// Simulated mats through the real detector, events printed live.
    Demo {
        /// Simulated mats, each a different person and exercise.
        #[arg(long, default_value_t = 3)]
        mats: usize,
        /// Simulated time runs this many times faster than real time.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Stop after this many seconds (wall clock); default: until Ctrl-C
        /// or `q`.
        #[arg(long, value_name = "S")]
        duration: Option<f64>,
        /// The MQTT broker (mqtt://host:port); default: Mosquitto on
        /// localhost if it answers, else a broker inside the demo.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// One line per event even on a terminal.
        #[arg(long)]
        plain: bool,
    },
    /// Score the detector on simulated cases and print the figures
    /// (accuracy, latency, throughput).
    Eval {
        /// Number of random cases.
        #[arg(long, default_value_t = 50)]
        cases: u64,
        /// Seed of the first case; case k uses seed + k.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one line per case.
        #[arg(long)]
        verbose: bool,
    },
    /// The daemon: every mat of the configuration (SPI, simulated or
    /// replayed), the detector, MQTT and Home Assistant, until SIGTERM.
    Run {
        /// Configuration file (TOML).
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Simulated and replayed mats run this many times faster than real
        /// time.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
    /// The configuration file: print the commented default, or check one.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Print the default configuration file, commented (`config default`).
    #[command(hide = true)]
    Configfile,
    /// Look at the mat live: a heatmap of the counts, the sampler's rate and
    /// jitter, dead or stuck channels.
    Check {
        /// Where frames come from: the mat's SPI ADCs, or the simulator read
        /// through emulated ADCs wired the same way.
        #[arg(long, value_enum, default_value_t = SourceKind::Spi)]
        source: SourceKind,
        /// Configuration file (TOML); defaults fit the reference mat.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Print a text snapshot every second for this many seconds, then
        /// exit (the default, for 3 s, when output is not a terminal).
        #[arg(long)]
        seconds: Option<f64>,
        /// Simulated scenario (`--source sim`).
        #[arg(long, default_value = "three_sets")]
        kind: String,
        /// Seed of the simulator (`--source sim`).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Publish simulated mats over MQTT (events, state, Home Assistant
    /// discovery, commands) until SIGTERM or Ctrl-C.
    Publish {
        /// Configuration file (TOML): the [mqtt] section.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Broker URL (mqtt://host:port or mqtts://host:port); overrides mqtt.url.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// Mat id; repeat for several mats (default: [mat] id). Mat k
        /// simulates seed + k.
        #[arg(long = "mat", value_name = "ID")]
        mats: Vec<String>,
        #[command(flatten)]
        sim: SimArgs,
        /// Playback speed: 1 is real time, 10 is ten times faster.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Stop each mat after this many seconds of simulated time.
        #[arg(long)]
        seconds: Option<f64>,
        /// Exit once every mat has ended and every event is delivered.
        #[arg(long)]
        exit_when_done: bool,
    },
    /// Remove this gateway's retained Home Assistant discovery configs.
    Purge {
        /// Configuration file (TOML): the [mqtt] section.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Broker URL; overrides mqtt.url.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// Mat ids whose configs to clear besides those found (default: [mat] id).
        #[arg(long = "mat", value_name = "ID")]
        mats: Vec<String>,
    },
    /// The coach's view: a live dashboard of every mat on a broker (one
    /// line per event when standard output is not a terminal).
    Watch {
        /// Configuration file (TOML): the [mqtt] section (broker, base topic,
        /// login, TLS) and the [detector]'s arch threshold.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Broker URL (mqtt://host[:port] or mqtts://host[:port]); overrides mqtt.url.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// The publishers' base topic (mats are read from BASE/+/+/...);
        /// overrides mqtt.base_topic.
        #[arg(long, value_name = "TOPIC")]
        base: Option<String>,
        /// Ring the terminal's bell when an arch starts.
        #[arg(long)]
        bell: bool,
        /// One line per event even on a terminal.
        #[arg(long)]
        plain: bool,
        /// The arch threshold marked on the contact bars (share of the
        /// reference; default: the detector's).
        #[arg(long, value_name = "SHARE")]
        arch_threshold: Option<f64>,
    },
    /// The picture of a recorded session: contact against the reference, the
    /// rep signal, arches, reps, sets, the grid's heatmap.
    Plot {
        /// Configuration file (TOML): the [detector] section.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Take the events from this file (JSON lines, as `flatback replay`
        /// prints them) instead of running the detector's.
        #[arg(long, value_name = "FILE")]
        events: Option<PathBuf>,
        /// Output, .svg or .png; repeat for both.
        #[arg(short = 'o', long = "output", value_name = "FILE", required = true)]
        outputs: Vec<PathBuf>,
        /// Recording (.csv or .csv.gz).
        recording: PathBuf,
    },
}

/// Where `flatback run` looks for its configuration by default.
pub const DEFAULT_CONFIG: &str = "/etc/flatback/flatback.toml";

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the default configuration, every key commented.
    Default,
    /// Check a configuration file: exit 0 if it is good, 78 (EX_CONFIG) with
    /// the file, line and key of the first problem if not.
    Check { file: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// The built-in simulator of the reference mat.
    Sim,
    /// The mat's SPI ADCs, wired as the config's [hardware] section says.
    Spi,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SimArgs {
    /// Simulated scenario.
    #[arg(long, default_value = "three_sets")]
    pub kind: String,
    /// Seed of the simulator (same seed, same frames).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Frame rate in Hz (50 to 2000).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Use the random case `flatback eval` runs with this seed instead
    /// (its kind, rate, people and faults; overrides --kind, --seed, --rate).
    #[arg(long)]
    pub case: Option<u64>,
}

impl SimArgs {
    fn scenario(&self, seconds: Option<f64>) -> Result<Scenario> {
        if let Some(case) = self.case {
            let mut s = Scenario::random(case);
            s.duration_s = seconds.or(s.duration_s);
            return Ok(s);
        }
        let kind: Kind = self.kind.parse().map_err(|e| anyhow::anyhow!("--kind: {e}"))?;
        if !(50.0..=2000.0).contains(&self.rate) {
            bail!("--rate {}: must be between 50 and 2000 Hz", self.rate);
        }
        let mut s = Scenario::new(kind, self.seed);
        s.rate_hz = self.rate;
        s.duration_s = seconds;
        Ok(s)
    }
}

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Replay { config, recording } => replay_cmd(config.as_deref(), &recording),
        Command::Record {
            source: SourceKind::Sim,
            seconds,
            sim,
            file,
            ..
        } => record_sim(&sim, seconds, &file),
        Command::Record {
            source: SourceKind::Spi,
            seconds,
            config,
            file,
            ..
        } => crate::live::record(&load_config(config.as_deref())?, seconds, &file),
        Command::Check {
            source,
            config,
            seconds,
            kind,
            seed,
        } => crate::live::check(&load_config(config.as_deref())?, source, seconds, &kind, seed),
        Command::Demo {
            mats,
            speed,
            duration,
            broker,
            plain,
        } => crate::demo::run(&crate::demo::DemoOptions {
            mats,
            speed,
            duration_s: duration,
            broker,
            plain,
        }),
        Command::Eval { cases, seed, verbose } => eval(cases, seed, verbose),
        Command::Run { config, speed } => {
            if !(speed.is_finite() && speed > 0.0) {
                bail!("--speed {speed}: must be positive");
            }
            let config = Config::load(&config)?;
            let notifier = crate::systemd::Notifier::from_env().context("NOTIFY_SOCKET")?;
            crate::daemon::run(
                &config,
                &crate::daemon::RunOptions {
                    speed,
                    stop: Default::default(),
                },
                &notifier,
            )
        }
        Command::Config {
            action: ConfigAction::Default,
        } => {
            print!("{}", crate::config::DEFAULT_TOML);
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Check { file },
        } => {
            let config = Config::load(&file)?;
            println!("{}: good ({} mats: {})", file.display(), config.mats().len(), {
                let ids: Vec<String> = config.mats().into_iter().map(|m| m.id).collect();
                ids.join(", ")
            });
            Ok(())
        }
        Command::Configfile => {
            print!("{DEFAULT_TOML}");
            Ok(())
        }
        Command::Publish {
            config,
            broker,
            mats,
            sim,
            speed,
            seconds,
            exit_when_done,
        } => publish_cmd(config.as_deref(), broker, mats, &sim, speed, seconds, exit_when_done),
        Command::Purge { config, broker, mats } => purge_cmd(config.as_deref(), broker, mats),
        Command::Watch {
            config,
            broker,
            base,
            bell,
            plain,
            arch_threshold,
        } => {
            let mut config = load_config(config.as_deref())?;
            if let Some(url) = broker {
                config.mqtt.url = url;
            }
            if let Some(base) = base {
                config.mqtt.base_topic = base;
            }
            let arch_threshold = arch_threshold.unwrap_or(config.detector.arch_contact);
            if !(0.0..=1.0).contains(&arch_threshold) {
                bail!("--arch-threshold {arch_threshold}: must be between 0 and 1");
            }
            crate::watch::run(&crate::watch::WatchOptions {
                mqtt: config.mqtt,
                arch_threshold,
                bell,
                plain,
            })
        }
        Command::Plot {
            config,
            events,
            outputs,
            recording,
        } => crate::plot::run(
            &recording,
            &load_config(config.as_deref())?.detector,
            events.as_deref(),
            &outputs,
        ),
    }
}

/// The config with `--broker` applied, and the mat ids (default: [mat] id).
fn mqtt_setup(config: Option<&Path>, broker: Option<String>, mats: Vec<String>) -> Result<(Config, Vec<String>)> {
    let mut config = load_config(config)?;
    if let Some(url) = broker {
        config.mqtt.url = url;
    }
    config.mqtt.validate().map_err(anyhow::Error::msg)?;
    let mats = if mats.is_empty() {
        vec![config.mat.id.clone()]
    } else {
        mats
    };
    Ok((config, mats))
}

fn publish_cmd(
    config: Option<&Path>,
    broker: Option<String>,
    mats: Vec<String>,
    sim: &SimArgs,
    speed: f64,
    seconds: Option<f64>,
    exit_when_done: bool,
) -> Result<()> {
    if speed.is_nan() || speed <= 0.0 {
        bail!("--speed {speed}: must be positive");
    }
    let (config, ids) = mqtt_setup(config, broker, mats)?;
    let mut sources = Vec::new();
    for (k, id) in ids.into_iter().enumerate() {
        let mut scenario = sim.scenario(seconds)?;
        scenario.seed += k as u64;
        let source: Box<dyn FrameSource + Send> = Box::new(Paced::new(Simulator::new(&scenario), speed));
        sources.push(crate::mqtt::MatSource { id, source });
    }
    crate::mqtt::publish(&config.mqtt, &config.detector, sources, exit_when_done)
}

fn purge_cmd(config: Option<&Path>, broker: Option<String>, mats: Vec<String>) -> Result<()> {
    let (config, mats) = mqtt_setup(config, broker, mats)?;
    let opts = crate::mqtt::publisher::Options::from_config(&config.mqtt).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let cleared = runtime.block_on(crate::mqtt::purge::purge(
        &opts,
        &mats,
        std::time::Duration::from_secs(20),
    ))?;
    println!(
        "cleared {} discovery configs of gateway {}",
        cleared.len(),
        opts.topics.gateway()
    );
    Ok(())
}

fn load_config(path: Option<&Path>) -> Result<Config> {
    match path {
        Some(p) => Ok(Config::load(p)?),
        None => Ok(Config::default()),
    }
}

fn replay_cmd(config: Option<&Path>, recording: &Path) -> Result<()> {
    let config = load_config(config)?;
    let mut source = RecordingReader::open(recording)?;
    let mut detector =
        Detector::new(source.grid(), config.detector).map_err(|e| anyhow::anyhow!("config [detector]: {e}"))?;
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut write_err = None;
    let result = replay::run(&mut source, &mut detector, |e| {
        if write_err.is_none() {
            if let Err(err) = writeln!(out, "{}", e.to_json()) {
                write_err = Some(err);
            }
        }
    });
    // Events accepted before an error are written out before reporting it.
    out.flush()?;
    if let Some(e) = write_err {
        return Err(e).context("writing events");
    }
    let stats = result?;
    tracing::info!(frames = stats.frames, events = stats.events, "replay done");
    Ok(())
}

fn truth_path(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name
        .strip_suffix(".csv.gz")
        .or_else(|| name.strip_suffix(".csv"))
        .or_else(|| name.strip_suffix(".gz"))
        .unwrap_or(&name);
    file.with_file_name(format!("{base}.truth.json"))
}

fn record_sim(sim: &SimArgs, seconds: Option<f64>, file: &Path) -> Result<()> {
    let scenario = sim.scenario(seconds)?;
    let mut source = Simulator::new(&scenario);
    let mut writer =
        RecordingWriter::create(file, source.grid()).with_context(|| format!("creating {}", file.display()))?;
    let mut frame = Frame::zeroed(source.grid());
    let mut frames = 0u64;
    while source.next_into(&mut frame)? {
        writer
            .write_frame(&frame)
            .with_context(|| format!("writing {}", file.display()))?;
        frames += 1;
    }
    writer.close().with_context(|| format!("closing {}", file.display()))?;
    let truth = truth_path(file);
    std::fs::write(&truth, source.truth().to_json()).with_context(|| format!("writing {}", truth.display()))?;
    eprintln!(
        "wrote {frames} frames to {} and ground truth to {}",
        file.display(),
        truth.display()
    );
    Ok(())
}

fn eval(cases: u64, seed: u64, verbose: bool) -> Result<()> {
    let report = crate::sim::eval::evaluate(
        seed..seed + cases,
        &Config::default().detector,
        crate::sim::eval::cores(),
        verbose,
    );
    report.map(|r| print!("{r}")).map_err(anyhow::Error::msg)
}

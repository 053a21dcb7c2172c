//! The command line: clap's definitions only; each subcommand runs in its
//! own file under [`crate::cmd`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

/// Where `flatback run` looks for its configuration by default.
pub const DEFAULT_CONFIG: &str = "/etc/flatback/flatback.toml";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the detector on a recording and print its events as JSON lines.
    Replay(ReplayArgs),
    /// Record frames to a file (.csv, or .csv.gz to compress).
    Record(RecordArgs),
    /// Simulated mats through the real detector and publisher to a real MQTT
    /// broker, and the coach's view of them.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Score the detector on simulated cases and print the figures
    /// (accuracy, latency, throughput).
    Eval(EvalArgs),
    /// The daemon: every mat of the configuration (SPI, simulated or
    /// replayed), the detector, MQTT and Home Assistant, until SIGTERM.
    Run(RunArgs),
    /// The configuration file: print the commented default, or check one.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Look at the mat live: a heatmap of the counts, the sampler's rate and
    /// jitter, dead or stuck channels.
    Check(CheckArgs),
    /// Publish simulated mats over MQTT (events, state, Home Assistant
    /// discovery, commands) until SIGTERM or Ctrl-C: the daemon with
    /// simulated mats made from the command line.
    Publish(PublishArgs),
    /// Remove this gateway's retained Home Assistant discovery configs.
    Purge(PurgeArgs),
    /// The coach's view: a live dashboard of every mat on a broker (one
    /// line per event when standard output is not a terminal).
    #[cfg(feature = "watch")]
    Watch(WatchArgs),
    /// The picture of a recorded session: contact against the reference, the
    /// rep signal, arches, reps, sets, the grid's heatmap.
    #[cfg(feature = "plot")]
    Plot(PlotArgs),
    /// The roster: add, list and remove athletes (in `[history] database`).
    Athlete {
        #[command(subcommand)]
        action: AthleteAction,
    },
    /// The athletes' history: export it as CSV.
    History {
        #[command(subcommand)]
        action: HistoryAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum AthleteAction {
    /// Add an athlete; prints one JSON object with `id`, `name` and `link`
    /// (the path of the athlete's own page).
    Add {
        /// The display name.
        name: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the roster, one JSON object per line.
    List {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Delete an athlete and every row of their history.
    Remove {
        id: String,
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum HistoryAction {
    /// Write the history as CSV to standard output, one row per rep.
    Export {
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only this athlete's reps.
        #[arg(long)]
        athlete: Option<String>,
        /// Only sessions from this day on (YYYY-MM-DD, UTC).
        #[arg(long)]
        since: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Print the default configuration, every key commented.
    Default,
    /// Check a configuration file: exit 0 if it is good, 78 (EX_CONFIG) with
    /// the file, line and key of the first problem if not.
    Check { file: PathBuf },
}

/// `--speed`: simulated and replayed time runs this many times faster than
/// real time.
pub fn speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{text}: must be a positive number")),
    }
}

/// The broker options of every command that talks MQTT.
#[derive(Debug, Clone, Args)]
pub struct MqttArgs {
    /// Configuration file (TOML): the [mqtt] section (broker, login, TLS,
    /// base topic).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Broker URL (mqtt://host[:port] or mqtts://host[:port]); overrides
    /// mqtt.url.
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Configuration file (TOML); defaults fit the reference mat.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Recording (.csv or .csv.gz).
    pub recording: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceKind {
    /// The built-in simulator of the reference mat.
    Sim,
    /// The mat's SPI ADCs, wired as the config's [hardware] section says.
    Spi,
}

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Where frames come from.
    #[arg(long, value_enum, default_value_t = SourceKind::Sim)]
    pub source: SourceKind,
    /// Stop after this many seconds of frames.
    #[arg(long)]
    pub seconds: Option<f64>,
    #[command(flatten)]
    pub sim: SimArgs,
    /// Configuration file (TOML) for `--source spi`: the mat's wiring.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output recording; for the simulator, ground truth is written
    /// beside it as NAME.truth.json.
    pub file: PathBuf,
}

#[derive(Debug, Clone, Args)]
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

#[cfg(feature = "demo")]
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Simulated mats, each a different person and exercise.
    #[arg(long, default_value_t = 3)]
    pub mats: usize,
    /// Simulated time runs this many times faster than real time.
    #[arg(long, default_value_t = 1.0, value_parser = speed)]
    pub speed: f64,
    /// Stop after this many seconds (wall clock); default: until Ctrl-C
    /// or `q`.
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// The MQTT broker (mqtt://host:port); default: Mosquitto on
    /// localhost if it answers, else a broker inside the demo.
    #[arg(long, value_name = "URL")]
    pub broker: Option<String>,
    /// One line per event even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// The coach's web view on this address and port; default: a free
    /// port on 127.0.0.1.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub web: String,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Number of random cases.
    #[arg(long, default_value_t = 50)]
    pub cases: u64,
    /// Seed of the first case; case k uses seed + k.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Print one line per case.
    #[arg(long)]
    pub verbose: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Configuration file (TOML).
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Simulated and replayed mats run this many times faster than real
    /// time.
    #[arg(long, default_value_t = 1.0, value_parser = speed)]
    pub speed: f64,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Where frames come from: the mat's SPI ADCs, or the simulator read
    /// through emulated ADCs wired the same way.
    #[arg(long, value_enum, default_value_t = SourceKind::Spi)]
    pub source: SourceKind,
    /// Configuration file (TOML); defaults fit the reference mat.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Print a text snapshot every second for this many seconds, then
    /// exit (the default, for 3 s, when output is not a terminal).
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Simulated scenario (`--source sim`).
    #[arg(long, default_value = "three_sets")]
    pub kind: String,
    /// Seed of the simulator (`--source sim`).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Test the cue's wiring instead (`[mats.cue]`): sound the buzzer and
    /// light each LED colour in turn, for `--seconds` each (default 1),
    /// saying which on standard output. With `--source sim`, on emulated
    /// pins.
    #[arg(long)]
    pub cue: bool,
    /// The mat whose cue `--cue` tests (needed when there are several).
    #[arg(long, value_name = "ID", requires = "cue")]
    pub mat: Option<String>,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    #[command(flatten)]
    pub mqtt: MqttArgs,
    /// Mat id; repeat for several mats (default: [mat] id). Mat k
    /// simulates seed + k.
    #[arg(long = "mat", value_name = "ID")]
    pub mats: Vec<String>,
    #[command(flatten)]
    pub sim: SimArgs,
    /// Playback speed: 1 is real time, 10 is ten times faster.
    #[arg(long, default_value_t = 1.0, value_parser = speed)]
    pub speed: f64,
    /// Stop each mat after this many seconds of simulated time.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Exit once every mat has ended and every event is delivered.
    #[arg(long)]
    pub exit_when_done: bool,
}

#[derive(Debug, Args)]
pub struct PurgeArgs {
    #[command(flatten)]
    pub mqtt: MqttArgs,
    /// Mat ids whose configs to clear besides those found (default: [mat] id).
    #[arg(long = "mat", value_name = "ID")]
    pub mats: Vec<String>,
}

#[cfg(feature = "watch")]
#[derive(Debug, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub mqtt: MqttArgs,
    /// The publishers' base topic (mats are read from BASE/+/+/...);
    /// overrides mqtt.base_topic.
    #[arg(long, value_name = "TOPIC")]
    pub base: Option<String>,
    /// Ring the terminal's bell when an arch starts.
    #[arg(long)]
    pub bell: bool,
    /// One line per event even on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// The arch threshold marked on the contact bars (share of the
    /// reference; default: the detector's).
    #[arg(long, value_name = "SHARE")]
    pub arch_threshold: Option<f64>,
}

#[cfg(feature = "plot")]
#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Configuration file (TOML): the [detector] section.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Take the events from this file (JSON lines, as `flatback replay`
    /// prints them) instead of running the detector's.
    #[arg(long, value_name = "FILE")]
    pub events: Option<PathBuf>,
    /// Output, .svg or .png; repeat for both.
    #[arg(short = 'o', long = "output", value_name = "FILE", required = true)]
    pub outputs: Vec<PathBuf>,
    /// The mat's id, in the title (default: the recording's file name
    /// without its extension).
    #[arg(long = "mat", value_name = "ID")]
    pub mat: Option<String>,
    /// The session's date, in the title (default: the day the recording
    /// file was last modified, in local time: recordings hold only the
    /// sampler's monotonic clock).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = date)]
    pub date: Option<String>,
    /// Recording (.csv or .csv.gz).
    pub recording: PathBuf,
}

/// `--date`: a calendar day, `YYYY-MM-DD`.
#[cfg(feature = "plot")]
pub fn date(text: &str) -> Result<String, String> {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    match parts[..] {
        [y, m, d] => match (number(y, 4), number(m, 2), number(d, 2)) {
            (Some(_), Some(1..=12), Some(1..=31)) => Ok(text.to_string()),
            _ => Err(format!("{text}: not a date as YYYY-MM-DD")),
        },
        _ => Err(format!("{text}: not a date as YYYY-MM-DD")),
    }
}

impl Command {
    /// The configuration file the command reads: `Some(path)` must exist,
    /// `None` means the defaults.
    pub fn config_file(&self) -> Option<&std::path::Path> {
        match self {
            Command::Replay(a) => a.config.as_deref(),
            Command::Record(a) => a.config.as_deref(),
            #[cfg(feature = "demo")]
            Command::Demo(_) => None,
            Command::Eval(_) => None,
            Command::Run(a) => Some(&a.config),
            Command::Config {
                action: ConfigAction::Check { file },
            } => Some(file),
            Command::Config {
                action: ConfigAction::Default,
            } => None,
            Command::Check(a) => a.config.as_deref(),
            Command::Publish(a) => a.mqtt.config.as_deref(),
            Command::Purge(a) => a.mqtt.config.as_deref(),
            #[cfg(feature = "watch")]
            Command::Watch(a) => a.mqtt.config.as_deref(),
            #[cfg(feature = "plot")]
            Command::Plot(a) => a.config.as_deref(),
            Command::Athlete { action } => match action {
                AthleteAction::Add { config, .. }
                | AthleteAction::List { config }
                | AthleteAction::Remove { config, .. } => config.as_deref().or_else(installed_config),
            },
            Command::History {
                action: HistoryAction::Export { config, .. },
            } => config.as_deref().or_else(installed_config),
        }
    }
}

/// The installed configuration, when there is one: the roster commands run
/// beside the daemon on the same database.
fn installed_config<'a>() -> Option<&'a std::path::Path> {
    let path = std::path::Path::new(DEFAULT_CONFIG);
    path.exists().then_some(path)
}

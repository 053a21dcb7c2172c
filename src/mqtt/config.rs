//! The `[mqtt]` section of the configuration file, and what it resolves to
//! at start-up (the broker address, the gateway id, the credentials).
//!
//! Every key has a default (see `config/flatback.toml`); the password is
//! never in the file itself, only the name of a file or of an environment
//! variable that holds it, and it is never printed (`Secret`'s `Debug`).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use crate::wire::topics::check_id;

/// `[mqtt]`: the broker, the topics, Home Assistant discovery, the outbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker: `mqtt://host[:port]` (port 1883) or `mqtts://host[:port]`
    /// (TLS, port 8883).
    pub url: String,
    /// Gateway id: names this gateway in topics, the client id and the
    /// `unique_id`s. Empty: the host name plus the first 6 hex digits of
    /// `/etc/machine-id` (like ESPHome's MAC suffix), stable across restarts.
    pub gateway_id: String,
    /// Name of the gateway's Home Assistant device. Empty: `flatback <id>`.
    pub gateway_name: String,
    /// Every flatback topic lives under this one.
    pub base_topic: String,
    /// Publish Home Assistant discovery configs.
    pub discovery: bool,
    /// Home Assistant's discovery prefix (its birth topic is `<prefix>/status`).
    pub discovery_prefix: String,
    /// Longest random delay (seconds) before discovery and state are re-sent
    /// when Home Assistant announces itself `online`.
    pub discovery_resend_max_s: f64,
    /// MQTT keep-alive, seconds (5..=3600).
    pub keep_alive_s: u64,
    /// Reconnect backoff: first delay, doubling up to the maximum (seconds).
    pub reconnect_min_s: f64,
    pub reconnect_max_s: f64,
    /// User name; empty: none.
    pub username: String,
    /// File whose first line is the password.
    pub password_file: Option<PathBuf>,
    /// Environment variable holding the password (used when no file is set).
    pub password_env: Option<String>,
    /// PEM file of the CA(s) that signed the broker's certificate (mqtts);
    /// unset: the system's trusted roots.
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain and key (PEM), for brokers that require one.
    pub client_cert_file: Option<PathBuf>,
    pub client_key_file: Option<PathBuf>,
    /// Accept any broker certificate. Dangerous: only for a test broker.
    pub insecure_skip_verify: bool,
    /// A mat's state is published on change at most once per this many
    /// seconds...
    pub state_min_interval_s: f64,
    /// ... and at least once per this many seconds (heartbeat).
    pub heartbeat_s: f64,
    /// Where the outbox of events keeps its files.
    pub outbox_dir: PathBuf,
    /// Most bytes the outbox may hold on disk; when full, the oldest
    /// undelivered events are dropped and counted.
    pub outbox_max_bytes: u64,
    /// `background`: events are written at once and synced by a background
    /// thread within milliseconds, publishing does not wait for the device;
    /// `every_event`: synced before being published (slower on SD cards).
    pub outbox_sync: crate::outbox::SyncMode,
}

impl Default for MqttConfig {
    fn default() -> Self {
        MqttConfig {
            url: "mqtt://localhost:1883".into(),
            gateway_id: String::new(),
            gateway_name: String::new(),
            base_topic: "flatback".into(),
            discovery: true,
            discovery_prefix: "homeassistant".into(),
            discovery_resend_max_s: 5.0,
            keep_alive_s: 30,
            reconnect_min_s: 0.5,
            reconnect_max_s: 30.0,
            username: String::new(),
            password_file: None,
            password_env: None,
            ca_file: None,
            client_cert_file: None,
            client_key_file: None,
            insecure_skip_verify: false,
            state_min_interval_s: 0.1,
            heartbeat_s: 60.0,
            outbox_dir: PathBuf::from("/var/lib/flatback/outbox"),
            outbox_max_bytes: 8 * 1024 * 1024,
            outbox_sync: crate::outbox::SyncMode::Background,
        }
    }
}

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

impl BrokerUrl {
    /// Parses `mqtt://host[:port]` or `mqtts://host[:port]` (an IPv6 host in
    /// brackets). Errors say what is wrong with the text.
    pub fn parse(text: &str) -> Result<BrokerUrl, String> {
        let (tls, rest) = if let Some(r) = text.strip_prefix("mqtt://") {
            (false, r)
        } else if let Some(r) = text.strip_prefix("mqtts://") {
            (true, r)
        } else {
            return Err(format!("\"{text}\": must start with mqtt:// or mqtts://"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('@') || rest.contains('?') {
            return Err(format!(
                "\"{text}\": only a host and a port are allowed (credentials go in username/password_file)"
            ));
        }
        let default_port = if tls { 8883 } else { 1883 };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("\"{text}\": unclosed [ in the host"))?;
            match after {
                "" => (host, None),
                p if p.starts_with(':') => (host, Some(&p[1..])),
                _ => return Err(format!("\"{text}\": unexpected text after the host")),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(format!("\"{text}\": no host"));
        }
        let port = match port {
            None => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(format!("\"{text}\": port \"{p}\" is not a number in 1..=65535")),
            },
        };
        Ok(BrokerUrl {
            host: host.to_string(),
            port,
            tls,
        })
    }
}

/// A password: compared and moved, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Self {
        Secret(s)
    }
    /// The secret itself, for the one place that needs it (the CONNECT).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// User name and password, resolved from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Option<Secret>,
}

/// A topic prefix: not empty, no wildcard, no leading or trailing `/`.
fn check_prefix(what: &str, p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err(format!("{what} is empty"));
    }
    if p.contains(['+', '#', '\0']) {
        return Err(format!("{what} \"{p}\": no MQTT wildcards (+ #) allowed"));
    }
    if p.starts_with('/') || p.ends_with('/') || p.contains("//") {
        return Err(format!(
            "{what} \"{p}\": no empty topic levels (leading, trailing or double /)"
        ));
    }
    Ok(())
}

impl MqttConfig {
    /// Checks every value; errors name the key as `mqtt.KEY`.
    pub fn validate(&self) -> Result<(), String> {
        BrokerUrl::parse(&self.url).map_err(|e| format!("mqtt.url {e}"))?;
        if !self.gateway_id.is_empty() {
            check_id("mqtt.gateway_id", &self.gateway_id)?;
        }
        check_prefix("mqtt.base_topic", &self.base_topic)?;
        check_prefix("mqtt.discovery_prefix", &self.discovery_prefix)?;
        if !(5..=3600).contains(&self.keep_alive_s) {
            return Err(format!("mqtt.keep_alive_s = {}: must be 5..=3600", self.keep_alive_s));
        }
        let positive = [
            ("reconnect_min_s", self.reconnect_min_s),
            ("reconnect_max_s", self.reconnect_max_s),
            ("state_min_interval_s", self.state_min_interval_s),
            ("heartbeat_s", self.heartbeat_s),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return Err(format!("mqtt.{key} = {v}: must be a positive number of seconds"));
            }
        }
        if self.reconnect_max_s < self.reconnect_min_s {
            return Err(format!(
                "mqtt.reconnect_max_s = {} is below mqtt.reconnect_min_s = {}",
                self.reconnect_max_s, self.reconnect_min_s
            ));
        }
        if !(self.discovery_resend_max_s.is_finite() && self.discovery_resend_max_s >= 0.0) {
            return Err(format!(
                "mqtt.discovery_resend_max_s = {}: must be 0 or more",
                self.discovery_resend_max_s
            ));
        }
        if self.outbox_max_bytes < 64 * 1024 {
            return Err(format!(
                "mqtt.outbox_max_bytes = {}: must be at least 65536",
                self.outbox_max_bytes
            ));
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            return Err("mqtt.client_cert_file and mqtt.client_key_file go together: set both or neither".into());
        }
        if self.password_file.is_some() && self.password_env.is_some() {
            return Err("mqtt.password_file and mqtt.password_env: set one, not both".into());
        }
        if (self.password_file.is_some() || self.password_env.is_some()) && self.username.is_empty() {
            return Err("mqtt.username is empty but a password is configured".into());
        }
        Ok(())
    }

    pub fn broker(&self) -> Result<BrokerUrl, String> {
        BrokerUrl::parse(&self.url).map_err(|e| format!("mqtt.url {e}"))
    }

    /// The gateway id: the configured one, else derived from the host.
    pub fn resolved_gateway_id(&self) -> String {
        if !self.gateway_id.is_empty() {
            return self.gateway_id.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "flatback".into());
        let machine = std::fs::read_to_string("/etc/machine-id").unwrap_or_default();
        derive_gateway_id(&host, machine.trim())
    }

    pub fn resolved_gateway_name(&self, id: &str) -> String {
        if self.gateway_name.is_empty() {
            format!("flatback {id}")
        } else {
            self.gateway_name.clone()
        }
    }

    /// Reads the password from its file or environment variable. The error
    /// names the file or variable, never the value.
    pub fn credentials(&self) -> Result<Option<Credentials>, String> {
        if self.username.is_empty() {
            return Ok(None);
        }
        let password = if let Some(path) = &self.password_file {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("mqtt.password_file {}: {e}", path.display()))?;
            let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_string();
            if line.is_empty() {
                return Err(format!("mqtt.password_file {}: the file is empty", path.display()));
            }
            Some(Secret::new(line))
        } else if let Some(var) = &self.password_env {
            match std::env::var(var) {
                Ok(v) if !v.is_empty() => Some(Secret::new(v)),
                Ok(_) => return Err(format!("mqtt.password_env: environment variable {var} is empty")),
                Err(_) => return Err(format!("mqtt.password_env: environment variable {var} is not set")),
            }
        } else {
            None
        };
        Ok(Some(Credentials {
            username: self.username.clone(),
            password,
        }))
    }
}

/// `host` cleaned to the id alphabet, plus `-` and the first 6 hex digits of
/// the machine id when there is one.
pub fn derive_gateway_id(host: &str, machine_id: &str) -> String {
    let mut id: String = host
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    if id.is_empty() {
        id = "flatback".into();
    }
    let suffix: String = machine_id.chars().filter(|c| c.is_ascii_hexdigit()).take(6).collect();
    if suffix.len() == 6 {
        id.push('-');
        id.push_str(&suffix.to_ascii_lowercase());
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            BrokerUrl::parse("mqtt://localhost").unwrap(),
            BrokerUrl {
                host: "localhost".into(),
                port: 1883,
                tls: false
            }
        );
        let u = BrokerUrl::parse("mqtts://127.0.0.1:8884").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.tls), ("127.0.0.1", 8884, true));
        assert_eq!(BrokerUrl::parse("mqtts://b.example").unwrap().port, 8883);
        let v6 = BrokerUrl::parse("mqtt://[::1]:1884").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 1884));
        assert_eq!(v6.to_string(), "mqtt://[::1]:1884");
        for bad in [
            "tcp://x",
            "mqtt://",
            "mqtt://h:0",
            "mqtt://h:99999",
            "mqtt://u:p@h",
            "mqtt://h/x",
        ] {
            assert!(BrokerUrl::parse(bad).is_err(), "{bad}");
        }
        assert!(BrokerUrl::parse("mqtt://u:p@h").unwrap_err().contains("password_file"));
    }

    #[test]
    fn ids() {
        assert!(check_id("x", "mat-1_A").is_ok());
        for bad in ["", "a/b", "a+b", "a#", "a b", "é", &"x".repeat(65)] {
            assert!(check_id("x", bad).is_err(), "{bad:?}");
        }
        assert_eq!(derive_gateway_id("raspberrypi", "3F2a1b00aa"), "raspberrypi-3f2a1b");
        assert_eq!(derive_gateway_id("gym.local", ""), "gym");
        assert_eq!(derive_gateway_id("", "zz"), "flatback");
        assert!(check_id("g", &derive_gateway_id("a host!", "0123456789")).is_ok());
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = MqttConfig::default();
        assert!(c.validate().is_ok());
        c.base_topic = "a/#".into();
        assert!(c.validate().unwrap_err().contains("mqtt.base_topic"));
        let mut c = MqttConfig {
            client_cert_file: Some("c.pem".into()),
            ..MqttConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("client_key_file"));
        c.client_cert_file = None;
        c.password_env = Some("P".into());
        assert!(c.validate().unwrap_err().contains("username"));
        c.username = "u".into();
        assert!(c.validate().is_ok());
        c.keep_alive_s = 1;
        assert!(c.validate().unwrap_err().contains("keep_alive_s"));
    }

    #[test]
    fn secrets_are_never_printed() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        std::fs::write(&f, "hunter2\nignored\n").unwrap();
        let c = MqttConfig {
            username: "coach".into(),
            password_file: Some(f),
            ..MqttConfig::default()
        };
        let creds = c.credentials().unwrap().unwrap();
        assert_eq!(creds.password.as_ref().unwrap().expose(), "hunter2");
        let shown = format!("{creds:?}");
        assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
        let c = MqttConfig {
            username: "coach".into(),
            password_env: Some("FLATBACK_TEST_SURELY_UNSET_VAR".into()),
            ..MqttConfig::default()
        };
        assert!(c.credentials().unwrap_err().contains("FLATBACK_TEST_SURELY_UNSET_VAR"));
    }
}

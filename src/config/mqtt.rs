//! The `[mqtt]` section of the configuration file, and the broker URL.
//!
//! Every key has a default (see `config/flatback.toml`); the password is
//! never in the file itself, only the name of a file or of an environment
//! variable that holds it (read by `mqtt::options`, never printed).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{check_id, Invalid};

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
    pub outbox_sync: SyncMode,
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
            outbox_sync: SyncMode::Background,
        }
    }
}

/// When an appended event is synced to the device (`outbox_sync`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncMode {
    /// Written at once (a crash of the process loses nothing), synced by a
    /// background thread within milliseconds (group commit); publishing
    /// does not wait for the device.
    #[default]
    Background,
    /// Synced before `append` returns, so before the event is published.
    EveryEvent,
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

/// A topic prefix: not empty, no wildcard, no leading or trailing `/`.
fn check_prefix(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    if p.contains(['+', '#', '\0']) {
        return Err(format!("\"{p}\": no MQTT wildcards (+ #) allowed"));
    }
    if p.starts_with('/') || p.ends_with('/') || p.contains("//") {
        return Err(format!(
            "\"{p}\": no empty topic levels (leading, trailing or double /)"
        ));
    }
    Ok(())
}

impl MqttConfig {
    /// Checks every value; errors name the key (`mqtt.KEY`).
    pub fn validate(&self) -> Result<(), Invalid> {
        let bad = |key: &str, message: String| Err(Invalid::new(format!("mqtt.{key}"), message));
        self.broker()?;
        if !self.gateway_id.is_empty() {
            check_id(&self.gateway_id).or_else(|m| bad("gateway_id", m))?;
        }
        check_prefix(&self.base_topic).or_else(|m| bad("base_topic", m))?;
        check_prefix(&self.discovery_prefix).or_else(|m| bad("discovery_prefix", m))?;
        if !(5..=3600).contains(&self.keep_alive_s) {
            return bad("keep_alive_s", format!("{}: must be 5..=3600", self.keep_alive_s));
        }
        let positive = [
            ("reconnect_min_s", self.reconnect_min_s),
            ("reconnect_max_s", self.reconnect_max_s),
            ("state_min_interval_s", self.state_min_interval_s),
            ("heartbeat_s", self.heartbeat_s),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0) {
                return bad(key, format!("{v}: must be a positive number of seconds"));
            }
        }
        if self.reconnect_max_s < self.reconnect_min_s {
            return bad(
                "reconnect_max_s",
                format!(
                    "{} is below mqtt.reconnect_min_s = {}",
                    self.reconnect_max_s, self.reconnect_min_s
                ),
            );
        }
        if !(self.discovery_resend_max_s.is_finite() && self.discovery_resend_max_s >= 0.0) {
            return bad(
                "discovery_resend_max_s",
                format!("{}: must be 0 or more", self.discovery_resend_max_s),
            );
        }
        if self.outbox_max_bytes < 64 * 1024 {
            return bad(
                "outbox_max_bytes",
                format!("{}: must be at least 65536", self.outbox_max_bytes),
            );
        }
        if self.client_cert_file.is_some() != self.client_key_file.is_some() {
            let key = if self.client_cert_file.is_some() {
                "client_key_file"
            } else {
                "client_cert_file"
            };
            return bad(
                key,
                "client_cert_file and client_key_file go together: set both or neither".into(),
            );
        }
        if self.password_file.is_some() && self.password_env.is_some() {
            return bad(
                "password_env",
                "password_file and password_env: set one, not both".into(),
            );
        }
        if (self.password_file.is_some() || self.password_env.is_some()) && self.username.is_empty() {
            return bad("username", "empty, but a password is configured".into());
        }
        Ok(())
    }

    /// The broker's address, parsed from `url`.
    pub fn broker(&self) -> Result<BrokerUrl, Invalid> {
        BrokerUrl::parse(&self.url).map_err(|m| Invalid::new("mqtt.url", m))
    }
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
    fn validation_names_the_key() {
        let mut c = MqttConfig::default();
        assert!(c.validate().is_ok());
        c.base_topic = "a/#".into();
        assert_eq!(c.validate().unwrap_err().key, "mqtt.base_topic");
        let mut c = MqttConfig {
            client_cert_file: Some("c.pem".into()),
            ..MqttConfig::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "mqtt.client_key_file");
        c.client_cert_file = None;
        c.password_env = Some("P".into());
        assert_eq!(c.validate().unwrap_err().key, "mqtt.username");
        c.username = "u".into();
        assert!(c.validate().is_ok());
        c.keep_alive_s = 1;
        assert_eq!(c.validate().unwrap_err().key, "mqtt.keep_alive_s");
        assert!(c.validate().unwrap_err().to_string().contains("5..=3600"));
    }
}

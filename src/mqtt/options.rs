//! What the publisher needs, resolved from the `[mqtt]` section: the
//! broker, topics, the gateway's id, the credentials (the password read from
//! its file or variable, never printed) and TLS; rumqttc's options, and
//! connection errors put in words with the setting to check. Every error
//! names its key.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, EventLoop, LastWill, MqttOptions, NetworkOptions, QoS,
    TlsConfiguration, Transport,
};

use crate::config::{check_id, BrokerUrl, Invalid, MqttConfig};
use crate::wire::payload::OFFLINE;
use crate::wire::Topics;

/// Requests rumqttc's channel holds before `try_publish` says it is full.
const REQUEST_CHANNEL: usize = 64;
/// Publishes rumqttc keeps in flight (above the publisher's event window,
/// so states and availability still go out while events wait for acks).
const INFLIGHT: u16 = 100;
/// The largest packet read from the broker. Anything up to it is read and,
/// over the session's own limit, dropped with its topic named; a larger
/// one ends the connection (rumqttc cannot skip it), once: the next
/// connection starts a clean session, so a broker that kept the message
/// for the session does not send it again.
pub const READ_LIMIT: usize = 16 * 1024 * 1024;
/// The largest packet flatback sends (discovery configs are the largest,
/// a few KiB; events are far smaller).
pub const WRITE_LIMIT: usize = 256 * 1024;

/// Everything the publisher needs, resolved from the configuration.
#[derive(Debug, Clone)]
pub struct Options {
    pub broker: BrokerUrl,
    pub topics: Topics,
    pub gateway_name: String,
    pub client_id: String,
    pub keep_alive: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    pub state_min_interval: Duration,
    pub heartbeat: Duration,
    pub discovery: bool,
    pub discovery_resend_max: Duration,
    credentials: Option<Credentials>,
    tls: Option<Arc<rustls::ClientConfig>>,
    ca_file: Option<std::path::PathBuf>,
}

impl Options {
    /// Resolves `config` (reads the password and the TLS files). Errors name
    /// the key.
    pub fn from_config(config: &MqttConfig) -> Result<Options, Invalid> {
        config.validate()?;
        let broker = config.broker()?;
        let gateway = gateway_id(config);
        check_id(&gateway).map_err(|e| Invalid::new("mqtt.gateway_id", format!("derived from the host name: {e}")))?;
        let tls = if broker.tls {
            Some(Arc::new(super::tls::client_config(config)?))
        } else {
            None
        };
        Ok(Options {
            topics: Topics::new(&config.base_topic, &gateway, &config.discovery_prefix),
            gateway_name: if config.gateway_name.is_empty() {
                format!("flatback {gateway}")
            } else {
                config.gateway_name.clone()
            },
            client_id: format!("flatback-{gateway}"),
            keep_alive: Duration::from_secs(config.keep_alive_s),
            reconnect_min: Duration::from_secs_f64(config.reconnect_min_s),
            reconnect_max: Duration::from_secs_f64(config.reconnect_max_s),
            state_min_interval: Duration::from_secs_f64(config.state_min_interval_s),
            heartbeat: Duration::from_secs_f64(config.heartbeat_s),
            discovery: config.discovery,
            discovery_resend_max: Duration::from_secs_f64(config.discovery_resend_max_s),
            credentials: credentials(config)?,
            tls,
            ca_file: config.ca_file.clone(),
            broker,
        })
    }

    /// rumqttc's options: stable client id, persistent session, Last Will.
    pub fn mqtt_options(&self, client_id: &str, clean_session: bool, will: bool) -> MqttOptions {
        let mut o = MqttOptions::new(client_id, self.broker.host.clone(), self.broker.port);
        o.set_keep_alive(self.keep_alive);
        o.set_clean_session(clean_session);
        o.set_inflight(INFLIGHT);
        o.set_max_packet_size(READ_LIMIT, WRITE_LIMIT);
        if will {
            o.set_last_will(LastWill::new(
                self.topics.gateway_status(),
                OFFLINE,
                QoS::AtLeastOnce,
                true,
            ));
        }
        if let Some(c) = &self.credentials {
            let password = c.password.as_ref().map(|p| p.expose().to_string()).unwrap_or_default();
            o.set_credentials(c.username.clone(), password);
        }
        if let Some(tls) = &self.tls {
            o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(tls.clone())));
        }
        o
    }

    /// A client and its event loop with `tcp_nodelay` on.
    pub fn connect(&self, client_id: &str, clean_session: bool, will: bool) -> (AsyncClient, EventLoop) {
        let (client, mut el) = AsyncClient::new(self.mqtt_options(client_id, clean_session, will), REQUEST_CHANNEL);
        let mut net = NetworkOptions::new();
        net.set_tcp_nodelay(true);
        net.set_connection_timeout(10);
        el.set_network_options(net);
        (client, el)
    }

    /// A connection error in words, with a hint at the setting to check.
    pub fn describe(&self, e: &ConnectionError) -> String {
        let b = &self.broker;
        match e {
            ConnectionError::ConnectionRefused(code) => {
                let why = match code {
                    ConnectReturnCode::BadUserNamePassword => {
                        "bad user name or password (check mqtt.username and mqtt.password_file / password_env)"
                    }
                    // Mosquitto answers this one to a wrong password too.
                    ConnectReturnCode::NotAuthorized => {
                        "not authorized: wrong user name or password, or not allowed \
                         (check mqtt.username, mqtt.password_file / password_env and the broker's ACL)"
                    }
                    ConnectReturnCode::BadClientId => "client id refused",
                    ConnectReturnCode::ServiceUnavailable => "service unavailable",
                    ConnectReturnCode::RefusedProtocolVersion => "MQTT 3.1.1 not supported",
                    ConnectReturnCode::Success => "success?",
                };
                format!("broker {b} refused the connection: {why}")
            }
            ConnectionError::Tls(t) => {
                let rustls_err = match t {
                    rumqttc::TlsError::TLS(r) => Some(r),
                    rumqttc::TlsError::Io(io) => io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()),
                    _ => None,
                };
                let hint = match rustls_err {
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) => {
                        match &self.ca_file {
                            Some(ca) => format!(
                                ": the broker's certificate is not signed by the CA in mqtt.ca_file ({})",
                                ca.display()
                            ),
                            None => ": the broker's certificate is not signed by a CA this system trusts \
                                   (set mqtt.ca_file)"
                                .to_string(),
                        }
                    }
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName)) => {
                        format!(
                            ": the broker's certificate is not valid for the host name \"{}\"",
                            b.host
                        )
                    }
                    Some(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)) => {
                        ": the broker's certificate has expired".to_string()
                    }
                    _ => String::new(),
                };
                let detail = rustls_err.map_or_else(|| t.to_string(), |r| r.to_string());
                format!("TLS handshake with {b} failed: {detail}{hint}")
            }
            ConnectionError::MqttState(rumqttc::StateError::Deserialization(
                rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(size),
            )) => format!(
                "broker {b} sent a message of {size} bytes, over the read limit of {READ_LIMIT}: \
                 the connection is dropped to skip it, and the next one starts a clean session so that it is not sent again"
            ),
            ConnectionError::Io(io) => format!("cannot reach broker {b}: {io}"),
            ConnectionError::NetworkTimeout => format!("broker {b}: connection timed out"),
            other => format!("broker {b}: {other}"),
        }
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

/// Reads the password from its file or environment variable. The error
/// names the file or variable, never the value.
pub fn credentials(config: &MqttConfig) -> Result<Option<Credentials>, Invalid> {
    if config.username.is_empty() {
        return Ok(None);
    }
    let password = if let Some(path) = &config.password_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Invalid::new("mqtt.password_file", format!("{}: {e}", path.display())))?;
        let line = text.lines().next().unwrap_or("").trim_end_matches('\r').to_string();
        if line.is_empty() {
            return Err(Invalid::new(
                "mqtt.password_file",
                format!("{}: the file is empty", path.display()),
            ));
        }
        Some(Secret::new(line))
    } else if let Some(var) = &config.password_env {
        match std::env::var(var) {
            Ok(v) if !v.is_empty() => Some(Secret::new(v)),
            Ok(_) => {
                return Err(Invalid::new(
                    "mqtt.password_env",
                    format!("environment variable {var} is empty"),
                ))
            }
            Err(_) => {
                return Err(Invalid::new(
                    "mqtt.password_env",
                    format!("environment variable {var} is not set"),
                ))
            }
        }
    } else {
        None
    };
    Ok(Some(Credentials {
        username: config.username.clone(),
        password,
    }))
}

/// The gateway id: the configured one, else derived from the host.
pub fn gateway_id(config: &MqttConfig) -> String {
    if !config.gateway_id.is_empty() {
        return config.gateway_id.clone();
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
    fn ids() {
        assert!(check_id("mat-1_A").is_ok());
        for bad in ["", "a/b", "a+b", "a#", "a b", "é", &"x".repeat(65)] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(derive_gateway_id("raspberrypi", "3F2a1b00aa"), "raspberrypi-3f2a1b");
        assert_eq!(derive_gateway_id("gym.local", ""), "gym");
        assert_eq!(derive_gateway_id("", "zz"), "flatback");
        assert!(check_id(&derive_gateway_id("a host!", "0123456789")).is_ok());
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
        let creds = credentials(&c).unwrap().unwrap();
        assert_eq!(creds.password.as_ref().unwrap().expose(), "hunter2");
        let shown = format!("{creds:?}");
        assert!(!shown.contains("hunter2") && shown.contains("***"), "{shown}");
        let c = MqttConfig {
            username: "coach".into(),
            password_env: Some("FLATBACK_TEST_SURELY_UNSET_VAR".into()),
            ..MqttConfig::default()
        };
        let e = credentials(&c).unwrap_err();
        assert_eq!(e.key, "mqtt.password_env");
        assert!(e.message.contains("FLATBACK_TEST_SURELY_UNSET_VAR"));
    }
}

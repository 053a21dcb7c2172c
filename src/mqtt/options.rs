//! What the publisher needs, resolved from the `[mqtt]` section: the
//! broker, topics, client id, credentials and TLS; rumqttc's options, and
//! connection errors put in words with the setting to check.

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, EventLoop, LastWill, MqttOptions, NetworkOptions, QoS,
    TlsConfiguration, Transport,
};

use super::config::{BrokerUrl, MqttConfig};
use crate::wire::payload::OFFLINE;
use crate::wire::Topics;

/// Requests rumqttc's channel holds before `try_publish` says it is full.
const REQUEST_CHANNEL: usize = 64;
/// Publishes rumqttc keeps in flight (above the publisher's event window,
/// so states and availability still go out while events wait for acks).
const INFLIGHT: u16 = 100;

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
    credentials: Option<super::config::Credentials>,
    tls: Option<Arc<rustls::ClientConfig>>,
    ca_file: Option<std::path::PathBuf>,
}

impl Options {
    /// Resolves `config` (reads the password and the TLS files). Errors name
    /// the key.
    pub fn from_config(config: &MqttConfig) -> Result<Options, String> {
        config.validate()?;
        let broker = config.broker()?;
        let gateway = config.resolved_gateway_id();
        super::config::check_id("gateway id", &gateway)?;
        let tls = if broker.tls {
            Some(Arc::new(super::tls::client_config(config)?))
        } else {
            None
        };
        Ok(Options {
            topics: Topics::new(&config.base_topic, &gateway, &config.discovery_prefix),
            gateway_name: config.resolved_gateway_name(&gateway),
            client_id: format!("flatback-{gateway}"),
            keep_alive: Duration::from_secs(config.keep_alive_s),
            reconnect_min: Duration::from_secs_f64(config.reconnect_min_s),
            reconnect_max: Duration::from_secs_f64(config.reconnect_max_s),
            state_min_interval: Duration::from_secs_f64(config.state_min_interval_s),
            heartbeat: Duration::from_secs_f64(config.heartbeat_s),
            discovery: config.discovery,
            discovery_resend_max: Duration::from_secs_f64(config.discovery_resend_max_s),
            credentials: config.credentials()?,
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
        o.set_max_packet_size(64 * 1024, 256 * 1024);
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
            ConnectionError::Io(io) => format!("cannot reach broker {b}: {io}"),
            ConnectionError::NetworkTimeout => format!("broker {b}: connection timed out"),
            other => format!("broker {b}: {other}"),
        }
    }
}

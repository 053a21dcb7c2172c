//! The `[web]` section: the gateway's web view (the coach's floor, one mat
//! full screen, the mat's grid, `/metrics`, `/health`).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Invalid;

/// `[web]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// Address and port the web view listens on; empty: no web view (nor
    /// `/metrics` and `/health`).
    pub listen: String,
    /// File whose first line is the token that commands from the page need
    /// (reset counters, new set, re-reference). Unset: the page is
    /// read-only. Never in this file itself, never logged.
    pub token_file: Option<PathBuf>,
    /// Most browsers (and `/metrics` scrapers) connected at once; more are
    /// refused until one leaves.
    pub max_connections: usize,
    /// Most connections at once from one client address, so that one client
    /// (a stranger on the gym's Wi-Fi) cannot hold every slot; more from that
    /// address are refused until one closes. Behind a reverse proxy every
    /// browser shares the proxy's address: raise it to `max_connections`.
    pub max_connections_per_client: usize,
    /// Pictures of a mat's last sessions kept in memory (0: none).
    pub pictures_per_mat: usize,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            listen: "0.0.0.0:8080".into(),
            token_file: None,
            max_connections: 256,
            max_connections_per_client: 32,
            pictures_per_mat: 3,
        }
    }
}

impl WebConfig {
    /// The address to listen on; `None` when the web view is off.
    pub fn address(&self) -> Result<Option<SocketAddr>, Invalid> {
        let listen = self.listen.trim();
        if listen.is_empty() {
            return Ok(None);
        }
        listen.parse().map(Some).map_err(|_| {
            Invalid::new(
                "web.listen",
                format!("\"{listen}\": an address and port, like \"0.0.0.0:8080\" or \"[::]:8080\"; \"\" turns the web view off"),
            )
        })
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        self.address()?;
        if !(1..=10_000).contains(&self.max_connections) {
            return Err(Invalid::new(
                "web.max_connections",
                format!("{}: must be 1..=10000", self.max_connections),
            ));
        }
        if !(1..=10_000).contains(&self.max_connections_per_client) {
            return Err(Invalid::new(
                "web.max_connections_per_client",
                format!(
                    "{}: must be 1..=10000 (at or above max_connections: no cap per client)",
                    self.max_connections_per_client
                ),
            ));
        }
        if self.pictures_per_mat > 20 {
            return Err(Invalid::new(
                "web.pictures_per_mat",
                format!("{}: at most 20", self.pictures_per_mat),
            ));
        }
        if self.token_file.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(Invalid::new(
                "web.token_file",
                "an empty path: leave the key out for a read-only page",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_is_an_address_or_nothing() {
        assert_eq!(
            WebConfig::default().address().unwrap(),
            Some("0.0.0.0:8080".parse().unwrap())
        );
        let off = WebConfig {
            listen: String::new(),
            ..WebConfig::default()
        };
        assert_eq!(off.address().unwrap(), None);
        let bad = WebConfig {
            listen: "localhost".into(),
            ..WebConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().key, "web.listen");
        let zero = WebConfig {
            max_connections: 0,
            ..WebConfig::default()
        };
        assert_eq!(zero.validate().unwrap_err().key, "web.max_connections");
        let zero = WebConfig {
            max_connections_per_client: 0,
            ..WebConfig::default()
        };
        assert_eq!(zero.validate().unwrap_err().key, "web.max_connections_per_client");
    }
}

//! Topic names, all in one place (pure functions of the configuration).
//!
//! ```text
//! <base>/<gateway>/status            online | offline   retained, QoS 1, Last Will
//! <base>/<gateway>/state             gateway JSON       retained
//! <base>/<gateway>/<mat>/status      online | offline   retained, QoS 1
//! <base>/<gateway>/<mat>/state       mat JSON state     retained
//! <base>/<gateway>/<mat>/event       events             QoS 1, never retained
//! <base>/<gateway>/<mat>/command     commands to the mat (subscribed)
//! <prefix>/<component>/flatback_<gateway>/<object>/config   discovery
//! <prefix>/status                    Home Assistant's birth (subscribed)
//! ```

/// Topic builder for one gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
    gateway: String,
    prefix: String,
}

impl Topics {
    /// `base` and `prefix` are validated topic prefixes, `gateway` an id.
    pub fn new(base: &str, gateway: &str, discovery_prefix: &str) -> Self {
        Topics {
            base: base.to_string(),
            gateway: gateway.to_string(),
            prefix: discovery_prefix.to_string(),
        }
    }

    pub fn gateway(&self) -> &str {
        &self.gateway
    }

    pub fn gateway_status(&self) -> String {
        format!("{}/{}/status", self.base, self.gateway)
    }

    pub fn gateway_state(&self) -> String {
        format!("{}/{}/state", self.base, self.gateway)
    }

    fn mat(&self, mat: &str, leaf: &str) -> String {
        format!("{}/{}/{mat}/{leaf}", self.base, self.gateway)
    }

    pub fn mat_status(&self, mat: &str) -> String {
        self.mat(mat, "status")
    }

    pub fn mat_state(&self, mat: &str) -> String {
        self.mat(mat, "state")
    }

    pub fn mat_event(&self, mat: &str) -> String {
        self.mat(mat, "event")
    }

    pub fn mat_command(&self, mat: &str) -> String {
        self.mat(mat, "command")
    }

    /// Subscription for the commands of every mat of this gateway.
    pub fn command_filter(&self) -> String {
        self.mat("+", "command")
    }

    /// The mat a command topic is for, `None` if `topic` is not a command
    /// topic of this gateway.
    pub fn command_mat<'a>(&self, topic: &'a str) -> Option<&'a str> {
        let rest = topic.strip_prefix(self.base.as_str())?.strip_prefix('/')?;
        let rest = rest.strip_prefix(self.gateway.as_str())?.strip_prefix('/')?;
        let mat = rest.strip_suffix("/command")?;
        (!mat.is_empty() && !mat.contains('/')).then_some(mat)
    }

    /// Home Assistant's status (birth and will) topic.
    pub fn ha_status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    /// HA's discovery `node_id`: one per gateway, so that one subscription
    /// finds every config this gateway made.
    pub fn node_id(&self) -> String {
        format!("flatback_{}", self.gateway)
    }

    /// `<prefix>/<component>/flatback_<gateway>/<object>/config`.
    pub fn discovery_config(&self, component: &str, object: &str) -> String {
        format!("{}/{component}/{}/{object}/config", self.prefix, self.node_id())
    }

    /// Subscription matching every discovery config of this gateway.
    pub fn discovery_filter(&self) -> String {
        format!("{}/+/{}/+/config", self.prefix, self.node_id())
    }

    /// Whether `topic` is one of this gateway's discovery configs.
    pub fn is_discovery_config(&self, topic: &str) -> bool {
        let parts: Vec<&str> = topic.split('/').collect();
        let prefix_levels = self.prefix.split('/').count();
        parts.len() == prefix_levels + 4
            && parts[..prefix_levels].join("/") == self.prefix
            && !parts[prefix_levels].is_empty()
            && parts[prefix_levels + 1] == self.node_id()
            && !parts[prefix_levels + 2].is_empty()
            && parts[prefix_levels + 3] == "config"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn layout() {
        let t = Topics::new("flatback", "gw1", "homeassistant");
        assert_eq!(t.gateway_status(), "flatback/gw1/status");
        assert_eq!(t.mat_event("mat1"), "flatback/gw1/mat1/event");
        assert_eq!(t.mat_state("mat1"), "flatback/gw1/mat1/state");
        assert_eq!(t.mat_status("mat1"), "flatback/gw1/mat1/status");
        assert_eq!(t.command_filter(), "flatback/gw1/+/command");
        assert_eq!(t.ha_status(), "homeassistant/status");
        assert_eq!(
            t.discovery_config("sensor", "mat1_reps"),
            "homeassistant/sensor/flatback_gw1/mat1_reps/config"
        );
        assert_eq!(t.discovery_filter(), "homeassistant/+/flatback_gw1/+/config");
    }

    #[test]
    fn command_topics() {
        let t = Topics::new("gym/floor2", "gw1", "ha");
        assert_eq!(t.command_mat("gym/floor2/gw1/mat3/command"), Some("mat3"));
        for other in [
            "gym/floor2/gw1/command",
            "gym/floor2/gw2/mat3/command",
            "gym/floor2/gw1/mat3/state",
            "gym/floor2/gw1/a/b/command",
            "gym/floor2/gw1//command",
            "gym/floor2x/gw1/mat3/command",
        ] {
            assert_eq!(t.command_mat(other), None, "{other}");
        }
    }

    proptest! {
        #[test]
        fn builders_and_parsers_agree(
            base in "[a-z]{1,6}(/[a-z0-9]{1,4}){0,2}",
            prefix in "[a-z]{1,6}(/[a-z]{1,3}){0,1}",
            gw in "[A-Za-z0-9_-]{1,12}",
            mat in "[A-Za-z0-9_-]{1,12}",
            component in "(sensor|binary_sensor|button|event)",
        ) {
            let t = Topics::new(&base, &gw, &prefix);
            let command = t.mat_command(&mat);
            let event = t.mat_event(&mat);
            prop_assert_eq!(t.command_mat(&command), Some(mat.as_str()));
            prop_assert_eq!(t.command_mat(&event), None);
            let cfg = t.discovery_config(&component, &format!("{mat}_reps"));
            prop_assert!(t.is_discovery_config(&cfg));
            prop_assert!(!t.is_discovery_config(&t.mat_state(&mat)));
            let other = Topics::new(&base, &format!("{gw}x"), &prefix);
            prop_assert!(!t.is_discovery_config(&other.discovery_config(&component, "o")));
            for topic in [t.mat_event(&mat), t.mat_state(&mat), t.gateway_status(), cfg] {
                prop_assert!(!topic.contains('+') && !topic.contains('#') && !topic.contains("//"));
            }
        }
    }
}

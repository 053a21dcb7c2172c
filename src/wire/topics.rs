//! The topic layout, built and parsed, in one place (pure).
//!
//! ```text
//! <base>/<gateway>/status            online | offline   retained, QoS 1, Last Will
//! <base>/<gateway>/state             gateway JSON       retained
//! <base>/<gateway>/<mat>/status      online | offline   retained, QoS 1
//! <base>/<gateway>/<mat>/state       mat JSON state     retained
//! <base>/<gateway>/<mat>/event       events             QoS 1, never retained
//! <base>/<gateway>/<mat>/command     commands to the mat (subscribed)
//! <base>/<gateway>/marker            the gateway's markers to itself (QoS 0)
//! <prefix>/<component>/flatback_<gateway>/<object>/config   discovery
//! <prefix>/status                    Home Assistant's birth (subscribed)
//! ```
//!
//! `<base>` may have several levels (`gym/floor2`); gateway and mat ids are
//! single levels. [`Topics`] builds one gateway's topics; [`parse`] reads any
//! gateway's (what a watcher sees); [`matches`] is the MQTT filter rule.

/// What a topic under `<base>` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    GatewayStatus { gateway: &'a str },
    GatewayState { gateway: &'a str },
    MatStatus { gateway: &'a str, mat: &'a str },
    MatState { gateway: &'a str, mat: &'a str },
    MatEvent { gateway: &'a str, mat: &'a str },
    MatCommand { gateway: &'a str, mat: &'a str },
}

/// What `topic` is about; `None` for topics outside the layout.
pub fn parse<'a>(base: &str, topic: &'a str) -> Option<Subject<'a>> {
    let rest = topic.strip_prefix(base)?.strip_prefix('/')?;
    let mut parts = rest.split('/');
    let (a, b, c, more) = (parts.next(), parts.next(), parts.next(), parts.next());
    if more.is_some() || rest.split('/').any(str::is_empty) {
        return None;
    }
    match (a?, b?, c) {
        (gateway, "status", None) => Some(Subject::GatewayStatus { gateway }),
        (gateway, "state", None) => Some(Subject::GatewayState { gateway }),
        (gateway, mat, Some("status")) => Some(Subject::MatStatus { gateway, mat }),
        (gateway, mat, Some("state")) => Some(Subject::MatState { gateway, mat }),
        (gateway, mat, Some("event")) => Some(Subject::MatEvent { gateway, mat }),
        (gateway, mat, Some("command")) => Some(Subject::MatCommand { gateway, mat }),
        _ => None,
    }
}

/// The subscriptions that see every gateway and mat under `base`: their
/// availability, states and events (not commands, nor the gateways' state).
pub fn watch_filters(base: &str) -> Vec<String> {
    vec![
        format!("{base}/+/status"),
        format!("{base}/+/+/status"),
        format!("{base}/+/+/state"),
        format!("{base}/+/+/event"),
    ]
}

/// Whether `topic` matches the MQTT filter `filter`: `+` is one level, `#`
/// the rest (the parent level included); wildcards at the first level do not
/// match topics starting with `$` (MQTT 3.1.1, 4.7.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut levels = topic.split('/');
    for f in filter.split('/') {
        if f == "#" {
            return true;
        }
        match levels.next() {
            Some(level) if f == "+" || f == level => {}
            _ => return false,
        }
    }
    levels.next().is_none()
}

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
        match parse(&self.base, topic)? {
            Subject::MatCommand { gateway, mat } if gateway == self.gateway => Some(mat),
            _ => None,
        }
    }

    /// The base topic every gateway publishes under.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Where the gateway publishes markers to itself: when one comes back,
    /// everything the broker sent before it has arrived.
    pub fn marker(&self) -> String {
        format!("{}/{}/marker", self.base, self.gateway)
    }

    /// An athlete's figures for their Home Assistant sensors (retained):
    /// `<base>/<gateway>/athletes/<id>`, which reads as no mat's topic.
    pub fn athlete_state(&self, athlete: &str) -> String {
        format!("{}/{}/athletes/{athlete}", self.base, self.gateway)
    }

    /// Whether `topic` is one of this gateway's athletes' figures.
    pub fn is_athlete_state(&self, topic: &str) -> bool {
        topic
            .strip_prefix(&self.athlete_state(""))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
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
        assert_eq!(t.athlete_state("a-1f2e3d4c"), "flatback/gw1/athletes/a-1f2e3d4c");
        assert!(t.is_athlete_state("flatback/gw1/athletes/a-1f2e3d4c"));
        assert!(!t.is_athlete_state("flatback/gw1/athletes/"));
        assert!(!t.is_athlete_state("flatback/gw2/athletes/a-1"));
        assert!(!t.is_athlete_state("flatback/gw1/athletes/a-1/x"));
        assert_eq!(
            parse("flatback", &t.athlete_state("a-1f2e3d4c")),
            None,
            "no mat's topic"
        );
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

    #[test]
    fn reads_the_layout_under_a_multi_level_base() {
        let base = "gym/floor2";
        assert_eq!(
            parse(base, "gym/floor2/gw1/status"),
            Some(Subject::GatewayStatus { gateway: "gw1" })
        );
        assert_eq!(
            parse(base, "gym/floor2/gw1/state"),
            Some(Subject::GatewayState { gateway: "gw1" })
        );
        assert_eq!(
            parse(base, "gym/floor2/gw1/mat3/status"),
            Some(Subject::MatStatus {
                gateway: "gw1",
                mat: "mat3"
            })
        );
        assert_eq!(
            parse(base, "gym/floor2/gw1/mat3/state"),
            Some(Subject::MatState {
                gateway: "gw1",
                mat: "mat3"
            })
        );
        assert_eq!(
            parse(base, "gym/floor2/gw1/mat3/event"),
            Some(Subject::MatEvent {
                gateway: "gw1",
                mat: "mat3"
            })
        );
        assert_eq!(
            parse(base, "gym/floor2/gw1/mat3/command"),
            Some(Subject::MatCommand {
                gateway: "gw1",
                mat: "mat3"
            })
        );
        for other in [
            "gym/floor2/gw1//event",
            "gym/floor2/gw1/a/b/event",
            "gym/floor2x/gw1/mat3/event",
            "gym/floor2",
            "gym/floor2/gw1",
            "gym/floor2/gw1/mat3/other",
            "other/gw1/mat3/event",
        ] {
            assert_eq!(parse(base, other), None, "{other}");
        }
    }

    #[test]
    fn the_watch_filters_cover_exactly_what_a_watcher_reads() {
        let base = "flatback";
        let read = [
            "flatback/gw1/status",
            "flatback/gw1/mat1/status",
            "flatback/gw1/mat1/state",
            "flatback/gw1/mat1/event",
        ];
        for topic in read {
            assert!(parse(base, topic).is_some());
            assert!(watch_filters(base).iter().any(|f| matches(f, topic)), "{topic}");
        }
        for topic in [
            "flatback/gw1/mat1/command",
            "flatback/gw1/state",
            "homeassistant/status",
        ] {
            assert!(!watch_filters(base).iter().any(|f| matches(f, topic)), "{topic}");
        }
        assert_eq!(
            Topics::new(base, "gw1", "homeassistant").mat_command("mat1"),
            "flatback/gw1/mat1/command"
        );
        assert!(matches("a/#", "a/b/c") && !matches("a/+", "a/b/c") && matches("a/+/c", "a/b/c"));
    }

    #[test]
    fn plus_matches_exactly_one_level_and_hash_the_rest_including_the_parent() {
        let cases = [
            ("a/b/c", "a/b/c", true),
            ("a/b/c", "a/b", false),
            ("a/b", "a/b/c", false),
            ("a/+/c", "a/b/c", true),
            ("a/+/c", "a/b/x/c", false),
            ("a/+", "a/", true),
            ("+", "a", true),
            ("+", "a/b", false),
            ("+/+", "/x", true),
            ("a/#", "a", true),
            ("a/#", "a/b/c/d", true),
            ("a/#", "ab", false),
            ("#", "a/b", true),
            ("#", "/", true),
            ("+/b/#", "x/b", true),
            ("+/b/#", "x/c/b", false),
        ];
        for (filter, topic, want) in cases {
            assert_eq!(matches(filter, topic), want, "{filter} vs {topic}");
        }
    }

    #[test]
    fn dollar_topics_match_only_filters_that_name_their_first_level() {
        assert!(!matches("#", "$SYS/uptime"));
        assert!(!matches("+/uptime", "$SYS/uptime"));
        assert!(matches("$SYS/#", "$SYS/uptime"));
        assert!(matches("$SYS/+", "$SYS/uptime"));
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

//! The publisher's topic layout, as a watcher reads it (pure).
//!
//! ```text
//! <base>/<gateway>/status            online | offline   retained (the gateway's Last Will)
//! <base>/<gateway>/<mat>/status      online | offline   retained
//! <base>/<gateway>/<mat>/state       mat JSON state     retained
//! <base>/<gateway>/<mat>/event       events (contract JSON + mat, seq, time)
//! <base>/<gateway>/<mat>/command     commands to the mat
//! ```
//!
//! `<base>` may have several levels (`gym/floor2`); gateway and mat ids are
//! single levels.

/// What a message is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    GatewayStatus { gateway: &'a str },
    MatStatus { gateway: &'a str, mat: &'a str },
    MatState { gateway: &'a str, mat: &'a str },
    MatEvent { gateway: &'a str, mat: &'a str },
}

/// The subscriptions that see every gateway and mat under `base`.
pub fn filters(base: &str) -> Vec<String> {
    vec![
        format!("{base}/+/status"),
        format!("{base}/+/+/status"),
        format!("{base}/+/+/state"),
        format!("{base}/+/+/event"),
    ]
}

/// Where commands to a mat go.
pub fn command(base: &str, gateway: &str, mat: &str) -> String {
    format!("{base}/{gateway}/{mat}/command")
}

/// What `topic` is about; `None` for topics outside the layout (a gateway's
/// own state, commands, anything else under `base`).
pub fn parse<'a>(base: &str, topic: &'a str) -> Option<Subject<'a>> {
    let rest = topic.strip_prefix(base)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    match parts[..] {
        [gateway, "status"] => Some(Subject::GatewayStatus { gateway }),
        [gateway, mat, "status"] => Some(Subject::MatStatus { gateway, mat }),
        [gateway, mat, "state"] => Some(Subject::MatState { gateway, mat }),
        [gateway, mat, "event"] => Some(Subject::MatEvent { gateway, mat }),
        _ => None,
    }
}

/// Whether `topic` matches the MQTT filter `filter` (`+` one level, `#` the
/// rest): lets the tests check that [`filters`] cover what [`parse`] reads.
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_layout_under_a_multi_level_base() {
        let base = "gym/floor2";
        assert_eq!(
            parse(base, "gym/floor2/gw1/status"),
            Some(Subject::GatewayStatus { gateway: "gw1" })
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
        for other in [
            "gym/floor2/gw1/state",
            "gym/floor2/gw1/mat3/command",
            "gym/floor2/gw1//event",
            "gym/floor2/gw1/a/b/event",
            "gym/floor2x/gw1/mat3/event",
            "gym/floor2",
            "other/gw1/mat3/event",
        ] {
            assert_eq!(parse(base, other), None, "{other}");
        }
    }

    #[test]
    fn the_filters_cover_exactly_what_is_read() {
        let base = "flatback";
        let read = [
            "flatback/gw1/status",
            "flatback/gw1/mat1/status",
            "flatback/gw1/mat1/state",
            "flatback/gw1/mat1/event",
        ];
        for topic in read {
            assert!(parse(base, topic).is_some());
            assert!(filters(base).iter().any(|f| matches(f, topic)), "{topic}");
        }
        for topic in [
            "flatback/gw1/mat1/command",
            "flatback/gw1/state",
            "homeassistant/status",
        ] {
            assert!(!filters(base).iter().any(|f| matches(f, topic)), "{topic}");
        }
        assert_eq!(command(base, "gw1", "mat1"), "flatback/gw1/mat1/command");
        assert!(matches("a/#", "a/b/c") && !matches("a/+", "a/b/c") && matches("a/+/c", "a/b/c"));
    }
}

//! Payloads (pure JSON builders): the event envelope, the mat's state, the
//! gateway's state, and RFC 3339 time stamps.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::MatState;
use crate::contract::event::Event;

/// The availability payloads.
pub const ONLINE: &str = "online";
pub const OFFLINE: &str = "offline";

/// An event as published: the contract's JSON (`type`, `t_ms`, ...) plus
/// `mat`, `seq` (per mat, increasing by one per event, across restarts),
/// `time` (wall clock, RFC 3339, UTC, milliseconds) and `athlete` (the id of
/// the athlete on the mat, or `null`).
pub fn event_envelope(event: &Event, mat: &str, seq: u64, time: SystemTime, athlete: Option<&str>) -> String {
    let mut v = match serde_json::to_value(event) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    v.insert("mat".into(), Value::from(mat));
    v.insert("seq".into(), Value::from(seq));
    v.insert("time".into(), Value::from(rfc3339(time)));
    v.insert("athlete".into(), athlete.map_or(Value::Null, Value::from));
    Value::Object(v).to_string()
}

/// Outbox figures for one mat (or the whole gateway).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxFigures {
    /// Events waiting for the broker's acknowledgement.
    pub queued_events: u64,
    /// Events a full outbox had to drop (ever, for this outbox directory).
    pub dropped_events: u64,
}

/// The retained state JSON of a mat.
pub fn state_payload(state: &MatState, outbox: OutboxFigures, time: SystemTime) -> String {
    let mut v = match serde_json::to_value(state) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    v.insert("queued_events".into(), outbox.queued_events.into());
    v.insert("dropped_events".into(), outbox.dropped_events.into());
    v.insert("time".into(), rfc3339(time).into());
    Value::Object(v).to_string()
}

/// The retained state JSON of the gateway.
pub fn gateway_state_payload(mats: &[String], outbox: OutboxFigures, version: &str, time: SystemTime) -> String {
    serde_json::json!({
        "mats": mats,
        "queued_events": outbox.queued_events,
        "dropped_events": outbox.dropped_events,
        "version": version,
        "time": rfc3339(time),
    })
    .to_string()
}

/// `2024-03-05T17:04:09.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let millis = d.subsec_millis();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, day) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) to days since 1970-01-01, proleptic Gregorian (the
/// inverse of [`civil_from_days`]).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2024-03-05T17:04:09.123Z` (as [`rfc3339`] writes it, seconds' fraction
/// optional) to ms since the Unix epoch.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 || frac.is_empty() {
        return None;
    }
    let millis = format!("{frac:0<3}")[..3].parse::<i64>().ok()?;
    let days = days_from_civil(y, m as u32, day as u32);
    Some(((days * 24 + h) * 60 + min) * 60_000 + sec * 1000 + millis)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::event::{ArchEvent, Phase, RepEvent};
    use crate::wire::state::Counters;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis)
    }

    #[test]
    fn rfc3339_reads_back() {
        for ms in [0u64, 5, 951_782_400_005, 1_709_658_249_123, 4_102_444_799_999] {
            let t = UNIX_EPOCH + Duration::from_millis(ms);
            assert_eq!(parse_rfc3339_ms(&rfc3339(t)), Some(ms as i64));
        }
        assert_eq!(parse_rfc3339_ms("2024-03-05T17:04:09Z"), Some(1_709_658_249_000));
        assert_eq!(parse_rfc3339_ms("2024-13-05T17:04:09Z"), None);
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
    }

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(at(0, 0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400, 5)), "2000-02-29T00:00:00.005Z");
        assert_eq!(rfc3339(at(1_709_658_249, 123)), "2024-03-05T17:04:09.123Z");
        assert_eq!(rfc3339(at(4_102_444_799, 999)), "2099-12-31T23:59:59.999Z");
    }

    #[test]
    fn envelope_keeps_the_contract_fields_and_adds_mat_seq_time() {
        let e = Event::Rep(RepEvent {
            t_ms: 5123,
            set: 2,
            rep: 7,
            perfect: false,
            arched: true,
            rushed: false,
            descent_ms: 3100,
            ascent_ms: Some(1200),
            bounce: false,
            depth: Some(0.5),
        });
        let v: Value =
            serde_json::from_str(&event_envelope(&e, "mat1", 42, at(1_709_658_249, 0), Some("a-1"))).unwrap();
        let contract: Value = serde_json::from_str(&e.to_json()).unwrap();
        for (k, val) in contract.as_object().unwrap() {
            assert_eq!(&v[k], val, "field {k}");
        }
        assert_eq!(v["mat"], "mat1");
        assert_eq!(v["seq"], 42);
        assert_eq!(v["time"], "2024-03-05T17:04:09.000Z");
        assert_eq!(v["type"], "rep");
        assert_eq!(v["athlete"], "a-1");
        let back: Event = serde_json::from_value(v).unwrap_or_else(|_| panic!("the envelope still parses as an event"));
        assert_eq!(back, e);
        let a = Event::Arch(ArchEvent {
            t_ms: 1,
            phase: Phase::End,
            onset_ms: None,
            contact: None,
            duration_ms: Some(800),
            min_contact: Some(0.3),
        });
        let v: Value = serde_json::from_str(&event_envelope(&a, "m", 1, at(0, 0), None)).unwrap();
        assert_eq!((v["type"].as_str(), v["phase"].as_str()), (Some("arch"), Some("end")));
        assert!(v["athlete"].is_null(), "a guest's event says so");
    }

    #[test]
    fn state_has_every_field() {
        let s = MatState {
            occupied: true,
            contact: Some(87),
            counters: Counters {
                set: 2,
                reps: 9,
                perfect_reps: 7,
                ..Counters::default()
            },
            last_descent_s: Some(3.4),
            sample_rate_hz: 200.0,
            ..MatState::default()
        };
        let v: Value = serde_json::from_str(&state_payload(
            &s,
            OutboxFigures {
                queued_events: 3,
                dropped_events: 1,
            },
            at(0, 0),
        ))
        .unwrap();
        for key in [
            "occupied",
            "arching",
            "contact",
            "set",
            "set_reps",
            "set_perfect",
            "reps",
            "perfect_reps",
            "arches",
            "last_descent_s",
            "sample_rate_hz",
            "overruns",
            "taxel_faults",
            "queued_events",
            "dropped_events",
            "time",
        ] {
            assert!(v.get(key).is_some(), "state lacks {key}: {v}");
        }
        assert_eq!(
            (v["contact"].as_u64(), v["queued_events"].as_u64()),
            (Some(87), Some(3))
        );
        assert!(v.get("counters").is_none(), "the counters are flat in the state: {v}");
        assert_eq!(serde_json::from_value::<MatState>(v).unwrap(), s, "and read back");
        let empty: Value =
            serde_json::from_str(&state_payload(&MatState::default(), OutboxFigures::default(), at(0, 0))).unwrap();
        assert!(empty["contact"].is_null() && empty["last_descent_s"].is_null());
    }
}

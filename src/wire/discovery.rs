//! Home Assistant MQTT discovery: the retained config of every entity
//! (pure builders), one HA device per mat linked to the gateway's device.
//!
//! `unique_id`s are `flatback_<gateway>_<mat>_<key>` (or
//! `flatback_<gateway>_<key>` for the gateway's own entities): built from ids,
//! never from names, so renaming a device in HA or in the config keeps its
//! history. Each config names its `origin`, and a mat's entities are
//! available only while both the gateway and the mat are `online`
//! (`availability_mode: all`).

use serde_json::{json, Map, Value};

use super::athlete_entities::{self, AthleteSensors};
use super::commands::MatCommand;
use super::topics::Topics;
use crate::history::RosterEntry;

/// What discovery needs to know besides the topics.
#[derive(Debug, Clone)]
pub struct Identity<'a> {
    pub topics: &'a Topics,
    pub gateway_name: &'a str,
    pub version: &'a str,
}

/// An entity's discovery message.
#[derive(Debug, Clone, PartialEq)]
pub struct DiscoveryConfig {
    pub topic: String,
    pub payload: Value,
}

const ORIGIN_URL: &str = "https://github.com/flatback/flatback";

/// The event types the `event` entity fires with.
pub const EVENT_TYPES: [&str; 3] = ["rep", "arch", "set"];

fn origin(version: &str) -> Value {
    json!({"name": "flatback", "sw_version": version, "support_url": ORIGIN_URL})
}

fn gateway_device_id(t: &Topics) -> String {
    format!("flatback_{}", t.gateway())
}

fn mat_device_id(t: &Topics, mat: &str) -> String {
    format!("flatback_{}_{mat}", t.gateway())
}

fn gateway_device(id: &Identity) -> Value {
    json!({
        "identifiers": [gateway_device_id(id.topics)],
        "name": id.gateway_name,
        "manufacturer": "flatback",
        "model": "flatback gateway",
        "sw_version": id.version,
    })
}

fn mat_device(id: &Identity, mat: &str) -> Value {
    json!({
        "identifiers": [mat_device_id(id.topics, mat)],
        "name": format!("flatback {mat}"),
        "manufacturer": "flatback",
        "model": "lumbar pressure mat",
        "sw_version": id.version,
        "via_device": gateway_device_id(id.topics),
    })
}

struct Entity<'a> {
    component: &'a str,
    key: &'a str,
    name: &'a str,
    extra: Value,
}

fn entity(id: &Identity, mat: Option<&str>, e: Entity) -> DiscoveryConfig {
    let t = id.topics;
    let (object, unique, device, availability) = match mat {
        Some(m) => (
            format!("{m}_{}", e.key),
            format!("{}_{}", mat_device_id(t, m), e.key),
            mat_device(id, m),
            json!([{"topic": t.gateway_status()}, {"topic": t.mat_status(m)}]),
        ),
        None => (
            e.key.to_string(),
            format!("{}_{}", gateway_device_id(t), e.key),
            gateway_device(id),
            json!([{"topic": t.gateway_status()}]),
        ),
    };
    let mut p = Map::new();
    p.insert("name".into(), e.name.into());
    p.insert("unique_id".into(), unique.into());
    p.insert("device".into(), device);
    p.insert("origin".into(), origin(id.version));
    p.insert("availability".into(), availability);
    p.insert("availability_mode".into(), "all".into());
    p.insert("payload_available".into(), super::payload::ONLINE.into());
    p.insert("payload_not_available".into(), super::payload::OFFLINE.into());
    if let Value::Object(extra) = e.extra {
        p.extend(extra);
    }
    DiscoveryConfig {
        topic: t.discovery_config(e.component, &object),
        payload: Value::Object(p),
    }
}

fn sensor(key: &str, field: &str, extra: Value) -> (String, String, Value) {
    (key.to_string(), field.to_string(), extra)
}

/// The gateway's own entities: the outbox figures.
pub fn gateway_configs(id: &Identity) -> Vec<DiscoveryConfig> {
    let state = id.topics.gateway_state();
    [
        ("queued_events", "Queued events", "measurement"),
        ("dropped_events", "Dropped events", "total_increasing"),
    ]
    .into_iter()
    .map(|(key, name, class)| {
        entity(
            id,
            None,
            Entity {
                component: "sensor",
                key,
                name,
                extra: json!({
                    "state_topic": state,
                    "value_template": format!("{{{{ value_json.{key} }}}}"),
                    "state_class": class,
                    "entity_category": "diagnostic",
                    "icon": "mdi:tray-full",
                }),
            },
        )
    })
    .collect()
}

/// Every entity of one mat.
pub fn mat_configs(id: &Identity, mat: &str) -> Vec<DiscoveryConfig> {
    let t = id.topics;
    let state = t.mat_state(mat);
    let mut out = Vec::new();
    for (key, name, field, class) in [
        ("arching", "Arching", "arching", "problem"),
        ("occupied", "Occupied", "occupied", "occupancy"),
    ] {
        out.push(entity(
            id,
            Some(mat),
            Entity {
                component: "binary_sensor",
                key,
                name,
                extra: json!({
                    "state_topic": state,
                    "value_template": format!("{{{{ 'ON' if value_json.{field} else 'OFF' }}}}"),
                    "device_class": class,
                }),
            },
        ));
    }
    let sensors = [
        sensor(
            "reps",
            "reps",
            json!({"name": "Reps", "state_class": "total_increasing", "icon": "mdi:counter"}),
        ),
        sensor(
            "perfect_reps",
            "perfect_reps",
            json!({"name": "Perfect reps", "state_class": "total_increasing", "icon": "mdi:star-check"}),
        ),
        sensor(
            "contact",
            "contact",
            json!({"name": "Contact", "unit_of_measurement": "%", "state_class": "measurement", "icon": "mdi:gauge"}),
        ),
        sensor(
            "last_descent",
            "last_descent_s",
            json!({"name": "Last descent", "unit_of_measurement": "s", "device_class": "duration",
                   "state_class": "measurement", "suggested_display_precision": 1}),
        ),
        sensor("set", "set", json!({"name": "Set", "icon": "mdi:format-list-numbered"})),
        sensor(
            "sample_rate",
            "sample_rate_hz",
            json!({"name": "Sample rate", "unit_of_measurement": "Hz", "device_class": "frequency",
                   "state_class": "measurement", "entity_category": "diagnostic", "suggested_display_precision": 0}),
        ),
        sensor(
            "overruns",
            "overruns",
            json!({"name": "Sampler overruns", "state_class": "total_increasing", "entity_category": "diagnostic"}),
        ),
        sensor(
            "queued_events",
            "queued_events",
            json!({"name": "Queued events", "state_class": "measurement", "entity_category": "diagnostic"}),
        ),
        sensor(
            "dropped_events",
            "dropped_events",
            json!({"name": "Dropped events", "state_class": "total_increasing", "entity_category": "diagnostic"}),
        ),
        sensor(
            "taxel_faults",
            "taxel_faults",
            json!({"name": "Taxel faults", "state_class": "measurement", "entity_category": "diagnostic",
                   "icon": "mdi:alert-circle-outline"}),
        ),
    ];
    for (key, field, extra) in sensors {
        let name = extra["name"].as_str().unwrap_or(&key).to_string();
        let mut extra = extra;
        let obj = extra.as_object_mut().unwrap();
        obj.remove("name");
        obj.insert("state_topic".into(), state.clone().into());
        obj.insert("value_template".into(), format!("{{{{ value_json.{field} }}}}").into());
        out.push(entity(
            id,
            Some(mat),
            Entity {
                component: "sensor",
                key: &key,
                name: &name,
                extra,
            },
        ));
    }
    // Fires on rep, arch and set; other event types render empty, which HA
    // ignores. Events are never retained (HA drops retained event messages).
    let types = EVENT_TYPES.map(|t| format!("'{t}'")).join(",");
    out.push(entity(
        id,
        Some(mat),
        Entity {
            component: "event",
            key: "event",
            name: "Event",
            extra: json!({
                "state_topic": t.mat_event(mat),
                "event_types": EVENT_TYPES,
                "value_template": format!(
                    "{{% if value_json.type in [{types}] %}}{{{{ dict(value_json, event_type=value_json.type) | tojson }}}}{{% endif %}}"
                ),
                "qos": 1,
                "icon": "mdi:human-handsdown",
            }),
        },
    ));
    for (command, name, icon) in [
        (MatCommand::ResetCounters, "Reset counters", "mdi:counter"),
        (MatCommand::NewSet, "New set", "mdi:playlist-plus"),
        (MatCommand::Rereference, "Re-reference", "mdi:target"),
    ] {
        out.push(entity(
            id,
            Some(mat),
            Entity {
                component: "button",
                key: command.name(),
                name,
                extra: json!({
                    "command_topic": t.mat_command(mat),
                    "payload_press": command.name(),
                    "retain": false,
                    "icon": icon,
                }),
            },
        ));
    }
    out
}

/// A mat's athlete select (only with a history, whose roster it offers):
/// its options are "Guest" and the roster's display names; choosing one
/// sends `{"command":"athlete","name":OPTION}` to the mat's command topic,
/// and its state follows the mat's `athlete` id through a map of ids to
/// options in the template. Re-published whenever the roster changes.
pub fn athlete_select(id: &Identity, mat: &str, roster: &[RosterEntry]) -> DiscoveryConfig {
    let t = id.topics;
    let options = athlete_entities::options(roster);
    let labels: Vec<&str> = options.iter().map(|o| o.label.as_str()).collect();
    let by_id: Map<String, Value> = options
        .iter()
        .filter_map(|o| Some((o.id.clone()?, Value::from(o.label.clone()))))
        .collect();
    // A JSON object reads as a Jinja dict literal; an id not in it (nobody,
    // or an athlete removed since) shows as the guest.
    let map = Value::Object(by_id).to_string();
    entity(
        id,
        Some(mat),
        Entity {
            component: "select",
            key: "athlete",
            name: "Athlete",
            extra: json!({
                "command_topic": t.mat_command(mat),
                "command_template": "{\"command\":\"athlete\",\"name\":{{ value | tojson }}}",
                "options": labels,
                "state_topic": t.mat_state(mat),
                "value_template": format!("{{{{ {map}.get(value_json.athlete, '{}') }}}}", athlete_entities::GUEST),
                "retain": false,
                "icon": "mdi:account-switch",
            }),
        },
    )
}

fn athlete_device_id(t: &Topics, athlete: &str) -> String {
    format!("flatback_{}_athlete_{athlete}", t.gateway())
}

/// The sensors of an athlete's device (`[athletes] home_assistant`), keyed
/// like the fields of [`AthleteSensors`]: key, name, extra.
fn athlete_sensor_specs() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "last_session_perfect",
            "Perfect reps last session",
            json!({"state_class": "measurement", "unit_of_measurement": "reps", "icon": "mdi:star-check"}),
        ),
        (
            "best_set",
            "Best set",
            json!({"state_class": "measurement", "unit_of_measurement": "reps", "icon": "mdi:trophy"}),
        ),
        // Starts again from 0 every Monday: a meter reset to HA's statistics,
        // whose sum then counts every session.
        (
            "sessions_this_week",
            "Sessions this week",
            json!({"state_class": "total_increasing", "icon": "mdi:calendar-check"}),
        ),
        (
            "floor_pct",
            "Floor",
            json!({"state_class": "measurement", "unit_of_measurement": "%", "icon": "mdi:arrow-collapse-down",
                   "suggested_display_precision": 0}),
        ),
    ]
}

/// An athlete's device and its entities (`[athletes] home_assistant`): the
/// device is named by the display name (HA's business: events and states
/// carry ids only), one per gateway and athlete, linked to the gateway.
pub fn athlete_configs(id: &Identity, athlete: &RosterEntry) -> Vec<DiscoveryConfig> {
    let t = id.topics;
    let state = t.athlete_state(&athlete.id);
    let device = json!({
        "identifiers": [athlete_device_id(t, &athlete.id)],
        "name": athlete.name,
        "manufacturer": "flatback",
        "model": "athlete",
        "via_device": gateway_device_id(t),
    });
    let mut out = Vec::new();
    let mut push = |component: &str, key: &str, name: &str, extra: Value| {
        let mut p = Map::new();
        p.insert("name".into(), name.into());
        p.insert(
            "unique_id".into(),
            format!("{}_{key}", athlete_device_id(t, &athlete.id)).into(),
        );
        p.insert("device".into(), device.clone());
        p.insert("origin".into(), origin(id.version));
        p.insert("availability_topic".into(), t.gateway_status().into());
        p.insert("state_topic".into(), state.clone().into());
        if let Value::Object(extra) = extra {
            p.extend(extra);
        }
        out.push(DiscoveryConfig {
            topic: t.discovery_config(component, &format!("athlete_{}_{key}", athlete.id)),
            payload: Value::Object(p),
        });
    };
    for (key, name, mut extra) in athlete_sensor_specs() {
        extra["value_template"] = format!("{{{{ value_json.{key} }}}}").into();
        push("sensor", key, name, extra);
    }
    push(
        "binary_sensor",
        "ready",
        "Ready to add load",
        json!({"value_template": "{{ 'ON' if value_json.ready else 'OFF' }}", "icon": "mdi:weight-lifter"}),
    );
    out
}

/// An athlete's state as their sensors read it.
pub fn athlete_state(sensors: &AthleteSensors) -> String {
    serde_json::to_string(sensors).unwrap_or_default()
}

/// Every config of the gateway and its mats.
pub fn all_configs(id: &Identity, mats: &[String]) -> Vec<DiscoveryConfig> {
    let mut v = gateway_configs(id);
    for m in mats {
        v.extend(mat_configs(id, m));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn ident(t: &Topics) -> Identity<'_> {
        Identity {
            topics: t,
            gateway_name: "Gym floor",
            version: "0.1.0",
        }
    }

    #[test]
    fn every_mat_entity_is_complete_and_unique() {
        let t = Topics::new("flatback", "gw1", "homeassistant");
        let id = ident(&t);
        let mats = vec!["mat1".to_string(), "mat2".to_string()];
        let all = all_configs(&id, &mats);
        let mut uids = HashSet::new();
        let mut topics = HashSet::new();
        for c in &all {
            let p = &c.payload;
            assert!(t.is_discovery_config(&c.topic), "{}", c.topic);
            assert!(topics.insert(c.topic.clone()), "duplicate topic {}", c.topic);
            let uid = p["unique_id"].as_str().unwrap();
            assert!(uids.insert(uid.to_string()), "duplicate unique_id {uid}");
            assert!(uid.starts_with("flatback_gw1_"), "{uid}");
            assert_eq!(p["origin"]["name"], "flatback");
            assert_eq!(p["availability_mode"], "all");
            assert!(p["name"].is_string() && p["device"]["identifiers"][0].is_string());
            let avail: Vec<&str> = p["availability"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["topic"].as_str().unwrap())
                .collect();
            assert_eq!(avail[0], "flatback/gw1/status");
            if let Some(via) = p["device"].get("via_device") {
                assert_eq!(via, "flatback_gw1");
                assert_eq!(avail.len(), 2, "a mat entity needs the gateway and the mat online");
                assert!(avail[1].ends_with("/status") && avail[1].starts_with("flatback/gw1/mat"));
            }
        }
        // 2 gateway entities + per mat: 2 binary sensors, 10 sensors, 1 event, 3 buttons.
        assert_eq!(all.len(), 2 + 2 * 16);
        let by_uid = |u: &str| all.iter().find(|c| c.payload["unique_id"] == u).unwrap();
        let arch = by_uid("flatback_gw1_mat2_arching");
        assert_eq!(arch.payload["device_class"], "problem");
        assert_eq!(
            arch.topic,
            "homeassistant/binary_sensor/flatback_gw1/mat2_arching/config"
        );
        assert_eq!(
            by_uid("flatback_gw1_mat1_occupied").payload["device_class"],
            "occupancy"
        );
        for k in ["reps", "perfect_reps"] {
            assert_eq!(
                by_uid(&format!("flatback_gw1_mat1_{k}")).payload["state_class"],
                "total_increasing"
            );
        }
        assert_eq!(by_uid("flatback_gw1_mat1_contact").payload["unit_of_measurement"], "%");
        assert_eq!(
            by_uid("flatback_gw1_mat1_last_descent").payload["unit_of_measurement"],
            "s"
        );
        for k in [
            "sample_rate",
            "overruns",
            "queued_events",
            "dropped_events",
            "taxel_faults",
        ] {
            assert_eq!(
                by_uid(&format!("flatback_gw1_mat1_{k}")).payload["entity_category"],
                "diagnostic",
                "{k}"
            );
        }
        let ev = by_uid("flatback_gw1_mat1_event");
        assert_eq!(ev.payload["event_types"], json!(["rep", "arch", "set"]));
        assert_eq!(ev.payload["state_topic"], "flatback/gw1/mat1/event");
        for c in MatCommand::ALL {
            let b = by_uid(&format!("flatback_gw1_mat1_{}", c.name()));
            assert_eq!(b.payload["command_topic"], "flatback/gw1/mat1/command");
            assert_eq!(b.payload["payload_press"], c.name());
            assert_eq!(b.payload["retain"], false);
            assert_eq!(super::super::commands::parse(c.name().as_bytes()), Ok(c));
        }
    }

    fn roster() -> Vec<RosterEntry> {
        vec![
            RosterEntry {
                id: "a-00000001".into(),
                name: "Ana \"Lee\"".into(),
            },
            RosterEntry {
                id: "a-00000002".into(),
                name: "Bo".into(),
            },
        ]
    }

    #[test]
    fn the_athlete_select_offers_the_roster_and_sends_the_option_to_the_mat() {
        let t = Topics::new("flatback", "gw1", "homeassistant");
        let c = athlete_select(&ident(&t), "mat1", &roster());
        assert_eq!(c.topic, "homeassistant/select/flatback_gw1/mat1_athlete/config");
        let p = &c.payload;
        assert_eq!(p["unique_id"], "flatback_gw1_mat1_athlete");
        assert_eq!(
            p["device"]["identifiers"][0], "flatback_gw1_mat1",
            "on the mat's device"
        );
        assert_eq!(p["options"], json!(["Guest", "Ana \"Lee\"", "Bo"]));
        assert_eq!(p["command_topic"], "flatback/gw1/mat1/command");
        assert_eq!(p["state_topic"], "flatback/gw1/mat1/state");
        assert_eq!(p["retain"], false, "a command is never retained");
        // What HA sends for an option, rendered as its template does, is a
        // command the gateway reads as that athlete's id.
        let template = p["command_template"].as_str().unwrap();
        let option = "Ana \"Lee\"";
        let sent = template.replace("{{ value | tojson }}", &Value::from(option).to_string());
        assert_eq!(
            super::super::commands::parse_in(sent.as_bytes(), &roster()),
            Ok(MatCommand::Athlete(Some("a-00000001".into())))
        );
        // The state: ids to options, a JSON object as the template's dict.
        let value = p["value_template"].as_str().unwrap();
        let map = value.strip_prefix("{{ ").and_then(|v| v.split(".get(").next()).unwrap();
        let map: Value = serde_json::from_str(map).unwrap();
        assert_eq!(map, json!({"a-00000001": "Ana \"Lee\"", "a-00000002": "Bo"}));
        assert!(value.ends_with(".get(value_json.athlete, 'Guest') }}"), "{value}");
        assert_eq!(
            athlete_select(&ident(&t), "mat1", &[]).payload["options"],
            json!(["Guest"])
        );
    }

    #[test]
    fn an_athlete_is_a_device_with_sensors_that_have_a_state_class() {
        let t = Topics::new("flatback", "gw1", "homeassistant");
        let ana = &roster()[0];
        let all = athlete_configs(&ident(&t), ana);
        let by_key = |k: &str| {
            all.iter()
                .find(|c| c.payload["unique_id"] == format!("flatback_gw1_athlete_a-00000001_{k}"))
                .unwrap_or_else(|| panic!("{k}"))
        };
        for (k, class) in [
            ("last_session_perfect", "measurement"),
            ("best_set", "measurement"),
            ("sessions_this_week", "total_increasing"),
            ("floor_pct", "measurement"),
        ] {
            let c = by_key(k);
            assert!(c
                .topic
                .starts_with("homeassistant/sensor/flatback_gw1/athlete_a-00000001_"));
            assert!(t.is_discovery_config(&c.topic));
            assert_eq!(c.payload["state_class"], class, "{k}");
            assert_eq!(c.payload["state_topic"], "flatback/gw1/athletes/a-00000001");
            assert_eq!(c.payload["value_template"], format!("{{{{ value_json.{k} }}}}"));
        }
        let ready = by_key("ready");
        assert!(ready.topic.starts_with("homeassistant/binary_sensor/"));
        assert!(ready.payload.get("state_class").is_none(), "binary sensors have none");
        assert_eq!(all.len(), 5);
        for c in &all {
            let d = &c.payload["device"];
            assert_eq!(d["name"], "Ana \"Lee\"", "the device has the display name");
            assert_eq!(d["identifiers"][0], "flatback_gw1_athlete_a-00000001");
            assert_eq!(d["via_device"], "flatback_gw1");
            assert_eq!(c.payload["availability_topic"], "flatback/gw1/status");
        }
        // Every template reads a field the state has.
        let state: Value = serde_json::from_str(&athlete_state(&AthleteSensors {
            last_session_perfect: 7,
            best_set: 12,
            sessions_this_week: 2,
            floor_pct: Some(62.5),
            ready: true,
        }))
        .unwrap();
        for c in &all {
            let field = c.payload["value_template"]
                .as_str()
                .unwrap()
                .split("value_json.")
                .nth(1)
                .unwrap()
                .split(|ch: char| !(ch.is_alphanumeric() || ch == '_'))
                .next()
                .unwrap()
                .to_string();
            assert!(state.get(&field).is_some(), "{field} in {state}");
        }
    }

    #[test]
    fn unique_ids_do_not_depend_on_names_or_prefixes() {
        let a = Topics::new("flatback", "gw1", "homeassistant");
        let b = Topics::new("other/base", "gw1", "ha2");
        let ua: Vec<Value> = mat_configs(&ident(&a), "m")
            .into_iter()
            .map(|c| c.payload["unique_id"].clone())
            .collect();
        let id_b = Identity {
            topics: &b,
            gateway_name: "renamed",
            version: "9",
        };
        let ub: Vec<Value> = mat_configs(&id_b, "m")
            .into_iter()
            .map(|c| c.payload["unique_id"].clone())
            .collect();
        assert_eq!(ua, ub);
        assert!(mat_configs(&id_b, "m")[0].topic.starts_with("ha2/"));
    }
}

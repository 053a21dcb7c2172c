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

use super::commands::Command;
use super::topics::Topics;

/// What discovery needs to know besides the topics.
#[derive(Debug, Clone)]
pub struct Identity<'a> {
    pub topics: &'a Topics,
    pub gateway_name: &'a str,
    pub version: &'a str,
}

/// An entity's discovery message.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
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

fn entity(id: &Identity, mat: Option<&str>, e: Entity) -> Config {
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
    Config {
        topic: t.discovery_config(e.component, &object),
        payload: Value::Object(p),
    }
}

fn sensor(key: &str, field: &str, extra: Value) -> (String, String, Value) {
    (key.to_string(), field.to_string(), extra)
}

/// The gateway's own entities: the outbox figures.
pub fn gateway_configs(id: &Identity) -> Vec<Config> {
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
pub fn mat_configs(id: &Identity, mat: &str) -> Vec<Config> {
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
        (Command::ResetCounters, "Reset counters", "mdi:counter"),
        (Command::NewSet, "New set", "mdi:playlist-plus"),
        (Command::Rereference, "Re-reference", "mdi:target"),
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

/// Every config of the gateway and its mats.
pub fn all_configs(id: &Identity, mats: &[String]) -> Vec<Config> {
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
        for c in Command::ALL {
            let b = by_uid(&format!("flatback_gw1_mat1_{}", c.name()));
            assert_eq!(b.payload["command_topic"], "flatback/gw1/mat1/command");
            assert_eq!(b.payload["payload_press"], c.name());
            assert_eq!(b.payload["retain"], false);
            assert_eq!(super::super::commands::parse(c.name().as_bytes()), Ok(c));
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

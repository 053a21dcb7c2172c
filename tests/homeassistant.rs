//! The Home Assistant dashboards in config/homeassistant/: valid YAML,
//! built-in cards only (but for the auto-entities variant), every entity id
//! one that flatback's discovery makes (derived from its configs as Home
//! Assistant derives them), every mat with its arch alarm.

use std::collections::BTreeSet;
use std::path::PathBuf;

use flatback::wire::discovery;
use flatback::wire::Topics;
use yaml_rust2::{Yaml, YamlLoader};

const DOMAINS: [&str; 4] = ["binary_sensor", "sensor", "event", "button"];

fn discovery(mat: &str) -> Vec<discovery::Config> {
    let topics = Topics::new("flatback", "gym1", "homeassistant");
    let identity = discovery::Identity {
        topics: &topics,
        gateway_name: "Gym floor",
        version: "0",
    };
    discovery::mat_configs(&identity, mat)
}

/// The model discovery gives a mat's device.
fn device_model() -> String {
    discovery("mat1")[0].payload["device"]["model"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Home Assistant's slugify, for ASCII names: lower case, every run of other
/// characters one `_`, none at the ends.
fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The entity ids Home Assistant gives a mat's entities: the component,
/// and the device's name with the entity's.
fn mat_entity_ids(mat: &str) -> BTreeSet<String> {
    discovery(mat)
        .iter()
        .map(|c| {
            let component = c.topic.split('/').nth(1).unwrap();
            let device = c.payload["device"]["name"].as_str().unwrap();
            let name = c.payload["name"].as_str().unwrap();
            format!("{component}.{}", slug(&format!("{device} {name}")))
        })
        .collect()
}

fn load(name: &str) -> Yaml {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("config/homeassistant")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(docs.len(), 1, "{name}: one YAML document");
    docs.remove(0)
}

/// Every mapping in the tree, depth first.
fn mappings(y: &Yaml) -> Vec<&Yaml> {
    let mut out = Vec::new();
    let mut stack = vec![y];
    while let Some(node) = stack.pop() {
        match node {
            Yaml::Hash(h) => {
                out.push(node);
                stack.extend(h.values());
            }
            Yaml::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    out
}

/// Every string in the tree that looks like an entity id.
fn entity_ids(y: &Yaml) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![y];
    while let Some(node) = stack.pop() {
        match node {
            Yaml::Hash(h) => stack.extend(h.values()),
            Yaml::Array(a) => stack.extend(a.iter()),
            Yaml::String(s) if DOMAINS.iter().any(|d| s.starts_with(&format!("{d}."))) => {
                out.insert(s.clone());
            }
            _ => {}
        }
    }
    out
}

/// Cards and entity rows that come with Home Assistant.
const BUILT_IN: &[&str] = &[
    "alarm-panel",
    "area",
    "button",
    "calendar",
    "conditional",
    "entities",
    "entity",
    "entity-filter",
    "gauge",
    "glance",
    "grid",
    "heading",
    "history-graph",
    "horizontal-stack",
    "iframe",
    "logbook",
    "map",
    "markdown",
    "picture",
    "picture-entity",
    "picture-glance",
    "sensor",
    "statistic",
    "statistics-graph",
    "tile",
    "vertical-stack",
    // Entity rows.
    "attribute",
    "buttons",
    "divider",
    "section",
    "weblink",
];

fn types(y: &Yaml) -> Vec<String> {
    mappings(y)
        .into_iter()
        .filter_map(|m| m["type"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn built_in_dashboard_uses_discovered_entities_and_built_in_cards() {
    let dash = load("coach-dashboard.yaml");
    assert!(
        dash["views"][0]["cards"].as_vec().is_some(),
        "a dashboard with views of cards"
    );
    for t in types(&dash) {
        assert!(BUILT_IN.contains(&t.as_str()), "card or row type {t:?} is not built in");
    }
    let mats = ["mat1", "mat2", "mat3", "mat4"];
    let known: BTreeSet<String> = mats.iter().flat_map(|m| mat_entity_ids(m)).collect();
    let used = entity_ids(&dash);
    let unknown: Vec<&String> = used.difference(&known).collect();
    assert!(unknown.is_empty(), "ids discovery does not make: {unknown:?}");
    for m in mats {
        for what in [
            "binary_sensor.flatback_{}_arching",
            "binary_sensor.flatback_{}_occupied",
            "sensor.flatback_{}_contact",
            "sensor.flatback_{}_set",
            "sensor.flatback_{}_reps",
            "sensor.flatback_{}_perfect_reps",
            "sensor.flatback_{}_last_descent",
            "event.flatback_{}_event",
            "button.flatback_{}_reset_counters",
        ] {
            let id = what.replace("{}", m);
            assert!(used.contains(&id), "{m}: {id} is not on the dashboard");
        }
        // The arch alarm: a card shown only while arching that says ARCH,
        // and an offline note while unavailable.
        let conditional = |state: &str| {
            mappings(&dash).into_iter().find(|c| {
                c["type"].as_str() == Some("conditional")
                    && c["conditions"].as_vec().is_some_and(|v| {
                        v.iter().any(|k| {
                            k["entity"].as_str() == Some(&format!("binary_sensor.flatback_{m}_arching"))
                                && k["state"].as_str() == Some(state)
                        })
                    })
            })
        };
        let alarm = conditional("on").unwrap_or_else(|| panic!("{m}: no arch alarm"));
        assert!(alarm["card"]["content"].as_str().unwrap().contains("ARCH"));
        assert!(conditional("unavailable").is_some(), "{m}: no offline note");
    }
}

/// `*` at either end, as auto-entities' filters use it here.
fn glob(pattern: &str, s: &str) -> bool {
    match (pattern.strip_prefix('*'), pattern.strip_suffix('*')) {
        (Some(end), _) => s.ends_with(end),
        (_, Some(start)) => s.starts_with(start),
        _ => pattern == s,
    }
}

#[test]
fn auto_entities_variant_finds_every_mats_entities() {
    let dash = load("coach-dashboard-auto-entities.yaml");
    let cards = dash["views"][0]["cards"].as_vec().expect("cards");
    let all: BTreeSet<String> = ["mat1", "bench-2", "Mat_16"]
        .iter()
        .flat_map(|m| mat_entity_ids(m))
        .collect();
    let mut wanted = BTreeSet::new();
    for card in cards {
        assert_eq!(card["type"].as_str(), Some("custom:auto-entities"));
        for t in types(&card["card"]) {
            assert!(BUILT_IN.contains(&t.as_str()), "inner card type {t:?}");
        }
        let include = card["filter"]["include"].as_vec().expect("include filters");
        let exclude: Vec<&Yaml> = card["filter"]["exclude"]
            .as_vec()
            .map(|v| v.iter().collect())
            .unwrap_or_default();
        let mut picked = BTreeSet::new();
        for f in include {
            assert_eq!(
                f["device_model"].as_str(),
                Some(device_model().as_str()),
                "filters stay on flatback's mats"
            );
            let domain = f["domain"].as_str().expect("a domain");
            for id in &all {
                let matches = id.starts_with(&format!("{domain}."))
                    && f["entity_id"].as_str().is_none_or(|p| glob(p, id))
                    && !exclude
                        .iter()
                        .any(|x| x["entity_id"].as_str().is_some_and(|p| glob(p, id)));
                if matches {
                    picked.insert(id.clone());
                }
            }
        }
        // Each card picks one entity per mat.
        assert_eq!(picked.len(), 3, "{:?} picks {picked:?}", card["card"]["title"]);
        wanted.extend(picked);
    }
    for what in [
        "binary_sensor.flatback_bench_2_arching",
        "sensor.flatback_bench_2_contact",
        "sensor.flatback_bench_2_reps",
        "sensor.flatback_bench_2_perfect_reps",
        "sensor.flatback_mat_16_set",
        "sensor.flatback_mat1_last_descent",
        "event.flatback_mat1_event",
        "button.flatback_mat1_reset_counters",
    ] {
        assert!(wanted.contains(what), "{what} is on no card");
    }
    assert_eq!(slug("flatback Bench-2 Re-reference"), "flatback_bench_2_re_reference");
}

/// The ids Home Assistant 2024.3.3 gave a mat "bench-2" of `flatback publish`
/// (../shared/tools/ha-check, MQTT branch): the naming above is theirs.
#[test]
fn entity_ids_are_those_home_assistant_made() {
    let seen: BTreeSet<String> = [
        "binary_sensor.flatback_bench_2_arching",
        "binary_sensor.flatback_bench_2_occupied",
        "button.flatback_bench_2_new_set",
        "button.flatback_bench_2_re_reference",
        "button.flatback_bench_2_reset_counters",
        "event.flatback_bench_2_event",
        "sensor.flatback_bench_2_contact",
        "sensor.flatback_bench_2_dropped_events",
        "sensor.flatback_bench_2_last_descent",
        "sensor.flatback_bench_2_perfect_reps",
        "sensor.flatback_bench_2_queued_events",
        "sensor.flatback_bench_2_reps",
        "sensor.flatback_bench_2_sample_rate",
        "sensor.flatback_bench_2_sampler_overruns",
        "sensor.flatback_bench_2_set",
        "sensor.flatback_bench_2_taxel_faults",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(mat_entity_ids("bench-2"), seen);
}

//! The Home Assistant dashboards in config/homeassistant/: valid YAML,
//! built-in cards only (but for the auto-entities variant), every entity id
//! one that flatback's discovery makes (derived from its configs as Home
//! Assistant derives them), every mat with its arch alarm. And, where
//! ../shared/tools/ha-check is set up, a real Home Assistant: the athlete
//! select chosen from HA names the athlete on the mat, and athletes are
//! devices whose sensors have a state_class.

mod common;

use std::collections::BTreeSet;
use std::path::PathBuf;

use flatback::wire::discovery;
use flatback::wire::Topics;
use yaml_rust2::{Yaml, YamlLoader};

const DOMAINS: [&str; 4] = ["binary_sensor", "sensor", "event", "button"];

fn discovery(mat: &str) -> Vec<discovery::DiscoveryConfig> {
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

/// ha-check's runner, if it is set up here (its venv made by setup.sh).
fn ha_check() -> Option<PathBuf> {
    let run = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/tools/ha-check/run.py");
    let venv = std::env::var_os("HA_CHECK_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/ha-check/venv")))?;
    (run.exists() && venv.join("bin/python").exists()).then_some(run)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn real_home_assistant_makes_the_athlete_select_and_the_athletes_sensors() {
    let Some(run) = ha_check() else {
        eprintln!("skipped: ../shared/tools/ha-check is not set up (run its setup.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let db = dir.path().join("history.db");
    let cfg = dir.path().join("flatback.toml");
    std::fs::write(
        &cfg,
        format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:{port}\"\ngateway_id = \"gym1\"\ngateway_name = \"Gym floor 1\"\n\
             outbox_dir = \"{}\"\n[web]\nlisten = \"\"\n[history]\ndatabase = \"sqlite:{}\"\n\
             [athletes]\nhome_assistant = true\n",
            dir.path().join("outbox").display(),
            db.display()
        ),
    )
    .unwrap();
    let add = |name: &str| -> String {
        let out = common::flatback()
            .args(["athlete", "add", name, "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["id"].as_str().unwrap().to_string()
    };
    let ana = add("Ana Lee");
    let bo = add("Bo");
    // A session of Ana's a minute ago: 6 reps, 5 perfect, the 4th arched at
    // 75 % of the way down.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut store = flatback::history::sqlite::SqliteStore::open(&db).unwrap();
    flatback::history::HistoryStore::write(
        &mut store,
        &common::history::session("gym1", "mat9", 1, now_ms - 60_000, Some(&ana), 6),
    )
    .unwrap();
    drop(store);
    let out = dir.path().join("result.json");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/ha/select_athlete.py");
    let status = std::process::Command::new(&run)
        .arg("--broker-port")
        .arg(port.to_string())
        .args(["--wait", "90", "--out"])
        .arg(&out)
        .arg("--cmd")
        .arg(format!(
            "\"$HA_CHECK_PYTHON\" {} {} {} mat1 Bo",
            script.display(),
            env!("CARGO_BIN_EXE_flatback"),
            cfg.display()
        ))
        .status()
        .unwrap();
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("ha-check wrote nothing ({status}): {e}"));
    // Kept for a look at what Home Assistant made of it.
    let _ = std::fs::write(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ha-check-athletes.json"),
        &text,
    );
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(
        r.get("error").is_none_or(|e| e.is_null()),
        "ha-check failed: {}",
        r["error"]
    );
    assert_eq!(
        r["command"]["returncode"], 0,
        "choosing Bo from Home Assistant: {}",
        r["command"]["output_tail"]
    );
    let entities = r["entities"].as_array().unwrap();
    let by_uid = |uid: &str| {
        entities
            .iter()
            .find(|e| e["unique_id"] == uid)
            .unwrap_or_else(|| panic!("Home Assistant made no {uid}"))
    };
    let select = by_uid("flatback_gym1_mat1_athlete");
    assert_eq!(select["domain"], "select");
    assert_eq!(select["entity_id"], "select.flatback_mat1_athlete");
    assert_eq!(
        select["attributes"]["options"],
        serde_json::json!(["Guest", "Ana Lee", "Bo"])
    );
    assert_eq!(select["state"], "Bo", "the mat's athlete id, shown as the name");
    let seen: Vec<&serde_json::Value> = r["state_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["entity_id"] == "select.flatback_mat1_athlete")
        .map(|c| &c["new"])
        .collect();
    assert!(seen.contains(&&serde_json::json!("Guest")), "Guest before Bo: {seen:?}");
    let mqtt = r["mqtt_trace"].as_array().unwrap();
    assert!(
        mqtt.iter()
            .any(|m| m["topic"] == "flatback/gym1/mat1/command"
                && m["payload"] == r#"{"command":"athlete","name":"Bo"}"#),
        "Home Assistant sent the option to the mat's command topic"
    );
    assert!(
        mqtt.iter()
            .any(|m| m["topic"] == "flatback/gym1/mat1/state" && m["payload"].as_str().unwrap_or("").contains(&bo)),
        "the mat's state carries Bo's id"
    );
    for (key, state, class) in [
        ("best_set", "5", Some("measurement")),
        ("last_session_perfect", "5", Some("measurement")),
        ("sessions_this_week", "1", Some("total_increasing")),
        ("floor_pct", "75.0", Some("measurement")),
        ("ready", "off", None),
    ] {
        let e = by_uid(&format!("flatback_gym1_athlete_{ana}_{key}"));
        assert_eq!(e["state"], state, "{key}: {e}");
        assert_eq!(e["device"]["name"], "Ana Lee", "{key}");
        match class {
            Some(c) => assert_eq!(e["attributes"]["state_class"], c, "{key}"),
            None => assert!(e["attributes"].get("state_class").is_none(), "{key}"),
        }
    }
    assert_eq!(
        by_uid(&format!("flatback_gym1_athlete_{bo}_best_set"))["state"],
        "0",
        "Bo has no session yet"
    );
    let problems = r["log_problems"].as_array().map_or(0, Vec::len);
    assert_eq!(problems, 0, "Home Assistant's warnings: {}", r["log_problems"]);
}

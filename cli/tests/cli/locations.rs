//! Many locations in one deployment (`RPS_LOCATIONS`). The bug that asked for them: one
//! store run for one place and then another mixed the second place's data and model into
//! the first's, and the gates judged a model on another place's weather. Now the store
//! refuses the second place, and a fleet gives each place its own folder and model: the
//! two shipped station years and a corrupt third, promoted together, two at a time.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use testkit::replay::Replay;
use testkit::rps::{Env, last_json, stderr};

const SAND_POINT: &str = "open-meteo-archive-sandpoint-ak-2023.json";
const GREENSBORO: &str = "open-meteo-tmy3-greensboro-nc.json";

fn station(file: &str) -> PathBuf {
    testkit::workspace_root().join("data/sample").join(file)
}

/// The Greensboro year moved to Kansas with every twentieth temperature missing (5%,
/// over the 1% limit): the replay answers Kansas with it.
fn corrupt_station(dir: &Path) -> PathBuf {
    testkit::cloud::corrupt_kansas(dir)
}

fn snapshots(store: &Path) -> usize {
    walk(&store.join("raw/open-meteo"))
        .iter()
        .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
        .count()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let p = e.path();
            if p.is_dir() { walk(&p) } else { vec![p] }
        })
        .collect()
}

fn versions(env: &Env, location: &str) -> Value {
    last_json(&env.ok(&["models", "list", "--location", location, "--json"]))
}

#[test]
fn one_store_refuses_a_second_place_and_a_fleet_gives_each_place_its_own() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let corrupt = corrupt_station(dir.path());
    let replay = Replay::files(&[&station(SAND_POINT), &station(GREENSBORO), &corrupt]);
    let env = Env::new(&store, &replay);

    // The quick start: Sand Point, the default place.
    let first = last_json(&env.pipeline_ok("promote", "2023-01-01", "2023-12-31"));
    assert_eq!(first["promote"]["version"], "1");
    let claim: Value =
        serde_json::from_slice(&std::fs::read(store.join("raw/location.json")).unwrap()).unwrap();
    assert_eq!(claim["site"], "default");
    assert_eq!(claim["location"]["latitude"], 55.317);

    // "Your own city" in the same checkout: refused before anything is fetched.
    let mut greensboro = env.clone();
    greensboro
        .set("RPS_LATITUDE", "36.1")
        .set("RPS_LONGITUDE", "-79.95");
    let before = snapshots(&store);
    let out = greensboro.pipeline("promote", "2023-01-01", "2023-12-31");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "a configuration error: {err}");
    assert!(
        err.contains("belongs to 55.317, -160.517 (\"default\", claimed ")
            && err.contains("not to 36.1, -79.95")
            && err.contains("list every place in RPS_LOCATIONS"),
        "{err}"
    );
    assert!(
        err.contains("the configuration or a permission is wrong"),
        "{err}"
    );
    assert_eq!(snapshots(&store), before, "nothing was ingested");
    let listed = last_json(&env.ok(&["models", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // A fleet: the same two places and a third whose data is corrupt, in the same store.
    let fleet = dir.path().join("locations.json");
    std::fs::write(
        &fleet,
        json!([
            {"id": "sand-point", "name": "Sand Point, AK", "latitude": 55.317, "longitude": -160.517},
            {"id": "greensboro", "name": "Greensboro, NC", "latitude": 36.1, "longitude": -79.95},
            {"id": "kansas", "latitude": 38.5, "longitude": -98.0}
        ])
        .to_string(),
    )
    .unwrap();
    let mut fleet_env = env.clone();
    fleet_env
        .set("RPS_LOCATIONS", fleet.display().to_string())
        .set("RPS_LOCATION_CONCURRENCY", "2");
    let out = fleet_env.pipeline("promote", "2023-01-01", "2023-12-31");
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "one location refused, by the data gate: {err}"
    );
    let done = last_json(&out);
    assert_eq!(
        (
            done["done"].as_u64(),
            done["refused"].as_u64(),
            done["failed"].as_u64()
        ),
        (Some(2), Some(1), Some(0)),
        "{done}"
    );
    let by_id = |id: &str| -> &Value {
        done["locations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["location"] == id)
            .unwrap_or_else(|| panic!("{id} in {done}"))
    };
    let kansas = by_id("kansas");
    assert_eq!(kansas["outcome"], "refused", "{kansas}");
    assert_eq!(kansas["exit_code"], 3, "the data gate: {kansas}");
    assert!(
        kansas["error"]
            .as_str()
            .unwrap()
            .contains("null_share.temperature_2m"),
        "{kansas}"
    );
    assert!(
        err.contains("kansas: refused: the data quality gate failed"),
        "{err}"
    );
    for (id, lat) in [("sand-point", 55.317), ("greensboro", 36.1)] {
        let l = by_id(id);
        assert_eq!(l["outcome"], "done", "{l}");
        assert_eq!(l["model_name"], format!("rps-temperature-{id}"));
        let release = &l["output"];
        assert_eq!(
            release["promote"]["version"], "1",
            "{id}: its own model's first version"
        );
        assert_eq!(release["promote"]["previous"], Value::Null, "{id}");
        // Judged on its own hold-out: the report's dataset is the one its run made.
        let site_store = store.join("locations").join(id);
        let report_key = release["promote"]["report"].as_str().unwrap();
        let report: Value =
            serde_json::from_slice(&std::fs::read(site_store.join(report_key)).unwrap()).unwrap();
        assert_eq!(
            report["holdout"]["data_version"], release["run"]["data_version"],
            "{id}"
        );
        assert_eq!(report["model_name"], format!("rps-temperature-{id}"));
        let claim: Value =
            serde_json::from_slice(&std::fs::read(site_store.join("raw/location.json")).unwrap()).unwrap();
        assert_eq!(
            (&claim["site"], &claim["location"]["latitude"]),
            (&json!(id), &json!(lat))
        );
        let listed = versions(&fleet_env, id);
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 1, "{id}: {listed:?}");
        assert_eq!(listed[0]["tags"]["rps.location"], id);
        assert!(
            listed[0]["aliases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == "production"),
            "{id}: {listed:?}"
        );
    }
    assert_ne!(
        by_id("sand-point")["output"]["run"]["data_version"],
        by_id("greensboro")["output"]["run"]["data_version"]
    );
    // One API for the three: each promoted location answers from its own model, the
    // refused one has none to answer with, an unknown one is the client's error.
    let server = fleet_env.serve();
    let http = reqwest::blocking::Client::new();
    let predict = |location: &str| {
        let mut body = testkit::rps::sample_observations(2000, 25);
        body["location"] = json!(location);
        let r = http
            .post(format!("{}/predict", server.url))
            .json(&body)
            .send()
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    for id in ["sand-point", "greensboro"] {
        let (status, v) = predict(id);
        assert_eq!(status, 200, "{id}: {v}");
        assert_eq!(
            (&v["model"]["name"], &v["model"]["location"]),
            (&json!(format!("rps-temperature-{id}")), &json!(id))
        );
    }
    let (status, v) = predict("kansas");
    assert_eq!((status, &v["error"]["code"]), (503, &json!("no_model")), "{v}");
    let (status, v) = predict("atlantis");
    assert_eq!(
        (status, &v["error"]["code"]),
        (422, &json!("unknown_location")),
        "{v}"
    );
    let listed: Value = http
        .get(format!("{}/locations", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: Vec<&str> = listed["locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["sand-point", "greensboro", "kansas"], "{listed}");
    drop(server);
    // The deployment's own store and model are as the quick start left them.
    assert_eq!(snapshots(&store), before);
    let listed = last_json(&env.ok(&["models", "list", "--json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // One location at a time; an unknown one is named.
    let out = fleet_env.run(&[
        "pipeline",
        "run",
        "--location",
        "atlantis",
        "--start",
        "2023-01-01",
        "--end",
        "2023-12-31",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "there is no location \"atlantis\": RPS_LOCATIONS lists sand-point, greensboro, kansas"
        ),
        "{}",
        stderr(&out)
    );
    let out = fleet_env.run(&["models", "list"]);
    assert!(
        stderr(&out).contains(
            "RPS_LOCATIONS lists 3 locations (sand-point, greensboro, kansas): name one with --location ID"
        ),
        "{}",
        stderr(&out)
    );
}

/// Two locations, one store: June leaves the winter model of Greensboro behind (its
/// observed weather is outside the training range) but not Sand Point's model of the
/// whole year. `rps verify --retrain` on the fleet retrains Greensboro alone, on its own
/// data, and Sand Point's production and monitoring are untouched.
#[test]
fn one_locations_drift_retrains_only_that_location() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let replay = Replay::files(&[&station(SAND_POINT), &station(GREENSBORO)]);
    let fleet = dir.path().join("locations.json");
    // Any observed hour outside the training range asks for a retrain, at both.
    std::fs::write(
        &fleet,
        json!([
            {"id": "sand-point", "latitude": 55.317, "longitude": -160.517,
             "overrides": {"RPS_DRIFT_MAX_OUT_OF_RANGE": 0}},
            {"id": "greensboro", "latitude": 36.1, "longitude": -79.95,
             "overrides": {"RPS_DRIFT_MAX_OUT_OF_RANGE": 0}}
        ])
        .to_string(),
    )
    .unwrap();
    let mut env = Env::new(&store, &replay);
    env.set("RPS_LOCATIONS", fleet.display().to_string())
        .set("RPS_RETRAIN_LAG_DAYS", "0");
    for (id, start, end) in [
        ("sand-point", "2023-01-01", "2023-12-31"),
        ("greensboro", "2023-01-01", "2023-03-31"),
    ] {
        env.ok(&[
            "pipeline",
            "promote",
            "--location",
            id,
            "--start",
            start,
            "--end",
            end,
        ]);
    }
    for id in ["sand-point", "greensboro"] {
        env.ok(&[
            "ingest",
            "--location",
            id,
            "--start",
            "2023-06-13",
            "--end",
            "2023-06-20",
        ]);
        env.ok(&["validate", "--location", id]);
    }
    let out = env.run(&["verify", "--retrain", "--no-issue", "--json"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let done = last_json(&out);
    let by_id = |id: &str| -> Value {
        done["locations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["location"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} in {done}"))
    };
    let greensboro = by_id("greensboro");
    let sand_point = by_id("sand-point");
    assert!(
        greensboro["summary"]
            .as_str()
            .unwrap()
            .contains("retrained: version 2 is production"),
        "{greensboro}"
    );
    assert_eq!(
        greensboro["output"]["release"]["promote"]["model_name"],
        "rps-temperature-greensboro"
    );
    assert!(
        sand_point["summary"]
            .as_str()
            .unwrap()
            .contains("no retrain needed"),
        "{sand_point}"
    );
    assert_eq!(sand_point["output"]["release"], Value::Null);
    let versions = |id: &str| versions(&env, id).as_array().unwrap().len();
    assert_eq!((versions("sand-point"), versions("greensboro")), (1, 2));
    let site = |id: &str| store.join("locations").join(id);
    let record: Value = serde_json::from_slice(
        &std::fs::read(site("greensboro").join("monitoring/rps-temperature-greensboro/retrains/latest.json"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(record["status"], "promoted", "{record}");
    assert!(
        !site("sand-point")
            .join("monitoring/rps-temperature-sand-point/retrains")
            .exists(),
        "Sand Point was never asked to retrain"
    );
}

/// Item 5 of the issue: a fleet's ingests go to Open-Meteo together, in as few calls as
/// RPS_OPEN_METEO_BATCH allows (comma-separated coordinates, an array answered), each
/// location still storing its own snapshot of its own place; a batched call that fails
/// leaves each location to fetch alone.
#[test]
fn a_fleet_ingests_in_one_call_and_a_failed_call_falls_back_to_a_call_each() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::files(&[&station(SAND_POINT), &station(GREENSBORO)]);
    let proxy = testkit::faults::Proxy::start(&format!("http://{}", replay.addr));
    let store = dir.path().join("store");
    let mut env = Env::new(&store, &replay);
    env.set("OPEN_METEO_ARCHIVE_URL", format!("{}/v1/archive", proxy.url));
    env.set("RPS_HTTP_MAX_ATTEMPTS", "1");
    let file = dir.path().join("locations.json");
    std::fs::write(
        &file,
        json!([
            {"id": "sand-point", "latitude": 55.317, "longitude": -160.517},
            {"id": "kodiak", "latitude": 57.79, "longitude": -152.4},
            {"id": "greensboro", "latitude": 36.1, "longitude": -79.95}
        ])
        .to_string(),
    )
    .unwrap();
    env.set("RPS_LOCATIONS", file.display().to_string());
    let ingest = |env: &Env| {
        let out = last_json(&env.ok(&["ingest", "--start", "2023-01-01", "--end", "2023-01-31", "--json"]));
        assert_eq!(
            (out["done"].as_u64(), out["command"].as_str()),
            (Some(3), Some("ingest")),
            "{out}"
        );
        out
    };
    ingest(&env);
    let calls = proxy.requests();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert!(
        calls[0].contains("latitude=55.317%2C57.79%2C36.1&longitude=-160.517%2C-152.4%2C-79.95"),
        "{calls:?}"
    );
    // Each location's snapshot is its own place's answer: Kodiak's from the nearest
    // station (Sand Point), Greensboro's from Greensboro.
    let newest = |id: &str| -> Value {
        let mut raw: Vec<PathBuf> = walk(&store.join("locations").join(id).join("raw/open-meteo"))
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
            .collect();
        raw.sort();
        serde_json::from_slice(&std::fs::read(raw.last().expect("a snapshot")).unwrap()).unwrap()
    };
    let latitude = |id: &str| newest(id)["latitude"].as_f64().unwrap();
    assert!(
        (latitude("sand-point") - 55.3).abs() < 0.1,
        "{}",
        latitude("sand-point")
    );
    assert_eq!(latitude("kodiak"), latitude("sand-point"));
    assert!(
        (latitude("greensboro") - 36.1).abs() < 0.2,
        "{}",
        latitude("greensboro")
    );
    // Exactly what a call of its own answers (asked of the replay directly).
    let alone: Value = reqwest::blocking::get(format!(
        "http://{}/v1/archive?latitude=36.1&longitude=-79.95&start_date=2023-01-01&end_date=2023-01-31&timezone=GMT&hourly={}",
        replay.addr,
        rps_core::observations::ALL_VARIABLES.map(|v| v.name()).join(",")
    ))
    .unwrap()
    .json()
    .unwrap();
    assert_eq!(newest("greensboro"), alone);

    // The batched call fails: each location fetches alone, and all three are stored.
    proxy.add(testkit::faults::Rule::fail(
        Some("GET"),
        "latitude=55.317%2C",
        503,
    ));
    ingest(&env);
    let calls = proxy.requests();
    assert_eq!(calls.len(), 5, "one failed batch, then one call each: {calls:?}");
    assert_eq!(proxy.failed().len(), 1, "{:?}", proxy.failed());
    for id in ["sand-point", "kodiak", "greensboro"] {
        let raw = walk(&store.join("locations").join(id).join("raw/open-meteo"))
            .into_iter()
            .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
            .count();
        assert_eq!(raw, 2, "{id}");
    }
}

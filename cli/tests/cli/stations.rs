//! Any location works out of the box: with no gate variable set, the release flow
//! promotes a first model on both shipped stations, a maritime one (the sample year of
//! Sand Point, Alaska) and a continental one (the TMY3 year of Greensboro, North
//! Carolina, `scripts/tmy3_to_open_meteo.py`), still refuses a model trained on six
//! summer weeks on both, and the data gate refuses corrupted variants of both.

use std::path::{Path, PathBuf};

use serde_json::Value;
use testkit::replay::Replay;
use testkit::rps::{Env, LATENCY_BUDGET, gate, last_json, stderr};

/// The shipped stations: a name, the file in data/sample/.
const STATIONS: [(&str, &str); 2] = [
    (
        "Sand Point, AK (maritime)",
        "open-meteo-archive-sandpoint-ak-2023.json",
    ),
    (
        "Greensboro, NC (continental)",
        "open-meteo-tmy3-greensboro-nc.json",
    ),
];

fn station(file: &str) -> PathBuf {
    testkit::workspace_root().join("data/sample").join(file)
}

fn report(store: &Path, key: &Value) -> Value {
    let path = store.join(key.as_str().expect("a report key"));
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn the_default_gates_promote_a_first_model_and_refuse_six_summer_weeks_on_both_stations() {
    let _turn = testkit::turn(module_path!());
    for (name, file) in STATIONS {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        let replay = Replay::file(&station(file));
        let env = Env::new(&store, &replay);
        // Every gate keeps its default but the latency budget, which is the test
        // machine's, not the station's.
        assert!(
            !env.0
                .iter()
                .any(|(k, _)| k.starts_with("RPS_GATE") && k != LATENCY_BUDGET.0),
            "the defaults decide"
        );

        let out = env.pipeline("promote", "2023-01-01", "2023-12-31");
        assert!(
            out.status.success(),
            "{name}: the first model was refused:\n{}",
            stderr(&out)
        );
        let first = last_json(&out);
        let v1 = first["promote"]["version"].as_str().unwrap().to_owned();
        let r = report(&store, &first["promote"]["report"]);
        let accuracy = gate(&r, "accuracy");
        assert_eq!(accuracy["verdict"], "pass", "{name}: {accuracy}");
        assert!(
            accuracy["detail"]
                .as_str()
                .unwrap()
                .contains("no absolute ceiling"),
            "{name}: the report says which rule applied: {accuracy}"
        );
        let h6 = r["candidate"]["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["horizon"] == 6)
            .unwrap();
        let rmse = |k: &str| h6[k].as_f64().unwrap();
        assert!(rmse("rmse") < rmse("persistence_rmse"), "{name}: {h6}");
        assert!(rmse("rmse") < rmse("seasonal_naive_rmse"), "{name}: {h6}");
        eprintln!(
            "{name}: 6 h RMSE {:.2} °C; persistence {:.2} °C (skill {:+.0}%), seasonal-naive {:.2} °C (skill {:+.0}%)",
            rmse("rmse"),
            rmse("persistence_rmse"),
            (1.0 - rmse("rmse") / rmse("persistence_rmse")) * 100.0,
            rmse("seasonal_naive_rmse"),
            (1.0 - rmse("rmse") / rmse("seasonal_naive_rmse")) * 100.0
        );

        // Six summer weeks, judged against the full year on the same hold-out: refused.
        let out = env.pipeline("promote", "2023-06-01", "2023-07-15");
        assert_eq!(out.status.code(), Some(4), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains("no_regression"), "{name}: {}", stderr(&out));
        let models = last_json(&env.ok(&["models", "list", "--json"]));
        let production = models
            .as_array()
            .or_else(|| models["versions"].as_array())
            .unwrap_or_else(|| panic!("{models}"))
            .iter()
            .find(|m| {
                m["aliases"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x == "production"))
            })
            .unwrap_or_else(|| panic!("{name}: no production: {models}"))["version"]
            .clone();
        assert_eq!(production, v1, "{name}: production stays");
    }
}

#[test]
fn the_data_gate_refuses_corrupted_variants_of_both_stations() {
    let _turn = testkit::turn(module_path!());
    for (name, file) in STATIONS {
        let doc: Value = serde_json::from_slice(&std::fs::read(station(file)).unwrap()).unwrap();
        // Every twentieth temperature missing (5%, over the 1% limit); temperatures in
        // kelvin (a unit error: hotter than any place on Earth).
        let mut missing = doc.clone();
        testkit::cloud::null_every_twentieth(&mut missing, "temperature_2m");
        let mut kelvin = doc.clone();
        for t in kelvin["hourly"]["temperature_2m"].as_array_mut().unwrap() {
            *t = serde_json::json!(t.as_f64().unwrap() + 273.15);
        }
        for (broken, doc, check) in [
            ("5% of temperatures missing", missing, "null_share.temperature_2m"),
            ("temperatures in kelvin", kelvin, "range.temperature_2m"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let file = dir.path().join("broken.json");
            std::fs::write(&file, doc.to_string()).unwrap();
            let replay = Replay::file(&file);
            let env = Env::new(&dir.path().join("store"), &replay);
            let out = env.run(&["pipeline", "run", "--start", "2023-01-01", "--end", "2023-12-31"]);
            assert_eq!(out.status.code(), Some(3), "{name}, {broken}: {}", stderr(&out));
            assert!(stderr(&out).contains(check), "{name}, {broken}: {}", stderr(&out));
        }
    }
}

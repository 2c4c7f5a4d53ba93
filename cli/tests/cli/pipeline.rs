//! Black-box tests of the `rps` binary: the Open-Meteo replay on a free port, the
//! pipeline against it, and a corrupted input stopped at the quality gate.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::replay::Replay;
use testkit::rps::{Env, last_json};
use testkit::sample_path as sample;

fn rps(store: &Path, replay: &Replay, args: &[&str]) -> Output {
    Env::new(store, replay).run(args)
}

fn last_json_line(out: &Output) -> Value {
    last_json(out)
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn pipeline_run_on_the_shipped_sample() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let replay = Replay::sample();
    let out = rps(
        &store,
        &replay,
        &[
            "pipeline",
            "run",
            "--start",
            "2023-01-01",
            "--end",
            "2023-12-31",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = last_json_line(&out);

    let version = summary["data_version"].as_str().unwrap();
    assert_eq!(version.len(), 32);
    assert!(version.chars().all(|c| c.is_ascii_hexdigit()));
    assert!(summary["rows"].as_u64().unwrap() > 8000);
    assert_eq!(summary["model_name"], "rps-temperature");
    assert_eq!(
        summary["model_version"], "1",
        "the first version in the local registry"
    );
    assert_eq!(summary["train"]["aliases"], serde_json::json!(["candidate"]));
    let metrics = summary["metrics"].as_object().unwrap();
    for h in 1..=6 {
        for m in ["rmse", "mae", "r2", "persistence_rmse", "seasonal_naive_rmse"] {
            let name = format!("{m}_h{h}");
            let v = metrics
                .get(&name)
                .and_then(Value::as_f64)
                .unwrap_or_else(|| panic!("{name} missing"));
            assert!(v.is_finite(), "{name} = {v}");
        }
    }
    let (rmse6, pers6) = (
        metrics["rmse_h6"].as_f64().unwrap(),
        metrics["persistence_rmse_h6"].as_f64().unwrap(),
    );
    assert!(
        rmse6 <= pers6,
        "6 h RMSE {rmse6} is worse than persistence {pers6}"
    );

    // Every output is where the summary says, and the dataset file is the data version.
    let files = files_under(&store);
    for key in [
        &summary["ingest"]["snapshot"],
        &summary["validate"]["report"],
        &summary["transform"]["profile"],
        &summary["train"]["bundle"],
        &summary["train"]["evaluation"],
    ] {
        let key = key.as_str().unwrap();
        assert!(files.iter().any(|f| f == key), "{key} not in {files:?}");
    }
    // The dataset is in the DVC remote (inside the store by default), named by its md5.
    let dataset = summary["transform"]["dataset"].as_str().unwrap();
    assert_eq!(
        dataset,
        store
            .join(format!("dvc/files/md5/{}/{}", &version[..2], &version[2..]))
            .display()
            .to_string()
    );
    let parquet = std::fs::read(dataset).unwrap();
    assert_eq!(&parquet[..4], b"PAR1");
    assert_eq!(rps_core::dvc::md5_hex(&parquet), version);
    let profile =
        std::fs::read_to_string(store.join(summary["transform"]["profile"].as_str().unwrap())).unwrap();
    assert!(profile.contains("Correlation with the target") && profile.contains(version));

    // The stages also run one by one, and the same snapshot gives the same data version.
    let t = rps(&store, &replay, &["transform", "--json"]);
    assert!(t.status.success(), "{}", String::from_utf8_lossy(&t.stderr));
    assert_eq!(last_json_line(&t)["data_version"], version);
    let v = rps(&store, &replay, &["validate", "--json"]);
    assert!(v.status.success());
    let tr = rps(&store, &replay, &["train", "--data-version", version, "--json"]);
    assert!(tr.status.success(), "{}", String::from_utf8_lossy(&tr.stderr));
    assert_eq!(
        last_json_line(&tr)["metrics"]["rmse_h6"],
        summary["metrics"]["rmse_h6"],
        "training is deterministic"
    );
}

#[test]
fn five_percent_missing_temperatures_stop_the_run_at_the_gate() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut doc: Value = serde_json::from_slice(&std::fs::read(sample()).unwrap()).unwrap();
    let temps = doc["hourly"]["temperature_2m"].as_array_mut().unwrap();
    for i in (3..temps.len()).step_by(20) {
        temps[i] = Value::Null;
    }
    let corrupted = dir.path().join("corrupted.json");
    std::fs::write(&corrupted, serde_json::to_vec(&doc).unwrap()).unwrap();
    let replay = Replay::file(&corrupted);

    let out = rps(
        &store,
        &replay,
        &[
            "pipeline",
            "run",
            "--start",
            "2023-01-01",
            "--end",
            "2023-12-31",
            "--json",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("data quality gate failed 1 check(s)"), "{stderr}");
    assert!(stderr.contains("null_share.temperature_2m: 5.0"), "{stderr}");
    assert!(
        stderr.contains("of 8751 values are null (limit 1.00%)"),
        "{stderr}"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "no summary on failure"
    );

    // The raw snapshot and the report are kept; nothing downstream was written.
    let files = files_under(&store);
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("raw/") && f.ends_with("Z.json")),
        "{files:?}"
    );
    assert!(files.iter().any(|f| f.starts_with("quality/")), "{files:?}");
    assert!(
        !files
            .iter()
            .any(|f| f.starts_with("datasets/") || f.starts_with("models/")),
        "{files:?}"
    );

    // A transform of that snapshot is refused too.
    let t = rps(&store, &replay, &["transform"]);
    assert_eq!(t.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&t.stderr).contains("has not passed the quality gate"));
}

#[test]
fn invalid_configuration_names_the_variable() {
    let _turn = testkit::turn(module_path!());
    let out = Command::new(testkit::rps::rps())
        .args(["pipeline", "run", "--start", "2023-01-01", "--end", "2023-01-31"])
        .env("RPS_LATITUDE", "north")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .contains("RPS_LATITUDE=\"north\" is invalid: expected a latitude in degrees between -90 and 90"),
        "{stderr}"
    );
}

#[test]
fn a_start_after_the_end_is_refused() {
    let _turn = testkit::turn(module_path!());
    let out = Command::new(testkit::rps::rps())
        .args(["ingest", "--start", "2023-02-01", "--end", "2023-01-01"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is after the end date"));
}

#[test]
fn sample_serve_answers_like_open_meteo() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let port_file = dir.path().join("port");
    let _replay = testkit::rps::Proc(
        Command::new(testkit::rps::rps())
            .args(["sample", "serve", "--port", "0", "--port-file"])
            .arg(&port_file)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = std::time::Instant::now();
    let port: u16 = loop {
        if let Some(p) = std::fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        assert!(started.elapsed().as_secs() < 10, "rps sample serve did not start");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(testkit::wait_http_ok(
        port,
        "/v1/archive?latitude=1&longitude=2&hourly=temperature_2m&start_date=2023-01-02&end_date=2023-01-02",
        std::time::Duration::from_secs(5)
    ));
}

//! The Airflow DAGs (dags/) against the real Airflow 3 (its own virtualenv, a SQLite
//! metadata database in a scratch AIRFLOW_HOME): they import, keep the state machine's
//! order, and `airflow dags test` runs them end to end against the stage functions of
//! a stack run as template.yaml deploys it (testkit::cloud: sam build's functions, IAM
//! enforced by moto, MLflow): a run that promotes, a run the data
//! gate stops, a run whose promotion the gates refuse, and the hourly loop (the API's
//! drift window, then the verify function) that stays quiet on ordinary requests and
//! on shifted ones too: the API's verdict, made from client requests, never starts the
//! training DAG alone.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::{Value, json};
use testkit::cloud::LocalCloud;
use testkit::rps::{Env, sample_observations};

struct Airflow {
    bin: PathBuf,
    home: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Airflow {
    /// A migrated metadata database in a fresh AIRFLOW_HOME.
    fn setup() -> Option<Self> {
        let root = testkit::workspace_root();
        let bin = testkit::require("Airflow (.venv-airflow)", &root.join(".venv-airflow/bin/airflow"))?;
        let home = tempfile::tempdir().unwrap();
        let env = vec![
            ("AIRFLOW_HOME".into(), home.path().display().to_string()),
            (
                "AIRFLOW__CORE__DAGS_FOLDER".into(),
                root.join("dags").display().to_string(),
            ),
            ("AIRFLOW__CORE__LOAD_EXAMPLES".into(), "False".into()),
        ];
        let a = Self { bin, home, env };
        a.ok(&["db", "migrate"]);
        Some(a)
    }

    fn set(&mut self, k: &str, v: impl Into<String>) {
        self.env.push((k.into(), v.into()));
    }

    fn run(&self, args: &[&str]) -> (Output, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env_remove("CARGO_MANIFEST_DIR")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out, text)
    }

    fn ok(&self, args: &[&str]) -> String {
        let (out, text) = self.run(args);
        assert!(out.status.success(), "airflow {args:?} failed:\n{text}");
        text
    }

    /// `airflow dags test <dag> -c <conf>`: the run's output, and each task's final state.
    fn dags_test(&self, dag: &str, conf: &Value) -> (String, Vec<(String, String)>) {
        let (_, text) = self.run(&["dags", "test", dag, "-c", &conf.to_string()]);
        let runs = self.sql(&format!(
            "select run_id from dag_run where dag_id = '{dag}' order by id desc limit 1"
        ));
        let run = runs.first().map(|r| r[0].clone()).unwrap_or_default();
        let states = self
            .sql(&format!(
                "select task_id, state, try_number from task_instance where dag_id = '{dag}' and run_id = '{run}'"
            ))
            .into_iter()
            .map(|r| (r[0].clone(), format!("{}:{}", r[1], r[2])))
            .collect();
        (text, states)
    }

    /// Rows of a query on the metadata database, every value as text.
    fn sql(&self, query: &str) -> Vec<Vec<String>> {
        let py = self.bin.with_file_name("python");
        let out = Command::new(py)
            .args([
                "-c",
                "import json, sqlite3, sys; print(json.dumps([[str(v) for v in r] for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]))",
            ])
            .arg(self.home.path().join("airflow.db"))
            .arg(query)
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn state<'a>(states: &'a [(String, String)], task: &str) -> &'a str {
    states
        .iter()
        .find(|(t, _)| t == task)
        .map(|(_, s)| s.as_str())
        .unwrap_or("not run")
}

#[test]
fn the_dags_import_and_follow_the_state_machine() {
    let _turn = testkit::turn(module_path!());
    let Some(a) = Airflow::setup() else { return };
    let py = a.bin.with_file_name("python");
    let out = Command::new(py)
        .arg(testkit::workspace_root().join("system/checkers/dags/check_dags.py"))
        .arg(rps_core::stage::STAGES.join(","))
        .envs(a.env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn airflow_promotes_stops_at_a_refused_gate_and_retrains_on_drift() {
    let _turn = testkit::turn(module_path!());
    let Some(mut a) = Airflow::setup() else { return };
    let Some(cloud) = LocalCloud::start("airflow") else {
        return;
    };
    a.set(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json!({"conn_type": "aws", "login": "testing", "password": "testing",
               "extra": {"endpoint_url": cloud.emulator, "region_name": "us-east-1"}})
        .to_string(),
    );
    a.set(
        "AIRFLOW_VAR_RPS_FUNCTION_PREFIX",
        format!("rps-{}-", cloud.environment),
    );

    // 1. A run that ends with a promoted model.
    let (log, states) = a.dags_test(
        "rps_pipeline",
        &json!({"ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-12-31"}}),
    );
    for stage in rps_core::stage::STAGES {
        assert_eq!(state(&states, stage), "success:1", "{stage}: {states:?}\n{log}");
    }
    assert_eq!(cloud.alias("production").as_deref(), Some("1"), "{log}");
    let datasets = cloud.keys("datasets/").len();

    // 2. Bad data: validate fails once (a refusal is not retried), nothing after it
    // runs, no dataset and no model are written.
    cloud.serve_corrupt();
    let (log, states) = a.dags_test(
        "rps_pipeline",
        &json!({"ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-06-30"}}),
    );
    assert_eq!(state(&states, "ingest"), "success:1", "{states:?}\n{log}");
    assert_eq!(state(&states, "validate"), "failed:1", "{states:?}\n{log}");
    for stage in ["transform", "train", "evaluate", "promote"] {
        assert_eq!(state(&states, stage), "upstream_failed:0", "{stage}: {states:?}");
    }
    assert!(log.contains("DataQualityGateFailed"), "{log}");
    assert_eq!(cloud.keys("datasets/").len(), datasets, "a dataset was written");
    assert_eq!(
        cloud.alias("candidate").as_deref(),
        Some("1"),
        "a model was trained"
    );
    cloud.serve_clean();

    // 3. A worse candidate (six summer weeks): promote fails, the report's key in the log.
    let (log, states) = a.dags_test(
        "rps_pipeline",
        &json!({"ingest": {"mode": "backfill", "start": "2023-06-01", "end": "2023-07-15"}}),
    );
    assert_eq!(state(&states, "evaluate"), "success:1", "{states:?}\n{log}");
    assert_eq!(state(&states, "promote"), "failed:1", "{states:?}\n{log}");
    assert!(
        log.contains("PromotionGateFailed") && log.contains("(report: reports/"),
        "{log}"
    );
    assert_eq!(cloud.alias("production").as_deref(), Some("1"));

    // 4. Drift: the API serves @production; ordinary requests leave the check quiet,
    // requests 15 °C warmer than anything in training start rps_pipeline.
    let mut env = Env::default();
    for (k, v) in [
        ("RPS_STORE", format!("s3://{}/store", cloud.bucket)),
        ("RPS_MODEL_CACHE", cloud.path("api-cache").display().to_string()),
        ("RPS_MODEL_NAME", cloud.model.clone()),
        ("MLFLOW_TRACKING_URI", cloud.mlflow.uri.clone()),
        ("RPS_DRIFT_WINDOW", "300".into()),
    ] {
        env.set(k, v);
    }
    // With the API function's own credentials (moto enforces its role's policies).
    for (k, v) in cloud.aws_env("rps-api") {
        env.set(k, v);
    }
    let api = env.serve();
    a.set("AIRFLOW_VAR_RPS_API_URL", api.url.clone());
    let http = reqwest::blocking::Client::new();
    let predict = |body: &Value| {
        let r = http
            .post(format!("{}/predict", api.url))
            .json(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    };
    // Windows spread over the year the model was trained on.
    for i in 0..300 {
        predict(&sample_observations(24 + (i * 8700 / 300) % 8700, 25));
    }
    let (log, states) = a.dags_test("rps_drift", &json!({}));
    for task in ["check_drift", "verify", "decide"] {
        assert_eq!(state(&states, task), "success:1", "{task}: {states:?}\n{log}");
    }
    assert_eq!(state(&states, "retrain"), "skipped:0", "{states:?}\n{log}");
    assert!(log.contains("no retrain"), "{log}");
    assert!(
        cloud
            .keys("monitoring/")
            .iter()
            .any(|k| k.contains("/verification/")),
        "verify wrote its summary"
    );
    let before = a.sql("select count(*) from dag_run where dag_id = 'rps_pipeline'")[0][0].clone();
    for i in 0..300 {
        let mut body = sample_observations(24 + (i * 8700 / 300) % 8700, 25);
        for o in body["observations"].as_array_mut().unwrap() {
            for k in ["temperature_2m", "dew_point_2m"] {
                o[k] = json!(o[k].as_f64().unwrap() + 15.0);
            }
        }
        predict(&body);
    }
    // The API's window drifts, but its verdict comes from client requests, which anyone
    // can send: it never asks for a retrain alone (the observations and the scheduled
    // forecasts do not call for one), and rps_pipeline is not started.
    let (log, states) = a.dags_test("rps_drift", &json!({}));
    assert!(log.contains("drifting: True"), "{log}");
    assert_eq!(state(&states, "verify"), "success:1", "{states:?}\n{log}");
    assert_eq!(state(&states, "retrain"), "skipped:0", "{states:?}\n{log}");
    assert!(log.contains("client traffic alone"), "{log}");
    let runs = a.sql(
        "select state, conf from dag_run where dag_id = 'rps_pipeline' and run_type = 'operator_triggered'",
    );
    assert!(runs.is_empty(), "{runs:?} (before: {before})");
    assert!(
        !cloud.keys("monitoring/").iter().any(|k| k.contains("/retrains/")),
        "no retrain was requested"
    );
}

/// Many locations (issue 28): rps_fleet maps the stage chain over the locations (a
/// task group per location id, Airflow's dynamic task mapping) on a stack whose
/// functions read the locations file. Three real station years, one of them corrupt:
/// its validate fails and nothing after it runs, the other two promote, each its own
/// model.
#[test]
fn rps_fleet_runs_every_location_and_the_corrupt_one_alone_is_refused() {
    let _turn = testkit::turn(module_path!());
    let Some(mut a) = Airflow::setup() else { return };
    let ids = ["sand-point", "greensboro", "kansas"];
    let locations = json!([
        {"id": ids[0], "latitude": 55.317, "longitude": -160.517},
        {"id": ids[1], "latitude": 36.1, "longitude": -79.95},
        {"id": ids[2], "latitude": 38.5, "longitude": -98.0}
    ]);
    let Some(cloud) = LocalCloud::start_with(
        "airflow-fleet",
        "prod",
        testkit::cloud::Stack {
            locations: Some(locations),
            ..Default::default()
        },
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kansas = testkit::cloud::corrupt_kansas(dir.path());
    let greensboro = testkit::cloud::greensboro_path();
    let replay = testkit::replay::Replay::files(&[&testkit::sample_path(), &greensboro, &kansas]);
    cloud.serve_replay(&replay);
    a.set(
        "AIRFLOW_CONN_AWS_DEFAULT",
        json!({"conn_type": "aws", "login": "testing", "password": "testing",
               "extra": {"endpoint_url": cloud.emulator, "region_name": "us-east-1"}})
        .to_string(),
    );
    a.set(
        "AIRFLOW_VAR_RPS_FUNCTION_PREFIX",
        format!("rps-{}-", cloud.environment),
    );

    let (log, _) = a.dags_test(
        "rps_fleet",
        &json!({"ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-12-31"}, "locations": ids}),
    );
    let run = a.sql("select run_id from dag_run where dag_id = 'rps_fleet' order by id desc limit 1");
    let rows = a.sql(&format!(
        "select task_id, map_index, state from task_instance where dag_id = 'rps_fleet' and run_id = '{}'",
        run[0][0]
    ));
    let state_of = |task: &str, index: i64| {
        rows.iter()
            .find(|r| r[0] == task && r[1] == index.to_string())
            .map_or("absent".to_owned(), |r| r[2].clone())
    };
    assert_eq!(state_of("locations", -1), "success", "{rows:?}\n{log}");
    for (index, id) in (0..).zip(ids) {
        for stage in rps_core::stage::STAGES {
            let want = match (id, stage) {
                ("kansas", "ingest") => "success",
                ("kansas", "validate") => "failed",
                ("kansas", _) => "upstream_failed",
                _ => "success",
            };
            assert_eq!(
                state_of(&format!("location.{stage}"), index),
                want,
                "{id} {stage}: {rows:?}\n{log}"
            );
        }
    }
    assert!(log.contains("DataQualityGateFailed"), "{log}");
    let version = |id: &str| {
        let c = testkit::mlflow::client(&cloud.mlflow.uri);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(c.get_version_by_alias(&format!("{}-{id}", cloud.model), "production"))
            .ok()
            .map(|v| v.version)
    };
    assert_eq!(version("sand-point").as_deref(), Some("1"), "{log}");
    assert_eq!(version("greensboro").as_deref(), Some("1"), "{log}");
    assert_eq!(version("kansas"), None);
    assert!(cloud.keys("locations/kansas/datasets/").is_empty());
    assert!(!cloud.keys("locations/sand-point/datasets/").is_empty());
}

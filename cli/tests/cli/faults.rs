//! Fault injection against the real components: MLflow or the S3 server fails at one
//! precise step of a stage (a proxy in front of them injects the fault), the stage
//! fails cleanly, nothing partial is left, and a re-run once the fault is healed
//! succeeds.

use testkit::faults::{Proxy, Rule};
use testkit::mlflow::{MlflowServer, client};
use testkit::moto::MotoServer;
use testkit::replay::Replay;
use testkit::rps::{Env, SHORT_RANGE_COVERAGE_GAP, last_json};

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

/// An `rps` environment whose MLflow traffic goes through `proxy`.
fn env_through(dir: &std::path::Path, replay: &Replay, proxy: &Proxy, tag: &str) -> Env {
    let mut env = Env::new(&dir.join("store"), replay);
    env.with_mlflow(&proxy.url, &format!("faults-{tag}"))
        .set("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        .set(SHORT_RANGE_COVERAGE_GAP.0, SHORT_RANGE_COVERAGE_GAP.1);
    env
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p.display().to_string());
            }
        }
    }
    out
}

/// An `rps` environment on the shared MLflow server through a fault proxy, with its own
/// model name and store.
struct Scene {
    dir: tempfile::TempDir,
    _replay: Replay,
    proxy: Proxy,
    env: Env,
    model: String,
    mlflow: rps_core::mlflow::MlflowClient,
}

impl Scene {
    fn new() -> Option<Self> {
        let mlflow = MlflowServer::shared()?;
        let dir = tempfile::tempdir().unwrap();
        let replay = Replay::sample();
        let proxy = Proxy::start(&mlflow.uri);
        let tag = testkit::unique();
        let env = env_through(dir.path(), &replay, &proxy, &tag);
        Some(Self {
            dir,
            _replay: replay,
            proxy,
            env,
            model: format!("faults-{tag}"),
            mlflow: client(&mlflow.uri),
        })
    }

    fn alias(&self, a: &str) -> Option<String> {
        block(self.mlflow.get_version_by_alias(&self.model, a))
            .ok()
            .map(|v| v.version)
    }
}

#[test]
fn mlflow_failing_mid_train_leaves_a_failed_run_and_nothing_registered() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let proxy = Proxy::start(&mlflow.uri);
    let tag = testkit::unique();
    let env = env_through(dir.path(), &replay, &proxy, &tag);
    let c = client(&mlflow.uri);

    proxy.add(Rule::fail(Some("POST"), "runs/log-batch", 503));
    let out = env.pipeline("run", "2023-01-01", "2023-06-30");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!proxy.failed().is_empty());
    let exp = block(c.get_experiment_by_name(&format!("exp-faults-{tag}")))
        .unwrap()
        .unwrap();
    let runs = block(c.search_runs(&exp.experiment_id, "")).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].info.status, "FAILED");
    assert!(
        block(c.search_model_versions(&format!("faults-{tag}")))
            .unwrap()
            .is_empty()
    );
    assert!(
        files_under(&dir.path().join("store/models")).is_empty(),
        "an orphan bundle: {:?}",
        files_under(&dir.path().join("store/models"))
    );

    proxy.heal();
    let run = last_json(&env.pipeline_ok("run", "2023-01-01", "2023-06-30"));
    assert_eq!(run["model_version"], "1");
}

#[test]
fn mlflow_failing_mid_promotion_keeps_production_and_previous_consistent() {
    let _turn = testkit::turn(module_path!());
    let Some(s) = Scene::new() else {
        return;
    };
    let (env, proxy) = (&s.env, &s.proxy);
    env.ok(&["pipeline", "run", "--start", "2023-01-01", "--end", "2023-08-31"]);
    env.ok(&["promote", "1"]);
    env.ok(&["pipeline", "run", "--start", "2023-01-01", "--end", "2023-12-31"]);
    // The first alias move (previous) goes through; every later one fails.
    proxy.add(Rule::fail(Some("POST"), "registered-models/alias", 503).after(1));
    let out = env.run(&["promote", "2"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.alias("production").as_deref(), Some("1"), "production moved");
    assert_eq!(s.alias("previous").as_deref(), Some("1"));
    assert!(
        files_under(&s.dir.path().join("store/locks")).is_empty(),
        "a lease was left"
    );

    proxy.heal();
    env.ok(&["promote", "2"]);
    assert_eq!(s.alias("production").as_deref(), Some("2"));
    assert_eq!(s.alias("previous").as_deref(), Some("1"));
}

#[test]
fn the_s3_server_failing_mid_transform_leaves_no_dataset() {
    let _turn = testkit::turn(module_path!());
    let Some(moto) = MotoServer::start() else { return };
    moto.create_bucket("rps-faults");
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let proxy = Proxy::start(&moto.endpoint);
    let mut env = Env::new(&dir.path().join("unused"), &replay);
    env.set("RPS_STORE", "s3://rps-faults/store")
        .set("AWS_ENDPOINT_URL_S3", proxy.url.clone())
        .set("AWS_ACCESS_KEY_ID", "test")
        .set("AWS_SECRET_ACCESS_KEY", "test")
        .set("AWS_REGION", "us-east-1");
    let keys = |prefix: &str| -> Vec<String> {
        let xml = reqwest::blocking::get(format!(
            "{}/rps-faults?list-type=2&prefix={prefix}",
            moto.endpoint
        ))
        .unwrap()
        .text()
        .unwrap();
        xml.split("<Key>")
            .skip(1)
            .map(|k| k.split('<').next().unwrap_or("").to_owned())
            .collect()
    };

    proxy.add(Rule::fail(Some("PUT"), "/store/dvc/", 503));
    let out = env.run(&["pipeline", "run", "--start", "2023-01-01", "--end", "2023-03-31"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        keys("store/raw/open-meteo/").len(),
        2,
        "the snapshot and its metadata were written first"
    );
    assert_eq!(
        keys("store/raw/location.json").len(),
        1,
        "after the store's claim"
    );
    assert_eq!(keys("store/quality/").len(), 1);
    assert!(
        keys("store/datasets/").is_empty(),
        "a partial dataset: {:?}",
        keys("store/datasets/")
    );
    assert!(keys("store/dvc/").is_empty());

    proxy.heal();
    env.ok(&["pipeline", "run", "--start", "2023-01-01", "--end", "2023-03-31"]);
    assert_eq!(keys("store/dvc/").len(), 1);
    assert_eq!(keys("store/datasets/").len(), 2, "profile and manifest");
}

#[test]
fn a_refusal_stands_when_mlflow_fails_after_the_verdict_and_the_gates_are_asked_again() {
    let _turn = testkit::turn(module_path!());
    let Some(s) = Scene::new() else {
        return;
    };
    let (env, proxy) = (&s.env, &s.proxy);
    env.ok(&["pipeline", "run", "--start", "2023-01-01", "--end", "2023-12-31"]);
    env.ok(&["promote", "1"]);
    // Six summer weeks, judged on November and December: refused.
    env.ok(&["pipeline", "run", "--start", "2023-06-01", "--end", "2023-07-15"]);
    // After the verdict is stored, logging it to the candidate's run fails.
    proxy.add(Rule::fail(Some("POST"), "runs/set-tag", 503));
    let out = env.run(&["evaluate", "--candidate", "2", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = last_json(&out);
    assert_eq!(first["passed"], false);
    assert!(
        first["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .contains("not logged"),
        "{first}"
    );
    assert!(!proxy.failed().is_empty(), "the fault was never hit");

    // Asked again, through evaluate and through promote, failing and healed: the
    // stored refusal, never a second measurement.
    let again = last_json(&env.run(&["evaluate", "--candidate", "2", "--json"]));
    assert_eq!(
        (&again["passed"], &again["report"]),
        (&first["passed"], &first["report"])
    );
    proxy.heal();
    let promoted = env.run(&["promote", "2"]);
    assert_eq!(
        promoted.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&promoted.stderr)
    );
    let reports = files_under(&s.dir.path().join(format!("store/reports/{}/2", s.model)));
    assert_eq!(
        reports.iter().filter(|f| f.ends_with("report.json")).count(),
        1,
        "{reports:?}"
    );
    assert_eq!(s.alias("production").as_deref(), Some("1"));
}

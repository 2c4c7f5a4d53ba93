//! Promotion, black box: `rps evaluate`, `rps promote`, `rps rollback` and
//! `rps pipeline promote` against a real MLflow server, on models the pipeline trained.

use rps_core::bundle::ModelBundle;
use rps_core::mlflow::{ModelVersion, Tag, tags_map};
use serde_json::Value;
use testkit::mlflow::MlflowServer;
use testkit::mlflow::client as mlflow_client;
use testkit::replay::Replay;
use testkit::rps::{Env, gate, last_json, stderr};

fn block<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Runtime::new().unwrap().block_on(f)
}

/// A fresh model name in its own experiment and store.
struct Setup {
    dir: tempfile::TempDir,
    _replay: Replay,
    env: Env,
    model: String,
    uri: String,
}

impl Setup {
    fn new(uri: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let replay = Replay::sample();
        let mut env = Env::new(&dir.path().join("store"), &replay);
        let model = format!("promote-{}", testkit::unique());
        env.with_mlflow(uri, &model);
        Self {
            dir,
            _replay: replay,
            env,
            model,
            uri: uri.to_owned(),
        }
    }

    /// Trains on the sample's days `start..=end`; returns the registered version.
    fn train(&self, start: &str, end: &str) -> String {
        let out = last_json(
            &self
                .env
                .ok(&["pipeline", "run", "--start", start, "--end", end, "--json"]),
        );
        out["model_version"].as_str().unwrap().to_owned()
    }

    fn version(&self, v: &str) -> ModelVersion {
        block(mlflow_client(&self.uri).get_model_version(&self.model, v)).unwrap()
    }

    fn alias(&self, alias: &str) -> Option<String> {
        block(mlflow_client(&self.uri).get_version_by_alias(&self.model, alias))
            .ok()
            .map(|v| v.version)
    }

    fn set_alias(&self, alias: &str, v: &str) {
        block(mlflow_client(&self.uri).set_alias(&self.model, alias, v)).unwrap();
    }

    fn tag(&self, v: &str, key: &str) -> Option<String> {
        tags_map(&self.version(v).tags).get(key).cloned()
    }
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stored_report(s: &Setup, key: &str) -> Value {
    let path = s.dir.path().join("store").join(key);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

#[test]
fn a_better_candidate_is_promoted_served_and_rolled_back() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let s = Setup::new(&mlflow.uri);
    // Production: a model that saw only five weeks of autumn.
    let weak = s.train("2023-10-01", "2023-11-05");
    s.set_alias("production", &weak);
    let strong = s.train("2023-01-01", "2023-12-31");

    let out = s
        .env
        .run(&["promote", &strong, "--actor", "test-suite", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let promoted = last_json(&out);
    assert_eq!(promoted["version"], strong.as_str());
    assert_eq!(promoted["previous"], weak.as_str());
    assert_eq!(promoted["gates_run"], true);
    // The Markdown report went to stderr, beside the JSON on stdout.
    assert!(stderr(&out).contains("| gate | verdict |"), "{}", stderr(&out));

    assert_eq!(s.alias("production").as_deref(), Some(strong.as_str()));
    assert_eq!(s.alias("previous").as_deref(), Some(weak.as_str()));
    assert_eq!(s.tag(&strong, "rps.promoted_by").as_deref(), Some("test-suite"));
    assert_eq!(s.tag(&strong, "rps.gate_status").as_deref(), Some("passed"));
    assert_eq!(
        s.tag(&strong, "rps.replaced_version").as_deref(),
        Some(weak.as_str())
    );
    assert_eq!(s.tag(&weak, "rps.replaced_by").as_deref(), Some(strong.as_str()));
    let report_key = s.tag(&strong, "rps.promotion_report").unwrap();
    assert_eq!(promoted["report"], report_key.as_str());
    // The legacy stages follow the aliases on a server that still has them.
    assert_eq!(s.version(&strong).current_stage, "Production");
    assert_eq!(s.version(&weak).current_stage, "Archived");

    // The report: both models on the same unseen rows, every gate with its numbers.
    let report = stored_report(&s, &report_key);
    assert_eq!(report["passed"], true);
    assert_eq!(report["production"]["version"], weak.as_str());
    let holdout_start = report["holdout"]["window"]["start"].as_str().unwrap().to_owned();
    for side in ["candidate", "production"] {
        let trained_to = report[side]["training_window"]["end"].as_str().unwrap();
        assert!(
            trained_to < holdout_start.as_str(),
            "{side} trained on the hold-out"
        );
        assert_eq!(report[side]["scores"].as_array().unwrap().len(), 6);
    }
    for g in [
        "schema",
        "accuracy",
        "no_regression",
        "intervals",
        "skill",
        "latency",
    ] {
        assert_eq!(gate(&report, g)["verdict"], "pass", "{}", gate(&report, g));
    }
    assert_eq!(gate(&report, "smoke")["verdict"], "not_applicable");
    assert!(gate(&report, "accuracy")["value"].as_f64().unwrap() > 0.0);
    // …and in the candidate's MLflow run, chart included.
    let c = mlflow_client(&s.uri);
    assert!(promoted["evaluation"]["logged_to"].is_string(), "{promoted}");
    let run = block(c.get_run(&s.version(&strong).run_id)).unwrap();
    let id = report["id"].as_str().unwrap();
    let files = block(c.list_artifacts(&run.info, &format!("gates/{id}"))).unwrap();
    let names: Vec<&str> = files.iter().map(|f| f.path.rsplit('/').next().unwrap()).collect();
    for f in ["report.json", "report.md", "error-by-horizon.png"] {
        assert!(names.contains(&f), "{f} not logged: {names:?}");
    }
    let png = std::fs::read(
        s.dir
            .path()
            .join("store")
            .join(report_key.replace("report.json", "error-by-horizon.png")),
    )
    .unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // Serving follows production.
    let server = s.env.serve();
    let model: Value = reqwest::blocking::get(format!("{}/model", server.url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(model["version"], strong.as_str());
    drop(server);

    // Promoting it again changes nothing.
    let again = last_json(&s.env.ok(&["promote", &strong, "--json"]));
    assert_eq!(again["already_production"], true);

    // Roll back: production returns to the weak model, and the chain ends there.
    let back = last_json(&s.env.ok(&["rollback", "--actor", "test-suite", "--json"]));
    assert_eq!(back["version"], weak.as_str());
    assert_eq!(back["rolled_back"], strong.as_str());
    assert_eq!(s.alias("production").as_deref(), Some(weak.as_str()));
    assert_eq!(s.alias("previous"), None);
    assert_eq!(
        s.tag(&strong, "rps.rolled_back_by").as_deref(),
        Some("test-suite")
    );
    assert_eq!(s.version(&weak).current_stage, "Production");
    let none_left = s.env.run(&["rollback"]);
    assert_eq!(none_left.status.code(), Some(1));
    assert!(
        stderr(&none_left).contains("no @previous"),
        "{}",
        stderr(&none_left)
    );
}

#[test]
fn a_worse_candidate_is_refused_and_production_stays() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let s = Setup::new(&mlflow.uri);
    let good = s.train("2023-01-01", "2023-12-31");
    // The first promotion has no production to compare with: the absolute gates decide.
    let first = last_json(&s.env.ok(&["promote", &good, "--json"]));
    assert_eq!(first["previous"], Value::Null);
    assert_eq!(s.alias("production").as_deref(), Some(good.as_str()));

    // Trained on six summer weeks only, then judged on November and December.
    let summer = s.train("2023-06-01", "2023-07-15");
    let out = s.env.run(&["promote", &summer]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("was not promoted"), "{err}");
    assert!(err.contains("no_regression") || err.contains("skill"), "{err}");
    // The refusal prints the report.
    assert!(stdout(&out).contains("refused"), "{}", stdout(&out));

    assert_eq!(s.alias("production").as_deref(), Some(good.as_str()));
    assert_eq!(s.alias("previous"), None);
    assert_eq!(s.tag(&summer, "rps.gate_status").as_deref(), Some("failed"));
    let failures = s.tag(&summer, "rps.gate_failures").unwrap();
    assert!(failures.contains("no_regression"), "{failures}");
    assert!(s.tag(&summer, "rps.promoted_at").is_none());

    // `rps evaluate` says the same, with numbers, and exits 4 too. The refusal is
    // final: it is the stored verdict, not a second measurement that might pass.
    let out = s.env.run(&["evaluate", "--candidate", &summer, "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let ev = last_json(&out);
    assert_eq!(ev["passed"], false);
    assert!(
        ev["warnings"][0]
            .as_str()
            .unwrap_or_default()
            .contains("nothing was measured again"),
        "{ev}"
    );
    let again = s.env.run(&["promote", &summer]);
    assert_eq!(again.status.code(), Some(4), "{}", stderr(&again));
    let reports = std::fs::read_dir(s.dir.path().join(format!("store/reports/{}/{summer}", s.model)))
        .unwrap()
        .count();
    assert_eq!(reports, 1, "the refused candidate was measured again");
    let report = stored_report(&s, ev["report"].as_str().unwrap());
    let nr = gate(&report, "no_regression");
    assert_eq!(nr["verdict"], "fail");
    assert!(
        nr["value"].as_f64().unwrap() > nr["limit"].as_f64().unwrap(),
        "{nr}"
    );
}

/// Registers `bundle` as a new version the way rps would, so only its contract differs.
fn register_bundle(s: &Setup, bundle: &ModelBundle) -> String {
    let c = mlflow_client(&s.uri);
    let bytes = bundle.encode().unwrap();
    let sha = rps_core::bundle::sha256_hex(&bytes);
    block(async {
        let exp = c
            .get_or_create_experiment(&format!("exp-{}", s.model))
            .await
            .unwrap();
        let run = c.create_run(&exp, "hand-made", &[]).await.unwrap();
        c.upload_artifact(&run, "model/model.rpsb", bytes.into())
            .await
            .unwrap();
        let source = format!("{}/model", run.artifact_uri);
        c.create_model_version(
            &s.model,
            &source,
            &run.run_id,
            &[Tag::new("rps.bundle_sha256", sha)],
            "",
        )
        .await
        .unwrap()
        .version
    })
}

#[test]
fn schema_incompatibility_is_caught() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let s = Setup::new(&mlflow.uri);
    let v1 = s.train("2023-01-01", "2023-12-31");
    s.set_alias("production", &v1);
    let info = s.version(&v1);
    let bytes =
        block(mlflow_client(&s.uri).download_artifact(&format!("{}/model.rpsb", info.source))).unwrap();

    // A feature this build does not compute.
    let mut renamed = ModelBundle::decode(&bytes).unwrap();
    renamed.schema.features[0] = "dew_point_2m_lag_48h".into();
    let bad_features = register_bundle(&s, &renamed);
    // A bundle format this build cannot read.
    let mut future = ModelBundle::decode(&bytes).unwrap();
    future.format_version = rps_core::bundle::BUNDLE_FORMAT_VERSION + 1;
    let bad_format = register_bundle(&s, &future);

    for (v, needle) in [
        (&bad_features, "dew_point_2m_lag_48h"),
        (&bad_format, "format version"),
    ] {
        let out = s.env.run(&["evaluate", "--candidate", v, "--json"]);
        assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
        let ev = last_json(&out);
        assert_eq!(ev["failed_gates"][0], "schema", "{ev}");
        let report = stored_report(&s, ev["report"].as_str().unwrap());
        let g = gate(&report, "schema");
        assert_eq!(g["verdict"], "fail");
        assert!(g["detail"].as_str().unwrap().contains(needle), "{g}");
        assert!(
            gate(&report, "accuracy")["detail"]
                .as_str()
                .unwrap()
                .contains("not measured"),
            "{report}"
        );
        let out = s.env.run(&["promote", v]);
        assert_eq!(out.status.code(), Some(4));
        assert_eq!(s.alias("production").as_deref(), Some(v1.as_str()));
    }
}

#[test]
fn the_smoke_gate_tests_staging_and_fails_when_it_is_down() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let s = Setup::new(&mlflow.uri);
    let v1 = s.train("2023-01-01", "2023-12-31");
    s.set_alias("staging", &v1);
    let mut staging_env = s.env.clone();
    staging_env.set("RPS_MODEL_ALIAS", "staging");
    let staging = staging_env.serve();

    let mut env = s.env.clone();
    env.set("RPS_STAGING_URL", &staging.url);
    let ev = last_json(&env.ok(&["evaluate", "--candidate", &v1, "--json"]));
    assert_eq!(ev["passed"], true, "{ev}");
    let report = stored_report(&s, ev["report"].as_str().unwrap());
    assert_eq!(gate(&report, "smoke")["verdict"], "pass");
    let checks: Vec<&str> = report["smoke"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["/health", "/ready", "/model", "/predict"]);

    // Staging serving another version fails /model.
    let v2 = s.train("2023-01-01", "2023-12-31");
    let out = env.run(&["evaluate", "--candidate", &v2, "--json"]);
    assert_eq!(out.status.code(), Some(4));
    let report = stored_report(&s, last_json(&out)["report"].as_str().unwrap());
    let g = gate(&report, "smoke");
    assert!(
        g["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("serves version {v1}")),
        "{g}"
    );

    // A stopped staging endpoint fails the gate, and the promotion with it.
    drop(staging);
    let out = env.run(&["promote", &v1, "--json"]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("smoke"), "{}", stderr(&out));
    assert_eq!(s.alias("production"), None);
    assert_eq!(s.tag(&v1, "rps.gate_failures").as_deref(), Some("smoke"));
}

#[test]
fn the_release_flow_trains_stages_smoke_tests_and_promotes() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let s = Setup::new(&mlflow.uri);
    // Staging serves whatever @staging is, re-checking every second.
    let mut staging_env = s.env.clone();
    staging_env
        .set("RPS_MODEL_ALIAS", "staging")
        .set("RPS_MODEL_REFRESH_SECS", "1");
    let staging = staging_env.serve();
    let mut env = s.env.clone();
    env.set("RPS_STAGING_URL", &staging.url)
        .set("RPS_STAGING_WAIT_SECS", "60");
    let out = env.pipeline("promote", "2023-01-01", "2023-12-31");
    assert!(out.status.success(), "{}", stderr(&out));
    let r = last_json(&out);
    let v = r["run"]["model_version"].as_str().unwrap();
    assert_eq!(r["staging_ready"], true);
    assert_eq!(r["promote"]["version"], v);
    assert_eq!(s.alias("staging").as_deref(), Some(v));
    assert_eq!(s.alias("production").as_deref(), Some(v));
    let report = stored_report(&s, r["promote"]["report"].as_str().unwrap());
    assert_eq!(gate(&report, "smoke")["verdict"], "pass");
}

#[test]
fn two_concurrent_promotions_leave_a_consistent_registry() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let s = Setup::new(&mlflow.uri);
    let v1 = s.train("2023-01-01", "2023-12-31");
    s.set_alias("production", &v1);
    let v2 = s.train("2023-01-01", "2023-12-31");
    let v3 = s.train("2023-01-01", "2023-12-31");

    let children: Vec<_> = [&v2, &v3]
        .iter()
        .map(|v| {
            s.env
                .command(&["promote", v, "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let won: Vec<&String> = [&v2, &v3]
        .into_iter()
        .zip(&outs)
        .filter(|(_, o)| o.status.success())
        .map(|(v, _)| v)
        .collect();
    for o in &outs {
        if !o.status.success() {
            assert_eq!(o.status.code(), Some(5), "{}", stderr(o));
            let e = stderr(o);
            assert!(e.contains("production moved") || e.contains("in progress"), "{e}");
        }
    }
    assert!(!won.is_empty(), "neither promotion succeeded");
    let production = s.alias("production").unwrap();
    let previous = s.alias("previous").unwrap();
    // Whatever the interleaving: production is a winner, previous is what it replaced,
    // and a loser left no trace of having been promoted.
    assert!(won.contains(&&production), "{production} did not win");
    assert_eq!(s.tag(&production, "rps.replaced_version"), Some(previous.clone()));
    if won.len() == 1 {
        assert_eq!(previous, v1);
        let lost = if won[0] == &v2 { &v3 } else { &v2 };
        assert!(s.tag(lost, "rps.promoted_at").is_none());
    } else {
        // One after the other: the second replaced the first.
        assert!(won.contains(&&previous));
        assert_eq!(s.tag(&previous, "rps.replaced_version"), Some(v1.clone()));
    }
    // No lease is left behind.
    let locks = s.dir.path().join("store/locks").join(&s.model);
    let left: Vec<_> = std::fs::read_dir(&locks)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "leases left in {}: {left:?}", locks.display());
}

//! rps against MLflow servers shaped like the hosted ones users bring (docs/deploy.md):
//!
//! - DagsHub-shaped: the oldest MLflow rps supports (2.9, `.venv-mlflow2`) with basic
//!   auth, driven with a user name and a token (DagsHub's documented form: the token as
//!   the password). The release flow runs on it; the old CI form (a user name and
//!   MLFLOW_TRACKING_TOKEN) is Bearer auth, as MLflow's own client sends it, and is
//!   refused as a configuration fault; a read-only user (the API's secret) serves
//!   @production and may not promote; `rps doctor` says which auth it chose and never
//!   prints the token.
//! - A self-hosted MLflow without the artifact proxy (`--no-serve-artifacts`) and an
//!   `s3://` artifact root in moto: rps writes and reads the artifacts in S3 itself, with
//!   the store's S3 client; the release flow runs on it. A server whose artifacts rps
//!   cannot reach at all (a local folder, not proxied) stops training with an error
//!   naming what is missing, classed as configuration (not retried), and `rps doctor`
//!   reports it as a blocker.

use serde_json::Value;
use testkit::mlflow::{ADMIN_PASSWORD, ADMIN_USER, MlflowServer, Options};
use testkit::moto::MotoServer;
use testkit::replay::Replay;
use testkit::rps::{Env, last_json, stderr};

fn year() -> [&'static str; 6] {
    [
        "pipeline",
        "promote",
        "--start",
        "2023-01-01",
        "--end",
        "2023-12-31",
    ]
}

/// Creates an MLflow user through the basic-auth app's API (as an admin does on the
/// server; on DagsHub, a collaborator and their token).
fn create_user(mlflow: &MlflowServer, user: &str, password: &str) {
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/api/2.0/mlflow/users/create", mlflow.uri))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .unwrap();
    assert!(
        r.status().is_success(),
        "creating {user}: {}",
        r.text().unwrap_or_default()
    );
}

#[test]
fn the_oldest_mlflow_with_basic_auth_a_user_name_and_a_token() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::start_with(Options {
        basic_auth: true,
        oldest: true,
        ..Options::default()
    }) else {
        return;
    };
    let version: String = reqwest::blocking::Client::new()
        .get(format!("{}/version", mlflow.uri))
        .basic_auth(ADMIN_USER, Some(ADMIN_PASSWORD))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(version.starts_with("2.9"), "{version}");
    let token = format!("tok-{}", testkit::unique());
    create_user(&mlflow, "ada", &token);
    create_user(&mlflow, "reader", "reader-token-123");
    let replay = Replay::sample();
    let dir = tempfile::tempdir().unwrap();
    let mut env = Env::new(&dir.path().join("store"), &replay);
    env.set("MLFLOW_TRACKING_URI", mlflow.uri.as_str())
        .set("MLFLOW_EXPERIMENT_NAME", "rps-dagshub")
        .set("RPS_MODEL_NAME", "rps-dagshub");

    // The form every CI job used to have: a user name and MLFLOW_TRACKING_TOKEN. As
    // MLflow's client, rps sends the token as a Bearer token; basic auth refuses it, and
    // that is a configuration fault (the variables named), not a fault to retry.
    let mut bearer = env.clone();
    bearer
        .set("MLFLOW_TRACKING_USERNAME", "ada")
        .set("MLFLOW_TRACKING_TOKEN", token.as_str());
    let shown = String::from_utf8(bearer.ok(&["config"]).stdout).unwrap();
    assert!(
        shown.contains("bearer: MLFLOW_TRACKING_TOKEN; MLFLOW_TRACKING_USERNAME is ignored"),
        "{shown}"
    );
    assert!(!shown.contains(&token), "the token was printed");
    let out = bearer.pipeline("run", "2023-01-01", "2023-03-31");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("refused the credentials") && err.contains("retrying will not help"),
        "{err}"
    );

    // DagsHub's documented form: the user name and the token as the password.
    env.set("MLFLOW_TRACKING_USERNAME", "ada")
        .set("MLFLOW_TRACKING_PASSWORD", token.as_str());
    let doctor = env.run(&["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(doctor.status.success(), "{text}{}", stderr(&doctor));
    assert!(
        text.contains("basic: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"),
        "{text}"
    );
    assert!(
        text.contains("2.9.2") && text.contains("through the server's artifact proxy"),
        "{text}"
    );
    assert!(
        !text.contains(&token) && !stderr(&doctor).contains(&token),
        "the token was printed"
    );
    // The release flow: trained, staged, gated, promoted.
    let released = last_json(&env.ok(&[&year()[..], &["--json"]].concat()));
    assert_eq!(released["promote"]["version"], "1", "{released}");
    let production = last_json(&env.ok(&["models", "show", "@production", "--json"]));
    assert_eq!(production["version"]["version"], "1");

    // The API's read-only credentials: they serve @production and may not track or
    // register anything.
    let mut reader = env.clone();
    reader
        .set("MLFLOW_TRACKING_USERNAME", "reader")
        .set("MLFLOW_TRACKING_PASSWORD", "reader-token-123");
    let api = reader.serve();
    let model: Value = reqwest::blocking::get(format!("{}/model", api.url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(model["version"], "1", "{model}");
    let out = reader.pipeline("run", "2023-01-01", "2023-03-31");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("403") && err.contains("retrying will not help"),
        "{err}"
    );
}

#[test]
fn mlflow_without_the_artifact_proxy_and_an_s3_artifact_root() {
    let _turn = testkit::turn(module_path!());
    let Some(moto) = MotoServer::start() else {
        return;
    };
    moto.create_bucket("mlflow-artifacts");
    moto.create_bucket("rps-hosted");
    let Some(mlflow) = MlflowServer::start_with(Options {
        artifact_root: Some("s3://mlflow-artifacts/mlflow".into()),
        env: moto.env().into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        ..Options::default()
    }) else {
        return;
    };
    let replay = Replay::sample();
    let dir = tempfile::tempdir().unwrap();
    let mut env = Env::new(&dir.path().join("unused"), &replay);
    env.set("RPS_STORE", "s3://rps-hosted/store")
        .set("MLFLOW_TRACKING_URI", mlflow.uri.as_str())
        .set("MLFLOW_EXPERIMENT_NAME", "rps-s3")
        .set("RPS_MODEL_NAME", "rps-s3");
    for (k, v) in moto.env() {
        env.set(k, v);
    }
    let doctor = env.run(&["doctor"]);
    let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(doctor.status.success(), "{text}{}", stderr(&doctor));
    assert!(text.contains("straight to S3"), "{text}");
    let released = last_json(&env.ok(&[&year()[..], &["--json"]].concat()));
    assert_eq!(released["promote"]["version"], "1", "{released}");
    // The bundle is in the artifact bucket, written by rps; serving reads it back.
    let listing = reqwest::blocking::Client::new()
        .get(format!("{}/mlflow-artifacts?list-type=2&prefix=mlflow/", moto.endpoint))
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(listing.contains("model.rpsb"), "{listing}");
    let api = env.serve();
    let model: Value = reqwest::blocking::get(format!("{}/model", api.url))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(model["version"], "1", "{model}");

    // A server whose artifacts no client can reach (a local folder, not proxied): a
    // configuration fault naming what is missing, never retried; doctor blocks on it.
    let folder = dir.path().join("server-only");
    let Some(closed) = MlflowServer::start_with(Options {
        artifact_root: Some(folder.display().to_string()),
        ..Options::default()
    }) else {
        return;
    };
    env.set("MLFLOW_TRACKING_URI", closed.uri.as_str());
    let out = env.pipeline("run", "2023-01-01", "2023-03-31");
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("an artifact store rps can reach") && err.contains("retrying will not help"),
        "{err}"
    );
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&doctor.stdout).contains("BLOCKER"));
}

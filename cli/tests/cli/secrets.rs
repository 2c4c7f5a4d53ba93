//! Secrets never leak: with a known token in every secret variable and in the tracking
//! URI, the pipeline, promotion, lineage and serving run (logs at debug), and the token
//! is searched for in every line they print, every answer the API gives, every object
//! in the store and everything MLflow stored (its database: params, tags; artifacts;
//! its log). It is never found.

use std::path::Path;

use testkit::mlflow::MlflowServer;
use testkit::replay::Replay;
use testkit::rps::Env;

const IN_URI: &str = "uri-secret-7f3a9c";
const TOKEN: &str = "token-secret-b41e22";
const PASSWORD: &str = "password-secret-5d0c81";
const AWS: &str = "aws-secret-93ab10";
const OPEN_METEO: &str = "apikey-secret-c2f7d4";

fn find_in_files(dir: &Path, needles: &[&str], found: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            find_in_files(&p, needles, found);
        } else if let Ok(bytes) = std::fs::read(&p) {
            let text = String::from_utf8_lossy(&bytes);
            for n in needles {
                if text.contains(n) {
                    found.push(format!("{n} in {}", p.display()));
                }
            }
        }
    }
}

#[test]
fn no_secret_reaches_any_output() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let store = dir.path().join("store");
    let mut env = Env::new(&store, &replay);
    let uri = mlflow
        .uri
        .replacen("http://", &format!("http://rps-user:{IN_URI}@"), 1);
    let tag = testkit::unique();
    env.set("MLFLOW_TRACKING_URI", uri)
        .set("MLFLOW_TRACKING_TOKEN", TOKEN)
        .set("AWS_SECRET_ACCESS_KEY", AWS)
        .set("AWS_ACCESS_KEY_ID", "test")
        .set("OPEN_METEO_API_KEY", OPEN_METEO)
        .set("MLFLOW_EXPERIMENT_NAME", format!("secrets-{tag}"))
        .set("RPS_MODEL_NAME", format!("secrets-{tag}"))
        .set("RUST_LOG", "debug");
    let needles = [IN_URI, TOKEN, PASSWORD, AWS, OPEN_METEO];
    let mut found = Vec::new();
    let mut check = |what: &str, text: &str| {
        for n in needles {
            if text.contains(n) {
                found.push(format!("{n} in {what}"));
            }
        }
    };
    for args in [
        vec!["config"],
        vec![
            "pipeline",
            "promote",
            "--start",
            "2023-01-01",
            "--end",
            "2023-12-31",
            "--json",
        ],
        vec!["models", "list", "--json"],
        vec!["trace", "@production", "--json"],
        vec!["ingest", "--live"],
        vec!["validate"],
    ] {
        let out = env.run(&args);
        assert!(
            out.status.success(),
            "rps {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        check(
            &format!("the stdout of rps {args:?}"),
            &String::from_utf8_lossy(&out.stdout),
        );
        check(
            &format!("the stderr of rps {args:?}"),
            &String::from_utf8_lossy(&out.stderr),
        );
    }
    // A bad URI is quoted in the error without its credentials.
    let mut bad = env.clone();
    bad.set(
        "MLFLOW_TRACKING_URI",
        format!("ftp://rps-user:{IN_URI}@127.0.0.1/"),
    );
    let out = bad.run(&["config"]);
    assert!(!out.status.success());
    check(
        "an invalid configuration's error",
        &String::from_utf8_lossy(&out.stderr),
    );
    // Basic auth from the standard variables.
    let mut basic = env.clone();
    basic
        .set("MLFLOW_TRACKING_USERNAME", "rps-user")
        .set("MLFLOW_TRACKING_PASSWORD", PASSWORD);
    let out = basic.run(&["models", "list"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    check(
        "rps models list with basic auth",
        &String::from_utf8_lossy(&out.stdout),
    );
    check(
        "rps models list with basic auth (stderr)",
        &String::from_utf8_lossy(&out.stderr),
    );

    let log = dir.path().join("serve.log");
    let server = env.serve_with_log(Some(&log));
    let http = reqwest::blocking::Client::new();
    for path in [
        "/health",
        "/ready",
        "/model",
        "/forecast",
        "/drift",
        "/metrics",
        "/openapi.json",
        "/",
        "/nowhere",
    ] {
        let body = http
            .get(format!("{}{path}", server.url))
            .send()
            .unwrap()
            .text()
            .unwrap();
        check(&format!("GET {path}"), &body);
    }
    let body = http
        .post(format!("{}/predict", server.url))
        .header("content-type", "application/json")
        .body(testkit::rps::sample_observations(100, 25).to_string())
        .send()
        .unwrap()
        .text()
        .unwrap();
    check("POST /predict", &body);
    drop(server);
    let log_text = std::fs::read_to_string(&log).unwrap();
    assert!(log_text.contains("serving"), "the server logged: {log_text}");
    check("the server's log", &log_text);

    find_in_files(&store, &needles, &mut found);
    find_in_files(mlflow.data_dir(), &needles, &mut found);
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}

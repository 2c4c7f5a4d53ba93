//! The `rps-api` function under the Lambda emulator (`cargo lambda watch`): API Gateway
//! events in, API Gateway responses out, JSON logs with CloudWatch EMF metric lines.
//! Then the same binary outside Lambda, as a plain HTTP server.

mod common;

use std::time::{Duration, Instant};

use common::{Env, sample_observations, trained_bundle};
use serde_json::{Value, json};
use testkit::replay::Replay;

fn event(method: &str, path: &str, body: Option<&Value>) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "accept": "application/json"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "rps", "domainName": "localhost", "domainPrefix": "localhost",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "rps-test"},
            "requestId": "test", "routeKey": "$default", "stage": "$default",
            "time": "22/Nov/2026:00:00:00 +0000", "timeEpoch": 1795305600000u64
        },
        "body": body.map(|b| b.to_string()),
        "isBase64Encoded": false
    })
}

#[test]
fn the_api_function_answers_api_gateway_events_and_plain_http() {
    let Some(cargo_lambda) = testkit::require("cargo-lambda", &testkit::venv_bin("cargo-lambda")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let env = Env::new(&dir.path().join("store"), &replay);
    let bundle = trained_bundle(&env, &dir.path().join("store"), "2023-01-01", "2023-06-30")
        .display()
        .to_string();
    let store = dir.path().join("store").display().to_string();

    let port = testkit::free_port();
    let path = format!(
        "{}:{}",
        testkit::venv_bin("").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let watch = testkit::Background::spawn_in(
        &testkit::workspace_root(),
        &cargo_lambda,
        &[
            "lambda",
            "watch",
            "--release",
            "-p",
            "rps-api",
            "-A",
            "127.0.0.1",
            "-P",
            &port.to_string(),
        ],
        &[
            ("RPS_MODEL_PATH", bundle.as_str()),
            ("RPS_STORE", store.as_str()),
            ("PATH", path.as_str()),
        ],
        dir.path().join("watch.log"),
    );
    let invoke_url = format!("http://127.0.0.1:{port}/2015-03-31/functions/rps-api/invocations");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(900))
        .build()
        .unwrap();
    let invoke = |ev: &Value| -> Value {
        let r = client.post(&invoke_url).json(ev).send().unwrap();
        assert_eq!(
            r.status().as_u16(),
            200,
            "the emulator itself failed: {}",
            r.text().unwrap_or_default()
        );
        r.json().unwrap()
    };

    // The first invocation compiles the function: wait for the emulator, then for it.
    let started = Instant::now();
    let ready = loop {
        match client
            .post(&invoke_url)
            .json(&event("GET", "/ready", None))
            .send()
        {
            Ok(r) if r.status().is_success() => break r.json::<Value>().unwrap(),
            _ if started.elapsed() < Duration::from_secs(900) => std::thread::sleep(Duration::from_secs(1)),
            other => panic!("the emulator never answered: {other:?}\n{}", watch.log_tail()),
        }
    };
    assert_eq!(ready["statusCode"], 200, "{ready}");
    let body: Value = serde_json::from_str(ready["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "ready");

    let r = invoke(&event("POST", "/predict", Some(&sample_observations(3000, 25))));
    assert_eq!(r["statusCode"], 200, "{r}");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["forecasts"].as_array().unwrap().len(), 6);

    let r = invoke(&event("POST", "/predict", Some(&sample_observations(3000, 5))));
    assert_eq!(r["statusCode"], 422, "{r}");
    let body: Value = serde_json::from_str(r["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["error"]["code"], "too_few_observations");

    let r = invoke(&event("GET", "/nowhere", None));
    assert_eq!(r["statusCode"], 404);

    // Logs are JSON on Lambda, and every request left an EMF line.
    std::thread::sleep(Duration::from_millis(500));
    let log = std::fs::read_to_string(dir.path().join("watch.log")).unwrap();
    let emf: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l.trim()).ok())
        .filter(|v| v.get("_aws").is_some())
        .collect();
    assert!(
        emf.iter()
            .any(|v| v["route"] == "/predict" && v["status"] == "200" && v["predictions"] == 1),
        "{log}"
    );
    assert!(
        emf.iter()
            .any(|v| v["route"] == "/predict" && v["status"] == "422"),
        "{log}"
    );
    drop(watch);

    // The same binary outside Lambda is a plain HTTP server.
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| testkit::workspace_root().join("target"));
    let http_port = testkit::free_port();
    let server = testkit::Background::spawn(
        &target.join("release/rps-api"),
        &[],
        &[
            ("RPS_MODEL_PATH", bundle.as_str()),
            ("RPS_STORE", store.as_str()),
            ("PORT", &http_port.to_string()),
        ],
        dir.path().join("api.log"),
    );
    assert!(
        testkit::wait_http_ok(http_port, "/ready", Duration::from_secs(30)),
        "{}",
        server.log_tail()
    );
    let r = client
        .post(format!("http://127.0.0.1:{http_port}/predict"))
        .json(&sample_observations(3000, 25))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

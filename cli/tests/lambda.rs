//! The `rps-api` function as `sam build` makes it, under the Lambda Runtime API
//! (testkit::cloud::LambdaService): API Gateway events in, API Gateway responses out,
//! JSON logs with CloudWatch EMF metric lines. Then the same binary outside Lambda, as
//! a plain HTTP server.

mod common;

use std::time::Duration;

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
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let env = Env::new(&dir.path().join("store"), &replay);
    let bundle = trained_bundle(&env, &dir.path().join("store"), "2023-01-01", "2023-06-30")
        .display()
        .to_string();
    let store = dir.path().join("store").display().to_string();

    // The bootstrap `sam build` made, under the Lambda Runtime API.
    let Some(lambda) = testkit::cloud::LambdaService::start(&[(
        "rps-api",
        "ApiFunction",
        vec![("RPS_MODEL_PATH", bundle.clone()), ("RPS_STORE", store.clone())],
        256,
        29,
    )]) else {
        return;
    };
    let invoke = |ev: &Value| -> Value {
        let (status, error, payload) = lambda.invoke("rps-api", ev);
        assert_eq!(
            (status, &error),
            (200, &None),
            "the function failed: {payload}\n{}",
            lambda.log("rps-api")
        );
        payload
    };

    let ready = invoke(&event("GET", "/ready", None));
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
    let log = lambda.log("rps-api");
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
    drop(lambda);

    // The same binary outside Lambda is a plain HTTP server.
    let http_port = testkit::free_port();
    let server = testkit::Background::spawn(
        &testkit::cloud::sam_build().unwrap().join("ApiFunction/bootstrap"),
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
    let r = reqwest::blocking::Client::new()
        .post(format!("http://127.0.0.1:{http_port}/predict"))
        .json(&sample_observations(3000, 25))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

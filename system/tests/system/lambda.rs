//! The `rps-api` function as `sam build` makes it, under the Lambda Runtime API
//! (testkit::cloud::LambdaService): API Gateway events in, API Gateway responses out,
//! JSON logs with CloudWatch EMF metric lines. Then the same binary outside Lambda, as
//! a plain HTTP server. And the `rps-verify` function at the template's memory size,
//! over a forecast log a flood of client traffic left full.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::replay::Replay;
use testkit::rps::{Env, last_json, sample_observations, trained_bundle};

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
    let _turn = testkit::turn(module_path!());
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

/// A function's `MemorySize` in template.yaml.
fn template_memory(logical_id: &str) -> u32 {
    let template = std::fs::read_to_string(testkit::workspace_root().join("template.yaml")).unwrap();
    let at = template
        .find(&format!("\n  {logical_id}:\n"))
        .expect("the function is in the template");
    let rest = &template[at..];
    let line = rest
        .lines()
        .find(|l| l.trim_start().starts_with("MemorySize:"))
        .unwrap();
    line.split(':')
        .nth(1)
        .unwrap()
        .split('#')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn the_verify_function_reads_a_flooded_log_within_its_memory_and_decides_as_before() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let replay = Replay::sample();
    let mut env = Env::new(&store, &replay);
    env.set("RPS_MODEL_ALIAS", "candidate");
    env.ok(&["pipeline", "run", "--start", "2023-01-01", "--end", "2023-03-31"]);
    env.ok(&["ingest", "--start", "2023-04-11", "--end", "2023-04-20"]);
    env.ok(&["validate"]);
    let before = last_json(&env.ok(&["verify", "--no-issue", "--json"]));

    // Every client slot of nine issue days full: 300,000 distinct requests, as many
    // API instances under a flood would leave them (bench/verify.sh goes to a million).
    let python = testkit::workspace_root().join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg(testkit::workspace_root().join("bench/forecast_log.py"))
        .args([
            store.to_str().unwrap(),
            "rps-temperature",
            "300000",
            "2023-04-20",
            "9",
            "48",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let memory = template_memory("VerifyFunction");
    let Some(lambda) = testkit::cloud::LambdaService::start(&[(
        "rps-verify",
        "VerifyFunction",
        vec![
            ("RPS_STORE", store.display().to_string()),
            ("RPS_MODEL_CACHE", dir.path().join("cache").display().to_string()),
            ("RPS_MODEL_ALIAS", "candidate".to_owned()),
        ],
        memory,
        120,
    )]) else {
        return;
    };
    let (status, error, after) = lambda.invoke("rps-verify", &json!({"issue": false}));
    assert_eq!(
        (status, &error),
        (200, &None),
        "the verify function failed at {memory} MB: {after}\n{}",
        lambda.log("rps-verify")
    );
    assert!(
        after["log"]["records"].as_u64().unwrap() >= 299_000,
        "{}",
        after["log"]
    );
    assert!(
        !after["client"]["versions"].as_array().unwrap().is_empty(),
        "{}",
        after["client"]
    );
    // The flood is scored as client traffic and decides nothing.
    for field in ["needed", "causes", "held"] {
        assert_eq!(
            after["retrain"][field], before["retrain"][field],
            "{field}: {after}"
        );
    }
    assert_eq!(after["versions"], before["versions"]);
}

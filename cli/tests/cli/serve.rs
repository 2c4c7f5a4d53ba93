//! The prediction service, black box: `rps serve` on a random port, against a real
//! MLflow server holding versions registered by the pipeline.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::mlflow::MlflowServer;
use testkit::mlflow::client as mlflow_client;
use testkit::replay::Replay;
use testkit::rps::{Env, last_json, sample_observations, trained_bundle};

fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn get(url: &str) -> (u16, Value) {
    let r = http().get(url).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn post_json(url: &str, body: &Value) -> (u16, Value) {
    let r = http().post(url).json(body).send().unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

fn set_alias(uri: &str, model: &str, alias: &str, version: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(mlflow_client(uri).set_alias(model, alias, version))
        .unwrap();
}

/// A store with two registered versions of a fresh model name, `production` on 1.
struct Setup {
    _dir: tempfile::TempDir,
    _replay: Replay,
    env: Env,
    model: String,
}

fn setup(mlflow_uri: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let mut env = Env::new(&dir.path().join("store"), &replay);
    let model = format!("serve-{}", testkit::unique());
    env.with_mlflow(mlflow_uri, &model);
    let run = last_json(&env.pipeline_ok("run", "2023-01-01", "2023-12-31"));
    assert_eq!(run["model_version"], "1");
    let again = last_json(&env.ok(&["train", "--json"]));
    assert_eq!(again["model_version"], "2");
    set_alias(mlflow_uri, &model, "production", "1");
    Setup {
        _dir: dir,
        _replay: replay,
        env,
        model,
    }
}

#[test]
fn every_endpoint_answers_from_the_production_model() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let s = setup(&mlflow.uri);
    let server = s.env.serve();
    let u = |p: &str| format!("{}{p}", server.url);

    assert_eq!(get(&u("/health")), (200, json!({"status": "ok"})));
    let (st, ready) = get(&u("/ready"));
    assert_eq!(st, 200, "{ready}");
    assert_eq!(
        ready["model"],
        json!({"name": s.model, "version": "1", "alias": "production", "location": "default"})
    );
    assert_eq!(ready["registry"]["reachable"], true);

    let (st, model) = get(&u("/model"));
    assert_eq!(st, 200);
    assert_eq!(
        (model["version"].as_str(), model["alias"].as_str()),
        (Some("1"), Some("production"))
    );
    assert_eq!(model["input_hours"], 25);
    assert_eq!(model["data_version"].as_str().unwrap().len(), 32);
    assert_eq!(model["git_commit"].as_str().unwrap().len(), 40);
    assert!(model["metrics"]["rmse_h6"].as_f64().unwrap() > 0.0);
    assert!(model["training_window"]["start"].is_string());

    // Predict from 30 hours of July: six forecasts, one per hour after the last.
    let (st, p) = post_json(&u("/predict"), &sample_observations(4800, 30));
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["model"]["version"], "1");
    let last = sample_observations(4800, 30)["observations"][29]["time"].clone();
    assert_eq!(p["issued_at"], last);
    let forecasts = p["forecasts"].as_array().unwrap();
    assert_eq!(forecasts.len(), 6);
    for (i, f) in forecasts.iter().enumerate() {
        assert_eq!(f["horizon_hours"], i + 1);
        assert!(f["temperature_2m"].as_f64().unwrap().is_finite());
    }
    let next_hour =
        rps_core::observations::parse_time(last.as_str().unwrap()).unwrap() + chrono::Duration::hours(1);
    assert_eq!(
        forecasts[0]["time"],
        rps_core::observations::format_time(next_hour)
    );
    assert!(p["drift"]["features_out_of_range"].is_array());

    // The forecast from the newest validated observations in the store.
    let (st, fc) = get(&u("/forecast"));
    assert_eq!(st, 200, "{fc}");
    assert_eq!(fc["observations"].as_array().unwrap().len(), 48);
    assert_eq!(fc["forecasts"].as_array().unwrap().len(), 6);
    assert_eq!(fc["issued_at"], "2023-12-31T23:00");
    assert!(fc["observations_age_minutes"].as_f64().unwrap() > 60.0 * 24.0 * 300.0);

    let (st, drift) = get(&u("/drift"));
    assert_eq!(st, 200);
    assert_eq!(drift["requests"], 1);

    let metrics = http().get(u("/metrics")).send().unwrap().text().unwrap();
    for needle in [
        "rps_http_requests_total{route=\"/predict\",method=\"POST\",status=\"200\"} 1",
        "rps_http_request_duration_seconds_bucket{route=\"/predict\"",
        "rps_predictions_total{endpoint=\"predict\"} 1",
        "rps_prediction_temperature_celsius_bucket{horizon=\"6\"",
        "rps_model_loaded 1",
        "rps_registry_reachable 1",
        "rps_drift_window_requests 1",
    ] {
        assert!(metrics.contains(needle), "{needle} not in\n{metrics}");
    }
    assert!(
        metrics.contains(&format!(
            "rps_model_info{{name=\"{}\",version=\"1\",alias=\"production\"",
            s.model
        )),
        "{metrics}"
    );

    let (st, doc) = get(&u("/openapi.json"));
    assert_eq!(st, 200);
    for path in [
        "/health",
        "/ready",
        "/predict",
        "/forecast",
        "/model",
        "/drift",
        "/metrics",
        "/openapi.json",
        "/",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} undocumented");
    }
    assert_eq!(
        doc["components"]["schemas"]["PredictRequest"]["properties"]["observations"]["minItems"],
        25
    );

    let page = http().get(u("/")).send().unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().unwrap();
    assert!(
        html.contains("/assets/app.js")
            && !html.contains("src=\"http")
            && !html.contains("href=\"http")
            && !html.contains("url(http"),
        "assets must be local"
    );
    assert_eq!(http().get(u("/assets/app.js")).send().unwrap().status(), 200);
    assert_eq!(get(&u("/assets/nope.js")).0, 404);
}

#[test]
fn moving_the_alias_swaps_the_served_version_without_dropping_requests() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let s = setup(&mlflow.uri);
    let mut env = s.env.clone();
    env.set("RPS_MODEL_REFRESH_SECS", "1");
    let server = env.serve();
    let predict = format!("{}/predict", server.url);
    let body = sample_observations(100, 25);
    assert_eq!(post_json(&predict, &body).1["model"]["version"], "1");

    set_alias(&mlflow.uri, &s.model, "production", "2");
    let started = Instant::now();
    let mut seen = Vec::new();
    loop {
        let (st, p) = post_json(&predict, &body);
        assert_eq!(st, 200, "a request failed during the swap: {p}");
        seen.push(p["model"]["version"].as_str().unwrap().to_owned());
        if seen.last().unwrap() == "2" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "still serving version 1: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, model) = get(&format!("{}/model", server.url));
    assert_eq!(model["version"], "2");
    let metrics = http()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("rps_model_refreshes_total{result=\"swapped\"} 2"),
        "{metrics}"
    );
}

#[test]
fn serving_continues_when_the_registry_goes_away() {
    let _turn = testkit::turn(module_path!());
    // A server of its own, to stop.
    let Some(mut mlflow) = MlflowServer::start() else {
        return;
    };
    let s = setup(&mlflow.uri);
    let mut env = s.env.clone();
    env.set("RPS_MODEL_REFRESH_SECS", "1")
        .set("MLFLOW_HTTP_REQUEST_TIMEOUT", "2");
    let server = env.serve();
    let body = sample_observations(2000, 25);
    assert_eq!(post_json(&format!("{}/predict", server.url), &body).0, 200);

    mlflow.stop();
    let started = Instant::now();
    loop {
        let (st, p) = post_json(&format!("{}/predict", server.url), &body);
        assert_eq!(st, 200, "{p}");
        assert_eq!(p["model"]["version"], "1");
        let (st, ready) = get(&format!("{}/ready", server.url));
        assert_eq!(st, 200, "the model is still loaded");
        if ready["registry"]["reachable"] == false {
            assert!(
                ready["registry"]["last_error"]
                    .as_str()
                    .unwrap()
                    .contains("MLflow"),
                "{ready}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the outage was never noticed: {ready}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let metrics = http()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("rps_registry_reachable 0"), "{metrics}");
    assert!(metrics.contains("rps_model_loaded 1"), "{metrics}");
}

#[test]
fn without_a_model_ready_and_predict_answer_503() {
    let _turn = testkit::turn(module_path!());
    let Some(mlflow) = MlflowServer::shared() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let mut env = Env::new(&dir.path().join("store"), &replay);
    env.set("MLFLOW_TRACKING_URI", mlflow.uri.clone())
        .set("RPS_MODEL_NAME", format!("absent-{}", testkit::unique()));
    let server = env.serve();
    let (st, ready) = get(&format!("{}/ready", server.url));
    assert_eq!(st, 503);
    assert_eq!(ready["error"]["code"], "no_model");
    let (st, p) = post_json(&format!("{}/predict", server.url), &sample_observations(0, 25));
    assert_eq!(st, 503);
    assert_eq!(p["error"]["code"], "no_model");
    assert!(
        p["error"]["message"].as_str().unwrap().contains("@production"),
        "{p}"
    );
    assert_eq!(
        get(&format!("{}/health", server.url)).0,
        200,
        "alive all the same"
    );
}

#[test]
fn bad_requests_get_the_right_4xx_with_a_json_reason() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let env = Env::new(&dir.path().join("store"), &replay);
    let bundle = trained_bundle(&env, &dir.path().join("store"), "2023-01-01", "2023-06-30");
    let mut env = env.clone();
    env.set("RPS_MODEL_PATH", bundle.display().to_string())
        .set("RPS_MAX_BODY_BYTES", "65536");
    let server = env.serve();
    let url = format!("{}/predict", server.url);

    let good = sample_observations(1000, 30);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        serde_json::to_vec(&v).unwrap()
    };
    // (what, body, content type, status, error code, error location)
    type Case<'a> = (&'a str, Vec<u8>, &'a str, u16, &'a str, Option<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "malformed JSON",
            b"{\"observations\": [".to_vec(),
            "application/json",
            400,
            "invalid_json",
            None,
        ),
        (
            "not an object",
            b"[1, 2]".to_vec(),
            "application/json",
            400,
            "invalid_shape",
            None,
        ),
        (
            "no observations",
            b"{}".to_vec(),
            "application/json",
            400,
            "invalid_shape",
            Some("/observations"),
        ),
        (
            "observations not a list",
            br#"{"observations": "lots"}"#.to_vec(),
            "application/json",
            400,
            "invalid_type",
            Some("/observations"),
        ),
        (
            "wrong type",
            with(&|v| v["observations"][3]["temperature_2m"] = json!("cold")),
            "application/json",
            400,
            "invalid_type",
            Some("/observations/3/temperature_2m"),
        ),
        (
            "missing variable",
            with(&|v| {
                v["observations"][5]
                    .as_object_mut()
                    .unwrap()
                    .remove("cloud_cover");
            }),
            "application/json",
            400,
            "missing_variable",
            Some("/observations/5/cloud_cover"),
        ),
        (
            "bad time",
            with(&|v| v["observations"][0]["time"] = json!("yesterday")),
            "application/json",
            400,
            "invalid_time",
            Some("/observations/0/time"),
        ),
        (
            "null value",
            with(&|v| v["observations"][7]["dew_point_2m"] = Value::Null),
            "application/json",
            422,
            "null_value",
            Some("/observations/7/dew_point_2m"),
        ),
        (
            "implausible value",
            with(&|v| v["observations"][8]["temperature_2m"] = json!(99.5)),
            "application/json",
            422,
            "implausible_value",
            Some("/observations/8/temperature_2m"),
        ),
        (
            "huge number",
            br#"{"observations": [{"time": "2023-01-01T00:00", "temperature_2m": 1e999}]}"#.to_vec(),
            "application/json",
            400,
            "invalid_json",
            None,
        ),
        (
            "repeated hour",
            with(&|v| v["observations"][11]["time"] = v["observations"][10]["time"].clone()),
            "application/json",
            422,
            "not_increasing",
            Some("/observations/11/time"),
        ),
        (
            "not hourly",
            with(&|v| {
                v["observations"].as_array_mut().unwrap().remove(12);
            }),
            "application/json",
            422,
            "not_hourly",
            Some("/observations/12/time"),
        ),
        (
            "too few hours",
            serde_json::to_vec(&sample_observations(0, 24)).unwrap(),
            "application/json",
            422,
            "too_few_observations",
            Some("/observations"),
        ),
        (
            "wrong content type",
            serde_json::to_vec(&good).unwrap(),
            "text/plain",
            415,
            "unsupported_media_type",
            Some("header:Content-Type"),
        ),
        (
            "no content type",
            serde_json::to_vec(&good).unwrap(),
            "",
            415,
            "unsupported_media_type",
            Some("header:Content-Type"),
        ),
        (
            "oversized body",
            vec![b' '; 70_000],
            "application/json",
            413,
            "body_too_large",
            None,
        ),
    ];
    for (what, body, ct, status, code, location) in cases {
        let mut req = http().post(&url).body(body);
        if !ct.is_empty() {
            req = req.header("content-type", ct);
        }
        let r = req.send().unwrap();
        let got = r.status().as_u16();
        let v: Value = r
            .json()
            .unwrap_or_else(|e| panic!("{what}: the error body is not JSON: {e}"));
        assert_eq!(got, status, "{what}: {v}");
        assert_eq!(v["error"]["status"], status, "{what}: {v}");
        assert_eq!(v["error"]["code"], code, "{what}: {v}");
        assert!(
            v["error"]["message"].as_str().is_some_and(|m| m.len() > 10),
            "{what}: {v}"
        );
        if let Some(loc) = location {
            assert_eq!(v["error"]["location"], loc, "{what}: {v}");
        }
    }
    // The too-few message says how many are needed.
    let (_, v) = post_json(&url, &sample_observations(0, 24));
    assert_eq!(
        v["error"]["message"],
        "25 trailing hourly observations are needed, got 24"
    );
    // A chunked body without a length is held to the limit as well. Sent whole over a
    // raw socket before reading, so the early 413 cannot race the upload.
    assert_eq!(chunked_post_status(&url, 65_536 + 4_096), 413);
    // Nothing above was a server error, and the good request still works.
    assert_eq!(post_json(&url, &good).0, 200);
    let metrics = http()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(!metrics.contains("status=\"500\""), "{metrics}");
}

/// POSTs `size` bytes of JSON whitespace as a chunked body; returns the status code.
fn chunked_post_status(url: &str, size: usize) -> u16 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_once('/').unwrap();
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "POST /{path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in [size / 2, size - size / 2] {
        req.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
        req.extend(std::iter::repeat_n(b' ', chunk));
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    sock.write_all(&req).unwrap();
    let mut head = [0u8; 12];
    sock.read_exact(&mut head).unwrap();
    let line = String::from_utf8_lossy(&head).into_owned();
    line[9..12]
        .parse()
        .unwrap_or_else(|_| panic!("not an HTTP status line: {line:?}"))
}

#[test]
fn summer_requests_against_a_winter_model_raise_drift() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let env = Env::new(&dir.path().join("store"), &replay);
    // Trained on January to March only.
    let bundle = trained_bundle(&env, &dir.path().join("store"), "2023-01-01", "2023-03-31");
    let mut env = env.clone();
    env.set("RPS_MODEL_PATH", bundle.display().to_string())
        .set("RPS_DRIFT_WINDOW", "100");
    let server = env.serve();
    let predict = |start: usize| {
        post_json(
            &format!("{}/predict", server.url),
            &sample_observations(start, 25),
        )
    };

    // Winter requests, spread over the training period (early January to mid March).
    for i in 0..100 {
        let (st, _) = predict(24 + i * 16);
        assert_eq!(st, 200);
    }
    let (_, winter) = get(&format!("{}/drift", server.url));
    // Summer requests (July to September), which fill the whole window.
    let mut flagged = 0;
    for i in 0..100 {
        let (st, p) = predict(4400 + i * 16);
        assert_eq!(st, 200);
        flagged += usize::from(p["drift"]["out_of_range"] == true);
    }
    let (_, summer) = get(&format!("{}/drift", server.url));
    let share = |d: &Value| d["out_of_range_share"].as_f64().unwrap();
    let psi = |d: &Value, f: &str| {
        d["features"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["feature"] == f)
            .unwrap()["psi"]
            .as_f64()
            .unwrap()
    };
    assert!(share(&summer) >= 0.9, "summer share {}", share(&summer));
    assert!(
        share(&summer) > share(&winter) + 0.3,
        "winter {} vs summer {}",
        share(&winter),
        share(&summer)
    );
    assert!(psi(&summer, "temperature_2m") > 1.0, "{summer}");
    assert!(psi(&winter, "temperature_2m") < 0.25, "{winter}");
    assert!(psi(&summer, "day_of_year_cos") > psi(&winter, "day_of_year_cos"));
    assert!(
        flagged >= 90,
        "each summer request carries its own flags: {flagged}/100"
    );
    let metrics = http()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metrics.contains("rps_drift_psi{feature=\"temperature_2m\",kind=\"weather\"}"),
        "{metrics}"
    );
}

#[test]
fn slow_clients_cannot_hold_a_connection() {
    let _turn = testkit::turn(module_path!());
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let mut env = Env::new(&dir.path().join("store"), &replay);
    env.set("RPS_HEADER_READ_TIMEOUT_SECS", "1")
        .set("RPS_REQUEST_TIMEOUT_SECS", "2");
    let server = env.serve();
    let addr = server.url.trim_start_matches("http://").to_owned();
    // A request head that never ends: the server closes the connection.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "held for {:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
    // A body that never arrives: the request times out with a 408.
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"obs")
        .unwrap();
    let started = Instant::now();
    let n = s.read(&mut buf).unwrap_or(0);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "held for {:?}",
        started.elapsed()
    );
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

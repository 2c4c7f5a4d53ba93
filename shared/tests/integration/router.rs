//! The HTTP application in-process, over the in-memory store and the local registry:
//! the fast cases of the API without a server, a port or MLflow. The black-box tests in
//! `cli/tests/cli/serve.rs` cover the same routes against real servers.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::NaiveDate;
use rps_core::bundle::Forecast;
use rps_core::config::Config;
use rps_core::pipeline::{RunInput, run};
use rps_core::serve::api::{ErrorResponse, ModelInfo, PredictResponse};
use rps_core::serve::{AppState, router};
use rps_core::source::{DateRange, IngestRequest, RecordedSource, Recording};
use rps_core::stage::{Context, Quiet};
use rps_core::store::MemoryStore;
use rps_core::tags::aliases;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A model trained on Jan–Jun 2023 in a memory store, promoted by hand; the app on it.
fn app() -> axum::Router {
    static STATE: OnceLock<(tokio::runtime::Runtime, Arc<AppState>)> = OnceLock::new();
    // Built on a runtime of its own (the tests' runtimes come and go), from a thread
    // outside them.
    let (_, state) = STATE.get_or_init(|| std::thread::spawn(build).join().unwrap());
    router(state.clone())
}

fn build() -> (tokio::runtime::Runtime, Arc<AppState>) {
    let (rt, state, _) = build_on_store();
    (rt, state)
}

/// The app of [`app`], with the store under it.
fn build_on_store() -> (tokio::runtime::Runtime, Arc<AppState>, Arc<MemoryStore>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = rt.block_on(async {
        let store = Arc::new(MemoryStore::new());
        let config = Config::from_lookup(|_| None).unwrap();
        let recording = Recording::parse(&testkit::sample_bytes()).unwrap();
        let ctx = Context::with_store(config.clone(), store.clone())
            .unwrap()
            .with_source(Arc::new(RecordedSource::new(recording, 7)));
        let d = |m, day| NaiveDate::from_ymd_opt(2023, m, day).unwrap();
        let ingest = IngestRequest::backfill(DateRange::new(d(1, 1), d(6, 30)).unwrap());
        let out = run(
            &ctx,
            RunInput {
                ingest,
                trigger: None,
            },
            &Quiet,
        )
        .await
        .unwrap();
        ctx.registry
            .set_alias(&out.model_name, aliases::PRODUCTION, &out.model_version)
            .await
            .unwrap();
        (
            AppState::new(config, store.clone(), ctx.registry.clone()).await,
            store,
        )
    });
    (rt, state.0, state.1)
}

pub(crate) async fn call(method: &str, path: &str, body: Option<&str>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let resp = app().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// `count` consecutive hours of the sample from hour `start`, as `/predict` takes them.
pub(crate) fn observations(start: usize, count: usize) -> String {
    let doc: Value = serde_json::from_slice(&testkit::sample_bytes()).unwrap();
    let h = doc["hourly"].as_object().unwrap();
    let obs: Vec<Value> = (start..start + count)
        .map(|i| {
            let mut o = serde_json::Map::new();
            for (k, col) in h {
                if k != "precipitation" {
                    o.insert(k.clone(), col[i].clone());
                }
            }
            Value::Object(o)
        })
        .collect();
    json!({ "observations": obs }).to_string()
}

#[tokio::test]
async fn the_model_route_is_the_typed_model_info() {
    let _turn = testkit::turn(module_path!());
    let (st, v) = call("GET", "/model", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let info: ModelInfo = serde_json::from_value(v).unwrap();
    assert_eq!(
        (info.version.as_str(), info.alias.as_deref()),
        ("1", Some("production"))
    );
    assert_eq!(info.input_hours, 25);
    assert_eq!(info.horizons, [1, 2, 3, 4, 5, 6]);
    assert!(info.registry.reachable);
}

#[tokio::test]
async fn predict_answers_six_horizons_after_the_newest_hour() {
    let _turn = testkit::turn(module_path!());
    let (st, v) = call("POST", "/predict", Some(&observations(2000, 25))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let p: PredictResponse = serde_json::from_value(v).unwrap();
    assert_eq!(p.forecasts.len(), 6);
    assert_eq!(p.model.version, "1");
    assert!(p.forecasts.iter().all(|f| f.temperature_2m.is_finite()));
}

#[tokio::test]
async fn bad_requests_get_a_typed_4xx() {
    let _turn = testkit::turn(module_path!());
    for (body, status, code) in [
        ("{", 400, "invalid_json"),
        (r#"{"observations": []}"#, 422, "too_few_observations"),
    ] {
        let (st, v) = call("POST", "/predict", Some(body)).await;
        assert_eq!(st.as_u16(), status, "{body}: {v}");
        let e: ErrorResponse = serde_json::from_value(v).unwrap();
        assert_eq!((e.error.status, e.error.code.as_str()), (status, code), "{body}");
    }
    let (st, v) = call("GET", "/nowhere", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn health_ready_and_the_openapi_document() {
    let _turn = testkit::turn(module_path!());
    assert_eq!(call("GET", "/health", None).await.0, StatusCode::OK);
    let (st, ready) = call("GET", "/ready", None).await;
    assert_eq!(st, StatusCode::OK, "{ready}");
    let (st, doc) = call("GET", "/openapi.json", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(doc["paths"]["/predict"]["post"].is_object(), "{doc}");
}

#[tokio::test]
async fn public_answers_show_no_internal_locations() {
    let _turn = testkit::turn(module_path!());
    for path in ["/ready", "/model"] {
        let (st, v) = call("GET", path, None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let text = v.to_string();
        for internal in ["memory://", "registry/", "the local registry in"] {
            assert!(!text.contains(internal), "{path} shows {internal:?}: {text}");
        }
    }
}

#[tokio::test]
async fn unknown_methods_share_one_metric_label() {
    let _turn = testkit::turn(module_path!());
    let (st, _) = call("BREW", "/", None).await;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);
    let req = Request::builder().uri("/metrics").body(Body::empty()).unwrap();
    let resp = app().oneshot(req).await.unwrap();
    let text = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(!text.contains("BREW"), "an unbounded label: {text}");
    assert!(text.contains("method=\"other\""), "{text}");
}

#[tokio::test]
async fn the_latest_verification_re_calibrates_the_served_intervals_everywhere_they_are_shown() {
    let _turn = testkit::turn(module_path!());
    let (rt, state, store) = std::thread::spawn(build_on_store).join().unwrap();
    let app = router(state.clone());
    let send = |method: &str, path: &str, body: Option<String>| {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap()
        }
    };
    let predict = || async {
        let bytes = send("POST", "/predict", Some(observations(2000, 25))).await;
        serde_json::from_slice::<PredictResponse>(&bytes).unwrap()
    };
    let page = || async {
        let v: Value = serde_json::from_slice(&send("GET", "/forecast", None).await).unwrap();
        serde_json::from_value::<Vec<Forecast>>(v["forecasts"].clone()).unwrap()
    };
    let before = predict().await;
    assert!(
        before.forecasts.iter().all(|f| f.intervals.len() == 2),
        "{before:?}"
    );
    let page_before = page().await;

    // Verification found version 1's 6 h 80% intervals too narrow and its 1 h 95%
    // intervals too wide.
    let scales = json!([
        {"horizon": 1, "level": 0.95, "scale": 0.5, "hours": 150, "calibrated_coverage": 1.0},
        {"horizon": 6, "level": 0.8, "scale": 1.5, "hours": 150, "calibrated_coverage": 0.6},
    ]);
    let name = &state.config.registry.model_name;
    let verified = |at: chrono::DateTime<chrono::Utc>| {
        json!({
        "format": rps_core::verify::FORMAT,
        "id": at.format("%Y%m%dT%H%M%SZ").to_string(),
        "verified_at": at,
        "model_name": name,
        "alias": "production",
        "served_version": "1",
        "as_of": "2023-06-30T23:00:00",
        "versions": [{"version": "1", "windows": [], "recalibration": scales}],
        "log": {"records": 0, "skipped": 0, "duplicates": 0, "mismatched": 0, "pending": 0, "unverified": 0},
        "drift": [],
        "retrain": serde_json::to_value(rps_core::verify::trigger::RetrainDecision::default()).unwrap(),
        "snapshots": 1,
        })
    };
    let key = rps_core::layout::verification(name, rps_core::layout::LATEST_FILE).unwrap();
    let publish = |v: Value| {
        let (store, key, state) = (store.clone(), key.clone(), state.clone());
        async move {
            rps_core::store::put_json(store.as_ref(), &key, &v, false)
                .await
                .unwrap();
            state.primary().live.refresh().await;
        }
    };
    // Factors from a verification three days old (verification stopped) are not served.
    publish(verified(chrono::Utc::now() - chrono::Duration::days(3))).await;
    let stale = predict().await;
    assert_eq!(stale.forecasts, before.forecasts);
    let model: Value = serde_json::from_slice(&send("GET", "/model", None).await).unwrap();
    assert_eq!(model["intervals"]["recalibration"], json!([]), "{model}");
    publish(verified(chrono::Utc::now())).await;

    let after = predict().await;
    let pairs = before.forecasts.iter().zip(&after.forecasts);
    let page_after = page().await;
    assert_eq!(page_after.len(), 6);
    for (b, a) in pairs.chain(page_before.iter().zip(&page_after)) {
        assert_eq!(a.temperature_2m, b.temperature_2m);
        for (ib, ia) in b.intervals.iter().zip(&a.intervals) {
            let factor = match (a.horizon_hours, ia.level) {
                (1, 0.95) => 0.5,
                (6, 0.8) => 1.5,
                _ => 1.0,
            };
            let centre = a.temperature_2m;
            assert!(
                ((centre - ia.lower) - factor * (centre - ib.lower)).abs() < 1e-9,
                "{ib:?} → {ia:?}"
            );
            assert!(
                ((ia.upper - centre) - factor * (ib.upper - centre)).abs() < 1e-9,
                "{ib:?} → {ia:?}"
            );
        }
    }
    let model: Value = serde_json::from_slice(&send("GET", "/model", None).await).unwrap();
    assert_eq!(model["intervals"]["recalibration"], scales, "{model}");
    let text = String::from_utf8(send("GET", "/metrics", None).await.to_vec()).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("rps_interval_scale{")
            && l.contains("level=\"0.8\"")
            && l.contains("horizon=\"6\"")
            && l.ends_with(" 1.5")),
        "{text}"
    );
    std::thread::spawn(move || drop(rt)).join().unwrap();
}

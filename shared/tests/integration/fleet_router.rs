//! One API for several locations (`RPS_LOCATIONS`), in-process over the memory store:
//! each location answers from its own model, a request names its location or gets a
//! 4xx saying how, models load on first use and the least recently used are unloaded
//! beyond `RPS_MODEL_CACHE_MB`.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::NaiveDate;
use rps_core::config::Config;
use rps_core::fleet::{Fleet, site_prefix};
use rps_core::pipeline::{RunInput, run};
use rps_core::serve::api::{ErrorResponse, LocationList, ModelInfo, PredictResponse};
use rps_core::serve::{AppState, router};
use rps_core::source::{DateRange, IngestRequest, RecordedSource, Recording};
use rps_core::stage::{Context, Quiet};
use rps_core::store::{MemoryStore, ObjectStore, Prefixed};
use rps_core::tags::aliases;
use serde_json::{Value, json};
use tower::ServiceExt;

use super::router::observations;

const LOCATIONS: &str = r#"[
  {"id": "sand-point", "name": "Sand Point, AK", "latitude": 55.317, "longitude": -160.517},
  {"id": "kodiak", "name": "Kodiak, AK", "latitude": 57.79, "longitude": -152.4},
  {"id": "unalaska", "latitude": 53.87, "longitude": -166.54}
]"#;

/// Three locations, each with a model trained on Jan–Jun 2023 of the sample in its own
/// folder of one memory store and promoted; the API over them with 1 MiB for models,
/// which holds the first location's and one more.
fn state() -> Arc<AppState> {
    static STATE: OnceLock<(tokio::runtime::Runtime, Arc<AppState>)> = OnceLock::new();
    let (_, state) = STATE.get_or_init(|| std::thread::spawn(build).join().unwrap());
    state.clone()
}

fn build() -> (tokio::runtime::Runtime, Arc<AppState>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let state = rt.block_on(async {
        let env = |k: &str| (k == "RPS_MODEL_CACHE_MB").then(|| "1".to_owned());
        let config = Config::from_lookup(env).unwrap();
        let fleet = Fleet::parse(LOCATIONS.as_bytes(), "locations.json", &config, &env).unwrap();
        let store = Arc::new(MemoryStore::new());
        let d = |m, day| NaiveDate::from_ymd_opt(2023, m, day).unwrap();
        for site in &fleet.sites {
            let own: Arc<dyn ObjectStore> = Arc::new(Prefixed::new(store.clone(), &site_prefix(&site.id)));
            let ctx = Context::with_store(site.config.clone(), own)
                .unwrap()
                .with_source(Arc::new(RecordedSource::new(
                    Recording::parse(&testkit::sample_bytes()).unwrap(),
                    7,
                )));
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
        }
        AppState::with_locations(config, &fleet, store, None).await
    });
    (rt, state)
}

async fn call(method: &str, path: &str, body: Option<String>) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req.body(body.map_or_else(Body::empty, Body::from)).unwrap();
    let resp = router(state()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::String(text)),
    )
}

/// The sample's hours as `/predict` takes them, for `location` (none: unnamed).
fn body(location: Option<Value>) -> String {
    let mut v: Value = serde_json::from_str(&observations(2000, 25)).unwrap();
    if let Some(l) = location {
        v["location"] = l;
    }
    v.to_string()
}

fn error(v: Value) -> (u16, String, Option<String>) {
    let e: ErrorResponse = serde_json::from_value(v).unwrap();
    (e.error.status, e.error.code, e.error.location)
}

async fn list() -> LocationList {
    let (st, v) = call("GET", "/locations", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    serde_json::from_value(v).unwrap()
}

#[tokio::test]
async fn each_location_answers_from_its_own_model_and_a_request_must_name_one() {
    let _turn = testkit::turn(module_path!());
    for id in ["sand-point", "kodiak"] {
        let (st, v) = call("POST", "/predict", Some(body(Some(json!(id))))).await;
        assert_eq!(st, StatusCode::OK, "{id}: {v}");
        let p: PredictResponse = serde_json::from_value(v).unwrap();
        assert_eq!(p.model.location, id);
        assert_eq!(p.model.name, format!("rps-temperature-{id}"));
        assert_eq!(p.forecasts.len(), 6);
        let (st, v) = call("GET", &format!("/model?location={id}"), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let m: ModelInfo = serde_json::from_value(v).unwrap();
        assert_eq!(
            (m.name.as_str(), m.location.as_str()),
            (p.model.name.as_str(), id)
        );
        let (st, v) = call("GET", &format!("/drift?location={id}"), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert!(v["requests"].as_u64().unwrap() >= 1, "{v}");
    }
    // Named nowhere, named wrongly, named by something not an id.
    let (st, v) = call("POST", "/predict", Some(body(None))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("3 locations"),
        "{v}"
    );
    assert_eq!(
        error(v),
        (400, "missing_location".into(), Some("/location".into()))
    );
    let (st, v) = call("POST", "/predict", Some(body(Some(json!("atlantis"))))).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let message = v["error"]["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("\"atlantis\"") && message.contains("kodiak"),
        "{message}"
    );
    assert_eq!(
        error(v),
        (422, "unknown_location".into(), Some("/location".into()))
    );
    let (st, v) = call("POST", "/predict", Some(body(Some(json!(7))))).await;
    assert_eq!(
        error(v),
        (400, "invalid_type".into(), Some("/location".into())),
        "{st}"
    );
    for path in ["/model", "/forecast", "/drift", "/verification"] {
        let (st, v) = call("GET", &format!("{path}?location=atlantis"), None).await;
        assert_eq!(st, StatusCode::NOT_FOUND, "{path}: {v}");
        assert_eq!(error(v).1, "unknown_location", "{path}");
        let (st, v) = call("GET", path, None).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(
            error(v),
            (400, "missing_location".into(), Some("query:location".into()))
        );
    }
    // /ready answers for the first location unless told otherwise.
    let (st, v) = call("GET", "/ready", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["model"]["location"], "sand-point");
    // The client's id never becomes a label; the configured ids do.
    let (_, text) = call("GET", "/metrics", None).await;
    let text = text.as_str().unwrap();
    assert!(!text.contains("atlantis"), "a client's string became a label");
    assert!(
        text.lines()
            .any(|l| l.starts_with("rps_predictions_total{") && l.contains(r#"location="kodiak""#)),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("rps_drift_window_requests{location=\"sand-point\"}")),
        "{text}"
    );
    // The document names the ids and requires one.
    let (_, doc) = call("GET", "/openapi.json", None).await;
    let request = &doc["components"]["schemas"]["PredictRequest"];
    assert_eq!(
        request["required"],
        json!(["observations", "location"]),
        "{request}"
    );
    assert_eq!(
        request["properties"]["location"]["enum"],
        json!(["sand-point", "kodiak", "unalaska"])
    );
}

#[tokio::test]
async fn beyond_the_model_cache_the_least_recently_used_location_is_unloaded_and_reloads() {
    let _turn = testkit::turn(module_path!());
    let state = state();
    let l = list().await;
    assert_eq!(l.locations.len(), 3);
    assert_eq!(l.cache_limit_bytes, 1 << 20);
    assert!(l.locations[0].loaded, "the first location loads at start");
    assert_eq!(l.locations[2].name, "unalaska", "a name defaults to the id");

    let ask = |id: &'static str| async move {
        let (st, v) = call("POST", "/predict", Some(body(Some(json!(id))))).await;
        assert_eq!(st, StatusCode::OK, "{id}: {v}");
        serde_json::from_value::<PredictResponse>(v).unwrap()
    };
    let kodiak = ask("kodiak").await;
    let weak = Arc::downgrade(&state.locations.resident(1).expect("kodiak is loaded"));
    ask("unalaska").await;
    // 1 MiB holds the first location and one more: kodiak made room.
    let l = list().await;
    let loaded: Vec<bool> = l.locations.iter().map(|x| x.loaded).collect();
    assert_eq!(loaded, [true, false, true], "{l:?}");
    assert_eq!(l.resident, 2, "{l:?}");
    // Nothing keeps an unloaded location alive.
    for _ in 0..100 {
        if weak.upgrade().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        weak.upgrade().is_none(),
        "kodiak's service outlived its unloading"
    );
    // Asked again, it loads again and answers as before.
    let again = ask("kodiak").await;
    assert_eq!(again.forecasts, kodiak.forecasts);
    assert_eq!(again.model, kodiak.model);
    let (_, text) = call("GET", "/metrics", None).await;
    let text = text.as_str().unwrap();
    let evictions = text
        .lines()
        .find_map(|l| l.strip_prefix("rps_model_evictions_total "))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("rps_model_evictions_total");
    assert!(evictions >= 2.0, "{evictions}");
}

#[tokio::test]
async fn one_location_answers_as_before_and_refuses_another_id() {
    let _turn = testkit::turn(module_path!());
    let (st, v) = super::router::call("POST", "/predict", Some(&body(Some(json!("default"))))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["model"]["location"], "default");
    let (st, v) = super::router::call("POST", "/predict", Some(&body(Some(json!("kodiak"))))).await;
    assert_eq!(
        error(v),
        (422, "unknown_location".into(), Some("/location".into())),
        "{st}"
    );
    let (st, v) = super::router::call("GET", "/locations", None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["locations"][0]["id"], "default");
    assert_eq!(v["locations"][0]["model"], "rps-temperature");
}

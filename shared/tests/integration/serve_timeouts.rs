//! The serving path never waits unboundedly on an outside system: a store that hangs
//! gets `/forecast` a 503 within its bound (and blocks nothing else), and a registry that
//! hangs at start-up does not hold the service's start beyond its load timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use rps_core::config::Config;
use rps_core::registry::{NewVersion, Registry, RegistryError, StageOutcome, VersionInfo};
use rps_core::serve::{AppState, router};
use rps_core::store::{ObjectKey, ObjectStore, StoreError};
use tower::ServiceExt;

/// A store and a registry whose every call never returns.
#[derive(Debug)]
struct Hanging;

async fn forever<T>() -> T {
    std::future::pending().await
}

#[async_trait]
impl ObjectStore for Hanging {
    async fn put(&self, _: &ObjectKey, _: Bytes) -> Result<(), StoreError> {
        forever().await
    }
    async fn put_new(&self, _: &ObjectKey, _: Bytes) -> Result<(), StoreError> {
        forever().await
    }
    async fn get(&self, _: &ObjectKey) -> Result<Bytes, StoreError> {
        forever().await
    }
    async fn exists(&self, _: &ObjectKey) -> Result<bool, StoreError> {
        forever().await
    }
    async fn delete(&self, _: &ObjectKey) -> Result<(), StoreError> {
        forever().await
    }
    async fn list(&self, _: &str) -> Result<Vec<ObjectKey>, StoreError> {
        forever().await
    }
    fn url(&self, key: &ObjectKey) -> String {
        format!("hanging://{key}")
    }
}

#[async_trait]
impl Registry for Hanging {
    fn describe(&self) -> String {
        "a registry that never answers".into()
    }
    fn kind(&self) -> &'static str {
        "hanging"
    }
    async fn create_version(&self, _: NewVersion) -> Result<VersionInfo, RegistryError> {
        forever().await
    }
    async fn get_version(&self, _: &str, _: &str) -> Result<VersionInfo, RegistryError> {
        forever().await
    }
    async fn get_alias(&self, _: &str, _: &str) -> Result<VersionInfo, RegistryError> {
        forever().await
    }
    async fn list_versions(&self, _: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        forever().await
    }
    async fn set_alias(&self, _: &str, _: &str, _: &str) -> Result<(), RegistryError> {
        forever().await
    }
    async fn delete_alias(&self, _: &str, _: &str) -> Result<(), RegistryError> {
        forever().await
    }
    async fn set_version_tag(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), RegistryError> {
        forever().await
    }
    async fn set_stage(&self, _: &str, _: &str, _: &str) -> Result<StageOutcome, RegistryError> {
        forever().await
    }
    async fn download_bundle(&self, _: &VersionInfo) -> Result<Bytes, RegistryError> {
        forever().await
    }
}

fn config() -> Config {
    let vars = [
        ("RPS_STORE_TIMEOUT_SECS", "1"),
        ("RPS_MODEL_LOAD_TIMEOUT_SECS", "1"),
        ("RPS_MODEL_REFRESH_SECS", "0"),
    ];
    Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap()
}

async fn status(app: &axum::Router, path: &str) -> StatusCode {
    let req = Request::builder().uri(path).body(Body::empty()).unwrap();
    app.clone().oneshot(req).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_registry_does_not_hold_the_start_and_a_hanging_store_does_not_hold_forecast() {
    let _turn = testkit::turn(module_path!());
    let started = Instant::now();
    let state = tokio::time::timeout(
        Duration::from_secs(20),
        AppState::new(config(), Arc::new(Hanging), Arc::new(Hanging)),
    )
    .await
    .expect("the service started within its model load timeout");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let app = router(state);
    assert_eq!(status(&app, "/health").await, StatusCode::OK);
    assert_eq!(status(&app, "/ready").await, StatusCode::SERVICE_UNAVAILABLE);
    // Without a model /forecast is a 503 at once; the store is never asked.
    assert_eq!(status(&app, "/forecast").await, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_store_gets_forecast_a_503_within_its_bound() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("model.rpsb");
    std::fs::write(&bundle, testkit_bundle()).unwrap();
    let vars = [
        ("RPS_STORE_TIMEOUT_SECS", "1"),
        ("RPS_MODEL_PATH", bundle.to_str().unwrap()),
    ];
    let config =
        Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())).unwrap();
    let state = AppState::new(config, Arc::new(Hanging), Arc::new(Hanging)).await;
    let app = router(state);
    assert_eq!(status(&app, "/ready").await, StatusCode::OK);
    let started = Instant::now();
    let (a, b) = tokio::join!(status(&app, "/forecast"), status(&app, "/forecast"));
    assert_eq!(
        (a, b),
        (StatusCode::SERVICE_UNAVAILABLE, StatusCode::SERVICE_UNAVAILABLE)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// A small bundle trained on a month of the sample.
fn testkit_bundle() -> Vec<u8> {
    use rps_core::dataset::Dataset;
    use rps_core::observations::RawSeries;
    use rps_core::transform::regularise::regularise;
    let raw = RawSeries::parse(&testkit::sample_bytes()).unwrap();
    let (series, _) = regularise(&[raw], 3).unwrap();
    let set = Dataset::build(&series).unwrap().training_set().unwrap();
    let t = rps_core::train::select_and_fit(
        &set,
        &[rps_core::train::Candidate::Ridge { alpha: 1.0 }],
        0.15,
        0.15,
        1,
    )
    .unwrap();
    rps_core::bundle::ModelBundle {
        format_version: rps_core::bundle::BUNDLE_FORMAT_VERSION,
        schema: rps_core::bundle::ModelSchema::current(),
        metadata: rps_core::bundle::ModelMetadata {
            model_name: "m".into(),
            algorithm: "ridge".into(),
            params: Default::default(),
            created_at: chrono::Utc::now(),
            data_version: "0".repeat(32),
            dataset_key: String::new(),
            git_commit: None,
            run_id: None,
            raw_snapshots: Vec::new(),
            training_window: t.split.refit_window,
            holdout_window: t.split.holdout_window,
            train_rows: t.split.refit_rows,
            holdout_rows: t.split.holdout_rows,
            metrics: Default::default(),
        },
        scaler: t.scaler,
        models: t.models,
        feature_stats: t.feature_stats,
        calibration: None,
    }
    .encode()
    .unwrap()
}

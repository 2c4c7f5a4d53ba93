//! Ingest against real HTTP servers on 127.0.0.1: a scripted one for failures and
//! retries, and the Open-Meteo replay for the happy path.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use rps_core::config::Config;
use rps_core::http::RetryPolicy;
use rps_core::ingest::ingest;
use rps_core::source::{DateRange, IngestRequest, SourceError, fetch};
use rps_core::stage::{Context, StageError};
use rps_core::store::{MemoryStore, ObjectStore};
use rps_core::validate::validate;
use testkit::stub::{Reply, Stub};

fn policy(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        timeout: Duration::from_millis(500),
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total: Duration::from_secs(10),
    }
}

const OK_BODY: &str =
    r#"{"utc_offset_seconds":0,"hourly":{"time":["2023-01-01T00:00"],"temperature_2m":[1.5]}}"#;

fn url(s: &Stub) -> url::Url {
    format!("{}/v1/archive?latitude=1&longitude=2", s.url())
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_503_then_200_is_retried_and_succeeds() {
    let _turn = testkit::turn(module_path!());
    let s = Stub::start(vec![Reply::text(503, "busy"), Reply::new(200, OK_BODY)]).await;
    let got = fetch(&reqwest::Client::new(), &url(&s), &policy(4))
        .await
        .unwrap();
    assert_eq!(got.attempts, 2);
    assert_eq!(&got.body[..], OK_BODY.as_bytes());
    assert_eq!(s.hits(), 2);
}

#[tokio::test]
async fn a_429_honours_retry_after() {
    let _turn = testkit::turn(module_path!());
    let s = Stub::start(vec![
        Reply::text(429, "slow down").header("retry-after", "0"),
        Reply::new(200, OK_BODY),
    ])
    .await;
    let got = fetch(&reqwest::Client::new(), &url(&s), &policy(3))
        .await
        .unwrap();
    assert_eq!(got.attempts, 2);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let _turn = testkit::turn(module_path!());
    let s = Stub::start(vec![
        Reply::new(200, OK_BODY).delayed(Duration::from_secs(2)),
        Reply::new(200, OK_BODY),
    ])
    .await;
    let got = fetch(&reqwest::Client::new(), &url(&s), &policy(3))
        .await
        .unwrap();
    assert_eq!(got.attempts, 2);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_bounded_attempts() {
    let _turn = testkit::turn(module_path!());
    let s = Stub::start(vec![Reply::text(500, "oops")]).await;
    let err = fetch(&reqwest::Client::new(), &url(&s), &policy(3))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::GaveUp { attempts: 3, .. }), "{err}");
    assert!(err.to_string().contains("500 Internal Server Error"), "{err}");
    assert_eq!(s.hits(), 3);
}

#[tokio::test]
async fn the_total_time_bound_stops_retries_early() {
    let _turn = testkit::turn(module_path!());
    let s = Stub::start(vec![Reply::text(503, "busy").delayed(Duration::from_millis(300))]).await;
    let p = RetryPolicy {
        max_total: Duration::from_millis(500),
        ..policy(10)
    };
    let started = std::time::Instant::now();
    let err = fetch(&reqwest::Client::new(), &url(&s), &p).await.unwrap_err();
    assert!(matches!(err, SourceError::GaveUp { attempts: 2, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn other_4xx_fail_at_once_quoting_open_meteo() {
    let _turn = testkit::turn(module_path!());
    let s = Stub::start(vec![Reply::new(
        400,
        r#"{"error":true,"reason":"Parameter 'start_date' is out of allowed range"}"#,
    )])
    .await;
    let err = fetch(&reqwest::Client::new(), &url(&s), &policy(4))
        .await
        .unwrap_err();
    assert_eq!(s.hits(), 1);
    let msg = err.to_string();
    assert!(
        msg.contains("answered 400") && msg.contains("out of allowed range"),
        "{msg}"
    );
    assert!(
        !msg.contains("latitude"),
        "the query string stays out of messages: {msg}"
    );
}

fn context(archive: &str, store: Arc<dyn ObjectStore>) -> Context {
    let archive = archive.to_owned();
    let config = Config::from_lookup(|k| match k {
        "OPEN_METEO_ARCHIVE_URL" | "OPEN_METEO_FORECAST_URL" => Some(archive.clone()),
        "RPS_HTTP_MAX_ATTEMPTS" => Some("2".into()),
        _ => None,
    })
    .unwrap();
    Context::with_store(config, store).unwrap()
}

fn range() -> IngestRequest {
    IngestRequest::backfill(
        DateRange::new(
            NaiveDate::from_ymd_opt(2023, 3, 1).unwrap(),
            NaiveDate::from_ymd_opt(2023, 3, 31).unwrap(),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn truncated_json_is_a_clear_error_after_the_raw_body_is_stored() {
    let _turn = testkit::turn(module_path!());
    let truncated = r#"{"utc_offset_seconds":0,"hourly":{"time":["2023-01-01T00:00","2023-01-01T01"#;
    let s = Stub::start(vec![Reply::new(200, truncated)]).await;
    let store = Arc::new(MemoryStore::new());
    let ctx = context(&format!("{}/v1/archive", s.url()), store.clone());
    let err = ingest(&ctx, range()).await.unwrap_err();
    assert!(matches!(err, StageError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("is not valid JSON"), "{err}");
    // The raw body was written first, byte for byte, with its metadata.
    let keys = store.list("raw/open-meteo/").await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let body = store.get(&keys[0]).await.unwrap();
    assert_eq!(&body[..], truncated.as_bytes());
    // Nothing downstream was written.
    assert!(store.list("quality/").await.unwrap().is_empty());
    assert!(store.list("datasets/").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_a_clear_error() {
    let _turn = testkit::turn(module_path!());
    let s = Stub::start(vec![Reply::new(200, r#"{"daily":{"time":[]}}"#)]).await;
    let ctx = context(&format!("{}/v1/archive", s.url()), Arc::new(MemoryStore::new()));
    let err = ingest(&ctx, range()).await.unwrap_err();
    assert!(err.to_string().contains("there is no \"hourly\" field"), "{err}");
}

async fn replay() -> SocketAddr {
    testkit::replay::Replay::sample().addr
}

#[tokio::test]
async fn ingest_and_validate_against_the_replay() {
    let _turn = testkit::turn(module_path!());
    let addr = replay().await;
    let store = Arc::new(MemoryStore::new());
    let ctx = context(&format!("http://{addr}/v1/archive"), store.clone());
    let out = ingest(&ctx, range()).await.unwrap();
    assert_eq!(out.rows, 31 * 24);
    assert!(out.snapshot.as_str().starts_with("raw/open-meteo/archive/"));
    assert!(
        out.url.contains("start_date=2023-03-01&end_date=2023-03-31"),
        "{}",
        out.url
    );
    let v = validate(&ctx, (&out).into()).await.unwrap();
    assert_eq!(v.rows, 744);
    assert!(store.exists(&v.report).await.unwrap());
    // Snapshots are never overwritten.
    let err = store
        .put_new(&out.snapshot, bytes::Bytes::from_static(b"{}"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"));
}

#[tokio::test]
async fn the_replay_answers_like_open_meteo() {
    let _turn = testkit::turn(module_path!());
    let addr = replay().await;
    let c = reqwest::Client::new();
    let r = c.get(format!("http://{addr}/v1/archive?latitude=1&longitude=2&hourly=temperature_2m&start_date=2023-01-02&end_date=2023-01-02")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["hourly"]["time"].as_array().unwrap().len(), 24);
    assert_eq!(v["hourly"]["time"][0], "2023-01-02T00:00");
    assert!(v["hourly"].get("dew_point_2m").is_none());
    // Dates the recording does not hold: the recording replayed onto them, the same
    // hour of the year (so a schedule's "last year" works offline).
    let r = c.get(format!("http://{addr}/v1/archive?latitude=1&longitude=2&hourly=temperature_2m&start_date=2030-12-31&end_date=2031-01-02")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let replayed: serde_json::Value = r.json().await.unwrap();
    assert_eq!(replayed["hourly"]["time"].as_array().unwrap().len(), 72);
    assert_eq!(replayed["hourly"]["time"][24], "2031-01-01T00:00");
    // 2031-01-02T02:00 is 2023-01-02T02:00.
    assert_eq!(
        replayed["hourly"]["temperature_2m"][50],
        v["hourly"]["temperature_2m"][2]
    );
    // ...but not without bound, and never backwards.
    let r = c.get(format!("http://{addr}/v1/archive?latitude=1&longitude=2&hourly=temperature_2m&start_date=2031-01-01&end_date=2045-01-02")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let r = c.get(format!("http://{addr}/v1/archive?latitude=1&longitude=2&hourly=temperature_2m&start_date=2031-01-02&end_date=2031-01-01")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"], true);
    let r = c.get(format!("http://{addr}/v1/forecast?latitude=1&longitude=2&hourly=temperature_2m,cloud_cover&past_days=3&forecast_days=1")).send().await.unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["hourly"]["cloud_cover"].as_array().unwrap().len(), 96);
    let today = chrono::Utc::now().date_naive() - chrono::Duration::days(3);
    assert_eq!(v["hourly"]["time"][0], format!("{today}T00:00"));
}

#[tokio::test]
async fn a_live_ingest_passes_the_staleness_check() {
    let _turn = testkit::turn(module_path!());
    let addr = replay().await;
    let store = Arc::new(MemoryStore::new());
    let ctx = context(&format!("http://{addr}/v1/forecast"), store);
    let out = ingest(&ctx, IngestRequest::Live { past_days: Some(3) })
        .await
        .unwrap();
    assert_eq!(out.endpoint, "forecast");
    let v = validate(&ctx, (&out).into()).await.unwrap();
    // The forecast hours after the collection time were dropped before the checks.
    assert!(v.rows <= 4 * 24 && v.rows >= 3 * 24, "{}", v.rows);
}

#[tokio::test]
async fn garbage_bytes_are_stored_then_refused_clearly() {
    let _turn = testkit::turn(module_path!());
    let garbage: String = (0..200u8).map(|b| char::from(b % 94 + 33)).collect();
    let s = Stub::start(vec![Reply::text(200, garbage.clone())]).await;
    let store = Arc::new(MemoryStore::new());
    let ctx = context(&format!("{}/v1/archive", s.url()), store.clone());
    let err = ingest(&ctx, range()).await.unwrap_err();
    assert!(matches!(err, StageError::Shape { .. }), "{err}");
    // The body, byte for byte, with its metadata: nothing about the failure is lost.
    let keys = store.list("raw/open-meteo/").await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert_eq!(&store.get(&keys[0]).await.unwrap()[..], garbage.as_bytes());
}

/// Beyond the free tier: the key reaches Open-Meteo as `apikey`, and nothing stored or
/// said names it (the snapshot's metadata, a failure's message).
#[tokio::test]
async fn an_api_key_is_sent_and_never_stored_or_shown() {
    let _turn = testkit::turn(module_path!());
    const KEY: &str = "k3y-not-for-logs";
    let body = std::fs::read(testkit::sample_path()).unwrap();
    let s = Stub::start(vec![Reply::new(200, String::from_utf8(body).unwrap())]).await;
    let store = Arc::new(MemoryStore::new());
    let archive = format!("{}/v1/archive", s.url());
    let with_key = |archive: String| {
        Config::from_lookup(move |k| match k {
            "OPEN_METEO_ARCHIVE_URL" | "OPEN_METEO_FORECAST_URL" => Some(archive.clone()),
            "OPEN_METEO_API_KEY" => Some(KEY.into()),
            "RPS_HTTP_MAX_ATTEMPTS" => Some("1".into()),
            _ => None,
        })
        .unwrap()
    };
    let ctx = Context::with_store(with_key(archive), store.clone()).unwrap();
    let out = ingest(&ctx, range()).await.unwrap();
    let sent = &s.requests()[0].uri;
    assert!(sent.contains(&format!("apikey={KEY}")), "{sent}");
    assert!(!out.url.contains(KEY), "{}", out.url);
    for key in store.list("raw/").await.unwrap() {
        let stored = store.get(&key).await.unwrap();
        assert!(
            !String::from_utf8_lossy(&stored).contains(KEY),
            "{key} holds the key"
        );
    }
    assert!(
        !format!("{:?}", ctx.config).contains(KEY),
        "the configuration hides it"
    );
    // A server that is not there: the error names the endpoint, not the key.
    let gone = Context::with_store(
        with_key("http://127.0.0.1:9/v1/archive".into()),
        Arc::new(MemoryStore::new()),
    )
    .unwrap();
    let err = ingest(&gone, range()).await.unwrap_err().to_string();
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(!err.contains(KEY), "{err}");
}

//! Ingest against real HTTP servers on 127.0.0.1: a scripted one for failures and
//! retries, and the Open-Meteo replay for the happy path.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::NaiveDate;
use shared::config::Config;
use shared::pipeline::{self, Context, StageError};
use shared::source::{DateRange, IngestRequest, RetryPolicy, SourceError, fetch};
use shared::store::{MemoryStore, ObjectStore};

#[derive(Clone)]
struct Reply {
    status: u16,
    body: &'static str,
    delay: Duration,
    retry_after: Option<&'static str>,
}

fn reply(status: u16, body: &'static str) -> Reply {
    Reply {
        status,
        body,
        delay: Duration::ZERO,
        retry_after: None,
    }
}

/// A server answering each request with the next scripted reply (the last one repeats).
struct Scripted {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn scripted(replies: Vec<Reply>) -> Scripted {
    let queue = Arc::new(Mutex::new(VecDeque::from(replies)));
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = Router::new().fallback(move || {
        let queue = queue.clone();
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            let r = {
                let mut q = queue.lock().unwrap();
                if q.len() > 1 {
                    q.pop_front().unwrap()
                } else {
                    q.front().cloned().unwrap()
                }
            };
            tokio::time::sleep(r.delay).await;
            let mut headers = HeaderMap::new();
            headers.insert("content-type", "application/json".parse().unwrap());
            if let Some(ra) = r.retry_after {
                headers.insert("retry-after", ra.parse().unwrap());
            }
            (StatusCode::from_u16(r.status).unwrap(), headers, r.body).into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Scripted { addr, hits }
}

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

fn url(s: &Scripted) -> url::Url {
    format!("http://{}/v1/archive?latitude=1&longitude=2", s.addr)
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_503_then_200_is_retried_and_succeeds() {
    let s = scripted(vec![reply(503, "busy"), reply(200, OK_BODY)]).await;
    let got = fetch(&reqwest::Client::new(), &url(&s), &policy(4))
        .await
        .unwrap();
    assert_eq!(got.attempts, 2);
    assert_eq!(&got.body[..], OK_BODY.as_bytes());
    assert_eq!(s.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_429_honours_retry_after() {
    let s = scripted(vec![
        Reply {
            retry_after: Some("0"),
            ..reply(429, "slow down")
        },
        reply(200, OK_BODY),
    ])
    .await;
    let got = fetch(&reqwest::Client::new(), &url(&s), &policy(3))
        .await
        .unwrap();
    assert_eq!(got.attempts, 2);
}

#[tokio::test]
async fn timeouts_are_retried() {
    let s = scripted(vec![
        Reply {
            delay: Duration::from_secs(2),
            ..reply(200, OK_BODY)
        },
        reply(200, OK_BODY),
    ])
    .await;
    let got = fetch(&reqwest::Client::new(), &url(&s), &policy(3))
        .await
        .unwrap();
    assert_eq!(got.attempts, 2);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_the_bounded_attempts() {
    let s = scripted(vec![reply(500, "oops")]).await;
    let err = fetch(&reqwest::Client::new(), &url(&s), &policy(3))
        .await
        .unwrap_err();
    assert!(matches!(err, SourceError::GaveUp { attempts: 3, .. }), "{err}");
    assert!(err.to_string().contains("500 Internal Server Error"), "{err}");
    assert_eq!(s.hits.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn the_total_time_bound_stops_retries_early() {
    let s = scripted(vec![Reply {
        delay: Duration::from_millis(300),
        ..reply(503, "busy")
    }])
    .await;
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
    let s = scripted(vec![reply(
        400,
        r#"{"error":true,"reason":"Parameter 'start_date' is out of allowed range"}"#,
    )])
    .await;
    let err = fetch(&reqwest::Client::new(), &url(&s), &policy(4))
        .await
        .unwrap_err();
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
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
    let truncated = r#"{"utc_offset_seconds":0,"hourly":{"time":["2023-01-01T00:00","2023-01-01T01"#;
    let s = scripted(vec![reply(200, truncated)]).await;
    let store = Arc::new(MemoryStore::new());
    let ctx = context(&format!("http://{}/v1/archive", s.addr), store.clone());
    let err = pipeline::ingest(&ctx, range()).await.unwrap_err();
    assert!(matches!(err, StageError::Shape { .. }), "{err}");
    assert!(err.to_string().contains("is not valid JSON"), "{err}");
    // The raw body was written first, byte for byte, with its metadata.
    let keys = store.list("raw/").await.unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let body = store.get(&keys[0]).await.unwrap();
    assert_eq!(&body[..], truncated.as_bytes());
    // Nothing downstream was written.
    assert!(store.list("quality/").await.unwrap().is_empty());
    assert!(store.list("datasets/").await.unwrap().is_empty());
}

#[tokio::test]
async fn a_body_of_the_wrong_shape_is_a_clear_error() {
    let s = scripted(vec![reply(200, r#"{"daily":{"time":[]}}"#)]).await;
    let ctx = context(
        &format!("http://{}/v1/archive", s.addr),
        Arc::new(MemoryStore::new()),
    );
    let err = pipeline::ingest(&ctx, range()).await.unwrap_err();
    assert!(err.to_string().contains("there is no \"hourly\" field"), "{err}");
}

async fn replay() -> SocketAddr {
    let rec = shared::replay::Recording::parse(&common::sample_bytes()).unwrap();
    shared::replay::serve(rec, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
        .0
}

#[tokio::test]
async fn ingest_and_validate_against_the_replay() {
    let addr = replay().await;
    let store = Arc::new(MemoryStore::new());
    let ctx = context(&format!("http://{addr}/v1/archive"), store.clone());
    let out = pipeline::ingest(&ctx, range()).await.unwrap();
    assert_eq!(out.rows, 31 * 24);
    assert!(out.snapshot.as_str().starts_with("raw/open-meteo/archive/"));
    assert!(
        out.url.contains("start_date=2023-03-01&end_date=2023-03-31"),
        "{}",
        out.url
    );
    let v = pipeline::validate(&ctx, (&out).into()).await.unwrap();
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
    let addr = replay().await;
    let c = reqwest::Client::new();
    let r = c.get(format!("http://{addr}/v1/archive?latitude=1&longitude=2&hourly=temperature_2m&start_date=2023-01-02&end_date=2023-01-02")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["hourly"]["time"].as_array().unwrap().len(), 24);
    assert_eq!(v["hourly"]["time"][0], "2023-01-02T00:00");
    assert!(v["hourly"].get("dew_point_2m").is_none());
    let r = c.get(format!("http://{addr}/v1/archive?latitude=1&longitude=2&hourly=temperature_2m&start_date=2031-01-01&end_date=2031-01-02")).send().await.unwrap();
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
    let addr = replay().await;
    let store = Arc::new(MemoryStore::new());
    let ctx = context(&format!("http://{addr}/v1/forecast"), store);
    let out = pipeline::ingest(&ctx, IngestRequest::Live { past_days: Some(3) })
        .await
        .unwrap();
    assert_eq!(out.endpoint, "forecast");
    let v = pipeline::validate(&ctx, (&out).into()).await.unwrap();
    // The forecast hours after the collection time were dropped before the checks.
    assert!(v.rows <= 4 * 24 && v.rows >= 3 * 24, "{}", v.rows);
}

//! Open-Meteo: building requests and fetching them with bounded retries.
//!
//! Two endpoints: the archive (a date range, for backfills) and the forecast endpoint
//! with `past_days` (the latest hours, for live runs). Timeouts, connection errors,
//! 429 and 5xx are retried with exponential backoff and jitter, bounded both in
//! attempts and in total time; any other status is a clear, immediate error.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, Utc};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{Location, SourceConfig};
pub use crate::http::RetryPolicy;
use crate::http::error_chain;
use crate::observations::ALL_VARIABLES;

/// An inclusive range of UTC dates, start not after end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RangeWire", into = "RangeWire")]
pub struct DateRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl DateRange {
    pub fn new(start: NaiveDate, end: NaiveDate) -> Result<Self, String> {
        if start > end {
            return Err(format!("the start date {start} is after the end date {end}"));
        }
        Ok(Self { start, end })
    }
    pub fn start(&self) -> NaiveDate {
        self.start
    }
    pub fn end(&self) -> NaiveDate {
        self.end
    }
}

/// `{"start": "...", "end": "..."}` as it appears in stage payloads.
#[derive(Serialize, Deserialize)]
struct RangeWire {
    start: NaiveDate,
    end: NaiveDate,
}

impl TryFrom<RangeWire> for DateRange {
    type Error = String;
    fn try_from(w: RangeWire) -> Result<Self, String> {
        DateRange::new(w.start, w.end)
    }
}

impl From<DateRange> for RangeWire {
    fn from(r: DateRange) -> Self {
        RangeWire {
            start: r.start,
            end: r.end,
        }
    }
}

/// What to ingest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum IngestRequest {
    /// A date range from the archive endpoint.
    Backfill {
        #[serde(flatten)]
        range: DateRange,
    },
    /// The latest hours from the forecast endpoint (`past_days` from the configuration
    /// unless given).
    Live {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        past_days: Option<u8>,
    },
}

impl IngestRequest {
    pub fn backfill(range: DateRange) -> Self {
        IngestRequest::Backfill { range }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, IngestRequest::Live { .. })
    }

    /// The endpoint's short name, used in store keys.
    pub fn endpoint(&self) -> &'static str {
        match self {
            IngestRequest::Backfill { .. } => "archive",
            IngestRequest::Live { .. } => "forecast",
        }
    }

    /// The full request URL.
    pub fn url(&self, cfg: &SourceConfig, location: &Location) -> Url {
        let hourly = ALL_VARIABLES.map(|v| v.name()).join(",");
        let (mut url, extra): (Url, Vec<(&str, String)>) = match self {
            IngestRequest::Backfill { range } => (
                cfg.archive_url.clone(),
                vec![
                    ("start_date", range.start.to_string()),
                    ("end_date", range.end.to_string()),
                ],
            ),
            IngestRequest::Live { past_days } => (
                cfg.forecast_url.clone(),
                vec![
                    ("past_days", past_days.unwrap_or(cfg.past_days).to_string()),
                    ("forecast_days", "1".to_owned()),
                ],
            ),
        };
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("latitude", &location.latitude.get().to_string());
            q.append_pair("longitude", &location.longitude.get().to_string());
            q.append_pair("hourly", &hourly);
            q.append_pair("timezone", "GMT");
            for (k, v) in &extra {
                q.append_pair(k, v);
            }
        }
        url
    }
}

/// A successful response.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub body: Bytes,
    pub url: Url,
    pub attempts: u32,
    /// When the response was received: the snapshot's collection time.
    pub collected_at: DateTime<Utc>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{url} answered {status}: {message}")]
    Rejected {
        url: String,
        status: u16,
        message: String,
    },
    #[error("gave up on {url} after {attempts} attempt(s) in {elapsed:.1?}: {last}")]
    GaveUp {
        url: String,
        attempts: u32,
        elapsed: Duration,
        last: String,
    },
    #[error("could not build an HTTP client: {0}")]
    Client(String),
}

/// The URL without its query, for messages.
fn short(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

pub fn http_client() -> Result<reqwest::Client, SourceError> {
    crate::http::client().map_err(SourceError::Client)
}

enum Attempt {
    Done(Bytes),
    Retry { why: String, after: Option<Duration> },
    Fail(SourceError),
}

async fn attempt(client: &reqwest::Client, url: &Url, timeout: Duration) -> Attempt {
    let resp = match client.get(url.clone()).timeout(timeout).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Attempt::Retry {
                why: format!("timed out after {timeout:?}"),
                after: None,
            };
        }
        Err(e) => {
            return Attempt::Retry {
                why: format!("request failed: {}", error_chain(&e)),
                after: None,
            };
        }
    };
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    // The body is read within the same timeout; a cut-off transfer is retried.
    let body = match tokio::time::timeout(timeout, resp.bytes()).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            return Attempt::Retry {
                why: format!("reading the body failed: {}", error_chain(&e)),
                after: None,
            };
        }
        Err(_) => {
            return Attempt::Retry {
                why: format!("reading the body timed out after {timeout:?}"),
                after: None,
            };
        }
    };
    if status.is_success() {
        Attempt::Done(body)
    } else if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        Attempt::Retry {
            why: format!("{status}"),
            after: retry_after,
        }
    } else {
        Attempt::Fail(SourceError::Rejected {
            url: short(url),
            status: status.as_u16(),
            message: error_message(status, &body),
        })
    }
}

/// Open-Meteo's error bodies are `{"error": true, "reason": "..."}`.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct ApiError {
        reason: String,
    }
    match serde_json::from_slice::<ApiError>(body) {
        Ok(e) => e.reason,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no message").to_owned()
            } else {
                text.chars().take(300).collect()
            }
        }
    }
}

/// GETs `url`, retrying as the policy allows.
pub async fn fetch(
    client: &reqwest::Client,
    url: &Url,
    policy: &RetryPolicy,
) -> Result<Fetched, SourceError> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let why = match attempt(client, url, policy.timeout).await {
            Attempt::Done(body) => {
                return Ok(Fetched {
                    body,
                    url: url.clone(),
                    attempts,
                    collected_at: Utc::now(),
                });
            }
            Attempt::Fail(e) => return Err(e),
            Attempt::Retry { why, after } => {
                let delay = after
                    .map(|d| d.min(policy.max_delay))
                    .unwrap_or_else(|| policy.backoff(attempts - 1));
                let next_start = started.elapsed() + delay;
                if attempts < policy.max_attempts && next_start < policy.max_total {
                    tracing::warn!(url = %short(url), attempt = attempts, delay_ms = delay.as_millis() as u64, "{why}; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                why
            }
        };
        return Err(SourceError::GaveUp {
            url: short(url),
            attempts,
            elapsed: started.elapsed(),
            last: why,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn urls_carry_the_location_variables_and_range() {
        let cfg = Config::from_lookup(|_| None).unwrap();
        let range = DateRange::new(
            NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2023, 1, 31).unwrap(),
        )
        .unwrap();
        let url = IngestRequest::backfill(range).url(&cfg.source, &cfg.location);
        let s = url.as_str();
        assert!(s.starts_with("https://archive-api.open-meteo.com/v1/archive?latitude=55.317&longitude=-160.517&hourly=temperature_2m%2C"), "{s}");
        assert!(
            s.ends_with("&timezone=GMT&start_date=2023-01-01&end_date=2023-01-31"),
            "{s}"
        );
        let live = IngestRequest::Live { past_days: None }.url(&cfg.source, &cfg.location);
        assert!(live.as_str().contains("past_days=7&forecast_days=1"), "{live}");
    }

    #[test]
    fn ingest_requests_round_trip_as_stage_payloads() {
        let r: IngestRequest =
            serde_json::from_str(r#"{"mode":"backfill","start":"2023-01-01","end":"2023-02-01"}"#).unwrap();
        assert!(!r.is_live());
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"mode":"backfill","start":"2023-01-01","end":"2023-02-01"}"#
        );
        let err = serde_json::from_str::<IngestRequest>(
            r#"{"mode":"backfill","start":"2023-03-01","end":"2023-02-01"}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("after the end date"), "{err}");
        let live: IngestRequest = serde_json::from_str(r#"{"mode":"live"}"#).unwrap();
        assert!(live.is_live());
    }

    #[test]
    fn the_policy_follows_the_configuration() {
        let cfg = Config::from_lookup(|k| (k == "RPS_HTTP_MAX_ATTEMPTS").then(|| "7".into())).unwrap();
        let p = RetryPolicy::from_config(&cfg.source);
        assert_eq!(p.max_attempts, 7);
        assert_eq!(p.timeout, cfg.source.timeout);
    }
}

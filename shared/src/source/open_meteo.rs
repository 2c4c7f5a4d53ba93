//! Open-Meteo over HTTP: building request URLs and fetching them with bounded retries.
//!
//! Timeouts, connection errors, 429 and 5xx are retried with exponential backoff and
//! jitter, bounded both in attempts and in total time; any other status is a clear,
//! immediate error.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;
use reqwest::StatusCode;
use serde::Deserialize;
use url::Url;

use super::{Fetched, IngestRequest, SourceError, WeatherSource};
use crate::config::{Location, SourceConfig};
use crate::http::{RetryPolicy, error_chain};
use crate::observations::ALL_VARIABLES;

/// The real weather source.
#[derive(Debug, Clone)]
pub struct OpenMeteo {
    http: reqwest::Client,
    cfg: SourceConfig,
    location: Location,
}

impl OpenMeteo {
    pub fn new(cfg: SourceConfig, location: Location) -> Result<Self, SourceError> {
        Ok(Self {
            http: crate::http::client().map_err(SourceError::Client)?,
            cfg,
            location,
        })
    }

    /// The retry policy the configuration asks for.
    pub fn policy(&self) -> RetryPolicy {
        retry_policy(&self.cfg)
    }
}

/// How hard to try Open-Meteo, from the configuration.
pub fn retry_policy(cfg: &SourceConfig) -> RetryPolicy {
    RetryPolicy {
        max_attempts: cfg.max_attempts,
        timeout: cfg.timeout,
        base_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(10),
        max_total: cfg.max_retry_time,
    }
}

#[async_trait]
impl WeatherSource for OpenMeteo {
    fn describe(&self) -> String {
        format!(
            "Open-Meteo ({}, {})",
            short(&self.cfg.archive_url),
            short(&self.cfg.forecast_url)
        )
    }

    async fn fetch(&self, request: &IngestRequest) -> Result<Fetched, SourceError> {
        self.fetch_places(request, std::slice::from_ref(&self.location))
            .await
    }
}

impl OpenMeteo {
    /// `request` for every place of `places` in one call (Open-Meteo answers an array
    /// for several).
    pub async fn fetch_places(
        &self,
        request: &IngestRequest,
        places: &[Location],
    ) -> Result<Fetched, SourceError> {
        let url = places_url(request, &self.cfg, places);
        match &self.cfg.api_key {
            // The key goes on the wire only: the URL stored with the snapshot and every
            // message name the request without it.
            Some(key) => {
                let mut sent = url.clone();
                sent.query_pairs_mut().append_pair("apikey", key.expose());
                fetch_as(&self.http, &url, &sent, &self.policy()).await
            }
            None => fetch(&self.http, &url, &self.policy()).await,
        }
    }
}

/// The full request URL of `request`.
pub fn request_url(request: &IngestRequest, cfg: &SourceConfig, location: &Location) -> Url {
    places_url(request, cfg, std::slice::from_ref(location))
}

/// The request URL of `request` for several places (comma-separated coordinates).
pub fn places_url(request: &IngestRequest, cfg: &SourceConfig, places: &[Location]) -> Url {
    let hourly = ALL_VARIABLES.map(|v| v.name()).join(",");
    let request = request.resolved(Utc::now().date_naive());
    let (mut url, extra): (Url, Vec<(&str, String)>) = match request {
        IngestRequest::Backfill { range } => (
            cfg.archive_url.clone(),
            vec![
                ("start_date", range.start().to_string()),
                ("end_date", range.end().to_string()),
            ],
        ),
        IngestRequest::Live { past_days } => (
            cfg.forecast_url.clone(),
            vec![
                ("past_days", past_days.unwrap_or(cfg.past_days).to_string()),
                ("forecast_days", "1".to_owned()),
            ],
        ),
        // Resolved above; an unresolvable one asks the archive for nothing in particular.
        IngestRequest::Recent { .. } => (cfg.archive_url.clone(), Vec::new()),
    };
    {
        let mut q = url.query_pairs_mut();
        let join = |f: fn(&Location) -> f64| {
            places
                .iter()
                .map(|p| f(p).to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        q.append_pair("latitude", &join(|p| p.latitude.get()));
        q.append_pair("longitude", &join(|p| p.longitude.get()));
        q.append_pair("hourly", &hourly);
        q.append_pair("timezone", "GMT");
        for (k, v) in &extra {
            q.append_pair(k, v);
        }
    }
    url
}

/// The URL without its query, for messages.
fn short(url: &Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

enum Attempt {
    Done(Bytes),
    Retry { why: String, after: Option<Duration> },
    Fail(SourceError),
}

async fn attempt(client: &reqwest::Client, url: &Url, sent: &Url, timeout: Duration) -> Attempt {
    let resp = match client.get(sent.clone()).timeout(timeout).send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return Attempt::Retry {
                why: format!("timed out after {timeout:?}"),
                after: None,
            };
        }
        Err(e) => {
            return Attempt::Retry {
                // reqwest's message names the URL it sent, which may carry the key.
                why: format!("request failed: {}", error_chain(&e.without_url())),
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
                why: format!("reading the body failed: {}", error_chain(&e.without_url())),
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

/// Open-Meteo's error bodies are `{"error": true, "reason": "..."}`; any `apikey=…` a
/// body echoes (a proxy quoting the request) is hidden.
fn error_message(status: StatusCode, body: &[u8]) -> String {
    let message = raw_error_message(status, body);
    let (mut out, mut rest) = (String::new(), message.as_str());
    while let Some(at) = rest.find("apikey=") {
        let (head, tail) = rest.split_at(at + "apikey=".len());
        out.push_str(head);
        out.push_str("***");
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn raw_error_message(status: StatusCode, body: &[u8]) -> String {
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
    fetch_as(client, url, url, policy).await
}

/// GETs `sent` (`url` with a secret added), naming it `url` everywhere it is shown.
async fn fetch_as(
    client: &reqwest::Client,
    url: &Url,
    sent: &Url,
    policy: &RetryPolicy,
) -> Result<Fetched, SourceError> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        let why = match attempt(client, url, sent, policy.timeout).await {
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
    use chrono::NaiveDate;

    use super::*;
    use crate::config::Config;
    use crate::source::DateRange;

    #[test]
    fn urls_carry_the_location_variables_and_range() {
        let cfg = Config::from_lookup(|_| None).unwrap();
        let range = DateRange::new(
            NaiveDate::from_ymd_opt(2023, 1, 1).unwrap(),
            NaiveDate::from_ymd_opt(2023, 1, 31).unwrap(),
        )
        .unwrap();
        let url = request_url(&IngestRequest::backfill(range), &cfg.source, &cfg.location);
        let s = url.as_str();
        assert!(s.starts_with("https://archive-api.open-meteo.com/v1/archive?latitude=55.317&longitude=-160.517&hourly=temperature_2m%2C"), "{s}");
        assert!(
            s.ends_with("&timezone=GMT&start_date=2023-01-01&end_date=2023-01-31"),
            "{s}"
        );
        let live = request_url(
            &IngestRequest::Live { past_days: None },
            &cfg.source,
            &cfg.location,
        );
        assert!(live.as_str().contains("past_days=7&forecast_days=1"), "{live}");
    }

    #[test]
    fn an_error_body_that_echoes_the_key_is_quoted_without_it() {
        let body = b"bad request for /v1/archive?latitude=1&apikey=s3cret&x=1 (apikey=s3cret)";
        let m = error_message(StatusCode::BAD_REQUEST, body);
        assert_eq!(
            m,
            "bad request for /v1/archive?latitude=1&apikey=***&x=1 (apikey=***)"
        );
        assert_eq!(
            error_message(StatusCode::BAD_REQUEST, br#"{"error":true,"reason":"no"}"#),
            "no"
        );
    }

    #[test]
    fn the_policy_follows_the_configuration() {
        let cfg = Config::from_lookup(|k| (k == "RPS_HTTP_MAX_ATTEMPTS").then(|| "7".into())).unwrap();
        let p = retry_policy(&cfg.source);
        assert_eq!(p.max_attempts, 7);
        assert_eq!(p.timeout, cfg.source.timeout);
    }
}

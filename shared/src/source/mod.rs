//! The weather source: the port ingest fetches observations through.
//!
//! [`WeatherSource`] is the port. [`OpenMeteo`] is the real adapter (the archive for a
//! date range, the forecast endpoint with `past_days` for live runs, bounded retries);
//! [`RecordedSource`] answers from a recorded year in memory, and [`replay`] serves the
//! same recording over HTTP in Open-Meteo's shape, so everything runs offline.

mod batch;
mod open_meteo;
mod recording;
pub mod replay;

use async_trait::async_trait;
use bytes::Bytes;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

pub use batch::{Batch, BatchedSource};
pub use open_meteo::{OpenMeteo, fetch, places_url, request_url, retry_policy};
pub use recording::{RecordedSource, Recording};

/// An inclusive range of UTC dates, start not after end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    /// The archive's last `days` days, ending `lag_days` ago (the archive lags a few
    /// days): what a schedule asks for. Resolved to a backfill when it runs.
    Recent {
        #[serde(default = "default_recent_days")]
        days: u16,
        #[serde(default = "default_lag_days")]
        lag_days: u16,
    },
}

fn default_recent_days() -> u16 {
    365
}

fn default_lag_days() -> u16 {
    5
}

impl IngestRequest {
    pub fn backfill(range: DateRange) -> Self {
        IngestRequest::Backfill { range }
    }

    /// The last year of the archive, ending five days before `today`.
    pub fn recent() -> Self {
        IngestRequest::Recent {
            days: default_recent_days(),
            lag_days: default_lag_days(),
        }
    }

    pub fn is_live(&self) -> bool {
        matches!(self, IngestRequest::Live { .. })
    }

    /// A `Recent` request as the date range it means on `today`; others as they are.
    pub fn resolved(self, today: NaiveDate) -> Self {
        match self {
            IngestRequest::Recent { days, lag_days } => {
                let end = today - chrono::Duration::days(i64::from(lag_days));
                let start = end - chrono::Duration::days(i64::from(days.max(1)) - 1);
                DateRange::new(start, end).map_or(self, IngestRequest::backfill)
            }
            other => other,
        }
    }

    /// The endpoint's short name, used in store keys.
    pub fn endpoint(&self) -> &'static str {
        match self {
            IngestRequest::Backfill { .. } | IngestRequest::Recent { .. } => "archive",
            IngestRequest::Live { .. } => "forecast",
        }
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
    #[error("{0}")]
    Unavailable(String),
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait WeatherSource: Send + Sync {
    /// For messages: where observations come from.
    fn describe(&self) -> String;
    /// Fetches `request`, as raw Open-Meteo JSON.
    async fn fetch(&self, request: &IngestRequest) -> Result<Fetched, SourceError>;
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let recent: IngestRequest = serde_json::from_str(r#"{"mode":"recent"}"#).unwrap();
        assert_eq!(recent, IngestRequest::recent());
        let today = NaiveDate::from_ymd_opt(2024, 3, 10).unwrap();
        assert_eq!(
            serde_json::to_string(&recent.resolved(today)).unwrap(),
            r#"{"mode":"backfill","start":"2023-03-07","end":"2024-03-05"}"#
        );
    }
}

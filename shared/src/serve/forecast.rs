//! `GET /forecast`: the forecast from the newest validated observations in the store,
//! with the last 48 hours of them for context and how old they are.
//!
//! Only snapshots whose quality report passed are used. The answer is cached for a
//! minute per snapshot and model version, so a busy page does not list the store on
//! every request.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use tokio::sync::Mutex;

use super::error::ApiError;
use super::served::Served;
use crate::bundle::Forecast;
use crate::features::{INPUT_HOURS, serving_row};
use crate::observations::{HourlySeries, TARGET, format_time};
use crate::snapshot::{self, SnapshotMeta};
use crate::store::{ObjectKey, ObjectStore};

/// Hours of observations returned beside the forecast.
pub const CONTEXT_HOURS: usize = 48;
const TTL: Duration = Duration::from_secs(60);
/// How many of the newest snapshots are tried before giving up.
const LOOKBACK: usize = 20;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Observed {
    pub time: String,
    pub temperature_2m: Option<f64>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ForecastResponse {
    pub model: ForecastModel,
    /// The newest observation's hour.
    pub issued_at: String,
    pub observations_age_minutes: f64,
    pub collected_at: DateTime<Utc>,
    pub snapshot: String,
    pub observations: Vec<Observed>,
    pub forecasts: Vec<Forecast>,
    pub features_out_of_range: Vec<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ForecastModel {
    pub name: String,
    pub version: String,
    pub alias: Option<String>,
    /// The location it forecasts (its id).
    pub location: String,
}

/// Where a `/forecast` is made: the location's store and its id.
#[derive(Clone, Copy)]
pub struct Place<'a> {
    pub store: &'a dyn ObjectStore,
    pub store_timeout: Duration,
    pub id: &'a str,
    /// Its metrics' `location` label (several locations served).
    pub label: Option<&'a str>,
}

#[derive(Default)]
pub struct Cache {
    entry: Mutex<Option<(Instant, String, ForecastResponse)>>,
}

/// The newest snapshot that passed the gate, with its observations (forecast hours of
/// live snapshots dropped).
async fn latest(
    store: &dyn ObjectStore,
) -> Result<Option<(ObjectKey, SnapshotMeta, HourlySeries)>, ApiError> {
    let keys = snapshot::recent(store, chrono::Utc::now(), LOOKBACK)
        .await
        .map_err(|e| {
            tracing::error!("the store cannot be read: {e}");
            ApiError::unavailable(
                "store_unavailable",
                "the store cannot be read; see the service's log",
            )
        })?;
    for key in keys.into_iter().rev().take(LOOKBACK) {
        let passed = matches!(snapshot::quality_report(store, &key).await, Ok(Some(r)) if r.passed);
        if !passed {
            continue;
        }
        let Ok((raw, meta)) = snapshot::load(store, &key).await else {
            continue;
        };
        if let Ok(series) = HourlySeries::from_raw(&raw) {
            return Ok(Some((key, meta, series)));
        }
    }
    Ok(None)
}

impl Cache {
    pub async fn get_or_compute(&self, at: Place<'_>, m: &Served) -> Result<ForecastResponse, ApiError> {
        // The lock guards only the cached answer, never store I/O: one slow call cannot
        // hold every other /forecast.
        if let Some((at, version, resp)) = self.entry.lock().await.as_ref()
            && at.elapsed() < TTL
            && *version == m.version
        {
            return Ok(refresh_age(resp.clone()));
        }
        let found = tokio::time::timeout(at.store_timeout, latest(at.store))
            .await
            .map_err(|_| {
                tracing::error!("the store did not answer within {:?}", at.store_timeout);
                ApiError::unavailable(
                    "store_unavailable",
                    "the store did not answer in time; see the service's log",
                )
            })??;
        let (key, meta, series) = found.ok_or_else(|| {
            ApiError::unavailable(
                "no_observations",
                "the store holds no validated observations yet: run `rps ingest --live` and `rps validate`",
            )
        })?;
        let tail = series.tail(INPUT_HOURS.max(CONTEXT_HOURS));
        let row = serving_row(&tail).map_err(|e| {
            tracing::warn!(snapshot = %at.store.url(&key), "the newest observations cannot make a forecast: {e}");
            ApiError::unavailable(
                "observations_incomplete",
                format!("the newest validated observations cannot make a forecast: {e}"),
            )
        })?;
        let forecasts = m
            .bundle
            .predict(&row)
            .map_err(|e| ApiError::unavailable("prediction_failed", e.to_string()))?;
        super::metrics::record_forecasts("forecast", at.label, &forecasts);
        let context = series.tail(CONTEXT_HOURS);
        let temps = context.column(TARGET);
        let resp = ForecastResponse {
            model: ForecastModel {
                name: m.name.clone(),
                version: m.version.clone(),
                alias: m.alias.clone(),
                location: at.id.to_owned(),
            },
            issued_at: format_time(row.time),
            observations_age_minutes: 0.0,
            collected_at: meta.collected_at,
            snapshot: key.to_string(),
            observations: context
                .times()
                .iter()
                .zip(temps)
                .map(|(t, v)| Observed {
                    time: format_time(*t),
                    temperature_2m: *v,
                })
                .collect(),
            features_out_of_range: out_of_range(m, &row.values),
            forecasts,
        };
        let resp = refresh_age(resp);
        *self.entry.lock().await = Some((Instant::now(), m.version.clone(), resp.clone()));
        Ok(resp)
    }
}

fn refresh_age(mut r: ForecastResponse) -> ForecastResponse {
    if let Some(t) = crate::observations::parse_time(&r.issued_at) {
        r.observations_age_minutes = ((Utc::now().naive_utc() - t).num_seconds() as f64 / 60.0).max(0.0);
    }
    r
}

/// The features of a row outside the model's training range (not recorded as drift:
/// the page asks for the same row over and over).
fn out_of_range(m: &Served, row: &[f64]) -> Vec<String> {
    m.bundle
        .feature_stats
        .iter()
        .zip(row)
        .filter(|(s, x)| !s.in_training_range(**x))
        .map(|(s, _)| s.name.clone())
        .collect()
}

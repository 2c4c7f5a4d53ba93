//! A raw snapshot as the store holds it, read by every stage after ingest and by the
//! serving path: the body (Open-Meteo JSON, immutable), its metadata (how and when it
//! was fetched) and the data quality gate's report on it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::Location;
use crate::layout;
use crate::observations::{RawSeries, ShapeError};
use crate::source::IngestRequest;
use crate::store::{self, ObjectKey, ObjectStore, StoreError};

/// How and when a snapshot was fetched: stored beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub snapshot: ObjectKey,
    pub source: String,
    pub endpoint: String,
    /// The full request URL (Open-Meteo needs no key, so it holds no secret).
    pub url: String,
    pub request: IngestRequest,
    pub location: Location,
    pub collected_at: DateTime<Utc>,
    pub bytes: usize,
    pub sha256: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub message: String,
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub passed: bool,
    pub rows: usize,
    pub live: bool,
    pub checked_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_time: Option<String>,
    pub checks: Vec<CheckResult>,
}

impl QualityReport {
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status == Status::Warn)
    }

    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }
}

/// Why a stored snapshot cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("snapshot {snapshot} was stored, but {source}")]
    Shape {
        snapshot: String,
        #[source]
        source: ShapeError,
    },
}

/// A snapshot's body, parsed, with its metadata; a live snapshot's forecast hours
/// (after its collection time) are dropped.
pub async fn load(
    store: &dyn ObjectStore,
    snapshot: &ObjectKey,
) -> Result<(RawSeries, SnapshotMeta), SnapshotError> {
    let meta: SnapshotMeta = store::get_json(store, &layout::snapshot_meta(snapshot)?).await?;
    let body = store.get(snapshot).await?;
    let mut raw = RawSeries::parse(&body).map_err(|source| SnapshotError::Shape {
        snapshot: store.url(snapshot),
        source,
    })?;
    if meta.request.is_live() {
        raw.truncate_after(meta.collected_at.naive_utc());
    }
    Ok((raw, meta))
}

/// Snapshot keys, newest last.
pub async fn list(store: &dyn ObjectStore) -> Result<Vec<ObjectKey>, StoreError> {
    let mut keys: Vec<ObjectKey> = store
        .list(layout::RAW_PREFIX)
        .await?
        .into_iter()
        .filter(layout::is_snapshot)
        .collect();
    keys.sort_by(|a, b| a.file_name().cmp(b.file_name()));
    Ok(keys)
}

/// The newest complete snapshot (body and metadata), if there is one. A newer body
/// without metadata (an ingest that died between the two writes) is skipped with a
/// warning: the next ingest writes a new snapshot, and the body stays as evidence.
pub async fn newest(store: &dyn ObjectStore) -> Result<Option<ObjectKey>, StoreError> {
    for key in list(store).await?.into_iter().rev() {
        if store.exists(&layout::snapshot_meta(&key)?).await? {
            return Ok(Some(key));
        }
        tracing::warn!(snapshot = %store.url(&key), "skipping a snapshot without its metadata (its ingest did not finish)");
    }
    Ok(None)
}

/// The quality report of a snapshot, if the gate has run on it.
pub async fn quality_report(
    store: &dyn ObjectStore,
    snapshot: &ObjectKey,
) -> Result<Option<QualityReport>, StoreError> {
    match store::get_json(store, &layout::quality_report(snapshot)?).await {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

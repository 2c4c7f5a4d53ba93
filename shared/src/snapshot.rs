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

/// How far back [`recent`] walks, a day at a time, before it lists everything.
pub const RECENT_DAYS: i64 = 31;

/// The newest snapshot keys, at least `want` of them when there are, newest last.
/// Listed a collection day at a time, newest day first (`raw/open-meteo/<endpoint>/
/// YYYY/MM/DD/`), so that its cost follows what is read, not the size of the archive;
/// only a store with nothing collected in [`RECENT_DAYS`] days is listed whole.
pub async fn recent(
    store: &dyn ObjectStore,
    now: DateTime<Utc>,
    want: usize,
) -> Result<Vec<ObjectKey>, StoreError> {
    let mut keys = Vec::new();
    // From tomorrow: a writer whose clock is ahead of ours may have stamped it so.
    for back in -1..RECENT_DAYS {
        let day = (now - chrono::Duration::days(back)).date_naive();
        for endpoint in layout::RAW_ENDPOINTS {
            keys.extend(
                store
                    .list(&layout::raw_day_prefix(endpoint, day))
                    .await?
                    .into_iter()
                    .filter(layout::is_snapshot),
            );
        }
        if keys.len() >= want {
            break;
        }
    }
    if keys.is_empty() {
        tracing::warn!("nothing collected in the last {RECENT_DAYS} days: listing every snapshot");
        return list(store).await;
    }
    keys.sort_by(|a, b| a.file_name().cmp(b.file_name()));
    Ok(keys)
}

/// The newest complete snapshot (body and metadata), if there is one. A newer body
/// without metadata (an ingest that died between the two writes) is skipped with a
/// warning: the next ingest writes a new snapshot, and the body stays as evidence.
pub async fn newest(store: &dyn ObjectStore) -> Result<Option<ObjectKey>, StoreError> {
    // The last days' listing nearly always holds it; the whole archive only if not.
    if let Some(k) = newest_of(store, recent(store, Utc::now(), 8).await?).await? {
        return Ok(Some(k));
    }
    newest_of(store, list(store).await?).await
}

async fn newest_of(store: &dyn ObjectStore, keys: Vec<ObjectKey>) -> Result<Option<ObjectKey>, StoreError> {
    for key in keys.into_iter().rev() {
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::MemoryStore;

    async fn put(store: &MemoryStore, endpoint: &str, at: DateTime<Utc>) -> ObjectKey {
        let key = layout::raw_snapshot(endpoint, at).unwrap();
        store.put(&key, Bytes::from_static(b"{}")).await.unwrap();
        store
            .put(&layout::snapshot_meta(&key).unwrap(), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        key
    }

    async fn forget(store: &MemoryStore, key: &ObjectKey) {
        store.delete(key).await.unwrap();
        store.delete(&layout::snapshot_meta(key).unwrap()).await.unwrap();
    }

    #[tokio::test]
    async fn recent_snapshots_are_listed_by_day_without_reading_the_archive() {
        let store = MemoryStore::new();
        let now = Utc::now();
        let old = put(&store, "archive", now - chrono::Duration::days(400)).await;
        let yesterday = put(&store, "forecast", now - chrono::Duration::days(1)).await;
        let today = put(&store, "archive", now).await;
        // A writer whose clock runs ahead, across midnight.
        let ahead = put(&store, "forecast", now + chrono::Duration::days(1)).await;
        assert_eq!(recent(&store, now, 1).await.unwrap(), vec![ahead.clone()]);
        forget(&store, &ahead).await;
        // Two wanted: today's and yesterday's day listings give them, the year-old day
        // is never listed.
        assert_eq!(
            recent(&store, now, 2).await.unwrap(),
            vec![yesterday.clone(), today.clone()]
        );
        assert_eq!(recent(&store, now, 1).await.unwrap(), vec![today.clone()]);
        // More wanted than the last 31 days hold: those days are what there is.
        assert_eq!(recent(&store, now, 10).await.unwrap(), vec![yesterday, today]);
        // Nothing collected for 31 days: the whole archive, newest last.
        let later = now + chrono::Duration::days(60);
        assert_eq!(recent(&store, later, 1).await.unwrap().first(), Some(&old));
        assert_eq!(recent(&store, later, 1).await.unwrap().len(), 3);
    }

    #[test]
    fn snapshots_go_only_under_the_endpoints_readers_list() {
        assert!(layout::raw_snapshot("archive", Utc::now()).is_ok());
        assert!(layout::raw_snapshot("other", Utc::now()).is_err());
    }
}

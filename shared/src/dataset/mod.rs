//! The processed dataset, shared by the stages after the transform: its manifest (the
//! lineage record written last, so a dataset without one is not finished) and, with the
//! `batch` feature, the polars frame itself ([`Dataset`]).
//!
//! A dataset is addressed by its data version: the md5 of its parquet bytes, which is
//! also its DVC version.

#[cfg(feature = "batch")]
mod frame;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[cfg(feature = "batch")]
pub use frame::{Dataset, DatasetError, TIME, TrainingSet};
#[cfg(feature = "batch")]
pub(crate) use frame::{datetime_column, read_f64, read_times};

use crate::dvc::DvcOut;
use crate::layout;
use crate::observations::TimeWindow;
use crate::store::{self, ObjectKey, ObjectStore, StoreError};

/// Statistics of the regularisation, for the manifest and the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegulariseStats {
    pub input_rows: usize,
    pub duplicate_hours: usize,
    pub absent_hours: usize,
    pub filled_values: usize,
    pub hours: usize,
}

/// The lineage of a processed dataset, stored beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetManifest {
    pub data_version: String,
    /// Where the dataset is: its object in the DVC remote.
    pub dataset: String,
    /// The `.dvc` entry that restores it.
    pub dvc: DvcOut,
    pub bytes: usize,
    pub rows: usize,
    pub columns: Vec<String>,
    pub window: TimeWindow,
    pub snapshots: Vec<ObjectKey>,
    pub regularise: RegulariseStats,
    pub max_fill_hours: u32,
    pub created_at: DateTime<Utc>,
    pub git_commit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "there is no dataset with data version {data_version} in {store}: run `rps transform` (or `rps pipeline run`) first"
    )]
    Unknown { data_version: String, store: String },
    #[error(
        "the store {store} holds no processed dataset yet: run `rps transform` (or `rps pipeline run`) first"
    )]
    NoDataset { store: String },
}

/// The manifest of one dataset.
pub async fn manifest(store: &dyn ObjectStore, data_version: &str) -> Result<DatasetManifest, ManifestError> {
    match store::get_json(store, &layout::dataset_manifest(data_version)?).await {
        Err(StoreError::NotFound { .. }) => Err(ManifestError::Unknown {
            data_version: data_version.to_owned(),
            store: datasets_url(store),
        }),
        other => Ok(other?),
    }
}

/// The manifest of every processed dataset in the store.
pub async fn manifests(store: &dyn ObjectStore) -> Result<Vec<DatasetManifest>, StoreError> {
    let mut out = Vec::new();
    for key in store.list(layout::DATASETS_PREFIX).await? {
        if key.file_name() == layout::MANIFEST_FILE {
            out.push(store::get_json(store, &key).await?);
        }
    }
    Ok(out)
}

/// The most recently created dataset: what `rps train` trains on by default.
pub async fn newest(store: &dyn ObjectStore) -> Result<DatasetManifest, ManifestError> {
    manifests(store)
        .await?
        .into_iter()
        .max_by_key(|m| m.created_at)
        .ok_or_else(|| ManifestError::NoDataset {
            store: datasets_url(store),
        })
}

/// The dataset whose observations reach furthest (ties: more rows, then the newer
/// one): what hold-outs are cut from. Not the most recently built, which may be short.
pub async fn furthest(store: &dyn ObjectStore) -> Result<DatasetManifest, ManifestError> {
    manifests(store)
        .await?
        .into_iter()
        .max_by_key(|m| (m.window.end, m.rows, m.created_at))
        .ok_or_else(|| ManifestError::NoDataset {
            store: datasets_url(store),
        })
}

fn datasets_url(store: &dyn ObjectStore) -> String {
    ObjectKey::new(layout::DATASETS_PREFIX.trim_end_matches('/'))
        .map(|k| store.url(&k))
        .unwrap_or_default()
}

//! Stage 3, transform: validated snapshots → the processed dataset (parquet, addressed
//! by its md5, the data version), its HTML profile and its manifest (lineage).

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validate::load_snapshot;
use super::{Context, StageError};
use crate::layout;
use crate::model::TimeWindow;
use crate::profile::{self, ProfileContext};
use crate::quality::QualityReport;
use crate::store::{self, ObjectKey, ObjectStore, StoreError};
use crate::transform::{self, Dataset, RegulariseStats};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformInput {
    /// Validated snapshots to merge; where they overlap, the later one in this list wins.
    pub snapshots: Vec<ObjectKey>,
}

/// The lineage of a processed dataset, stored beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetManifest {
    pub data_version: String,
    pub dataset: ObjectKey,
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformOutput {
    pub data_version: String,
    pub dataset: ObjectKey,
    pub profile: ObjectKey,
    pub manifest: ObjectKey,
    pub rows: usize,
    pub window: TimeWindow,
    pub filled_values: usize,
}

/// Refuses a snapshot whose stored quality report is missing or failed.
async fn require_validated(ctx: &Context, snapshot: &ObjectKey) -> Result<(), StageError> {
    let key = layout::quality_report(snapshot)?;
    let not_validated = |why: String| StageError::NotValidated {
        snapshot: ctx.store.url(snapshot),
        why,
    };
    match store::get_json::<QualityReport>(ctx.store.as_ref(), &key).await {
        Ok(r) if r.passed => Ok(()),
        Ok(r) => Err(not_validated(format!(
            "its report lists {} failed check(s)",
            r.failures().count()
        ))),
        Err(StoreError::NotFound { .. }) => Err(not_validated(
            "it has no quality report; run validate first".into(),
        )),
        Err(e) => Err(e.into()),
    }
}

/// Writes a content-addressed object; an identical one already there is fine.
async fn put_content(store: &dyn ObjectStore, key: &ObjectKey, body: Bytes) -> Result<(), StageError> {
    match store.put_new(key, body).await {
        Ok(()) | Err(StoreError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Regularises validated snapshots into the processed dataset, its profile and
/// manifest (written last: a dataset without a manifest is not finished).
pub async fn transform(ctx: &Context, input: TransformInput) -> Result<TransformOutput, StageError> {
    if input.snapshots.is_empty() {
        return Err(StageError::Input("transform needs at least one snapshot".into()));
    }
    let mut raws = Vec::with_capacity(input.snapshots.len());
    for s in &input.snapshots {
        require_validated(ctx, s).await?;
        raws.push(load_snapshot(ctx, s).await?.0);
    }
    let max_fill = ctx.config.transform.max_fill_hours;
    let (dataset, stats) = tokio::task::spawn_blocking(move || -> Result<_, StageError> {
        let (series, stats) = transform::regularise(&raws, max_fill)?;
        Ok((Dataset::build(&series)?, stats))
    })
    .await
    .map_err(|e| StageError::Input(format!("transform task failed: {e}")))??;
    let parquet = dataset.to_parquet()?;
    let data_version = crate::dvc::md5_hex(&parquet);
    let snapshots: Vec<String> = input.snapshots.iter().map(ToString::to_string).collect();
    let html = profile::render_html(
        &dataset,
        &ProfileContext {
            data_version: &data_version,
            stats: &stats,
            snapshots: &snapshots,
        },
    )?;
    let times = dataset.times()?;
    let window = TimeWindow {
        start: times[0],
        end: times[times.len() - 1],
    };
    let (key, profile_key, manifest_key) = (
        layout::dataset(&data_version)?,
        layout::dataset_profile(&data_version)?,
        layout::dataset_manifest(&data_version)?,
    );
    let manifest = DatasetManifest {
        data_version: data_version.clone(),
        dataset: key.clone(),
        bytes: parquet.len(),
        rows: dataset.rows(),
        columns: dataset.column_names(),
        window,
        snapshots: input.snapshots.clone(),
        regularise: stats,
        max_fill_hours: max_fill,
        created_at: Utc::now(),
        git_commit: crate::git::current_commit(),
    };
    put_content(ctx.store.as_ref(), &key, parquet.into()).await?;
    put_content(ctx.store.as_ref(), &profile_key, html.into()).await?;
    let manifest_body = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| StoreError::io("serialize", ctx.store.url(&manifest_key), e))?;
    put_content(ctx.store.as_ref(), &manifest_key, manifest_body.into()).await?;
    tracing::info!(data_version = %data_version, rows = manifest.rows, "transformed");
    Ok(TransformOutput {
        data_version,
        dataset: key,
        profile: profile_key,
        manifest: manifest_key,
        rows: manifest.rows,
        window,
        filled_values: stats.filled_values,
    })
}

/// The data version of the most recently created dataset in the store.
pub async fn newest_dataset(ctx: &Context) -> Result<Option<String>, StageError> {
    let mut newest: Option<DatasetManifest> = None;
    for key in ctx.store.list("datasets/").await? {
        if key.file_name() != "manifest.json" {
            continue;
        }
        let m: DatasetManifest = store::get_json(ctx.store.as_ref(), &key).await?;
        if newest.as_ref().is_none_or(|n| m.created_at > n.created_at) {
            newest = Some(m);
        }
    }
    Ok(newest.map(|m| m.data_version))
}

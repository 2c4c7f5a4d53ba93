//! Stage 3, transform: validated snapshots → the processed dataset (parquet, addressed
//! by its md5, the data version), its HTML profile and its manifest (lineage).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::validate::load_snapshot;
use super::{Context, StageError};
use crate::dvc::{DEFAULT_OUT_PATH, DvcOut};
use crate::layout;
use crate::model::TimeWindow;
use crate::profile::{self, ProfileContext};
use crate::quality::QualityReport;
use crate::store::{self, ObjectKey, StoreError};
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformOutput {
    pub data_version: String,
    pub dataset: String,
    pub dvc: DvcOut,
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
    let (profile_key, manifest_key) = (
        layout::dataset_profile(&data_version)?,
        layout::dataset_manifest(&data_version)?,
    );
    let bytes = parquet.len();
    // The dataset goes to the DVC remote; its profile and then its manifest (the mark of
    // a finished dataset) to the store.
    let dvc = ctx.dvc.push(parquet.into(), DEFAULT_OUT_PATH).await?;
    let dataset_url = ctx.dvc.object_url(&data_version)?;
    let manifest = DatasetManifest {
        data_version: data_version.clone(),
        dataset: dataset_url.clone(),
        dvc: dvc.clone(),
        bytes,
        rows: dataset.rows(),
        columns: dataset.column_names(),
        window,
        snapshots: input.snapshots.clone(),
        regularise: stats,
        max_fill_hours: max_fill,
        created_at: Utc::now(),
        git_commit: crate::git::current_commit(),
    };
    // The same bytes can come from other snapshots; the manifest names the ones this run
    // used, so the run's lineage and the store agree. Each write is atomic.
    ctx.store.put(&profile_key, html.into()).await?;
    store::put_json(ctx.store.as_ref(), &manifest_key, &manifest, false).await?;
    tracing::info!(data_version = %data_version, rows = manifest.rows, "transformed");
    Ok(TransformOutput {
        data_version,
        dataset: dataset_url,
        dvc,
        profile: profile_key,
        manifest: manifest_key,
        rows: manifest.rows,
        window,
        filled_values: stats.filled_values,
    })
}

/// The manifest of every processed dataset in the store.
pub async fn dataset_manifests(ctx: &Context) -> Result<Vec<DatasetManifest>, StageError> {
    let mut out = Vec::new();
    for key in ctx.store.list("datasets/").await? {
        if key.file_name() == "manifest.json" {
            out.push(store::get_json(ctx.store.as_ref(), &key).await?);
        }
    }
    Ok(out)
}

/// The data version of the most recently created dataset in the store.
pub async fn newest_dataset(ctx: &Context) -> Result<Option<String>, StageError> {
    Ok(dataset_manifests(ctx)
        .await?
        .into_iter()
        .max_by_key(|m| m.created_at)
        .map(|m| m.data_version))
}

//! Stage 3, transform: validated snapshots → the processed dataset (parquet, addressed
//! by its md5, the data version) pushed to the DVC remote, its HTML profile
//! ([`profile`]) and its manifest (lineage). [`regularise`] merges the snapshots onto a
//! complete hourly axis; the features come from [`crate::features`], the code serving
//! uses too.

pub mod profile;
pub mod regularise;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use self::profile::ProfileContext;
use crate::dataset::{Dataset, DatasetManifest};
use crate::dvc::{DEFAULT_OUT_PATH, DvcOut};
use crate::layout;
use crate::observations::{RawSeries, TimeWindow};
use crate::snapshot;
use crate::stage::{Context, StageError, blocking};
use crate::store::{self, ObjectKey};
use crate::validate::ValidateOutput;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransformInput {
    /// Validated snapshots to merge; where they overlap, the later one in this list wins.
    pub snapshots: Vec<ObjectKey>,
}

impl From<&ValidateOutput> for TransformInput {
    fn from(o: &ValidateOutput) -> Self {
        Self {
            snapshots: vec![o.snapshot.clone()],
        }
    }
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

/// Regularises validated snapshots into the processed dataset, its profile and
/// manifest (written last: a dataset without a manifest is not finished).
pub async fn transform(ctx: &Context, input: TransformInput) -> Result<TransformOutput, StageError> {
    if input.snapshots.is_empty() {
        return Err(StageError::Input("transform needs at least one snapshot".into()));
    }
    let raws = load_validated(ctx, &input.snapshots).await?;
    let max_fill = ctx.config.transform.max_fill_hours;
    let (dataset, stats) = blocking("the transform", move || {
        let (series, stats) = regularise::regularise(&raws, max_fill)?;
        Ok((Dataset::build(&series)?, stats))
    })
    .await?;
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
        git_commit: crate::git::current_commit(&ctx.config.provenance),
    };
    let (profile_key, manifest_key) = (
        layout::dataset_profile(&data_version)?,
        layout::dataset_manifest(&data_version)?,
    );
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

/// The snapshots' observations; refuses any whose quality report is missing or failed.
async fn load_validated(ctx: &Context, snapshots: &[ObjectKey]) -> Result<Vec<RawSeries>, StageError> {
    let mut raws = Vec::with_capacity(snapshots.len());
    for s in snapshots {
        let not_validated = |why: String| StageError::NotValidated {
            snapshot: ctx.url(s),
            why,
        };
        match snapshot::quality_report(ctx.store.as_ref(), s).await? {
            Some(r) if r.passed => {}
            Some(r) => {
                return Err(not_validated(format!(
                    "its report lists {} failed check(s)",
                    r.failures().count()
                )));
            }
            None => {
                return Err(not_validated(
                    "it has no quality report; run validate first".into(),
                ));
            }
        }
        raws.push(snapshot::load(ctx.store.as_ref(), s).await?.0);
    }
    Ok(raws)
}

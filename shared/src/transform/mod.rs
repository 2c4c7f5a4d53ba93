//! Stage 3, transform: validated snapshots → the processed dataset (parquet, addressed
//! by its md5, the data version) pushed to the DVC remote, its HTML profile
//! ([`profile`]) and its manifest (lineage). [`regularise`] merges the snapshots onto a
//! complete hourly axis; the features come from [`crate::features`], the code serving
//! uses too.

pub mod profile;
pub mod regularise;

use chrono::Utc;

use self::profile::ProfileContext;
use crate::dataset::{self, Dataset, DatasetManifest};
use crate::dvc::DEFAULT_OUT_PATH;
use crate::layout;
use crate::observations::{RawSeries, TimeWindow};
pub use crate::records::stages::{TransformInput, TransformOutput};
use crate::snapshot;
use crate::stage::{Context, StageError, blocking};
use crate::store::{self, ObjectKey, StoreError};

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
    // The same bytes can come from other snapshots (the same hours fetched twice): the
    // dataset is the same, and its first manifest and profile stay; they are written
    // create-only, so no run rewrites another's lineage.
    match ctx.store.put_new(&profile_key, html.into()).await {
        Ok(()) | Err(StoreError::AlreadyExists { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let manifest = match store::put_json(ctx.store.as_ref(), &manifest_key, &manifest, true).await {
        Ok(()) => manifest,
        Err(StoreError::AlreadyExists { .. }) => {
            let first = dataset::manifest(ctx.store.as_ref(), &data_version).await?;
            tracing::info!(data_version = %data_version, snapshots = ?first.snapshots, "this dataset was built before; its manifest stays");
            first
        }
        Err(e) => return Err(e.into()),
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{context, range};

    /// Two snapshots with the same hours make the same dataset (same md5): the second
    /// transform keeps the first manifest (the dataset's lineage) instead of replacing it.
    #[tokio::test]
    async fn a_dataset_built_twice_keeps_its_first_manifest() {
        let (ctx, _store, _cache) = context(&[]);
        let mut firsts = Vec::new();
        for _ in 0..2 {
            let validated = crate::testing::validated(&ctx, range((2, 1), (2, 28))).await;
            firsts.push(transform(&ctx, (&validated).into()).await.unwrap());
        }
        assert_eq!(firsts[0].data_version, firsts[1].data_version);
        let manifest = dataset::manifest(ctx.store.as_ref(), &firsts[0].data_version)
            .await
            .unwrap();
        assert_eq!(manifest.snapshots.len(), 1);
        let first_snapshot = crate::snapshot::list(ctx.store.as_ref()).await.unwrap()[0].clone();
        assert_eq!(manifest.snapshots[0], first_snapshot);
    }
}

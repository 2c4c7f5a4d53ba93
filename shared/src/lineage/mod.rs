//! Lineage: from a registered model version back to the raw data it came from.
//!
//! model version → tracking run → git commit → data version (the DVC md5, its `.dvc`
//! file and remote object) → dataset manifest → raw snapshots (when, from which URL,
//! with which parameters, and their quality reports). With this a user can rebuild the
//! exact training set; [`Lineage::rebuild`] spells out how.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::bundle::ModelMetadata;
use crate::dataset::{DatasetManifest, RegulariseStats};
use crate::dvc::DvcOut;
use crate::layout;
use crate::observations::{TimeWindow, format_time};
use crate::registry::{self, ModelRef, VersionInfo};
use crate::snapshot::{self, SnapshotMeta};
use crate::source::IngestRequest;
use crate::stage::{Context, StageError};
use crate::store::{self, ObjectKey, StoreError};
use crate::tags;

#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    pub model: ModelLineage,
    pub run: Option<RunLineage>,
    pub git_commit: Option<String>,
    pub data: DataLineage,
    pub snapshots: Vec<SnapshotLineage>,
    /// Commands that rebuild the training data and the model.
    pub rebuild: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelLineage {
    pub name: String,
    pub version: String,
    pub aliases: Vec<String>,
    pub registry: String,
    pub url: Option<String>,
    pub source: String,
    pub bundle_sha256: Option<String>,
    pub algorithm: String,
    pub trained_at: DateTime<Utc>,
    pub training_window: TimeWindow,
    pub holdout_window: TimeWindow,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunLineage {
    pub run_id: String,
    pub status: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataLineage {
    pub data_version: String,
    pub dvc: Option<DvcOut>,
    /// The `.dvc` file that restores the dataset with `dvc pull`.
    pub dvc_file: Option<String>,
    pub dvc_remote: String,
    pub dataset: String,
    pub rows: Option<usize>,
    pub window: Option<TimeWindow>,
    pub regularise: Option<RegulariseStats>,
    pub max_fill_hours: Option<u32>,
    pub manifest: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SnapshotLineage {
    pub key: ObjectKey,
    pub url: String,
    pub collected_at: Option<DateTime<Utc>>,
    pub source_url: Option<String>,
    pub request: Option<IngestRequest>,
    pub sha256: Option<String>,
    pub bytes: Option<usize>,
    pub quality_report: String,
    pub quality_passed: Option<bool>,
}

async fn optional<T>(r: Result<T, StoreError>) -> Result<Option<T>, StageError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Follows a model version (number or `@alias`) back to its raw snapshots.
pub async fn trace(ctx: &Context, reference: &ModelRef) -> Result<Lineage, StageError> {
    let name = &ctx.config.registry.model_name;
    let info: VersionInfo = ctx.registry.resolve(name, reference).await?;
    let loaded = registry::load_version(
        ctx.registry.as_ref(),
        info.clone(),
        &ctx.config.registry.cache_dir,
    )
    .await?;
    let meta = &loaded.bundle.metadata;
    let data_version = info
        .data_version()
        .map(str::to_owned)
        .unwrap_or_else(|| meta.data_version.clone());
    let git_commit = info
        .tag(tags::version::GIT_COMMIT)
        .map(str::to_owned)
        .or_else(|| meta.git_commit.clone());
    let run = run_lineage(ctx, info.run_id.clone().or_else(|| meta.run_id.clone())).await?;
    let manifest_key = layout::dataset_manifest(&data_version)?;
    let manifest: Option<DatasetManifest> =
        optional(store::get_json(ctx.store.as_ref(), &manifest_key).await).await?;
    let snapshot_keys: Vec<ObjectKey> = match &manifest {
        Some(m) => m.snapshots.clone(),
        None => meta
            .raw_snapshots
            .iter()
            .filter_map(|s| ObjectKey::new(s.as_str()).ok())
            .collect(),
    };
    let mut snapshots = Vec::with_capacity(snapshot_keys.len());
    for key in snapshot_keys {
        snapshots.push(snapshot_lineage(ctx, key).await?);
    }
    let data = data_lineage(ctx, &data_version, manifest.as_ref(), &manifest_key)?;
    Ok(Lineage {
        rebuild: rebuild_commands(&data_version, git_commit.as_deref(), &snapshots, meta),
        model: ModelLineage {
            url: ctx.registry.version_url(name, &info.version),
            name: info.name.clone(),
            version: info.version.clone(),
            aliases: info.aliases.clone(),
            registry: ctx.registry.describe(),
            source: info.source.clone(),
            bundle_sha256: info.bundle_sha256().map(str::to_owned),
            algorithm: meta.algorithm.clone(),
            trained_at: meta.created_at,
            training_window: meta.training_window,
            holdout_window: meta.holdout_window,
        },
        run,
        git_commit,
        data,
        snapshots,
    })
}

/// The tracking run, with its status and page when a tracker can tell.
async fn run_lineage(ctx: &Context, run_id: Option<String>) -> Result<Option<RunLineage>, StageError> {
    let Some(run_id) = run_id else {
        return Ok(None);
    };
    let (status, url) = match &ctx.tracker {
        Some(tracker) => {
            let run = tracker.get_run(&run_id).await?;
            (run.status, run.url)
        }
        None => (None, None),
    };
    Ok(Some(RunLineage { run_id, status, url }))
}

fn data_lineage(
    ctx: &Context,
    data_version: &str,
    manifest: Option<&DatasetManifest>,
    manifest_key: &ObjectKey,
) -> Result<DataLineage, StageError> {
    let dvc = manifest.map(|m| m.dvc.clone());
    Ok(DataLineage {
        dvc_file: dvc.as_ref().map(DvcOut::to_dvc_file),
        dvc,
        dvc_remote: ctx.dvc.url(),
        dataset: ctx.dvc.object_url(data_version)?,
        rows: manifest.map(|m| m.rows),
        window: manifest.map(|m| m.window),
        regularise: manifest.map(|m| m.regularise),
        max_fill_hours: manifest.map(|m| m.max_fill_hours),
        manifest: ctx.url(manifest_key),
        data_version: data_version.to_owned(),
    })
}

async fn snapshot_lineage(ctx: &Context, key: ObjectKey) -> Result<SnapshotLineage, StageError> {
    let meta: Option<SnapshotMeta> =
        optional(store::get_json(ctx.store.as_ref(), &layout::snapshot_meta(&key)?).await).await?;
    let report = snapshot::quality_report(ctx.store.as_ref(), &key).await?;
    Ok(SnapshotLineage {
        url: ctx.url(&key),
        collected_at: meta.as_ref().map(|m| m.collected_at),
        source_url: meta.as_ref().map(|m| m.url.clone()),
        request: meta.as_ref().map(|m| m.request),
        sha256: meta.as_ref().map(|m| m.sha256.clone()),
        bytes: meta.as_ref().map(|m| m.bytes),
        quality_report: ctx.url(&layout::quality_report(&key)?),
        quality_passed: report.map(|r| r.passed),
        key,
    })
}

/// The commands that rebuild the exact training set and the model.
fn rebuild_commands(
    data_version: &str,
    git_commit: Option<&str>,
    snapshots: &[SnapshotLineage],
    meta: &ModelMetadata,
) -> Vec<String> {
    let mut rebuild = Vec::new();
    if let Some(c) = git_commit {
        rebuild.push(format!("git checkout {c}"));
    }
    rebuild.push(format!(
        "rps data pull {data_version}   # or: write the .dvc file above to data.dvc and run `dvc pull`"
    ));
    if !snapshots.is_empty() {
        rebuild.push(format!(
            "rps transform {}   # rebuilds data version {data_version} from the raw snapshots",
            snapshots
                .iter()
                .map(|s| s.key.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        ));
    }
    rebuild.push(format!(
        "rps train --data-version {data_version}   # trains on {} → {}, scores on {} → {}",
        format_time(meta.training_window.start),
        format_time(meta.training_window.end),
        format_time(meta.holdout_window.start),
        format_time(meta.holdout_window.end),
    ));
    rebuild
}

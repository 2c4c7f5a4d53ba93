//! Lineage: from a registered model version back to the raw data it came from.
//!
//! model version → tracking run → git commit → data version (the DVC md5, its `.dvc`
//! file and remote object) → dataset manifest → raw snapshots (when, from which URL,
//! with which parameters, and their quality reports). With this a user can rebuild the
//! exact training set; [`Lineage::rebuild`] spells out how.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::dvc::DvcOut;
use crate::layout;
use crate::model::TimeWindow;
use crate::pipeline::{Context, DatasetManifest, SnapshotMeta, StageError};
use crate::quality::QualityReport;
use crate::registry::{self, ModelRef, VersionInfo, tags};
use crate::source::IngestRequest;
use crate::store::{self, ObjectKey, StoreError};
use crate::transform::RegulariseStats;

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

    let run_id = info.run_id.clone().or_else(|| meta.run_id.clone());
    let run = match (&run_id, &ctx.mlflow) {
        (Some(id), Some(client)) => {
            let r = client.get_run(id).await?;
            Some(RunLineage {
                run_id: id.clone(),
                status: Some(r.info.status.clone()),
                url: Some(client.run_url(&r.info.experiment_id, id)),
            })
        }
        (Some(id), None) => Some(RunLineage {
            run_id: id.clone(),
            status: None,
            url: None,
        }),
        (None, _) => None,
    };
    let git_commit = info
        .tag(tags::GIT_COMMIT)
        .map(str::to_owned)
        .or_else(|| meta.git_commit.clone());

    let manifest_key = layout::dataset_manifest(&data_version)?;
    let manifest: Option<DatasetManifest> =
        optional(store::get_json(ctx.store.as_ref(), &manifest_key).await).await?;
    let mut snapshots = Vec::new();
    let snapshot_keys: Vec<ObjectKey> = match &manifest {
        Some(m) => m.snapshots.clone(),
        None => meta
            .raw_snapshots
            .iter()
            .filter_map(|s| ObjectKey::new(s.as_str()).ok())
            .collect(),
    };
    for key in snapshot_keys {
        let smeta: Option<SnapshotMeta> =
            optional(store::get_json(ctx.store.as_ref(), &layout::snapshot_meta(&key)?).await).await?;
        let report_key = layout::quality_report(&key)?;
        let report: Option<QualityReport> =
            optional(store::get_json(ctx.store.as_ref(), &report_key).await).await?;
        snapshots.push(SnapshotLineage {
            url: ctx.store.url(&key),
            collected_at: smeta.as_ref().map(|m| m.collected_at),
            source_url: smeta.as_ref().map(|m| m.url.clone()),
            request: smeta.as_ref().map(|m| m.request),
            sha256: smeta.as_ref().map(|m| m.sha256.clone()),
            bytes: smeta.as_ref().map(|m| m.bytes),
            quality_report: ctx.store.url(&report_key),
            quality_passed: report.map(|r| r.passed),
            key,
        });
    }
    let dvc = manifest.as_ref().map(|m| m.dvc.clone());
    let data = DataLineage {
        dvc_file: dvc.as_ref().map(DvcOut::to_dvc_file),
        dvc,
        dvc_remote: ctx.dvc.url(),
        dataset: ctx.dvc.object_url(&data_version)?,
        rows: manifest.as_ref().map(|m| m.rows),
        window: manifest.as_ref().map(|m| m.window),
        regularise: manifest.as_ref().map(|m| m.regularise),
        max_fill_hours: manifest.as_ref().map(|m| m.max_fill_hours),
        manifest: ctx.store.url(&manifest_key),
        data_version: data_version.clone(),
    };
    let mut rebuild = Vec::new();
    if let Some(c) = &git_commit {
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
        crate::observations::format_time(meta.training_window.start),
        crate::observations::format_time(meta.training_window.end),
        crate::observations::format_time(meta.holdout_window.start),
        crate::observations::format_time(meta.holdout_window.end),
    ));
    Ok(Lineage {
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
        rebuild,
    })
}

//! Stage 4, train: fit, select and score models on a processed dataset; store the model
//! bundle and its evaluation; track the run in MLflow (params, metrics, tags, artifacts)
//! when a tracking server is configured; register the model as a new version with the
//! alias `candidate`. Nothing here moves `production`.

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Context, DatasetManifest, StageError, TransformOutput};
use crate::evaluate::{self, HorizonScore};
use crate::features::{INPUT_HOURS, feature_names};
use crate::layout;
use crate::mlflow::{Metric, MlflowClient, RunInfo, RunStatus, Tag, now_ms};
use crate::model::{BUNDLE_FORMAT_VERSION, ModelBundle, ModelMetadata, ModelSchema};
use crate::observations::format_time;
use crate::registry::{self, NewVersion, tags};
use crate::store::{self, ObjectKey};
use crate::train::{self, CandidateScore, SplitSummary, TARGET_TRANSFORM};
use crate::transform::Dataset;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainInput {
    pub data_version: String,
}

impl From<&TransformOutput> for TrainInput {
    fn from(o: &TransformOutput) -> Self {
        Self {
            data_version: o.data_version.clone(),
        }
    }
}

/// The evaluation stored beside a bundle (JSON) and as Markdown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub model_name: String,
    pub bundle_id: String,
    pub algorithm: String,
    pub data_version: String,
    pub holdout: Vec<HorizonScore>,
    pub candidates: Vec<CandidateScore>,
    pub split: SplitSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOutput {
    pub model_name: String,
    /// The registry's version number.
    pub model_version: String,
    pub aliases: Vec<String>,
    pub registry: String,
    #[serde(default)]
    pub version_url: Option<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub run_url: Option<String>,
    pub bundle: ObjectKey,
    pub bundle_sha256: String,
    pub bundle_bytes: usize,
    pub algorithm: String,
    pub data_version: String,
    pub rows: usize,
    pub metrics: BTreeMap<String, f64>,
    pub evaluation: ObjectKey,
    pub evaluation_markdown: ObjectKey,
}

/// The MLflow run a training is tracked in.
struct Tracked<'a> {
    client: &'a MlflowClient,
    run: RunInfo,
}

/// Trains, scores, bundles and registers a model on a processed dataset.
pub async fn train(ctx: &Context, input: TrainInput) -> Result<TrainOutput, StageError> {
    let manifest: DatasetManifest = store::get_json(
        ctx.store.as_ref(),
        &layout::dataset_manifest(&input.data_version)?,
    )
    .await?;
    // Pulled from the DVC remote and checked against its md5.
    let parquet = ctx.dvc.pull(&input.data_version).await?;
    let tracked = match &ctx.mlflow {
        Some(client) => Some(start_run(ctx, client, &manifest).await?),
        None => None,
    };
    let result = fit_and_register(ctx, &manifest, parquet, tracked.as_ref()).await;
    if let Some(t) = &tracked {
        let status = if result.is_ok() {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        };
        if let Err(e) = t.client.finish_run(&t.run.run_id, status).await {
            tracing::error!(run_id = %t.run.run_id, "could not mark the run {status:?}: {e}");
            if result.is_ok() {
                return Err(e.into());
            }
        }
    }
    result
}

async fn start_run<'a>(
    ctx: &Context,
    client: &'a MlflowClient,
    manifest: &DatasetManifest,
) -> Result<Tracked<'a>, StageError> {
    let cfg = ctx
        .config
        .mlflow
        .as_ref()
        .expect("a client implies a configuration");
    let experiment = client.get_or_create_experiment(&cfg.experiment).await?;
    let mut run_tags = vec![
        Tag::new(tags::DATA_VERSION, &manifest.data_version),
        Tag::new("rps.dataset", &manifest.dataset),
        Tag::new(
            "rps.raw_snapshots",
            manifest
                .snapshots
                .iter()
                .map(ObjectKey::as_str)
                .collect::<Vec<_>>()
                .join(","),
        ),
        Tag::new("rps.data_window_start", format_time(manifest.window.start)),
        Tag::new("rps.data_window_end", format_time(manifest.window.end)),
        Tag::new("rps.model_name", &ctx.config.registry.model_name),
        Tag::new("rps.stage", "train"),
    ];
    if let Some(commit) = crate::git::current_commit() {
        run_tags.push(Tag::new("mlflow.source.git.commit", commit));
    }
    let name = format!(
        "train-{}-{}",
        &manifest.data_version[..8],
        Utc::now().format("%Y%m%dT%H%M%S")
    );
    let run = client.create_run(&experiment, &name, &run_tags).await?;
    tracing::info!(run_id = %run.run_id, url = %client.run_url(&run.experiment_id, &run.run_id), "tracking run started");
    Ok(Tracked { client, run })
}

async fn fit_and_register(
    ctx: &Context,
    manifest: &DatasetManifest,
    parquet: Bytes,
    tracked: Option<&Tracked<'_>>,
) -> Result<TrainOutput, StageError> {
    let store = ctx.store.as_ref();
    let tc = ctx.config.train.clone();
    let candidates = train::default_candidates();
    let cands = candidates.clone();
    let (trained, rows) = tokio::task::spawn_blocking(move || -> Result<_, StageError> {
        let set = Dataset::from_parquet(&parquet)?.training_set()?;
        let rows = set.times.len();
        let trained = train::train(&set, &cands, tc.validation_fraction, tc.holdout_fraction, tc.seed)?;
        Ok((trained, rows))
    })
    .await
    .map_err(|e| StageError::Input(format!("training task failed: {e}")))??;

    let created_at = Utc::now();
    let bundle_id = layout::stamp(created_at);
    let metrics = evaluate::metrics_map(&trained.holdout);
    let algorithm = trained.chosen.describe();
    let mut params = trained.chosen.params();
    params.insert("validation_fraction".into(), tc.validation_fraction.to_string());
    params.insert("holdout_fraction".into(), tc.holdout_fraction.to_string());
    params.insert("seed".into(), tc.seed.to_string());
    params.insert("target_transform".into(), format!("{TARGET_TRANSFORM:?}"));
    params.insert("input_hours".into(), INPUT_HOURS.to_string());
    params.insert("feature_count".into(), feature_names().len().to_string());
    params.insert("features".into(), feature_names().join(","));
    params.insert(
        "candidates".into(),
        candidates
            .iter()
            .map(|c| c.describe())
            .collect::<Vec<_>>()
            .join("; "),
    );
    params.insert("train_rows".into(), trained.split.refit_rows.to_string());
    params.insert("holdout_rows".into(), trained.split.holdout_rows.to_string());
    let name = ctx.config.registry.model_name.clone();
    let git_commit = crate::git::current_commit();
    let bundle = ModelBundle {
        format_version: BUNDLE_FORMAT_VERSION,
        schema: ModelSchema::current(),
        metadata: ModelMetadata {
            model_name: name.clone(),
            algorithm: algorithm.clone(),
            params: params.clone(),
            created_at,
            data_version: manifest.data_version.clone(),
            dataset_key: manifest.dataset.clone(),
            git_commit: git_commit.clone(),
            run_id: tracked.map(|t| t.run.run_id.clone()),
            raw_snapshots: manifest.snapshots.iter().map(ToString::to_string).collect(),
            training_window: trained.split.refit_window,
            holdout_window: trained.split.holdout_window,
            train_rows: trained.split.refit_rows,
            holdout_rows: trained.split.holdout_rows,
            metrics: metrics.clone(),
        },
        scaler: trained.scaler,
        models: trained.models,
        feature_stats: trained.feature_stats,
    };
    let bytes = Bytes::from(bundle.encode()?);
    let sha = crate::model::sha256_hex(&bytes);
    let evaluation = Evaluation {
        model_name: name.clone(),
        bundle_id: bundle_id.clone(),
        algorithm: algorithm.clone(),
        data_version: manifest.data_version.clone(),
        holdout: trained.holdout,
        candidates: trained.candidates,
        split: trained.split,
    };
    let markdown = format!(
        "### {name}: {algorithm}\n\nData version `{}`; hold-out {} → {} ({} rows), never seen in training.\n\n{}",
        manifest.data_version,
        format_time(evaluation.split.holdout_window.start),
        format_time(evaluation.split.holdout_window.end),
        evaluation.split.holdout_rows,
        evaluate::markdown_table(&evaluation.holdout)
    );
    let evaluation_json = serde_json::to_vec_pretty(&evaluation)
        .map_err(|e| StageError::Input(format!("cannot serialise the evaluation: {e}")))?;

    let bundle_key = layout::model_bundle(&name, &bundle_id)?;
    let eval_key = layout::model_evaluation(&name, &bundle_id, "json")?;
    let md_key = layout::model_evaluation(&name, &bundle_id, "md")?;
    store.put_new(&bundle_key, bytes.clone()).await?;
    store.put_new(&eval_key, evaluation_json.clone().into()).await?;
    store.put_new(&md_key, markdown.clone().into()).await?;

    // Track: everything a reviewer needs to judge and reproduce the run.
    if let Some(t) = tracked {
        let ts = now_ms();
        let mut metric_list: Vec<Metric> = metrics
            .iter()
            .map(|(k, v)| Metric {
                key: k.clone(),
                value: *v,
                timestamp: ts,
                step: 0,
            })
            .collect();
        for c in &evaluation.candidates {
            for (h, v) in c.validation_rmse.iter().enumerate() {
                let short = c.description.split('(').next().unwrap_or("model");
                metric_list.push(Metric {
                    key: format!("validation_rmse_h{}.{short}", h + 1),
                    value: *v,
                    timestamp: ts,
                    step: 0,
                });
            }
        }
        let param_list: Vec<Tag> = params.iter().map(|(k, v)| Tag::new(k, v)).collect();
        let tag_list = vec![
            Tag::new(tags::ALGORITHM, &algorithm),
            Tag::new(tags::BUNDLE_SHA256, &sha),
            Tag::new("rps.bundle_key", bundle_key.as_str()),
        ];
        t.client
            .log_batch(&t.run.run_id, &metric_list, &param_list, &tag_list)
            .await?;
        let schema = serde_json::to_vec_pretty(&bundle.schema).unwrap_or_default();
        let manifest_json = serde_json::to_vec_pretty(manifest).unwrap_or_default();
        let profile = store
            .get(&layout::dataset_profile(&manifest.data_version)?)
            .await?;
        let mut artifacts: Vec<(String, Bytes)> = vec![
            (format!("model/{}", registry::BUNDLE_FILE), bytes.clone()),
            ("model/schema.json".into(), schema.into()),
            ("data/profile.html".into(), profile),
            ("data/manifest.json".into(), manifest_json.into()),
            ("evaluation/evaluation.json".into(), evaluation_json.into()),
            ("evaluation/evaluation.md".into(), markdown.into()),
        ];
        for snapshot in &manifest.snapshots {
            let report = layout::quality_report(snapshot)?;
            artifacts.push((
                format!("data/quality/{}", report.file_name()),
                store.get(&report).await?,
            ));
        }
        for (path, body) in artifacts {
            t.client.upload_artifact(&t.run, &path, body).await?;
        }
    }

    // Register: a new version, aliased `candidate`.
    let source = match tracked {
        Some(t) => format!("{}/model", t.run.artifact_uri.trim_end_matches('/')),
        None => format!("models/{name}/{bundle_id}"),
    };
    let mut version_tags = BTreeMap::from([
        (tags::BUNDLE_SHA256.to_owned(), sha.clone()),
        (tags::DATA_VERSION.to_owned(), manifest.data_version.clone()),
        (tags::ALGORITHM.to_owned(), algorithm.clone()),
        (tags::TRAINED_AT.to_owned(), created_at.to_rfc3339()),
    ]);
    if let Some(c) = &git_commit {
        version_tags.insert(tags::GIT_COMMIT.to_owned(), c.clone());
    }
    if let Some(t) = tracked {
        version_tags.insert(tags::RUN_ID.to_owned(), t.run.run_id.clone());
    }
    for m in tags::HEADLINE_METRICS {
        if let Some(v) = metrics.get(m) {
            version_tags.insert(format!("rps.{m}"), format!("{v:.4}"));
        }
    }
    let version = ctx
        .registry
        .create_version(NewVersion {
            name: name.clone(),
            source,
            run_id: tracked.map(|t| t.run.run_id.clone()),
            tags: version_tags,
            description: format!(
                "{algorithm} trained on data version {} ({} → {})",
                manifest.data_version,
                format_time(evaluation.split.refit_window.start),
                format_time(evaluation.split.refit_window.end)
            ),
        })
        .await?;
    ctx.registry
        .set_alias(&name, registry::aliases::CANDIDATE, &version.version)
        .await?;
    if let Some(t) = tracked {
        t.client
            .set_run_tag(&t.run.run_id, "rps.model_version", &version.version)
            .await?;
    }
    tracing::info!(model = %name, version = %version.version, algorithm = %algorithm, registry = %ctx.registry.describe(), "registered as @candidate");
    Ok(TrainOutput {
        version_url: ctx.registry.version_url(&name, &version.version),
        model_name: name,
        model_version: version.version,
        aliases: vec![registry::aliases::CANDIDATE.to_owned()],
        registry: ctx.registry.describe(),
        run_id: tracked.map(|t| t.run.run_id.clone()),
        run_url: tracked.map(|t| t.client.run_url(&t.run.experiment_id, &t.run.run_id)),
        bundle: bundle_key,
        bundle_sha256: sha,
        bundle_bytes: bytes.len(),
        algorithm,
        data_version: manifest.data_version.clone(),
        rows,
        metrics,
        evaluation: eval_key,
        evaluation_markdown: md_key,
    })
}

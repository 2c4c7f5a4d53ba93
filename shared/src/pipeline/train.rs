//! Stage 4, train: fit, select and score models on a processed dataset, and store the
//! model bundle with its evaluation (JSON and Markdown).

use std::collections::BTreeMap;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{Context, DatasetManifest, StageError, TransformOutput};
use crate::evaluate::{self, HorizonScore};
use crate::layout;
use crate::model::{BUNDLE_FORMAT_VERSION, ModelBundle, ModelMetadata, ModelSchema};
use crate::store::{self, ObjectKey};
use crate::train::{self, CandidateScore, SplitSummary};
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
    pub model_version: String,
    pub algorithm: String,
    pub data_version: String,
    pub holdout: Vec<HorizonScore>,
    pub candidates: Vec<CandidateScore>,
    pub split: SplitSummary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOutput {
    pub model_name: String,
    pub model_version: String,
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

/// Trains, scores and bundles a model on a processed dataset.
pub async fn train(ctx: &Context, input: TrainInput) -> Result<TrainOutput, StageError> {
    let store = ctx.store.as_ref();
    let manifest: DatasetManifest =
        store::get_json(store, &layout::dataset_manifest(&input.data_version)?).await?;
    let parquet = store.get(&manifest.dataset).await?;
    let md5 = crate::dvc::md5_hex(&parquet);
    if md5 != input.data_version {
        return Err(StageError::Input(format!(
            "{} has md5 {md5}, not the data version {} it is stored under",
            store.url(&manifest.dataset),
            input.data_version
        )));
    }
    let tc = ctx.config.train.clone();
    let (trained, rows) = tokio::task::spawn_blocking(move || -> Result<_, StageError> {
        let set = Dataset::from_parquet(&parquet)?.training_set()?;
        let rows = set.times.len();
        let trained = train::train(
            &set,
            &train::default_candidates(),
            tc.validation_fraction,
            tc.holdout_fraction,
            tc.seed,
        )?;
        Ok((trained, rows))
    })
    .await
    .map_err(|e| StageError::Input(format!("training task failed: {e}")))??;

    let created_at = Utc::now();
    let model_version = layout::stamp(created_at);
    let metrics = evaluate::metrics_map(&trained.holdout);
    let algorithm = trained.chosen.describe();
    let mut params = trained.chosen.params();
    params.insert("validation_fraction".into(), tc.validation_fraction.to_string());
    params.insert("holdout_fraction".into(), tc.holdout_fraction.to_string());
    params.insert("seed".into(), tc.seed.to_string());
    let bundle = ModelBundle {
        format_version: BUNDLE_FORMAT_VERSION,
        schema: ModelSchema::current(),
        metadata: ModelMetadata {
            model_name: ctx.config.model_name.clone(),
            algorithm: algorithm.clone(),
            params,
            created_at,
            data_version: input.data_version.clone(),
            dataset_key: manifest.dataset.to_string(),
            git_commit: crate::git::current_commit(),
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
    let bytes = bundle.encode()?;
    let sha = crate::model::sha256_hex(&bytes);
    let name = &ctx.config.model_name;
    let bundle_key = layout::model_bundle(name, &model_version)?;
    let evaluation = Evaluation {
        model_name: name.clone(),
        model_version: model_version.clone(),
        algorithm: algorithm.clone(),
        data_version: input.data_version.clone(),
        holdout: trained.holdout,
        candidates: trained.candidates,
        split: trained.split,
    };
    let eval_key = layout::model_evaluation(name, &model_version, "json")?;
    let md_key = layout::model_evaluation(name, &model_version, "md")?;
    let markdown = format!(
        "### {name} {model_version}: {algorithm}\n\nData version `{}`; hold-out {} → {} ({} rows).\n\n{}",
        input.data_version,
        crate::observations::format_time(evaluation.split.holdout_window.start),
        crate::observations::format_time(evaluation.split.holdout_window.end),
        evaluation.split.holdout_rows,
        evaluate::markdown_table(&evaluation.holdout)
    );
    let bundle_bytes = bytes.len();
    store.put_new(&bundle_key, bytes.into()).await?;
    store::put_json(store, &eval_key, &evaluation, true).await?;
    store.put_new(&md_key, markdown.into()).await?;
    tracing::info!(model = %name, version = %model_version, algorithm = %algorithm, "trained");
    Ok(TrainOutput {
        model_name: name.clone(),
        model_version,
        bundle: bundle_key,
        bundle_sha256: sha,
        bundle_bytes,
        algorithm,
        data_version: input.data_version,
        rows,
        metrics,
        evaluation: eval_key,
        evaluation_markdown: md_key,
    })
}

//! Stage 4, train: fit, select and score models on a processed dataset ([`fit`], over
//! the [`candidates`] and a chronological [`split`]); bundle the winner; track the run
//! (params, metrics, tags, artifacts) when a tracker is configured; store the bundle
//! and its evaluation; register it as a new version with the alias `candidate`.
//! Nothing here moves `production`.
//!
//! Order matters for what a failure leaves behind: the run is tracked before anything
//! is stored, and registered last, so a failed stage leaves no orphan bundle and no
//! version without its alias; the run is then marked FAILED.

pub mod candidates;
pub mod fit;
pub mod intervals;
pub mod split;

use std::collections::BTreeMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::scores::IntervalScore;
pub use candidates::{Candidate, default_candidates};
pub use fit::{
    CandidateScore, SplitSummary, TARGET_TRANSFORM, Trained, TrainedRows, feature_stats, select_and_fit,
};
pub use split::{Split, chronological_split, refit_rows};

use crate::bundle::{
    BUNDLE_FORMAT_VERSION, Calibration, ModelBundle, ModelMetadata, ModelSchema, sha256_hex,
};
use crate::dataset::{self, Dataset, DatasetManifest};
use crate::features::{INPUT_HOURS, feature_names};
use crate::layout;
use crate::observations::format_time;
use crate::records::retrain::{self as trigger, Trigger};
pub use crate::records::stages::TrainInput;
use crate::registry::NewVersion;
use crate::scores::{self, HorizonScore};
use crate::stage::{Context, StageError, TrainFailure, blocking};
use crate::store::ObjectKey;
use crate::tags;
use crate::tracking::{RunRecord, RunStatus, TrackedRun, Tracker};

#[derive(Debug, Clone, thiserror::Error)]
pub enum TrainError {
    #[error("not enough rows: {0}")]
    TooFewRows(String),
    #[error("fitting {candidate} for the {horizon} h horizon failed: {message}")]
    Fit {
        candidate: String,
        horizon: u8,
        message: String,
    },
}

impl From<TrainError> for StageError {
    fn from(e: TrainError) -> Self {
        StageError::Train(TrainFailure {
            data: matches!(e, TrainError::TooFewRows(_)),
            message: e.to_string(),
        })
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
    /// The intervals on the hold-out, per horizon and level (empty without calibration).
    pub intervals: Vec<IntervalScore>,
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

/// The tracker and the run a training is tracked in.
type Tracked<'a> = (&'a dyn Tracker, TrackedRun);

/// Trains, scores, bundles and registers a model on a processed dataset.
pub async fn train(ctx: &Context, input: TrainInput) -> Result<TrainOutput, StageError> {
    if let Some(t) = &input.trigger {
        let name = &ctx.config.registry.model_name;
        trigger::claim_run(ctx.store.as_ref(), name, t, input.run.as_deref())
            .await
            .map_err(|e| match e {
                trigger::ClaimRefused::Taken(why) => StageError::Conflict(why),
                trigger::ClaimRefused::Store(e) => StageError::Store(e),
            })?;
    }
    let manifest = dataset::manifest(ctx.store.as_ref(), &input.data_version).await?;
    check_place(ctx).await?;
    // Pulled from the DVC remote and checked against its md5.
    let parquet = ctx.dvc.pull(&input.data_version).await?;
    let tracked = match &ctx.tracker {
        Some(t) => Some((
            t.as_ref(),
            start_run(ctx, t.as_ref(), &manifest, input.trigger.as_ref()).await?,
        )),
        None => None,
    };
    let result = fit_and_register(ctx, &manifest, parquet, tracked.as_ref()).await;
    if let Some((tracker, run)) = &tracked {
        let status = if result.is_ok() {
            RunStatus::Finished
        } else {
            RunStatus::Failed
        };
        if let Err(e) = tracker.finish(run, status).await {
            tracing::error!(run_id = %run.run_id, "could not mark the run {status:?}: {e}");
            if result.is_ok() {
                return Err(e.into());
            }
        }
    }
    result
}

/// A registered model forecasts one place, which its newest version that says so names:
/// a version for another place is refused before any work is done.
async fn check_place(ctx: &Context) -> Result<(), StageError> {
    let name = &ctx.config.registry.model_name;
    let versions = match ctx.registry.list_versions(name).await {
        Ok(v) => v,
        Err(e) if e.is_not_found() => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let newest = versions
        .iter()
        .filter(|v| crate::fleet::version_place(&v.tags).is_some())
        .max_by_key(|v| v.version.parse::<u64>().unwrap_or(0));
    if let Some(v) = newest {
        crate::fleet::check_model(&ctx.config, &v.version, &v.tags)?;
    }
    Ok(())
}

async fn start_run(
    ctx: &Context,
    tracker: &dyn Tracker,
    manifest: &DatasetManifest,
    trigger: Option<&Trigger>,
) -> Result<TrackedRun, StageError> {
    let snapshots: Vec<&str> = manifest.snapshots.iter().map(ObjectKey::as_str).collect();
    let mut run_tags = BTreeMap::from([
        (tags::run::DATA_VERSION.to_owned(), manifest.data_version.clone()),
        (tags::run::DATASET.to_owned(), manifest.dataset.clone()),
        (tags::run::RAW_SNAPSHOTS.to_owned(), snapshots.join(",")),
        (
            tags::run::DATA_WINDOW_START.to_owned(),
            format_time(manifest.window.start),
        ),
        (
            tags::run::DATA_WINDOW_END.to_owned(),
            format_time(manifest.window.end),
        ),
        (
            tags::run::MODEL_NAME.to_owned(),
            ctx.config.registry.model_name.clone(),
        ),
        (tags::run::STAGE.to_owned(), "train".to_owned()),
    ]);
    if let Some(t) = trigger {
        run_tags.insert(tags::run::TRIGGER.to_owned(), t.kinds());
        run_tags.insert(tags::run::TRIGGER_ID.to_owned(), t.id.clone());
    }
    if let Some(commit) = crate::git::current_commit(&ctx.config.provenance) {
        run_tags.insert(tags::run::GIT_COMMIT.to_owned(), commit);
    }
    let name = format!(
        "train-{}-{}",
        &manifest.data_version[..8.min(manifest.data_version.len())],
        Utc::now().format("%Y%m%dT%H%M%S")
    );
    let run = tracker.start_run(&name, &run_tags).await?;
    tracing::info!(run_id = %run.run_id, url = ?run.url, "tracking run started");
    Ok(run)
}

/// A trained model, ready to track, store and register.
struct Assembled {
    name: String,
    bundle_id: String,
    created_at: DateTime<Utc>,
    algorithm: String,
    params: BTreeMap<String, String>,
    metrics: BTreeMap<String, f64>,
    bundle: ModelBundle,
    bytes: Bytes,
    sha256: String,
    evaluation: Evaluation,
    evaluation_json: Bytes,
    markdown: String,
    git_commit: Option<String>,
    rows: usize,
}

async fn fit_and_register(
    ctx: &Context,
    manifest: &DatasetManifest,
    parquet: Bytes,
    tracked: Option<&Tracked<'_>>,
) -> Result<TrainOutput, StageError> {
    let fitted = fit_on(ctx, parquet).await?;
    let model = assemble(ctx, manifest, fitted, tracked.map(|t| &t.1))?;
    if let Some((tracker, run)) = tracked {
        track(ctx, *tracker, run, manifest, &model).await?;
    }
    let (bundle_key, eval_key, md_key) = store_model(ctx, &model).await?;
    let version = register(ctx, manifest, &model, tracked).await?;
    Ok(TrainOutput {
        version_url: ctx.registry.version_url(&model.name, &version),
        model_name: model.name,
        model_version: version,
        aliases: vec![ctx.config.aliases().candidate],
        registry: ctx.registry.describe(),
        run_id: tracked.map(|t| t.1.run_id.clone()),
        run_url: tracked.and_then(|t| t.1.url.clone()),
        bundle: bundle_key,
        bundle_sha256: model.sha256,
        bundle_bytes: model.bytes.len(),
        algorithm: model.algorithm,
        data_version: manifest.data_version.clone(),
        rows: model.rows,
        metrics: model.metrics,
        evaluation: eval_key,
        evaluation_markdown: md_key,
    })
}

/// What training made: the model, its intervals' calibration and their hold-out scores.
struct Fitted {
    trained: Trained,
    calibration: Option<Calibration>,
    intervals: Vec<IntervalScore>,
    rows: usize,
}

/// Fits every candidate and the winner, and calibrates its intervals, off the async
/// threads.
async fn fit_on(ctx: &Context, parquet: Bytes) -> Result<Fitted, StageError> {
    let tc = ctx.config.train.clone();
    blocking("training", move || {
        let set = Dataset::from_parquet(&parquet)?.training_set()?;
        let rows = set.times.len();
        let trained = select_and_fit(
            &set,
            &default_candidates(),
            tc.validation_fraction,
            tc.holdout_fraction,
            tc.seed,
        )?;
        let calibration = intervals::calibrate(&set, &trained, tc.interval_levels.as_slice(), tc.seed)?;
        let scores = calibration
            .as_ref()
            .map_or_else(Vec::new, |c| intervals::holdout_scores(&set, &trained, c));
        Ok(Fitted {
            trained,
            calibration,
            intervals: scores,
            rows,
        })
    })
    .await
}

/// The bundle, its checksum, its params and its evaluation (JSON and Markdown).
fn assemble(
    ctx: &Context,
    manifest: &DatasetManifest,
    fitted: Fitted,
    run: Option<&TrackedRun>,
) -> Result<Assembled, StageError> {
    let Fitted {
        trained,
        calibration,
        intervals: interval_scores,
        rows,
    } = fitted;
    let tc = &ctx.config.train;
    let created_at = Utc::now();
    let bundle_id = layout::stamp(created_at);
    let metrics = scores::metrics_map(&trained.holdout);
    let algorithm = trained.chosen.describe();
    let mut params = trained.chosen.params();
    params.extend([
        (
            "validation_fraction".to_owned(),
            tc.validation_fraction.to_string(),
        ),
        ("holdout_fraction".to_owned(), tc.holdout_fraction.to_string()),
        ("seed".to_owned(), tc.seed.to_string()),
        (
            "interval_levels".to_owned(),
            tc.interval_levels
                .as_slice()
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        ("target_transform".to_owned(), format!("{TARGET_TRANSFORM:?}")),
        ("input_hours".to_owned(), INPUT_HOURS.to_string()),
        ("feature_count".to_owned(), feature_names().len().to_string()),
        ("features".to_owned(), feature_names().join(",")),
        (
            "candidates".to_owned(),
            default_candidates()
                .iter()
                .map(Candidate::describe)
                .collect::<Vec<_>>()
                .join("; "),
        ),
        ("train_rows".to_owned(), trained.split.refit_rows.to_string()),
        ("holdout_rows".to_owned(), trained.split.holdout_rows.to_string()),
    ]);
    let name = ctx.config.registry.model_name.clone();
    let git_commit = crate::git::current_commit(&ctx.config.provenance);
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
            run_id: run.map(|r| r.run_id.clone()),
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
        calibration,
    };
    let bytes = Bytes::from(bundle.encode()?);
    let evaluation = Evaluation {
        model_name: name.clone(),
        bundle_id: bundle_id.clone(),
        algorithm: algorithm.clone(),
        data_version: manifest.data_version.clone(),
        holdout: trained.holdout,
        intervals: interval_scores,
        candidates: trained.candidates,
        split: trained.split,
    };
    let markdown = format!(
        "### {name}: {algorithm}\n\nData version `{}`; hold-out {} → {} ({} rows), never seen in training.\n\n{}",
        manifest.data_version,
        format_time(evaluation.split.holdout_window.start),
        format_time(evaluation.split.holdout_window.end),
        evaluation.split.holdout_rows,
        scores::markdown_table(&evaluation.holdout)
    ) + &match &evaluation.intervals[..] {
        [] => "\nNo prediction intervals: too few rows to calibrate them.\n".to_owned(),
        scores => format!(
            "\nPrediction intervals on the hold-out (normalised conformal):\n\n{}",
            scores::interval_markdown_table(scores)
        ),
    };
    let evaluation_json = serde_json::to_vec_pretty(&evaluation)
        .map_err(|e| StageError::Internal(format!("cannot serialise the evaluation: {e}")))?;
    Ok(Assembled {
        sha256: sha256_hex(&bytes),
        name,
        bundle_id,
        created_at,
        algorithm,
        params,
        metrics,
        bundle,
        bytes,
        evaluation,
        evaluation_json: evaluation_json.into(),
        markdown,
        git_commit,
        rows,
    })
}

/// Everything a reviewer needs to judge and reproduce the run.
async fn track(
    ctx: &Context,
    tracker: &dyn Tracker,
    run: &TrackedRun,
    manifest: &DatasetManifest,
    model: &Assembled,
) -> Result<(), StageError> {
    let bundle_key = layout::model_bundle(&model.name, &model.bundle_id)?;
    let mut metrics = model.metrics.clone();
    for x in &model.evaluation.intervals {
        let pct = x.percent();
        metrics.insert(format!("interval_coverage_{pct}_h{}", x.horizon), x.coverage);
        metrics.insert(format!("interval_winkler_{pct}_h{}", x.horizon), x.winkler);
    }
    for c in &model.evaluation.candidates {
        let short = c.description.split('(').next().unwrap_or("model");
        for (h, v) in c.validation_rmse.iter().enumerate() {
            metrics.insert(format!("validation_rmse_h{}.{short}", h + 1), *v);
        }
    }
    let record = RunRecord {
        params: model.params.clone(),
        metrics,
        tags: BTreeMap::from([
            (tags::run::ALGORITHM.to_owned(), model.algorithm.clone()),
            (tags::run::BUNDLE_SHA256.to_owned(), model.sha256.clone()),
            (tags::run::BUNDLE_KEY.to_owned(), bundle_key.to_string()),
        ]),
        step: 0,
    };
    tracker.log(run, &record).await?;
    let profile = ctx
        .store
        .get(&layout::dataset_profile(&manifest.data_version)?)
        .await?;
    let mut artifacts: Vec<(String, Bytes)> = vec![
        (format!("model/{}", layout::BUNDLE_FILE), model.bytes.clone()),
        ("model/schema.json".into(), pretty_json(&model.bundle.schema)),
        ("data/profile.html".into(), profile),
        ("data/manifest.json".into(), pretty_json(manifest)),
        ("evaluation/evaluation.json".into(), model.evaluation_json.clone()),
        (
            "evaluation/evaluation.md".into(),
            Bytes::from(model.markdown.clone()),
        ),
    ];
    for snapshot in &manifest.snapshots {
        let report = layout::quality_report(snapshot)?;
        artifacts.push((
            format!("data/quality/{}", report.file_name()),
            ctx.store.get(&report).await?,
        ));
    }
    for (path, body) in artifacts {
        tracker.log_artifact(run, &path, body).await?;
    }
    Ok(())
}

fn pretty_json<T: Serialize + ?Sized>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec_pretty(v).unwrap_or_default())
}

/// The bundle and its evaluation, create-only.
async fn store_model(
    ctx: &Context,
    model: &Assembled,
) -> Result<(ObjectKey, ObjectKey, ObjectKey), StageError> {
    let bundle_key = layout::model_bundle(&model.name, &model.bundle_id)?;
    let eval_key = layout::model_evaluation(&model.name, &model.bundle_id, "json")?;
    let md_key = layout::model_evaluation(&model.name, &model.bundle_id, "md")?;
    ctx.store.put_new(&bundle_key, model.bytes.clone()).await?;
    ctx.store
        .put_new(&eval_key, model.evaluation_json.clone())
        .await?;
    ctx.store
        .put_new(&md_key, Bytes::from(model.markdown.clone()))
        .await?;
    Ok((bundle_key, eval_key, md_key))
}

/// A new version, aliased `candidate`; its tags link it to the run, commit, data
/// version and bundle checksum.
async fn register(
    ctx: &Context,
    manifest: &DatasetManifest,
    model: &Assembled,
    tracked: Option<&Tracked<'_>>,
) -> Result<String, StageError> {
    let source = match tracked {
        Some((_, run)) => run.model_source(),
        None => layout::bundle_folder(&model.name, &model.bundle_id),
    };
    let mut version_tags = BTreeMap::from([
        (tags::version::BUNDLE_SHA256.to_owned(), model.sha256.clone()),
        (
            tags::version::DATA_VERSION.to_owned(),
            manifest.data_version.clone(),
        ),
        (tags::version::ALGORITHM.to_owned(), model.algorithm.clone()),
        (
            tags::version::TRAINED_AT.to_owned(),
            model.created_at.to_rfc3339(),
        ),
    ]);
    version_tags.extend(crate::fleet::version_tags(&ctx.config));
    if let Some(c) = &model.git_commit {
        version_tags.insert(tags::version::GIT_COMMIT.to_owned(), c.clone());
    }
    if let Some((_, run)) = tracked {
        version_tags.insert(tags::version::RUN_ID.to_owned(), run.run_id.clone());
    }
    for m in tags::version::HEADLINE_METRICS {
        if let Some(v) = model.metrics.get(m) {
            version_tags.insert(tags::version::metric(m), format!("{v:.4}"));
        }
    }
    let split = &model.evaluation.split;
    let version = ctx
        .registry
        .create_version(NewVersion {
            name: model.name.clone(),
            source,
            run_id: tracked.map(|(_, run)| run.run_id.clone()),
            tags: version_tags,
            description: format!(
                "{} trained on data version {} ({} → {})",
                model.algorithm,
                manifest.data_version,
                format_time(split.refit_window.start),
                format_time(split.refit_window.end)
            ),
        })
        .await?;
    if let Err(e) = ctx
        .registry
        .set_alias(&model.name, &ctx.config.aliases().candidate, &version.version)
        .await
    {
        // The version exists but is not the candidate: say so on it, for whoever lists
        // the versions; the next training registers a complete one.
        let note = format!("incomplete: @candidate could not be set ({})", e.public_summary());
        if let Err(tag) = ctx
            .registry
            .set_version_tag(&model.name, &version.version, tags::version::REGISTRATION, &note)
            .await
        {
            tracing::error!(version = %version.version, "could not mark the version incomplete: {tag}");
        }
        return Err(e.into());
    }
    if let Some((tracker, run)) = tracked {
        tracker
            .set_tag(run, tags::run::MODEL_VERSION, &version.version)
            .await?;
    }
    tracing::info!(model = %model.name, version = %version.version, algorithm = %model.algorithm, registry = %ctx.registry.describe(), "registered as @candidate");
    Ok(version.version)
}

#[cfg(test)]
mod tests {
    //! Training against a tracker that fails mid-run (a mock): the run is marked
    //! FAILED, and nothing is stored or registered.

    use std::collections::HashMap;
    use std::sync::Arc;

    use chrono::NaiveDate;
    use mockall::predicate::eq;

    use super::*;
    use crate::config::Config;
    use crate::source::{DateRange, IngestRequest, RecordedSource, Recording};
    use crate::store::{MemoryStore, ObjectStore};
    use crate::tracking::{MockTracker, TrackingError};

    fn sample() -> Recording {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data/sample/open-meteo-archive-sandpoint-ak-2023.json");
        Recording::parse(&std::fs::read(path).unwrap()).unwrap()
    }

    /// A context on a memory store with a processed dataset of Jan–Apr 2023.
    async fn with_dataset() -> (Context, Arc<MemoryStore>, String) {
        let store = Arc::new(MemoryStore::new());
        let config = Config::from_map(&HashMap::new()).unwrap();
        let ctx = Context::with_store(config, store.clone())
            .unwrap()
            .with_source(Arc::new(RecordedSource::new(sample(), 7)));
        let d = |m, day| NaiveDate::from_ymd_opt(2023, m, day).unwrap();
        let range = IngestRequest::backfill(DateRange::new(d(1, 1), d(4, 30)).unwrap());
        let transformed = crate::testing::transformed(&ctx, range).await;
        (ctx, store, transformed.data_version)
    }

    fn run() -> TrackedRun {
        TrackedRun {
            run_id: "r1".into(),
            experiment_id: "1".into(),
            artifact_uri: "memory://r1".into(),
            url: None,
            status: None,
        }
    }

    #[tokio::test]
    async fn a_tracker_failing_mid_run_marks_it_failed_and_leaves_nothing_behind() {
        let (ctx, store, data_version) = with_dataset().await;
        let mut tracker = MockTracker::new();
        tracker.expect_start_run().times(1).returning(|_, _| Ok(run()));
        tracker.expect_log().times(1).returning(|r, _| {
            Err(TrackingError::Run {
                run_id: r.run_id.clone(),
                message: "the tracking server went away".into(),
            })
        });
        tracker
            .expect_finish()
            .with(eq(run()), eq(RunStatus::Failed))
            .times(1)
            .returning(|_, _| Ok(()));
        let ctx = ctx.with_tracker(Some(Arc::new(tracker)));
        let err = train(
            &ctx,
            TrainInput {
                data_version,
                trigger: None,
                run: None,
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StageError::Tracking(_)), "{err}");
        assert_eq!(err.error_type(), "DependencyFailed");
        assert!(
            store.list("models/").await.unwrap().is_empty(),
            "an orphan bundle"
        );
        let name = &ctx.config.registry.model_name;
        assert!(ctx.registry.list_versions(name).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_untracked_run_registers_a_candidate_in_the_local_registry() {
        let (ctx, store, data_version) = with_dataset().await;
        let out = train(
            &ctx,
            TrainInput {
                data_version,
                trigger: None,
                run: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(out.model_version, "1");
        assert!(store.exists(&out.bundle).await.unwrap());
        let name = &ctx.config.registry.model_name;
        let v = ctx
            .registry
            .get_alias(name, tags::aliases::CANDIDATE)
            .await
            .unwrap();
        assert_eq!(v.bundle_sha256(), Some(out.bundle_sha256.as_str()));
    }

    #[tokio::test]
    async fn a_version_whose_candidate_alias_cannot_be_set_is_marked_incomplete() {
        use crate::registry::{MockRegistry, RegistryError, VersionInfo};
        let (ctx, store, data_version) = with_dataset().await;
        let mut reg = MockRegistry::new();
        reg.expect_describe().returning(|| "a mock registry".into());
        // No version yet: nothing says which place the model forecasts.
        reg.expect_list_versions().returning(|_| Ok(Vec::new()));
        reg.expect_create_version().times(1).returning(|new| {
            Ok(VersionInfo {
                name: new.name,
                version: "7".into(),
                aliases: Vec::new(),
                run_id: None,
                source: new.source,
                stage: None,
                created_at: None,
                tags: new.tags,
            })
        });
        reg.expect_set_alias()
            .times(1)
            .returning(|_, _, _| Err(RegistryError::Invalid("the registry went away".into())));
        reg.expect_set_version_tag()
            .withf(|_, v, k, val| {
                v == "7" && k == tags::version::REGISTRATION && val.starts_with("incomplete")
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let ctx = ctx.with_registry(Arc::new(reg));
        let err = train(
            &ctx,
            TrainInput {
                data_version,
                trigger: None,
                run: None,
            },
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("the registry went away"), "{err}");
        // The bundle the version points at is stored (the version stays usable).
        assert_eq!(store.list("models/").await.unwrap().len(), 3);
    }

    /// A shared registry (MLflow) whose model forecasts Sand Point: a training for
    /// another place is refused before it fits anything or registers a version.
    #[tokio::test]
    async fn a_version_for_another_place_is_refused_before_any_work() {
        use crate::registry::{MockRegistry, VersionInfo};
        let (ctx, store, data_version) = with_dataset().await;
        let mut config = ctx.config.clone();
        config.location = crate::config::Location {
            latitude: crate::config::Latitude::new(36.1).unwrap(),
            longitude: crate::config::Longitude::new(-79.95).unwrap(),
        };
        let mut reg = MockRegistry::new();
        let sand_point = ctx.config.clone();
        reg.expect_list_versions().returning(move |name| {
            Ok(vec![VersionInfo {
                name: name.to_owned(),
                version: "4".into(),
                aliases: vec!["production".into()],
                run_id: None,
                source: "models/x".into(),
                stage: None,
                created_at: None,
                tags: crate::fleet::version_tags(&sand_point).into_iter().collect(),
            }])
        });
        // No create_version expectation: registering anything would fail the test.
        let ctx = Context::with_store(config, store.clone())
            .unwrap()
            .with_registry(Arc::new(reg));
        let err = train(
            &ctx,
            TrainInput {
                data_version,
                trigger: None,
                run: None,
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, StageError::WrongPlace(_)), "{err}");
        assert!(
            err.to_string().starts_with(
                "the registered model rps-temperature (version 4) belongs to 55.317, -160.517 (\"default\"), not to 36.1, -79.95"
            ),
            "{err}"
        );
        assert!(
            store.list("models/").await.unwrap().is_empty(),
            "nothing was trained"
        );
    }
}

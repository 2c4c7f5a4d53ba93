//! The whole run: ingest → validate → transform → train, stopping at the first failure.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::source::IngestRequest;

/// Input of a whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInput {
    pub ingest: IngestRequest,
}

/// The contract of `rps pipeline run --json`: the summary fields first, then every
/// stage's output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutput {
    pub data_version: String,
    pub rows: usize,
    pub metrics: BTreeMap<String, f64>,
    pub model_name: String,
    pub model_version: String,
    pub algorithm: String,
    /// The MLflow UI page of the training run, when tracked.
    pub run_url: Option<String>,
    pub ingest: IngestOutput,
    pub validate: ValidateOutput,
    pub transform: TransformOutput,
    pub train: TrainOutput,
}

/// Hears about stage progress (the CLI draws spinners with it).
pub trait Observer: Send + Sync {
    fn started(&self, _stage: &'static str) {}
    fn finished(&self, _stage: &'static str, _summary: &str) {}
}

/// Observes nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// Runs every stage in order; the first failure stops the run.
pub async fn run(ctx: &Context, input: RunInput, obs: &dyn Observer) -> Result<RunOutput, StageError> {
    obs.started("ingest");
    let ingested = ingest(ctx, input.ingest).await?;
    obs.finished(
        "ingest",
        &format!(
            "{} hours, {} bytes → {}",
            ingested.rows, ingested.bytes, ingested.snapshot
        ),
    );

    obs.started("validate");
    let validated = validate(ctx, (&ingested).into()).await?;
    obs.finished(
        "validate",
        &format!(
            "{} checks passed, {} warning(s)",
            validated.checks - validated.warnings.len(),
            validated.warnings.len()
        ),
    );

    obs.started("transform");
    let transformed = transform(
        ctx,
        TransformInput {
            snapshots: vec![validated.snapshot.clone()],
        },
    )
    .await?;
    obs.finished(
        "transform",
        &format!(
            "{} rows, data version {}",
            transformed.rows, transformed.data_version
        ),
    );

    obs.started("train");
    let trained = train(ctx, (&transformed).into()).await?;
    obs.finished(
        "train",
        &format!(
            "{} → {} version {} @candidate",
            trained.algorithm, trained.model_name, trained.model_version
        ),
    );

    Ok(RunOutput {
        data_version: transformed.data_version.clone(),
        rows: transformed.rows,
        metrics: trained.metrics.clone(),
        model_name: trained.model_name.clone(),
        model_version: trained.model_version.clone(),
        algorithm: trained.algorithm.clone(),
        run_url: trained.run_url.clone(),
        ingest: ingested,
        validate: validated,
        transform: transformed,
        train: trained,
    })
}

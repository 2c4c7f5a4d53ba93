//! The stages chained, and the one place that chains them (no stage imports another):
//! [`run`] (`rps pipeline run`: ingest → validate → transform → train, stopping at the
//! first failure), [`gate_and_promote`] (promote, with evaluate as its gates) and
//! [`promote`] (`rps pipeline promote`: the release flow, run → `@staging` → gates →
//! `@production`). Each stage hands the next one references (keys, the data version, a
//! model version), never payloads: the records in [`crate::records`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::evaluate::report::GateReport;
use crate::evaluate::smoke::until_version;
use crate::evaluate::{EvaluateInput, EvaluateOutput, evaluate_with_report};
use crate::ingest::{IngestOutput, ingest};
use crate::promote::{Gates, PromoteInput, PromoteOutput};
use crate::records::retrain::Trigger;
use crate::registry::ModelRef;
use crate::source::IngestRequest;
use crate::stage::{Context, Observer, StageError};
use crate::tags::aliases;
use crate::train::{TrainInput, TrainOutput, train};
use crate::transform::{TransformOutput, transform};
use crate::validate::{ValidateOutput, validate};

/// Input of a whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunInput {
    pub ingest: IngestRequest,
    /// What asked for this run (a verification), when it was not a schedule or a person.
    #[serde(default)]
    pub trigger: Option<Trigger>,
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

/// Runs every stage in order; the first failure stops the run.
pub async fn run(ctx: &Context, input: RunInput, obs: &dyn Observer) -> Result<RunOutput, StageError> {
    // This process's run: what a triggered training claims its trigger for.
    let run_id = format!(
        "rps-{}-{:08x}",
        crate::layout::stamp(chrono::Utc::now()),
        rand::random::<u32>()
    );
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
    let transformed = transform(ctx, (&validated).into()).await?;
    obs.finished(
        "transform",
        &format!(
            "{} rows, data version {}",
            transformed.rows, transformed.data_version
        ),
    );

    obs.started("train");
    let trained = train(
        ctx,
        TrainInput {
            trigger: input.trigger.clone(),
            run: Some(run_id.clone()),
            ..(&transformed).into()
        },
    )
    .await?;
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseInput {
    pub run: RunInput,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseOutput {
    pub run: RunOutput,
    /// Whether the staging endpoint served the candidate before the gates ran.
    pub staging_ready: Option<bool>,
    pub promote: PromoteOutput,
}

/// The release flow CI and the orchestrators call (`rps pipeline promote`): run the
/// pipeline, deploy the candidate to staging (the `staging` alias), gate it
/// (smoke-testing the staging endpoint when there is one) and promote it on success.
pub async fn promote(
    ctx: &Context,
    input: ReleaseInput,
    obs: &dyn Observer,
) -> Result<ReleaseOutput, StageError> {
    let trigger = input.run.trigger.clone();
    let ran = run(ctx, input.run, obs).await?;
    let v = ran.model_version.clone();
    obs.started("staging");
    ctx.registry
        .set_alias(&ran.model_name, aliases::STAGING, &v)
        .await?;
    let staging_ready = match &ctx.config.gates.staging_url {
        Some(url) => Some(wait_for_staging(ctx, url.as_str(), &v).await),
        None => None,
    };
    obs.finished(
        "staging",
        &match staging_ready {
            Some(true) => format!("version {v} @staging, served by the staging endpoint"),
            Some(false) => format!("version {v} @staging, but the staging endpoint does not serve it"),
            None => format!("version {v} @staging (no staging endpoint to smoke-test)"),
        },
    );
    obs.started("promote");
    let promoted = gate_and_promote(
        ctx,
        PromoteInput {
            candidate: ModelRef::Version(v.clone()),
            report: None,
            data_version: None,
            actor: input.actor,
            trigger,
        },
    )
    .await?;
    obs.finished(
        "promote",
        &format!(
            "version {v} is production (previous: {})",
            promoted.previous.as_deref().unwrap_or("none")
        ),
    );
    Ok(ReleaseOutput {
        run: ran,
        staging_ready,
        promote: promoted,
    })
}

/// The promote stage with the evaluate stage as its gates: what `rps promote`, the
/// promote Lambda and the release flow run.
pub async fn gate_and_promote(ctx: &Context, input: PromoteInput) -> Result<PromoteOutput, StageError> {
    crate::promote::promote(ctx, input, &EvaluateGates).await
}

/// The evaluate stage, as the gates a promotion runs.
pub struct EvaluateGates;

#[async_trait::async_trait]
impl Gates for EvaluateGates {
    async fn run(
        &self,
        ctx: &Context,
        input: EvaluateInput,
    ) -> Result<(EvaluateOutput, GateReport), StageError> {
        evaluate_with_report(ctx, input).await
    }
}

/// Waits until the staging endpoint serves `version` (the smoke gate's staging wait,
/// [`until_version`]), for as long as the configuration allows.
async fn wait_for_staging(ctx: &Context, url: &str, version: &str) -> bool {
    until_version(&ctx.http, url, version, ctx.config.gates.staging_wait)
        .await
        .map_err(|why| tracing::warn!(url, version, why = %why, "staging does not serve the candidate yet"))
        .is_ok()
}

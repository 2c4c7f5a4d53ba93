//! Each stage's input and output, and which earlier output feeds which input: the
//! `From` conversions are the pipeline's wiring ([`crate::pipeline`] follows them, and
//! the state machine and the DAG pass the same fields).

use serde::{Deserialize, Serialize};

use crate::dataset;
use crate::dvc::DvcOut;
use crate::observations::TimeWindow;
use crate::records::gate_report::GateReport;
use crate::records::retrain::Trigger;
use crate::registry::ModelRef;
use crate::snapshot;
use crate::source::IngestRequest;
use crate::stage::{Context, StageError};
use crate::store::ObjectKey;

// 1. ingest

/// The stage's input is the request itself: a backfill range or a live fetch.
pub type IngestInput = IngestRequest;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestOutput {
    pub snapshot: ObjectKey,
    pub meta: ObjectKey,
    pub collected_at: chrono::DateTime<chrono::Utc>,
    pub endpoint: String,
    pub url: String,
    pub bytes: usize,
    pub rows: usize,
    pub attempts: u32,
}

// 2. validate

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateInput {
    pub snapshot: ObjectKey,
}

impl From<&IngestOutput> for ValidateInput {
    fn from(o: &IngestOutput) -> Self {
        Self {
            snapshot: o.snapshot.clone(),
        }
    }
}

impl ValidateInput {
    /// The newest snapshot in the store (`rps validate` without an argument).
    pub async fn newest(ctx: &Context) -> Result<Self, StageError> {
        match snapshot::newest(ctx.store.as_ref()).await? {
            Some(snapshot) => Ok(Self { snapshot }),
            None => Err(StageError::Input(format!(
                "the store {} holds no snapshot yet; run `rps ingest` first",
                ctx.config.store
            ))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateOutput {
    pub snapshot: ObjectKey,
    pub report: ObjectKey,
    pub rows: usize,
    pub checks: usize,
    pub warnings: Vec<String>,
}

// 3. transform

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

// 4. train (its output: `crate::train::TrainOutput`)

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainInput {
    pub data_version: String,
    /// What asked for this training, recorded on its run. A trigger is trained on once:
    /// the training claims it first ([`claim_run`](crate::records::retrain::claim_run)).
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// The orchestrator's run this training belongs to (the state machine's execution,
    /// the DAG run): a retry within the same run may take its own claim again.
    #[serde(default)]
    pub run: Option<String>,
}

impl From<&TransformOutput> for TrainInput {
    fn from(o: &TransformOutput) -> Self {
        Self {
            data_version: o.data_version.clone(),
            trigger: None,
            run: None,
        }
    }
}

impl TrainInput {
    /// The newest dataset in the store (`rps train` without `--data-version`).
    pub async fn newest(ctx: &Context) -> Result<Self, StageError> {
        Ok(Self {
            data_version: dataset::newest(ctx.store.as_ref()).await?.data_version,
            trigger: None,
            run: None,
        })
    }
}

// 5. evaluate

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateInput {
    pub candidate: ModelRef,
    /// The dataset to cut the hold-out from; default: the one reaching furthest.
    #[serde(default)]
    pub data_version: Option<String>,
    /// What asked for the candidate (a verification): named in the report, and told
    /// the outcome when the gates refuse.
    #[serde(default)]
    pub trigger: Option<Trigger>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateOutput {
    pub model_name: String,
    pub candidate_version: String,
    pub production_version: Option<String>,
    pub data_version: String,
    pub passed: bool,
    pub failed_gates: Vec<String>,
    pub report: ObjectKey,
    pub markdown: ObjectKey,
    pub chart: ObjectKey,
    /// The tracking run's artifact folder the report was logged to, when tracked.
    #[serde(default)]
    pub logged_to: Option<String>,
    /// What could not be done after the verdict was stored (the verdict stands).
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl EvaluateOutput {
    /// What a stored report at `json` says; its files are beside it.
    pub(crate) fn of(report: &GateReport, json: ObjectKey) -> Result<Self, StageError> {
        Ok(Self {
            model_name: report.model_name.clone(),
            candidate_version: report.candidate.version.clone(),
            production_version: report.production.as_ref().map(|p| p.version.clone()),
            data_version: report.holdout.data_version.clone(),
            passed: report.passed,
            failed_gates: report.failed_gate_names().iter().map(|s| s.to_string()).collect(),
            markdown: json.sibling("report.md")?,
            chart: json.sibling(CHART_FILE)?,
            report: json,
            logged_to: None,
            warnings: Vec::new(),
        })
    }
}

/// The chart's file name in a report's folder.
pub const CHART_FILE: &str = "error-by-horizon.png";

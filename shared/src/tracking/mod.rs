//! Experiment tracking: the port the train and evaluate stages log runs through.
//!
//! [`Tracker`] is the port; [`MlflowTracker`] the real adapter (a local server,
//! DagsHub or any hosted MLflow), [`MemoryTracker`] an in-memory one (tests, and a
//! record of what would have been logged). Without `MLFLOW_TRACKING_URI` the stages
//! run untracked.

mod memory;
mod mlflow;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use memory::{MemoryRun, MemoryTracker};
pub use mlflow::MlflowTracker;

use crate::config::Config;
use crate::mlflow::{MlflowClient, MlflowError};

pub use crate::mlflow::RunStatus;

#[derive(Debug, thiserror::Error)]
pub enum TrackingError {
    #[error(transparent)]
    Mlflow(#[from] MlflowError),
    #[error("tracking run {run_id}: {message}")]
    Run { run_id: String, message: String },
}

/// A run as the stages refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackedRun {
    pub run_id: String,
    pub experiment_id: String,
    /// Where the run's artifacts are (`mlflow-artifacts:/…`, or `memory://<run>`).
    pub artifact_uri: String,
    /// The run's page in a UI, if there is one.
    pub url: Option<String>,
    /// RUNNING, FINISHED, FAILED… when the tracker says.
    #[serde(default)]
    pub status: Option<String>,
}

impl TrackedRun {
    /// The folder a model version registered from this run points at.
    pub fn model_source(&self) -> String {
        format!("{}/model", self.artifact_uri.trim_end_matches('/'))
    }
}

/// Params, metrics and tags logged in one call.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunRecord {
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
    /// The step the metrics are logged at (0 unless a series says otherwise).
    pub step: i64,
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Tracker: Send + Sync {
    /// For messages: where runs go.
    fn describe(&self) -> String;
    /// Starts a run in the configured experiment (created if needed).
    async fn start_run(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<TrackedRun, TrackingError>;
    async fn get_run(&self, run_id: &str) -> Result<TrackedRun, TrackingError>;
    async fn log(&self, run: &TrackedRun, record: &RunRecord) -> Result<(), TrackingError>;
    /// Uploads one artifact at `path` under the run's artifact root.
    async fn log_artifact(&self, run: &TrackedRun, path: &str, body: Bytes) -> Result<(), TrackingError>;
    async fn set_tag(&self, run: &TrackedRun, key: &str, value: &str) -> Result<(), TrackingError>;
    async fn finish(&self, run: &TrackedRun, status: RunStatus) -> Result<(), TrackingError>;
}

/// The tracker the configuration names: MLflow when `MLFLOW_TRACKING_URI` is set,
/// else none.
pub fn open(config: &Config) -> Result<Option<Arc<dyn Tracker>>, TrackingError> {
    match &config.mlflow {
        Some(m) => Ok(Some(Arc::new(MlflowTracker::new(
            MlflowClient::new(m)?.with_s3(&config.s3),
            m.experiment.clone(),
        )))),
        None => Ok(None),
    }
}

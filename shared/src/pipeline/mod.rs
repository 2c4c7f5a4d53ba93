//! The pipeline stages. Each takes a serde input and returns a serde output: the same
//! JSON is a Lambda event, an Airflow XCom and a Step Functions state.
//!
//! ingest → validate → transform → train, one file each; [`run`] chains them. Each
//! stage reads what the previous one wrote from the store; a stage that fails writes
//! nothing the next one would read.

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::dvc::{DvcError, DvcRemote};
use crate::mlflow::{MlflowClient, MlflowError};
use crate::observations::ShapeError;
use crate::registry::{self, Registry, RegistryError};
use crate::source::{self, SourceError};
use crate::store::{self, ObjectStore, StoreError};

#[cfg(feature = "batch")]
mod evaluate;
mod ingest;
#[cfg(feature = "batch")]
mod promote;
#[cfg(feature = "batch")]
mod run;
#[cfg(feature = "batch")]
mod train;
#[cfg(feature = "batch")]
mod transform;
mod validate;

#[cfg(feature = "batch")]
pub use evaluate::*;
pub use ingest::*;
#[cfg(feature = "batch")]
pub use promote::*;
#[cfg(feature = "batch")]
pub use run::*;
#[cfg(feature = "batch")]
pub use train::*;
#[cfg(feature = "batch")]
pub use transform::*;
pub use validate::*;

/// What every stage needs: the configuration, the store, the model registry, the
/// tracking server (if any) and an HTTP client.
#[derive(Clone)]
pub struct Context {
    pub config: Config,
    pub store: Arc<dyn ObjectStore>,
    /// Where processed datasets are versioned.
    pub dvc: DvcRemote,
    pub registry: Arc<dyn Registry>,
    pub mlflow: Option<MlflowClient>,
    pub http: reqwest::Client,
}

impl Context {
    pub async fn new(config: Config) -> Result<Self, StageError> {
        let store = store::open(&config.store).await?;
        let dvc = DvcRemote::open(&config.dvc_remote).await?;
        Self::with_stores(config, store, dvc)
    }

    /// A context on one store, with the DVC remote in its `dvc/` folder (tests).
    pub fn with_store(config: Config, store: Arc<dyn ObjectStore>) -> Result<Self, StageError> {
        let dvc = DvcRemote::new(
            Arc::new(store::Prefixed::new(store.clone(), "dvc")),
            config.dvc_remote.clone(),
        );
        Self::with_stores(config, store, dvc)
    }

    pub fn with_stores(
        config: Config,
        store: Arc<dyn ObjectStore>,
        dvc: DvcRemote,
    ) -> Result<Self, StageError> {
        let registry = registry::open(&config, store.clone())?;
        let mlflow = config.mlflow.as_ref().map(MlflowClient::new).transpose()?;
        Ok(Self {
            config,
            store,
            dvc,
            registry,
            mlflow,
            http: source::http_client()?,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("fetching Open-Meteo failed: {0}")]
    Source(#[from] SourceError),
    #[error("snapshot {snapshot} was stored, but {source}")]
    Shape {
        snapshot: String,
        #[source]
        source: ShapeError,
    },
    #[error("the data quality gate failed {} check(s) (report: {report}):\n  - {}", failures.len(), failures.join("\n  - "))]
    QualityGate { report: String, failures: Vec<String> },
    #[error("snapshot {snapshot} has not passed the quality gate: {why}")]
    NotValidated { snapshot: String, why: String },
    #[cfg(feature = "batch")]
    #[error("transform failed: {0}")]
    Transform(#[from] crate::transform::TransformError),
    #[cfg(feature = "batch")]
    #[error("training failed: {0}")]
    Train(#[from] crate::train::TrainError),
    #[error("model bundle: {0}")]
    Model(#[from] crate::model::ModelError),
    #[error("data versioning: {0}")]
    Dvc(#[from] DvcError),
    #[error("model registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("tracking: {0}")]
    Tracking(#[from] MlflowError),
    #[error("invalid stage input: {0}")]
    Input(String),
    #[error("version {version} was not promoted: it failed the {} gate(s) (report: {report}); production is unchanged", failed.join(", "))]
    PromotionRefused {
        version: String,
        failed: Vec<String>,
        report: crate::store::ObjectKey,
        markdown: crate::store::ObjectKey,
    },
    #[error("version {version} failed the {} gate(s)", failed.join(", "))]
    GatesFailed { version: String, failed: Vec<String> },
    #[error("{0}")]
    Conflict(String),
}

impl StageError {
    /// Exit status for command lines: 3 when the data quality gate refused the data, 4
    /// when the promotion gates refused a model, 5 when another promotion got there first.
    pub fn exit_code(&self) -> i32 {
        match self {
            StageError::QualityGate { .. } | StageError::NotValidated { .. } => 3,
            StageError::PromotionRefused { .. } | StageError::GatesFailed { .. } => 4,
            StageError::Conflict(_) => 5,
            _ => 1,
        }
    }
}

//! What every stage shares: the [`Context`] it runs in (configuration and the ports),
//! the [`StageError`] it fails with, and the order the stages run in.
//!
//! A stage is an async function from a serde input to a serde output: the same JSON is
//! a Lambda event, an Airflow XCom and a Step Functions state. How orchestrators run
//! each one (its event, retries and outcomes) is the stage [`table`].

pub mod table;

use std::sync::Arc;

use crate::config::{Config, ConfigError};
use crate::dvc::{DvcError, DvcRemote};
use crate::registry::{self, Registry, RegistryError};
use crate::snapshot::SnapshotError;
use crate::source::{OpenMeteo, SourceError, WeatherSource};
use crate::store::{self, ObjectKey, ObjectStore, StoreError};
use crate::tracking::{self, Tracker, TrackingError};

/// The pipeline's stages, in the order they run: the one list the CLI, the Lambda
/// functions, the state machine and the Airflow DAG are checked against (with
/// [`table::TABLE`], which says how each is run).
pub const STAGES: [&str; 6] = ["ingest", "validate", "transform", "train", "evaluate", "promote"];

/// The stage that closes the loop: hourly after a live ingest, not part of a training
/// run ([`crate::verify`]).
pub const VERIFY: &str = "verify";

/// Every stage with a function of its own: the pipeline's, then verify.
pub const FUNCTIONS: [&str; 7] = [
    STAGES[0], STAGES[1], STAGES[2], STAGES[3], STAGES[4], STAGES[5], VERIFY,
];

/// What every stage needs: the configuration and one adapter per outside system.
#[derive(Clone)]
pub struct Context {
    pub config: Config,
    pub store: Arc<dyn ObjectStore>,
    /// Where processed datasets are versioned.
    pub dvc: DvcRemote,
    pub registry: Arc<dyn Registry>,
    /// `None`: runs are not tracked.
    pub tracker: Option<Arc<dyn Tracker>>,
    pub source: Arc<dyn WeatherSource>,
    /// For the smoke gate and the staging wait.
    pub http: reqwest::Client,
}

impl Context {
    /// Every adapter the configuration names.
    pub async fn new(config: Config) -> Result<Self, StageError> {
        let store = store::open(&config.store, &config.s3).await?;
        let dvc = DvcRemote::open(&config.dvc_remote, &config.s3).await?;
        Self::with_stores(config, store, dvc)
    }

    /// The context a deployed function runs in: its store and DVC remote (when inside
    /// the store) allow only what `function`'s grants do ([`crate::layout::access`]),
    /// as its IAM role does on AWS.
    pub async fn for_function(config: Config, function: &'static str) -> Result<Self, StageError> {
        let grants = crate::layout::access(function)
            .ok_or_else(|| StageError::Internal(format!("{function} has no grants in layout::access")))?;
        let store: Arc<dyn ObjectStore> = Arc::new(store::Scoped::new(
            store::open(&config.store, &config.s3).await?,
            function,
            grants,
            "",
        ));
        let mut remote = store::open(&config.dvc_remote, &config.s3).await?;
        if let Some(root) = config.dvc_remote.inside(&config.store) {
            remote = Arc::new(store::Scoped::new(remote, function, grants, &root));
        }
        let dvc = DvcRemote::new(remote, config.dvc_remote.clone());
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
        let tracker = tracking::open(&config)?;
        let source = Arc::new(OpenMeteo::new(config.source.clone(), config.location)?);
        Ok(Self {
            config,
            store,
            dvc,
            registry,
            tracker,
            source,
            http: crate::http::client().map_err(StageError::Internal)?,
        })
    }

    /// The same context with another weather source (a recording, offline).
    pub fn with_source(mut self, source: Arc<dyn WeatherSource>) -> Self {
        self.source = source;
        self
    }

    /// The same context with another tracker (`None`: untracked).
    pub fn with_tracker(mut self, tracker: Option<Arc<dyn Tracker>>) -> Self {
        self.tracker = tracker;
        self
    }

    /// The same context with another registry.
    pub fn with_registry(mut self, registry: Arc<dyn Registry>) -> Self {
        self.registry = registry;
        self
    }

    /// Where `key` lives, for messages.
    pub fn url(&self, key: &ObjectKey) -> String {
        self.store.url(key)
    }
}

/// Why training failed, as the train stage reports it (`train::TrainError` converts).
#[derive(Debug)]
pub struct TrainFailure {
    pub message: String,
    /// The data cannot make a model (too few rows): the input's fault, not a bug.
    pub data: bool,
}

impl std::fmt::Display for TrainFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<SnapshotError> for StageError {
    fn from(e: SnapshotError) -> Self {
        match e {
            SnapshotError::Store(e) => StageError::Store(e),
            SnapshotError::Shape { snapshot, source } => StageError::Shape { snapshot, source },
        }
    }
}

/// Whose fault a failure is, which decides what a caller does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The caller's input: fix it, do not retry.
    Input,
    /// The deployment's configuration or permissions (a variable, an IAM grant, refused
    /// credentials, an MLflow server lacking a feature): fix it, do not retry.
    Configuration,
    /// A gate refused the data or the model: a clean outcome, not a crash.
    Refused,
    /// Another run got there first: nothing changed, re-run.
    Conflict,
    /// An outside system (store, registry, tracking, source) failed: retrying may help.
    External,
    /// A bug in rps.
    Internal,
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
        source: crate::observations::ShapeError,
    },
    #[error("the data quality gate failed {} check(s) (report: {report}):\n  - {}", failures.len(), failures.join("\n  - "))]
    QualityGate { report: String, failures: Vec<String> },
    #[error("snapshot {snapshot} has not passed the quality gate: {why}")]
    NotValidated { snapshot: String, why: String },
    #[error(transparent)]
    Dataset(#[from] crate::dataset::ManifestError),
    #[cfg(feature = "batch")]
    #[error("transform failed: {0}")]
    Transform(#[from] crate::dataset::DatasetError),
    #[error("training failed: {0}")]
    Train(TrainFailure),
    #[error("model bundle: {0}")]
    Bundle(#[from] crate::bundle::ModelError),
    #[error("data versioning: {0}")]
    Dvc(#[from] DvcError),
    #[error("model registry: {0}")]
    Registry(#[from] RegistryError),
    #[error("tracking: {0}")]
    Tracking(#[from] TrackingError),
    /// The caller asked for something that cannot be done.
    #[error("invalid input: {0}")]
    Input(String),
    /// A bug: an invariant of rps broke.
    #[error("internal error (a bug in rps): {0}")]
    Internal(String),
    #[error("version {version} was not promoted: it failed the {} gate(s) (report: {report}); production is unchanged", failed.join(", "))]
    PromotionRefused {
        version: String,
        failed: Vec<String>,
        report: ObjectKey,
        markdown: ObjectKey,
    },
    #[error("version {version} failed the {} gate(s)", failed.join(", "))]
    GatesFailed { version: String, failed: Vec<String> },
    #[error("{0}")]
    Conflict(String),
    /// The store or the registered model belongs to another place.
    #[error(transparent)]
    WrongPlace(#[from] crate::fleet::WrongPlace),
}

impl From<crate::fleet::ClaimError> for StageError {
    fn from(e: crate::fleet::ClaimError) -> Self {
        match e {
            crate::fleet::ClaimError::WrongPlace(w) => StageError::WrongPlace(w),
            crate::fleet::ClaimError::Store(e) => StageError::Store(e),
        }
    }
}

impl StageError {
    /// Whose fault it is.
    pub fn kind(&self) -> ErrorKind {
        use StageError as E;
        match self {
            E::Config(_) | E::WrongPlace(_) | E::Store(StoreError::AccessDenied { .. }) => {
                ErrorKind::Configuration
            }
            E::Registry(RegistryError::Mlflow(e))
            | E::Tracking(crate::tracking::TrackingError::Mlflow(e))
                if e.is_configuration() =>
            {
                ErrorKind::Configuration
            }
            E::Dataset(crate::dataset::ManifestError::Store(StoreError::AccessDenied { .. })) => {
                ErrorKind::Configuration
            }
            E::Input(_) | E::NotValidated { .. } => ErrorKind::Input,
            E::Dataset(crate::dataset::ManifestError::Store(_)) => ErrorKind::External,
            E::Dataset(_) => ErrorKind::Input,
            E::Store(StoreError::InvalidKey { .. }) => ErrorKind::Input,
            E::QualityGate { .. } | E::PromotionRefused { .. } | E::GatesFailed { .. } => ErrorKind::Refused,
            E::Conflict(_) => ErrorKind::Conflict,
            E::Store(_) | E::Source(_) | E::Shape { .. } | E::Dvc(_) | E::Registry(_) | E::Tracking(_) => {
                ErrorKind::External
            }
            #[cfg(feature = "batch")]
            E::Transform(crate::dataset::DatasetError::Empty(_)) => ErrorKind::Input,
            #[cfg(feature = "batch")]
            E::Transform(_) => ErrorKind::Internal,
            E::Train(f) if f.data => ErrorKind::Input,
            E::Train(_) => ErrorKind::Internal,
            E::Bundle(_) | E::Internal(_) => ErrorKind::Internal,
        }
    }

    /// A stable name for the failure, for orchestrators: a Lambda function error's
    /// `errorType`, matched by the state machine's `Catch` and the Airflow DAG; one of
    /// [`table::ERROR_TYPES`].
    pub fn error_type(&self) -> &'static str {
        use table::{
            CONFIGURATION, CONFLICT, DATA_REFUSED, DEPENDENCY_FAILED, INTERNAL, INVALID_INPUT, MODEL_REFUSED,
        };
        match self {
            StageError::QualityGate { .. } | StageError::NotValidated { .. } => DATA_REFUSED,
            StageError::PromotionRefused { .. } | StageError::GatesFailed { .. } => MODEL_REFUSED,
            StageError::Conflict(_) => CONFLICT,
            _ => match self.kind() {
                ErrorKind::Input => INVALID_INPUT,
                ErrorKind::Configuration => CONFIGURATION,
                ErrorKind::External => DEPENDENCY_FAILED,
                _ => INTERNAL,
            },
        }
    }

    /// Exit status for command lines ([`table::ERROR_TYPES`]): 3 when the data quality
    /// gate refused the data, 4 when the promotion gates refused a model, 5 when another
    /// run got there first, 1 for any other failure.
    pub fn exit_code(&self) -> i32 {
        table::error_type(self.error_type()).map_or(1, |e| e.exit_code)
    }
}

/// Hears about stage progress (the CLI draws spinners with it).
pub trait Observer: Send + Sync {
    fn started(&self, _stage: &'static str) {}
    fn finished(&self, _stage: &'static str, _summary: &str) {}
}

/// Observes nothing.
pub struct Quiet;
impl Observer for Quiet {}

/// Runs blocking work (polars, training) off the async threads; a panic in it is a bug.
#[cfg(feature = "batch")]
pub(crate) async fn blocking<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> Result<T, StageError> + Send + 'static,
) -> Result<T, StageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StageError::Internal(format!("{what} failed: {e}")))?
}

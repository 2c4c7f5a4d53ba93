//! The model registry: the single source of truth for which model is which.
//!
//! [`Registry`] is the port. [`MlflowRegistry`] is the real one (a local server,
//! DagsHub or any hosted MLflow). [`LocalRegistry`] keeps the same records in the
//! object store, for runs without a tracking server. Serving and promotion load models
//! with [`load`]: resolve a version or `@alias`, download the bundle once into a
//! cache keyed by version and checksum, and verify it before use.

mod cache;
mod local;
mod mlflow;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use cache::{LoadedModel, download_verified, load, load_version};
pub use local::LocalRegistry;
pub use mlflow::MlflowRegistry;

use crate::bundle::ModelError;
use crate::config::Config;
use crate::mlflow::{MlflowClient, MlflowError};
use crate::store::{ObjectStore, StoreError};
use crate::tags;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Mlflow(#[from] MlflowError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    NotFound(String),
    #[error("model {name} version {version}: {source}")]
    Bundle {
        name: String,
        version: String,
        #[source]
        source: ModelError,
    },
    #[error("model cache {path}: {source}")]
    Cache {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

impl RegistryError {
    /// What went wrong, in words safe to show to anyone: no URL, bucket, path or
    /// server message (those go to the logs).
    pub fn public_summary(&self) -> &'static str {
        match self {
            RegistryError::Mlflow(e) => match e {
                MlflowError::Unauthorized { .. } => "MLflow refused the credentials",
                MlflowError::Forbidden { .. } => "MLflow denied access",
                MlflowError::NotFound { .. } => "MLflow has no such model, version or alias",
                MlflowError::Unsupported { .. } => "MLflow lacks a feature rps needs",
                MlflowError::Api { .. } => "MLflow rejected a request",
                MlflowError::Unavailable { .. } => "MLflow did not answer",
                MlflowError::Decode { .. } => "MLflow answered something unexpected",
                MlflowError::Invalid(_) => "the MLflow client failed",
            },
            RegistryError::Store(StoreError::NotFound { .. }) => "the store has no such model object",
            RegistryError::Store(_) => "the store could not be read",
            RegistryError::NotFound(_) => "the alias or version does not exist",
            RegistryError::Bundle { .. } => "the model bundle failed verification",
            RegistryError::Cache { .. } => "the local model cache failed",
            RegistryError::Invalid(_) => "the version cannot be served",
        }
    }

    pub fn is_not_found(&self) -> bool {
        match self {
            RegistryError::NotFound(_) => true,
            RegistryError::Mlflow(e) => e.is_not_found(),
            RegistryError::Store(StoreError::NotFound { .. }) => true,
            _ => false,
        }
    }
}

/// A model version by number or by alias: `3` or `@production`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ModelRef {
    Version(String),
    Alias(String),
}

impl FromStr for ModelRef {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(alias) = s.strip_prefix('@') {
            let ok = !alias.is_empty()
                && alias
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if ok {
                return Ok(ModelRef::Alias(alias.to_owned()));
            }
        } else if let Ok(n) = s.parse::<u64>() {
            return Ok(ModelRef::Version(n.to_string()));
        }
        Err(format!(
            "{s:?} is not a model reference: expected a version number (3) or an alias (@production)"
        ))
    }
}

impl TryFrom<String> for ModelRef {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<ModelRef> for String {
    fn from(r: ModelRef) -> Self {
        r.to_string()
    }
}

impl fmt::Display for ModelRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelRef::Version(v) => write!(f, "{v}"),
            ModelRef::Alias(a) => write!(f, "@{a}"),
        }
    }
}

/// A registered model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VersionInfo {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub aliases: Vec<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    /// The folder holding the bundle: an artifact URI (MLflow) or a store key (local).
    pub source: String,
    #[serde(default)]
    pub stage: Option<String>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

impl VersionInfo {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.get(key).map(String::as_str)
    }

    pub fn bundle_sha256(&self) -> Option<&str> {
        self.tag(tags::version::BUNDLE_SHA256)
    }

    pub fn data_version(&self) -> Option<&str> {
        self.tag(tags::version::DATA_VERSION)
    }

    pub fn has_alias(&self, alias: &str) -> bool {
        self.aliases.iter().any(|a| a == alias)
    }

    /// Versions sort numerically.
    pub fn number(&self) -> u64 {
        self.version.parse().unwrap_or(0)
    }
}

/// What registering a version needs.
#[derive(Debug, Clone)]
pub struct NewVersion {
    pub name: String,
    /// The folder holding the bundle file ([`crate::layout::BUNDLE_FILE`]).
    pub source: String,
    pub run_id: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub description: String,
}

/// The outcome of a best-effort legacy stage transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StageOutcome {
    Done,
    /// The registry has no stages (or no longer does): nothing to mirror.
    Unsupported(String),
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Registry: Send + Sync {
    /// For messages and logs: where the registry is.
    fn describe(&self) -> String;
    /// What kind of registry it is, without where (safe to show to anyone).
    fn kind(&self) -> &'static str;
    /// A link to a version in a UI, if there is one.
    fn version_url(&self, _name: &str, _version: &str) -> Option<String> {
        None
    }
    async fn create_version(&self, new: NewVersion) -> Result<VersionInfo, RegistryError>;
    async fn get_version(&self, name: &str, version: &str) -> Result<VersionInfo, RegistryError>;
    /// The version an alias points at; a not-found error if it points nowhere.
    async fn get_alias(&self, name: &str, alias: &str) -> Result<VersionInfo, RegistryError>;
    /// Every version with its aliases, newest first.
    async fn list_versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError>;
    async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), RegistryError>;
    async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError>;
    async fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError>;
    /// Mirrors an alias move to the legacy stages, where the registry has them.
    async fn set_stage(&self, name: &str, version: &str, stage: &str) -> Result<StageOutcome, RegistryError>;
    async fn download_bundle(&self, v: &VersionInfo) -> Result<Bytes, RegistryError>;

    async fn resolve(&self, name: &str, r: &ModelRef) -> Result<VersionInfo, RegistryError> {
        match r {
            ModelRef::Version(v) => self.get_version(name, v).await,
            ModelRef::Alias(a) => self.get_alias(name, a).await,
        }
    }
}

/// The version an alias points at, or `None` if it points nowhere.
pub async fn find_alias(
    registry: &dyn Registry,
    name: &str,
    alias: &str,
) -> Result<Option<VersionInfo>, RegistryError> {
    match registry.get_alias(name, alias).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The registry the configuration names: MLflow when `MLFLOW_TRACKING_URI` is set,
/// else the local registry in the store.
pub fn open(config: &Config, store: Arc<dyn ObjectStore>) -> Result<Arc<dyn Registry>, RegistryError> {
    match &config.mlflow {
        Some(m) => Ok(Arc::new(MlflowRegistry::new(
            MlflowClient::new(m)?.with_s3(&config.s3),
        ))),
        None => Ok(Arc::new(LocalRegistry::new(store))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_refs_parse_versions_and_aliases() {
        assert_eq!("3".parse::<ModelRef>().unwrap(), ModelRef::Version("3".into()));
        assert_eq!("007".parse::<ModelRef>().unwrap(), ModelRef::Version("7".into()));
        assert_eq!(
            "@production".parse::<ModelRef>().unwrap(),
            ModelRef::Alias("production".into())
        );
        for bad in ["", "@", "v3", "@pro duction", "3.1", "latest"] {
            assert!(bad.parse::<ModelRef>().is_err(), "{bad:?}");
        }
        assert_eq!(ModelRef::Alias("candidate".into()).to_string(), "@candidate");
    }
}

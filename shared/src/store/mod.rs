//! Object storage: the port every stage reads and writes through.
//!
//! Keys are `/`-separated relative paths ([`ObjectKey`]). Every write is atomic: a
//! reader sees the whole old object, the whole new one, or nothing. Immutable objects
//! (raw snapshots, datasets, model bundles) are written with [`ObjectStore::put_new`],
//! which refuses to replace an existing object.

mod local;
mod memory;
mod prefixed;
#[cfg(feature = "s3")]
mod s3;
mod scoped;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

pub use local::LocalStore;
pub use memory::MemoryStore;
pub use prefixed::Prefixed;
#[cfg(feature = "s3")]
pub use s3::S3Store;
pub use scoped::{Grant, Scoped};

use crate::config::{S3Config, StoreLocation};

/// A validated object key: non-empty `/`-separated segments, none of them empty,
/// `.` or `..`, no backslashes or control characters.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectKey(String);

impl ObjectKey {
    pub fn new(key: impl Into<String>) -> Result<Self, StoreError> {
        let key = key.into();
        let ok = !key.is_empty()
            && key.len() <= 1024
            && key
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != "..")
            && !key.chars().any(|c| c == '\\' || c.is_control());
        if ok {
            Ok(Self(key))
        } else {
            Err(StoreError::InvalidKey { key })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// A key beside this one: the same folder, another file name.
    pub fn sibling(&self, name: &str) -> Result<Self, StoreError> {
        match self.0.rsplit_once('/') {
            Some((dir, _)) => Self::new(format!("{dir}/{name}")),
            None => Self::new(name),
        }
    }
}

impl TryFrom<String> for ObjectKey {
    type Error = StoreError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<ObjectKey> for String {
    fn from(k: ObjectKey) -> Self {
        k.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "invalid object key {key:?}: keys are non-empty '/'-separated names without '.', '..' or backslashes"
    )]
    InvalidKey { key: String },
    #[error("object {url} does not exist")]
    NotFound { url: String },
    #[error("object {url} already exists and is immutable")]
    AlreadyExists { url: String },
    /// The store refused the caller's credentials for this key: a configuration fault
    /// (the role's grants), never retried. S3 also answers a *missing* key with this
    /// (403, not 404) when the caller may not `s3:ListBucket` the key's prefix.
    #[error(
        "{operation} {url} was refused (AccessDenied): the credentials may not {operation} there{}",
        if *operation == "get" || *operation == "head" {
            "; if the object may not exist yet, the role also needs s3:ListBucket on its prefix, or S3 answers a missing key with 403 instead of 404"
        } else {
            ""
        }
    )]
    AccessDenied { operation: &'static str, url: String },
    #[error("{operation} {url} failed: {source}")]
    Io {
        operation: &'static str,
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    pub fn io(
        operation: &'static str,
        url: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        StoreError::Io {
            operation,
            url: url.into(),
            source: source.into(),
        }
    }
}

#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait ObjectStore: Send + Sync + fmt::Debug {
    /// Creates or replaces `key` atomically.
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError>;
    /// Creates `key` atomically; fails with [`StoreError::AlreadyExists`] if it exists
    /// with other bytes. Writing the same bytes again succeeds, so a write retried
    /// after its answer was lost is not mistaken for someone else's.
    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError>;
    /// Reads the whole object; [`StoreError::NotFound`] if there is none.
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError>;
    async fn exists(&self, key: &ObjectKey) -> Result<bool, StoreError>;
    /// Removes `key` if it is there. Only short-lived coordination objects (locks) are
    /// ever deleted: raw snapshots, datasets and bundles never are.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError>;
    /// Every key that starts with `prefix`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StoreError>;
    /// Where `key` lives, for people: a file path or an `s3://` URL.
    fn url(&self, key: &ObjectKey) -> String;
}

/// Opens the store the configuration names.
pub async fn open(location: &StoreLocation, s3: &S3Config) -> Result<Arc<dyn ObjectStore>, StoreError> {
    #[cfg(not(feature = "s3"))]
    let _ = s3;
    match location {
        StoreLocation::Local { path } => Ok(Arc::new(LocalStore::new(path.clone()))),
        #[cfg(feature = "s3")]
        StoreLocation::S3 { bucket, prefix } => Ok(Arc::new(S3Store::connect(bucket, prefix, s3).await?)),
        #[cfg(not(feature = "s3"))]
        StoreLocation::S3 { bucket, prefix } => Err(StoreError::io(
            "open",
            format!("s3://{bucket}/{prefix}"),
            "this build has no S3 support (the `s3` feature)",
        )),
    }
}

/// Whether `key` holds exactly `body` (adapters: a create-only write that found its key
/// taken checks for its own earlier attempt).
pub(crate) async fn holds(store: &dyn ObjectStore, key: &ObjectKey, body: &[u8]) -> bool {
    matches!(store.get(key).await, Ok(existing) if existing == body)
}

/// Writes `value` as pretty JSON.
pub async fn put_json<T: Serialize + ?Sized>(
    store: &dyn ObjectStore,
    key: &ObjectKey,
    value: &T,
    immutable: bool,
) -> Result<(), StoreError> {
    let body =
        serde_json::to_vec_pretty(value).map_err(|e| StoreError::io("serialize", store.url(key), e))?;
    if immutable {
        store.put_new(key, body.into()).await
    } else {
        store.put(key, body.into()).await
    }
}

pub async fn get_json<T: serde::de::DeserializeOwned>(
    store: &dyn ObjectStore,
    key: &ObjectKey,
) -> Result<T, StoreError> {
    let body = store.get(key).await?;
    serde_json::from_slice(&body).map_err(|e| StoreError::io("parse JSON of", store.url(key), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_reject_traversal_and_empty_segments() {
        for bad in ["", "/abs", "a//b", "a/../b", "..", "a/.", "a\\b", "a/b/", "a\nb"] {
            assert!(ObjectKey::new(bad).is_err(), "{bad:?} accepted");
        }
        let k = ObjectKey::new("raw/2023/x.json").unwrap();
        assert_eq!(k.file_name(), "x.json");
        assert_eq!(k.sibling("x.meta.json").unwrap().as_str(), "raw/2023/x.meta.json");
    }

    #[test]
    fn keys_deserialize_only_when_valid() {
        assert!(serde_json::from_str::<ObjectKey>("\"a/b\"").is_ok());
        assert!(serde_json::from_str::<ObjectKey>("\"../etc/passwd\"").is_err());
    }
}

//! Another store seen through a key prefix (the DVC remote inside the store, say).

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectKey, ObjectStore, StoreError};

/// Another store seen through a key prefix: `key` here is `<prefix>/key` there.
#[derive(Debug, Clone)]
pub struct Prefixed {
    inner: Arc<dyn ObjectStore>,
    prefix: String,
}

impl Prefixed {
    pub fn new(inner: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            inner,
            prefix: prefix.trim_matches('/').to_owned(),
        }
    }

    fn key(&self, key: &ObjectKey) -> Result<ObjectKey, StoreError> {
        ObjectKey::new(format!("{}/{}", self.prefix, key.as_str()))
    }
}

#[async_trait]
impl ObjectStore for Prefixed {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        self.inner.put(&self.key(key)?, body).await
    }
    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        self.inner.put_new(&self.key(key)?, body).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        self.inner.get(&self.key(key)?).await
    }
    async fn exists(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        self.inner.exists(&self.key(key)?).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.inner.delete(&self.key(key)?).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StoreError> {
        let strip = format!("{}/", self.prefix);
        Ok(self
            .inner
            .list(&format!("{strip}{prefix}"))
            .await?
            .into_iter()
            .filter_map(|k| {
                k.as_str()
                    .strip_prefix(&strip)
                    .and_then(|k| ObjectKey::new(k).ok())
            })
            .collect())
    }
    fn url(&self, key: &ObjectKey) -> String {
        self.key(key).map(|k| self.inner.url(&k)).unwrap_or_default()
    }
}

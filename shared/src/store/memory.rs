//! An in-memory object store, for tests and for callers that want no disk.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectKey, ObjectStore, StoreError};

#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    objects: Arc<Mutex<BTreeMap<ObjectKey, Bytes>>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<ObjectKey, Bytes>> {
        // A panic while holding the lock cannot leave the map half-written.
        self.objects.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl ObjectStore for MemoryStore {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        self.lock().insert(key.clone(), body);
        Ok(())
    }

    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        let mut map = self.lock();
        match map.get(key) {
            Some(existing) if *existing == body => return Ok(()),
            Some(_) => return Err(StoreError::AlreadyExists { url: self.url(key) }),
            None => {}
        }
        map.insert(key.clone(), body);
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        self.lock()
            .get(key)
            .cloned()
            .ok_or_else(|| StoreError::NotFound { url: self.url(key) })
    }

    async fn exists(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        Ok(self.lock().contains_key(key))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.lock().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StoreError> {
        Ok(self
            .lock()
            .keys()
            .filter(|k| k.as_str().starts_with(prefix))
            .cloned()
            .collect())
    }

    fn url(&self, key: &ObjectKey) -> String {
        format!("memory://{key}")
    }
}

//! A store seen through one function's grants ([`crate::layout::access`]): what the
//! function's IAM role allows on AWS, enforced on every store, so a stage that touches
//! a folder its role does not grant fails in every local run, not first on AWS.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectKey, ObjectStore, StoreError};

/// What one function may do in one folder of the store. Reading includes listing
/// (`s3:ListBucket` on the prefix): without it S3 answers a missing key with 403, not
/// 404, and "not there yet" could not be told from "not allowed".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Grant {
    pub prefix: &'static str,
    pub read: bool,
    pub write: bool,
    pub delete: bool,
}

#[derive(Debug, Clone)]
pub struct Scoped {
    inner: Arc<dyn ObjectStore>,
    function: &'static str,
    grants: &'static [Grant],
    /// Where this store sits in the layout (`dvc/` for a DVC remote inside the store).
    root: String,
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
    Delete,
}

impl Scoped {
    /// `inner` as `function` may use it; `root` is the store's place in the layout
    /// (empty for the store itself).
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        function: &'static str,
        grants: &'static [Grant],
        root: &str,
    ) -> Self {
        Self {
            inner,
            function,
            grants,
            root: root.to_owned(),
        }
    }

    fn check(
        &self,
        op: Op,
        operation: &'static str,
        path: &str,
        url: impl FnOnce() -> String,
    ) -> Result<(), StoreError> {
        let path = format!("{}{path}", self.root);
        let allowed = self.grants.iter().any(|g| {
            path.starts_with(g.prefix)
                && match op {
                    Op::Read => g.read,
                    Op::Write => g.write,
                    Op::Delete => g.delete,
                }
        });
        if allowed {
            return Ok(());
        }
        tracing::error!(
            function = self.function,
            operation,
            key = %path,
            "outside the function's grants (layout::access)"
        );
        Err(StoreError::AccessDenied {
            operation,
            url: format!(
                "{} (rps-{} has no such grant in layout::access)",
                url(),
                self.function
            ),
        })
    }

    fn key_check(&self, op: Op, operation: &'static str, key: &ObjectKey) -> Result<(), StoreError> {
        self.check(op, operation, key.as_str(), || self.inner.url(key))
    }
}

#[async_trait]
impl ObjectStore for Scoped {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        self.key_check(Op::Write, "put", key)?;
        self.inner.put(key, body).await
    }
    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        self.key_check(Op::Write, "put", key)?;
        self.inner.put_new(key, body).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        self.key_check(Op::Read, "get", key)?;
        self.inner.get(key).await
    }
    async fn exists(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        self.key_check(Op::Read, "head", key)?;
        self.inner.exists(key).await
    }
    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        self.key_check(Op::Delete, "delete", key)?;
        self.inner.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StoreError> {
        self.check(Op::Read, "list", prefix, || format!("the keys under {prefix:?}"))?;
        self.inner.list(prefix).await
    }
    fn url(&self, key: &ObjectKey) -> String {
        self.inner.url(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::new(s).unwrap()
    }

    #[tokio::test]
    async fn only_what_the_function_is_granted_goes_through() {
        let inner: Arc<dyn ObjectStore> = Arc::new(MemoryStore::new());
        inner
            .put(&key("raw/a.json"), Bytes::from_static(b"{}"))
            .await
            .unwrap();
        let validate = Scoped::new(
            inner.clone(),
            "validate",
            crate::layout::access("validate").unwrap(),
            "",
        );
        assert_eq!(
            validate.get(&key("raw/a.json")).await.unwrap(),
            Bytes::from_static(b"{}")
        );
        assert_eq!(validate.list("raw/").await.unwrap(), [key("raw/a.json")]);
        validate.put(&key("quality/a.json"), Bytes::new()).await.unwrap();
        let err = validate.put(&key("raw/b.json"), Bytes::new()).await.unwrap_err();
        assert!(
            matches!(err, StoreError::AccessDenied { operation: "put", .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("rps-validate has no such grant"),
            "{err}"
        );
        assert!(matches!(
            validate.get(&key("models/m/x")).await,
            Err(StoreError::AccessDenied { .. })
        ));
        assert!(matches!(
            validate.list("").await,
            Err(StoreError::AccessDenied { .. })
        ));
        assert!(
            !inner.exists(&key("raw/b.json")).await.unwrap(),
            "a refused write wrote"
        );

        // The API may append its answers to their own folder, but not read them back,
        // nor touch the scheduled forecasts, nor delete.
        let api = Scoped::new(inner.clone(), "api", crate::layout::access("api").unwrap(), "");
        api.put_new(&key("served/m/x.jsonl"), Bytes::new()).await.unwrap();
        assert!(api.get(&key("served/m/x.jsonl")).await.is_err());
        assert!(matches!(
            api.put_new(&key("forecasts/m/x.jsonl"), Bytes::new()).await,
            Err(StoreError::AccessDenied { .. })
        ));
        assert!(api.delete(&key("raw/a.json")).await.is_err());

        // A DVC remote inside the store is checked at its place in the layout.
        let dvc = Scoped::new(
            inner.clone(),
            "train",
            crate::layout::access("train").unwrap(),
            "dvc/",
        );
        assert!(matches!(
            dvc.get(&key("files/md5/ab/cd")).await,
            Err(StoreError::NotFound { .. })
        ));
        assert!(dvc.put(&key("files/md5/ab/cd"), Bytes::new()).await.is_err());
    }
}

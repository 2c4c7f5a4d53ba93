//! A local directory as object store: the embedded default.
//!
//! Atomicity comes from the file system: a write goes to a hidden temporary file in
//! the target folder, is flushed to disk, then renamed over the key (replace) or
//! hard-linked to it (create only: `link` fails if the name exists, atomically).

use std::io::Write;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use super::{ObjectKey, ObjectStore, StoreError};

#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
}

const TMP_PREFIX: &str = ".tmp-";

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &ObjectKey) -> PathBuf {
        self.root.join(key.as_str())
    }

    /// Writes `body` to a temporary file beside `target` and syncs it.
    fn write_temp(&self, target: &Path, body: &[u8]) -> std::io::Result<tempfile_path::TempPath> {
        let dir = target.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir)?;
        let tmp = dir.join(format!(
            "{TMP_PREFIX}{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        let guard = tempfile_path::TempPath(tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&guard.0)?;
        f.write_all(body)?;
        f.sync_all()?;
        Ok(guard)
    }

    fn put_blocking(&self, key: &ObjectKey, body: &[u8], create_only: bool) -> Result<(), StoreError> {
        let target = self.path(key);
        let url = target.display().to_string();
        let tmp = self
            .write_temp(&target, body)
            .map_err(|e| StoreError::io("write", &url, e))?;
        if create_only {
            match std::fs::hard_link(&tmp.0, &target) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    Err(StoreError::AlreadyExists { url })
                }
                Err(e) => Err(StoreError::io("create", url, e)),
            }
        } else {
            std::fs::rename(&tmp.0, &target).map_err(|e| StoreError::io("replace", url, e))
        }
    }
}

/// A path removed when dropped (the temporary file, whatever happened).
mod tempfile_path {
    pub struct TempPath(pub std::path::PathBuf);
    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::io("run", "local store task", e))?
}

#[async_trait]
impl ObjectStore for LocalStore {
    async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        let (this, key) = (self.clone(), key.clone());
        blocking(move || this.put_blocking(&key, &body, false)).await
    }

    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
        let (this, k, b) = (self.clone(), key.clone(), body.clone());
        match blocking(move || this.put_blocking(&k, &b, true)).await {
            Err(e @ StoreError::AlreadyExists { .. }) if !super::holds(self, key, &body).await => Err(e),
            Err(StoreError::AlreadyExists { .. }) => Ok(()),
            other => other,
        }
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(b.into()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::NotFound {
                url: path.display().to_string(),
            }),
            Err(e) => Err(StoreError::io("read", path.display().to_string(), e)),
        }
    }

    async fn exists(&self, key: &ObjectKey) -> Result<bool, StoreError> {
        let path = self.path(key);
        tokio::fs::try_exists(&path)
            .await
            .map_err(|e| StoreError::io("stat", path.display().to_string(), e))
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let path = self.path(key);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io("delete", path.display().to_string(), e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StoreError> {
        let root = self.root.clone();
        let prefix = prefix.to_owned();
        blocking(move || {
            // Walk only the folder the prefix names, then filter by the whole prefix.
            let dir_part = prefix.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
            let start = root.join(dir_part);
            let mut out = Vec::new();
            let mut stack = vec![start];
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(StoreError::io("list", dir.display().to_string(), e)),
                };
                for entry in entries {
                    let entry = entry.map_err(|e| StoreError::io("list", dir.display().to_string(), e))?;
                    let path = entry.path();
                    let name = entry.file_name();
                    if name.to_string_lossy().starts_with(TMP_PREFIX) {
                        continue;
                    }
                    let ft = entry
                        .file_type()
                        .map_err(|e| StoreError::io("stat", path.display().to_string(), e))?;
                    if ft.is_dir() {
                        stack.push(path);
                    } else if let Ok(rel) = path.strip_prefix(&root) {
                        let rel = rel.to_string_lossy().replace('\\', "/");
                        if rel.starts_with(&prefix) {
                            if let Ok(k) = ObjectKey::new(rel) {
                                out.push(k);
                            }
                        }
                    }
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    fn url(&self, key: &ObjectKey) -> String {
        self.path(key).display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> ObjectKey {
        ObjectKey::new(s).unwrap()
    }

    #[tokio::test]
    async fn put_get_list_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store
            .put(&key("a/b/one.json"), Bytes::from_static(b"1"))
            .await
            .unwrap();
        store
            .put(&key("a/two.json"), Bytes::from_static(b"2"))
            .await
            .unwrap();
        store
            .put(&key("c/three"), Bytes::from_static(b"3"))
            .await
            .unwrap();
        assert_eq!(&store.get(&key("a/b/one.json")).await.unwrap()[..], b"1");
        let listed: Vec<_> = store
            .list("a/")
            .await
            .unwrap()
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(listed, ["a/b/one.json", "a/two.json"]);
        let listed = store.list("a/t").await.unwrap();
        assert_eq!(listed, [key("a/two.json")]);
        assert_eq!(store.list("").await.unwrap().len(), 3);
        assert!(store.list("missing/").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn put_replaces_but_put_new_refuses_to() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let k = key("raw/x.json");
        store.put_new(&k, Bytes::from_static(b"first")).await.unwrap();
        let err = store
            .put_new(&k, Bytes::from_static(b"second"))
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::AlreadyExists { .. }), "{err}");
        assert_eq!(&store.get(&k).await.unwrap()[..], b"first");
        store.put(&k, Bytes::from_static(b"third")).await.unwrap();
        assert_eq!(&store.get(&k).await.unwrap()[..], b"third");
        // No temporary files are left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("raw"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["x.json"]);
    }

    #[tokio::test]
    async fn missing_objects_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let err = store.get(&key("nope")).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
        assert!(!store.exists(&key("nope")).await.unwrap());
    }

    #[tokio::test]
    async fn concurrent_readers_never_see_a_partial_object() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let k = key("big.bin");
        let a = Bytes::from(vec![b'a'; 4 << 20]);
        let b = Bytes::from(vec![b'b'; 4 << 20]);
        store.put(&k, a.clone()).await.unwrap();
        let writer = {
            let (store, k, a, b) = (store.clone(), k.clone(), a.clone(), b.clone());
            tokio::spawn(async move {
                for i in 0..20 {
                    let body = if i % 2 == 0 { b.clone() } else { a.clone() };
                    store.put(&k, body).await.unwrap();
                }
            })
        };
        for _ in 0..40 {
            let got = store.get(&k).await.unwrap();
            assert!(got == a || got == b, "a reader saw a partial object");
        }
        writer.await.unwrap();
    }
}

//! The registry kept in the object store, for runs without a tracking server.
//!
//! ```text
//! registry/<name>/versions/<000001>.json        the version as registered (create-only)
//! registry/<name>/versions/<000001>/tags/<key>  a tag written later, one object each
//! registry/<name>/versions/<000001>/stage       its legacy stage
//! registry/<name>/aliases/<alias>               the version an alias points at
//! ```
//!
//! Every write touches one object and no write reads another first, so concurrent
//! writers (training moving `@candidate` while a promotion moves `@production`, two
//! stages tagging one version) never lose each other's updates. Version numbers are
//! claimed with a create-only write, so two writers never get the same number. Moving
//! one alias is last-writer-wins, as in MLflow; promotions serialise on their lease.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::Utc;

use super::{NewVersion, Registry, RegistryError, StageOutcome, VersionInfo};
use crate::layout::BUNDLE_FILE;
use crate::store::{self, ObjectKey, ObjectStore, StoreError};

#[derive(Debug, Clone)]
pub struct LocalRegistry {
    store: Arc<dyn ObjectStore>,
}

/// What one listing of a model's folder holds.
#[derive(Default)]
struct Folder {
    versions: BTreeMap<u64, ObjectKey>,
    aliases: BTreeMap<String, ObjectKey>,
}

impl LocalRegistry {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    fn root(name: &str) -> String {
        format!("registry/{name}/")
    }

    fn version_key(name: &str, version: u64) -> Result<ObjectKey, StoreError> {
        ObjectKey::new(format!("registry/{name}/versions/{version:06}.json"))
    }

    fn version_dir(name: &str, version: u64) -> String {
        format!("registry/{name}/versions/{version:06}/")
    }

    fn tag_key(name: &str, version: u64, key: &str) -> Result<ObjectKey, RegistryError> {
        if key.contains('/') {
            return Err(RegistryError::Invalid(format!("the tag name {key:?} has a '/'")));
        }
        Ok(ObjectKey::new(format!(
            "{}tags/{key}",
            Self::version_dir(name, version)
        ))?)
    }

    fn stage_key(name: &str, version: u64) -> Result<ObjectKey, StoreError> {
        ObjectKey::new(format!("{}stage", Self::version_dir(name, version)))
    }

    fn alias_key(name: &str, alias: &str) -> Result<ObjectKey, StoreError> {
        ObjectKey::new(format!("registry/{name}/aliases/{alias}"))
    }

    fn number(version: &str) -> Result<u64, RegistryError> {
        version
            .parse()
            .map_err(|_| RegistryError::Invalid(format!("{version:?} is not a version number")))
    }

    async fn folder(&self, name: &str) -> Result<Folder, RegistryError> {
        let root = Self::root(name);
        let mut folder = Folder::default();
        for key in self.store.list(&root).await? {
            let rest = &key.as_str()[root.len()..];
            if let Some(file) = rest.strip_prefix("versions/")
                && let Some(n) = file.strip_suffix(".json").and_then(|n| n.parse().ok())
            {
                folder.versions.insert(n, key);
            } else if let Some(alias) = rest.strip_prefix("aliases/") {
                folder.aliases.insert(alias.to_owned(), key);
            }
        }
        Ok(folder)
    }

    async fn text(&self, key: &ObjectKey) -> Result<Option<String>, RegistryError> {
        match self.store.get(key).await {
            Ok(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Every alias and the version it points at.
    async fn aliases(&self, folder: &Folder) -> Result<BTreeMap<String, String>, RegistryError> {
        let mut out = BTreeMap::new();
        for (alias, key) in &folder.aliases {
            if let Some(v) = self.text(key).await? {
                out.insert(alias.clone(), v.trim().to_owned());
            }
        }
        Ok(out)
    }

    /// A version as registered, with the tags and stage written since and its aliases.
    async fn version(
        &self,
        name: &str,
        n: u64,
        aliases: &BTreeMap<String, String>,
    ) -> Result<VersionInfo, RegistryError> {
        let mut v: VersionInfo =
            match store::get_json(self.store.as_ref(), &Self::version_key(name, n)?).await {
                Ok(v) => v,
                Err(StoreError::NotFound { .. }) => {
                    return Err(RegistryError::NotFound(format!(
                        "model {name} has no version {n} in {}",
                        self.describe()
                    )));
                }
                Err(e) => return Err(e.into()),
            };
        let tags_prefix = format!("{}tags/", Self::version_dir(name, n));
        for key in self.store.list(&tags_prefix).await? {
            if let Some(value) = self.text(&key).await? {
                v.tags.insert(key.file_name().to_owned(), value);
            }
        }
        if let Some(stage) = self.text(&Self::stage_key(name, n)?).await? {
            v.stage = Some(stage);
        }
        v.aliases = aliases
            .iter()
            .filter(|(_, ver)| **ver == v.version)
            .map(|(a, _)| a.clone())
            .collect();
        Ok(v)
    }
}

#[async_trait]
impl Registry for LocalRegistry {
    fn kind(&self) -> &'static str {
        "the local registry"
    }

    fn describe(&self) -> String {
        format!(
            "the local registry in {}",
            self.store.url(&ObjectKey::new("registry").expect("a valid key"))
        )
    }

    async fn create_version(&self, new: NewVersion) -> Result<VersionInfo, RegistryError> {
        let folder = self.folder(&new.name).await?;
        let mut next = folder.versions.keys().next_back().map_or(1, |n| n + 1);
        loop {
            let v = VersionInfo {
                name: new.name.clone(),
                version: next.to_string(),
                aliases: Vec::new(),
                run_id: new.run_id.clone(),
                source: new.source.clone(),
                stage: None,
                created_at: Some(Utc::now()),
                tags: new.tags.clone(),
            };
            match store::put_json(
                self.store.as_ref(),
                &Self::version_key(&new.name, next)?,
                &v,
                true,
            )
            .await
            {
                Ok(()) => return Ok(v),
                Err(StoreError::AlreadyExists { .. }) => next += 1,
                Err(e) => return Err(e.into()),
            }
        }
    }

    async fn get_version(&self, name: &str, version: &str) -> Result<VersionInfo, RegistryError> {
        let n = Self::number(version)?;
        let aliases = self.aliases(&self.folder(name).await?).await?;
        self.version(name, n, &aliases).await
    }

    async fn get_alias(&self, name: &str, alias: &str) -> Result<VersionInfo, RegistryError> {
        let version = self
            .text(&Self::alias_key(name, alias)?)
            .await?
            .ok_or_else(|| RegistryError::NotFound(format!("model {name} has no alias @{alias}")))?;
        self.get_version(name, version.trim()).await
    }

    async fn list_versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        let folder = self.folder(name).await?;
        let aliases = self.aliases(&folder).await?;
        let mut out = Vec::with_capacity(folder.versions.len());
        for n in folder.versions.keys().rev() {
            out.push(self.version(name, *n, &aliases).await?);
        }
        Ok(out)
    }

    async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), RegistryError> {
        let n = Self::number(version)?;
        if !self.store.exists(&Self::version_key(name, n)?).await? {
            return Err(RegistryError::NotFound(format!(
                "model {name} has no version {version} in {}",
                self.describe()
            )));
        }
        let key = Self::alias_key(name, alias)?;
        self.store.put(&key, Bytes::from(n.to_string())).await?;
        Ok(())
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        Ok(self.store.delete(&Self::alias_key(name, alias)?).await?)
    }

    async fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError> {
        let n = Self::number(version)?;
        if !self.store.exists(&Self::version_key(name, n)?).await? {
            return Err(RegistryError::NotFound(format!(
                "model {name} has no version {version}"
            )));
        }
        let tag = Self::tag_key(name, n, key)?;
        self.store.put(&tag, Bytes::from(value.to_owned())).await?;
        Ok(())
    }

    async fn set_stage(&self, name: &str, version: &str, stage: &str) -> Result<StageOutcome, RegistryError> {
        let n = Self::number(version)?;
        self.store
            .put(&Self::stage_key(name, n)?, Bytes::from(stage.to_owned()))
            .await?;
        Ok(StageOutcome::Done)
    }

    async fn download_bundle(&self, v: &VersionInfo) -> Result<Bytes, RegistryError> {
        let key = ObjectKey::new(format!("{}/{BUNDLE_FILE}", v.source.trim_end_matches('/')))?;
        Ok(self.store.get(&key).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    fn new_version(source: &str) -> NewVersion {
        NewVersion {
            name: "m".into(),
            source: source.into(),
            run_id: None,
            tags: BTreeMap::from([("k".to_string(), "v".to_string())]),
            description: String::new(),
        }
    }

    /// A store whose every call yields first, as a remote store's would: concurrent
    /// writers interleave between their reads and writes.
    #[derive(Debug)]
    struct Yielding(MemoryStore);

    #[async_trait]
    impl ObjectStore for Yielding {
        async fn put(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
            tokio::task::yield_now().await;
            self.0.put(key, body).await
        }
        async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<(), StoreError> {
            tokio::task::yield_now().await;
            self.0.put_new(key, body).await
        }
        async fn get(&self, key: &ObjectKey) -> Result<Bytes, StoreError> {
            tokio::task::yield_now().await;
            self.0.get(key).await
        }
        async fn exists(&self, key: &ObjectKey) -> Result<bool, StoreError> {
            tokio::task::yield_now().await;
            self.0.exists(key).await
        }
        async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
            tokio::task::yield_now().await;
            self.0.delete(key).await
        }
        async fn list(&self, prefix: &str) -> Result<Vec<ObjectKey>, StoreError> {
            tokio::task::yield_now().await;
            self.0.list(prefix).await
        }
        fn url(&self, key: &ObjectKey) -> String {
            self.0.url(key)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_alias_moves_and_tag_writes_lose_nothing() {
        let reg = Arc::new(LocalRegistry::new(Arc::new(Yielding(MemoryStore::new()))));
        for _ in 0..2 {
            reg.create_version(new_version("models/m/a")).await.unwrap();
        }
        reg.set_alias("m", "production", "1").await.unwrap();
        // Training moves @candidate and a release moves @staging while a promotion moves
        // @production; promotion tags a version while training tags it too.
        let mut tasks = Vec::new();
        for i in 0..16 {
            let reg = reg.clone();
            tasks.push(tokio::spawn(async move {
                let (alias, version) = match i % 3 {
                    0 => ("candidate", "2"),
                    1 => ("staging", "2"),
                    _ => ("production", "2"),
                };
                reg.set_alias("m", alias, version).await.unwrap();
                reg.set_version_tag("m", "2", &format!("k{i}"), "v")
                    .await
                    .unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        for alias in ["candidate", "staging", "production"] {
            assert_eq!(
                reg.get_alias("m", alias).await.unwrap().version,
                "2",
                "@{alias} was lost"
            );
        }
        let v = reg.get_version("m", "2").await.unwrap();
        for i in 0..16 {
            assert_eq!(
                v.tag(&format!("k{i}")),
                Some("v"),
                "tag k{i} was lost: {:?}",
                v.tags
            );
        }
        assert_eq!(v.tag("k"), Some("v"), "the tags given at creation stay");
    }

    #[tokio::test]
    async fn versions_number_up_and_aliases_move() {
        let reg = LocalRegistry::new(Arc::new(MemoryStore::new()));
        assert!(reg.list_versions("m").await.unwrap().is_empty());
        let v1 = reg.create_version(new_version("models/m/a")).await.unwrap();
        let v2 = reg.create_version(new_version("models/m/b")).await.unwrap();
        assert_eq!((v1.version.as_str(), v2.version.as_str()), ("1", "2"));
        reg.set_alias("m", "candidate", "2").await.unwrap();
        reg.set_alias("m", "production", "1").await.unwrap();
        assert_eq!(reg.get_alias("m", "candidate").await.unwrap().version, "2");
        let listed = reg.list_versions("m").await.unwrap();
        assert_eq!(listed[0].aliases, ["candidate"]);
        assert_eq!(listed[1].aliases, ["production"]);
        reg.delete_alias("m", "candidate").await.unwrap();
        assert!(reg.get_alias("m", "candidate").await.unwrap_err().is_not_found());
        assert!(reg.set_alias("m", "x", "9").await.unwrap_err().is_not_found());
        reg.set_version_tag("m", "1", "promoted", "yes").await.unwrap();
        assert_eq!(
            reg.get_version("m", "1").await.unwrap().tag("promoted"),
            Some("yes")
        );
        assert_eq!(reg.get_version("m", "1").await.unwrap().aliases, ["production"]);
    }
}

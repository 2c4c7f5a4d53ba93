//! The registry kept in the object store, for runs without a tracking server.
//!
//! ```text
//! registry/<name>/versions/<000001>.json   one VersionInfo per version (aliases not kept here)
//! registry/<name>/aliases.json             {"candidate": "3", "production": "2"}
//! ```
//! Version numbers are claimed with a create-only write, so two writers never get the
//! same number. Alias moves are last-writer-wins, as in MLflow.

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

type Aliases = BTreeMap<String, String>;

impl LocalRegistry {
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        Self { store }
    }

    fn version_key(name: &str, version: u64) -> Result<ObjectKey, StoreError> {
        ObjectKey::new(format!("registry/{name}/versions/{version:06}.json"))
    }

    fn aliases_key(name: &str) -> Result<ObjectKey, StoreError> {
        ObjectKey::new(format!("registry/{name}/aliases.json"))
    }

    async fn aliases(&self, name: &str) -> Result<Aliases, RegistryError> {
        match store::get_json(self.store.as_ref(), &Self::aliases_key(name)?).await {
            Ok(a) => Ok(a),
            Err(StoreError::NotFound { .. }) => Ok(Aliases::new()),
            Err(e) => Err(e.into()),
        }
    }

    async fn stored(&self, name: &str, version: &str) -> Result<VersionInfo, RegistryError> {
        let n: u64 = version
            .parse()
            .map_err(|_| RegistryError::Invalid(format!("{version:?} is not a version number")))?;
        match store::get_json(self.store.as_ref(), &Self::version_key(name, n)?).await {
            Ok(v) => Ok(v),
            Err(StoreError::NotFound { .. }) => Err(RegistryError::NotFound(format!(
                "model {name} has no version {version} in {}",
                self.describe()
            ))),
            Err(e) => Err(e.into()),
        }
    }

    fn with_aliases(mut v: VersionInfo, aliases: &Aliases) -> VersionInfo {
        v.aliases = aliases
            .iter()
            .filter(|(_, ver)| **ver == v.version)
            .map(|(a, _)| a.clone())
            .collect();
        v
    }

    async fn write_version(&self, v: &VersionInfo) -> Result<(), RegistryError> {
        let key = Self::version_key(&v.name, v.number())?;
        let mut stored = v.clone();
        stored.aliases.clear();
        store::put_json(self.store.as_ref(), &key, &stored, false).await?;
        Ok(())
    }
}

#[async_trait]
impl Registry for LocalRegistry {
    fn describe(&self) -> String {
        format!(
            "the local registry in {}",
            self.store.url(&ObjectKey::new("registry").expect("a valid key"))
        )
    }

    async fn create_version(&self, new: NewVersion) -> Result<VersionInfo, RegistryError> {
        let existing = self.list_versions(&new.name).await?;
        let mut next = existing.first().map_or(1, |v| v.number() + 1);
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
        let v = self.stored(name, version).await?;
        Ok(Self::with_aliases(v, &self.aliases(name).await?))
    }

    async fn get_alias(&self, name: &str, alias: &str) -> Result<VersionInfo, RegistryError> {
        let aliases = self.aliases(name).await?;
        let version = aliases
            .get(alias)
            .ok_or_else(|| RegistryError::NotFound(format!("model {name} has no alias @{alias}")))?;
        Ok(Self::with_aliases(self.stored(name, version).await?, &aliases))
    }

    async fn list_versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        let aliases = self.aliases(name).await?;
        let mut out = Vec::new();
        for key in self.store.list(&format!("registry/{name}/versions/")).await? {
            let v: VersionInfo = store::get_json(self.store.as_ref(), &key).await?;
            out.push(Self::with_aliases(v, &aliases));
        }
        out.sort_by_key(|v| std::cmp::Reverse(v.number()));
        Ok(out)
    }

    async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), RegistryError> {
        self.stored(name, version).await?;
        let mut aliases = self.aliases(name).await?;
        aliases.insert(alias.to_owned(), version.to_owned());
        store::put_json(self.store.as_ref(), &Self::aliases_key(name)?, &aliases, false).await?;
        Ok(())
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        let mut aliases = self.aliases(name).await?;
        if aliases.remove(alias).is_some() {
            store::put_json(self.store.as_ref(), &Self::aliases_key(name)?, &aliases, false).await?;
        }
        Ok(())
    }

    async fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError> {
        let mut v = self.stored(name, version).await?;
        v.tags.insert(key.to_owned(), value.to_owned());
        self.write_version(&v).await
    }

    async fn set_stage(&self, name: &str, version: &str, stage: &str) -> Result<StageOutcome, RegistryError> {
        let mut v = self.stored(name, version).await?;
        v.stage = Some(stage.to_owned());
        self.write_version(&v).await?;
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

//! The registry on an MLflow server: versions, aliases, tags and legacy stages.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{TimeZone, Utc};

use super::{NewVersion, Registry, RegistryError, StageOutcome, VersionInfo};
use crate::layout::BUNDLE_FILE;
use crate::mlflow::{MlflowClient, MlflowError, ModelVersion, Tag, tags_map};

#[derive(Debug, Clone)]
pub struct MlflowRegistry {
    client: MlflowClient,
}

impl MlflowRegistry {
    pub fn new(client: MlflowClient) -> Self {
        Self { client }
    }

    pub fn client(&self) -> &MlflowClient {
        &self.client
    }
}

fn info(v: ModelVersion) -> VersionInfo {
    VersionInfo {
        stage: Some(v.current_stage.clone()).filter(|s| !s.is_empty() && s != "None"),
        created_at: v
            .creation_timestamp
            .and_then(|ms| Utc.timestamp_millis_opt(ms).single()),
        run_id: Some(v.run_id.clone()).filter(|r| !r.is_empty()),
        tags: tags_map(&v.tags),
        name: v.name,
        version: v.version,
        aliases: v.aliases,
        source: v.source,
    }
}

#[async_trait]
impl Registry for MlflowRegistry {
    fn kind(&self) -> &'static str {
        "MLflow"
    }

    fn describe(&self) -> String {
        format!("MLflow at {}", self.client.server())
    }

    fn version_url(&self, name: &str, version: &str) -> Option<String> {
        Some(self.client.version_url(name, version))
    }

    async fn create_version(&self, new: NewVersion) -> Result<VersionInfo, RegistryError> {
        let run_id = new.run_id.as_deref().ok_or_else(|| {
            RegistryError::Invalid("an MLflow model version needs the run that produced it".into())
        })?;
        self.client.ensure_registered_model(&new.name).await?;
        let tags: Vec<Tag> = new.tags.iter().map(|(k, v)| Tag::new(k, v)).collect();
        let v = self
            .client
            .create_model_version(&new.name, &new.source, run_id, &tags, &new.description)
            .await?;
        Ok(info(v))
    }

    async fn get_version(&self, name: &str, version: &str) -> Result<VersionInfo, RegistryError> {
        Ok(info(self.client.get_model_version(name, version).await?))
    }

    async fn get_alias(&self, name: &str, alias: &str) -> Result<VersionInfo, RegistryError> {
        Ok(info(self.client.get_version_by_alias(name, alias).await?))
    }

    async fn list_versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
        // `model-versions/search` carries no aliases; the registered model does.
        let model = match self.client.get_registered_model(name).await {
            Ok(m) => m,
            Err(e) if e.is_not_found() => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut versions: Vec<VersionInfo> = self
            .client
            .search_model_versions(name)
            .await?
            .into_iter()
            .map(info)
            .collect();
        for v in &mut versions {
            v.aliases = model
                .aliases
                .iter()
                .filter(|a| a.version == v.version)
                .map(|a| a.alias.clone())
                .collect();
            v.aliases.sort();
        }
        versions.sort_by_key(|v| std::cmp::Reverse(v.number()));
        Ok(versions)
    }

    async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), RegistryError> {
        Ok(self.client.set_alias(name, alias, version).await?)
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
        Ok(self.client.delete_alias(name, alias).await?)
    }

    async fn set_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), RegistryError> {
        Ok(self
            .client
            .set_model_version_tag(name, version, key, value)
            .await?)
    }

    async fn set_stage(&self, name: &str, version: &str, stage: &str) -> Result<StageOutcome, RegistryError> {
        match self.client.transition_stage(name, version, stage, false).await {
            Ok(_) => Ok(StageOutcome::Done),
            Err(e @ MlflowError::Unsupported { .. }) => Ok(StageOutcome::Unsupported(e.to_string())),
            Err(MlflowError::Api { message, .. }) if message.to_lowercase().contains("stage") => {
                Ok(StageOutcome::Unsupported(message))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn download_bundle(&self, v: &VersionInfo) -> Result<Bytes, RegistryError> {
        let uri = format!("{}/{BUNDLE_FILE}", v.source.trim_end_matches('/'));
        Ok(self.client.download_artifact(&uri).await?)
    }
}

//! The model registry's endpoints: registered models, versions, tags, aliases and the
//! legacy stages, on the same client ([`MlflowClient`]).

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::client::MlflowClient;
use super::error::MlflowError;
use super::types::{ModelVersion, RegisteredModel, Tag};
use crate::tags::aliases;

impl MlflowClient {
    /// Creates the registered model unless it exists.
    pub async fn ensure_registered_model(&self, name: &str) -> Result<(), MlflowError> {
        match self
            .post::<Value>("registered-models/create", json!({ "name": name }))
            .await
        {
            Ok(_) => Ok(()),
            Err(MlflowError::Api { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => Ok(()),
            Err(e) => Err(e),
        }
    }

    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            registered_model: RegisteredModel,
        }
        let r: R = self.get("registered-models/get", &[("name", name)]).await?;
        Ok(r.registered_model)
    }

    pub async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
        tags: &[Tag],
        description: &str,
    ) -> Result<ModelVersion, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersion,
        }
        let r: R = self
            .post(
                "model-versions/create",
                json!({ "name": name, "source": source, "run_id": run_id, "tags": tags, "description": description }),
            )
            .await?;
        Ok(r.model_version)
    }

    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersion,
        }
        let r: R = self
            .get("model-versions/get", &[("name", name), ("version", version)])
            .await?;
        Ok(r.model_version)
    }

    /// Every version of a model (all pages).
    pub async fn search_model_versions(&self, name: &str) -> Result<Vec<ModelVersion>, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            model_versions: Vec<ModelVersion>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let filter = format!("name='{}'", name.replace('\'', "\\'"));
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("filter", filter.as_str()), ("max_results", "200")];
            if let Some(t) = &token {
                q.push(("page_token", t));
            }
            let r: R = self.get("model-versions/search", &q).await?;
            out.extend(r.model_versions);
            match r.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) if token.as_deref() == Some(t.as_str()) => {
                    return Err(MlflowError::Decode {
                        endpoint: "model-versions/search".into(),
                        message: format!(
                            "the server sent the same page token twice ({t}); stopping instead of looping"
                        ),
                    });
                }
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(out)
    }

    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        let _: Value = self
            .post(
                "model-versions/set-tag",
                json!({ "name": name, "version": version, "key": key, "value": value }),
            )
            .await?;
        Ok(())
    }

    pub async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), MlflowError> {
        if aliases::is_reserved(alias) {
            return Err(MlflowError::Invalid(format!(
                "the alias {alias:?} is reserved by MLflow (latest and v<N> are)"
            )));
        }
        let _: Value = self
            .post(
                "registered-models/alias",
                json!({ "name": name, "alias": alias, "version": version }),
            )
            .await?;
        Ok(())
    }

    /// The version an alias points at; `NotFound` if the alias is not set (MLflow
    /// answers that with a 400).
    pub async fn get_version_by_alias(&self, name: &str, alias: &str) -> Result<ModelVersion, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersion,
        }
        match self
            .get::<R>("registered-models/alias", &[("name", name), ("alias", alias)])
            .await
        {
            Ok(r) => Ok(r.model_version),
            Err(MlflowError::Api {
                server,
                endpoint,
                code,
                message,
                ..
            }) if code == "INVALID_PARAMETER_VALUE" && message.contains("not found") => {
                Err(MlflowError::NotFound {
                    server,
                    endpoint,
                    message: format!("model {name} has no alias @{alias}"),
                })
            }
            Err(e) => Err(e),
        }
    }

    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), MlflowError> {
        let body = json!({ "name": name, "alias": alias });
        let _: Value = self
            .call(Method::DELETE, "registered-models/alias", &[], Some(&body))
            .await?;
        Ok(())
    }

    /// The legacy stage transition (deprecated in MLflow 3, still shown by some UIs).
    pub async fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing: bool,
    ) -> Result<ModelVersion, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            model_version: ModelVersion,
        }
        let r: R = self
            .post(
                "model-versions/transition-stage",
                json!({ "name": name, "version": version, "stage": stage, "archive_existing_versions": archive_existing }),
            )
            .await?;
        Ok(r.model_version)
    }
}

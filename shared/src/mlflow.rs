//! A client for the MLflow REST API (tracking, artifacts through the proxy, and the model
//! registry), in plain reqwest + serde: no Python at run time.
//!
//! Quirks it handles: POSTs need `Content-Type: application/json`; ids and versions are
//! strings; param values must be strings; a metric needs a timestamp in ms; a missing
//! alias is a 400, not a 404; `latest` and `v<N>` are reserved alias names; deleting an
//! alias takes a JSON body. 5xx and connection errors are retried, bounded; a 4xx quotes
//! MLflow's `error_code` and `message`; an endpoint an older server lacks (a plain 404)
//! is reported as that server not supporting the feature.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::config::{MlflowAuth, MlflowConfig};
use crate::http::{RetryPolicy, error_chain};

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error(
        "MLflow at {server} refused the credentials (HTTP 401 on {endpoint}): check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
    )]
    Unauthorized { server: String, endpoint: String },
    #[error("MLflow at {server} denied {endpoint} (HTTP 403): {message}")]
    Forbidden {
        server: String,
        endpoint: String,
        message: String,
    },
    #[error("{message} (MLflow at {server}, {endpoint})")]
    NotFound {
        server: String,
        endpoint: String,
        message: String,
    },
    #[error("MLflow at {server} does not support {feature}: {endpoint} answered HTTP 404. {hint}")]
    Unsupported {
        server: String,
        endpoint: String,
        feature: &'static str,
        hint: &'static str,
    },
    #[error("MLflow at {server} rejected {endpoint} (HTTP {status}, {code}): {message}")]
    Api {
        server: String,
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("MLflow at {server} did not answer {endpoint} after {attempts} attempt(s): {last}")]
    Unavailable {
        server: String,
        endpoint: String,
        attempts: u32,
        last: String,
    },
    #[error("unexpected answer from MLflow {endpoint}: {message}")]
    Decode { endpoint: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl MlflowError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, MlflowError::NotFound { .. })
    }
}

/// What an endpoint provides, for messages about servers that lack it.
fn feature_of(endpoint: &str) -> (&'static str, &'static str) {
    if endpoint.contains("registered-models/alias") {
        (
            "model version aliases",
            "Aliases need MLflow 2.3 or newer; upgrade the server, or use stages on this one.",
        )
    } else if endpoint.contains("mlflow-artifacts") {
        (
            "the artifact proxy",
            "Start the server with --serve-artifacts (the default since MLflow 2.0) so clients can upload and download artifacts.",
        )
    } else if endpoint.contains("transition-stage") {
        (
            "model version stages",
            "Stages were removed from this server; aliases replace them.",
        )
    } else {
        (
            "this API",
            "Check MLFLOW_TRACKING_URI: it should be the server's base URL.",
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
struct ErrorBody {
    error_code: Option<String>,
    message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
        }
    }
}

pub fn tags_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub timestamp: i64,
    #[serde(default)]
    pub step: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Experiment {
    pub experiment_id: String,
    pub name: String,
    #[serde(default)]
    pub artifact_location: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RunInfo {
    pub run_id: String,
    pub experiment_id: String,
    #[serde(default)]
    pub run_name: String,
    pub status: String,
    pub artifact_uri: String,
    #[serde(default)]
    pub start_time: Option<i64>,
    #[serde(default)]
    pub end_time: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct RunData {
    #[serde(default)]
    pub metrics: Vec<Metric>,
    #[serde(default)]
    pub params: Vec<Tag>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Run {
    pub info: RunInfo,
    #[serde(default)]
    pub data: RunData,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct FileInfo {
    pub path: String,
    #[serde(default)]
    pub is_dir: bool,
    #[serde(default)]
    pub file_size: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub run_id: String,
    #[serde(default)]
    pub current_stage: String,
    #[serde(default)]
    pub creation_timestamp: Option<i64>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Only some endpoints fill this (not `model-versions/search`).
    #[serde(default)]
    pub aliases: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AliasEntry {
    pub alias: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<AliasEntry>,
}

/// Terminal run states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// Alias names MLflow reserves.
pub fn is_reserved_alias(alias: &str) -> bool {
    let a = alias.to_ascii_lowercase();
    a == "latest" || (a.len() > 1 && a.starts_with('v') && a[1..].chars().all(|c| c.is_ascii_digit()))
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[derive(Clone)]
pub struct MlflowClient {
    base: Url,
    server: String,
    http: reqwest::Client,
    auth: MlflowAuth,
    retry: RetryPolicy,
}

impl std::fmt::Debug for MlflowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MlflowClient")
            .field("server", &self.server)
            .finish()
    }
}

/// Per-batch limits of `runs/log-batch`.
const MAX_ITEMS: usize = 1000;
const MAX_METRICS: usize = 1000;
const MAX_PARAMS: usize = 100;
const MAX_TAGS: usize = 100;

enum Body<'a> {
    None,
    Json(&'a Value),
    Bytes(Bytes),
}

impl MlflowClient {
    pub fn new(cfg: &MlflowConfig) -> Result<Self, MlflowError> {
        let http = crate::http::client().map_err(MlflowError::Invalid)?;
        let server = cfg.tracking_uri.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            base: cfg.tracking_uri.clone(),
            server,
            http,
            auth: cfg.auth.clone(),
            retry: RetryPolicy {
                max_attempts: 3,
                timeout: cfg.timeout,
                base_delay: Duration::from_millis(250),
                max_delay: Duration::from_secs(2),
                max_total: cfg.timeout.max(Duration::from_secs(5)) * 2,
            },
        })
    }

    /// The server's base URL, for messages and links.
    pub fn server(&self) -> &str {
        &self.server
    }

    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The MLflow UI page of a run.
    pub fn run_url(&self, experiment_id: &str, run_id: &str) -> String {
        format!("{}/#/experiments/{experiment_id}/runs/{run_id}", self.server)
    }

    /// The MLflow UI page of a model version.
    pub fn version_url(&self, name: &str, version: &str) -> String {
        format!("{}/#/models/{name}/versions/{version}", self.server)
    }

    fn authorize(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            MlflowAuth::None => req,
            MlflowAuth::Basic { username, password } => req.basic_auth(username, Some(password.expose())),
            MlflowAuth::Bearer { token } => req.bearer_auth(token.expose()),
        }
    }

    /// Sends one request with retries on 5xx and connection errors; maps errors.
    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Body<'_>,
    ) -> Result<Bytes, MlflowError> {
        let url = format!("{}/{}", self.server, path);
        let endpoint = format!("{method} /{}", path.split('?').next().unwrap_or(path));
        let started = Instant::now();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut req = self
                .authorize(self.http.request(method.clone(), &url))
                .timeout(self.retry.timeout)
                .query(query);
            req = match &body {
                Body::None => req,
                Body::Json(v) => req.json(v),
                Body::Bytes(b) => req
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(b.clone()),
            };
            let failure = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    match resp.bytes().await {
                        Ok(bytes) if status.is_success() => return Ok(bytes),
                        Ok(bytes) if status.is_server_error() => {
                            format!("HTTP {status}: {}", snippet(&bytes))
                        }
                        Ok(bytes) => return Err(self.client_error(status, &endpoint, &bytes)),
                        Err(e) => format!("reading the answer failed: {e}"),
                    }
                }
                Err(e) if e.is_timeout() => format!("timed out after {:?}", self.retry.timeout),
                Err(e) => format!("request failed: {}", error_chain(&e)),
            };
            let delay = self.retry.backoff(attempts - 1);
            if attempts >= self.retry.max_attempts || started.elapsed() + delay >= self.retry.max_total {
                return Err(MlflowError::Unavailable {
                    server: self.server.clone(),
                    endpoint,
                    attempts,
                    last: failure,
                });
            }
            tracing::warn!(endpoint = %endpoint, attempt = attempts, "MLflow: {failure}; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn client_error(&self, status: StatusCode, endpoint: &str, body: &[u8]) -> MlflowError {
        let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
        let server = self.server.clone();
        let endpoint = endpoint.to_owned();
        let message = parsed
            .as_ref()
            .and_then(|b| b.message.clone())
            .unwrap_or_else(|| snippet(body));
        let code = parsed.as_ref().and_then(|b| b.error_code.clone());
        match (status, code.as_deref()) {
            (StatusCode::UNAUTHORIZED, _) => MlflowError::Unauthorized { server, endpoint },
            (StatusCode::FORBIDDEN, _) => MlflowError::Forbidden {
                server,
                endpoint,
                message,
            },
            (_, Some("RESOURCE_DOES_NOT_EXIST")) => MlflowError::NotFound {
                server,
                endpoint,
                message,
            },
            // A 404 without MLflow's error body: the endpoint itself is missing.
            (StatusCode::NOT_FOUND, None) => {
                let (feature, hint) = feature_of(&endpoint);
                MlflowError::Unsupported {
                    server,
                    endpoint,
                    feature,
                    hint,
                }
            }
            (_, code) => MlflowError::Api {
                server,
                endpoint,
                status: status.as_u16(),
                code: code.unwrap_or("no error code").to_owned(),
                message,
            },
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        api: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, MlflowError> {
        let path = format!("api/2.0/mlflow/{api}");
        let bytes = self
            .send(method, &path, query, body.map_or(Body::None, Body::Json))
            .await?;
        let bytes = if bytes.is_empty() {
            Bytes::from_static(b"{}")
        } else {
            bytes
        };
        serde_json::from_slice(&bytes).map_err(|e| MlflowError::Decode {
            endpoint: api.to_owned(),
            message: format!("{e}: {}", snippet(&bytes)),
        })
    }

    async fn post<T: DeserializeOwned>(&self, api: &str, body: Value) -> Result<T, MlflowError> {
        self.call(Method::POST, api, &[], Some(&body)).await
    }

    async fn get<T: DeserializeOwned>(&self, api: &str, query: &[(&str, &str)]) -> Result<T, MlflowError> {
        self.call(Method::GET, api, query, None).await
    }

    // ---- experiments

    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            experiment: Experiment,
        }
        match self
            .get::<R>("experiments/get-by-name", &[("experiment_name", name)])
            .await
        {
            Ok(r) => Ok(Some(r.experiment)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            experiment_id: String,
        }
        let r: R = self.post("experiments/create", json!({ "name": name })).await?;
        Ok(r.experiment_id)
    }

    /// The experiment's id, creating it if needed (safe against a concurrent create).
    pub async fn get_or_create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        if let Some(e) = self.get_experiment_by_name(name).await? {
            return Ok(e.experiment_id);
        }
        match self.create_experiment(name).await {
            Ok(id) => Ok(id),
            Err(MlflowError::Api { code, .. }) if code == "RESOURCE_ALREADY_EXISTS" => self
                .get_experiment_by_name(name)
                .await?
                .map(|e| e.experiment_id)
                .ok_or_else(|| MlflowError::Invalid(format!("experiment {name} vanished"))),
            Err(e) => Err(e),
        }
    }

    // ---- runs

    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[Tag],
    ) -> Result<RunInfo, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            run: Run,
        }
        let r: R = self
            .post(
                "runs/create",
                json!({
                    "experiment_id": experiment_id,
                    "run_name": run_name,
                    "start_time": now_ms(),
                    "tags": tags,
                }),
            )
            .await?;
        Ok(r.run.info)
    }

    pub async fn get_run(&self, run_id: &str) -> Result<Run, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            run: Run,
        }
        let r: R = self.get("runs/get", &[("run_id", run_id)]).await?;
        Ok(r.run)
    }

    /// Logs metrics, params and tags, split into batches within MLflow's limits.
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[Tag],
        tags: &[Tag],
    ) -> Result<(), MlflowError> {
        let (mut m, mut p, mut t) = (metrics, params, tags);
        while !(m.is_empty() && p.is_empty() && t.is_empty()) {
            let (pb, pr) = p.split_at(p.len().min(MAX_PARAMS));
            let (tb, tr) = t.split_at(t.len().min(MAX_TAGS));
            let room = MAX_ITEMS - pb.len() - tb.len();
            let (mb, mr) = m.split_at(m.len().min(MAX_METRICS).min(room));
            let _: Value = self
                .post(
                    "runs/log-batch",
                    json!({ "run_id": run_id, "metrics": mb, "params": pb, "tags": tb }),
                )
                .await?;
            (m, p, t) = (mr, pr, tr);
        }
        Ok(())
    }

    pub async fn set_run_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        let _: Value = self
            .post(
                "runs/set-tag",
                json!({ "run_id": run_id, "key": key, "value": value }),
            )
            .await?;
        Ok(())
    }

    /// Runs of an experiment matching an MLflow filter (`""` for all), newest first.
    pub async fn search_runs(&self, experiment_id: &str, filter: &str) -> Result<Vec<Run>, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            runs: Vec<Run>,
        }
        let r: R = self
            .post(
                "runs/search",
                json!({
                    "experiment_ids": [experiment_id],
                    "filter": filter,
                    "max_results": 1000,
                    "order_by": ["attributes.start_time DESC"],
                }),
            )
            .await?;
        Ok(r.runs)
    }

    pub async fn finish_run(&self, run_id: &str, status: RunStatus) -> Result<(), MlflowError> {
        let _: Value = self
            .post(
                "runs/update",
                json!({ "run_id": run_id, "status": status.as_str(), "end_time": now_ms() }),
            )
            .await?;
        Ok(())
    }

    // ---- artifacts (through the server's proxy)

    /// `mlflow-artifacts:/1/<run>/artifacts` → `1/<run>/artifacts`.
    fn proxy_path(&self, uri: &str) -> Result<String, MlflowError> {
        let rest = uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| MlflowError::Unsupported {
            server: self.server.clone(),
            endpoint: format!("artifact location {uri}"),
            feature: "the artifact proxy",
            hint: "The artifacts of this run are not served by the tracking server; start it with --serve-artifacts.",
        })?;
        // Either `mlflow-artifacts:/path` or `mlflow-artifacts://host:port/path`.
        let path = match rest.strip_prefix("//") {
            Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
            None => rest.trim_start_matches('/'),
        };
        Ok(path.trim_end_matches('/').to_owned())
    }

    fn artifact_api(path: &str) -> String {
        format!("api/2.0/mlflow-artifacts/artifacts/{path}")
    }

    pub async fn upload_artifact(&self, run: &RunInfo, path: &str, body: Bytes) -> Result<(), MlflowError> {
        let root = self.proxy_path(&run.artifact_uri)?;
        self.send(
            Method::PUT,
            &Self::artifact_api(&format!("{root}/{path}")),
            &[],
            Body::Bytes(body),
        )
        .await?;
        Ok(())
    }

    /// The entries of a run's artifact folder (`""` for the root).
    pub async fn list_artifacts(&self, run: &RunInfo, dir: &str) -> Result<Vec<FileInfo>, MlflowError> {
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            files: Vec<FileInfo>,
        }
        let root = self.proxy_path(&run.artifact_uri)?;
        let path = if dir.is_empty() {
            root
        } else {
            format!("{root}/{dir}")
        };
        let bytes = self
            .send(
                Method::GET,
                "api/2.0/mlflow-artifacts/artifacts",
                &[("path", &path)],
                Body::None,
            )
            .await?;
        let r: R = serde_json::from_slice(&bytes).map_err(|e| MlflowError::Decode {
            endpoint: "mlflow-artifacts/artifacts".into(),
            message: e.to_string(),
        })?;
        Ok(r.files)
    }

    /// Downloads an artifact by URI: `mlflow-artifacts:/…` or `runs:/<run_id>/<path>`.
    pub async fn download_artifact(&self, uri: &str) -> Result<Bytes, MlflowError> {
        let path = if let Some(rest) = uri.strip_prefix("runs:/") {
            let (run_id, rel) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.get_run(run_id).await?;
            format!("{}/{rel}", self.proxy_path(&run.info.artifact_uri)?)
        } else {
            self.proxy_path(uri)?
        };
        self.send(Method::GET, &Self::artifact_api(&path), &[], Body::None)
            .await
    }

    // ---- the model registry

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
        if is_reserved_alias(alias) {
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

fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let s = s.trim();
    if s.is_empty() {
        "(empty body)".into()
    } else {
        s.chars().take(300).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_aliases_are_recognised() {
        for a in ["latest", "LATEST", "v1", "V23"] {
            assert!(is_reserved_alias(a), "{a}");
        }
        for a in ["production", "candidate", "v", "vx1", "previous"] {
            assert!(!is_reserved_alias(a), "{a}");
        }
    }
}

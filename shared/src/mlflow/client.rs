//! The REST client: one `send` with bounded retries and error mapping, and one method
//! per endpoint rps uses (experiments, runs, artifacts through the proxy); the registry's
//! endpoints are in [`super::registry`].

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use url::Url;

use super::error::{ErrorBody, MlflowError, feature_of};
use super::types::{Experiment, FileInfo, Metric, Run, RunInfo, RunStatus, Tag, now_ms};
use crate::config::{MlflowAuth, MlflowConfig};
use crate::http::{RetryPolicy, error_chain};

#[derive(Clone)]
pub struct MlflowClient {
    base: Url,
    server: String,
    http: reqwest::Client,
    auth: MlflowAuth,
    retry: RetryPolicy,
    /// How to reach an `s3://` artifact root: a server without the artifact proxy
    /// (`--no-serve-artifacts`) leaves reading and writing artifacts to its clients.
    s3: Option<crate::config::S3Config>,
}

/// Where a run's artifacts are, as rps can reach them.
enum ArtifactRoot {
    /// Through the tracking server (`mlflow-artifacts:`): a path under its proxy.
    Proxy(String),
    /// In S3, written and read by the client itself.
    S3 { bucket: String, key: String },
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
            s3: None,
        })
    }

    /// Artifacts at `s3://` locations are read and written with these S3 settings (the
    /// store's client and credentials).
    pub fn with_s3(mut self, s3: &crate::config::S3Config) -> Self {
        self.s3 = Some(s3.clone());
        self
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

    /// Sends one request with retries on 5xx and connection errors; maps errors. A
    /// request that creates something ([`creates`]) is retried only when it never
    /// reached the server: after a lost answer, a retry would create a duplicate.
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
        let idempotent = !creates(path);
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
            let (failure, sent) = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    match read_capped(resp).await {
                        Ok(bytes) if status.is_success() => return Ok(bytes),
                        Ok(bytes) if status.is_server_error() => {
                            (format!("HTTP {status}: {}", snippet(&bytes)), true)
                        }
                        Ok(bytes) => return Err(self.client_error(status, &endpoint, &bytes)),
                        Err(e) => (format!("reading the answer failed: {e}"), true),
                    }
                }
                Err(e) if e.is_timeout() => (format!("timed out after {:?}", self.retry.timeout), true),
                Err(e) => (format!("request failed: {}", error_chain(&e)), !e.is_connect()),
            };
            let delay = self.retry.backoff(attempts - 1);
            let may_retry = idempotent || !sent;
            if !may_retry
                || attempts >= self.retry.max_attempts
                || started.elapsed() + delay >= self.retry.max_total
            {
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

    pub(super) async fn call<T: DeserializeOwned>(
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

    pub(super) async fn post<T: DeserializeOwned>(&self, api: &str, body: Value) -> Result<T, MlflowError> {
        self.call(Method::POST, api, &[], Some(&body)).await
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        api: &str,
        query: &[(&str, &str)],
    ) -> Result<T, MlflowError> {
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

    /// Marks a run deleted (MLflow keeps it in its trash).
    pub async fn delete_run(&self, run_id: &str) -> Result<(), MlflowError> {
        let _: Value = self.post("runs/delete", json!({ "run_id": run_id })).await?;
        Ok(())
    }

    /// The server's version (`GET /version`), or `None` when it does not say.
    pub async fn server_version(&self) -> Result<Option<String>, MlflowError> {
        match self.send(Method::GET, "version", &[], Body::None).await {
            Ok(bytes) => {
                let v = String::from_utf8_lossy(&bytes).trim().to_owned();
                Ok((!v.is_empty() && v.len() < 40 && !v.contains('<')).then_some(v))
            }
            Err(MlflowError::Unsupported { .. } | MlflowError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
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

    // ---- artifacts: through the server's proxy, or straight to S3

    /// `mlflow-artifacts:/1/<run>/artifacts` → a proxy path `1/<run>/artifacts`;
    /// `s3://bucket/key` → that S3 location; anything else cannot be reached.
    fn artifact_root(&self, uri: &str) -> Result<ArtifactRoot, MlflowError> {
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            return Ok(ArtifactRoot::S3 {
                bucket: bucket.to_owned(),
                key: key.trim_matches('/').to_owned(),
            });
        }
        let rest = uri.strip_prefix("mlflow-artifacts:").ok_or_else(|| MlflowError::Unsupported {
            server: self.server.clone(),
            endpoint: format!("artifact location {uri}"),
            feature: "an artifact store rps can reach",
            hint: "rps reads and writes artifacts through the server's artifact proxy (mlflow-artifacts:, `mlflow server --serve-artifacts`) or in S3 (an s3:// artifact root); give the server one of these.",
        })?;
        // Either `mlflow-artifacts:/path` or `mlflow-artifacts://host:port/path`.
        let path = match rest.strip_prefix("//") {
            Some(with_host) => with_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
            None => rest.trim_start_matches('/'),
        };
        Ok(ArtifactRoot::Proxy(path.trim_end_matches('/').to_owned()))
    }

    fn artifact_api(path: &str) -> String {
        format!("api/2.0/mlflow-artifacts/artifacts/{path}")
    }

    /// The S3 bucket of an `s3://` artifact root, as a store.
    #[cfg(feature = "s3")]
    async fn s3_store(&self, bucket: &str) -> Result<crate::store::S3Store, MlflowError> {
        let cfg = self.s3.as_ref().ok_or_else(|| self.no_s3(bucket))?;
        crate::store::S3Store::connect(bucket, "", cfg)
            .await
            .map_err(|e| MlflowError::Invalid(format!("the artifact bucket s3://{bucket}: {e}")))
    }

    #[cfg(not(feature = "s3"))]
    async fn s3_store(&self, bucket: &str) -> Result<crate::store::MemoryStore, MlflowError> {
        Err(self.no_s3(bucket))
    }

    fn no_s3(&self, bucket: &str) -> MlflowError {
        MlflowError::Unsupported {
            server: self.server.clone(),
            endpoint: format!("artifact location s3://{bucket}"),
            feature: "artifacts this client can reach",
            hint: "The server keeps artifacts in S3 without proxying them; this build of rps has no S3 client for them (the `s3` feature).",
        }
    }

    fn store_error(&self, e: crate::store::StoreError) -> MlflowError {
        use crate::store::StoreError as E;
        match e {
            E::NotFound { url } => MlflowError::NotFound {
                server: self.server.clone(),
                endpoint: "S3 artifact".into(),
                message: format!("artifact {url} does not exist"),
            },
            E::AccessDenied { operation, url } => MlflowError::Forbidden {
                server: self.server.clone(),
                endpoint: format!("S3 artifact {operation}"),
                message: format!(
                    "the credentials may not {operation} {url}: the artifact bucket needs the same grants as the store"
                ),
            },
            other => MlflowError::Unavailable {
                server: self.server.clone(),
                endpoint: "S3 artifact".into(),
                attempts: 1,
                last: other.to_string(),
            },
        }
    }

    fn s3_key(root: &str, rel: &str) -> Result<crate::store::ObjectKey, MlflowError> {
        let key = [root, rel.trim_matches('/')]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        crate::store::ObjectKey::new(key).map_err(|e| MlflowError::Invalid(e.to_string()))
    }

    pub async fn upload_artifact(&self, run: &RunInfo, path: &str, body: Bytes) -> Result<(), MlflowError> {
        use crate::store::ObjectStore as _;
        match self.artifact_root(&run.artifact_uri)? {
            ArtifactRoot::Proxy(root) => {
                self.send(
                    Method::PUT,
                    &Self::artifact_api(&format!("{root}/{path}")),
                    &[],
                    Body::Bytes(body),
                )
                .await?;
            }
            ArtifactRoot::S3 { bucket, key } => {
                let store = self.s3_store(&bucket).await?;
                store
                    .put(&Self::s3_key(&key, path)?, body)
                    .await
                    .map_err(|e| self.store_error(e))?;
            }
        }
        Ok(())
    }

    /// The entries of a run's artifact folder (`""` for the root).
    pub async fn list_artifacts(&self, run: &RunInfo, dir: &str) -> Result<Vec<FileInfo>, MlflowError> {
        use crate::store::ObjectStore as _;
        #[derive(Deserialize)]
        struct R {
            #[serde(default)]
            files: Vec<FileInfo>,
        }
        let root = match self.artifact_root(&run.artifact_uri)? {
            ArtifactRoot::Proxy(root) => root,
            ArtifactRoot::S3 { bucket, key } => {
                let store = self.s3_store(&bucket).await?;
                let folder = Self::s3_key(&key, dir)?;
                let prefix = format!("{}/", folder.as_str());
                let keys = store.list(&prefix).await.map_err(|e| self.store_error(e))?;
                let mut files: Vec<FileInfo> = Vec::new();
                for k in keys {
                    let rel = &k.as_str()[prefix.len()..];
                    let (first, nested) = match rel.split_once('/') {
                        Some((first, _)) => (first, true),
                        None => (rel, false),
                    };
                    let path = if dir.is_empty() {
                        first.to_owned()
                    } else {
                        format!("{}/{first}", dir.trim_matches('/'))
                    };
                    if !files.iter().any(|f| f.path == path) {
                        files.push(FileInfo {
                            path,
                            is_dir: nested,
                            file_size: None,
                        });
                    }
                }
                return Ok(files);
            }
        };
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

    /// Downloads an artifact by URI: `mlflow-artifacts:/…`, `s3://…` or
    /// `runs:/<run_id>/<path>`.
    pub async fn download_artifact(&self, uri: &str) -> Result<Bytes, MlflowError> {
        use crate::store::ObjectStore as _;
        let (root, rel) = if let Some(rest) = uri.strip_prefix("runs:/") {
            let (run_id, rel) = rest.split_once('/').unwrap_or((rest, ""));
            let run = self.get_run(run_id).await?;
            (self.artifact_root(&run.info.artifact_uri)?, rel.to_owned())
        } else {
            (self.artifact_root(uri)?, String::new())
        };
        match root {
            ArtifactRoot::Proxy(path) => {
                let path = if rel.is_empty() {
                    path
                } else {
                    format!("{path}/{rel}")
                };
                self.send(Method::GET, &Self::artifact_api(&path), &[], Body::None)
                    .await
            }
            ArtifactRoot::S3 { bucket, key } => {
                let store = self.s3_store(&bucket).await?;
                store
                    .get(&Self::s3_key(&key, &rel)?)
                    .await
                    .map_err(|e| self.store_error(e))
            }
        }
    }
}

/// Endpoints that create something: a retry after a lost answer would create it twice.
fn creates(path: &str) -> bool {
    path.ends_with("runs/create") || path.ends_with("model-versions/create")
}

/// The largest answer read (a bundle is a few MB): a bigger one is refused, not buffered.
pub const MAX_RESPONSE_BYTES: u64 = 256 << 20;

async fn read_capped(resp: reqwest::Response) -> Result<Bytes, String> {
    if resp.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES) {
        return Err(format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"));
    }
    let mut resp = resp;
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        out.extend_from_slice(&chunk);
        if out.len() as u64 > MAX_RESPONSE_BYTES {
            return Err(format!("the answer is larger than {MAX_RESPONSE_BYTES} bytes"));
        }
    }
    Ok(Bytes::from(out))
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

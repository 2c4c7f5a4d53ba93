//! Configuration: one typed struct, read from the environment once at start.
//!
//! Every value is parsed into a domain type here, so the rest of the library never
//! re-checks it, and this is the only module that reads the environment. A missing or
//! invalid value is a [`ConfigError`] naming the variable and what it expects. Empty
//! variables count as unset. The variables, their defaults and meanings are one table,
//! [`vars`]; `docs/configuration.md` is generated from it.

pub mod vars;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use self::vars::Var;
use crate::tags::aliases;

/// Default endpoints of the live Open-Meteo API (no key needed).
pub const DEFAULT_ARCHIVE_URL: &str = "https://archive-api.open-meteo.com/v1/archive";
pub const DEFAULT_FORECAST_URL: &str = "https://api.open-meteo.com/v1/forecast";
/// The embedded default store: a folder in the working directory.
pub const DEFAULT_STORE: &str = ".rps/store";
/// Sand Point, Alaska: the station of the shipped sample year.
pub const DEFAULT_LATITUDE: f64 = 55.317;
pub const DEFAULT_LONGITUDE: f64 = -160.517;
pub const DEFAULT_MODEL_NAME: &str = "rps-temperature";
pub const DEFAULT_EXPERIMENT: &str = "rps";

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ConfigError {
    #[error("{var} is required: expected {expected}")]
    Missing {
        var: &'static str,
        expected: &'static str,
    },
    #[error("{var}={value:?} is invalid: expected {expected}")]
    Invalid {
        var: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// Where objects live: a local directory (the embedded default) or an S3 prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreLocation {
    Local { path: PathBuf },
    S3 { bucket: String, prefix: String },
}

impl StoreLocation {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(rest) = raw.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let valid_bucket = (3..=63).contains(&bucket.len())
                && bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
            if !valid_bucket {
                return Err(format!("{bucket:?} is not a valid S3 bucket name"));
            }
            Ok(StoreLocation::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            })
        } else if raw.contains("://") {
            Err("only local paths and s3:// URLs are supported".to_owned())
        } else {
            Ok(StoreLocation::Local {
                path: PathBuf::from(raw),
            })
        }
    }

    /// Where this location sits inside `outer`, as a key prefix ending in `/` (`dvc/`
    /// for the default DVC remote inside the store); `None` when it is not inside it.
    pub fn inside(&self, outer: &StoreLocation) -> Option<String> {
        let rest = match (self, outer) {
            (StoreLocation::S3 { bucket, prefix }, StoreLocation::S3 { bucket: b, prefix: p })
                if bucket == b =>
            {
                if p.is_empty() {
                    prefix.clone()
                } else {
                    prefix.strip_prefix(p.as_str())?.strip_prefix('/')?.to_owned()
                }
            }
            (StoreLocation::Local { path }, StoreLocation::Local { path: p }) => {
                path.strip_prefix(p).ok()?.to_str()?.replace('\\', "/")
            }
            _ => return None,
        };
        (!rest.is_empty()).then(|| format!("{}/", rest.trim_matches('/')))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Local { path } => write!(f, "{}", path.display()),
            StoreLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StoreLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// A latitude in degrees, -90..=90.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64")]
pub struct Latitude(f64);
/// A longitude in degrees, -180..=180.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64")]
pub struct Longitude(f64);

impl TryFrom<f64> for Latitude {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        Self::new(v).ok_or_else(|| format!("latitude {v} is outside -90..=90"))
    }
}

impl TryFrom<f64> for Longitude {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        Self::new(v).ok_or_else(|| format!("longitude {v} is outside -180..=180"))
    }
}

impl Latitude {
    pub fn new(v: f64) -> Option<Self> {
        (v.is_finite() && (-90.0..=90.0).contains(&v)).then_some(Self(v))
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Longitude {
    pub fn new(v: f64) -> Option<Self> {
        (v.is_finite() && (-180.0..=180.0).contains(&v)).then_some(Self(v))
    }
    pub fn get(self) -> f64 {
        self.0
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: Latitude,
    pub longitude: Longitude,
}

/// How to reach Open-Meteo and how hard to try.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceConfig {
    pub archive_url: Url,
    pub forecast_url: Url,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts in all, including the first.
    pub max_attempts: u32,
    /// Upper bound on the time spent retrying, sleeps included.
    pub max_retry_time: Duration,
    /// Hours of history the live (forecast) endpoint is asked for, as `past_days`.
    pub past_days: u8,
}

/// Thresholds of the data quality gate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityConfig {
    /// Largest share of nulls a key column may have (0.01 = 1%).
    pub max_null_share: f64,
    /// Longest run of missing hours (absent or null) that is tolerated.
    pub max_gap_hours: u32,
    /// How old the newest hour of a live snapshot may be.
    pub max_staleness_hours: u32,
    /// Fewest hours a snapshot must hold to be useful for training.
    pub min_rows: usize,
}

/// Gaps up to this many hours are interpolated by the transform; longer ones stay missing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransformConfig {
    pub max_fill_hours: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrainConfig {
    /// Share of the rows (the newest) held out for the final evaluation.
    pub holdout_fraction: f64,
    /// Share of the rows before the hold-out used to select the model.
    pub validation_fraction: f64,
    pub seed: u64,
}

/// A secret value: never printed, logged or serialised.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    /// The value, for the one place that needs it (an Authorization header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("***")
    }
}

/// How to authenticate to MLflow: Basic when a user name and password are set, else a
/// bearer token, else nothing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum MlflowAuth {
    None,
    Basic { username: String, password: Secret },
    Bearer { token: Secret },
}

/// A tracking server (and its model registry).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MlflowConfig {
    pub tracking_uri: Url,
    pub auth: MlflowAuth,
    /// Where the credentials came from and why this kind of auth was chosen (shown by
    /// `rps config` and `rps doctor`; never a value).
    pub auth_from: String,
    pub experiment: String,
    pub timeout: Duration,
}

/// Where models are registered and how serving finds them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegistryConfig {
    pub model_name: String,
    /// Downloaded bundles, by version (verified before use).
    pub cache_dir: PathBuf,
}

/// How the prediction service finds its model and guards itself.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServeConfig {
    /// The alias served (`production` unless told otherwise).
    pub model_alias: String,
    /// A bundle file to serve instead of the registry (offline use).
    pub model_path: Option<PathBuf>,
    /// The sha256 that file must have.
    pub model_sha256: Option<String>,
    /// How often the alias is re-checked; zero turns re-checking off.
    pub refresh: Duration,
    /// Requests in the drift window.
    pub drift_window: usize,
    /// When the drift window counts as drifting.
    pub drift: crate::drift::DriftThresholds,
    pub max_body_bytes: usize,
    pub max_observations: usize,
    /// Emit CloudWatch Embedded Metric Format lines (on by default on Lambda).
    pub emf: bool,
    /// Their CloudWatch namespace: one per stack, so two stacks' alarms never read each
    /// other's metrics.
    pub emf_namespace: String,
    /// Distinct `/predict` answers sampled into the forecast log per flush (0: none).
    pub forecast_log_sample: usize,
    /// How often the sample is written to the store.
    pub forecast_log_flush: Duration,
    /// How long start-up waits for the first model load.
    pub model_load_timeout: Duration,
    /// How long a request waits for the store.
    pub store_timeout: Duration,
    /// Server: how long a client may take to send its request head.
    pub header_read_timeout: Duration,
    /// Server: how long answering one request may take.
    pub request_timeout: Duration,
    /// The `rps-api` server's port outside Lambda.
    pub port: u16,
    /// Running under the Lambda runtime (`AWS_LAMBDA_RUNTIME_API`): answer its events.
    pub lambda_runtime: bool,
}

/// The promotion gates' thresholds: what a candidate must show before it may serve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateConfig {
    /// Accuracy: every horizon must beat the location's seasonal-naive forecast (the same
    /// hour yesterday) by more than this share.
    pub min_skill_seasonal: f64,
    /// Accuracy, opt-in: the 6 h RMSE (°C) must also be under this ceiling. A fixed
    /// ceiling suits one climate only, so there is none by default.
    pub max_rmse_h6: Option<f64>,
    /// No regression: the 6 h RMSE may exceed production's by at most this share.
    pub max_regression_headline: f64,
    /// No regression: no horizon's RMSE may exceed production's by more than this share.
    pub max_regression_any: f64,
    /// Skill: every horizon must beat persistence by more than this share (0 = beat it).
    pub min_skill: f64,
    /// Latency: the p99 of one in-process prediction (features + models), in milliseconds.
    pub max_p99_ms: f64,
    /// The hold-out must have at least this many unseen rows.
    pub min_holdout_rows: usize,
    /// Smoke: the staging deployment of the candidate, when there is one.
    pub staging_url: Option<Url>,
    /// How long `rps pipeline promote` waits for staging to serve the candidate.
    pub staging_wait: Duration,
    /// A stored gate report older than this is re-run, not trusted.
    pub report_max_age: Duration,
}

/// How forecasts are verified and when a retrain is asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyConfig {
    /// °C: a logged forecast's temperature at its issue hour may differ from the
    /// store's by this much and still be scored.
    pub max_mismatch: f64,
    pub retrain: RetrainRule,
}

/// The thresholds of the retrain rule (`crate::verify::trigger::decide`): `RPS_RETRAIN_*`
/// and `RPS_DRIFT_MAX_OUT_OF_RANGE`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetrainRule {
    pub min_skill: f64,
    pub min_hours: usize,
    pub cooldown_hours: u32,
    pub max_out_of_range: f64,
    /// The retrain's data: the `days` before the newest observation, less `lag_days`
    /// (the archive's delay).
    pub days: u16,
    pub lag_days: u16,
}

/// S3 settings beyond the standard AWS chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct S3Config {
    /// Objects above this many bytes are uploaded in parts.
    pub multipart_threshold: usize,
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` is set: an S3-compatible server,
    /// addressed path-style.
    pub custom_endpoint: bool,
    /// One attempt of an operation.
    pub attempt_timeout: Duration,
    /// An operation, retries included.
    pub operation_timeout: Duration,
}

/// Secrets read from a secret store at start (Lambda), never from a plain variable.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecretsConfig {
    /// The Secrets Manager secret holding the MLflow credentials.
    pub mlflow_secret_id: Option<String>,
}

/// Who and which code is running, for lineage and promotion records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance {
    /// `RPS_GIT_COMMIT`, else `GITHUB_SHA`; [`crate::git::current_commit`] falls back
    /// to the build's commit.
    pub git_commit: Option<String>,
    /// Who acts when no `--actor` is given: the CI actor or the local user.
    pub actor: String,
}

/// How logs are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogConfig {
    /// A tracing filter (`RUST_LOG`); `None`: the caller's default level.
    pub filter: Option<String>,
    pub json: bool,
}

impl LogConfig {
    /// Read before anything else, so even a configuration error is logged in the
    /// right format. Never fails: a bad filter falls back to the default level.
    pub fn from_env() -> Self {
        let env = Env::process();
        Self {
            filter: env.get(vars::RUST_LOG.name),
            json: env.get(vars::RPS_LOG_FORMAT.name).as_deref() == Some("json")
                || env.get(vars::AWS_LAMBDA_FUNCTION_NAME.name).is_some(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub store: StoreLocation,
    /// The DVC remote processed datasets are pushed to (default: `<store>/dvc`).
    pub dvc_remote: StoreLocation,
    pub s3: S3Config,
    pub location: Location,
    pub source: SourceConfig,
    pub quality: QualityConfig,
    pub transform: TransformConfig,
    pub train: TrainConfig,
    pub registry: RegistryConfig,
    /// `None`: no tracking server; models go to the local registry in the store.
    pub mlflow: Option<MlflowConfig>,
    pub serve: ServeConfig,
    pub gates: GateConfig,
    pub verify: VerifyConfig,
    pub secrets: SecretsConfig,
    pub provenance: Provenance,
}

impl Config {
    /// The aliases this deployment serves and moves (`RPS_MODEL_ALIAS` and its family).
    pub fn aliases(&self) -> crate::tags::aliases::Family {
        crate::tags::aliases::Family::of(&self.serve.model_alias)
    }

    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Reads from a map (tests, and callers that build their own environment).
    pub fn from_map(map: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|k| map.get(k).cloned())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };
        let store = env.parse(&vars::RPS_STORE, |s| StoreLocation::parse(s).ok())?;
        let dvc_remote = env
            .optional(&vars::RPS_DVC_REMOTE, |s| StoreLocation::parse(s).ok())?
            .unwrap_or_else(|| store.join("dvc"));
        Ok(Config {
            s3: S3Config::read(&env)?,
            location: Location::read(&env)?,
            source: SourceConfig::read(&env)?,
            quality: QualityConfig::read(&env)?,
            transform: TransformConfig::read(&env)?,
            train: TrainConfig::read(&env)?,
            registry: RegistryConfig::read(&env)?,
            mlflow: MlflowConfig::read(&env)?,
            serve: ServeConfig::read(&env)?,
            gates: GateConfig::read(&env)?,
            verify: VerifyConfig::read(&env)?,
            secrets: SecretsConfig {
                mlflow_secret_id: env.optional(&vars::RPS_MLFLOW_SECRET_ID, |s| Some(s.to_owned()))?,
            },
            provenance: Provenance::read(&env),
            store,
            dvc_remote,
        })
    }
}

impl StoreLocation {
    /// A folder inside this location.
    pub fn join(&self, folder: &str) -> Self {
        match self {
            StoreLocation::Local { path } => StoreLocation::Local {
                path: path.join(folder),
            },
            StoreLocation::S3 { bucket, prefix } => StoreLocation::S3 {
                bucket: bucket.clone(),
                prefix: if prefix.is_empty() {
                    folder.to_owned()
                } else {
                    format!("{prefix}/{folder}")
                },
            },
        }
    }
}

// ---- value parsers shared by several variables

fn http_url(s: &str) -> Option<Url> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

fn number_in<T: std::str::FromStr + PartialOrd>(
    range: std::ops::RangeInclusive<T>,
) -> impl Fn(&str) -> Option<T> {
    move |s| s.parse().ok().filter(|v| range.contains(v))
}

fn at_least<T: std::str::FromStr + PartialOrd>(min: T) -> impl Fn(&str) -> Option<T> {
    move |s| s.parse().ok().filter(|v| *v >= min)
}

fn positive_finite(s: &str) -> Option<f64> {
    s.parse().ok().filter(|v: &f64| *v > 0.0 && v.is_finite())
}

fn seconds(secs: f64) -> Duration {
    Duration::from_secs_f64(secs)
}

// ---- one reader per section

impl S3Config {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        let mb: usize = env.parse(&vars::RPS_S3_MULTIPART_THRESHOLD_MB, at_least(5))?;
        Ok(Self {
            attempt_timeout: seconds(env.parse(&vars::RPS_S3_ATTEMPT_TIMEOUT_SECS, number_in(1.0..=600.0))?),
            operation_timeout: seconds(
                env.parse(&vars::RPS_S3_OPERATION_TIMEOUT_SECS, number_in(1.0..=3600.0))?,
            ),
            multipart_threshold: mb << 20,
            custom_endpoint: env.get(vars::AWS_ENDPOINT_URL_S3.name).is_some()
                || env.get(vars::AWS_ENDPOINT_URL.name).is_some(),
        })
    }
}

impl Location {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            latitude: env.parse(&vars::RPS_LATITUDE, |s| s.parse().ok().and_then(Latitude::new))?,
            longitude: env.parse(&vars::RPS_LONGITUDE, |s| s.parse().ok().and_then(Longitude::new))?,
        })
    }
}

impl SourceConfig {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            archive_url: env.parse(&vars::OPEN_METEO_ARCHIVE_URL, http_url)?,
            forecast_url: env.parse(&vars::OPEN_METEO_FORECAST_URL, http_url)?,
            timeout: seconds(env.parse(&vars::RPS_HTTP_TIMEOUT_SECS, number_in(0.1..=600.0))?),
            max_attempts: env.parse(&vars::RPS_HTTP_MAX_ATTEMPTS, number_in(1..=10))?,
            max_retry_time: seconds(env.parse(&vars::RPS_HTTP_MAX_RETRY_SECS, number_in(0.0..=3600.0))?),
            past_days: env.parse(&vars::RPS_PAST_DAYS, number_in(2..=92))?,
        })
    }
}

impl QualityConfig {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max_null_share: env.parse(&vars::RPS_MAX_NULL_SHARE, number_in(0.0..=1.0))?,
            max_gap_hours: env.parse(&vars::RPS_MAX_GAP_HOURS, number_in(1..=8760))?,
            max_staleness_hours: env.parse(&vars::RPS_MAX_STALENESS_HOURS, number_in(1..=8760))?,
            min_rows: env.parse(&vars::RPS_MIN_ROWS, at_least(48))?,
        })
    }
}

impl TransformConfig {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max_fill_hours: env.parse(&vars::RPS_MAX_FILL_HOURS, number_in(0..=24))?,
        })
    }
}

impl TrainConfig {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            holdout_fraction: env.parse(&vars::RPS_HOLDOUT_FRACTION, number_in(0.05..=0.5))?,
            validation_fraction: env.parse(&vars::RPS_VALIDATION_FRACTION, number_in(0.05..=0.5))?,
            seed: env.parse(&vars::RPS_SEED, |s| s.parse().ok())?,
        })
    }
}

impl RegistryConfig {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            model_name: env.parse(&vars::RPS_MODEL_NAME, |s| {
                valid_model_name(s).then(|| s.to_owned())
            })?,
            cache_dir: env
                .optional(&vars::RPS_MODEL_CACHE, |s| Some(PathBuf::from(s)))?
                .unwrap_or_else(|| std::env::temp_dir().join("rps-models")),
        })
    }
}

impl MlflowConfig {
    /// `None` without `MLFLOW_TRACKING_URI`. Credentials in the URI's user part
    /// (`https://user:token@host`, DagsHub's form) are taken out of it at once and
    /// become Basic auth (a user part alone: a Bearer token), unless the standard
    /// variables set credentials; the URI kept and shown anywhere has none.
    fn read(env: &Env) -> Result<Option<Self>, ConfigError> {
        let Some(mut tracking_uri) = env.optional(&vars::MLFLOW_TRACKING_URI, http_url)? else {
            return Ok(None);
        };
        let from_uri = match (tracking_uri.username(), tracking_uri.password()) {
            ("", _) => MlflowAuth::None,
            (user, Some(password)) => MlflowAuth::Basic {
                username: decode(user),
                password: Secret::new(decode(password)),
            },
            (token, None) => MlflowAuth::Bearer {
                token: Secret::new(decode(token)),
            },
        };
        let _ = tracking_uri.set_username("");
        let _ = tracking_uri.set_password(None);
        let (auth, auth_from) = match MlflowAuth::read(env) {
            (MlflowAuth::None, why) if from_uri != MlflowAuth::None => {
                let kind = from_uri.kind();
                (
                    from_uri,
                    format!("{kind}: the user part of MLFLOW_TRACKING_URI{why}"),
                )
            }
            chosen => chosen,
        };
        Ok(Some(Self {
            tracking_uri,
            auth,
            auth_from,
            experiment: env.parse(&vars::MLFLOW_EXPERIMENT_NAME, |s| Some(s.to_owned()))?,
            timeout: seconds(env.parse(&vars::MLFLOW_HTTP_REQUEST_TIMEOUT, number_in(1.0..=600.0))?),
        }))
    }
}

impl MlflowAuth {
    /// MLflow's own client rule (`mlflow.utils.rest_utils`): a user name and a password
    /// are Basic auth; else a token is a Bearer token; a user name or a password alone
    /// is ignored. DagsHub documents its token as the password (Basic). Returns the
    /// auth and a sentence on why it was chosen (a note on an ignored variable opens
    /// with "; ").
    fn read(env: &Env) -> (Self, String) {
        let user = env.get(vars::MLFLOW_TRACKING_USERNAME.name);
        let password = env.get(vars::MLFLOW_TRACKING_PASSWORD.name);
        let token = env.get(vars::MLFLOW_TRACKING_TOKEN.name);
        let ignored = match (&user, &password) {
            (Some(_), None) => {
                "; MLFLOW_TRACKING_USERNAME is ignored without MLFLOW_TRACKING_PASSWORD, as MLflow's client ignores it"
            }
            (None, Some(_)) => {
                "; MLFLOW_TRACKING_PASSWORD is ignored without MLFLOW_TRACKING_USERNAME, as MLflow's client ignores it"
            }
            _ => "",
        };
        match (user, password, token) {
            (Some(username), Some(password), token) => (
                MlflowAuth::Basic {
                    username,
                    password: Secret::new(password),
                },
                format!(
                    "basic: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD{}",
                    if token.is_some() {
                        " (MLFLOW_TRACKING_TOKEN is not used when both are set)"
                    } else {
                        ""
                    }
                ),
            ),
            (_, _, Some(token)) => (
                MlflowAuth::Bearer {
                    token: Secret::new(token),
                },
                format!("bearer: MLFLOW_TRACKING_TOKEN{ignored}"),
            ),
            _ => (MlflowAuth::None, format!("none: no credentials are set{ignored}")),
        }
    }

    /// `none`, `basic` or `bearer`.
    pub fn kind(&self) -> &'static str {
        match self {
            MlflowAuth::None => "none",
            MlflowAuth::Basic { .. } => "basic",
            MlflowAuth::Bearer { .. } => "bearer",
        }
    }
}

impl ServeConfig {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        let on_lambda = env.get(vars::AWS_LAMBDA_FUNCTION_NAME.name).is_some();
        Ok(Self {
            model_alias: env.parse(&vars::RPS_MODEL_ALIAS, |s| {
                aliases::is_valid(s).then(|| s.to_owned())
            })?,
            model_path: env.optional(&vars::RPS_MODEL_PATH, |s| Some(PathBuf::from(s)))?,
            model_sha256: env.optional(&vars::RPS_MODEL_SHA256, |s| {
                (s.len() == 64 && s.chars().all(|c| c.is_ascii_hexdigit())).then(|| s.to_ascii_lowercase())
            })?,
            refresh: Duration::from_secs(env.parse(&vars::RPS_MODEL_REFRESH_SECS, |s| s.parse().ok())?),
            drift_window: env.parse(&vars::RPS_DRIFT_WINDOW, number_in(10..=100_000))?,
            drift: crate::drift::DriftThresholds {
                min_requests: env.parse(&vars::RPS_DRIFT_MIN_REQUESTS, number_in(20..=100_000))?,
                max_out_of_range_share: env.parse(&vars::RPS_DRIFT_MAX_OUT_OF_RANGE, number_in(0.0..=1.0))?,
                max_psi: env.parse(&vars::RPS_DRIFT_MAX_PSI, positive_finite)?,
            },
            max_body_bytes: env.parse(&vars::RPS_MAX_BODY_BYTES, number_in(1024..=10 << 20))?,
            max_observations: env.parse(&vars::RPS_MAX_OBSERVATIONS, number_in(25..=8784))?,
            emf: env
                .optional(&vars::RPS_METRICS_EMF, |s| s.parse().ok())?
                .unwrap_or(on_lambda),
            emf_namespace: env.parse(&vars::RPS_METRICS_NAMESPACE, |s| {
                let ok = (1..=255).contains(&s.len())
                    && !s.starts_with("AWS/")
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-/#:".contains(c));
                ok.then(|| s.to_owned())
            })?,
            forecast_log_sample: env.parse(&vars::RPS_FORECAST_LOG_SAMPLE, number_in(0..=10_000))?,
            forecast_log_flush: seconds(
                env.parse(&vars::RPS_FORECAST_LOG_FLUSH_SECS, number_in(1.0..=3600.0))?,
            ),
            model_load_timeout: seconds(
                env.parse(&vars::RPS_MODEL_LOAD_TIMEOUT_SECS, number_in(1.0..=600.0))?,
            ),
            store_timeout: seconds(env.parse(&vars::RPS_STORE_TIMEOUT_SECS, number_in(1.0..=600.0))?),
            header_read_timeout: seconds(
                env.parse(&vars::RPS_HEADER_READ_TIMEOUT_SECS, number_in(1.0..=600.0))?,
            ),
            request_timeout: seconds(env.parse(&vars::RPS_REQUEST_TIMEOUT_SECS, number_in(1.0..=600.0))?),
            port: env.parse(&vars::PORT, |s| s.parse().ok())?,
            lambda_runtime: env.get(vars::AWS_LAMBDA_RUNTIME_API.name).is_some(),
        })
    }
}

impl GateConfig {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        let share = number_in(0.0..=10.0);
        let skill = |s: &str| s.parse().ok().filter(|v: &f64| (-1.0..1.0).contains(v));
        Ok(Self {
            min_skill_seasonal: env.parse(&vars::RPS_GATE_MIN_SKILL_SEASONAL, skill)?,
            max_rmse_h6: env.optional(&vars::RPS_GATE_MAX_RMSE_H6, positive_finite)?,
            max_regression_headline: env.parse(&vars::RPS_GATE_MAX_REGRESSION, &share)?,
            max_regression_any: env.parse(&vars::RPS_GATE_MAX_REGRESSION_ANY, &share)?,
            min_skill: env.parse(&vars::RPS_GATE_MIN_SKILL, skill)?,
            max_p99_ms: env.parse(&vars::RPS_GATE_MAX_P99_MS, positive_finite)?,
            min_holdout_rows: env.parse(&vars::RPS_GATE_MIN_HOLDOUT_ROWS, at_least(10))?,
            staging_url: env.optional(&vars::RPS_STAGING_URL, |s| {
                Url::parse(s)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https"))
            })?,
            staging_wait: Duration::from_secs(env.parse(&vars::RPS_STAGING_WAIT_SECS, number_in(0..=3600))?),
            report_max_age: Duration::from_secs(
                env.parse(&vars::RPS_GATE_REPORT_MAX_AGE_SECS, |s| s.parse().ok())?,
            ),
        })
    }
}

impl VerifyConfig {
    fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max_mismatch: env.parse(&vars::RPS_VERIFY_MAX_MISMATCH, number_in(0.0..=50.0))?,
            retrain: RetrainRule {
                min_skill: env.parse(&vars::RPS_RETRAIN_MIN_SKILL, |s| {
                    s.parse().ok().filter(|v: &f64| (-1.0..1.0).contains(v))
                })?,
                min_hours: env.parse(&vars::RPS_RETRAIN_MIN_HOURS, number_in(1..=24))?,
                cooldown_hours: env.parse(&vars::RPS_RETRAIN_COOLDOWN_HOURS, number_in(0..=8760))?,
                max_out_of_range: env.parse(&vars::RPS_DRIFT_MAX_OUT_OF_RANGE, number_in(0.0..=1.0))?,
                days: env.parse(&vars::RPS_RETRAIN_DAYS, number_in(7..=3660))?,
                lag_days: env.parse(&vars::RPS_RETRAIN_LAG_DAYS, number_in(0..=60))?,
            },
        })
    }
}

impl Provenance {
    fn read(env: &Env) -> Self {
        let git_commit = env
            .get(vars::RPS_GIT_COMMIT.name)
            .or_else(|| env.get(vars::GITHUB_SHA.name));
        let who = env
            .get(vars::GITHUB_ACTOR.name)
            .or_else(|| env.get(vars::USER.name))
            .unwrap_or_else(|| "unknown".into());
        let actor = match env.get(vars::GITHUB_RUN_ID.name) {
            Some(run) => format!("{who} (GitHub Actions run {run})"),
            None => format!("{who} (rps CLI)"),
        };
        Self { git_commit, actor }
    }
}

/// A percent-encoded URL part, decoded (`+` stays `+`, as in a URL's user part).
fn decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| part.to_owned())
}

/// A value as an error may quote it: any `scheme://user:password@` part hidden.
fn redact(raw: &str) -> String {
    match (raw.find("://"), raw.find('@')) {
        (Some(scheme), Some(at)) if at > scheme && !raw[scheme + 3..at].contains('/') => {
            format!("{}://***@{}", &raw[..scheme], &raw[at + 1..])
        }
        _ => raw.to_owned(),
    }
}

pub fn valid_model_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The environment as a lookup function; empty values count as unset.
struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

fn process_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

impl Env<'static> {
    fn process() -> Self {
        Env {
            lookup: &process_lookup,
        }
    }
}

impl Env<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Parses `var`, or its default when unset; `None` from `parse` is invalid.
    fn parse<T>(&self, var: &Var, parse: impl Fn(&str) -> Option<T>) -> Result<T, ConfigError> {
        let raw = self
            .get(var.name)
            .or_else(|| var.default.map(str::to_owned))
            .ok_or(ConfigError::Missing {
                var: var.name,
                expected: var.expected,
            })?;
        parse(&raw).ok_or_else(|| ConfigError::Invalid {
            var: var.name,
            value: redact(&raw),
            expected: var.expected,
        })
    }

    /// Parses `var` when set.
    fn optional<T>(&self, var: &Var, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ConfigError> {
        match self.get(var.name) {
            None => Ok(None),
            Some(_) => self.parse(var, parse).map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(&map)
    }

    #[test]
    fn defaults_are_the_embedded_local_setup() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.store,
            StoreLocation::Local {
                path: PathBuf::from(DEFAULT_STORE)
            }
        );
        assert_eq!(c.source.archive_url.as_str(), DEFAULT_ARCHIVE_URL);
        assert_eq!(c.source.forecast_url.as_str(), DEFAULT_FORECAST_URL);
        assert_eq!(c.quality.max_null_share, 0.01);
        assert_eq!(c.registry.model_name, DEFAULT_MODEL_NAME);
        assert_eq!(c.mlflow, None);
    }

    #[test]
    fn mlflow_auth_follows_the_standard_variables() {
        let c = config(&[
            ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
            ("MLFLOW_TRACKING_USERNAME", "ada"),
            ("MLFLOW_TRACKING_PASSWORD", "s3cret"),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
        ])
        .unwrap();
        let m = c.mlflow.as_ref().unwrap();
        assert!(matches!(&m.auth, MlflowAuth::Basic { username, .. } if username == "ada"));
        assert_eq!(m.experiment, DEFAULT_EXPERIMENT);
        let c = config(&[
            ("MLFLOW_TRACKING_URI", "https://dagshub.com/u/r.mlflow"),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
        ])
        .unwrap();
        assert!(matches!(c.mlflow.unwrap().auth, MlflowAuth::Bearer { .. }));
        // What every CI job used to set (a user name and a token): MLflow's client sends
        // the token as a Bearer token and ignores the user name; so does rps, and says so.
        let c = config(&[
            ("MLFLOW_TRACKING_URI", "https://dagshub.com/u/r.mlflow"),
            ("MLFLOW_TRACKING_USERNAME", "ada"),
            ("MLFLOW_TRACKING_TOKEN", "tok"),
        ])
        .unwrap();
        let m = c.mlflow.unwrap();
        assert!(matches!(&m.auth, MlflowAuth::Bearer { token } if token.expose() == "tok"));
        assert_eq!(
            m.auth_from,
            "bearer: MLFLOW_TRACKING_TOKEN; MLFLOW_TRACKING_USERNAME is ignored without \
             MLFLOW_TRACKING_PASSWORD, as MLflow's client ignores it"
        );
        // DagsHub's documented form: the token as the password.
        let c = config(&[
            ("MLFLOW_TRACKING_URI", "https://dagshub.com/u/r.mlflow"),
            ("MLFLOW_TRACKING_USERNAME", "ada"),
            ("MLFLOW_TRACKING_PASSWORD", "tok"),
        ])
        .unwrap();
        let m = c.mlflow.unwrap();
        assert!(
            matches!(&m.auth, MlflowAuth::Basic { username, password } if username == "ada" && password.expose() == "tok")
        );
        assert_eq!(
            m.auth_from,
            "basic: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
        );
        // A user name alone is no credential (MLflow ignores it too): no auth, said so.
        let c = config(&[
            ("MLFLOW_TRACKING_URI", "http://x"),
            ("MLFLOW_TRACKING_USERNAME", "ada"),
        ])
        .unwrap();
        let m = c.mlflow.unwrap();
        assert_eq!(m.auth, MlflowAuth::None);
        assert!(
            m.auth_from
                .starts_with("none: no credentials are set; MLFLOW_TRACKING_USERNAME is ignored"),
            "{}",
            m.auth_from
        );
        let err = config(&[("MLFLOW_TRACKING_URI", "databricks")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MLFLOW_TRACKING_URI=\"databricks\" is invalid"),
            "{err}"
        );
    }

    #[test]
    fn credentials_in_the_tracking_uri_become_basic_auth_and_never_show() {
        let c = config(&[(
            "MLFLOW_TRACKING_URI",
            "https://ada:tok-in-uri-42@dagshub.com/ada/repo.mlflow",
        )])
        .unwrap();
        let m = c.mlflow.as_ref().unwrap();
        assert_eq!(m.tracking_uri.as_str(), "https://dagshub.com/ada/repo.mlflow");
        assert!(
            matches!(&m.auth, MlflowAuth::Basic { username, password } if username == "ada" && password.expose() == "tok-in-uri-42")
        );
        assert!(!format!("{c:?}").contains("tok-in-uri-42"));
        assert!(!serde_json::to_string(&c).unwrap().contains("tok-in-uri-42"));
        let c = config(&[("MLFLOW_TRACKING_URI", "https://ada:a%2Bb+c%40d@h.example/")]).unwrap();
        assert!(
            matches!(&c.mlflow.unwrap().auth, MlflowAuth::Basic { password, .. } if password.expose() == "a+b+c@d")
        );
        // A token alone in the user part is a bearer token.
        let c = config(&[("MLFLOW_TRACKING_URI", "https://tok-only-42@dagshub.com/r.mlflow")]).unwrap();
        assert!(
            matches!(&c.mlflow.unwrap().auth, MlflowAuth::Bearer { token } if token.expose() == "tok-only-42")
        );
        // The standard variables win over the URI's user part.
        let c = config(&[
            ("MLFLOW_TRACKING_URI", "https://x:y@h.example/"),
            ("MLFLOW_TRACKING_TOKEN", "tok-var"),
        ])
        .unwrap();
        assert!(
            matches!(&c.mlflow.unwrap().auth, MlflowAuth::Bearer { token } if token.expose() == "tok-var")
        );
        // An invalid value is quoted without its credentials.
        let err = config(&[("MLFLOW_TRACKING_URI", "ftp://ada:tok-in-uri-42@h.example/")]).unwrap_err();
        assert!(!err.to_string().contains("tok-in-uri-42"), "{err}");
        assert!(err.to_string().contains("MLFLOW_TRACKING_URI"), "{err}");
    }

    #[test]
    fn secrets_never_appear_in_debug_or_json() {
        let c = config(&[
            ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
            ("MLFLOW_TRACKING_USERNAME", "ada"),
            ("MLFLOW_TRACKING_PASSWORD", "hunter2-password"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
        let c = config(&[
            ("MLFLOW_TRACKING_URI", "http://x"),
            ("MLFLOW_TRACKING_TOKEN", "tok-very-secret"),
        ])
        .unwrap();
        assert!(!format!("{c:?}").contains("very-secret"));
        assert!(!serde_json::to_string(&c).unwrap().contains("very-secret"));
    }

    #[test]
    fn invalid_values_name_the_variable_and_the_expectation() {
        let err = config(&[("RPS_LATITUDE", "91")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "RPS_LATITUDE=\"91\" is invalid: expected a latitude in degrees between -90 and 90"
        );
        let err = config(&[("OPEN_METEO_ARCHIVE_URL", "archive-api.open-meteo.com")]).unwrap_err();
        assert!(err.to_string().starts_with("OPEN_METEO_ARCHIVE_URL="), "{err}");
        let err = config(&[("RPS_STORE", "gs://bucket/x")]).unwrap_err();
        assert!(err.to_string().contains("RPS_STORE"), "{err}");
        let err = config(&[("RPS_MAX_NULL_SHARE", "5%")]).unwrap_err();
        assert!(err.to_string().contains("RPS_MAX_NULL_SHARE"), "{err}");
        let err = config(&[("RPS_MODEL_NAME", "my model")]).unwrap_err();
        assert!(err.to_string().contains("RPS_MODEL_NAME"), "{err}");
    }

    #[test]
    fn empty_variables_count_as_unset() {
        let c = config(&[("RPS_LATITUDE", ""), ("RPS_STORE", "  ")]).unwrap();
        assert_eq!(c.location.latitude.get(), DEFAULT_LATITUDE);
    }

    #[test]
    fn defaults_match_the_documented_table() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.source.archive_url.as_str(),
            vars::OPEN_METEO_ARCHIVE_URL.default.unwrap()
        );
        assert_eq!(
            c.location.latitude.get().to_string(),
            vars::RPS_LATITUDE.default.unwrap()
        );
        assert_eq!(c.registry.model_name, vars::RPS_MODEL_NAME.default.unwrap());
        assert_eq!(c.s3.multipart_threshold, 16 << 20);
        assert_eq!(c.serve.port, 8080);
        assert!(!c.serve.emf);
        let names: std::collections::HashSet<_> = vars::ALL.iter().map(|v| v.name).collect();
        assert_eq!(names.len(), vars::ALL.len(), "a variable is listed twice");
        let table = vars::markdown_table();
        assert_eq!(table.lines().count(), vars::ALL.len() + 2);
    }

    #[test]
    fn provenance_and_lambda_come_from_the_environment() {
        let c = config(&[
            ("GITHUB_SHA", "abc"),
            ("GITHUB_ACTOR", "octocat"),
            ("GITHUB_RUN_ID", "7"),
            ("AWS_LAMBDA_FUNCTION_NAME", "rps-api"),
            ("RPS_S3_MULTIPART_THRESHOLD_MB", "5"),
        ])
        .unwrap();
        assert_eq!(c.provenance.git_commit.as_deref(), Some("abc"));
        assert_eq!(c.provenance.actor, "octocat (GitHub Actions run 7)");
        assert!(c.serve.emf);
        assert_eq!(c.s3.multipart_threshold, 5 << 20);
        let err = config(&[("RPS_S3_MULTIPART_THRESHOLD_MB", "4")]).unwrap_err();
        assert!(err.to_string().contains("RPS_S3_MULTIPART_THRESHOLD_MB"), "{err}");
        let c = config(&[("RPS_GIT_COMMIT", "def"), ("GITHUB_SHA", "abc"), ("USER", "ada")]).unwrap();
        assert_eq!(c.provenance.git_commit.as_deref(), Some("def"));
        assert_eq!(c.provenance.actor, "ada (rps CLI)");
    }

    #[test]
    fn s3_store_urls_parse_into_bucket_and_prefix() {
        let c = config(&[("RPS_STORE", "s3://my-bucket/rps/prod/")]).unwrap();
        assert_eq!(
            c.store,
            StoreLocation::S3 {
                bucket: "my-bucket".into(),
                prefix: "rps/prod".into()
            }
        );
        assert_eq!(c.store.to_string(), "s3://my-bucket/rps/prod");
        assert_eq!(c.dvc_remote.to_string(), "s3://my-bucket/rps/prod/dvc");
        assert!(config(&[("RPS_STORE", "s3://A_B/x")]).is_err());
    }
}

//! Configuration: one typed struct, read from the environment once at start.
//!
//! Every value is parsed into a domain type here, so the rest of the library never
//! re-checks it, and this is the only module that reads the environment. A missing or
//! invalid value is a [`ConfigError`] naming the variable and what it expects. Empty
//! variables count as unset. The variables, their defaults and meanings are one table,
//! [`vars`]; `docs/configuration.md` is generated from it.

mod read;
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

impl Location {
    /// The same place, to about a metre (5 decimals): what a store's claim compares.
    pub fn same_place(&self, other: &Location) -> bool {
        (self.latitude.get() - other.latitude.get()).abs() < 1e-5
            && (self.longitude.get() - other.longitude.get()).abs() < 1e-5
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.latitude.get(), self.longitude.get())
    }
}

/// The id of a site (one location of `RPS_LOCATIONS`): a short slug of lowercase
/// letters, digits and inner '-', at most [`SiteId::MAX_LEN`] characters, so that it
/// fits a key prefix, a model name, a metric label and a Step Functions item as is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SiteId(String);

impl SiteId {
    pub const MAX_LEN: usize = 32;
    /// The one site of a deployment without `RPS_LOCATIONS`.
    pub const DEFAULT: &'static str = "default";
    pub const EXPECTED: &'static str =
        "a slug of 1 to 32 lowercase letters, digits and '-' (not first or last)";

    pub fn new(s: &str) -> Option<Self> {
        let ok = (1..=Self::MAX_LEN).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        ok.then(|| Self(s.to_owned()))
    }

    pub fn default_site() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SiteId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::new(&s).ok_or_else(|| format!("{s:?} is not a site id: expected {}", Self::EXPECTED))
    }
}

impl From<SiteId> for String {
    fn from(id: SiteId) -> Self {
        id.0
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which place this configuration is for, and where the list of places is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteConfig {
    /// `default` without `RPS_LOCATIONS`; else the entry's id.
    pub id: SiteId,
    pub name: String,
    /// `RPS_LOCATIONS`: where the list of locations is (read by `fleet::Fleet::load`).
    pub fleet: Option<StoreLocation>,
    /// How many sites run at a time on one machine (`RPS_LOCATION_CONCURRENCY`).
    pub concurrency: usize,
}

/// How to reach Open-Meteo and how hard to try.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SourceConfig {
    pub archive_url: Url,
    pub forecast_url: Url,
    /// Sent as `apikey`, never stored or logged (`OPEN_METEO_API_KEY`).
    pub api_key: Option<Secret>,
    /// Per attempt.
    pub timeout: Duration,
    /// Attempts in all, including the first.
    pub max_attempts: u32,
    /// Upper bound on the time spent retrying, sleeps included.
    pub max_retry_time: Duration,
    /// Hours of history the live (forecast) endpoint is asked for, as `past_days`.
    pub past_days: u8,
    /// Places one call asks for when a fleet ingests together.
    pub batch: usize,
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
    /// The prediction intervals a trained model is calibrated for.
    pub interval_levels: IntervalLevels,
}

/// Interval levels: each strictly between 0 and 1, each once, in increasing order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalLevels(Vec<f64>);

impl IntervalLevels {
    /// `None` for an empty list, a level outside (0, 1), or the same level twice.
    pub fn new(mut levels: Vec<f64>) -> Option<Self> {
        if levels.is_empty() || levels.iter().any(|l| !(*l > 0.0 && *l < 1.0)) {
            return None;
        }
        levels.sort_by(f64::total_cmp);
        if levels.windows(2).any(|w| w[0] == w[1]) {
            return None;
        }
        Some(Self(levels))
    }

    /// `0.8,0.95` (spaces allowed around the commas).
    pub fn parse(s: &str) -> Option<Self> {
        let levels: Option<Vec<f64>> = s.split(',').map(|l| l.trim().parse().ok()).collect();
        Self::new(levels?)
    }

    pub fn as_slice(&self) -> &[f64] {
        &self.0
    }
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
    pub drift: DriftThresholds,
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
    /// With several locations: the memory their loaded models may take, in bytes.
    pub model_cache_bytes: u64,
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

/// When the API's drift window counts as drifting (`RPS_DRIFT_*`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DriftThresholds {
    pub min_requests: usize,
    pub max_out_of_range_share: f64,
    pub max_psi: f64,
}

impl Default for DriftThresholds {
    fn default() -> Self {
        Self {
            min_requests: 300,
            max_out_of_range_share: 0.2,
            max_psi: 0.2,
        }
    }
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
    /// Intervals: each level's hold-out coverage may be this far from the level (a
    /// share: 0.05 = 5 percentage points) at every horizon.
    pub max_coverage_gap: f64,
    /// Intervals: over a hold-out shorter than this many hours the coverage margin is
    /// three times wider: a few weeks' coverage swings with their weather.
    pub min_interval_hours: usize,
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
    /// The floor of the 80% interval's 24 h live coverage at 6 h, published for the
    /// `RpsIntervalCoverageLow` alert.
    pub min_interval_coverage: f64,
    /// Verified scheduled forecasts per horizon (last 7 days) before the intervals are
    /// re-calibrated live; 0: never ([`crate::recalibration`]).
    pub recalibrate_min_hours: usize,
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
    pub site: SiteConfig,
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
        let location = Location::read(&env)?;
        Ok(Config {
            s3: S3Config::read(&env)?,
            site: SiteConfig::read(&env, &location)?,
            location,
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
mod tests;

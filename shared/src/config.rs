//! Configuration: one typed struct, read from the environment once at start.
//!
//! Every value is parsed into a domain type here, so the rest of the library never
//! re-checks it. A missing or invalid value is a [`ConfigError`] naming the variable
//! and what it expects. Empty variables count as unset.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

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
    /// How often the alias is re-checked; zero turns re-checking off.
    pub refresh: Duration,
    /// Requests in the drift window.
    pub drift_window: usize,
    pub max_body_bytes: usize,
    pub max_observations: usize,
    /// Emit CloudWatch Embedded Metric Format lines (on by default on Lambda).
    pub emf: bool,
}

/// The promotion gates' thresholds: what a candidate must show before it may serve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateConfig {
    /// Accuracy: the 6 h RMSE (°C) must be under this ceiling.
    pub max_rmse_h6: f64,
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

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub store: StoreLocation,
    /// The DVC remote processed datasets are pushed to (default: `<store>/dvc`).
    pub dvc_remote: StoreLocation,
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
}

impl Config {
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
        let store = env.parse(
            "RPS_STORE",
            "a local directory or s3://bucket/prefix",
            DEFAULT_STORE,
            |s| StoreLocation::parse(s).ok(),
        )?;
        let default_remote = match &store {
            StoreLocation::Local { path } => StoreLocation::Local {
                path: path.join("dvc"),
            },
            StoreLocation::S3 { bucket, prefix } => StoreLocation::S3 {
                bucket: bucket.clone(),
                prefix: if prefix.is_empty() {
                    "dvc".into()
                } else {
                    format!("{prefix}/dvc")
                },
            },
        };
        let dvc_remote = env.parse(
            "RPS_DVC_REMOTE",
            "a local directory or s3://bucket/prefix",
            &default_remote.to_string(),
            |s| StoreLocation::parse(s).ok(),
        )?;
        let latitude = env.parse(
            "RPS_LATITUDE",
            "a latitude in degrees between -90 and 90",
            &DEFAULT_LATITUDE.to_string(),
            |s| s.parse().ok().and_then(Latitude::new),
        )?;
        let longitude = env.parse(
            "RPS_LONGITUDE",
            "a longitude in degrees between -180 and 180",
            &DEFAULT_LONGITUDE.to_string(),
            |s| s.parse().ok().and_then(Longitude::new),
        )?;
        let http_url = |s: &str| {
            Url::parse(s)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        };
        let source = SourceConfig {
            archive_url: env.parse(
                "OPEN_METEO_ARCHIVE_URL",
                "a full http(s) URL",
                DEFAULT_ARCHIVE_URL,
                http_url,
            )?,
            forecast_url: env.parse(
                "OPEN_METEO_FORECAST_URL",
                "a full http(s) URL",
                DEFAULT_FORECAST_URL,
                http_url,
            )?,
            timeout: Duration::from_secs_f64(env.parse(
                "RPS_HTTP_TIMEOUT_SECS",
                "a number of seconds between 0.1 and 600",
                "30",
                |s| s.parse().ok().filter(|v: &f64| (0.1..=600.0).contains(v)),
            )?),
            max_attempts: env.parse(
                "RPS_HTTP_MAX_ATTEMPTS",
                "a whole number of attempts between 1 and 10",
                "4",
                |s| s.parse().ok().filter(|v| (1..=10).contains(v)),
            )?,
            max_retry_time: Duration::from_secs_f64(env.parse(
                "RPS_HTTP_MAX_RETRY_SECS",
                "a number of seconds between 0 and 3600",
                "60",
                |s| s.parse().ok().filter(|v: &f64| (0.0..=3600.0).contains(v)),
            )?),
            past_days: env.parse(
                "RPS_PAST_DAYS",
                "a whole number of days between 2 and 92",
                "7",
                |s| s.parse().ok().filter(|v| (2..=92).contains(v)),
            )?,
        };
        let quality = QualityConfig {
            max_null_share: env.parse(
                "RPS_MAX_NULL_SHARE",
                "a share between 0 and 1 (0.01 = 1%)",
                "0.01",
                |s| s.parse().ok().filter(|v: &f64| (0.0..=1.0).contains(v)),
            )?,
            max_gap_hours: env.parse(
                "RPS_MAX_GAP_HOURS",
                "a whole number of hours between 1 and 8760",
                "6",
                |s| s.parse().ok().filter(|v| (1..=8760).contains(v)),
            )?,
            max_staleness_hours: env.parse(
                "RPS_MAX_STALENESS_HOURS",
                "a whole number of hours between 1 and 8760",
                "3",
                |s| s.parse().ok().filter(|v| (1..=8760).contains(v)),
            )?,
            min_rows: env.parse(
                "RPS_MIN_ROWS",
                "a whole number of hours of at least 48",
                "48",
                |s| s.parse().ok().filter(|v| *v >= 48),
            )?,
        };
        let transform = TransformConfig {
            max_fill_hours: env.parse(
                "RPS_MAX_FILL_HOURS",
                "a whole number of hours between 0 and 24",
                "3",
                |s| s.parse().ok().filter(|v| *v <= 24),
            )?,
        };
        let train = TrainConfig {
            holdout_fraction: env.parse(
                "RPS_HOLDOUT_FRACTION",
                "a share between 0.05 and 0.5",
                "0.15",
                |s| s.parse().ok().filter(|v: &f64| (0.05..=0.5).contains(v)),
            )?,
            validation_fraction: env.parse(
                "RPS_VALIDATION_FRACTION",
                "a share between 0.05 and 0.5",
                "0.15",
                |s| s.parse().ok().filter(|v: &f64| (0.05..=0.5).contains(v)),
            )?,
            seed: env.parse("RPS_SEED", "a whole number", "42", |s| s.parse().ok())?,
        };
        let model_name = env.parse(
            "RPS_MODEL_NAME",
            "a model name of letters, digits, '-', '_' or '.' (at most 100)",
            DEFAULT_MODEL_NAME,
            |s| valid_model_name(s).then(|| s.to_owned()),
        )?;
        let default_cache = std::env::temp_dir().join("rps-models");
        let registry = RegistryConfig {
            model_name,
            cache_dir: env.parse(
                "RPS_MODEL_CACHE",
                "a directory path",
                &default_cache.to_string_lossy(),
                |s| Some(PathBuf::from(s)),
            )?,
        };
        let mlflow = match env.get("MLFLOW_TRACKING_URI") {
            None => None,
            Some(_) => Some(MlflowConfig {
                tracking_uri: env.parse(
                    "MLFLOW_TRACKING_URI",
                    "the http(s) URL of an MLflow tracking server",
                    "",
                    http_url,
                )?,
                auth: match (
                    env.get("MLFLOW_TRACKING_USERNAME"),
                    env.get("MLFLOW_TRACKING_PASSWORD"),
                    env.get("MLFLOW_TRACKING_TOKEN"),
                ) {
                    (Some(username), Some(password), _) => MlflowAuth::Basic {
                        username,
                        password: Secret::new(password),
                    },
                    (Some(_), None, _) => {
                        return Err(ConfigError::Missing {
                            var: "MLFLOW_TRACKING_PASSWORD",
                            expected: "a password, since MLFLOW_TRACKING_USERNAME is set",
                        });
                    }
                    (None, Some(_), _) => {
                        return Err(ConfigError::Missing {
                            var: "MLFLOW_TRACKING_USERNAME",
                            expected: "a user name, since MLFLOW_TRACKING_PASSWORD is set",
                        });
                    }
                    (None, None, Some(token)) => MlflowAuth::Bearer {
                        token: Secret::new(token),
                    },
                    (None, None, None) => MlflowAuth::None,
                },
                experiment: env.parse(
                    "MLFLOW_EXPERIMENT_NAME",
                    "an experiment name",
                    DEFAULT_EXPERIMENT,
                    |s| Some(s.to_owned()),
                )?,
                timeout: Duration::from_secs_f64(env.parse(
                    "MLFLOW_HTTP_REQUEST_TIMEOUT",
                    "a number of seconds between 1 and 600",
                    "120",
                    |s| s.parse().ok().filter(|v: &f64| (1.0..=600.0).contains(v)),
                )?),
            }),
        };
        let on_lambda = env.get("AWS_LAMBDA_FUNCTION_NAME").is_some();
        let serve = ServeConfig {
            model_alias: env.parse(
                "RPS_MODEL_ALIAS",
                "an alias name of letters, digits, '-' or '_'",
                "production",
                |s| {
                    (s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                        && !crate::mlflow::is_reserved_alias(s))
                    .then(|| s.to_owned())
                },
            )?,
            model_path: env.get("RPS_MODEL_PATH").map(PathBuf::from),
            refresh: Duration::from_secs(env.parse(
                "RPS_MODEL_REFRESH_SECS",
                "a whole number of seconds (0 turns re-checking off)",
                "60",
                |s| s.parse().ok(),
            )?),
            drift_window: env.parse(
                "RPS_DRIFT_WINDOW",
                "a number of requests between 10 and 100000",
                "500",
                |s| s.parse().ok().filter(|v| (10..=100_000).contains(v)),
            )?,
            max_body_bytes: env.parse(
                "RPS_MAX_BODY_BYTES",
                "a number of bytes between 1024 and 10485760",
                "262144",
                |s| s.parse().ok().filter(|v| (1024..=10 << 20).contains(v)),
            )?,
            max_observations: env.parse(
                "RPS_MAX_OBSERVATIONS",
                "a number of hours between 25 and 8784",
                "744",
                |s| s.parse().ok().filter(|v| (25..=8784).contains(v)),
            )?,
            emf: env.parse(
                "RPS_METRICS_EMF",
                "true or false",
                if on_lambda { "true" } else { "false" },
                |s| s.parse().ok(),
            )?,
        };
        let share = |s: &str| s.parse().ok().filter(|v: &f64| (0.0..=10.0).contains(v));
        let gates = GateConfig {
            max_rmse_h6: env.parse(
                "RPS_GATE_MAX_RMSE_H6",
                "a positive number of degrees Celsius",
                "2.0",
                |s| s.parse().ok().filter(|v: &f64| *v > 0.0 && v.is_finite()),
            )?,
            max_regression_headline: env.parse(
                "RPS_GATE_MAX_REGRESSION",
                "a share between 0 and 10 (0.02 = 2% worse than production at 6 h)",
                "0.02",
                share,
            )?,
            max_regression_any: env.parse(
                "RPS_GATE_MAX_REGRESSION_ANY",
                "a share between 0 and 10 (0.10 = 10% worse than production at any horizon)",
                "0.10",
                share,
            )?,
            min_skill: env.parse(
                "RPS_GATE_MIN_SKILL",
                "a share between -1 and 1 (0 = must beat persistence)",
                "0",
                |s| s.parse().ok().filter(|v: &f64| (-1.0..1.0).contains(v)),
            )?,
            max_p99_ms: env.parse(
                "RPS_GATE_MAX_P99_MS",
                "a positive number of milliseconds",
                "2",
                |s| s.parse().ok().filter(|v: &f64| *v > 0.0 && v.is_finite()),
            )?,
            min_holdout_rows: env.parse(
                "RPS_GATE_MIN_HOLDOUT_ROWS",
                "a number of rows of at least 10",
                "48",
                |s| s.parse().ok().filter(|v| *v >= 10),
            )?,
            staging_url: match env.get("RPS_STAGING_URL") {
                None => None,
                Some(_) => Some(env.parse(
                    "RPS_STAGING_URL",
                    "an http(s) URL of the staging API, e.g. http://127.0.0.1:8081",
                    "",
                    |s| {
                        Url::parse(s)
                            .ok()
                            .filter(|u| matches!(u.scheme(), "http" | "https"))
                    },
                )?),
            },
            staging_wait: Duration::from_secs(env.parse(
                "RPS_STAGING_WAIT_SECS",
                "a whole number of seconds up to 3600",
                "120",
                |s| s.parse().ok().filter(|v| *v <= 3600),
            )?),
            report_max_age: Duration::from_secs(env.parse(
                "RPS_GATE_REPORT_MAX_AGE_SECS",
                "a whole number of seconds",
                "86400",
                |s| s.parse().ok(),
            )?),
        };
        Ok(Config {
            gates,
            store,
            dvc_remote,
            location: Location { latitude, longitude },
            source,
            quality,
            transform,
            train,
            registry,
            mlflow,
            serve,
        })
    }
}

pub fn valid_model_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    /// Parses `var` (or `default` when unset) with `parse`; `None` from `parse` is an
    /// invalid value.
    fn parse<T>(
        &self,
        var: &'static str,
        expected: &'static str,
        default: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T, ConfigError> {
        let raw = self.get(var).unwrap_or_else(|| default.to_owned());
        parse(&raw).ok_or(ConfigError::Invalid {
            var,
            value: raw,
            expected,
        })
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
        let err = config(&[
            ("MLFLOW_TRACKING_URI", "http://x"),
            ("MLFLOW_TRACKING_USERNAME", "ada"),
        ])
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "MLFLOW_TRACKING_PASSWORD is required: expected a password, since MLFLOW_TRACKING_USERNAME is set"
        );
        let err = config(&[("MLFLOW_TRACKING_URI", "databricks")]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("MLFLOW_TRACKING_URI=\"databricks\" is invalid"),
            "{err}"
        );
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

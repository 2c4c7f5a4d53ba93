//! One reader per section of the configuration, and the value parsers they share.

use std::time::Duration;

use url::Url;

use super::*;

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
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
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
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            latitude: env.parse(&vars::RPS_LATITUDE, |s| s.parse().ok().and_then(Latitude::new))?,
            longitude: env.parse(&vars::RPS_LONGITUDE, |s| s.parse().ok().and_then(Longitude::new))?,
        })
    }
}

impl SiteConfig {
    pub(super) fn read(env: &Env, location: &Location) -> Result<Self, ConfigError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self {
            id: SiteId::default_site(),
            name: location.to_string(),
            fleet: env.optional(&vars::RPS_LOCATIONS, |s| {
                StoreLocation::parse(s).ok().filter(|l| match l {
                    StoreLocation::S3 { prefix, .. } => !prefix.is_empty(),
                    StoreLocation::Local { .. } => true,
                })
            })?,
            concurrency: env
                .optional(&vars::RPS_LOCATION_CONCURRENCY, number_in(1..=256))?
                .unwrap_or(cores.min(256)),
        })
    }
}

impl SourceConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            archive_url: env.parse(&vars::OPEN_METEO_ARCHIVE_URL, http_url)?,
            forecast_url: env.parse(&vars::OPEN_METEO_FORECAST_URL, http_url)?,
            api_key: env.optional(&vars::OPEN_METEO_API_KEY, |s| Some(Secret::new(s)))?,
            timeout: seconds(env.parse(&vars::RPS_HTTP_TIMEOUT_SECS, number_in(0.1..=600.0))?),
            max_attempts: env.parse(&vars::RPS_HTTP_MAX_ATTEMPTS, number_in(1..=10))?,
            max_retry_time: seconds(env.parse(&vars::RPS_HTTP_MAX_RETRY_SECS, number_in(0.0..=3600.0))?),
            past_days: env.parse(&vars::RPS_PAST_DAYS, number_in(2..=92))?,
            batch: env.parse(&vars::RPS_OPEN_METEO_BATCH, number_in(1..=200))?,
        })
    }
}

impl QualityConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max_null_share: env.parse(&vars::RPS_MAX_NULL_SHARE, number_in(0.0..=1.0))?,
            max_gap_hours: env.parse(&vars::RPS_MAX_GAP_HOURS, number_in(1..=8760))?,
            max_staleness_hours: env.parse(&vars::RPS_MAX_STALENESS_HOURS, number_in(1..=8760))?,
            min_rows: env.parse(&vars::RPS_MIN_ROWS, at_least(48))?,
        })
    }
}

impl TransformConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max_fill_hours: env.parse(&vars::RPS_MAX_FILL_HOURS, number_in(0..=24))?,
        })
    }
}

impl TrainConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            holdout_fraction: env.parse(&vars::RPS_HOLDOUT_FRACTION, number_in(0.05..=0.5))?,
            validation_fraction: env.parse(&vars::RPS_VALIDATION_FRACTION, number_in(0.05..=0.5))?,
            seed: env.parse(&vars::RPS_SEED, |s| s.parse().ok())?,
            interval_levels: env.parse(&vars::RPS_INTERVAL_LEVELS, IntervalLevels::parse)?,
        })
    }
}

impl RegistryConfig {
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
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
    pub(super) fn read(env: &Env) -> Result<Option<Self>, ConfigError> {
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
    pub(super) fn read(env: &Env) -> (Self, String) {
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
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
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
            drift: DriftThresholds {
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
            model_cache_bytes: env.parse(&vars::RPS_MODEL_CACHE_MB, number_in(1u64..=65_536))? << 20,
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
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        let share = number_in(0.0..=10.0);
        let skill = |s: &str| s.parse().ok().filter(|v: &f64| (-1.0..1.0).contains(v));
        Ok(Self {
            min_skill_seasonal: env.parse(&vars::RPS_GATE_MIN_SKILL_SEASONAL, skill)?,
            max_rmse_h6: env.optional(&vars::RPS_GATE_MAX_RMSE_H6, positive_finite)?,
            max_regression_headline: env.parse(&vars::RPS_GATE_MAX_REGRESSION, &share)?,
            max_regression_any: env.parse(&vars::RPS_GATE_MAX_REGRESSION_ANY, &share)?,
            max_coverage_gap: env.parse(&vars::RPS_GATE_MAX_COVERAGE_GAP, |s| {
                s.parse().ok().filter(|v: &f64| *v > 0.0 && *v < 0.5)
            })?,
            min_interval_hours: env.parse(&vars::RPS_GATE_MIN_INTERVAL_HOURS, at_least(24))?,
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
    pub(super) fn read(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            max_mismatch: env.parse(&vars::RPS_VERIFY_MAX_MISMATCH, number_in(0.0..=50.0))?,
            min_interval_coverage: env
                .parse(&vars::RPS_VERIFY_MIN_INTERVAL_COVERAGE, number_in(0.0..=1.0))?,
            recalibrate_min_hours: env.parse(&vars::RPS_RECALIBRATE_MIN_HOURS, number_in(0..=168))?,
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
    pub(super) fn read(env: &Env) -> Self {
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

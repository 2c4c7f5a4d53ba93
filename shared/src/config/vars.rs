//! Every environment variable rps reads: its name, default, the values it accepts and
//! what it means. [`super::Config`] parses them; `docs/configuration.md` is generated
//! from this table (`rps config --markdown`) and a test keeps the two equal.

/// One environment variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    /// The value used when the variable is unset or empty; `None`: unset has its own
    /// meaning (see [`Var::shown_default`]).
    pub default: Option<&'static str>,
    /// How the docs show a default that is not a literal (derived, or "unset").
    pub shown_default: Option<&'static str>,
    /// The values accepted, in the words an error message uses.
    pub expected: &'static str,
    pub meaning: &'static str,
    /// A location of `RPS_LOCATIONS` may set its own value (its `overrides`).
    pub per_location: bool,
}

impl Var {
    const fn new(
        name: &'static str,
        default: &'static str,
        expected: &'static str,
        meaning: &'static str,
    ) -> Self {
        Self {
            name,
            default: Some(default),
            shown_default: None,
            expected,
            meaning,
            per_location: false,
        }
    }

    /// A variable whose absence means something (no server, no override, derived).
    const fn unset(
        name: &'static str,
        shown: &'static str,
        expected: &'static str,
        meaning: &'static str,
    ) -> Self {
        Self {
            name,
            default: None,
            shown_default: Some(shown),
            expected,
            meaning,
            per_location: false,
        }
    }

    /// A threshold a location of `RPS_LOCATIONS` may set for itself.
    const fn local(self) -> Self {
        Self {
            per_location: true,
            ..self
        }
    }

    /// A literal default shown differently in the docs.
    const fn shown(self, shown: &'static str) -> Self {
        Self {
            shown_default: Some(shown),
            ..self
        }
    }
}

// ---- storage
pub const RPS_STORE: Var = Var::new(
    "RPS_STORE",
    ".rps/store",
    "a local directory or s3://bucket/prefix",
    "where objects live",
);
pub const RPS_DVC_REMOTE: Var = Var::unset(
    "RPS_DVC_REMOTE",
    "`<RPS_STORE>/dvc`",
    "a local directory or s3://bucket/prefix",
    "the DVC remote processed datasets are pushed to",
);
pub const RPS_S3_MULTIPART_THRESHOLD_MB: Var = Var::new(
    "RPS_S3_MULTIPART_THRESHOLD_MB",
    "16",
    "a whole number of MiB of at least 5",
    "objects above this size go to S3 in parts",
);
pub const RPS_S3_ATTEMPT_TIMEOUT_SECS: Var = Var::new(
    "RPS_S3_ATTEMPT_TIMEOUT_SECS",
    "30",
    "a number of seconds between 1 and 600",
    "S3: timeout of one attempt of an operation",
);
pub const RPS_S3_OPERATION_TIMEOUT_SECS: Var = Var::new(
    "RPS_S3_OPERATION_TIMEOUT_SECS",
    "120",
    "a number of seconds between 1 and 3600",
    "S3: timeout of an operation, retries included",
);
pub const AWS_ENDPOINT_URL_S3: Var = Var::unset(
    "AWS_ENDPOINT_URL_S3",
    "unset (AWS)",
    "the URL of an S3-compatible server",
    "another S3 server (MinIO, moto); `AWS_ENDPOINT_URL` too. Other `AWS_*` variables follow the standard chain",
);
pub const AWS_ENDPOINT_URL: Var = Var::unset(
    "AWS_ENDPOINT_URL",
    "unset (AWS)",
    "the URL of an AWS-compatible endpoint",
    "the endpoint of every AWS service, S3 included, unless `AWS_ENDPOINT_URL_S3` says otherwise",
);

// ---- the location and the source
pub const RPS_LATITUDE: Var = Var::new(
    "RPS_LATITUDE",
    "55.317",
    "a latitude in degrees between -90 and 90",
    "the location's latitude (default: Sand Point, AK, the sample's station)",
);
pub const RPS_LONGITUDE: Var = Var::new(
    "RPS_LONGITUDE",
    "-160.517",
    "a longitude in degrees between -180 and 180",
    "the location's longitude",
);
pub const RPS_LOCATIONS: Var = Var::unset(
    "RPS_LOCATIONS",
    "unset (one location: `RPS_LATITUDE`, `RPS_LONGITUDE`)",
    "a local path or s3://bucket/key of a JSON list of locations",
    "many locations in one deployment: each gets its own store prefix (`locations/<id>/`), model (`<RPS_MODEL_NAME>-<id>`) and thresholds ([docs/locations.md](locations.md))",
);
pub const RPS_LOCATION_CONCURRENCY: Var = Var::unset(
    "RPS_LOCATION_CONCURRENCY",
    "the number of cores",
    "a whole number between 1 and 256",
    "how many locations `rps pipeline` and `rps verify` run at a time",
);
pub const OPEN_METEO_ARCHIVE_URL: Var = Var::new(
    "OPEN_METEO_ARCHIVE_URL",
    "https://archive-api.open-meteo.com/v1/archive",
    "a full http(s) URL",
    "the archive endpoint (backfills)",
);
pub const OPEN_METEO_FORECAST_URL: Var = Var::new(
    "OPEN_METEO_FORECAST_URL",
    "https://api.open-meteo.com/v1/forecast",
    "a full http(s) URL",
    "the forecast endpoint (live ingests)",
);
pub const OPEN_METEO_API_KEY: Var = Var::unset(
    "OPEN_METEO_API_KEY",
    "unset (the free tier)",
    "an Open-Meteo API key (a secret)",
    "sent as `apikey` with every request, for the customer endpoints (`https://customer-archive-api.open-meteo.com/v1/archive`, `https://customer-api.open-meteo.com/v1/forecast`) beyond the free tier's limits; never logged or stored with a snapshot",
);
pub const RPS_PAST_DAYS: Var = Var::new(
    "RPS_PAST_DAYS",
    "7",
    "a whole number of days between 2 and 92",
    "`past_days` for live ingests",
);
pub const RPS_OPEN_METEO_BATCH: Var = Var::new(
    "RPS_OPEN_METEO_BATCH",
    "50",
    "a whole number of places between 1 and 200",
    "with RPS_LOCATIONS: how many locations one Open-Meteo call asks for (`rps pipeline`, `rps ingest` over a fleet); each place still counts as a call against the quota",
);
pub const RPS_HTTP_TIMEOUT_SECS: Var = Var::new(
    "RPS_HTTP_TIMEOUT_SECS",
    "30",
    "a number of seconds between 0.1 and 600",
    "Open-Meteo: timeout per attempt",
);
pub const RPS_HTTP_MAX_ATTEMPTS: Var = Var::new(
    "RPS_HTTP_MAX_ATTEMPTS",
    "4",
    "a whole number of attempts between 1 and 10",
    "Open-Meteo: attempts in all",
);
pub const RPS_HTTP_MAX_RETRY_SECS: Var = Var::new(
    "RPS_HTTP_MAX_RETRY_SECS",
    "60",
    "a number of seconds between 0 and 3600",
    "Open-Meteo: total time spent retrying",
);

// ---- the data quality gate and the transform
pub const RPS_MAX_NULL_SHARE: Var = Var::new(
    "RPS_MAX_NULL_SHARE",
    "0.01",
    "a share between 0 and 1 (0.01 = 1%)",
    "quality gate: largest share of nulls in a key variable",
)
.local();
pub const RPS_MAX_GAP_HOURS: Var = Var::new(
    "RPS_MAX_GAP_HOURS",
    "6",
    "a whole number of hours between 1 and 8760",
    "quality gate: longest run of missing hours",
)
.local();
pub const RPS_MAX_STALENESS_HOURS: Var = Var::new(
    "RPS_MAX_STALENESS_HOURS",
    "3",
    "a whole number of hours between 1 and 8760",
    "quality gate: how old the newest hour of a live snapshot may be",
)
.local();
pub const RPS_MIN_ROWS: Var = Var::new(
    "RPS_MIN_ROWS",
    "48",
    "a whole number of hours of at least 48",
    "quality gate: fewest hours in a snapshot",
)
.local();
pub const RPS_MAX_FILL_HOURS: Var = Var::new(
    "RPS_MAX_FILL_HOURS",
    "3",
    "a whole number of hours between 0 and 24",
    "longest gap the transform interpolates",
)
.local();

// ---- training and the registry
pub const RPS_VALIDATION_FRACTION: Var = Var::new(
    "RPS_VALIDATION_FRACTION",
    "0.15",
    "a share between 0.05 and 0.5",
    "share of the rows before the hold-out used to choose the model",
)
.local();
pub const RPS_HOLDOUT_FRACTION: Var = Var::new(
    "RPS_HOLDOUT_FRACTION",
    "0.15",
    "a share between 0.05 and 0.5",
    "share of the newest rows held out for the final evaluation",
)
.local();
pub const RPS_SEED: Var = Var::new("RPS_SEED", "42", "a whole number", "the training seed");
pub const RPS_INTERVAL_LEVELS: Var = Var::new(
    "RPS_INTERVAL_LEVELS",
    "0.8,0.95",
    "comma-separated levels strictly between 0 and 1, each once",
    "the central coverages of the prediction intervals a trained model carries (conformal, per horizon)",
)
.local();
pub const RPS_MODEL_NAME: Var = Var::new(
    "RPS_MODEL_NAME",
    "rps-temperature",
    "a model name of letters, digits, '-', '_' or '.' (at most 100)",
    "the registered model's name",
);
pub const RPS_MODEL_CACHE: Var = Var::unset(
    "RPS_MODEL_CACHE",
    "`$TMPDIR/rps-models`",
    "a directory path",
    "downloaded bundles, by version and checksum",
);

// ---- MLflow
pub const MLFLOW_TRACKING_URI: Var = Var::unset(
    "MLFLOW_TRACKING_URI",
    "unset (local registry in the store)",
    "the http(s) URL of an MLflow tracking server",
    "the MLflow server (`make demo` starts one)",
);
pub const MLFLOW_TRACKING_USERNAME: Var = Var::unset(
    "MLFLOW_TRACKING_USERNAME",
    "unset",
    "a user name",
    "Basic auth user: used only with MLFLOW_TRACKING_PASSWORD, as MLflow's client does (DagsHub: your user name)",
);
pub const MLFLOW_TRACKING_PASSWORD: Var = Var::unset(
    "MLFLOW_TRACKING_PASSWORD",
    "unset",
    "a password",
    "Basic auth password, with the user name (DagsHub: your token; never logged)",
);
pub const MLFLOW_TRACKING_TOKEN: Var = Var::unset(
    "MLFLOW_TRACKING_TOKEN",
    "unset",
    "a token",
    "Bearer token, used unless a user name and a password are both set (never logged)",
);
pub const RPS_MLFLOW_SECRET_ID: Var = Var::unset(
    "RPS_MLFLOW_SECRET_ID",
    "unset",
    "the name or ARN of a Secrets Manager secret",
    "the MLflow credentials, read from Secrets Manager at start (a token, or JSON with `token` or `username` and `password`); the Lambda functions and the CI jobs use it, so the token has one copy",
);
pub const MLFLOW_EXPERIMENT_NAME: Var = Var::new(
    "MLFLOW_EXPERIMENT_NAME",
    "rps",
    "an experiment name",
    "the experiment training runs go to",
);
pub const MLFLOW_HTTP_REQUEST_TIMEOUT: Var = Var::new(
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "120",
    "a number of seconds between 1 and 600",
    "seconds per MLflow request",
);

// ---- serving
pub const RPS_MODEL_ALIAS: Var = Var::new(
    "RPS_MODEL_ALIAS",
    "production",
    "an alias name of letters, digits, '-' or '_' (not latest or v<N>)",
    "the alias this deployment serves, gates against and promotes to; a deployment other than production (staging) moves only its own aliases (`<alias>-candidate`, `<alias>-previous`)",
);
pub const RPS_MODEL_PATH: Var = Var::unset(
    "RPS_MODEL_PATH",
    "unset",
    "a bundle file",
    "serve this bundle file instead of the registry",
);
pub const RPS_MODEL_SHA256: Var = Var::unset(
    "RPS_MODEL_SHA256",
    "unset (or `<RPS_MODEL_PATH>.sha256` beside the file)",
    "64 hex digits",
    "the sha256 the bundle file must have; a file that does not match is not served",
);
pub const RPS_MODEL_REFRESH_SECS: Var = Var::new(
    "RPS_MODEL_REFRESH_SECS",
    "60",
    "a whole number of seconds (0 turns re-checking off)",
    "how often the API re-checks the alias",
);
pub const RPS_DRIFT_WINDOW: Var = Var::new(
    "RPS_DRIFT_WINDOW",
    "500",
    "a number of requests between 10 and 100000",
    "prediction requests in the drift window",
);
pub const RPS_DRIFT_MIN_REQUESTS: Var = Var::new(
    "RPS_DRIFT_MIN_REQUESTS",
    "300",
    "a number of requests between 20 and 100000",
    "requests the drift window needs before it can call drift",
)
.local();
pub const RPS_DRIFT_MAX_OUT_OF_RANGE: Var = Var::new(
    "RPS_DRIFT_MAX_OUT_OF_RANGE",
    "0.2",
    "a share between 0 and 1",
    "drift: largest share of requests with a feature outside its training range",
)
.local();
pub const RPS_DRIFT_MAX_PSI: Var = Var::new(
    "RPS_DRIFT_MAX_PSI",
    "0.2",
    "a positive number",
    "drift: largest PSI of any weather feature against training",
)
.local();
pub const RPS_MAX_BODY_BYTES: Var = Var::new(
    "RPS_MAX_BODY_BYTES",
    "262144",
    "a number of bytes between 1024 and 10485760",
    "largest request body",
);
pub const RPS_MAX_OBSERVATIONS: Var = Var::new(
    "RPS_MAX_OBSERVATIONS",
    "744",
    "a number of hours between 25 and 8784",
    "most observations in one request",
);
pub const RPS_METRICS_EMF: Var = Var::unset(
    "RPS_METRICS_EMF",
    "on under Lambda",
    "true or false",
    "CloudWatch EMF lines per request",
);
pub const RPS_METRICS_NAMESPACE: Var = Var::new(
    "RPS_METRICS_NAMESPACE",
    "rps",
    "a CloudWatch namespace (letters, digits, . _ - / # :; not AWS/...)",
    "the EMF lines' namespace (template.yaml: rps-<Environment>, so each stack's alarms read its own metrics)",
);
pub const RPS_FORECAST_LOG_SAMPLE: Var = Var::new(
    "RPS_FORECAST_LOG_SAMPLE",
    "60",
    "a whole number of forecasts between 0 and 10000",
    "the API: distinct `/predict` answers kept for the forecast log per flush, a uniform sample (0: none)",
);
pub const RPS_FORECAST_LOG_FLUSH_SECS: Var = Var::new(
    "RPS_FORECAST_LOG_FLUSH_SECS",
    "60",
    "a number of seconds between 1 and 3600",
    "the API: how often the sampled forecasts are written to the store (never inside a request)",
);
pub const RPS_MODEL_LOAD_TIMEOUT_SECS: Var = Var::new(
    "RPS_MODEL_LOAD_TIMEOUT_SECS",
    "8",
    "a number of seconds between 1 and 600",
    "how long start-up waits for the first model load (Lambda's init phase has 10 s); loading goes on in the background",
);
pub const RPS_MODEL_CACHE_MB: Var = Var::new(
    "RPS_MODEL_CACHE_MB",
    "96",
    "a number of MiB between 1 and 65536",
    "with RPS_LOCATIONS: how much memory the API gives the models of the locations it answers for; the least recently used are unloaded beyond it (the first location stays)",
);
pub const RPS_STORE_TIMEOUT_SECS: Var = Var::new(
    "RPS_STORE_TIMEOUT_SECS",
    "10",
    "a number of seconds between 1 and 600",
    "how long a request waits for the store (`/forecast`) before answering 503",
);
pub const RPS_HEADER_READ_TIMEOUT_SECS: Var = Var::new(
    "RPS_HEADER_READ_TIMEOUT_SECS",
    "10",
    "a number of seconds between 1 and 600",
    "server: how long a client may take to send its request head",
);
pub const RPS_REQUEST_TIMEOUT_SECS: Var = Var::new(
    "RPS_REQUEST_TIMEOUT_SECS",
    "30",
    "a number of seconds between 1 and 600",
    "server: how long answering one request may take, body included (408 after)",
);
pub const PORT: Var = Var::new(
    "PORT",
    "8080",
    "a port number",
    "the `rps-api` server's port outside Lambda",
);

// ---- the promotion gates
pub const RPS_GATE_MAX_RMSE_H6: Var = Var::unset(
    "RPS_GATE_MAX_RMSE_H6",
    "unset (no absolute ceiling: the accuracy gate is relative to the location's baselines)",
    "a positive number of degrees Celsius",
    "accuracy gate, opt-in: a 6 h RMSE ceiling (°C) on top of the relative rule",
)
.local();
pub const RPS_GATE_MIN_SKILL_SEASONAL: Var = Var::new(
    "RPS_GATE_MIN_SKILL_SEASONAL",
    "0",
    "a share between -1 and 1 (0 = must beat the same hour yesterday)",
    "accuracy gate: required improvement over the seasonal-naive forecast at every horizon",
)
.local();
pub const RPS_GATE_MAX_REGRESSION: Var = Var::new(
    "RPS_GATE_MAX_REGRESSION",
    "0.02",
    "a share between 0 and 10 (0.02 = 2% worse than production at 6 h)",
    "no-regression gate: allowed RMSE increase over production at 6 h",
)
.local();
pub const RPS_GATE_MAX_REGRESSION_ANY: Var = Var::new(
    "RPS_GATE_MAX_REGRESSION_ANY",
    "0.10",
    "a share between 0 and 10 (0.10 = 10% worse than production at any horizon)",
    "no-regression gate: allowed RMSE increase over production at any horizon",
)
.local();
pub const RPS_GATE_MAX_COVERAGE_GAP: Var = Var::new(
    "RPS_GATE_MAX_COVERAGE_GAP",
    "0.05",
    "a share above 0 and below 0.5 (0.05 = 5 percentage points)",
    "intervals gate: how far each level's hold-out coverage may be from the level, at every horizon",
)
.local();
pub const RPS_GATE_MIN_INTERVAL_HOURS: Var = Var::new(
    "RPS_GATE_MIN_INTERVAL_HOURS",
    "1008",
    "a whole number of hours, at least 24 (1008 = six weeks)",
    "intervals gate: the hold-out hours below which the coverage margin is three times wider (a few weeks' coverage swings with their weather)",
).local();
pub const RPS_GATE_MIN_SKILL: Var = Var::new(
    "RPS_GATE_MIN_SKILL",
    "0",
    "a share between -1 and 1 (0 = must beat persistence)",
    "skill gate: required improvement over persistence at every horizon",
)
.local();
pub const RPS_GATE_MAX_P99_MS: Var = Var::new(
    "RPS_GATE_MAX_P99_MS",
    "2",
    "a positive number of milliseconds",
    "latency gate: p99 of one in-process prediction",
);
pub const RPS_GATE_MIN_HOLDOUT_ROWS: Var = Var::new(
    "RPS_GATE_MIN_HOLDOUT_ROWS",
    "48",
    "a number of rows of at least 10",
    "fewest unseen hold-out rows an evaluation accepts",
)
.local();
pub const RPS_STAGING_URL: Var = Var::unset(
    "RPS_STAGING_URL",
    "unset",
    "an http(s) URL of the staging API, e.g. http://127.0.0.1:8081",
    "the staging API the smoke gate tests",
)
.local();
pub const RPS_STAGING_WAIT_SECS: Var = Var::new(
    "RPS_STAGING_WAIT_SECS",
    "120",
    "a whole number of seconds up to 3600",
    "how long the release flow waits for staging to serve the candidate",
);
pub const RPS_GATE_REPORT_MAX_AGE_SECS: Var = Var::new(
    "RPS_GATE_REPORT_MAX_AGE_SECS",
    "86400",
    "a whole number of seconds",
    "how old a stored report `rps promote --report` still trusts",
);

// ---- verification and retraining
pub const RPS_VERIFY_MAX_MISMATCH: Var = Var::new(
    "RPS_VERIFY_MAX_MISMATCH",
    "1",
    "a temperature difference in °C between 0 and 50",
    "verify: a logged forecast whose temperature at its issue hour differs from the store's by more was made from other observations and is not scored",
).local();
pub const RPS_VERIFY_MIN_INTERVAL_COVERAGE: Var = Var::new(
    "RPS_VERIFY_MIN_INTERVAL_COVERAGE",
    "0.7",
    "a share between 0 and 1",
    "alert RpsIntervalCoverageLow: the 24 h live coverage of the 80% interval the served version's 6 h forecasts must keep",
).local();
pub const RPS_RECALIBRATE_MIN_HOURS: Var = Var::new(
    "RPS_RECALIBRATE_MIN_HOURS",
    "48",
    "a whole number of hours from 0 to 168",
    "live re-calibration of the intervals: verified scheduled forecasts per horizon, of the last 7 days, before verify re-fits the factor serving multiplies the served version's half-widths by (0 turns it off: served as calibrated)",
).local();
pub const RPS_RETRAIN_MIN_SKILL: Var = Var::new(
    "RPS_RETRAIN_MIN_SKILL",
    "0",
    "a share from -1 to below 1",
    "retrain when the served model's live 6 h skill against persistence over the last 24 hours is below this",
)
.local();
pub const RPS_RETRAIN_MIN_HOURS: Var = Var::new(
    "RPS_RETRAIN_MIN_HOURS",
    "12",
    "a whole number of hours between 1 and 24",
    "verified 6 h forecasts (for live skill) or observed hours (for drift) in the last 24 hours before either can ask for a retrain",
).local();
pub const RPS_RETRAIN_COOLDOWN_HOURS: Var = Var::new(
    "RPS_RETRAIN_COOLDOWN_HOURS",
    "24",
    "a whole number of hours between 0 and 8760",
    "no retrain is asked for again within this many hours (on the data's clock) of the last",
)
.local();
pub const RPS_RETRAIN_DAYS: Var = Var::new(
    "RPS_RETRAIN_DAYS",
    "365",
    "a whole number of days between 7 and 3660",
    "a triggered retrain fetches this many days of the archive",
)
.local();
pub const RPS_RETRAIN_LAG_DAYS: Var = Var::new(
    "RPS_RETRAIN_LAG_DAYS",
    "5",
    "a whole number of days between 0 and 60",
    "…ending this many days before the newest observation (the archive's delay)",
)
.local();

// ---- provenance and logs
pub const RPS_GIT_COMMIT: Var = Var::unset(
    "RPS_GIT_COMMIT",
    "`GITHUB_SHA`, else the build's commit",
    "a git commit",
    "the commit recorded in lineage",
);
pub const GITHUB_SHA: Var = Var::unset(
    "GITHUB_SHA",
    "set by GitHub Actions",
    "a git commit",
    "the commit, when `RPS_GIT_COMMIT` is unset",
);
pub const GITHUB_ACTOR: Var = Var::unset(
    "GITHUB_ACTOR",
    "`USER`",
    "a user name",
    "who promotes, when `--actor` is not given",
);
pub const USER: Var = Var::unset(
    "USER",
    "set by the shell",
    "a user name",
    "who promotes, outside GitHub Actions",
);
pub const GITHUB_RUN_ID: Var = Var::unset(
    "GITHUB_RUN_ID",
    "set by GitHub Actions",
    "a run id",
    "recorded beside the actor",
);
pub const RUST_LOG: Var = Var::new(
    "RUST_LOG",
    "info",
    "a tracing filter (error, warn, info, debug, rps=debug…)",
    "log level",
)
.shown("info (warn for the CLI)");
pub const RPS_LOG_FORMAT: Var = Var::unset(
    "RPS_LOG_FORMAT",
    "text (json under Lambda)",
    "text or json",
    "log format on stderr",
);
pub const AWS_LAMBDA_FUNCTION_NAME: Var = Var::unset(
    "AWS_LAMBDA_FUNCTION_NAME",
    "set by Lambda",
    "a function name",
    "running on Lambda: JSON logs and EMF metrics by default",
);
pub const AWS_LAMBDA_RUNTIME_API: Var = Var::unset(
    "AWS_LAMBDA_RUNTIME_API",
    "set by Lambda",
    "host:port",
    "`rps-api` answers Lambda events instead of listening on `PORT`",
);

/// Every variable, in the order the docs list them.
pub const ALL: &[&Var] = &[
    &RPS_STORE,
    &RPS_DVC_REMOTE,
    &RPS_S3_MULTIPART_THRESHOLD_MB,
    &RPS_S3_ATTEMPT_TIMEOUT_SECS,
    &RPS_S3_OPERATION_TIMEOUT_SECS,
    &AWS_ENDPOINT_URL_S3,
    &AWS_ENDPOINT_URL,
    &RPS_LATITUDE,
    &RPS_LONGITUDE,
    &RPS_LOCATIONS,
    &RPS_LOCATION_CONCURRENCY,
    &OPEN_METEO_ARCHIVE_URL,
    &OPEN_METEO_FORECAST_URL,
    &OPEN_METEO_API_KEY,
    &RPS_PAST_DAYS,
    &RPS_OPEN_METEO_BATCH,
    &RPS_HTTP_TIMEOUT_SECS,
    &RPS_HTTP_MAX_ATTEMPTS,
    &RPS_HTTP_MAX_RETRY_SECS,
    &RPS_MAX_NULL_SHARE,
    &RPS_MAX_GAP_HOURS,
    &RPS_MAX_STALENESS_HOURS,
    &RPS_MIN_ROWS,
    &RPS_MAX_FILL_HOURS,
    &RPS_VALIDATION_FRACTION,
    &RPS_HOLDOUT_FRACTION,
    &RPS_SEED,
    &RPS_INTERVAL_LEVELS,
    &RPS_MODEL_NAME,
    &RPS_MODEL_CACHE,
    &MLFLOW_TRACKING_URI,
    &MLFLOW_TRACKING_USERNAME,
    &MLFLOW_TRACKING_PASSWORD,
    &MLFLOW_TRACKING_TOKEN,
    &RPS_MLFLOW_SECRET_ID,
    &MLFLOW_EXPERIMENT_NAME,
    &MLFLOW_HTTP_REQUEST_TIMEOUT,
    &RPS_MODEL_ALIAS,
    &RPS_MODEL_PATH,
    &RPS_MODEL_SHA256,
    &RPS_MODEL_REFRESH_SECS,
    &RPS_DRIFT_WINDOW,
    &RPS_MODEL_CACHE_MB,
    &RPS_DRIFT_MIN_REQUESTS,
    &RPS_DRIFT_MAX_OUT_OF_RANGE,
    &RPS_DRIFT_MAX_PSI,
    &RPS_MAX_BODY_BYTES,
    &RPS_MAX_OBSERVATIONS,
    &RPS_METRICS_EMF,
    &RPS_METRICS_NAMESPACE,
    &RPS_FORECAST_LOG_SAMPLE,
    &RPS_FORECAST_LOG_FLUSH_SECS,
    &RPS_MODEL_LOAD_TIMEOUT_SECS,
    &RPS_STORE_TIMEOUT_SECS,
    &RPS_HEADER_READ_TIMEOUT_SECS,
    &RPS_REQUEST_TIMEOUT_SECS,
    &PORT,
    &RPS_GATE_MAX_RMSE_H6,
    &RPS_GATE_MIN_SKILL_SEASONAL,
    &RPS_GATE_MAX_REGRESSION,
    &RPS_GATE_MAX_REGRESSION_ANY,
    &RPS_GATE_MAX_COVERAGE_GAP,
    &RPS_GATE_MIN_INTERVAL_HOURS,
    &RPS_GATE_MIN_SKILL,
    &RPS_GATE_MAX_P99_MS,
    &RPS_GATE_MIN_HOLDOUT_ROWS,
    &RPS_STAGING_URL,
    &RPS_STAGING_WAIT_SECS,
    &RPS_GATE_REPORT_MAX_AGE_SECS,
    &RPS_VERIFY_MAX_MISMATCH,
    &RPS_VERIFY_MIN_INTERVAL_COVERAGE,
    &RPS_RECALIBRATE_MIN_HOURS,
    &RPS_RETRAIN_MIN_SKILL,
    &RPS_RETRAIN_MIN_HOURS,
    &RPS_RETRAIN_COOLDOWN_HOURS,
    &RPS_RETRAIN_DAYS,
    &RPS_RETRAIN_LAG_DAYS,
    &RPS_GIT_COMMIT,
    &GITHUB_SHA,
    &GITHUB_ACTOR,
    &USER,
    &GITHUB_RUN_ID,
    &RUST_LOG,
    &RPS_LOG_FORMAT,
    &AWS_LAMBDA_FUNCTION_NAME,
    &AWS_LAMBDA_RUNTIME_API,
];

/// The configuration table of `docs/configuration.md`.
pub fn markdown_table() -> String {
    let mut out =
        String::from("| variable | default | accepts | meaning | per location |\n|---|---|---|---|---|\n");
    for v in ALL {
        let default = match (v.shown_default, v.default) {
            (Some(shown), _) => shown.to_owned(),
            (None, Some(d)) => format!("`{d}`"),
            (None, None) => "unset".to_owned(),
        };
        out.push_str(&format!(
            "| `{}` | {default} | {} | {} | {} |\n",
            v.name,
            v.expected.replace('|', "\\|"),
            v.meaning.replace('|', "\\|"),
            if v.per_location { "yes" } else { "" }
        ));
    }
    out
}

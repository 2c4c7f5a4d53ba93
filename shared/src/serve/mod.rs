//! The prediction service: one HTTP application for every entrypoint (the `api` Lambda
//! behind API Gateway, `rps serve`, the container).
//!
//! | route | answers |
//! |---|---|
//! | `GET /health` | the process is alive |
//! | `GET /ready` | 200 with the model and registry status once a model is loaded, else 503 |
//! | `POST /predict` | forecasts for every horizon from trailing hourly observations |
//! | `GET /forecast` | the forecast from the newest validated observations in the store |
//! | `GET /model` | the served model: version, alias, windows, data version, commit, metrics |
//! | `GET /drift` | the drift window: out-of-range share and PSI per feature |
//! | `GET /verification` | the latest verification: live skill per version, forecast against observed |
//! | `GET /metrics` | Prometheus text ([`metrics`] lists the names) |
//! | `GET /openapi.json` | the OpenAPI document of all of the above |
//! | `GET /` | the web page (assets under `/assets/`, served from the binary) |

pub use crate::records::wire as api;
pub mod error;
pub mod forecast;
pub mod live;
pub mod metrics;
pub mod openapi;
pub mod request;
pub mod sampling;
pub mod served;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use self::api::{
    ErrorBody, Health, IntervalsInfo, ModelInfo, ModelSummary, NotReady, PredictResponse, Ready, RequestDrift,
};
use self::error::ApiError;
use self::live::Live;
use self::sampling::ForecastSampler;
use self::served::{ModelHandle, Served};
use crate::config::{Config, ConfigError};
use crate::drift::{self, DriftTracker};
use crate::features::{INPUT_HOURS, serving_row};
use crate::observations::format_time;
use crate::registry::RegistryError;
use crate::store::{ObjectStore, StoreError};

/// Why the service cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot serve on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Everything a request handler can reach.
pub struct AppState {
    pub config: Config,
    pub model: Arc<ModelHandle>,
    pub drift: Arc<DriftTracker>,
    pub store: Arc<dyn ObjectStore>,
    pub forecasts: forecast::Cache,
    /// `/predict` answers sampled into the forecast log.
    pub forecast_log: Arc<ForecastSampler>,
    /// The latest verification and retrain record.
    pub live: Arc<Live>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// `/openapi.json`, written once: it depends on the configuration only.
    pub openapi: bytes::Bytes,
}

impl AppState {
    /// Builds the state and tries a first load (a failure leaves the service up, with
    /// `/ready` answering 503 until a model loads).
    pub async fn new(
        config: Config,
        store: Arc<dyn ObjectStore>,
        registry: Arc<dyn crate::registry::Registry>,
    ) -> Arc<Self> {
        let drift = Arc::new(DriftTracker::new(config.serve.drift_window, config.serve.drift));
        let model = Arc::new(match &config.serve.model_path {
            Some(p) => ModelHandle::from_file(p.clone(), config.serve.model_sha256.clone(), drift.clone()),
            None => ModelHandle::from_registry(
                registry,
                &config.registry.model_name,
                &config.serve.model_alias,
                config.registry.cache_dir.clone(),
                config.serve.refresh,
                drift.clone(),
            ),
        });
        metrics::handle();
        metrics::set_model(None, None);
        metrics::set_settings(config.serve.refresh, &config.serve.drift);
        // The first load, bounded: a registry that does not answer must not hold the
        // start (Lambda's init phase has 10 s); the load goes on in the background.
        let first = model.refresh_in_background();
        match tokio::time::timeout(config.serve.model_load_timeout, first).await {
            Ok(_) if model.current().is_some() => {}
            Ok(_) => tracing::error!("no model loaded at start; retrying on requests"),
            Err(_) => {
                tracing::error!(
                    "the first model load did not finish within {:?}; serving 503 until it does",
                    config.serve.model_load_timeout
                );
                model.note_slow_start();
            }
        }
        let forecast_log = Arc::new(ForecastSampler::new(
            store.clone(),
            config.registry.model_name.clone(),
            config.serve.forecast_log_sample,
            config.serve.forecast_log_flush,
        ));
        let live = Arc::new(Live::new(
            store.clone(),
            config.registry.model_name.clone(),
            config.serve.refresh,
            config.serve.store_timeout,
        ));
        // Read in the background: start-up (Lambda's init) waits on the model only.
        live.maybe_refresh();
        Arc::new(Self {
            model,
            drift,
            store,
            forecasts: forecast::Cache::default(),
            forecast_log,
            live,
            started_at: chrono::Utc::now(),
            openapi: openapi::serialized(&config),
            config,
        })
    }

    /// Before the process ends: writes the forecasts still waiting for the log.
    pub async fn finish(&self) {
        let n = self.forecast_log.flush_now().await;
        if n > 0 {
            tracing::info!("wrote {n} sampled forecasts to the log at shutdown");
        }
    }
}

/// The application, ready for any server or for `lambda_http`.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/assets/{file}", get(web::asset))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/predict", post(predict))
        .route("/forecast", get(forecast_handler))
        .route("/model", get(model_info))
        .route("/drift", get(drift_handler))
        .route("/verification", get(verification_handler))
        .route("/metrics", get(metrics_handler))
        .route("/openapi.json", get(openapi::handler))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_response))
        .with_state(state)
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the server failed while answering; it has been logged",
    )
    .into_response()
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("there is no {} here; see /openapi.json", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}; see /openapi.json", uri.path()),
    )
}

/// Per request: metrics, a due model re-check, and an EMF line on Lambda.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    state.model.maybe_refresh();
    state.live.maybe_refresh();
    let resp = next.run(req).await;
    state.forecast_log.maybe_flush();
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    metrics::record_request(&route, &method, status, secs);
    if state.config.serve.emf {
        let predicted = u64::from(route == "/predict" && status == 200);
        let drift = (route == "/predict").then(|| state.drift.verdict());
        let version = state.model.current().map(|m| m.version.clone());
        println!(
            "{}",
            metrics::emf_line(
                &state.config.serve.emf_namespace,
                &route,
                status,
                secs * 1000.0,
                predicted,
                drift,
                version.as_deref()
            )
        );
    }
    resp
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

fn summary(m: &Served) -> ModelSummary {
    ModelSummary {
        name: m.name.clone(),
        version: m.version.clone(),
        alias: m.alias.clone(),
    }
}

fn require_model(state: &AppState) -> Result<Arc<Served>, ApiError> {
    state.model.current().ok_or_else(|| {
        let st = state.model.status();
        ApiError::unavailable(
            "no_model",
            format!(
                "no model is loaded yet (looking for {}){}",
                st.source,
                st.last_error.map(|e| format!(": {e}")).unwrap_or_default()
            ),
        )
    })
}

async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let registry = state.model.status();
    match state.model.current() {
        Some(m) => Json(Ready {
            status: "ready".into(),
            model: summary(&m),
            loaded_at: m.loaded_at,
            registry,
        })
        .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(NotReady {
                status: "no model".into(),
                error: ErrorBody {
                    status: 503,
                    code: "no_model".into(),
                    message: format!("no model is loaded yet (looking for {})", registry.source),
                    location: None,
                },
                registry,
            }),
        )
            .into_response(),
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "the body must be JSON (Content-Type: application/json), not {}",
                if ct.is_empty() { "an unlabelled body" } else { ct }
            ),
        )
        .at("header:Content-Type"))
    }
}

async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large =
            std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body is larger than {limit} bytes"),
            )
        } else {
            ApiError::bad_request("unreadable_body", format!("the body could not be read: {e}"))
        }
    })
}

async fn predict(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PredictResponse>, ApiError> {
    check_content_type(&headers)?;
    let limit = state.config.serve.max_body_bytes;
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limit
    {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("the body is {len} bytes; at most {limit} are accepted"),
        ));
    }
    let bytes = read_body(body, limit).await?;
    let series = request::parse_observations(&bytes, state.config.serve.max_observations)?;
    let m = require_model(&state)?;
    let row =
        serving_row(&series).map_err(|e| ApiError::unprocessable("invalid_observations", e.to_string()))?;
    let mut forecasts = m.bundle.predict(&row).map_err(|e| {
        tracing::error!("prediction failed: {e}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "prediction_failed",
            e.to_string(),
        )
    })?;
    let live = state.live.current();
    let scales = scales(&state, live.as_deref(), &m.version);
    crate::recalibration::apply(&mut forecasts, scales);
    let (out, weather_out) = state.drift.observe(&row.values);
    metrics::record_forecasts("predict", &forecasts);
    state.forecast_log.offer(&m, &row, &forecasts, scales);
    Ok(Json(PredictResponse {
        model: summary(&m),
        issued_at: format_time(row.time),
        forecasts,
        drift: RequestDrift {
            out_of_range: weather_out,
            features_out_of_range: out,
        },
    }))
}

async fn forecast_handler(
    State(state): State<Arc<AppState>>,
) -> Result<Json<forecast::ForecastResponse>, ApiError> {
    let m = require_model(&state)?;
    let mut resp = state.forecasts.get_or_compute(&state, &m).await?;
    // Cached as calibrated; re-calibrated by the latest verification on every answer.
    let live = state.live.current();
    crate::recalibration::apply(&mut resp.forecasts, scales(&state, live.as_deref(), &m.version));
    metrics::set_observations_age(resp.observations_age_minutes * 60.0);
    Ok(Json(resp))
}

async fn model_info(State(state): State<Arc<AppState>>) -> Result<Json<ModelInfo>, ApiError> {
    let m = require_model(&state)?;
    let meta = &m.bundle.metadata;
    Ok(Json(ModelInfo {
        name: m.name.clone(),
        version: m.version.clone(),
        alias: m.alias.clone(),
        sha256: m.sha256.clone(),
        loaded_at: m.loaded_at,
        algorithm: meta.algorithm.clone(),
        trained_at: meta.created_at,
        training_window: meta.training_window,
        holdout_window: meta.holdout_window,
        data_version: meta.data_version.clone(),
        git_commit: meta.git_commit.clone(),
        run_id: meta.run_id.clone(),
        metrics: meta.metrics.clone(),
        input_hours: m.bundle.schema.input_hours,
        horizons: m.bundle.schema.horizons.clone(),
        variables: m.bundle.schema.variables.clone(),
        bundle_format_version: m.bundle.format_version,
        registry: state.model.status(),
        live: state.live.skill_of(&m.version),
        intervals: IntervalsInfo {
            recalibration: scales(&state, state.live.current().as_deref(), &m.version).to_vec(),
            ..intervals_info(&m.bundle)
        },
    }))
}

/// The live re-calibration `version`'s answers carry now: none when it is turned off
/// (`RPS_RECALIBRATE_MIN_HOURS=0`), the latest verification found none, or it is stale.
fn scales<'a>(
    state: &AppState,
    live: Option<&'a live::LiveState>,
    version: &str,
) -> &'a [crate::records::skill::IntervalScale] {
    match (state.config.verify.recalibrate_min_hours, live) {
        (0, _) | (_, None) => &[],
        (_, Some(l)) => l.scales(version, chrono::Utc::now()),
    }
}

/// What `/model` says about the intervals: their levels and calibration, or that there
/// are none and why.
fn intervals_info(bundle: &crate::bundle::ModelBundle) -> IntervalsInfo {
    let none = |why: &str| IntervalsInfo {
        levels: Vec::new(),
        detail: format!("none: {why}; its forecasts are point forecasts"),
        recalibration: Vec::new(),
    };
    match &bundle.calibration {
        Some(c) => IntervalsInfo {
            levels: c.levels.clone(),
            detail: format!(
                "{}, from at least {} errors per horizon; served multiplied by the live re-calibration's factors (`recalibration`; none: as calibrated)",
                c.method, c.residuals
            ),
            recalibration: Vec::new(),
        },
        None if bundle.format_version == 1 => {
            none("this model was trained before intervals (bundle format 1)")
        }
        None => none("its training data was too short to calibrate intervals"),
    }
}

async fn verification_handler(
    State(state): State<Arc<AppState>>,
) -> Result<Json<crate::records::verification::Verification>, ApiError> {
    state
        .live
        .current()
        .and_then(|l| l.verification.clone())
        .map(Json)
        .ok_or_else(|| {
            // A normal state of a new deployment, not a fault of the server.
            ApiError::new(
                axum::http::StatusCode::NOT_FOUND,
                "no_verification",
                "no verification has run yet: `rps verify` scores the logged forecasts once their hours are observed",
            )
        })
}

async fn drift_handler(State(state): State<Arc<AppState>>) -> Json<drift::DriftSnapshot> {
    Json(state.drift.snapshot())
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    metrics::set_drift(&state.drift.snapshot());
    let served = state.model.current();
    let levels = served
        .as_ref()
        .and_then(|m| m.bundle.calibration.as_ref())
        .map(|c| c.levels.as_slice())
        .unwrap_or_default();
    let live = state.live.current();
    let served_scales = served
        .as_ref()
        .map_or(&[][..], |m| scales(&state, live.as_deref(), &m.version));
    metrics::set_live(
        live.as_deref(),
        served.as_ref().map(|m| m.version.as_str()),
        levels,
        served_scales,
        &state.config.verify,
    );
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics::handle().render(),
    )
        .into_response()
}

/// Builds the state from the configuration (store, registry) and returns the app.
pub async fn app(config: Config) -> Result<(Arc<AppState>, Router), ServeError> {
    // The service only ever does what its grants allow (the API function's IAM role).
    let grants = crate::layout::access("api").unwrap_or_default();
    let store: Arc<dyn crate::store::ObjectStore> = Arc::new(crate::store::Scoped::new(
        crate::store::open(&config.store, &config.s3).await?,
        "api",
        grants,
        "",
    ));
    let registry = crate::registry::open(&config, store.clone())?;
    let state = AppState::new(config, store, registry).await;
    state.model.spawn_refresh_loop();
    state.live.spawn_refresh_loop();
    state.forecast_log.spawn_flush_loop();
    metrics::spawn_upkeep();
    Ok((state.clone(), router(state)))
}

/// The server's limits on slow clients.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    pub header_read_timeout: std::time::Duration,
    pub request_timeout: std::time::Duration,
}

impl ServerLimits {
    pub fn of(config: &Config) -> Self {
        Self {
            header_read_timeout: config.serve.header_read_timeout,
            request_timeout: config.serve.request_timeout,
        }
    }
}

/// A container health check with no tools in the image: `GET /health` on the local
/// port, true on a 200 within two seconds.
pub fn probe_health(port: u16) -> bool {
    use std::io::{Read, Write};
    let timeout = std::time::Duration::from_secs(2);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// Serves `router` on `addr` until Ctrl-C or SIGTERM, then lets requests in flight
/// finish (for up to 10 s). A client that takes longer than the header read timeout to
/// send its request head is disconnected, and a request that takes longer than the
/// request timeout (a body that never arrives, say) is answered 408: slow clients
/// cannot hold connections open.
pub async fn serve_http(router: Router, addr: SocketAddr, limits: ServerLimits) -> Result<(), ServeError> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let listen = |source| ServeError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    tracing::info!(%bound, "serving");
    println!("rps API listening on http://{bound}");
    let router = router.layer(tower_http::timeout::TimeoutLayer::with_status_code(
        StatusCode::REQUEST_TIMEOUT,
        limits.request_timeout,
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let stop = shutdown();
    tokio::pin!(stop);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let service = TowerToHyperService::new(router.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let mut stop_rx = stop_rx.clone();
        connections.spawn(async move {
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop_rx.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    let _ = stop_tx.send(true);
    let drain = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), drain).await;
    Ok(())
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The number of trailing hours `/predict` needs.
pub const fn input_hours() -> usize {
    INPUT_HOURS
}

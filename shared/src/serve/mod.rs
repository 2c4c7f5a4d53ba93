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
//! | `GET /locations` | the locations it answers for (`RPS_LOCATIONS`) and which are loaded |
//! | `GET /metrics` | Prometheus text ([`metrics`] lists the names) |
//! | `GET /openapi.json` | the OpenAPI document of all of the above |
//! | `GET /` | the web page (assets under `/assets/`, served from the binary) |
//!
//! With several locations, `/predict` takes `"location"` and the GET routes
//! `?location=` ([`locations`]).

pub use crate::records::wire as api;
pub mod error;
pub mod forecast;
pub mod live;
pub mod locations;
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
use axum::extract::rejection::QueryRejection;
use axum::extract::{MatchedPath, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use self::api::{
    ErrorBody, Health, IntervalsInfo, LocationEntry, LocationList, ModelInfo, ModelSummary, NotReady,
    PredictResponse, Ready, RequestDrift,
};
use self::error::ApiError;
use self::locations::{LocationService, Locations, Named};
use self::served::Served;
use crate::config::{Config, ConfigError};
use crate::drift;
use crate::features::{INPUT_HOURS, serving_row};
use crate::fleet::{Fleet, FleetError};
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
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("cannot serve on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Everything a request handler can reach.
pub struct AppState {
    /// The deployment's configuration (with one location, that location's).
    pub config: Config,
    /// The locations it answers for, and the services of those loaded.
    pub locations: Locations,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// `/openapi.json`, written once: it depends on the configuration only.
    pub openapi: bytes::Bytes,
}

impl AppState {
    /// One location: builds its state and tries a first load (a failure leaves the
    /// service up, with `/ready` answering 503 until a model loads).
    pub async fn new(
        config: Config,
        store: Arc<dyn ObjectStore>,
        registry: Arc<dyn crate::registry::Registry>,
    ) -> Arc<Self> {
        let fleet = Fleet::single(&config);
        Self::with_locations(config, &fleet, store, Some(registry)).await
    }

    /// The locations of `fleet` ([`Locations::new`] says what `store` and `registry`
    /// are). The first location loads now: start-up waits for it, bounded (Lambda's
    /// init phase has 10 s); the others load on their first request.
    pub async fn with_locations(
        config: Config,
        fleet: &Fleet,
        store: Arc<dyn ObjectStore>,
        registry: Option<Arc<dyn crate::registry::Registry>>,
    ) -> Arc<Self> {
        metrics::handle();
        metrics::set_refresh_interval(config.serve.refresh);
        let locations = Locations::new(&config, fleet, store, registry);
        let state = Arc::new(Self {
            openapi: openapi::serialized(&config, &locations),
            locations,
            config,
            started_at: chrono::Utc::now(),
        });
        let first = state.locations.primary().await;
        if first.model.current().is_none() {
            tracing::error!(
                location = %first.id(),
                "no model loaded at start (or not within {:?}); serving 503 until one loads",
                state.config.serve.model_load_timeout
            );
        }
        state
    }

    /// The first location's service (loaded at start and never unloaded).
    pub fn primary(&self) -> Arc<LocationService> {
        self.locations
            .resident(0)
            .expect("the first location is loaded at start and kept")
    }

    /// Before the process ends: writes the forecasts still waiting for the log.
    pub async fn finish(&self) {
        let mut n = 0;
        for svc in self.locations.all_resident() {
            n += svc.forecast_log.flush_now().await;
        }
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
        .route("/locations", get(locations_handler))
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

/// The location a `/predict` answer came from, for the EMF line.
#[derive(Clone)]
struct Answered(Arc<LocationService>);

/// Per request: metrics, due re-checks, and an EMF line on Lambda.
async fn observe(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    // What is due for the loaded locations (Lambda, frozen between invocations,
    // has no timer: this is its only upkeep).
    state.locations.sweep_if_due();
    let resp = next.run(req).await;
    let secs = started.elapsed().as_secs_f64();
    let status = resp.status().as_u16();
    metrics::record_request(&route, &method, status, secs);
    if state.config.serve.emf {
        let predicted = u64::from(route == "/predict" && status == 200);
        let answered = resp.extensions().get::<Answered>().map(|a| a.0.clone());
        let svc = answered.clone().unwrap_or_else(|| state.primary());
        let drift = (route == "/predict" && (answered.is_some() || !state.locations.configured()))
            .then(|| svc.drift.verdict());
        let version = svc.model.current().map(|m| m.version.clone());
        println!(
            "{}",
            metrics::emf_line(
                &state.config.serve.emf_namespace,
                &route,
                status,
                secs * 1000.0,
                predicted,
                drift,
                metrics::AnsweredBy {
                    version: version.as_deref(),
                    location: svc.label.as_deref(),
                },
            )
        );
    }
    resp
}

async fn health() -> Json<Health> {
    Json(Health { status: "ok".into() })
}

fn summary(svc: &LocationService, m: &Served) -> ModelSummary {
    ModelSummary {
        name: m.name.clone(),
        version: m.version.clone(),
        alias: m.alias.clone(),
        location: svc.id().to_owned(),
    }
}

fn require_model(svc: &LocationService) -> Result<Arc<Served>, ApiError> {
    svc.model.current().ok_or_else(|| {
        let st = svc.model.status();
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

/// `?location=` of the GET routes.
#[derive(Debug, serde::Deserialize)]
pub struct At {
    location: Option<String>,
}

type AtQuery = Result<Query<At>, QueryRejection>;

/// The location `?location=` names (loading it if need be). `first`: without it, the
/// first location rather than an error.
async fn located(state: &AppState, q: AtQuery, first: bool) -> Result<Arc<LocationService>, ApiError> {
    let Query(at) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()).at("query"))?;
    let i = state
        .locations
        .find(at.location.as_deref(), Named::Query, first)?;
    Ok(state.locations.service(i).await)
}

async fn ready(State(state): State<Arc<AppState>>, q: AtQuery) -> Result<Response, ApiError> {
    let svc = located(&state, q, true).await?;
    let registry = svc.model.status();
    Ok(match svc.model.current() {
        Some(m) => Json(Ready {
            status: "ready".into(),
            model: summary(&svc, &m),
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
    })
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
) -> Result<Response, ApiError> {
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
    let value = request::parse_json(&bytes)?;
    let named = request::location_of(&value)?;
    let series = request::observations_of(&value, state.config.serve.max_observations)?;
    let i = state.locations.find(named, Named::Body, false)?;
    let svc = state.locations.service(i).await;
    let m = require_model(&svc)?;
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
    let live = svc.live.current();
    let scales = scales(&svc, live.as_deref(), &m.version);
    crate::recalibration::apply(&mut forecasts, scales);
    let (out, weather_out) = svc.drift.observe(&row.values);
    metrics::record_forecasts("predict", svc.label.as_deref(), &forecasts);
    svc.forecast_log.offer(&m, &row, &forecasts, scales);
    let mut resp = Json(PredictResponse {
        model: summary(&svc, &m),
        issued_at: format_time(row.time),
        forecasts,
        drift: RequestDrift {
            out_of_range: weather_out,
            features_out_of_range: out,
        },
    })
    .into_response();
    resp.extensions_mut().insert(Answered(svc.clone()));
    Ok(resp)
}

async fn forecast_handler(
    State(state): State<Arc<AppState>>,
    q: AtQuery,
) -> Result<Json<forecast::ForecastResponse>, ApiError> {
    let svc = located(&state, q, false).await?;
    let m = require_model(&svc)?;
    let place = forecast::Place {
        store: svc.store.as_ref(),
        store_timeout: svc.config().serve.store_timeout,
        id: svc.id(),
        label: svc.label.as_deref(),
    };
    let mut resp = svc.forecasts.get_or_compute(place, &m).await?;
    // Cached as calibrated; re-calibrated by the latest verification on every answer.
    let live = svc.live.current();
    crate::recalibration::apply(&mut resp.forecasts, scales(&svc, live.as_deref(), &m.version));
    metrics::set_observations_age(svc.label.as_deref(), resp.observations_age_minutes * 60.0);
    Ok(Json(resp))
}

async fn model_info(State(state): State<Arc<AppState>>, q: AtQuery) -> Result<Json<ModelInfo>, ApiError> {
    let svc = located(&state, q, false).await?;
    let m = require_model(&svc)?;
    let meta = &m.bundle.metadata;
    Ok(Json(ModelInfo {
        name: m.name.clone(),
        version: m.version.clone(),
        alias: m.alias.clone(),
        location: svc.id().to_owned(),
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
        registry: svc.model.status(),
        live: svc.live.skill_of(&m.version),
        intervals: IntervalsInfo {
            recalibration: scales(&svc, svc.live.current().as_deref(), &m.version).to_vec(),
            ..intervals_info(&m.bundle)
        },
    }))
}

/// The live re-calibration `version`'s answers carry now: none when it is turned off
/// (`RPS_RECALIBRATE_MIN_HOURS=0`), the latest verification found none, or it is stale.
fn scales<'a>(
    svc: &LocationService,
    live: Option<&'a live::LiveState>,
    version: &str,
) -> &'a [crate::records::skill::IntervalScale] {
    match (svc.config().verify.recalibrate_min_hours, live) {
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
    q: AtQuery,
) -> Result<Json<crate::records::verification::Verification>, ApiError> {
    let svc = located(&state, q, false).await?;
    svc.live
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

async fn drift_handler(
    State(state): State<Arc<AppState>>,
    q: AtQuery,
) -> Result<Json<drift::DriftSnapshot>, ApiError> {
    let svc = located(&state, q, false).await?;
    Ok(Json(svc.drift.snapshot()))
}

/// Every location and whether its model is loaded; loads nothing.
async fn locations_handler(State(state): State<Arc<AppState>>) -> Json<LocationList> {
    let locations = state
        .locations
        .sites()
        .enumerate()
        .map(|(i, site)| {
            let version = state
                .locations
                .resident(i)
                .and_then(|svc| svc.model.current())
                .map(|m| m.version.clone());
            LocationEntry {
                id: site.id.to_string(),
                name: site.name.clone(),
                latitude: site.location.latitude.get(),
                longitude: site.location.longitude.get(),
                model: site.config.registry.model_name.clone(),
                loaded: version.is_some(),
                version,
            }
        })
        .collect();
    let (resident, cache_bytes, cache_limit_bytes) = state.locations.cache();
    Json(LocationList {
        locations,
        resident,
        cache_bytes,
        cache_limit_bytes,
    })
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> Response {
    for svc in state.locations.all_resident() {
        let label = svc.label.as_deref();
        metrics::set_drift_thresholds(label, &svc.config().serve.drift);
        metrics::set_drift(label, &svc.drift.snapshot());
        let served = svc.model.current();
        let levels = served
            .as_ref()
            .and_then(|m| m.bundle.calibration.as_ref())
            .map(|c| c.levels.as_slice())
            .unwrap_or_default();
        let live = svc.live.current();
        let served_scales = served
            .as_ref()
            .map_or(&[][..], |m| scales(&svc, live.as_deref(), &m.version));
        metrics::set_live(
            label,
            live.as_deref(),
            served.as_ref().map(|m| m.version.as_str()),
            levels,
            served_scales,
            &svc.config().verify,
        );
    }
    if state.locations.configured() {
        let (resident, bytes, limit) = state.locations.cache();
        metrics::set_model_cache(resident, bytes, limit);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        metrics::handle().render(),
    )
        .into_response()
}

/// Builds the state from the configuration (store, registry, `RPS_LOCATIONS`) and
/// returns the app.
pub async fn app(config: Config) -> Result<(Arc<AppState>, Router), ServeError> {
    let fleet = Fleet::load(&config, &|k| std::env::var(k).ok()).await?;
    app_with(config, fleet).await
}

/// The app for `fleet`'s locations (one: that location's configuration as `config`).
pub async fn app_with(config: Config, fleet: Fleet) -> Result<(Arc<AppState>, Router), ServeError> {
    let root = crate::store::open(&config.store, &config.s3).await?;
    let state = if fleet.configured {
        if let Some(path) = &config.serve.model_path {
            return Err(ServeError::Config(ConfigError::Invalid {
                var: crate::config::vars::RPS_MODEL_PATH.name,
                value: path.display().to_string(),
                expected: "unset while RPS_LOCATIONS lists locations: one bundle serves one location (`rps serve --location ID`)",
            }));
        }
        // MLflow holds every location's model; without it each location's store does.
        let registry = match &config.mlflow {
            Some(_) => Some(crate::registry::open(&config, root.clone())?),
            None => None,
        };
        AppState::with_locations(config, &fleet, root, registry).await
    } else {
        // The service only ever does what its grants allow (the API function's IAM role).
        let grants = crate::layout::access("api").unwrap_or_default();
        let store: Arc<dyn ObjectStore> = Arc::new(crate::store::Scoped::new(root, "api", grants, ""));
        let registry = crate::registry::open(&config, store.clone())?;
        AppState::new(config, store, registry).await
    };
    spawn_sweeper(&state);
    metrics::spawn_upkeep();
    Ok((state.clone(), router(state)))
}

/// Servers: what is due for every loaded location, every second. The task holds no
/// location, so an unloaded one is freed.
fn spawn_sweeper(state: &Arc<AppState>) {
    let weak = Arc::downgrade(state);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(state) => state.locations.sweep_if_due(),
                None => break,
            }
        }
    });
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

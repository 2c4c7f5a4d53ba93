//! The locations one API answers for. Without `RPS_LOCATIONS` there is one, loaded at
//! start and kept, as always. With it, each location's model, drift window, live
//! verification and forecast log load on the location's first request, and the least
//! recently used are unloaded once their models would take more than
//! `RPS_MODEL_CACHE_MB` (the first location stays loaded: `/ready` answers for it).
//! A request finds its location with one atomic load; a load holds only that location.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use axum::http::StatusCode;

use super::error::ApiError;
use super::forecast;
use super::live::Live;
use super::metrics;
use super::sampling::ForecastSampler;
use super::served::ModelHandle;
use crate::config::Config;
use crate::drift::DriftTracker;
use crate::fleet::{Fleet, Site, site_prefix};
use crate::registry::Registry;
use crate::store::{ObjectStore, Prefixed, Scoped};

/// What one location's answers come from.
pub struct LocationService {
    pub site: Arc<Site>,
    /// `Some(id)` when the API answers for several locations: its metrics' `location`.
    pub label: Option<String>,
    pub model: Arc<ModelHandle>,
    pub drift: Arc<DriftTracker>,
    pub store: Arc<dyn ObjectStore>,
    pub forecasts: forecast::Cache,
    /// `/predict` answers sampled into the forecast log.
    pub forecast_log: Arc<ForecastSampler>,
    /// The latest verification and retrain record.
    pub live: Arc<Live>,
    last_used: AtomicU64,
}

/// What a location's memory is estimated at beyond its model and drift window (its
/// live verification and cached `/forecast`).
const OVERHEAD_BYTES: u64 = 96 << 10;

impl LocationService {
    /// Builds the service; nothing is loaded yet.
    fn new(
        site: Arc<Site>,
        label: Option<String>,
        store: Arc<dyn ObjectStore>,
        registry: Arc<dyn Registry>,
    ) -> Self {
        let config = &site.config;
        let drift = Arc::new(DriftTracker::new(config.serve.drift_window, config.serve.drift));
        let model = match &config.serve.model_path {
            Some(p) => ModelHandle::from_file(p.clone(), config.serve.model_sha256.clone(), drift.clone()),
            None => ModelHandle::from_registry(
                registry,
                &config.registry.model_name,
                &config.serve.model_alias,
                config.registry.cache_dir.clone(),
                config.serve.refresh,
                drift.clone(),
            ),
        };
        let model = Arc::new(match &label {
            Some(id) => model.with_location(id),
            None => model,
        });
        metrics::set_model(label.as_deref(), None, None);
        metrics::set_drift_thresholds(label.as_deref(), &config.serve.drift);
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
        Self {
            label,
            model,
            drift,
            store,
            forecasts: forecast::Cache::default(),
            forecast_log,
            live,
            site,
            last_used: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &Config {
        &self.site.config
    }

    /// The location's id.
    pub fn id(&self) -> &str {
        self.site.id.as_str()
    }

    /// The first load of the model and of the live verification (the first answer's
    /// intervals need both), waiting at most `timeout`; the load goes on after it.
    async fn first_load(&self, timeout: Duration) -> &'static str {
        let model = self.model.refresh_in_background();
        let live = self.live.refresh();
        match tokio::time::timeout(timeout, async { tokio::join!(model, live) }).await {
            Ok(_) if self.model.current().is_some() => "loaded",
            Ok(_) => "no_model",
            Err(_) => {
                self.model.note_slow_start();
                "timeout"
            }
        }
    }

    /// Re-checks what is due: the alias, the verification, the forecast log.
    pub fn upkeep(&self) {
        self.model.maybe_refresh();
        self.live.maybe_refresh();
        self.forecast_log.maybe_flush();
    }

    /// What the location is estimated to hold in memory.
    pub fn bytes(&self) -> u64 {
        let model = self.model.current().map_or(0, |m| m.bundle.heap_bytes());
        (model + self.drift.max_bytes()) as u64 + OVERHEAD_BYTES
    }

    fn touch(&self, tick: u64) {
        self.last_used.store(tick, Ordering::Relaxed);
    }
}

struct Slot {
    site: Arc<Site>,
    current: ArcSwapOption<LocationService>,
    /// One load at a time per location: concurrent first requests wait for it.
    loading: tokio::sync::Mutex<()>,
}

/// Where a request names its location, for the error's pointer and status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named {
    /// `"location"` in a JSON body: an unknown id is 422.
    Body,
    /// `?location=`: an unknown id is 404.
    Query,
}

/// Every location of the deployment and the services of those loaded.
pub struct Locations {
    configured: bool,
    slots: Vec<Slot>,
    index: HashMap<String, usize>,
    /// The store the locations' folders are in (several locations), or the one
    /// location's store.
    store: Arc<dyn ObjectStore>,
    /// One registry for every location (MLflow, or the one location's); `None`: each
    /// location's store holds its own.
    registry: Option<Arc<dyn Registry>>,
    limit: u64,
    load_timeout: Duration,
    clock: AtomicU64,
    loads: tokio::sync::Semaphore,
    last_sweep: Mutex<Instant>,
}

impl Locations {
    /// The locations of `fleet`. One location: `store` and `registry` are its own.
    /// Several: `store` holds their folders; `registry` is shared (MLflow) or `None`.
    pub fn new(
        config: &Config,
        fleet: &Fleet,
        store: Arc<dyn ObjectStore>,
        registry: Option<Arc<dyn Registry>>,
    ) -> Self {
        let slots: Vec<Slot> = fleet
            .sites
            .iter()
            .map(|site| Slot {
                site: site.clone(),
                current: ArcSwapOption::empty(),
                loading: tokio::sync::Mutex::new(()),
            })
            .collect();
        let index = slots
            .iter()
            .enumerate()
            .map(|(i, s)| (s.site.id.to_string(), i))
            .collect();
        Self {
            configured: fleet.configured,
            slots,
            index,
            store,
            registry,
            limit: config.serve.model_cache_bytes,
            load_timeout: config.serve.model_load_timeout,
            clock: AtomicU64::new(1),
            loads: tokio::sync::Semaphore::new(4),
            // Due at the first request.
            last_sweep: Mutex::new(
                Instant::now()
                    .checked_sub(Duration::from_secs(1))
                    .unwrap_or_else(Instant::now),
            ),
        }
    }

    /// `RPS_LOCATIONS` is set: answers name their location and metrics carry it.
    pub fn configured(&self) -> bool {
        self.configured
    }

    pub fn sites(&self) -> impl Iterator<Item = &Arc<Site>> {
        self.slots.iter().map(|s| &s.site)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The loaded service of the `i`-th location, if it is loaded.
    pub fn resident(&self, i: usize) -> Option<Arc<LocationService>> {
        self.slots.get(i).and_then(|s| s.current.load_full())
    }

    /// Every loaded service.
    pub fn all_resident(&self) -> Vec<Arc<LocationService>> {
        self.slots.iter().filter_map(|s| s.current.load_full()).collect()
    }

    /// The first location's service (loaded at start and kept).
    pub async fn primary(&self) -> Arc<LocationService> {
        self.service(0).await
    }

    /// The location a request names: `None` is the only one (or the first, for
    /// `/ready`, when `first` is set); an unknown id or none among several is the
    /// client's error.
    pub fn find(&self, id: Option<&str>, named: Named, first: bool) -> Result<usize, ApiError> {
        let at = match named {
            Named::Body => "/location",
            Named::Query => "query:location",
        };
        match id {
            None if self.slots.len() == 1 || first => Ok(0),
            None => Err(ApiError::bad_request(
                "missing_location",
                format!(
                    "RPS_LOCATIONS lists {} locations: name one with {} (GET /locations lists them)",
                    self.slots.len(),
                    match named {
                        Named::Body => "\"location\": \"<id>\"",
                        Named::Query => "?location=<id>",
                    }
                ),
            )
            .at(at)),
            Some(id) => self.index.get(id).copied().ok_or_else(|| {
                let status = match named {
                    Named::Body => StatusCode::UNPROCESSABLE_ENTITY,
                    Named::Query => StatusCode::NOT_FOUND,
                };
                let known = if self.slots.len() <= 10 {
                    let ids: Vec<&str> = self.sites().map(|s| s.id.as_str()).collect();
                    format!("the locations are {}", ids.join(", "))
                } else {
                    "GET /locations lists them".to_owned()
                };
                // The id is quoted shortened: it is the client's string.
                let shown: String = id.chars().take(40).collect();
                ApiError::new(
                    status,
                    "unknown_location",
                    format!("there is no location {shown:?}: {known}"),
                )
                .at(at)
            }),
        }
    }

    /// The service of the `i`-th location, loading it if it is not loaded.
    pub async fn service(&self, i: usize) -> Arc<LocationService> {
        let slot = &self.slots[i];
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
        if let Some(s) = slot.current.load_full() {
            s.touch(tick);
            return s;
        }
        let _one = slot.loading.lock().await;
        if let Some(s) = slot.current.load_full() {
            s.touch(tick);
            return s;
        }
        let _permit = self.loads.acquire().await;
        let started = Instant::now();
        let svc = Arc::new(self.open(&slot.site));
        let result = svc.first_load(self.load_timeout).await;
        metrics::record_model_load(result, started.elapsed().as_secs_f64());
        tracing::info!(location = %slot.site.id, result, ms = started.elapsed().as_millis() as u64, "location loaded");
        svc.touch(self.clock.fetch_add(1, Ordering::Relaxed));
        slot.current.store(Some(svc.clone()));
        self.evict_over_limit(i);
        svc
    }

    fn open(&self, site: &Arc<Site>) -> LocationService {
        if !self.configured {
            let registry = self.registry.clone().expect("one location is given its registry");
            return LocationService::new(site.clone(), None, self.store.clone(), registry);
        }
        // The service only ever does what its grants allow (the API function's IAM
        // role), inside the location's folder.
        let grants = crate::layout::access("api").unwrap_or_default();
        let store: Arc<dyn ObjectStore> = Arc::new(Scoped::new(
            Arc::new(Prefixed::new(self.store.clone(), &site_prefix(&site.id))),
            "api",
            grants,
            "",
        ));
        let registry = match &self.registry {
            Some(r) => r.clone(),
            None => Arc::new(crate::registry::LocalRegistry::new(store.clone())),
        };
        LocationService::new(site.clone(), Some(site.id.to_string()), store, registry)
    }

    /// Unloads the least recently used locations (never the first, nor `keep`) while
    /// the loaded ones are estimated over the limit. Requests in flight keep theirs.
    fn evict_over_limit(&self, keep: usize) {
        let mut resident: Vec<(usize, Arc<LocationService>, u64)> = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.current.load_full().map(|svc| (i, svc)))
            .map(|(i, svc)| {
                let b = svc.bytes();
                (i, svc, b)
            })
            .collect();
        let mut total: u64 = resident.iter().map(|r| r.2).sum();
        if total > self.limit {
            resident.sort_by_key(|(_, svc, _)| svc.last_used.load(Ordering::Relaxed));
            for (i, _, bytes) in &resident {
                if total <= self.limit {
                    break;
                }
                if *i == 0 || *i == keep {
                    continue;
                }
                if let Some(old) = self.slots[*i].current.swap(None) {
                    total -= bytes;
                    old.model.retire();
                    metrics::record_eviction();
                    tracing::debug!(location = %old.id(), bytes, "unloaded to stay within RPS_MODEL_CACHE_MB");
                    tokio::spawn(async move {
                        old.forecast_log.flush_now().await;
                    });
                }
            }
        }
        let count = self.slots.iter().filter(|s| s.current.load().is_some()).count();
        metrics::set_model_cache(count, total, self.limit);
    }

    /// What is due for every loaded location, at most once a second: the alias, the
    /// verification, the forecast log (servers call it on a timer and on requests;
    /// Lambda, frozen between invocations, on requests only). One mechanism for one
    /// location or a thousand.
    pub fn sweep_if_due(&self) {
        {
            let mut last = self.last_sweep.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < Duration::from_secs(1) {
                return;
            }
            *last = Instant::now();
        }
        for s in &self.slots {
            if let Some(svc) = s.current.load_full() {
                svc.upkeep();
            }
        }
    }

    /// The estimated memory of the loaded locations and the limit.
    pub fn cache(&self) -> (usize, u64, u64) {
        let resident = self.all_resident();
        let bytes = resident.iter().map(|s| s.bytes()).sum();
        (resident.len(), bytes, self.limit)
    }
}

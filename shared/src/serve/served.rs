//! The served model: resolved through the registry at `<name>@<alias>`, loaded from the
//! verified cache, re-checked every `refresh` and swapped atomically when the alias
//! moves. Requests in flight finish on the model they started with. If the registry is
//! unreachable the current model keeps serving and the status says so.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use chrono::{DateTime, Utc};

use super::metrics;
use crate::bundle::{MAX_BUNDLE_BYTES, ModelBundle, sha256_hex};
use crate::drift::DriftTracker;
pub use crate::records::wire::RegistryStatus;
use crate::registry::{self, ModelRef, Registry, RegistryError, VersionInfo};

/// A model being served.
#[derive(Debug)]
pub struct Served {
    pub bundle: ModelBundle,
    pub name: String,
    /// The registry version (or `file` for a local bundle).
    pub version: String,
    pub alias: Option<String>,
    pub sha256: String,
    pub info: Option<VersionInfo>,
    pub loaded_at: DateTime<Utc>,
}

impl Served {
    fn labels(&self) -> [String; 4] {
        [
            self.name.clone(),
            self.version.clone(),
            self.alias.clone().unwrap_or_default(),
            self.sha256.clone(),
        ]
    }
}

enum Source {
    Registry {
        registry: Arc<dyn Registry>,
        name: String,
        alias: String,
        cache_dir: PathBuf,
    },
    /// A bundle file, and the sha256 it must have (`RPS_MODEL_SHA256`, or a
    /// `<file>.sha256` beside it), when one is given.
    File(PathBuf, Option<String>),
}

pub struct ModelHandle {
    current: ArcSwapOption<Served>,
    source: Source,
    refresh: Duration,
    last_check: Mutex<Option<Instant>>,
    status: Mutex<RegistryStatus>,
    refreshing: AtomicBool,
    drift: Arc<DriftTracker>,
    /// The `location` label of its metrics (serving several locations).
    location: Option<String>,
    /// Unloaded to make room: a refresh still in flight no longer publishes.
    retired: AtomicBool,
}

/// What a refresh did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Unchanged,
    Swapped { from: Option<String>, to: String },
}

impl ModelHandle {
    pub fn from_registry(
        registry: Arc<dyn Registry>,
        name: &str,
        alias: &str,
        cache_dir: PathBuf,
        refresh: Duration,
        drift: Arc<DriftTracker>,
    ) -> Self {
        Self::new(
            Source::Registry {
                registry,
                name: name.to_owned(),
                alias: alias.to_owned(),
                cache_dir,
            },
            refresh,
            drift,
        )
    }

    pub fn from_file(path: PathBuf, sha256: Option<String>, drift: Arc<DriftTracker>) -> Self {
        Self::new(Source::File(path, sha256), Duration::ZERO, drift)
    }

    fn new(source: Source, refresh: Duration, drift: Arc<DriftTracker>) -> Self {
        let status = RegistryStatus {
            source: match &source {
                Source::Registry {
                    registry,
                    name,
                    alias,
                    ..
                } => {
                    tracing::info!(model = %name, alias = %alias, registry = %registry.describe(), "serving from the registry");
                    format!("{name}@{alias} ({})", registry.kind())
                }
                Source::File(p, _) => {
                    tracing::info!(path = %p.display(), "serving a bundle file");
                    "a bundle file (RPS_MODEL_PATH)".to_owned()
                }
            },
            ..Default::default()
        };
        Self {
            current: ArcSwapOption::empty(),
            source,
            refresh,
            last_check: Mutex::new(None),
            status: Mutex::new(status),
            refreshing: AtomicBool::new(false),
            drift,
            location: None,
            retired: AtomicBool::new(false),
        }
    }

    /// Its metrics carry `location` (a configured id).
    pub fn with_location(mut self, id: &str) -> Self {
        self.location = Some(id.to_owned());
        self
    }

    /// Unloaded to make room for other locations' models: says so in the metrics, and
    /// a refresh still running publishes nothing more.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        if let Some(location) = &self.location {
            metrics::set_model_unloaded(location, self.current().map(|c| c.labels()));
        }
    }

    /// The model serving right now (a snapshot: a swap does not affect holders).
    pub fn current(&self) -> Option<Arc<Served>> {
        self.current.load_full()
    }

    pub fn status(&self) -> RegistryStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn alias(&self) -> Option<&str> {
        match &self.source {
            Source::Registry { alias, .. } => Some(alias),
            Source::File(..) => None,
        }
    }

    fn swap(&self, served: Served) -> Refresh {
        let served = Arc::new(served);
        let stats = Arc::new(served.bundle.feature_stats.clone());
        let to = served.version.clone();
        let labels = served.labels();
        let previous = self.current.swap(Some(served));
        // After the swap: requests on the new model count against its own statistics.
        self.drift.reset(stats);
        if !self.retired.load(Ordering::Acquire) {
            metrics::set_model(
                self.location.as_deref(),
                previous.as_ref().map(|p| p.labels()),
                Some(labels),
            );
        }
        tracing::info!(from = ?previous.as_ref().map(|p| &p.version), to = %to, "serving a new model version");
        Refresh::Swapped {
            from: previous.map(|p| p.version.clone()),
            to,
        }
    }

    /// Resolves the alias now; loads and swaps in a new version if it moved.
    pub async fn refresh(&self) -> Result<Refresh, RegistryError> {
        *self.last_check.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        let result = self.refresh_inner().await;
        let now = Utc::now();
        {
            let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
            st.last_check = Some(now);
            match &result {
                Ok(_) => {
                    st.reachable = true;
                    st.last_success = Some(now);
                    st.last_error = None;
                }
                Err(e) => {
                    st.reachable = false;
                    st.last_error = Some(e.public_summary().to_owned());
                }
            }
        }
        let label = match &result {
            Ok(Refresh::Unchanged) => "unchanged",
            Ok(Refresh::Swapped { .. }) => "swapped",
            Err(e) => {
                tracing::warn!(
                    "model refresh failed, still serving {:?}: {e}",
                    self.current().map(|c| c.version.clone())
                );
                "error"
            }
        };
        metrics::record_refresh(label, result.is_ok());
        result
    }

    async fn refresh_inner(&self) -> Result<Refresh, RegistryError> {
        match &self.source {
            Source::File(path, sha256) => {
                if self.current().is_some() {
                    return Ok(Refresh::Unchanged);
                }
                let cache_err = |source| RegistryError::Cache {
                    path: path.display().to_string(),
                    source,
                };
                let size = tokio::fs::metadata(path).await.map_err(cache_err)?.len();
                if size > MAX_BUNDLE_BYTES as u64 {
                    return Err(RegistryError::Invalid(format!(
                        "{} is {size} bytes, larger than any bundle",
                        path.display()
                    )));
                }
                let bytes = tokio::fs::read(path).await.map_err(cache_err)?;
                let sidecar = PathBuf::from(format!("{}.sha256", path.display()));
                let expected = match sha256 {
                    Some(s) => Some(s.clone()),
                    None => tokio::fs::read_to_string(&sidecar)
                        .await
                        .ok()
                        .and_then(|s| s.split_whitespace().next().map(str::to_owned)),
                };
                let decoded = match &expected {
                    Some(sha) => ModelBundle::decode_verified(&bytes, sha),
                    None => {
                        tracing::warn!(path = %path.display(), "serving a bundle file with no checksum to verify it against (set RPS_MODEL_SHA256)");
                        ModelBundle::decode(&bytes)
                    }
                };
                let bundle = decoded.map_err(|source| RegistryError::Bundle {
                    name: "file".into(),
                    version: path.display().to_string(),
                    source,
                })?;
                check_servable(&bundle, "file", &path.display().to_string())?;
                Ok(self.swap(Served {
                    name: bundle.metadata.model_name.clone(),
                    version: "file".into(),
                    alias: None,
                    sha256: sha256_hex(&bytes),
                    info: None,
                    loaded_at: Utc::now(),
                    bundle,
                }))
            }
            Source::Registry {
                registry,
                name,
                alias,
                cache_dir,
            } => {
                let info = registry.resolve(name, &ModelRef::Alias(alias.clone())).await?;
                if let Some(cur) = self.current()
                    && cur.version == info.version
                    && Some(cur.sha256.as_str()) == info.bundle_sha256()
                {
                    return Ok(Refresh::Unchanged);
                }
                let loaded = registry::load_version(registry.as_ref(), info, cache_dir).await?;
                check_servable(&loaded.bundle, name, &loaded.info.version)?;
                Ok(self.swap(Served {
                    name: name.clone(),
                    version: loaded.info.version.clone(),
                    alias: Some(alias.clone()),
                    sha256: loaded.sha256,
                    info: Some(loaded.info),
                    loaded_at: Utc::now(),
                    bundle: loaded.bundle,
                }))
            }
        }
    }

    /// Starts a refresh in the background if one is due and none is running. Called on
    /// every request, so a Lambda (frozen between invocations) re-checks as well.
    pub fn maybe_refresh(self: &Arc<Self>) {
        if self.refresh.is_zero() && self.current().is_some() {
            return;
        }
        let due = {
            let last = self.last_check.lock().unwrap_or_else(|p| p.into_inner());
            // Without a model, retry at least every few seconds.
            let every = if self.current().is_none() {
                self.refresh
                    .min(Duration::from_secs(5))
                    .max(Duration::from_secs(1))
            } else {
                self.refresh
            };
            last.is_none_or(|t| t.elapsed() >= every)
        };
        if due {
            self.refresh_in_background();
        }
    }

    /// Starts a refresh in the background unless one is running; the handle finishes
    /// with it. A refresh that panics still frees the way for the next one.
    pub fn refresh_in_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        if self.refreshing.swap(true, Ordering::AcqRel) {
            return tokio::spawn(async {});
        }
        let this = self.clone();
        tokio::spawn(async move {
            /// Clears the flag however the refresh ends, panics included.
            struct Running<'a>(&'a AtomicBool);
            impl Drop for Running<'_> {
                fn drop(&mut self) {
                    self.0.store(false, Ordering::Release);
                }
            }
            let _running = Running(&this.refreshing);
            let _ = this.refresh().await;
        })
    }

    /// Says in the status that the first load is still under way.
    pub fn note_slow_start(&self) {
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        st.last_error = Some("the first model load has not finished yet".into());
    }
}

/// Refuses a bundle this build cannot compute inputs for.
fn check_servable(bundle: &ModelBundle, name: &str, version: &str) -> Result<(), RegistryError> {
    bundle.check_compatible().map_err(|source| RegistryError::Bundle {
        name: name.to_owned(),
        version: version.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use async_trait::async_trait;
    use bytes::Bytes;

    use super::*;
    use crate::registry::{NewVersion, StageOutcome};

    /// A registry whose alias lookups panic; it counts them.
    #[derive(Default)]
    struct Panicking(AtomicUsize);

    #[async_trait]
    impl Registry for Panicking {
        fn describe(&self) -> String {
            "panicking".into()
        }
        fn kind(&self) -> &'static str {
            "panicking"
        }
        async fn create_version(&self, _: NewVersion) -> Result<VersionInfo, RegistryError> {
            unreachable!()
        }
        async fn get_version(&self, _: &str, _: &str) -> Result<VersionInfo, RegistryError> {
            unreachable!()
        }
        async fn get_alias(&self, _: &str, _: &str) -> Result<VersionInfo, RegistryError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            panic!("a bug in an adapter")
        }
        async fn list_versions(&self, _: &str) -> Result<Vec<VersionInfo>, RegistryError> {
            unreachable!()
        }
        async fn set_alias(&self, _: &str, _: &str, _: &str) -> Result<(), RegistryError> {
            unreachable!()
        }
        async fn delete_alias(&self, _: &str, _: &str) -> Result<(), RegistryError> {
            unreachable!()
        }
        async fn set_version_tag(&self, _: &str, _: &str, _: &str, _: &str) -> Result<(), RegistryError> {
            unreachable!()
        }
        async fn set_stage(&self, _: &str, _: &str, _: &str) -> Result<StageOutcome, RegistryError> {
            unreachable!()
        }
        async fn download_bundle(&self, _: &VersionInfo) -> Result<Bytes, RegistryError> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn a_refresh_that_panics_does_not_stop_later_refreshes() {
        let registry = Arc::new(Panicking::default());
        let handle = Arc::new(ModelHandle::from_registry(
            registry.clone(),
            "m",
            "production",
            std::env::temp_dir(),
            Duration::from_secs(60),
            Arc::new(DriftTracker::new(10, Default::default())),
        ));
        assert!(
            handle.refresh_in_background().await.is_err(),
            "the refresh panicked"
        );
        assert!(handle.refresh_in_background().await.is_err());
        assert_eq!(
            registry.0.load(Ordering::SeqCst),
            2,
            "the second refresh never ran"
        );
    }

    #[tokio::test]
    async fn a_bundle_file_is_verified_against_its_checksum_when_one_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.rpsb");
        std::fs::write(&path, b"RPSB\x01\x00\x00\x00 not a real body").unwrap();
        let handle = ModelHandle::from_file(
            path,
            Some("0".repeat(64)),
            Arc::new(DriftTracker::new(10, Default::default())),
        );
        let err = handle.refresh().await.unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}

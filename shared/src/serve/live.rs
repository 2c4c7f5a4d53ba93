//! Live skill as the API shows it: the latest verification summary and retrain record
//! from the store ([`crate::records::verification`]), re-read every `RPS_MODEL_REFRESH_SECS` (at most
//! every few seconds) outside any request, for `/model`, `/verification`, the page and
//! the `rps_live_*` and `rps_retrain_*` metrics.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;

use crate::records::retrain::{self as trigger, RetrainRecord};
use crate::records::skill::IntervalScale;
use crate::records::verification::{self, Verification};
pub use crate::records::wire::LiveSkill;
use crate::store::ObjectStore;

/// What was read, and when.
#[derive(Debug)]
pub struct LiveState {
    pub verification: Option<Verification>,
    pub retrain: Option<RetrainRecord>,
}

impl LiveState {
    /// The live re-calibration of `version`'s intervals ([`crate::recalibration`]) at
    /// `now`; empty (serve them as calibrated) when the latest verification found none,
    /// or is older than [`crate::recalibration::MAX_AGE_HOURS`].
    pub fn scales(&self, version: &str, now: chrono::DateTime<chrono::Utc>) -> &[IntervalScale] {
        self.verification
            .as_ref()
            .and_then(|v| crate::recalibration::in_force(v, version, now))
            .unwrap_or_default()
    }
}

pub struct Live {
    current: ArcSwapOption<LiveState>,
    store: Arc<dyn ObjectStore>,
    name: String,
    every: Duration,
    timeout: Duration,
    last_check: Mutex<Option<Instant>>,
    refreshing: AtomicBool,
}

impl Live {
    pub fn new(store: Arc<dyn ObjectStore>, name: String, every: Duration, timeout: Duration) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            store,
            name,
            // Re-read at most every few seconds, and at least every minute.
            every: every.clamp(Duration::from_secs(1), Duration::from_secs(60)),
            timeout,
            last_check: Mutex::new(None),
            refreshing: AtomicBool::new(false),
        }
    }

    pub fn current(&self) -> Option<Arc<LiveState>> {
        self.current.load_full()
    }

    /// The live skill of `version`, if the latest verification scored it.
    pub fn skill_of(&self, version: &str) -> Option<LiveSkill> {
        let state = self.current()?;
        let v = state.verification.as_ref()?;
        Some(LiveSkill {
            verified_at: v.verified_at,
            as_of: v.as_of,
            windows: v.version(version).map(|s| s.windows.clone()).unwrap_or_default(),
        })
    }

    /// Reads both records now; a store that fails or is slow keeps the last ones.
    pub async fn refresh(&self) {
        if let Ok(mut t) = self.last_check.lock() {
            *t = Some(Instant::now());
        }
        let read = async {
            let v = verification::latest(self.store.as_ref(), &self.name).await?;
            let r = trigger::latest(self.store.as_ref(), &self.name).await?;
            Ok::<_, crate::store::StoreError>((v, r))
        };
        match tokio::time::timeout(self.timeout, read).await {
            Ok(Ok((verification, retrain))) => self.current.store(Some(Arc::new(LiveState {
                verification,
                retrain,
            }))),
            Ok(Err(e)) => tracing::warn!("reading the latest verification failed, keeping the last one: {e}"),
            Err(_) => tracing::warn!(
                "the store did not answer within {:?}; keeping the last verification",
                self.timeout
            ),
        }
    }

    /// Starts a re-read in the background if one is due and none is running.
    pub fn maybe_refresh(self: &Arc<Self>) {
        let due = self
            .last_check
            .lock()
            .map(|t| t.is_none_or(|t| t.elapsed() >= self.every))
            .unwrap_or(true);
        if due && !self.refreshing.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move {
                this.refresh().await;
                this.refreshing.store(false, Ordering::Release);
            });
        }
    }
}

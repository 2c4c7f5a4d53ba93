//! The `/predict` answers sampled into the forecast log ([`crate::forecast_log`]):
//! a request only offers its forecast to the in-memory [`Sampler`] (no I/O, no
//! allocation for a repeat); the batch goes to the store every
//! `RPS_FORECAST_LOG_FLUSH_SECS`, from a timer on a server and from the next request
//! after the interval on Lambda (frozen between invocations), and once more at
//! shutdown, into the client slots of each issue day (a full day drops the batch;
//! see [`forecast_log::append_served`]). A failed write keeps the batch for the next flush, as far as the batch
//! size allows.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::metrics;
use super::served::Served;
use crate::bundle::Forecast;
use crate::features::FeatureRow;
use crate::forecast_log::{self, ForecastSource, LoggedForecast, Sampler};
use crate::records::skill::IntervalScale;
use crate::store::ObjectStore;

pub struct ForecastSampler {
    sampler: Sampler,
    store: Arc<dyn ObjectStore>,
    /// The log's model name (the deployment's `RPS_MODEL_NAME`).
    name: String,
    every: Duration,
    last_flush: Mutex<Instant>,
    flushing: AtomicBool,
}

impl ForecastSampler {
    pub fn new(store: Arc<dyn ObjectStore>, name: String, per_flush: usize, every: Duration) -> Self {
        Self {
            sampler: Sampler::new(per_flush),
            store,
            name,
            every,
            last_flush: Mutex::new(Instant::now()),
            flushing: AtomicBool::new(false),
        }
    }

    /// Offers one answer; cheap enough for every request.
    /// `scales`: the live re-calibration the answer's intervals were served with.
    pub fn offer(&self, m: &Served, row: &FeatureRow, forecasts: &[Forecast], scales: &[IntervalScale]) {
        if !self.sampler.enabled() {
            return;
        }
        let outcome = self.sampler.offer(&m.version, row, || {
            LoggedForecast::new(
                &m.name,
                &m.version,
                ForecastSource::Predict,
                row,
                forecasts,
                Some(m.bundle.metadata.data_end()),
                scales,
            )
        });
        metrics::record_forecast_log(outcome);
    }

    /// Writes the batch if the interval has passed and none is being written.
    pub fn maybe_flush(self: &Arc<Self>) {
        let due = self
            .last_flush
            .lock()
            .map(|t| t.elapsed() >= self.every)
            .unwrap_or(true);
        if due && self.sampler.pending() > 0 && !self.flushing.swap(true, Ordering::AcqRel) {
            let this = self.clone();
            tokio::spawn(async move {
                this.flush_now().await;
                this.flushing.store(false, Ordering::Release);
            });
        }
    }

    /// Writes what is pending now; returns how many forecasts were written.
    pub async fn flush_now(&self) -> usize {
        if let Ok(mut t) = self.last_flush.lock() {
            *t = Instant::now();
        }
        let batch = self.sampler.take();
        if batch.is_empty() {
            return 0;
        }
        let n = batch.len();
        match forecast_log::append_served(self.store.as_ref(), &self.name, &batch, chrono::Utc::now()).await {
            Ok(a) => {
                metrics::record_forecast_log_write(a.written, true);
                if a.dropped > 0 {
                    metrics::record_forecast_log_dropped(a.dropped);
                    tracing::info!(
                        dropped = a.dropped,
                        "the forecast log's client slots of a day are full: {} sampled forecasts dropped",
                        a.dropped
                    );
                }
                a.written
            }
            Err(e) => {
                let kept = self.sampler.restore(batch);
                tracing::error!(
                    "writing {n} sampled forecasts to the log failed ({kept} kept for the next flush): {e}"
                );
                metrics::record_forecast_log_write(n - kept, false);
                0
            }
        }
    }
}

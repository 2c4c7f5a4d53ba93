//! Live skill: how a model version's forecasts did against what happened, per window
//! of target times and horizon (verification measures it, the retrain rule and the API
//! read it).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scores::IntervalScore;

/// A rolling window of target times ending at the newest observed hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
pub enum LiveWindow {
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

impl LiveWindow {
    pub const ALL: [LiveWindow; 2] = [LiveWindow::Day, LiveWindow::Week];

    pub const fn hours(self) -> i64 {
        match self {
            LiveWindow::Day => 24,
            LiveWindow::Week => 168,
        }
    }

    /// `24h`, `7d`: the label in metric names, Prometheus and JSON.
    pub const fn label(self) -> &'static str {
        match self {
            LiveWindow::Day => "24h",
            LiveWindow::Week => "7d",
        }
    }

    /// Whether `target` falls in the window ending at `as_of`.
    pub fn contains(self, as_of: NaiveDateTime, target: NaiveDateTime) -> bool {
        target <= as_of && target > as_of - Duration::hours(self.hours())
    }
}

/// One horizon's live scores in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct HorizonSkill {
    pub horizon: u8,
    /// Verified forecasts.
    pub n: usize,
    pub rmse: f64,
    pub mae: f64,
    /// Mean of forecast minus observed.
    pub bias: f64,
    pub persistence_rmse: f64,
    pub persistence_mae: f64,
    /// 1 − RMSE / persistence's RMSE over the same hours; `None` when persistence was
    /// perfect (nothing to improve on).
    pub skill: Option<f64>,
    /// Each interval level's coverage, width and interval score over the verified
    /// forecasts that carried it (`hours`); none when no forecast had intervals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<IntervalScore>,
}

impl HorizonSkill {
    /// The live scores of the interval at `level`.
    pub fn interval(&self, level: f64) -> Option<&IntervalScore> {
        self.intervals.iter().find(|i| i.level == level)
    }
}

/// One model version's live scores in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WindowSkill {
    pub window: LiveWindow,
    /// Forecasts with at least one verified horizon in the window.
    pub forecasts: usize,
    /// Horizon forecasts due in the window whose hour was never observed.
    pub unverified: usize,
    pub horizons: Vec<HorizonSkill>,
}

impl WindowSkill {
    pub fn horizon(&self, h: u8) -> Option<&HorizonSkill> {
        self.horizons.iter().find(|s| s.horizon == h)
    }
}

/// One model version's live scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VersionSkill {
    pub version: String,
    pub windows: Vec<WindowSkill>,
    /// Its intervals re-calibrated on the last 7 days of its scheduled forecasts
    /// ([`crate::recalibration`]): what serving multiplies each half-width by; empty
    /// until enough of them are verified, or when re-calibration is off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recalibration: Vec<IntervalScale>,
}

/// The live re-calibration of one horizon's interval at one level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntervalScale {
    pub horizon: u8,
    pub level: f64,
    /// What the calibrated half-width is multiplied by (bounded to
    /// [`crate::recalibration::MIN_SCALE`]..=[`crate::recalibration::MAX_SCALE`]).
    pub scale: f64,
    /// The verified scheduled forecasts it was found from.
    pub hours: usize,
    /// The share of those hours the calibrated (unscaled) interval covered.
    pub calibrated_coverage: f64,
}

impl VersionSkill {
    pub fn window(&self, w: LiveWindow) -> Option<&WindowSkill> {
        self.windows.iter().find(|s| s.window == w)
    }

    /// The metrics as MLflow and JSON summaries name them: `live_rmse_h6_24h`, …
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        let mut m = BTreeMap::new();
        for w in &self.windows {
            let l = w.window.label();
            m.insert(format!("live_forecasts_{l}"), w.forecasts as f64);
            m.insert(format!("live_unverified_{l}"), w.unverified as f64);
            for s in &w.horizons {
                let h = s.horizon;
                m.insert(format!("live_rmse_h{h}_{l}"), s.rmse);
                m.insert(format!("live_mae_h{h}_{l}"), s.mae);
                m.insert(format!("live_bias_h{h}_{l}"), s.bias);
                m.insert(format!("live_persistence_rmse_h{h}_{l}"), s.persistence_rmse);
                if let Some(k) = s.skill {
                    m.insert(format!("live_skill_h{h}_{l}"), k);
                }
                for i in &s.intervals {
                    let pct = i.percent();
                    m.insert(format!("live_interval_coverage_{pct}_h{h}_{l}"), i.coverage);
                    m.insert(format!("live_interval_winkler_{pct}_h{h}_{l}"), i.winkler);
                }
            }
        }
        for r in &self.recalibration {
            let pct = (r.level * 1000.0).round() / 10.0;
            m.insert(format!("live_interval_scale_{pct}_h{}", r.horizon), r.scale);
        }
        m
    }
}

/// What happened to the log's records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LogCounts {
    /// Records read (after skipping bad lines).
    pub records: usize,
    /// Lines that did not parse or records that contradicted themselves.
    pub skipped: usize,
    /// The same model and hour logged again.
    pub duplicates: usize,
    /// Made from observations that are not the store's (see the module).
    pub mismatched: usize,
    /// Issued before the end of the model's own data: in-sample, not scored.
    #[serde(default)]
    pub in_sample: usize,
    /// Horizon forecasts whose hour has not come yet.
    pub pending: usize,
    /// Horizon forecasts due (in the last 7 days) whose hour was never observed.
    pub unverified: usize,
}

/// A verified forecast, for the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RecentForecast {
    pub version: String,
    pub horizon: u8,
    pub issued_at: NaiveDateTime,
    pub target_time: NaiveDateTime,
    pub forecast: f64,
    pub observed: f64,
}

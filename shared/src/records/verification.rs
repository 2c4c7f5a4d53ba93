//! What a verification found, the record the API, its metrics and its page read: the
//! live scores per model version and window, what happened to the forecast log, and
//! the retrain decision ([`crate::records::retrain`]).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bundle::Forecast;
use crate::layout;
use crate::records::retrain::{ObservedDrift, RetrainDecision};
pub use crate::records::skill::{
    HorizonSkill, LiveWindow, LogCounts, RecentForecast, VersionSkill, WindowSkill,
};
use crate::store::{self, ObjectKey};

/// The summary's format.
pub const FORMAT: u32 = 1;
/// Hours of forecast-versus-observed pairs the summary keeps for the page.
pub const RECENT_HOURS: i64 = 72;

/// The scheduled forecast this run issued.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Issued {
    pub version: String,
    pub issued_at: NaiveDateTime,
    pub snapshot: ObjectKey,
    pub segment: ObjectKey,
    pub forecasts: Vec<Forecast>,
    /// Earlier hours forecast as well, that the served version had not forecast yet.
    #[serde(default)]
    pub catch_up: usize,
}

/// One observed hour, for the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedHour {
    pub time: NaiveDateTime,
    pub temperature_2m: f64,
}

/// The client forecasts' live scores (see [`Verification::client`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ClientScores {
    pub versions: Vec<VersionSkill>,
    /// What happened to the client records (read and repeats are counted in the
    /// verification's `log`).
    pub log: LogCounts,
}

/// What a verification found: the stage's output, and (with the pairs for the page)
/// the summary in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Verification {
    pub format: u32,
    /// Sortable and unique: when it ran.
    pub id: String,
    pub verified_at: DateTime<Utc>,
    pub model_name: String,
    /// The alias whose model is judged (what the API serves).
    pub alias: String,
    pub served_version: Option<String>,
    /// The newest observed hour: the end of every window.
    pub as_of: Option<NaiveDateTime>,
    #[serde(default)]
    pub issued: Option<Issued>,
    /// Live scores of the scheduled forecasts per model version, newest version first:
    /// what the retrain rule, the live-skill alert and the page judge by.
    pub versions: Vec<VersionSkill>,
    pub log: LogCounts,
    /// The sampled `/predict` answers, scored the same way and reported apart: anyone
    /// can send any history, so client traffic is a signal, never a trigger.
    #[serde(default)]
    pub client: ClientScores,
    /// The observations against the served model's training data, per window.
    pub drift: Vec<ObservedDrift>,
    pub retrain: RetrainDecision,
    /// Validated snapshots read.
    pub snapshots: usize,
    /// The monitoring run of each version in the tracking server.
    #[serde(default)]
    pub monitoring_runs: BTreeMap<String, String>,
    /// What could not be done (the rest stands).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Where the summary is.
    #[serde(default)]
    pub summary: Option<ObjectKey>,
    /// Verified forecasts of the last [`RECENT_HOURS`] (summary only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent: Vec<RecentForecast>,
    /// Observed temperatures of the last [`RECENT_HOURS`] (summary only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed: Vec<ObservedHour>,
}

impl Verification {
    /// The live scores of a version.
    pub fn version(&self, version: &str) -> Option<&VersionSkill> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The summary without the page's series: the stage's answer, a few kilobytes.
    pub fn without_series(mut self) -> Self {
        self.recent.clear();
        self.observed.clear();
        self
    }
}

/// The latest summary of `name`, if a verification has run.
pub async fn latest(
    store: &dyn store::ObjectStore,
    name: &str,
) -> Result<Option<Verification>, store::StoreError> {
    match store::get_json(store, &layout::verification(name, layout::LATEST_FILE)?).await {
        Ok(v) => Ok(Some(v)),
        Err(store::StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

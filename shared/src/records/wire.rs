//! The API's answers as types: the API builds them and clients (the smoke gate, the
//! release flow's staging wait, tests) read them, so both sides share one definition
//! of the wire format.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::bundle::Forecast;
use crate::observations::TimeWindow;
use crate::records::skill::WindowSkill;

/// Which model answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelSummary {
    pub name: String,
    pub version: String,
    pub alias: Option<String>,
    /// The location it forecasts (its id; `default` without `RPS_LOCATIONS`).
    #[serde(default)]
    pub location: String,
}

/// `GET /model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub alias: Option<String>,
    /// The location it forecasts (its id).
    #[serde(default)]
    pub location: String,
    pub sha256: String,
    pub loaded_at: DateTime<Utc>,
    pub algorithm: String,
    pub trained_at: DateTime<Utc>,
    pub training_window: TimeWindow,
    pub holdout_window: TimeWindow,
    pub data_version: String,
    pub git_commit: Option<String>,
    pub run_id: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    /// How many trailing hours `/predict` needs.
    pub input_hours: usize,
    pub horizons: Vec<u8>,
    pub variables: Vec<String>,
    pub bundle_format_version: u32,
    pub registry: RegistryStatus,
    /// How this version's forecasts did, from the latest verification.
    #[serde(default)]
    pub live: Option<LiveSkill>,
    /// The prediction intervals its forecasts carry.
    #[serde(default)]
    pub intervals: IntervalsInfo,
}

/// The prediction intervals a model's forecasts carry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IntervalsInfo {
    /// The levels of every forecast's intervals; empty when the model has none.
    pub levels: Vec<f64>,
    /// How they were calibrated, or why there are none.
    pub detail: String,
    /// The live re-calibration every answer's intervals carry: the latest
    /// verification's factor per horizon and level for this version (see
    /// `docs/serving.md`); empty: served as calibrated.
    #[serde(default)]
    pub recalibration: Vec<crate::records::skill::IntervalScale>,
}

/// `POST /predict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PredictResponse {
    pub model: ModelSummary,
    /// The newest observation's hour: the forecasts are for the hours after it.
    pub issued_at: String,
    pub forecasts: Vec<Forecast>,
    pub drift: RequestDrift,
}

/// This request's drift flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestDrift {
    /// Features of this request outside the training range (the min–max of training).
    pub features_out_of_range: Vec<String>,
    /// A weather feature is among them (the calendar ones only say when the request came).
    pub out_of_range: bool,
}

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// Where the served model comes from and whether that place answers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RegistryStatus {
    /// What is served from what kind of registry (`rps-temperature@production
    /// (MLflow)`); where the registry is stays in the logs.
    pub source: String,
    pub reachable: bool,
    pub last_check: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    /// What went wrong, in words safe to show to anyone (details in the logs).
    pub last_error: Option<String>,
}

/// The served version's live skill, for `/model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LiveSkill {
    /// When the verification ran, and the newest hour it had observed.
    pub verified_at: DateTime<Utc>,
    pub as_of: Option<NaiveDateTime>,
    /// The last 24 hours and 7 days of target times.
    pub windows: Vec<WindowSkill>,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// `GET /locations`: every location the API answers for, in the locations file's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LocationList {
    pub locations: Vec<LocationEntry>,
    /// Locations whose model is in memory now.
    pub resident: usize,
    /// What their models are estimated to take, and the limit (`RPS_MODEL_CACHE_MB`).
    pub cache_bytes: u64,
    pub cache_limit_bytes: u64,
}

/// One location of `GET /locations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LocationEntry {
    /// What `POST /predict`'s `location` and the other routes' `?location=` take.
    pub id: String,
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    /// The registered model that serves it.
    pub model: String,
    /// Its model is in memory (else the first request loads it).
    pub loaded: bool,
    /// The version in memory, when loaded.
    pub version: Option<String>,
}

/// `GET /ready` with a model loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Ready {
    /// `ready`.
    pub status: String,
    pub model: ModelSummary,
    pub loaded_at: DateTime<Utc>,
    pub registry: RegistryStatus,
}

/// `GET /ready` before a model is loaded (with 503).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct NotReady {
    /// `no model`.
    pub status: String,
    pub error: ErrorBody,
    pub registry: RegistryStatus,
}

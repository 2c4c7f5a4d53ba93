//! The API's answers as types: the handlers build them and clients (the smoke gate,
//! the release flow's staging wait, tests) read them, so both sides share one
//! definition of the wire format.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::served::RegistryStatus;
use crate::bundle::Forecast;
use crate::observations::TimeWindow;

/// Which model answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSummary {
    pub name: String,
    pub version: String,
    pub alias: Option<String>,
}

/// `GET /model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub alias: Option<String>,
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
    pub live: Option<super::live::LiveSkill>,
}

/// `POST /predict`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictResponse {
    pub model: ModelSummary,
    /// The newest observation's hour: the forecasts are for the hours after it.
    pub issued_at: String,
    pub forecasts: Vec<Forecast>,
    pub drift: RequestDrift,
}

/// This request's drift flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDrift {
    /// Features of this request outside the training range (the min–max of training).
    pub features_out_of_range: Vec<String>,
    /// A weather feature is among them (the calendar ones only say when the request came).
    pub out_of_range: bool,
}

/// Every error answer: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorBody,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub status: u16,
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

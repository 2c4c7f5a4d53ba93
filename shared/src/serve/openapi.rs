//! `GET /openapi.json`: the OpenAPI 3.0 document of the service, built from the same
//! definitions the handlers use (variables, plausible ranges, `INPUT_HOURS`, limits),
//! so it cannot drift from what the service accepts.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::AppState;
use crate::features::{HORIZONS, INPUT_HOURS};
use crate::observations::KEY_VARIABLES;

pub async fn handler(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(document(
        state.config.serve.max_observations,
        state.config.serve.max_body_bytes,
    ))
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}
    })
}

pub fn document(max_observations: usize, max_body_bytes: usize) -> Value {
    let mut obs_props = Map::new();
    obs_props.insert(
        "time".into(),
        json!({"type": "string", "description": "UTC hour, Open-Meteo's format", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:00$", "example": "2023-10-01T00:00"}),
    );
    let mut required = vec![json!("time")];
    for v in KEY_VARIABLES {
        let (lo, hi) = v.plausible_range();
        obs_props.insert(
            v.name().into(),
            json!({"type": "number", "minimum": lo, "maximum": hi, "description": format!("{} in {}", v.name(), v.unit())}),
        );
        required.push(json!(v.name()));
    }
    let horizons: Vec<Value> = HORIZONS.iter().map(|h| json!(h)).collect();
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "rps prediction service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!(
                "Hourly temperature forecasts {}–{} h ahead from the model the registry marks as served. \
                 Errors are JSON: {{\"error\": {{\"status\", \"code\", \"message\", \"location\"}}}}. \
                 400: malformed request; 413: body over {max_body_bytes} bytes; 415: not JSON; \
                 404: no verification has run yet; 422: values that cannot be used; 503: no model loaded or no observations yet.",
                HORIZONS[0], HORIZONS[HORIZONS.len() - 1]
            ),
        },
        "paths": {
            "/health": {"get": {"summary": "The process is alive", "responses": {"200": {"description": "alive", "content": {"application/json": {"schema": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}}}}}}}},
            "/ready": {"get": {"summary": "A model is loaded", "responses": {
                "200": json_response("ready, with the model and registry status", "Ready"),
                "503": {"description": "no model loaded yet", "content": {"application/json": {"schema": {"type": "object", "required": ["status", "error"], "properties": {"status": {"type": "string"}, "error": {"$ref": "#/components/schemas/ErrorBody"}, "registry": {"type": "object"}}}}}}
            }}},
            "/predict": {"post": {
                "summary": "Forecast every horizon from trailing hourly observations",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
                "responses": {
                    "200": json_response("forecasts per horizon, the model that made them, drift flags", "PredictResponse"),
                    "400": error_response("malformed JSON, wrong shape or types, missing variables, bad time format"),
                    "413": error_response("the body is too large"),
                    "415": error_response("the body is not JSON"),
                    "422": error_response("null or implausible values, times not hourly or not increasing, too few or too many hours"),
                    "503": error_response("no model is loaded")
                }
            }},
            "/forecast": {"get": {"summary": "The forecast from the newest validated observations in the store", "responses": {
                "200": json_response("forecasts and the last 48 observed hours", "ForecastResponse"),
                "503": error_response("no model, or no usable observations in the store")
            }}},
            "/model": {"get": {"summary": "The served model", "responses": {
                "200": json_response("name, version, alias, windows, data version, commit, metrics, input_hours", "ModelInfo"),
                "503": error_response("no model is loaded")
            }}},
            "/drift": {"get": {"summary": "Drift of recent prediction requests against the training data", "responses": {
                "200": json_response("the drift window", "Drift")
            }}},
            "/verification": {"get": {"summary": "How the forecasts did: the latest verification against what was observed", "responses": {
                "200": json_response("live skill per model version and window, drift of the observations, the retrain decision, forecast against observed for the last 72 hours", "Verification"),
                "404": error_response("no verification has run yet (a new deployment's normal state)")
            }}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
            "/": {"get": {"summary": "The web page", "responses": {"200": {"description": "HTML", "content": {"text/html": {"schema": {"type": "string"}}}}}}}
        },
        "components": {"schemas": {
            "Observation": {"type": "object", "required": required, "properties": obs_props, "additionalProperties": true},
            "PredictRequest": {"type": "object", "required": ["observations"], "properties": {
                "observations": {"type": "array", "minItems": INPUT_HOURS, "maxItems": max_observations,
                    "description": format!("Consecutive UTC hours, oldest first; the last {INPUT_HOURS} are used."),
                    "items": {"$ref": "#/components/schemas/Observation"}}
            }},
            "Forecast": {"type": "object", "required": ["horizon_hours", "time", "temperature_2m"], "properties": {
                "horizon_hours": {"type": "integer", "enum": horizons},
                "time": {"type": "string"},
                "temperature_2m": {"type": "number"}
            }},
            "ModelRef": {"type": "object", "required": ["name", "version"], "properties": {
                "name": {"type": "string"}, "version": {"type": "string"}, "alias": {"type": "string", "nullable": true}
            }},
            "PredictResponse": {"type": "object", "required": ["model", "issued_at", "forecasts", "drift"], "properties": {
                "model": {"$ref": "#/components/schemas/ModelRef"},
                "issued_at": {"type": "string", "description": "the newest observation's hour"},
                "forecasts": {"type": "array", "minItems": HORIZONS.len(), "maxItems": HORIZONS.len(), "items": {"$ref": "#/components/schemas/Forecast"}},
                "drift": {"type": "object", "required": ["features_out_of_range", "out_of_range"], "properties": {
                    "features_out_of_range": {"type": "array", "items": {"type": "string"}},
                    "out_of_range": {"type": "boolean"}
                }}
            }},
            "ForecastResponse": {"type": "object", "required": ["model", "issued_at", "observations_age_minutes", "observations", "forecasts"], "properties": {
                "model": {"$ref": "#/components/schemas/ModelRef"},
                "issued_at": {"type": "string"},
                "observations_age_minutes": {"type": "number"},
                "collected_at": {"type": "string"},
                "snapshot": {"type": "string"},
                "observations": {"type": "array", "items": {"type": "object", "properties": {"time": {"type": "string"}, "temperature_2m": {"type": "number", "nullable": true}}}},
                "forecasts": {"type": "array", "items": {"$ref": "#/components/schemas/Forecast"}},
                "features_out_of_range": {"type": "array", "items": {"type": "string"}}
            }},
            "ModelInfo": {"type": "object", "required": ["name", "version", "input_hours", "metrics", "data_version"], "properties": {
                "name": {"type": "string"}, "version": {"type": "string"}, "alias": {"type": "string", "nullable": true},
                "input_hours": {"type": "integer"}, "metrics": {"type": "object", "additionalProperties": {"type": "number"}},
                "data_version": {"type": "string"}, "git_commit": {"type": "string", "nullable": true},
                "training_window": {"type": "object"}, "holdout_window": {"type": "object"},
                "live": {"type": "object", "nullable": true, "description": "this version's live skill from the latest verification", "properties": {
                    "verified_at": {"type": "string"}, "as_of": {"type": "string", "nullable": true},
                    "windows": {"type": "array", "items": {"$ref": "#/components/schemas/WindowSkill"}}
                }}
            }},
            "WindowSkill": {"type": "object", "required": ["window", "forecasts", "unverified", "horizons"], "properties": {
                "window": {"type": "string", "enum": ["24h", "7d"]}, "forecasts": {"type": "integer"}, "unverified": {"type": "integer"},
                "horizons": {"type": "array", "items": {"type": "object", "required": ["horizon", "n", "rmse", "mae"], "properties": {
                    "horizon": {"type": "integer"}, "n": {"type": "integer"}, "rmse": {"type": "number"}, "mae": {"type": "number"}, "bias": {"type": "number"},
                    "persistence_rmse": {"type": "number"}, "persistence_mae": {"type": "number"},
                    "skill": {"type": "number", "nullable": true, "description": "1 - RMSE / persistence's RMSE over the same hours"}
                }}}
            }},
            "Verification": {"type": "object", "required": ["id", "verified_at", "model_name", "alias", "versions", "log", "drift", "retrain"], "properties": {
                "id": {"type": "string"}, "verified_at": {"type": "string"}, "model_name": {"type": "string"}, "alias": {"type": "string"},
                "served_version": {"type": "string", "nullable": true}, "as_of": {"type": "string", "nullable": true},
                "versions": {"type": "array", "items": {"type": "object", "required": ["version", "windows"], "properties": {
                    "version": {"type": "string"}, "windows": {"type": "array", "items": {"$ref": "#/components/schemas/WindowSkill"}}
                }}},
                "log": {"type": "object"}, "drift": {"type": "array", "items": {"type": "object"}},
                "retrain": {"type": "object", "required": ["needed", "causes"], "properties": {"needed": {"type": "boolean"}, "causes": {"type": "array", "items": {"type": "object"}}}},
                "recent": {"type": "array", "items": {"type": "object", "properties": {
                    "version": {"type": "string"}, "horizon": {"type": "integer"}, "issued_at": {"type": "string"}, "target_time": {"type": "string"},
                    "forecast": {"type": "number"}, "observed": {"type": "number"}
                }}},
                "observed": {"type": "array", "items": {"type": "object", "properties": {"time": {"type": "string"}, "temperature_2m": {"type": "number"}}}}
            }},
            "Ready": {"type": "object", "required": ["status", "model"], "properties": {"status": {"type": "string"}, "model": {"$ref": "#/components/schemas/ModelRef"}, "registry": {"type": "object"}}},
            "Drift": {"type": "object", "required": ["requests", "window", "out_of_range_share", "max_psi", "features", "drifting", "reasons", "thresholds"], "properties": {
                "drifting": {"type": "boolean", "description": "the window passes the drift thresholds (RPS_DRIFT_*)"},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "thresholds": {"type": "object", "properties": {"min_requests": {"type": "integer"}, "max_out_of_range_share": {"type": "number"}, "max_psi": {"type": "number"}}},
                "requests": {"type": "integer"}, "window": {"type": "integer"},
                "out_of_range_share": {"type": "number"}, "max_psi": {"type": "number", "nullable": true, "description": "null until the window holds 20 requests"},
                "features": {"type": "array", "items": {"type": "object", "properties": {"feature": {"type": "string"}, "calendar": {"type": "boolean", "description": "a calendar feature, left out of the drift rule"}, "out_of_range_share": {"type": "number"}, "psi": {"type": "number", "nullable": true}}}}
            }},
            "ErrorBody": {"type": "object", "required": ["status", "code", "message"], "properties": {
                "status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"},
                "location": {"type": "string", "description": "JSON pointer into the request, or header:<name>"}
            }},
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"$ref": "#/components/schemas/ErrorBody"}}}
        }}
    })
}

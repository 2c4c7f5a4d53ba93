//! `GET /openapi.json`: the OpenAPI 3.0 document of the service. The answers' schemas
//! are derived from the types the handlers serialize (`schemars`, as serialized), so
//! the document cannot say one thing while the service sends another; the request's
//! schema is built from the definitions the handler checks against (the variables and
//! their plausible ranges, `INPUT_HOURS`, the configured limits).

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

use super::AppState;
use super::forecast::ForecastResponse;
use super::locations::Locations;
use crate::config::Config;
use crate::drift::DriftSnapshot;
use crate::features::{HORIZONS, INPUT_HOURS};
use crate::observations::KEY_VARIABLES;
use crate::records::verification::Verification;
use crate::records::wire::{
    ErrorResponse, Health, LocationList, ModelInfo, NotReady, PredictResponse, Ready,
};

pub async fn handler(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.openapi.clone(),
    )
}

/// The document for `config` and its locations, serialized (once per server:
/// [`AppState::openapi`]).
pub fn serialized(config: &Config, locations: &Locations) -> bytes::Bytes {
    let ids: Vec<String> = locations.sites().map(|s| s.id.to_string()).collect();
    let doc = document(config.serve.max_observations, config.serve.max_body_bytes, &ids);
    serde_json::to_vec(&doc).expect("a JSON value serializes").into()
}

/// The answers' schemas, collected under `#/components/schemas` as they are referred to.
struct Schemas(SchemaGenerator);

impl Schemas {
    fn new() -> Self {
        Self(SchemaSettings::openapi3().for_serialize().into_generator())
    }

    /// A JSON answer whose body is a `T`.
    fn json<T: JsonSchema>(&mut self, description: &str) -> Value {
        let schema = self.0.subschema_for::<T>();
        json!({"description": description, "content": {"application/json": {"schema": schema}}})
    }

    /// An error answer.
    fn error(&mut self, description: &str) -> Value {
        self.json::<ErrorResponse>(description)
    }

    fn take(mut self) -> Map<String, Value> {
        self.0.take_definitions(true)
    }
}

fn text(description: &str, media: &str) -> Value {
    json!({"description": description, "content": {media: {"schema": {"type": "string"}}}})
}

/// `POST /predict`'s body: the variables the handler requires, with the ranges it
/// accepts, and how many hours.
fn predict_request(max_observations: usize, ids: &[String]) -> (Value, Value) {
    let mut props = Map::new();
    props.insert(
        "time".into(),
        json!({"type": "string", "description": "UTC hour, Open-Meteo's format", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:00$", "example": "2023-10-01T00:00"}),
    );
    let mut required = vec![json!("time")];
    for v in KEY_VARIABLES {
        let (lo, hi) = v.plausible_range();
        props.insert(
            v.name().into(),
            json!({"type": "number", "minimum": lo, "maximum": hi, "description": format!("{} in {}", v.name(), v.unit())}),
        );
        required.push(json!(v.name()));
    }
    let observation =
        json!({"type": "object", "required": required, "properties": props, "additionalProperties": true});
    let mut required = vec![json!("observations")];
    if ids.len() > 1 {
        required.push(json!("location"));
    }
    let request = json!({"type": "object", "required": required, "properties": {
        "observations": {"type": "array", "minItems": INPUT_HOURS, "maxItems": max_observations,
            "description": format!("Consecutive UTC hours, oldest first; the last {INPUT_HOURS} are used."),
            "items": {"$ref": "#/components/schemas/Observation"}},
        "location": location_schema(ids, "The location to forecast (`GET /locations`); required when there are several.")
    }});
    (observation, request)
}

/// A location id: one of the configured ones.
fn location_schema(ids: &[String], description: &str) -> Value {
    json!({"type": "string", "enum": ids, "description": description})
}

/// `?location=`: required on `route` when there are several locations, unless `first`.
fn location_parameter(ids: &[String], first: bool) -> Value {
    let description = if first {
        "The location (`GET /locations`); without it, the first one."
    } else {
        "The location (`GET /locations`); required when there are several."
    };
    json!([{"name": "location", "in": "query", "required": ids.len() > 1 && !first,
        "schema": location_schema(ids, description)}])
}

pub fn document(max_observations: usize, max_body_bytes: usize, ids: &[String]) -> Value {
    let mut s = Schemas::new();
    let at = location_parameter(ids, false);
    let mut paths = json!({
        "/health": {"get": {"summary": "The process is alive", "responses": {
            "200": s.json::<Health>("alive")
        }}},
        "/ready": {"get": {"summary": "A model is loaded", "parameters": location_parameter(ids, true), "responses": {
            "200": s.json::<Ready>("ready, with the model and registry status"),
            "503": s.json::<NotReady>("no model loaded yet")
        }}},
        "/locations": {"get": {"summary": "The locations served, and which are loaded", "responses": {
            "200": s.json::<LocationList>("every location in the locations file's order")
        }}},
        "/predict": {"post": {
            "summary": "Forecast every horizon from trailing hourly observations",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PredictRequest"}}}},
            "responses": {
                "200": s.json::<PredictResponse>("forecasts per horizon, the model that made them, drift flags"),
                "400": s.error("malformed JSON, wrong shape or types, missing variables, bad time format, no location named where there are several"),
                "413": s.error("the body is too large"),
                "415": s.error("the body is not JSON"),
                "422": s.error("null or implausible values, times not hourly or not increasing, too few or too many hours, an unknown location"),
                "503": s.error("no model is loaded")
            }
        }},
        "/forecast": {"get": {"summary": "The forecast from the newest validated observations in the store", "parameters": at.clone(), "responses": {
            "200": s.json::<ForecastResponse>("forecasts and the last 48 observed hours"),
            "503": s.error("no model, or no usable observations in the store")
        }}},
        "/model": {"get": {"summary": "The served model", "parameters": at.clone(), "responses": {
            "200": s.json::<ModelInfo>("name, version, alias, windows, data version, commit, metrics, input_hours, the intervals its forecasts carry, live skill"),
            "503": s.error("no model is loaded")
        }}},
        "/drift": {"get": {"summary": "Drift of recent prediction requests against the training data", "parameters": at.clone(), "responses": {
            "200": s.json::<DriftSnapshot>("the drift window")
        }}},
        "/verification": {"get": {"summary": "How the forecasts did: the latest verification against what was observed", "parameters": at.clone(), "responses": {
            "200": s.json::<Verification>("live skill per model version and window, drift of the observations, the retrain decision, forecast against observed for the last 72 hours"),
            "404": s.error("no verification has run yet (a new deployment's normal state)")
        }}},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": text("Prometheus text format", "text/plain")}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.0", "content": {"application/json": {"schema": {"type": "object"}}}}}}},
        "/": {"get": {"summary": "The web page", "responses": {"200": text("HTML", "text/html")}}}
    });
    // Naming a location: none where there are several, a malformed query, an unknown id.
    for route in ["/ready", "/forecast", "/model", "/drift", "/verification"] {
        let responses = &mut paths[route]["get"]["responses"];
        responses["400"] = s.error("no location named where there are several, or a malformed query");
        responses["404"] = s.error(if route == "/verification" {
            "no verification has run yet (a new deployment's normal state), or an unknown location"
        } else {
            "an unknown location"
        });
    }
    let mut schemas = s.take();
    let (observation, request) = predict_request(max_observations, ids);
    schemas.insert("Observation".into(), observation);
    schemas.insert("PredictRequest".into(), request);
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
        "paths": paths,
        "components": {"schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `$ref` under `v`.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves_and_the_answers_schemas_are_the_types() {
        let doc = document(10_000, 1 << 20, &["default".to_owned()]);
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut all = Vec::new();
        refs(&doc, &mut all);
        assert!(all.len() > 20, "{all:?}");
        for r in &all {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("{r}"));
            assert!(schemas.contains_key(name), "{r} is not in the document");
        }
        // The answers are derived from the serialized types: a field the type has is a
        // field the schema requires, with the type's own nested structure.
        let model = &schemas["ModelInfo"];
        let required: Vec<&str> = model["required"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        for field in [
            "name",
            "version",
            "sha256",
            "input_hours",
            "horizons",
            "registry",
            "live",
            "intervals",
        ] {
            assert!(required.contains(&field), "{field}: {model}");
        }
        // A forecast's intervals are absent from a model without them; each interval
        // has all three numbers.
        let forecast = &schemas["Forecast"];
        let required = forecast["required"].to_string();
        assert!(
            required.contains("temperature_2m") && !required.contains("intervals"),
            "{forecast}"
        );
        assert!(
            forecast["properties"]["intervals"]
                .to_string()
                .contains("Interval"),
            "{forecast}"
        );
        assert_eq!(
            schemas["Interval"]["required"],
            serde_json::json!(["level", "lower", "upper"]),
            "{}",
            schemas["Interval"]
        );
        assert!(
            model["properties"]["live"]
                .to_string()
                .contains(r#""nullable":true"#),
            "{model}"
        );
        let retrain = &schemas["RetrainDecision"];
        assert!(retrain["properties"]["needed"]["type"] == "boolean", "{retrain}");
        assert!(
            schemas["LiveWindow"].to_string().contains("24h"),
            "{}",
            schemas["LiveWindow"]
        );
        let ok =
            &doc["paths"]["/predict"]["post"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(ok["$ref"], "#/components/schemas/PredictResponse");
        // The request is built from the variables and the limits the handler checks.
        let obs = &schemas["PredictRequest"]["properties"]["observations"];
        assert_eq!(obs["minItems"], INPUT_HOURS);
        assert_eq!(obs["maxItems"], 10_000);
    }
}

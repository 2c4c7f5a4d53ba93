//! A local stand-in for Open-Meteo over HTTP that answers from a [`Recording`], so the
//! whole pipeline runs offline with the real HTTP client. Same paths, parameters and
//! response shape as the real API:
//!
//! - `GET /v1/archive?latitude&longitude&hourly&start_date&end_date` returns the
//!   recorded hours in the date range (400 if the range misses the recording).
//! - `GET /v1/forecast?latitude&longitude&hourly&past_days&forecast_days` replays the
//!   recording onto today's calendar.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{NaiveDate, Utc};
use serde_json::json;

use super::Recording;

/// Open-Meteo's error answer: 400 with `{"error": true, "reason": ...}`.
struct BadRequest(String);

impl IntoResponse for BadRequest {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": true, "reason": self.0})),
        )
            .into_response()
    }
}

fn bad_request(reason: impl Into<String>) -> BadRequest {
    BadRequest(reason.into())
}

/// Checks the parameters every endpoint needs; returns the requested variables.
fn common(rec: &Recording, q: &HashMap<String, String>) -> Result<Vec<String>, BadRequest> {
    for p in ["latitude", "longitude"] {
        let v = q
            .get(p)
            .ok_or_else(|| bad_request(format!("Parameter '{p}' is required")))?;
        v.parse::<f64>()
            .map_err(|_| bad_request(format!("Parameter '{p}' must be a number")))?;
    }
    let hourly = q
        .get("hourly")
        .ok_or_else(|| bad_request("Parameter 'hourly' is required"))?;
    let vars: Vec<String> = hourly.split(',').map(|s| s.trim().to_owned()).collect();
    if let Some(bad) = rec.unknown_variable(&vars) {
        return Err(bad_request(format!(
            "Cannot initialize WeatherVariable from invalid String value {bad}"
        )));
    }
    Ok(vars)
}

fn date(q: &HashMap<String, String>, p: &str) -> Result<NaiveDate, BadRequest> {
    let v = q
        .get(p)
        .ok_or_else(|| bad_request(format!("Parameter '{p}' is required")))?;
    NaiveDate::parse_from_str(v, "%Y-%m-%d").map_err(|_| {
        bad_request(format!(
            "Invalid date format. Make sure to use 'YYYY-MM-DD' for {p}"
        ))
    })
}

async fn archive(
    State(rec): State<Arc<Recording>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, BadRequest> {
    let vars = common(&rec, &q)?;
    let (start, end) = (date(&q, "start_date")?, date(&q, "end_date")?);
    let body = rec.archive(&vars, start, end).map_err(bad_request)?;
    Ok(Json(body).into_response())
}

async fn forecast(
    State(rec): State<Arc<Recording>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, BadRequest> {
    let vars = common(&rec, &q)?;
    let days = |p: &str, default: i64, max: i64| -> Result<i64, BadRequest> {
        match q.get(p) {
            None => Ok(default),
            Some(v) => v
                .parse::<i64>()
                .ok()
                .filter(|d| (0..=max).contains(d))
                .ok_or_else(|| bad_request(format!("Parameter '{p}' must be between 0 and {max}"))),
        }
    };
    let past = days("past_days", 0, 92)?;
    let ahead = days("forecast_days", 7, 16)?;
    Ok(Json(rec.forecast(&vars, past, ahead, Utc::now().date_naive())).into_response())
}

pub fn router(recording: Recording) -> Router {
    Router::new()
        .route("/v1/archive", get(archive))
        .route("/v1/forecast", get(forecast))
        .with_state(Arc::new(recording))
}

/// Serves the recording on `addr` until the process ends; returns the bound address.
pub async fn serve(
    recording: Recording,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(recording);
    let handle = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((bound, handle))
}

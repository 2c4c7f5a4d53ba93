//! A local stand-in for Open-Meteo that answers from a recorded year, so the whole
//! pipeline runs offline. Same paths, parameters and response shape as the real API:
//!
//! - `GET /v1/archive?latitude&longitude&hourly&start_date&end_date` returns the
//!   recorded hours in the date range (400 if the range misses the recording).
//! - `GET /v1/forecast?latitude&longitude&hourly&past_days&forecast_days` replays the
//!   recording onto today's calendar (same hour of the year), so live runs see fresh,
//!   seasonally right data.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{Duration, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Map, Value, json};

use crate::observations::{RawSeries, ShapeError, format_time, parse_time};

/// The recording, parsed once.
#[derive(Debug)]
pub struct Recording {
    top: Map<String, Value>,
    times: Vec<NaiveDateTime>,
    columns: HashMap<String, Vec<Value>>,
}

impl Recording {
    pub fn parse(body: &[u8]) -> Result<Self, ShapeError> {
        let raw = RawSeries::parse(body)?;
        let times = raw
            .times
            .iter()
            .enumerate()
            .map(|(i, t)| {
                t.as_str()
                    .and_then(parse_time)
                    .ok_or_else(|| ShapeError::Shape(format!("time {i} does not parse")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if times.is_empty() {
            return Err(ShapeError::Shape("the recording has no hours".into()));
        }
        let mut top: Map<String, Value> =
            serde_json::from_slice(body).map_err(|e| ShapeError::NotJson(e.to_string()))?;
        top.remove("hourly");
        Ok(Self {
            top,
            times,
            columns: raw.columns.into_iter().collect(),
        })
    }

    pub fn first_time(&self) -> NaiveDateTime {
        self.times[0]
    }

    pub fn last_time(&self) -> NaiveDateTime {
        self.times[self.times.len() - 1]
    }
}

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
    if let Some(bad) = vars.iter().find(|v| !rec.columns.contains_key(*v)) {
        return Err(bad_request(format!(
            "Cannot initialize WeatherVariable from invalid String value {bad}"
        )));
    }
    Ok(vars)
}

fn respond(rec: &Recording, vars: &[String], rows: &[(NaiveDateTime, usize)]) -> Response {
    let mut hourly = Map::new();
    hourly.insert(
        "time".into(),
        Value::Array(rows.iter().map(|(t, _)| Value::String(format_time(*t))).collect()),
    );
    let mut units = Map::new();
    units.insert("time".into(), json!("iso8601"));
    let rec_units = rec.top.get("hourly_units").and_then(Value::as_object);
    for v in vars {
        let col = &rec.columns[v];
        hourly.insert(
            v.clone(),
            Value::Array(rows.iter().map(|(_, i)| col[*i].clone()).collect()),
        );
        if let Some(u) = rec_units.and_then(|u| u.get(v)) {
            units.insert(v.clone(), u.clone());
        }
    }
    let mut body = rec.top.clone();
    body.insert("hourly_units".into(), Value::Object(units));
    body.insert("hourly".into(), Value::Object(hourly));
    Json(Value::Object(body)).into_response()
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
    {
        let vars = common(&rec, &q)?;
        let (start, end) = (date(&q, "start_date")?, date(&q, "end_date")?);
        if start > end {
            return Err(bad_request("End-date must be larger or equal than start-date"));
        }
        let rows: Vec<(NaiveDateTime, usize)> = rec
            .times
            .iter()
            .enumerate()
            .filter(|(_, t)| (start..=end).contains(&t.date()))
            .map(|(i, t)| (*t, i))
            .collect();
        if rows.is_empty() {
            return Err(bad_request(format!(
                "Parameter 'start_date' is out of allowed range: this replay holds {} to {}",
                rec.first_time().date(),
                rec.last_time().date()
            )));
        }
        Ok(respond(&rec, &vars, &rows))
    }
}

async fn forecast(
    State(rec): State<Arc<Recording>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, BadRequest> {
    {
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
        let today = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
        let start = today - Duration::days(past);
        let hours = (past + ahead) * 24;
        let n = rec.times.len() as i64;
        let rows: Vec<(NaiveDateTime, usize)> = (0..hours)
            .map(|h| {
                let t = start + Duration::hours(h);
                (t, replay_index(&rec, t, n))
            })
            .collect();
        Ok(respond(&rec, &vars, &rows))
    }
}

/// The recorded hour at the same point of the year as `t`.
fn replay_index(rec: &Recording, t: NaiveDateTime, n: i64) -> usize {
    use chrono::Datelike;
    let first = rec.first_time();
    // Move `t` into the recording's year, then index from its first hour.
    let shifted = t.with_year(first.year()).unwrap_or(t - Duration::days(1));
    let offset = (shifted - first).num_hours().rem_euclid(n);
    offset as usize
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

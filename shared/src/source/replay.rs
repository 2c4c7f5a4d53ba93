//! A local stand-in for Open-Meteo over HTTP that answers from a [`Recording`], so the
//! whole pipeline runs offline with the real HTTP client. Same paths, parameters and
//! response shape as the real API:
//!
//! - `GET /v1/archive?latitude&longitude&hourly&start_date&end_date` returns the
//!   recorded hours in the date range (400 if the range misses the recording).
//! - `GET /v1/forecast?latitude&longitude&hourly&past_days&forecast_days` replays the
//!   recording onto today's calendar.
//!
//! Given several recordings (station years), each request is answered from the one
//! nearest its coordinates, as the real API answers from its nearest grid cell: a
//! fleet of locations runs offline on a few stations. As the real API, a request may
//! name several places (comma-separated `latitude` and `longitude`, up to
//! [`MAX_LOCATIONS`]): the answer is then an array, one document per place in order.

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

/// The recordings served, each with its coordinates.
struct Stations(Vec<(Recording, Option<(f64, f64)>)>);

impl Stations {
    /// The recording nearest (great-circle) to `latitude`, `longitude`; one without
    /// coordinates is the farthest.
    fn nearest(&self, latitude: f64, longitude: f64) -> &Recording {
        let distance = |c: &Option<(f64, f64)>| match c {
            Some((lat, lon)) => great_circle(latitude, longitude, *lat, *lon),
            None => f64::INFINITY,
        };
        self.0
            .iter()
            .min_by(|a, b| distance(&a.1).total_cmp(&distance(&b.1)))
            .map(|(r, _)| r)
            .expect("at least one recording")
    }
}

/// The angle between two points on a sphere, in radians (haversine).
fn great_circle(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * h.sqrt().min(1.0).asin()
}

/// The most places one request may name (Open-Meteo's limit).
pub const MAX_LOCATIONS: usize = 1000;

/// Checks the parameters every endpoint needs; returns the recording nearest each
/// requested place, in order, and the requested variables.
fn common<'a>(
    stations: &'a Stations,
    q: &HashMap<String, String>,
) -> Result<(Vec<&'a Recording>, Vec<String>), BadRequest> {
    let mut at: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for (i, p) in ["latitude", "longitude"].into_iter().enumerate() {
        let v = q
            .get(p)
            .ok_or_else(|| bad_request(format!("Parameter '{p}' is required")))?;
        at[i] = v
            .split(',')
            .map(|x| x.trim().parse::<f64>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad_request(format!("Parameter '{p}' must be a number")))?;
    }
    if at[0].len() != at[1].len() {
        return Err(bad_request(
            "Parameter 'latitude' and 'longitude' must have the same number of elements",
        ));
    }
    if at[0].len() > MAX_LOCATIONS {
        return Err(bad_request(format!(
            "At most {MAX_LOCATIONS} locations are allowed in one request"
        )));
    }
    let recs: Vec<&Recording> = at[0]
        .iter()
        .zip(&at[1])
        .map(|(lat, lon)| stations.nearest(*lat, *lon))
        .collect();
    let hourly = q
        .get("hourly")
        .ok_or_else(|| bad_request("Parameter 'hourly' is required"))?;
    let vars: Vec<String> = hourly.split(',').map(|s| s.trim().to_owned()).collect();
    for rec in &recs {
        if let Some(bad) = rec.unknown_variable(&vars) {
            return Err(bad_request(format!(
                "Cannot initialize WeatherVariable from invalid String value {bad}"
            )));
        }
    }
    Ok((recs, vars))
}

/// One place's document, or an array of them for several.
fn answer(mut docs: Vec<serde_json::Value>) -> Response {
    if docs.len() == 1 {
        Json(docs.remove(0)).into_response()
    } else {
        Json(serde_json::Value::Array(docs)).into_response()
    }
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
    State(stations): State<Arc<Stations>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, BadRequest> {
    let (recs, vars) = common(&stations, &q)?;
    let (start, end) = (date(&q, "start_date")?, date(&q, "end_date")?);
    let docs = recs
        .into_iter()
        .map(|rec| rec.archive(&vars, start, end).map_err(bad_request))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(answer(docs))
}

async fn forecast(
    State(stations): State<Arc<Stations>>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, BadRequest> {
    let (recs, vars) = common(&stations, &q)?;
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
    let today = Utc::now().date_naive();
    Ok(answer(
        recs.into_iter()
            .map(|rec| rec.forecast(&vars, past, ahead, today))
            .collect(),
    ))
}

/// The replay of `recordings` (at least one): each request is answered from the one
/// nearest its coordinates.
pub fn router(recordings: Vec<Recording>) -> Router {
    assert!(!recordings.is_empty(), "the replay needs a recording");
    let stations = recordings
        .into_iter()
        .map(|r| {
            let at = r.coordinates();
            (r, at)
        })
        .collect();
    Router::new()
        .route("/v1/archive", get(archive))
        .route("/v1/forecast", get(forecast))
        .with_state(Arc::new(Stations(stations)))
}

/// Serves the recordings on `addr` until the process ends; returns the bound address.
pub async fn serve(
    recordings: Vec<Recording>,
    addr: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = router(recordings);
    let handle = tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((bound, handle))
}

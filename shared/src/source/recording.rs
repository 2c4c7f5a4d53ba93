//! A recorded station year in Open-Meteo's shape, answering archive and forecast
//! requests the way the real API would: the archive returns the recorded hours in a
//! date range (a range that misses the recording entirely gets the recording replayed
//! onto its calendar, so "the last year" means something offline too); the forecast
//! endpoint replays the recording onto today's calendar (the same hour of the year), so
//! live runs see fresh, seasonally right data.
//!
//! [`RecordedSource`] is the in-memory weather source over it; `replay` serves it
//! over HTTP.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike, Utc};
use serde_json::{Map, Value, json};
use url::Url;

use super::{Fetched, IngestRequest, SourceError, WeatherSource};
use crate::observations::{ALL_VARIABLES, RawSeries, ShapeError, format_time, parse_time};

/// The most days the archive replays onto dates outside the recording (ten years).
pub const MAX_REPLAY_DAYS: i64 = 3660;

/// The recording, parsed once.
#[derive(Debug)]
pub struct Recording {
    top: Map<String, Value>,
    times: Vec<NaiveDateTime>,
    columns: HashMap<String, Vec<Value>>,
    /// Added to a live hour before it is looked up: zero replays the same hour of the
    /// year; [`Recording::as_of`] sets it so that now replays one fixed recorded hour.
    shift: Duration,
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
            shift: Duration::zero(),
        })
    }

    /// The station's coordinates, as the recording states them.
    pub fn coordinates(&self) -> Option<(f64, f64)> {
        let number = |k: &str| self.top.get(k).and_then(Value::as_f64);
        Some((number("latitude")?, number("longitude")?))
    }

    /// Replays the forecast endpoint as if `now` were `as_of`: the hour `now` falls in
    /// answers with the recorded hour `as_of` falls in, and every other hour moves with
    /// it. The times served stay on today's calendar; only the weather is pinned, so a
    /// test (or a demo) sees the same recorded days whatever the date. The archive is
    /// not moved: its dates name what they return. An `as_of` whose hour the
    /// recording does not hold is refused.
    pub fn as_of(mut self, as_of: NaiveDateTime, now: NaiveDateTime) -> Result<Self, String> {
        let hour = |t: NaiveDateTime| t.date().and_hms_opt(t.hour(), 0, 0).unwrap_or(t);
        if !(self.first_time()..=self.last_time()).contains(&hour(as_of)) {
            return Err(format!(
                "{as_of} is not in the recording ({} to {})",
                self.first_time(),
                self.last_time()
            ));
        }
        self.shift = hour(as_of) - hour(now);
        Ok(self)
    }

    pub fn first_time(&self) -> NaiveDateTime {
        self.times[0]
    }

    pub fn last_time(&self) -> NaiveDateTime {
        self.times[self.times.len() - 1]
    }

    /// The first variable in `vars` the recording does not hold.
    pub fn unknown_variable<'a>(&self, vars: &'a [String]) -> Option<&'a String> {
        vars.iter().find(|v| !self.columns.contains_key(*v))
    }

    /// The archive's answer: the recorded hours from `start` to `end`. A range that
    /// misses the recording entirely gets the recording replayed onto its calendar (the
    /// same hour of the year), as the forecast endpoint does with today: a schedule's
    /// "last year" ends today, whatever year the recording is of. At most
    /// [`MAX_REPLAY_DAYS`] are replayed.
    pub fn archive(&self, vars: &[String], start: NaiveDate, end: NaiveDate) -> Result<Value, String> {
        if start > end {
            return Err("End-date must be larger or equal than start-date".into());
        }
        let mut rows: Vec<(NaiveDateTime, usize)> = self
            .times
            .iter()
            .enumerate()
            .filter(|(_, t)| (start..=end).contains(&t.date()))
            .map(|(i, t)| (*t, i))
            .collect();
        if rows.is_empty() {
            let days = (end - start).num_days() + 1;
            if days > MAX_REPLAY_DAYS {
                return Err(format!(
                    "Parameter 'start_date' is out of allowed range: this replay holds {} to {}, and replays at most {MAX_REPLAY_DAYS} days onto other dates",
                    self.first_time().date(),
                    self.last_time().date()
                ));
            }
            let first = start.and_hms_opt(0, 0, 0).unwrap_or_default();
            rows = (0..days * 24)
                .map(|h| {
                    let t = first + Duration::hours(h);
                    (t, self.replay_index(t))
                })
                .collect();
        }
        Ok(self.body(vars, &rows))
    }

    /// The forecast endpoint's answer: `past_days` before today and `forecast_days`
    /// from today, replayed from the same hours of the recorded year.
    pub fn forecast(&self, vars: &[String], past_days: i64, forecast_days: i64, today: NaiveDate) -> Value {
        let start = today.and_hms_opt(0, 0, 0).unwrap_or_default() - Duration::days(past_days);
        let rows: Vec<(NaiveDateTime, usize)> = (0..(past_days + forecast_days) * 24)
            .map(|h| {
                let t = start + Duration::hours(h);
                (t, self.replay_index(t + self.shift))
            })
            .collect();
        self.body(vars, &rows)
    }

    /// The recorded hour at the same point of the year as `t`.
    fn replay_index(&self, t: NaiveDateTime) -> usize {
        let first = self.first_time();
        let n = self.times.len() as i64;
        // Move `t` into the recording's year, then index from its first hour.
        let shifted = t.with_year(first.year()).unwrap_or(t - Duration::days(1));
        (shifted - first).num_hours().rem_euclid(n) as usize
    }

    fn body(&self, vars: &[String], rows: &[(NaiveDateTime, usize)]) -> Value {
        let mut hourly = Map::new();
        hourly.insert(
            "time".into(),
            Value::Array(rows.iter().map(|(t, _)| Value::String(format_time(*t))).collect()),
        );
        let mut units = Map::new();
        units.insert("time".into(), json!("iso8601"));
        let rec_units = self.top.get("hourly_units").and_then(Value::as_object);
        for v in vars {
            let col = &self.columns[v];
            hourly.insert(
                v.clone(),
                Value::Array(rows.iter().map(|(_, i)| col[*i].clone()).collect()),
            );
            if let Some(u) = rec_units.and_then(|u| u.get(v)) {
                units.insert(v.clone(), u.clone());
            }
        }
        let mut body = self.top.clone();
        body.insert("hourly_units".into(), Value::Object(units));
        body.insert("hourly".into(), Value::Object(hourly));
        Value::Object(body)
    }
}

/// The weather source that answers from a recording, in memory.
#[derive(Debug, Clone)]
pub struct RecordedSource {
    recording: Arc<Recording>,
    /// `past_days` for live requests that do not say.
    past_days: u8,
}

impl RecordedSource {
    pub fn new(recording: Recording, past_days: u8) -> Self {
        Self {
            recording: Arc::new(recording),
            past_days,
        }
    }
}

#[async_trait]
impl WeatherSource for RecordedSource {
    fn describe(&self) -> String {
        format!(
            "a recording of {} to {}",
            self.recording.first_time().date(),
            self.recording.last_time().date()
        )
    }

    async fn fetch(&self, request: &IngestRequest) -> Result<Fetched, SourceError> {
        let vars: Vec<String> = ALL_VARIABLES
            .iter()
            .map(|v| v.name().to_owned())
            .filter(|v| self.recording.columns.contains_key(v))
            .collect();
        let (body, url) = match request.resolved(Utc::now().date_naive()) {
            IngestRequest::Recent { .. } => {
                return Err(SourceError::Rejected {
                    url: "memory://recording/v1/archive".into(),
                    status: 400,
                    message: "the recent range does not resolve to dates".into(),
                });
            }
            IngestRequest::Backfill { range } => (
                self.recording
                    .archive(&vars, range.start(), range.end())
                    .map_err(|message| SourceError::Rejected {
                        url: "memory://recording/v1/archive".into(),
                        status: 400,
                        message,
                    })?,
                format!(
                    "memory://recording/v1/archive?start_date={}&end_date={}",
                    range.start(),
                    range.end()
                ),
            ),
            IngestRequest::Live { past_days } => {
                let past = past_days.unwrap_or(self.past_days);
                (
                    self.recording
                        .forecast(&vars, i64::from(past), 1, Utc::now().date_naive()),
                    format!("memory://recording/v1/forecast?past_days={past}&forecast_days=1"),
                )
            }
        };
        let body = serde_json::to_vec(&body).map_err(|e| SourceError::Unavailable(e.to_string()))?;
        Ok(Fetched {
            body: Bytes::from(body),
            url: Url::parse(&url).map_err(|e| SourceError::Unavailable(e.to_string()))?,
            attempts: 1,
            collected_at: Utc::now(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observations::parse_time;

    fn temperatures(body: &Value) -> Vec<(String, Value)> {
        let h = &body["hourly"];
        h["time"]
            .as_array()
            .unwrap()
            .iter()
            .zip(h["temperature_2m"].as_array().unwrap())
            .map(|(t, v)| (t.as_str().unwrap().to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn a_pinned_replay_serves_todays_hours_with_the_pinned_days_weather() {
        let vars = ["temperature_2m".to_owned()];
        let recorded = crate::testing::sample_recording();
        let want = recorded
            .archive(
                &vars,
                NaiveDate::from_ymd_opt(2023, 6, 14).unwrap(),
                NaiveDate::from_ymd_opt(2023, 6, 15).unwrap(),
            )
            .unwrap();
        let want = temperatures(&want);
        // Now is 09:40 on 5 December 2026; the replay is pinned to 15 June 2023, 12:00.
        let now = parse_time("2026-12-05T09:40").unwrap();
        let pinned = crate::testing::sample_recording()
            .as_of(parse_time("2023-06-15T12:00").unwrap(), now)
            .unwrap();
        assert!(
            crate::testing::sample_recording()
                .as_of(parse_time("2024-06-15T12:00").unwrap(), now)
                .is_err(),
            "an hour the recording does not hold"
        );
        let today = now.date();
        let got = temperatures(&pinned.forecast(&vars, 1, 1, today));
        assert_eq!(got.len(), 48);
        // The times are today's calendar (4 December from 00:00, two days)…
        assert_eq!(got[0].0, "2026-12-04T00:00");
        assert_eq!(got[47].0, "2026-12-05T23:00");
        // …and 09:00 today carries 12:00 on the pinned day: every hour moved by the same
        // amount, so 4 December 00:00 is 14 June 03:00.
        let at = |time: &str| want.iter().find(|(t, _)| t == time).unwrap().1.clone();
        assert_eq!(got[24 + 9].1, at("2023-06-15T12:00"));
        assert_eq!(got[0].1, at("2023-06-14T03:00"));
        assert_ne!(
            got[24 + 9].1,
            crate::testing::sample_recording().forecast(&vars, 1, 1, today)["hourly"]["temperature_2m"]
                [24 + 9],
            "unpinned, the same hour of December is served"
        );
    }
}

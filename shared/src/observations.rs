//! Weather observations: the variables we use, the raw Open-Meteo shape, and the
//! typed hourly series every later stage works on.
//!
//! [`RawSeries`] is what a snapshot holds, as received (times as text, values as JSON).
//! The quality gate inspects it; [`HourlySeries`] is what survives the parse: UTC
//! hours strictly increasing, values finite or missing.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

/// The Open-Meteo hourly variables rps asks for, by their Open-Meteo names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    #[serde(rename = "temperature_2m")]
    Temperature2m,
    #[serde(rename = "relative_humidity_2m")]
    RelativeHumidity2m,
    #[serde(rename = "dew_point_2m")]
    DewPoint2m,
    SurfacePressure,
    #[serde(rename = "wind_speed_10m")]
    WindSpeed10m,
    #[serde(rename = "wind_direction_10m")]
    WindDirection10m,
    CloudCover,
    ShortwaveRadiation,
    Precipitation,
}

/// The variables the model uses: the gate holds them to the strict checks.
pub const KEY_VARIABLES: [Variable; 8] = [
    Variable::Temperature2m,
    Variable::RelativeHumidity2m,
    Variable::DewPoint2m,
    Variable::SurfacePressure,
    Variable::WindSpeed10m,
    Variable::WindDirection10m,
    Variable::CloudCover,
    Variable::ShortwaveRadiation,
];

/// Every variable requested; the ones outside [`KEY_VARIABLES`] are reported, not gated
/// (precipitation is mostly missing in real station data).
pub const ALL_VARIABLES: [Variable; 9] = [
    Variable::Temperature2m,
    Variable::RelativeHumidity2m,
    Variable::DewPoint2m,
    Variable::SurfacePressure,
    Variable::WindSpeed10m,
    Variable::WindDirection10m,
    Variable::CloudCover,
    Variable::ShortwaveRadiation,
    Variable::Precipitation,
];

/// The forecast target.
pub const TARGET: Variable = Variable::Temperature2m;

impl Variable {
    pub const fn name(self) -> &'static str {
        match self {
            Variable::Temperature2m => "temperature_2m",
            Variable::RelativeHumidity2m => "relative_humidity_2m",
            Variable::DewPoint2m => "dew_point_2m",
            Variable::SurfacePressure => "surface_pressure",
            Variable::WindSpeed10m => "wind_speed_10m",
            Variable::WindDirection10m => "wind_direction_10m",
            Variable::CloudCover => "cloud_cover",
            Variable::ShortwaveRadiation => "shortwave_radiation",
            Variable::Precipitation => "precipitation",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        ALL_VARIABLES.into_iter().find(|v| v.name() == name)
    }

    pub const fn unit(self) -> &'static str {
        match self {
            Variable::Temperature2m | Variable::DewPoint2m => "°C",
            Variable::RelativeHumidity2m | Variable::CloudCover => "%",
            Variable::SurfacePressure => "hPa",
            Variable::WindSpeed10m => "km/h",
            Variable::WindDirection10m => "°",
            Variable::ShortwaveRadiation => "W/m²",
            Variable::Precipitation => "mm",
        }
    }

    /// Physically plausible values (inclusive), in Open-Meteo's units.
    pub const fn plausible_range(self) -> (f64, f64) {
        match self {
            Variable::Temperature2m => (-90.0, 60.0),
            Variable::DewPoint2m => (-100.0, 40.0),
            Variable::RelativeHumidity2m | Variable::CloudCover => (0.0, 100.0),
            Variable::SurfacePressure => (300.0, 1100.0),
            Variable::WindSpeed10m => (0.0, 400.0),
            Variable::WindDirection10m => (0.0, 360.0),
            Variable::ShortwaveRadiation => (0.0, 1500.0),
            Variable::Precipitation => (0.0, 300.0),
        }
    }

    pub fn is_key(self) -> bool {
        KEY_VARIABLES.contains(&self)
    }

    /// Position in [`KEY_VARIABLES`] (the column order of [`HourlySeries`]).
    pub fn key_index(self) -> Option<usize> {
        KEY_VARIABLES.iter().position(|v| *v == self)
    }
}

/// Open-Meteo's time format with `timezone=GMT`: `2023-10-01T00:00`.
pub const TIME_FORMAT: &str = "%Y-%m-%dT%H:%M";

/// The years a time may have: wide enough for any record or forecast, narrow enough
/// that shifting a time by hours or by a UTC offset can never overflow. chrono's `%Y`
/// alone would take signed years of any width (`+262142-12-30T23:00`).
pub const YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// The largest UTC offset a response may declare (ISO 8601 stops at ±18 h).
pub const MAX_UTC_OFFSET_SECONDS: i64 = 18 * 3600;

/// A time in Open-Meteo's format (`2023-10-01T00:00`, exactly), in [`YEARS`].
pub fn parse_time(s: &str) -> Option<NaiveDateTime> {
    use chrono::Datelike;
    if s.len() != 16 || !s.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(s, TIME_FORMAT)
        .ok()
        .filter(|t| YEARS.contains(&t.year()))
}

/// `t` moved by `hours`, or `None` past the calendar's end.
pub fn shift_hours(t: NaiveDateTime, hours: i64) -> Option<NaiveDateTime> {
    Duration::try_hours(hours).and_then(|d| t.checked_add_signed(d))
}

pub fn format_time(t: NaiveDateTime) -> String {
    t.format(TIME_FORMAT).to_string()
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ShapeError {
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    #[error("the body is not an Open-Meteo hourly response: {0}")]
    Shape(String),
}

/// A snapshot as Open-Meteo returned it: the parsed JSON before any content check.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSeries {
    pub latitude: Option<f64>,
    pub longitude: Option<f64>,
    /// The offset of the times from UTC in seconds (Open-Meteo's field): UTC = time - offset.
    pub utc_offset_seconds: i64,
    pub times: Vec<serde_json::Value>,
    /// Every hourly array other than `time`, by name.
    pub columns: BTreeMap<String, Vec<serde_json::Value>>,
}

impl RawSeries {
    /// Checks the shape only: a JSON object with an `hourly` object of arrays that has
    /// a `time` array. Contents are the quality gate's business.
    pub fn parse(body: &[u8]) -> Result<Self, ShapeError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|e| ShapeError::NotJson(e.to_string()))?;
        let obj = value
            .as_object()
            .ok_or_else(|| ShapeError::Shape("the top level is not a JSON object".into()))?;
        if obj.get("error").and_then(|e| e.as_bool()) == Some(true) {
            let reason = obj
                .get("reason")
                .and_then(|r| r.as_str())
                .unwrap_or("no reason given");
            return Err(ShapeError::Shape(format!(
                "Open-Meteo reported an error: {reason}"
            )));
        }
        let hourly = obj
            .get("hourly")
            .ok_or_else(|| ShapeError::Shape("there is no \"hourly\" field".into()))?
            .as_object()
            .ok_or_else(|| ShapeError::Shape("\"hourly\" is not an object".into()))?;
        let mut columns = BTreeMap::new();
        let mut times = None;
        for (name, v) in hourly {
            let arr = v
                .as_array()
                .ok_or_else(|| ShapeError::Shape(format!("\"hourly.{name}\" is not an array")))?
                .clone();
            if name == "time" {
                times = Some(arr);
            } else {
                columns.insert(name.clone(), arr);
            }
        }
        let times = times.ok_or_else(|| ShapeError::Shape("there is no \"hourly.time\" array".into()))?;
        let utc_offset_seconds = match obj.get("utc_offset_seconds") {
            None => 0,
            Some(v) => v
                .as_i64()
                .ok_or_else(|| ShapeError::Shape("\"utc_offset_seconds\" is not an integer".into()))?,
        };
        Ok(RawSeries {
            latitude: obj.get("latitude").and_then(|v| v.as_f64()),
            longitude: obj.get("longitude").and_then(|v| v.as_f64()),
            utc_offset_seconds,
            times,
            columns,
        })
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Whether the declared UTC offset is one a real response can have.
    pub fn utc_offset_is_plausible(&self) -> bool {
        self.utc_offset_seconds.unsigned_abs() <= MAX_UTC_OFFSET_SECONDS.unsigned_abs()
    }

    /// Times as UTC, `None` where a value is not a time in Open-Meteo's format (or the
    /// offset is not plausible, so no time can be trusted).
    pub fn utc_times(&self) -> Vec<Option<NaiveDateTime>> {
        let offset = Some(self.utc_offset_seconds)
            .filter(|_| self.utc_offset_is_plausible())
            .and_then(Duration::try_seconds);
        self.times
            .iter()
            .map(|t| {
                let t = t.as_str().and_then(parse_time)?;
                t.checked_sub_signed(offset?)
            })
            .collect()
    }

    /// A column as numbers: `Ok(None)` for null, `Err(())` for a value that is not a number.
    pub fn numeric(&self, var: Variable) -> Option<Vec<Result<Option<f64>, ()>>> {
        self.columns.get(var.name()).map(|col| {
            col.iter()
                .map(|v| match v {
                    serde_json::Value::Null => Ok(None),
                    serde_json::Value::Number(n) => n.as_f64().map(Some).ok_or(()),
                    _ => Err(()),
                })
                .collect()
        })
    }

    /// Drops the hours after `cutoff` (the live endpoint also returns forecast hours,
    /// which are not observations).
    pub fn truncate_after(&mut self, cutoff: NaiveDateTime) {
        let keep: Vec<bool> = self
            .utc_times()
            .iter()
            .map(|t| t.is_none_or(|t| t <= cutoff))
            .collect();
        let filter = |v: &mut Vec<serde_json::Value>| {
            let mut i = 0;
            v.retain(|_| {
                let k = keep.get(i).copied().unwrap_or(true);
                i += 1;
                k
            });
        };
        filter(&mut self.times);
        for col in self.columns.values_mut() {
            filter(col);
        }
    }
}

/// Hourly observations of the key variables on a time axis that is strictly
/// increasing in whole UTC hours. Values are finite or `None` (missing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourlySeries {
    times: Vec<NaiveDateTime>,
    /// One column per [`KEY_VARIABLES`] entry, same length as `times`.
    columns: Vec<Vec<Option<f64>>>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SeriesError {
    #[error("{what}: expected {expected} values, found {found}")]
    Length {
        what: String,
        expected: usize,
        found: usize,
    },
    #[error("time {index} ({time}) is not on the hour")]
    NotOnTheHour { index: usize, time: String },
    #[error("time {index} ({time}) does not come after the one before it ({previous})")]
    NotIncreasing {
        index: usize,
        time: String,
        previous: String,
    },
    #[error("{variable} at {time} is not a finite number")]
    NotFinite { variable: &'static str, time: String },
    #[error("{variable} is missing")]
    MissingVariable { variable: &'static str },
}

impl HourlySeries {
    /// Builds a series, checking the time axis and values.
    pub fn new(times: Vec<NaiveDateTime>, columns: Vec<Vec<Option<f64>>>) -> Result<Self, SeriesError> {
        if columns.len() != KEY_VARIABLES.len() {
            return Err(SeriesError::Length {
                what: "columns".into(),
                expected: KEY_VARIABLES.len(),
                found: columns.len(),
            });
        }
        for (i, t) in times.iter().enumerate() {
            if t.and_utc().timestamp() % 3600 != 0 {
                return Err(SeriesError::NotOnTheHour {
                    index: i,
                    time: format_time(*t),
                });
            }
            if i > 0 && *t <= times[i - 1] {
                return Err(SeriesError::NotIncreasing {
                    index: i,
                    time: format_time(*t),
                    previous: format_time(times[i - 1]),
                });
            }
        }
        for (var, col) in KEY_VARIABLES.iter().zip(&columns) {
            if col.len() != times.len() {
                return Err(SeriesError::Length {
                    what: var.name().into(),
                    expected: times.len(),
                    found: col.len(),
                });
            }
            if let Some(i) = col.iter().position(|v| v.is_some_and(|x| !x.is_finite())) {
                return Err(SeriesError::NotFinite {
                    variable: var.name(),
                    time: format_time(times[i]),
                });
            }
        }
        Ok(Self { times, columns })
    }

    /// The key variables of a raw snapshot whose time axis is already known to be good
    /// (the quality gate passed). Non-numeric values become missing.
    pub fn from_raw(raw: &RawSeries) -> Result<Self, SeriesError> {
        let times: Vec<NaiveDateTime> = raw
            .utc_times()
            .into_iter()
            .enumerate()
            .map(|(i, t)| {
                t.ok_or_else(|| SeriesError::NotOnTheHour {
                    index: i,
                    time: raw.times[i].to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        let columns = KEY_VARIABLES
            .iter()
            .map(|v| {
                raw.numeric(*v)
                    .map(|col| col.into_iter().map(|x| x.ok().flatten()).collect())
                    .ok_or(SeriesError::MissingVariable { variable: v.name() })
            })
            .collect::<Result<_, _>>()?;
        Self::new(times, columns)
    }

    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    pub fn times(&self) -> &[NaiveDateTime] {
        &self.times
    }

    pub fn column(&self, var: Variable) -> &[Option<f64>] {
        match var.key_index() {
            Some(i) => &self.columns[i],
            None => &[],
        }
    }

    pub fn columns(&self) -> &[Vec<Option<f64>>] {
        &self.columns
    }

    pub fn first_time(&self) -> Option<NaiveDateTime> {
        self.times.first().copied()
    }

    pub fn last_time(&self) -> Option<NaiveDateTime> {
        self.times.last().copied()
    }

    /// True when the hours are consecutive (no absent hour), as the features require.
    pub fn is_contiguous(&self) -> bool {
        self.times.windows(2).all(|w| w[1] - w[0] == Duration::hours(1))
    }

    /// The last `n` hours.
    pub fn tail(&self, n: usize) -> Self {
        let start = self.len().saturating_sub(n);
        Self {
            times: self.times[start..].to_vec(),
            columns: self.columns.iter().map(|c| c[start..].to_vec()).collect(),
        }
    }

    /// The hours in `[from, to]`.
    pub fn between(&self, from: NaiveDateTime, to: NaiveDateTime) -> Self {
        let lo = self.times.partition_point(|t| *t < from);
        let hi = self.times.partition_point(|t| *t <= to);
        let hi = hi.max(lo);
        Self {
            times: self.times[lo..hi].to_vec(),
            columns: self.columns.iter().map(|c| c[lo..hi].to_vec()).collect(),
        }
    }
}

/// An inclusive span of hours (a dataset's, or the part a model trained on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimeWindow {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

/// The UTC time now, as the naive UTC times used everywhere else.
pub fn utc_now() -> NaiveDateTime {
    Utc::now().naive_utc()
}

pub fn to_utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_checks_the_shape_only() {
        let ok = RawSeries::parse(
            br#"{"utc_offset_seconds":0,"hourly":{"time":["2023-01-01T00:00"],"temperature_2m":["x"]}}"#,
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(ok.numeric(Variable::Temperature2m).unwrap(), vec![Err(())]);
        assert!(matches!(
            RawSeries::parse(br#"{"hourly":{"time":["#),
            Err(ShapeError::NotJson(_))
        ));
        let err = RawSeries::parse(br#"{"daily":{}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the body is not an Open-Meteo hourly response: there is no \"hourly\" field"
        );
        let err = RawSeries::parse(br#"{"error":true,"reason":"Latitude must be in range"}"#).unwrap_err();
        assert!(err.to_string().contains("Latitude must be in range"));
    }

    #[test]
    fn times_are_converted_to_utc() {
        let raw =
            RawSeries::parse(br#"{"utc_offset_seconds":3600,"hourly":{"time":["2023-01-01T01:00","bad"]}}"#)
                .unwrap();
        let t = raw.utc_times();
        assert_eq!(t[0], parse_time("2023-01-01T00:00"));
        assert_eq!(t[1], None);
    }

    #[test]
    fn series_rejects_bad_axes() {
        let t = |s| parse_time(s).unwrap();
        let cols = |n| vec![vec![Some(1.0); n]; KEY_VARIABLES.len()];
        assert!(HourlySeries::new(vec![t("2023-01-01T00:00"), t("2023-01-01T01:00")], cols(2)).is_ok());
        let err = HourlySeries::new(vec![t("2023-01-01T01:00"), t("2023-01-01T00:00")], cols(2)).unwrap_err();
        assert!(matches!(err, SeriesError::NotIncreasing { index: 1, .. }));
        let mut c = cols(1);
        c[0][0] = Some(f64::NAN);
        assert!(matches!(
            HourlySeries::new(vec![t("2023-01-01T00:00")], c),
            Err(SeriesError::NotFinite { .. })
        ));
    }
}

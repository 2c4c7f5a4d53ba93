//! Parsing `POST /predict`: trailing hourly observations in Open-Meteo's variable names,
//! oldest first. Every rejection names the field and the rule it broke:
//!
//! - 400 `invalid_json`, `invalid_shape`, `invalid_type`, `missing_variable`,
//!   `invalid_time`: the request is not well-formed;
//! - 422 `null_value`, `implausible_value`, `not_increasing`, `not_hourly`,
//!   `too_few_observations`, `too_many_observations`: well-formed but unusable.

use chrono::{Duration, NaiveDateTime};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::features::INPUT_HOURS;
use crate::observations::{HourlySeries, KEY_VARIABLES, Variable, format_time, parse_time};

/// Parses and checks a request body into the series the features are built from.
pub fn parse_observations(body: &[u8], max_observations: usize) -> Result<HourlySeries, ApiError> {
    observations_of(&parse_json(body)?, max_observations)
}

/// The body as JSON.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}")))
}

/// The location the body names (`"location": "<id>"`), if it names one. Whether there
/// is such a location is [`super::locations::Locations::find`]'s to say.
pub fn location_of(value: &Value) -> Result<Option<&str>, ApiError> {
    match value.as_object().and_then(|o| o.get("location")) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(
            "invalid_type",
            "\"location\" must be a location's id (a string; GET /locations lists them)",
        )
        .at("/location")),
    }
}

/// The checked series of a parsed body.
pub fn observations_of(value: &Value, max_observations: usize) -> Result<HourlySeries, ApiError> {
    let obs = observations_array(value, max_observations)?;
    let mut times: Vec<NaiveDateTime> = Vec::with_capacity(obs.len());
    let mut columns: Vec<Vec<Option<f64>>> = vec![Vec::with_capacity(obs.len()); KEY_VARIABLES.len()];
    for (i, item) in obs.iter().enumerate() {
        let item = item.as_object().ok_or_else(|| {
            ApiError::bad_request("invalid_type", format!("observations[{i}] must be an object"))
                .at(format!("/observations/{i}"))
        })?;
        let time = hour(item, i, times.last().copied())?;
        times.push(time);
        for (k, var) in KEY_VARIABLES.iter().enumerate() {
            columns[k].push(Some(value_of(item, i, *var)?));
        }
    }
    HourlySeries::new(times, columns)
        .map_err(|e| ApiError::unprocessable("invalid_observations", e.to_string()).at("/observations"))
}

/// The `observations` array, with between `INPUT_HOURS` and `max` items.
fn observations_array(value: &Value, max: usize) -> Result<&Vec<Value>, ApiError> {
    let obs = value
        .as_object()
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_shape",
                "the body must be a JSON object with an \"observations\" array",
            )
            .at("")
        })?
        .get("observations")
        .ok_or_else(|| {
            ApiError::bad_request("invalid_shape", "\"observations\" is missing").at("/observations")
        })?
        .as_array()
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_type",
                "\"observations\" must be an array of hourly observations",
            )
            .at("/observations")
        })?;
    if obs.len() < INPUT_HOURS {
        return Err(ApiError::unprocessable(
            "too_few_observations",
            format!(
                "{INPUT_HOURS} trailing hourly observations are needed, got {}",
                obs.len()
            ),
        )
        .at("/observations"));
    }
    if obs.len() > max {
        return Err(ApiError::unprocessable(
            "too_many_observations",
            format!("at most {max} observations are accepted, got {}", obs.len()),
        )
        .at("/observations"));
    }
    Ok(obs)
}

fn at(i: usize, field: &str) -> String {
    format!("/observations/{i}/{field}")
}

/// Observation `i`'s time: a UTC hour, one hour after `previous`.
fn hour(
    item: &Map<String, Value>,
    i: usize,
    previous: Option<NaiveDateTime>,
) -> Result<NaiveDateTime, ApiError> {
    let time = match item.get("time") {
        None => {
            return Err(ApiError::bad_request(
                "missing_variable",
                format!("observations[{i}].time is missing"),
            )
            .at(at(i, "time")));
        }
        Some(Value::String(s)) => parse_time(s).ok_or_else(|| {
            ApiError::bad_request(
                "invalid_time",
                format!("observations[{i}].time {s:?} is not a UTC hour like \"2023-10-01T00:00\""),
            )
            .at(at(i, "time"))
        })?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_type",
                format!("observations[{i}].time must be a string like \"2023-10-01T00:00\""),
            )
            .at(at(i, "time")));
        }
    };
    if time.and_utc().timestamp() % 3600 != 0 {
        return Err(ApiError::unprocessable(
            "not_hourly",
            format!("observations[{i}].time {} is not on the hour", format_time(time)),
        )
        .at(at(i, "time")));
    }
    if let Some(prev) = previous {
        if time <= prev {
            return Err(ApiError::unprocessable(
                "not_increasing",
                format!(
                    "observations[{i}].time {} does not come after {}: observations must be oldest first, without repeats",
                    format_time(time),
                    format_time(prev)
                ),
            )
            .at(at(i, "time")));
        }
        if time - prev != Duration::hours(1) {
            return Err(ApiError::unprocessable(
                "not_hourly",
                format!(
                    "observations[{i}].time {} is not one hour after {}: observations must be consecutive hours",
                    format_time(time),
                    format_time(prev)
                ),
            )
            .at(at(i, "time")));
        }
    }
    Ok(time)
}

/// Observation `i`'s value of `var`: a finite number in its plausible range.
fn value_of(item: &Map<String, Value>, i: usize, var: Variable) -> Result<f64, ApiError> {
    let name = var.name();
    let v = match item.get(name) {
        None => {
            return Err(ApiError::bad_request(
                "missing_variable",
                format!("observations[{i}].{name} is missing"),
            )
            .at(at(i, name)));
        }
        Some(Value::Null) => {
            return Err(ApiError::unprocessable(
                "null_value",
                format!("observations[{i}].{name} is null; the model needs a value for every hour"),
            )
            .at(at(i, name)));
        }
        Some(Value::Number(n)) => n.as_f64().filter(|x| x.is_finite()).ok_or_else(|| {
            ApiError::unprocessable(
                "implausible_value",
                format!("observations[{i}].{name} is not a finite number"),
            )
            .at(at(i, name))
        })?,
        Some(_) => {
            return Err(ApiError::bad_request(
                "invalid_type",
                format!("observations[{i}].{name} must be a number ({})", var.unit()),
            )
            .at(at(i, name)));
        }
    };
    let (lo, hi) = var.plausible_range();
    if !(lo..=hi).contains(&v) {
        return Err(ApiError::unprocessable(
            "implausible_value",
            format!(
                "observations[{i}].{name} = {v} is outside the plausible range [{lo}, {hi}] {}",
                var.unit()
            ),
        )
        .at(at(i, name)));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_location_is_named_by_a_string_or_not_at_all() {
        assert_eq!(
            location_of(&json!({"location": "kodiak"})).unwrap(),
            Some("kodiak")
        );
        assert_eq!(location_of(&json!({"observations": []})).unwrap(), None);
        assert_eq!(location_of(&json!({"location": null})).unwrap(), None);
        assert_eq!(
            location_of(&json!([1])).unwrap(),
            None,
            "the shape is judged later"
        );
        for bad in [json!(3), json!(["kodiak"]), json!({"id": "kodiak"})] {
            let e = location_of(&json!({"location": bad})).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code, e.location.as_deref()),
                (400, "invalid_type", Some("/location"))
            );
        }
    }

    fn obs(n: usize) -> Vec<Value> {
        (0..n)
            .map(|h| {
                json!({
                    "time": format!("2023-10-01T{:02}:00", h % 24).replace("2023-10-01", &format!("2023-10-{:02}", 1 + h / 24)),
                    "temperature_2m": 5.0, "relative_humidity_2m": 80.0, "dew_point_2m": 2.0,
                    "surface_pressure": 1010.0, "wind_speed_10m": 10.0, "wind_direction_10m": 180.0,
                    "cloud_cover": 50.0, "shortwave_radiation": 0.0
                })
            })
            .collect()
    }

    fn body(items: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "observations": items })).unwrap()
    }

    fn err(b: &[u8]) -> ApiError {
        parse_observations(b, 744).unwrap_err()
    }

    /// 25 consecutive hours starting at `start` (any year chrono can parse).
    fn window_from(start: &str) -> Vec<u8> {
        let t0 = NaiveDateTime::parse_from_str(start, "%Y-%m-%dT%H:%M").unwrap();
        let items: Vec<Value> = (0..25)
            .map(|h| {
                let mut o = obs(1)[0].clone();
                o["time"] = json!((t0 + Duration::hours(h)).format("%Y-%m-%dT%H:%M").to_string());
                o
            })
            .collect();
        body(items)
    }

    #[test]
    fn times_outside_a_sane_window_of_years_are_refused_not_a_panic() {
        // chrono's %Y takes signed years of any width: this parses, and 6 h later
        // would overflow when the forecasts' target times are computed.
        for start in [
            "+262142-12-30T23:00",
            "-0001-01-01T00:00",
            "1066-10-14T09:00",
            "2999-01-01T00:00",
        ] {
            let e = err(&window_from(start));
            assert_eq!(
                (e.code, e.location.as_deref()),
                ("invalid_time", Some("/observations/0/time")),
                "{start}: {e}"
            );
        }
        assert!(parse_observations(&window_from("2023-10-01T00:00"), 744).is_ok());
    }

    #[test]
    fn a_good_request_parses() {
        let s = parse_observations(&body(obs(30)), 744).unwrap();
        assert_eq!(s.len(), 30);
    }

    #[test]
    fn each_defect_gets_its_own_code_and_location() {
        assert_eq!(err(b"{\"observations\": [").code, "invalid_json");
        assert_eq!(err(b"[]").code, "invalid_shape");
        assert_eq!(err(b"{\"observations\": 3}").code, "invalid_type");
        assert_eq!(err(&body(obs(10))).code, "too_few_observations");
        let mut o = obs(30);
        o[4].as_object_mut().unwrap().remove("surface_pressure");
        let e = err(&body(o));
        assert_eq!(
            (e.code, e.location.as_deref()),
            ("missing_variable", Some("/observations/4/surface_pressure"))
        );
        let mut o = obs(30);
        o[5]["temperature_2m"] = json!("warm");
        assert_eq!(err(&body(o)).code, "invalid_type");
        let mut o = obs(30);
        o[6]["temperature_2m"] = json!(null);
        assert_eq!(err(&body(o)).code, "null_value");
        let mut o = obs(30);
        o[7]["relative_humidity_2m"] = json!(140);
        let e = err(&body(o));
        assert_eq!(e.code, "implausible_value");
        assert!(e.message.contains("[0, 100] %"), "{}", e.message);
        // A repeated hour is not increasing; a swap is first seen as a 2 h step.
        let mut o = obs(30);
        o[9]["time"] = o[8]["time"].clone();
        assert_eq!(err(&body(o)).code, "not_increasing");
        let mut o = obs(30);
        o.swap(8, 9);
        assert_eq!(err(&body(o)).code, "not_hourly");
        let mut o = obs(30);
        o.remove(10);
        assert_eq!(err(&body(o)).code, "not_hourly");
        let mut o = obs(30);
        o[3]["time"] = json!("2023-10-01 03:00");
        assert_eq!(err(&body(o)).code, "invalid_time");
        assert_eq!(
            parse_observations(&body(obs(30)), 26).unwrap_err().code,
            "too_many_observations"
        );
    }
}

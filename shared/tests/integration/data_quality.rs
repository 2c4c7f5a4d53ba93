//! Data checks: the quality gate passes the shipped sample and fails each crafted defect
//! with the check that names it.

use crate::helpers::*;
use chrono::{TimeZone, Utc};
use rps_core::config::{Config, QualityConfig};
use rps_core::snapshot::{QualityReport, Status};
use rps_core::validate::checks::check;
use serde_json::{Value, json};

fn cfg() -> QualityConfig {
    Config::from_lookup(|_| None).unwrap().quality
}

fn gate(v: &Value) -> QualityReport {
    check(&raw(v), &cfg(), None)
}

/// The gate fails, and `name` is among the failures.
fn assert_fails(report: &QualityReport, name: &str) {
    assert!(!report.passed, "the gate passed; expected {name} to fail");
    let failed: Vec<&str> = report.failures().map(|c| c.name.as_str()).collect();
    assert!(failed.contains(&name), "{name} not among the failures {failed:?}");
}

#[test]
fn the_shipped_sample_passes_with_precipitation_only_warned() {
    let _turn = testkit::turn(module_path!());
    let r = gate(&sample_json());
    assert!(r.passed, "failures: {:?}", r.failures().collect::<Vec<_>>());
    assert_eq!(r.rows, 8760);
    let warned: Vec<&str> = r.warnings().map(|c| c.name.as_str()).collect();
    assert!(warned.contains(&"null_share.precipitation"), "{warned:?}");
    assert_eq!(r.check("null_share.temperature_2m").unwrap().status, Status::Pass);
}

#[test]
fn five_percent_missing_temperatures_fail_the_null_share_check() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_json();
    null_every(&mut v, "temperature_2m", 20, 7);
    let r = gate(&v);
    assert_fails(&r, "null_share.temperature_2m");
    let c = r.check("null_share.temperature_2m").unwrap();
    assert!((c.measured.unwrap() - 0.05).abs() < 0.001, "{c:?}");
    assert_eq!(c.threshold, Some(0.01));
    assert!(c.message.contains("5.00%"), "{}", c.message);
}

#[test]
fn just_under_one_percent_missing_passes() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_json();
    null_every(&mut v, "relative_humidity_2m", 101, 50);
    let r = gate(&v);
    assert_eq!(
        r.check("null_share.relative_humidity_2m").unwrap().status,
        Status::Pass
    );
    assert!(r.passed);
}

#[test]
fn a_missing_key_variable_fails() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    v["hourly"].as_object_mut().unwrap().remove("dew_point_2m");
    assert_fails(&gate(&v), "present.dew_point_2m");
}

#[test]
fn a_missing_optional_variable_only_warns() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    v["hourly"].as_object_mut().unwrap().remove("precipitation");
    let r = gate(&v);
    assert!(r.passed);
    assert_eq!(r.check("present.precipitation").unwrap().status, Status::Warn);
}

#[test]
fn non_numeric_values_fail() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    hourly(&mut v, "surface_pressure")[10] = json!("1012 hPa");
    assert_fails(&gate(&v), "numeric.surface_pressure");
}

#[test]
fn a_column_of_the_wrong_length_fails() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    hourly(&mut v, "cloud_cover").pop();
    assert_fails(&gate(&v), "length.cloud_cover");
}

#[test]
fn unparseable_times_fail_and_skip_the_axis_checks() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    hourly(&mut v, "time")[3] = json!("2023-01-01 12:00");
    let r = gate(&v);
    assert_fails(&r, "time.parses");
    assert_eq!(r.check("gaps.max_hours").unwrap().status, Status::Skip);
}

#[test]
fn duplicate_times_fail() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    let t = hourly(&mut v, "time");
    t[20] = t[19].clone();
    assert_fails(&gate(&v), "time.no_duplicates");
}

#[test]
fn times_going_backwards_fail() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    hourly(&mut v, "time").swap(30, 31);
    assert_fails(&gate(&v), "time.strictly_increasing");
}

#[test]
fn times_off_the_hour_fail() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    hourly(&mut v, "time")[40] = json!("2023-01-02T13:30");
    assert_fails(&gate(&v), "time.on_the_hour");
}

#[test]
fn implausible_values_fail() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(200);
    hourly(&mut v, "temperature_2m")[50] = json!(75.0);
    let r = gate(&v);
    assert_fails(&r, "range.temperature_2m");
    assert!(r.check("range.temperature_2m").unwrap().message.contains("75"));
    let mut v = sample_head(200);
    hourly(&mut v, "relative_humidity_2m")[5] = json!(-3);
    assert_fails(&gate(&v), "range.relative_humidity_2m");
}

#[test]
fn a_long_run_of_missing_hours_fails_the_gap_check() {
    let _turn = testkit::turn(module_path!());
    // Seven consecutive absent hours (the default limit is six).
    let mut v = sample_head(300);
    for (_, col) in v["hourly"].as_object_mut().unwrap() {
        col.as_array_mut().unwrap().drain(100..107);
    }
    let r = gate(&v);
    assert_fails(&r, "gaps.max_hours");
    assert_eq!(r.check("gaps.max_hours").unwrap().measured, Some(7.0));
    // Six are tolerated.
    let mut v = sample_head(300);
    for (_, col) in v["hourly"].as_object_mut().unwrap() {
        col.as_array_mut().unwrap().drain(100..106);
    }
    assert_eq!(gate(&v).check("gaps.max_hours").unwrap().status, Status::Pass);
}

#[test]
fn nulls_count_as_missing_hours_for_the_gap_check() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(300);
    for i in 120..128 {
        hourly(&mut v, "wind_speed_10m")[i] = Value::Null;
    }
    assert_fails(&gate(&v), "gaps.max_hours");
}

#[test]
fn too_few_rows_fail() {
    let _turn = testkit::turn(module_path!());
    assert_fails(&gate(&sample_head(24)), "row_count");
}

#[test]
fn stale_live_data_fails_and_fresh_live_data_passes() {
    let _turn = testkit::turn(module_path!());
    let v = sample_head(200);
    let last = raw(&v).utc_times().last().unwrap().unwrap();
    let fresh = Utc.from_utc_datetime(&(last + chrono::Duration::minutes(40)));
    let r = check(&raw(&v), &cfg(), Some(fresh));
    assert_eq!(r.check("staleness.hours").unwrap().status, Status::Pass);
    let stale = Utc.from_utc_datetime(&(last + chrono::Duration::hours(5)));
    let r = check(&raw(&v), &cfg(), Some(stale));
    assert_fails(&r, "staleness.hours");
    // Backfills are not held to staleness.
    assert!(gate(&v).check("staleness.hours").is_none());
}

#[test]
fn the_report_is_machine_readable_json() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_json();
    null_every(&mut v, "temperature_2m", 20, 0);
    let r = gate(&v);
    let j = serde_json::to_value(&r).unwrap();
    assert_eq!(j["passed"], json!(false));
    let failed: Vec<&Value> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["name"], "null_share.temperature_2m");
    let back: QualityReport = serde_json::from_value(j).unwrap();
    assert_eq!(back, r);
}

#[test]
fn a_huge_utc_offset_fails_the_gate_instead_of_panicking() {
    let _turn = testkit::turn(module_path!());
    for offset in [i64::MAX, i64::MIN, 10_000_000_000_000, 90_000] {
        let mut v = sample_head(72);
        v["utc_offset_seconds"] = serde_json::json!(offset);
        let r = gate(&v);
        assert!(!r.passed, "offset {offset}");
        assert_fails(&r, "time.utc_offset");
    }
    let mut v = sample_head(72);
    v["utc_offset_seconds"] = serde_json::json!(-36_000);
    assert_eq!(gate(&v).check("time.utc_offset").unwrap().status, Status::Pass);
}

#[test]
fn times_outside_a_sane_window_of_years_fail_the_time_check() {
    let _turn = testkit::turn(module_path!());
    let mut v = sample_head(72);
    hourly(&mut v, "time")[5] = serde_json::json!("+262142-12-30T23:00");
    assert_fails(&gate(&v), "time.parses");
}

/// A month of clean hourly data in a climate far from the sample's: each variable a
/// daily cycle between `lo` and `hi` (radiation is zero at night, or all month in the
/// polar night).
fn climate(vars: &[(&str, f64, f64)]) -> Value {
    let hours = 24 * 30;
    let mut hourly = serde_json::Map::new();
    let start = Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap();
    hourly.insert(
        "time".into(),
        (0..hours)
            .map(|h| {
                json!(
                    (start + chrono::Duration::hours(h))
                        .format("%Y-%m-%dT%H:%M")
                        .to_string()
                )
            })
            .collect(),
    );
    for (name, lo, hi) in vars {
        let col: Vec<Value> = (0..hours)
            .map(|h| {
                let day = (std::f64::consts::TAU * (h % 24) as f64 / 24.0).sin();
                let x = if *name == "shortwave_radiation" {
                    (day.max(0.0)) * hi
                } else {
                    lo + (hi - lo) * (day + 1.0) / 2.0
                };
                json!((x * 10.0).round() / 10.0)
            })
            .collect();
        hourly.insert((*name).into(), Value::Array(col));
    }
    json!({"latitude": 0.0, "longitude": 0.0, "utc_offset_seconds": 0, "hourly": hourly})
}

#[test]
fn desert_tropical_polar_and_mountain_stations_pass_clean_and_fail_broken() {
    let _turn = testkit::turn(module_path!());
    // (name, a range for each key variable, in KEY_VARIABLES' order: temperature, humidity,
    // dew point, pressure, wind, direction, cloud, radiation)
    let stations: [(&str, [(f64, f64); 8]); 4] = [
        // Death Valley in July: 50 °C afternoons, 3% humidity, below sea level.
        (
            "desert",
            [
                (32.0, 50.0),
                (3.0, 15.0),
                (-12.0, 2.0),
                (1005.0, 1015.0),
                (0.0, 45.0),
                (0.0, 360.0),
                (0.0, 10.0),
                (0.0, 1050.0),
            ],
        ),
        // Singapore: saturated air, dew points of 26 °C, cloud most days.
        (
            "tropical",
            [
                (24.0, 33.0),
                (62.0, 100.0),
                (22.0, 27.0),
                (1005.0, 1012.0),
                (0.0, 25.0),
                (0.0, 360.0),
                (40.0, 100.0),
                (0.0, 950.0),
            ],
        ),
        // The South Pole in July: −60 °C, 2,835 m (680 hPa), no sun all month.
        (
            "polar",
            [
                (-65.0, -50.0),
                (55.0, 75.0),
                (-70.0, -55.0),
                (670.0, 690.0),
                (5.0, 40.0),
                (0.0, 360.0),
                (0.0, 100.0),
                (0.0, 0.0),
            ],
        ),
        // La Paz: 3,640 m (650 hPa), strong sun, freezing nights.
        (
            "mountain",
            [
                (-3.0, 17.0),
                (20.0, 70.0),
                (-12.0, 2.0),
                (640.0, 655.0),
                (0.0, 35.0),
                (0.0, 360.0),
                (0.0, 80.0),
                (0.0, 1200.0),
            ],
        ),
    ];
    let names = rps_core::observations::KEY_VARIABLES.map(|v| v.name());
    for (station, ranges) in stations {
        let vars: Vec<(&str, f64, f64)> = names
            .iter()
            .zip(ranges)
            .map(|(n, (lo, hi))| (*n, lo, hi))
            .collect();
        let clean = climate(&vars);
        let r = gate(&clean);
        assert!(r.passed, "{station}: {:?}", r.failures().collect::<Vec<_>>());

        // Broken the ways real feeds break: a unit error, a dead sensor, a hole.
        let mut kelvin = clean.clone();
        for t in hourly(&mut kelvin, "temperature_2m") {
            *t = json!(t.as_f64().unwrap() + 273.15);
        }
        assert_fails(&gate(&kelvin), "range.temperature_2m");
        let mut pascal = clean.clone();
        for p in hourly(&mut pascal, "surface_pressure") {
            *p = json!(p.as_f64().unwrap() * 100.0);
        }
        assert_fails(&gate(&pascal), "range.surface_pressure");
        let mut fraction = clean.clone();
        hourly(&mut fraction, "relative_humidity_2m")[10] = json!(-0.5);
        assert_fails(&gate(&fraction), "range.relative_humidity_2m");
        let mut dead = clean.clone();
        null_every(&mut dead, "wind_speed_10m", 20, 3);
        assert_fails(&gate(&dead), "null_share.wind_speed_10m");
        let mut hole = clean.clone();
        for h in 100..120 {
            hourly(&mut hole, "dew_point_2m")[h] = Value::Null;
        }
        assert_fails(&gate(&hole), "gaps.max_hours");
    }
}

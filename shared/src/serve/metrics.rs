//! Prometheus metrics of the prediction service, and the same figures as CloudWatch
//! Embedded Metric Format (EMF) log lines on Lambda, where nobody can scrape.
//!
//! The metrics are the constants below ([`ALL`]); `docs/serving.md` documents each
//! one, and a test keeps the two equal.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use crate::bundle::Forecast;
use crate::drift::DriftSnapshot;

pub const REQUESTS: &str = "rps_http_requests_total";
pub const DURATION: &str = "rps_http_request_duration_seconds";
pub const PREDICTIONS: &str = "rps_predictions_total";
pub const PREDICTION_VALUE: &str = "rps_prediction_temperature_celsius";
pub const MODEL_INFO: &str = "rps_model_info";
pub const MODEL_LOADED: &str = "rps_model_loaded";
pub const REFRESHES: &str = "rps_model_refreshes_total";
pub const REGISTRY_REACHABLE: &str = "rps_registry_reachable";
pub const DRIFT_REQUESTS: &str = "rps_drift_window_requests";
pub const DRIFT_SHARE: &str = "rps_drift_out_of_range_ratio";
pub const DRIFT_FEATURE_SHARE: &str = "rps_drift_feature_out_of_range_ratio";
pub const DRIFT_PSI: &str = "rps_drift_psi";
pub const DRIFT_DETECTED: &str = "rps_drift_detected";
pub const OBSERVATIONS_AGE: &str = "rps_observations_age_seconds";
pub const MODEL_LOADED_AT: &str = "rps_model_loaded_timestamp_seconds";
pub const REGISTRY_LAST_SUCCESS: &str = "rps_registry_last_success_timestamp_seconds";
pub const REFRESH_INTERVAL: &str = "rps_model_refresh_interval_seconds";
pub const DRIFT_THRESHOLD: &str = "rps_drift_threshold";
pub const FORECAST_LOG: &str = "rps_forecast_log_records_total";
pub const LIVE_RMSE: &str = "rps_live_rmse_celsius";
pub const LIVE_MAE: &str = "rps_live_mae_celsius";
pub const LIVE_SKILL: &str = "rps_live_skill";
pub const LIVE_INTERVAL_COVERAGE: &str = "rps_live_interval_coverage";
pub const INTERVAL_SCALE: &str = "rps_interval_scale";
pub const LIVE_VERIFIED: &str = "rps_live_verified_forecasts";
pub const LIVE_UNVERIFIED: &str = "rps_live_unverified_forecasts";
pub const LIVE_OUT_OF_RANGE: &str = "rps_live_out_of_range_ratio";
pub const LIVE_VERIFIED_AT: &str = "rps_live_verified_timestamp_seconds";
pub const LIVE_OBSERVED_AT: &str = "rps_live_observed_timestamp_seconds";
pub const LIVE_THRESHOLD: &str = "rps_live_threshold";
pub const RETRAIN_REQUESTED_AT: &str = "rps_retrain_requested_timestamp_seconds";
pub const RETRAIN_REFUSED: &str = "rps_retrain_refused";

/// Every metric the service exports.
pub const ALL: &[&str] = &[
    REQUESTS,
    DURATION,
    PREDICTIONS,
    PREDICTION_VALUE,
    MODEL_INFO,
    MODEL_LOADED,
    REFRESHES,
    REGISTRY_REACHABLE,
    DRIFT_REQUESTS,
    DRIFT_SHARE,
    DRIFT_FEATURE_SHARE,
    DRIFT_PSI,
    DRIFT_DETECTED,
    OBSERVATIONS_AGE,
    MODEL_LOADED_AT,
    REGISTRY_LAST_SUCCESS,
    REFRESH_INTERVAL,
    DRIFT_THRESHOLD,
    FORECAST_LOG,
    LIVE_RMSE,
    LIVE_MAE,
    LIVE_SKILL,
    LIVE_INTERVAL_COVERAGE,
    INTERVAL_SCALE,
    LIVE_VERIFIED,
    LIVE_UNVERIFIED,
    LIVE_OUT_OF_RANGE,
    LIVE_VERIFIED_AT,
    LIVE_OBSERVED_AT,
    LIVE_THRESHOLD,
    RETRAIN_REQUESTED_AT,
    RETRAIN_REFUSED,
];

/// The process-wide Prometheus recorder (installed on first use).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let latency = [
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let temperature: Vec<f64> = (-8..=9).map(|i| i as f64 * 5.0).collect();
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DURATION.into()), &latency)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(PREDICTION_VALUE.into()), &temperature))
            .expect("bucket lists are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests); ours still renders its own.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// Histograms keep every sample until they are folded into their buckets, which a scrape
/// or an upkeep does. Without scrapes (Lambda, or nobody watching) they would grow with
/// every request, so fold them every few seconds. Once per process.
pub fn spawn_upkeep() {
    static STARTED: OnceLock<()> = OnceLock::new();
    if STARTED.set(()).is_ok() {
        tokio::spawn(async {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle().run_upkeep();
            }
        });
    }
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(REQUESTS, "HTTP requests answered, by route, method and status");
    describe_histogram!(DURATION, Unit::Seconds, "Time to answer a request, by route");
    describe_counter!(PREDICTIONS, "Forecasts made (six horizons each), by endpoint");
    describe_histogram!(PREDICTION_VALUE, "Forecast temperatures in °C, by horizon");
    describe_gauge!(MODEL_INFO, "1 for the model version being served");
    describe_gauge!(MODEL_LOADED, "1 when a model is loaded and serving");
    describe_counter!(REFRESHES, "Re-checks of the served alias, by result");
    describe_gauge!(REGISTRY_REACHABLE, "1 if the last registry check succeeded");
    describe_gauge!(DRIFT_REQUESTS, "Prediction requests in the drift window");
    describe_gauge!(
        DRIFT_SHARE,
        "Share of recent requests with any weather feature outside its training range"
    );
    describe_gauge!(
        DRIFT_FEATURE_SHARE,
        "Share of recent requests with this feature outside its training range"
    );
    describe_gauge!(
        DRIFT_PSI,
        "Population stability index of recent requests against training, by feature"
    );
    describe_gauge!(
        DRIFT_DETECTED,
        "1 when the drift window passes the drift thresholds (RPS_DRIFT_*)"
    );
    describe_gauge!(
        OBSERVATIONS_AGE,
        Unit::Seconds,
        "Age of the newest observation /forecast used"
    );
    describe_gauge!(
        MODEL_LOADED_AT,
        Unit::Seconds,
        "Unix time the served model was loaded (when the served version last changed)"
    );
    describe_gauge!(
        REGISTRY_LAST_SUCCESS,
        Unit::Seconds,
        "Unix time of the last registry check that succeeded"
    );
    describe_gauge!(
        REFRESH_INTERVAL,
        Unit::Seconds,
        "How often the served alias is re-checked (RPS_MODEL_REFRESH_SECS; 0 = never)"
    );
    describe_gauge!(
        DRIFT_THRESHOLD,
        "The drift rule's thresholds (RPS_DRIFT_*), by threshold, for alert rules to compare with"
    );
    describe_counter!(
        FORECAST_LOG,
        "Predict answers offered to the forecast log, by outcome (written, failed, duplicate, sampled_out)"
    );
    describe_gauge!(
        LIVE_RMSE,
        "Live RMSE of the served version's verified forecasts, by horizon and window (24h, 7d)"
    );
    describe_gauge!(LIVE_MAE, "Live MAE of the served version's verified forecasts");
    describe_gauge!(
        LIVE_SKILL,
        "Live skill against persistence over the same hours: 1 - RMSE / persistence RMSE"
    );
    describe_gauge!(
        LIVE_INTERVAL_COVERAGE,
        "Live coverage of the served version's prediction intervals: the share of verified hours inside, by level, horizon and window"
    );
    describe_gauge!(
        INTERVAL_SCALE,
        "The live re-calibration of the served version's intervals: the factor every half-width is multiplied by, by level and horizon (1: served as calibrated)"
    );
    describe_gauge!(
        LIVE_VERIFIED,
        "Verified forecasts of the served version, by horizon and window"
    );
    describe_gauge!(
        LIVE_UNVERIFIED,
        "Forecasts of the served version due in the window whose hour was never observed"
    );
    describe_gauge!(
        LIVE_OUT_OF_RANGE,
        "Share of observed hours with a weather feature outside the served model's training range, by window"
    );
    describe_gauge!(
        LIVE_VERIFIED_AT,
        Unit::Seconds,
        "Unix time of the latest verification"
    );
    describe_gauge!(
        LIVE_OBSERVED_AT,
        Unit::Seconds,
        "Unix time of the newest observed hour the latest verification had"
    );
    describe_gauge!(
        LIVE_THRESHOLD,
        "The retrain rule's thresholds (RPS_RETRAIN_MIN_SKILL, RPS_RETRAIN_MIN_HOURS), for alert rules"
    );
    describe_gauge!(
        RETRAIN_REQUESTED_AT,
        Unit::Seconds,
        "Unix time the newest retrain was asked for"
    );
    describe_gauge!(
        RETRAIN_REFUSED,
        "1 when the promotion gates refused the model of the newest triggered retrain"
    );
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The settings alert rules compare with, published once at start so that a threshold
/// lives in one place: the service's configuration.
pub fn set_settings(refresh: std::time::Duration, t: &crate::drift::DriftThresholds) {
    gauge!(REFRESH_INTERVAL).set(refresh.as_secs_f64());
    gauge!(DRIFT_THRESHOLD, "threshold" => "min_requests").set(t.min_requests as f64);
    gauge!(DRIFT_THRESHOLD, "threshold" => "max_out_of_range").set(t.max_out_of_range_share);
    gauge!(DRIFT_THRESHOLD, "threshold" => "max_psi").set(t.max_psi);
}

/// The methods that get their own label; any other is `other`, so a client inventing
/// methods cannot create series without bound.
const METHODS: [&str; 7] = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"];

pub fn record_request(route: &str, method: &str, status: u16, seconds: f64) {
    let method = METHODS.iter().find(|m| **m == method).copied().unwrap_or("other");
    counter!(REQUESTS, "route" => route.to_owned(), "method" => method, "status" => status.to_string())
        .increment(1);
    histogram!(DURATION, "route" => route.to_owned()).record(seconds);
}

pub fn record_forecasts(endpoint: &'static str, forecasts: &[Forecast]) {
    counter!(PREDICTIONS, "endpoint" => endpoint).increment(1);
    for f in forecasts {
        histogram!(PREDICTION_VALUE, "horizon" => f.horizon_hours.to_string()).record(f.temperature_2m);
    }
}

/// Marks `labels` as the served model (and the one before it as no longer served).
pub fn set_model(previous: Option<[String; 4]>, current: Option<[String; 4]>) {
    let g = |l: &[String; 4]| gauge!(MODEL_INFO, "name" => l[0].clone(), "version" => l[1].clone(), "alias" => l[2].clone(), "sha256" => l[3].clone());
    if let Some(p) = &previous {
        g(p).set(0.0);
    }
    if let Some(c) = &current {
        g(c).set(1.0);
        gauge!(MODEL_LOADED_AT).set(unix_now());
    }
    gauge!(MODEL_LOADED).set(if current.is_some() { 1.0 } else { 0.0 });
}

pub fn record_refresh(result: &'static str, registry_reachable: bool) {
    counter!(REFRESHES, "result" => result).increment(1);
    gauge!(REGISTRY_REACHABLE).set(if registry_reachable { 1.0 } else { 0.0 });
    if registry_reachable {
        gauge!(REGISTRY_LAST_SUCCESS).set(unix_now());
    }
}

/// Publishes the drift window's figures as gauges (at scrape time).
pub fn set_drift(d: &DriftSnapshot) {
    gauge!(DRIFT_REQUESTS).set(d.requests as f64);
    gauge!(DRIFT_SHARE).set(d.out_of_range_share);
    gauge!(DRIFT_DETECTED).set(if d.drifting { 1.0 } else { 0.0 });
    for f in &d.features {
        // `kind` tells alert rules and dashboards which features the drift rule judges
        // (weather, not calendar).
        let kind = if f.calendar { "calendar" } else { "weather" };
        gauge!(DRIFT_FEATURE_SHARE, "feature" => f.feature.clone(), "kind" => kind).set(f.out_of_range_share);
        gauge!(DRIFT_PSI, "feature" => f.feature.clone(), "kind" => kind).set(f.psi.unwrap_or(f64::NAN));
    }
}

/// Counts an answer offered to the forecast log.
pub fn record_forecast_log(outcome: crate::forecast_log::Offered) {
    use crate::forecast_log::Offered;
    let outcome = match outcome {
        // Counted when written (or not).
        Offered::Kept => return,
        Offered::Duplicate => "duplicate",
        Offered::SampledOut => "sampled_out",
    };
    counter!(FORECAST_LOG, "outcome" => outcome).increment(1);
}

/// Counts forecasts written to the log (or lost to a failed write).
pub fn record_forecast_log_write(n: usize, ok: bool) {
    counter!(FORECAST_LOG, "outcome" => if ok { "written" } else { "failed" }).increment(n as u64);
}

/// Counts sampled forecasts dropped because their issue day's client slots were full.
pub fn record_forecast_log_dropped(n: usize) {
    counter!(FORECAST_LOG, "outcome" => "day_full").increment(n as u64);
}

/// Every (level, horizon, window) of `rps_live_interval_coverage` ever published.
static INTERVAL_LABELS: std::sync::Mutex<std::collections::BTreeSet<(String, String, &'static str)>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Every (level, horizon) of `rps_interval_scale` ever published.
static SCALE_LABELS: std::sync::Mutex<std::collections::BTreeSet<(String, String)>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Publishes the live skill of `served` (at scrape time) from the latest verification,
/// and the newest retrain's state. Figures the verification has not got are NaN.
/// `levels`: the served model's interval levels; `scales`: the live re-calibration its
/// answers carry.
pub fn set_live(
    live: Option<&super::live::LiveState>,
    served: Option<&str>,
    levels: &[f64],
    scales: &[crate::records::skill::IntervalScale],
    verify: &crate::config::VerifyConfig,
) {
    use crate::features::HORIZONS;
    use crate::records::verification::LiveWindow;
    let rule = &verify.retrain;
    gauge!(LIVE_THRESHOLD, "threshold" => "min_skill").set(rule.min_skill);
    gauge!(LIVE_THRESHOLD, "threshold" => "min_hours").set(rule.min_hours as f64);
    gauge!(LIVE_THRESHOLD, "threshold" => "min_interval_coverage").set(verify.min_interval_coverage);
    let v = live.and_then(|l| l.verification.as_ref());
    let skill = v.zip(served).and_then(|(v, s)| v.version(s));
    // The interval levels are the served model's: a level published before and not now
    // (a new version with no verified hours yet, a model without intervals) goes NaN.
    let mut published = std::collections::BTreeSet::new();
    for w in LiveWindow::ALL {
        let window = w.label();
        let ws = skill.and_then(|s| s.window(w));
        gauge!(LIVE_UNVERIFIED, "window" => window).set(ws.map_or(f64::NAN, |x| x.unverified as f64));
        let drift = v.and_then(|v| v.drift.iter().find(|d| d.window == w));
        gauge!(LIVE_OUT_OF_RANGE, "window" => window).set(drift.map_or(f64::NAN, |d| d.out_of_range_share));
        for h in HORIZONS {
            let hs = ws.and_then(|x| x.horizon(h));
            let horizon = h.to_string();
            gauge!(LIVE_RMSE, "horizon" => horizon.clone(), "window" => window)
                .set(hs.map_or(f64::NAN, |x| x.rmse));
            gauge!(LIVE_MAE, "horizon" => horizon.clone(), "window" => window)
                .set(hs.map_or(f64::NAN, |x| x.mae));
            gauge!(LIVE_SKILL, "horizon" => horizon.clone(), "window" => window)
                .set(hs.and_then(|x| x.skill).unwrap_or(f64::NAN));
            for i in hs.map_or(&[][..], |x| x.intervals.as_slice()) {
                let labels = (i.level.to_string(), horizon.clone(), window);
                gauge!(LIVE_INTERVAL_COVERAGE, "level" => labels.0.clone(), "horizon" => horizon.clone(), "window" => window)
                    .set(i.coverage);
                published.insert(labels);
            }
            gauge!(LIVE_VERIFIED, "horizon" => horizon, "window" => window)
                .set(hs.map_or(0.0, |x| x.n as f64));
        }
    }
    {
        let mut before = INTERVAL_LABELS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (level, horizon, window) in before.difference(&published) {
            gauge!(LIVE_INTERVAL_COVERAGE, "level" => level.clone(), "horizon" => horizon.clone(), "window" => *window)
                .set(f64::NAN);
        }
        before.extend(published);
    }
    {
        // Every level of the served model at every horizon: 1 where it is served as
        // calibrated.
        let mut now = std::collections::BTreeSet::new();
        for h in HORIZONS {
            for &level in levels {
                let labels = (level.to_string(), h.to_string());
                gauge!(INTERVAL_SCALE, "level" => labels.0.clone(), "horizon" => labels.1.clone())
                    .set(crate::recalibration::lookup(scales, h, level).unwrap_or(1.0));
                now.insert(labels);
            }
        }
        let mut before = SCALE_LABELS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (level, horizon) in before.difference(&now) {
            gauge!(INTERVAL_SCALE, "level" => level.clone(), "horizon" => horizon.clone()).set(f64::NAN);
        }
        before.extend(now);
    }
    let ts = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() as f64 / 1000.0;
    gauge!(LIVE_VERIFIED_AT).set(v.map_or(f64::NAN, |v| ts(v.verified_at)));
    gauge!(LIVE_OBSERVED_AT).set(v.and_then(|v| v.as_of).map_or(f64::NAN, |t| ts(t.and_utc())));
    let r = live.and_then(|l| l.retrain.as_ref());
    gauge!(RETRAIN_REQUESTED_AT).set(r.map_or(f64::NAN, |r| ts(r.trigger.requested_at)));
    let refused = r.is_some_and(|r| r.status == crate::records::retrain::RetrainStatus::Refused);
    gauge!(RETRAIN_REFUSED).set(if refused { 1.0 } else { 0.0 });
}

pub fn set_observations_age(seconds: f64) {
    gauge!(OBSERVATIONS_AGE).set(seconds);
}

/// One EMF line for a request: CloudWatch turns it into metrics with the dimensions
/// route and route+status. `drift` is the drift window's out-of-range share and verdict
/// (template.yaml alarms on `latency` and `drift_detected`).
pub fn emf_line(
    namespace: &str,
    route: &str,
    status: u16,
    latency_ms: f64,
    predictions: u64,
    drift: Option<(f64, bool)>,
    model_version: Option<&str>,
) -> String {
    let ts = (unix_now() * 1000.0) as u64;
    let mut metrics = vec![
        json!({"Name": "requests", "Unit": "Count"}),
        json!({"Name": "latency", "Unit": "Milliseconds"}),
        json!({"Name": "predictions", "Unit": "Count"}),
    ];
    let mut line = json!({
        "_aws": {
            "Timestamp": ts,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["route"], ["route", "status"]],
                "Metrics": [],
            }],
        },
        "route": route,
        "status": status.to_string(),
        "requests": 1,
        "latency": latency_ms,
        "predictions": predictions,
    });
    if let Some((share, detected)) = drift {
        metrics.push(json!({"Name": "drift_out_of_range_ratio", "Unit": "None"}));
        metrics.push(json!({"Name": "drift_detected", "Unit": "None"}));
        line["drift_out_of_range_ratio"] = json!(share);
        line["drift_detected"] = json!(u8::from(detected));
    }
    if let Some(v) = model_version {
        line["model_version"] = json!(v);
    }
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(metrics);
    line.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_follow_the_specification() {
        let v: serde_json::Value = serde_json::from_str(&emf_line(
            "rps-prod",
            "/predict",
            200,
            0.42,
            1,
            Some((0.1, true)),
            Some("3"),
        ))
        .unwrap();
        let cw = &v["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(cw["Namespace"], "rps-prod");
        // Every declared dimension and metric is a top-level member.
        for dims in cw["Dimensions"].as_array().unwrap() {
            for d in dims.as_array().unwrap() {
                assert!(v.get(d.as_str().unwrap()).is_some(), "dimension {d} missing");
            }
        }
        for m in cw["Metrics"].as_array().unwrap() {
            let name = m["Name"].as_str().unwrap();
            assert!(v[name].is_number(), "metric {name} missing");
        }
        assert!(v["_aws"]["Timestamp"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(v["model_version"], "3");
        assert_eq!(v["drift_detected"], 1);
    }
}

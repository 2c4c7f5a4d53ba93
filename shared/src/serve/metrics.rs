//! Prometheus metrics of the prediction service, and the same figures as CloudWatch
//! Embedded Metric Format (EMF) log lines on Lambda, where nobody can scrape.
//!
//! The metrics are the constants below ([`ALL`]); `docs/serving.md` documents each
//! one, and a test keeps the two equal.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use metrics::{Label, counter, gauge, histogram};
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
pub const MODELS_RESIDENT: &str = "rps_models_resident";
pub const MODEL_CACHE_BYTES: &str = "rps_model_cache_bytes";
pub const MODEL_CACHE_LIMIT: &str = "rps_model_cache_limit_bytes";
pub const MODEL_EVICTIONS: &str = "rps_model_evictions_total";
pub const MODEL_LOAD_DURATION: &str = "rps_model_load_duration_seconds";

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
    MODELS_RESIDENT,
    MODEL_CACHE_BYTES,
    MODEL_CACHE_LIMIT,
    MODEL_EVICTIONS,
    MODEL_LOAD_DURATION,
];

/// `labels`, and `location` when the service answers for several locations
/// (`RPS_LOCATIONS`). The value is always a configured id, never a client's string, so
/// the series are bounded by the locations file.
fn at<const N: usize>(location: Option<&str>, labels: [(&'static str, String); N]) -> Vec<Label> {
    let mut out: Vec<Label> = labels.into_iter().map(|(k, v)| Label::new(k, v)).collect();
    if let Some(l) = location {
        out.push(Label::new("location", l.to_owned()));
    }
    out
}

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
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(MODEL_LOAD_DURATION.into()), &latency))
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
    describe_gauge!(
        MODELS_RESIDENT,
        "Locations whose model is in memory (RPS_LOCATIONS)"
    );
    describe_gauge!(
        MODEL_CACHE_BYTES,
        Unit::Bytes,
        "Estimated memory of the models in memory"
    );
    describe_gauge!(
        MODEL_CACHE_LIMIT,
        Unit::Bytes,
        "The memory the models may take (RPS_MODEL_CACHE_MB)"
    );
    describe_counter!(
        MODEL_EVICTIONS,
        "Location models unloaded to stay within RPS_MODEL_CACHE_MB"
    );
    describe_histogram!(
        MODEL_LOAD_DURATION,
        Unit::Seconds,
        "Time a request waited for its location's model to load, by result (loaded, no_model, timeout)"
    );
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The settings alert rules compare with, published once at start so that a threshold
/// lives in one place: the service's configuration.
pub fn set_refresh_interval(refresh: std::time::Duration) {
    gauge!(REFRESH_INTERVAL).set(refresh.as_secs_f64());
}

/// The drift rule's thresholds of a location (they may be its own).
pub fn set_drift_thresholds(location: Option<&str>, t: &crate::drift::DriftThresholds) {
    let g = |name: &'static str| gauge!(DRIFT_THRESHOLD, at(location, [("threshold", name.to_owned())]));
    g("min_requests").set(t.min_requests as f64);
    g("max_out_of_range").set(t.max_out_of_range_share);
    g("max_psi").set(t.max_psi);
}

/// The model cache of a service answering for several locations.
pub fn set_model_cache(resident: usize, bytes: u64, limit: u64) {
    gauge!(MODELS_RESIDENT).set(resident as f64);
    gauge!(MODEL_CACHE_BYTES).set(bytes as f64);
    gauge!(MODEL_CACHE_LIMIT).set(limit as f64);
}

pub fn record_eviction() {
    counter!(MODEL_EVICTIONS).increment(1);
}

pub fn record_model_load(result: &'static str, seconds: f64) {
    histogram!(MODEL_LOAD_DURATION, "result" => result).record(seconds);
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

pub fn record_forecasts(endpoint: &'static str, location: Option<&str>, forecasts: &[Forecast]) {
    counter!(PREDICTIONS, at(location, [("endpoint", endpoint.to_owned())])).increment(1);
    for f in forecasts {
        histogram!(PREDICTION_VALUE, "horizon" => f.horizon_hours.to_string()).record(f.temperature_2m);
    }
}

fn model_info(location: Option<&str>, l: &[String; 4]) -> metrics::Gauge {
    gauge!(
        MODEL_INFO,
        at(
            location,
            [
                ("name", l[0].clone()),
                ("version", l[1].clone()),
                ("alias", l[2].clone()),
                ("sha256", l[3].clone())
            ]
        )
    )
}

/// Marks `labels` as the served model (and the one before it as no longer served).
pub fn set_model(location: Option<&str>, previous: Option<[String; 4]>, current: Option<[String; 4]>) {
    if let Some(p) = &previous {
        model_info(location, p).set(0.0);
    }
    if let Some(c) = &current {
        model_info(location, c).set(1.0);
        gauge!(MODEL_LOADED_AT, at(location, [])).set(unix_now());
    }
    gauge!(MODEL_LOADED, at(location, [])).set(if current.is_some() { 1.0 } else { 0.0 });
}

/// A location's model was unloaded to make room: not served from memory, but not
/// missing either (NaN, so a rule on `== 0` does not page).
pub fn set_model_unloaded(location: &str, previous: Option<[String; 4]>) {
    if let Some(p) = &previous {
        model_info(Some(location), p).set(0.0);
    }
    gauge!(MODEL_LOADED, at(Some(location), [])).set(f64::NAN);
}

pub fn record_refresh(result: &'static str, registry_reachable: bool) {
    counter!(REFRESHES, "result" => result).increment(1);
    gauge!(REGISTRY_REACHABLE).set(if registry_reachable { 1.0 } else { 0.0 });
    if registry_reachable {
        gauge!(REGISTRY_LAST_SUCCESS).set(unix_now());
    }
}

/// Publishes the drift window's figures as gauges (at scrape time).
pub fn set_drift(location: Option<&str>, d: &DriftSnapshot) {
    gauge!(DRIFT_REQUESTS, at(location, [])).set(d.requests as f64);
    gauge!(DRIFT_SHARE, at(location, [])).set(d.out_of_range_share);
    gauge!(DRIFT_DETECTED, at(location, [])).set(if d.drifting { 1.0 } else { 0.0 });
    for f in &d.features {
        // `kind` tells alert rules and dashboards which features the drift rule judges
        // (weather, not calendar).
        let kind = if f.calendar { "calendar" } else { "weather" };
        let labels = at(
            location,
            [("feature", f.feature.clone()), ("kind", kind.to_owned())],
        );
        gauge!(DRIFT_FEATURE_SHARE, labels.clone()).set(f.out_of_range_share);
        gauge!(DRIFT_PSI, labels).set(f.psi.unwrap_or(f64::NAN));
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

/// Labels of a gauge ever published, so that one no longer published can be set NaN.
type Published = std::sync::Mutex<std::collections::BTreeSet<(Option<String>, Vec<(&'static str, String)>)>>;

/// Every (location, level, horizon, window) of `rps_live_interval_coverage` published.
static INTERVAL_LABELS: Published = std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Every (location, level, horizon) of `rps_interval_scale` published.
static SCALE_LABELS: Published = std::sync::Mutex::new(std::collections::BTreeSet::new());

/// Sets `now`'s gauges of `name` and NaN on those `location` published before and not now.
fn publish_set(
    name: &'static str,
    published: &Published,
    location: Option<&str>,
    now: Vec<(Vec<(&'static str, String)>, f64)>,
) {
    let loc = location.map(str::to_owned);
    let labels = |l: &[(&'static str, String)]| {
        let mut v: Vec<Label> = l.iter().map(|(k, x)| Label::new(*k, x.clone())).collect();
        if let Some(l) = location {
            v.push(Label::new("location", l.to_owned()));
        }
        v
    };
    let mut before = published
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut current = std::collections::BTreeSet::new();
    for (l, value) in now {
        gauge!(name, labels(&l)).set(value);
        current.insert((loc.clone(), l));
    }
    for (_, l) in before.iter().filter(|(bl, _)| *bl == loc) {
        if !current.iter().any(|(_, c)| c == l) {
            gauge!(name, labels(l)).set(f64::NAN);
        }
    }
    before.extend(current);
}

/// Publishes the live skill of `served` (at scrape time) from the latest verification,
/// and the newest retrain's state. Figures the verification has not got are NaN.
/// `levels`: the served model's interval levels; `scales`: the live re-calibration its
/// answers carry.
pub fn set_live(
    location: Option<&str>,
    live: Option<&super::live::LiveState>,
    served: Option<&str>,
    levels: &[f64],
    scales: &[crate::records::skill::IntervalScale],
    verify: &crate::config::VerifyConfig,
) {
    use crate::features::HORIZONS;
    use crate::records::verification::LiveWindow;
    let rule = &verify.retrain;
    let threshold = |name: &str| gauge!(LIVE_THRESHOLD, at(location, [("threshold", name.to_owned())]));
    threshold("min_skill").set(rule.min_skill);
    threshold("min_hours").set(rule.min_hours as f64);
    threshold("min_interval_coverage").set(verify.min_interval_coverage);
    let v = live.and_then(|l| l.verification.as_ref());
    let skill = v.zip(served).and_then(|(v, s)| v.version(s));
    // The interval levels are the served model's: a level published before and not now
    // (a new version with no verified hours yet, a model without intervals) goes NaN.
    let mut coverage = Vec::new();
    for w in LiveWindow::ALL {
        let window = w.label();
        let ws = skill.and_then(|s| s.window(w));
        let win = || ("window", window.to_owned());
        gauge!(LIVE_UNVERIFIED, at(location, [win()])).set(ws.map_or(f64::NAN, |x| x.unverified as f64));
        let drift = v.and_then(|v| v.drift.iter().find(|d| d.window == w));
        gauge!(LIVE_OUT_OF_RANGE, at(location, [win()]))
            .set(drift.map_or(f64::NAN, |d| d.out_of_range_share));
        for h in HORIZONS {
            let hs = ws.and_then(|x| x.horizon(h));
            let hw = || [("horizon", h.to_string()), win()];
            gauge!(LIVE_RMSE, at(location, hw())).set(hs.map_or(f64::NAN, |x| x.rmse));
            gauge!(LIVE_MAE, at(location, hw())).set(hs.map_or(f64::NAN, |x| x.mae));
            gauge!(LIVE_SKILL, at(location, hw())).set(hs.and_then(|x| x.skill).unwrap_or(f64::NAN));
            for i in hs.map_or(&[][..], |x| x.intervals.as_slice()) {
                coverage.push((
                    vec![("level", i.level.to_string()), ("horizon", h.to_string()), win()],
                    i.coverage,
                ));
            }
            gauge!(LIVE_VERIFIED, at(location, hw())).set(hs.map_or(0.0, |x| x.n as f64));
        }
    }
    publish_set(LIVE_INTERVAL_COVERAGE, &INTERVAL_LABELS, location, coverage);
    // Every level of the served model at every horizon: 1 where it is served as
    // calibrated.
    let mut scale = Vec::new();
    for h in HORIZONS {
        for &level in levels {
            scale.push((
                vec![("level", level.to_string()), ("horizon", h.to_string())],
                crate::recalibration::lookup(scales, h, level).unwrap_or(1.0),
            ));
        }
    }
    publish_set(INTERVAL_SCALE, &SCALE_LABELS, location, scale);
    let ts = |t: chrono::DateTime<chrono::Utc>| t.timestamp_millis() as f64 / 1000.0;
    gauge!(LIVE_VERIFIED_AT, at(location, [])).set(v.map_or(f64::NAN, |v| ts(v.verified_at)));
    gauge!(LIVE_OBSERVED_AT, at(location, []))
        .set(v.and_then(|v| v.as_of).map_or(f64::NAN, |t| ts(t.and_utc())));
    let r = live.and_then(|l| l.retrain.as_ref());
    gauge!(RETRAIN_REQUESTED_AT, at(location, [])).set(r.map_or(f64::NAN, |r| ts(r.trigger.requested_at)));
    let refused = r.is_some_and(|r| r.status == crate::records::retrain::RetrainStatus::Refused);
    gauge!(RETRAIN_REFUSED, at(location, [])).set(if refused { 1.0 } else { 0.0 });
}

pub fn set_observations_age(location: Option<&str>, seconds: f64) {
    gauge!(OBSERVATIONS_AGE, at(location, [])).set(seconds);
}

/// What answered a request, for its EMF line: the model version, and the location
/// when the service answers for several.
#[derive(Debug, Default, Clone, Copy)]
pub struct AnsweredBy<'a> {
    pub version: Option<&'a str>,
    pub location: Option<&'a str>,
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
    by: AnsweredBy<'_>,
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
    if let Some(v) = by.version {
        line["model_version"] = json!(v);
    }
    // A property, not a dimension: a thousand locations would be a thousand metrics.
    if let Some(l) = by.location {
        line["location"] = json!(l);
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
            AnsweredBy {
                version: Some("3"),
                location: Some("kodiak"),
            },
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
        assert_eq!(v["location"], "kodiak");
    }
}

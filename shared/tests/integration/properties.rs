//! Property tests: arbitrary input never panics the parsers that take outside data,
//! and every rejection is one of the documented errors.

use proptest::prelude::*;
use rps_core::bundle::{BUNDLE_FORMAT_VERSION, ModelBundle, ModelError};
use rps_core::config::Config;
use rps_core::observations::RawSeries;
use rps_core::serve::request::parse_observations;
use rps_core::validate::checks::check;
use serde_json::{Value, json};

/// The request parser's documented codes, with their statuses.
const DOCUMENTED: &[(&str, u16)] = &[
    ("invalid_json", 400),
    ("invalid_shape", 400),
    ("invalid_type", 400),
    ("missing_variable", 400),
    ("invalid_time", 400),
    ("null_value", 422),
    ("implausible_value", 422),
    ("not_increasing", 422),
    ("not_hourly", 422),
    ("too_few_observations", 422),
    ("too_many_observations", 422),
    ("invalid_observations", 422),
];

const VARIABLES: [&str; 8] = [
    "temperature_2m",
    "relative_humidity_2m",
    "dew_point_2m",
    "surface_pressure",
    "wind_speed_10m",
    "wind_direction_10m",
    "cloud_cover",
    "shortwave_radiation",
];

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A time string: mostly well-formed, in and out of the accepted years, or garbage.
fn any_time() -> impl Strategy<Value = String> {
    prop_oneof![
        (1850i32..2300, 1u32..13, 1u32..29, 0u32..24)
            .prop_map(|(y, m, d, h)| format!("{y:04}-{m:02}-{d:02}T{h:02}:00")),
        (-262143i64..262143, 1u32..13).prop_map(|(y, m)| format!("{y:+}-{m:02}-01T00:00")),
        ".{0,20}",
    ]
}

/// A request shaped like a real one, with every field free to be wrong.
fn predict_request() -> impl Strategy<Value = Value> {
    let value = prop_oneof![
        4 => (-100.0f64..2000.0).prop_map(|f| json!(f)),
        1 => any_json(),
    ];
    let obs = (any_time(), prop::collection::vec(value, 8)).prop_map(|(t, vals)| {
        let mut o = serde_json::Map::new();
        o.insert("time".into(), json!(t));
        for (k, v) in VARIABLES.iter().zip(vals) {
            o.insert((*k).into(), v);
        }
        Value::Object(o)
    });
    prop::collection::vec(obs, 0..40).prop_map(|o| json!({ "observations": o }))
}

/// 25 consecutive, plausible hours from a start anywhere chrono can represent.
fn whole_window() -> impl Strategy<Value = Value> {
    (
        prop_oneof![-262_000i32..262_000, 1900i32..2201],
        0u32..365,
        -30.0f64..40.0,
    )
        .prop_map(|(year, day, temp)| {
            let start = chrono::NaiveDate::from_yo_opt(year, day + 1)
                .unwrap_or_else(|| chrono::NaiveDate::from_yo_opt(2023, 1).unwrap())
                .and_hms_opt(0, 0, 0)
                .unwrap();
            let obs: Vec<Value> = (0..25)
                .map(|h| {
                    let t = start + chrono::Duration::hours(h);
                    json!({
                        "time": t.format("%Y-%m-%dT%H:%M").to_string(),
                        "temperature_2m": temp, "relative_humidity_2m": 80.0, "dew_point_2m": temp - 2.0,
                        "surface_pressure": 1010.0, "wind_speed_10m": 10.0, "wind_direction_10m": 180.0,
                        "cloud_cover": 50.0, "shortwave_radiation": 0.0
                    })
                })
                .collect();
            json!({ "observations": obs })
        })
}

/// A small ridge bundle trained on the sample.
fn bundle() -> &'static ModelBundle {
    static B: std::sync::OnceLock<ModelBundle> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        use rps_core::dataset::Dataset;
        use rps_core::transform::regularise::regularise;
        let raw = RawSeries::parse(&testkit::sample_bytes()).unwrap();
        let (series, _) = regularise(&[raw], 3).unwrap();
        let set = Dataset::build(&series).unwrap().training_set().unwrap();
        let t = rps_core::train::select_and_fit(
            &set,
            &[rps_core::train::Candidate::Ridge { alpha: 1.0 }],
            0.15,
            0.15,
            1,
        )
        .unwrap();
        ModelBundle {
            format_version: BUNDLE_FORMAT_VERSION,
            schema: rps_core::bundle::ModelSchema::current(),
            metadata: rps_core::bundle::ModelMetadata {
                model_name: "m".into(),
                algorithm: "ridge".into(),
                params: Default::default(),
                created_at: chrono::Utc::now(),
                data_version: String::new(),
                dataset_key: String::new(),
                git_commit: None,
                run_id: None,
                raw_snapshots: Vec::new(),
                training_window: t.split.refit_window,
                holdout_window: t.split.holdout_window,
                train_rows: t.split.refit_rows,
                holdout_rows: t.split.holdout_rows,
                metrics: Default::default(),
            },
            scaler: t.scaler,
            models: t.models,
            feature_stats: t.feature_stats,
            calibration: None,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn the_request_parser_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _turn = testkit::turn(module_path!());
        let _ = parse_observations(&body, 744);
    }

    #[test]
    fn every_request_rejection_is_documented_and_every_accepted_one_predicts(
        v in prop_oneof![predict_request(), any_json(), whole_window()],
    ) {
        let _turn = testkit::turn(module_path!());
        match parse_observations(&serde_json::to_vec(&v).unwrap(), 744) {
            Err(e) => {
                let status = e.status.as_u16();
                prop_assert!(
                    DOCUMENTED.contains(&(e.code, status)),
                    "undocumented rejection {} {}: {}", status, e.code, e.message
                );
            }
            // What the parser accepts, the model can answer (no panic on any time).
            Ok(series) => {
                if let Ok(row) = rps_core::features::serving_row(&series) {
                    prop_assert!(bundle().predict(&row).is_ok());
                }
            }
        }
    }

    #[test]
    fn open_meteo_responses_never_panic_the_parser_or_the_gate(
        times in prop::collection::vec(any_time(), 0..60),
        offset in prop_oneof![any::<i64>(), -50_000i64..50_000],
        values in prop::collection::vec(any_json(), 0..60),
        extra in any_json(),
    ) {
        let _turn = testkit::turn(module_path!());
        let mut hourly = serde_json::Map::new();
        hourly.insert("time".into(), json!(times));
        for (i, k) in VARIABLES.iter().enumerate() {
            let col: Vec<Value> = values.iter().skip(i).step_by(2).cloned().collect();
            hourly.insert((*k).into(), Value::Array(col));
        }
        let doc = json!({ "utc_offset_seconds": offset, "hourly": hourly, "extra": extra });
        let cfg = Config::from_lookup(|_| None).unwrap();
        if let Ok(raw) = RawSeries::parse(&serde_json::to_vec(&doc).unwrap()) {
            let report = check(&raw, &cfg.quality, Some(chrono::Utc::now()));
            prop_assert!(report.checks.iter().all(|c| !c.name.is_empty()));
            let _ = raw.utc_times();
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_open_meteo_parser(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let _turn = testkit::turn(module_path!());
        let _ = RawSeries::parse(&body);
    }

    #[test]
    fn the_bundle_loader_never_panics_and_names_what_is_wrong(
        body in prop::collection::vec(any::<u8>(), 0..2048),
        with_header in any::<bool>(),
    ) {
        let _turn = testkit::turn(module_path!());
        let mut bytes = Vec::new();
        if with_header {
            bytes.extend_from_slice(b"RPSB");
            bytes.extend_from_slice(&BUNDLE_FORMAT_VERSION.to_le_bytes());
        }
        bytes.extend_from_slice(&body);
        match ModelBundle::decode(&bytes) {
            Ok(_) => {}
            Err(ModelError::NotABundle | ModelError::FormatVersion { .. } | ModelError::Corrupt(_)) => {}
            Err(e) => prop_assert!(false, "an unexpected rejection: {e}"),
        }
    }
}

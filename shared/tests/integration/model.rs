//! Model checks: chronological splits without leakage, a trained model that beats the
//! baselines on the sample, and bundles that round-trip and refuse to be misread.

use std::sync::OnceLock;

use crate::helpers::*;
use chrono::{Duration, NaiveDateTime};
use rps_core::bundle::{
    BUNDLE_FORMAT_VERSION, ModelBundle, ModelError, ModelMetadata, ModelSchema, sha256_hex,
};
use rps_core::dataset::{Dataset, TrainingSet};
use rps_core::features::{HORIZONS, serving_row};
use rps_core::observations::{HourlySeries, TimeWindow};
use rps_core::scores::{metrics_map, required_metric_names};
use rps_core::train::{
    Candidate, Trained, chronological_split, default_candidates, intervals, refit_rows, select_and_fit,
};
use rps_core::transform::regularise::regularise;

fn sample_set() -> &'static TrainingSet {
    static SET: OnceLock<TrainingSet> = OnceLock::new();
    SET.get_or_init(|| {
        let (series, _) = regularise(&[raw(&sample_json())], 3).unwrap();
        Dataset::build(&series).unwrap().training_set().unwrap()
    })
}

fn trained() -> &'static Trained {
    static T: OnceLock<Trained> = OnceLock::new();
    T.get_or_init(|| select_and_fit(sample_set(), &default_candidates(), 0.15, 0.15, 42).unwrap())
}

const H: Duration = Duration::hours(6);

/// Every target time of every row in `earlier` comes before every row in `later`.
fn assert_no_overlap(times: &[NaiveDateTime], earlier: &[usize], later: &[usize]) {
    let last_target = earlier.iter().map(|&i| times[i] + H).max().unwrap();
    let first_later = later.iter().map(|&i| times[i]).min().unwrap();
    assert!(
        last_target < first_later,
        "leak: a target at {last_target} is not before the segment starting {first_later}"
    );
}

#[test]
fn splits_are_chronological_and_purged() {
    let _turn = testkit::turn(module_path!());
    let times = &sample_set().times;
    let split = chronological_split(times, 0.15, 0.15, H).unwrap();
    assert_no_overlap(times, &split.train, &split.validation);
    assert_no_overlap(times, &split.validation, &split.holdout);
    assert_no_overlap(times, &refit_rows(&split, times, H), &split.holdout);
    // The hold-out is the newest rows, and nothing is shuffled.
    assert_eq!(*split.holdout.last().unwrap(), times.len() - 1);
    for seg in [&split.train, &split.validation, &split.holdout] {
        assert!(seg.windows(2).all(|w| w[0] < w[1]));
    }
    let expected_hold = (times.len() as f64 * 0.15).ceil() as usize;
    assert_eq!(split.holdout.len(), expected_hold);
}

#[test]
fn the_no_overlap_check_catches_an_unpurged_split() {
    let _turn = testkit::turn(module_path!());
    // Guard against a vacuous test: without purging, consecutive segments do overlap.
    let times = &sample_set().times;
    let split = chronological_split(times, 0.15, 0.15, Duration::zero()).unwrap();
    let caught = std::panic::catch_unwind(|| assert_no_overlap(times, &split.validation, &split.holdout));
    assert!(caught.is_err());
}

#[test]
fn training_scores_every_horizon_and_beats_persistence_at_six_hours() {
    let _turn = testkit::turn(module_path!());
    let t = trained();
    let m = metrics_map(&t.holdout);
    for name in required_metric_names() {
        let v = m.get(&name).unwrap_or_else(|| panic!("{name} missing"));
        assert!(v.is_finite(), "{name} = {v}");
    }
    assert!(m["rmse_h6"] <= m["persistence_rmse_h6"], "{m:?}");
    assert!(m["rmse_h1"] < m["rmse_h6"], "errors grow with the horizon: {m:?}");
    assert_eq!(t.candidates.len(), default_candidates().len());
    // The chosen candidate has the lowest mean validation RMSE.
    let best = t
        .candidates
        .iter()
        .min_by(|a, b| a.mean_validation_rmse.total_cmp(&b.mean_validation_rmse))
        .unwrap();
    assert_eq!(best.candidate, t.chosen);
    assert_eq!(t.split.holdout_rows, t.holdout[0].rows);
}

#[test]
fn a_model_fitted_on_noise_does_not_beat_persistence() {
    let _turn = testkit::turn(module_path!());
    // The skill comparison is not rigged: a model trained on scrambled targets (the
    // hold-out left true) loses to persistence.
    let set = sample_set();
    let mut noisy = set.clone();
    let hold_start = chronological_split(&set.times, 0.15, 0.15, H).unwrap().holdout[0];
    for col in noisy.targets.iter_mut() {
        col[..hold_start].reverse();
    }
    let t = select_and_fit(&noisy, &[Candidate::Ridge { alpha: 1.0 }], 0.15, 0.15, 1).unwrap();
    let m = metrics_map(&t.holdout);
    assert!(m["rmse_h1"] > m["persistence_rmse_h1"], "{m:?}");
}

fn bundle() -> ModelBundle {
    let t = select_and_fit(
        sample_set(),
        &[
            Candidate::Ridge { alpha: 1.0 },
            Candidate::ExtraTrees {
                trees: 3,
                max_depth: 4,
                min_samples_leaf: 5,
            },
        ],
        0.15,
        0.15,
        7,
    )
    .unwrap();
    let w = TimeWindow {
        start: sample_set().times[0],
        end: sample_set().times[100],
    };
    ModelBundle {
        format_version: BUNDLE_FORMAT_VERSION,
        schema: ModelSchema::current(),
        metadata: ModelMetadata {
            model_name: "test".into(),
            algorithm: t.chosen.describe(),
            params: t.chosen.params(),
            created_at: chrono::Utc::now(),
            data_version: "0".repeat(32),
            dataset_key: "datasets/x/data.parquet".into(),
            git_commit: None,
            run_id: None,
            raw_snapshots: vec![],
            training_window: w,
            holdout_window: w,
            train_rows: 1,
            holdout_rows: 1,
            metrics: metrics_map(&t.holdout),
        },
        scaler: t.scaler,
        models: t.models,
        feature_stats: t.feature_stats,
        calibration: None,
    }
}

#[test]
fn bundles_round_trip_with_identical_predictions() {
    let _turn = testkit::turn(module_path!());
    let series = HourlySeries::from_raw(&raw(&sample_json())).unwrap();
    let row = serving_row(&series.tail(48)).unwrap();
    for candidate in [
        Candidate::Ridge { alpha: 1.0 },
        Candidate::RandomForest {
            trees: 3,
            max_depth: 4,
            min_samples_leaf: 5,
        },
        Candidate::ExtraTrees {
            trees: 3,
            max_depth: 4,
            min_samples_leaf: 5,
        },
    ] {
        let t = select_and_fit(sample_set(), std::slice::from_ref(&candidate), 0.15, 0.15, 7).unwrap();
        let mut b = bundle();
        b.models = t.models;
        b.scaler = t.scaler;
        let bytes = b.encode().unwrap();
        let back = ModelBundle::decode_verified(&bytes, &sha256_hex(&bytes)).unwrap();
        let (p1, p2) = (b.predict(&row).unwrap(), back.predict(&row).unwrap());
        assert_eq!(p1, p2, "{candidate:?}");
        assert_eq!(p1.len(), HORIZONS.len());
        assert!(
            p1.iter().all(|f| (-40.0..40.0).contains(&f.temperature_2m)),
            "{p1:?}"
        );
        assert_eq!(back.metadata, b.metadata);
        back.check_compatible().unwrap();
    }
}

#[test]
fn damaged_or_foreign_bundles_are_refused_clearly() {
    let _turn = testkit::turn(module_path!());
    let bytes = bundle().encode().unwrap();
    assert!(matches!(
        ModelBundle::decode(b"PK\x03\x04 zip file"),
        Err(ModelError::NotABundle)
    ));
    let mut newer = bytes.clone();
    newer[4..8].copy_from_slice(&(BUNDLE_FORMAT_VERSION + 1).to_le_bytes());
    let err = ModelBundle::decode(&newer).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the bundle has format version {}; this build reads versions 1 to {BUNDLE_FORMAT_VERSION}",
            BUNDLE_FORMAT_VERSION + 1
        )
    );
    assert!(matches!(
        ModelBundle::decode(&bytes[..bytes.len() / 2]),
        Err(ModelError::Corrupt(_))
    ));
    let err = ModelBundle::decode_verified(&bytes, &"0".repeat(64)).unwrap_err();
    assert!(matches!(err, ModelError::Checksum { .. }));
}

#[test]
fn a_bundle_with_other_features_is_incompatible() {
    let _turn = testkit::turn(module_path!());
    let mut b = bundle();
    b.schema.features[3] = "pressure_msl".into();
    let err = b.check_compatible().unwrap_err();
    assert!(err.to_string().contains("pressure_msl"), "{err}");
    let mut b = bundle();
    b.schema.input_hours = 48;
    assert!(
        b.check_compatible()
            .unwrap_err()
            .to_string()
            .contains("input_hours 48")
    );
}

/// The intervals a trained model carries hold their stated coverage on the hold-out it
/// never saw, at every horizon and level, on both shipped stations: the maritime
/// sample year and the continental TMY3 year, whose winter hold-out is wider than
/// anything an autumn slice alone would calibrate for.
#[test]
fn the_intervals_hold_their_coverage_on_both_stations_hold_out() {
    let _turn = testkit::turn(module_path!());
    let greensboro = {
        let path = testkit::workspace_root().join("data/sample/open-meteo-tmy3-greensboro-nc.json");
        let (series, _) = regularise(
            &[raw(
                &serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
            )],
            3,
        )
        .unwrap();
        Dataset::build(&series).unwrap().training_set().unwrap()
    };
    let greensboro_trained = select_and_fit(&greensboro, &default_candidates(), 0.15, 0.15, 42).unwrap();
    for (name, set, t) in [
        ("Sand Point", sample_set(), trained()),
        ("Greensboro", &greensboro, &greensboro_trained),
    ] {
        let c = intervals::calibrate(set, t, &[0.8, 0.95], 42)
            .unwrap()
            .expect("a station year calibrates");
        // The validation slice (15% of the year) sets the level.
        assert!(c.residuals > 1_200, "{name}: {} errors per horizon", c.residuals);
        let scores = intervals::holdout_scores(set, t, &c);
        assert_eq!(scores.len(), HORIZONS.len() * 2);
        let table = rps_core::scores::interval_markdown_table(&scores);
        for s in &scores {
            assert!(
                (s.coverage - s.level).abs() <= 0.05,
                "{name}: {} h at {}: coverage {:.3}\n{table}",
                s.horizon,
                s.level,
                s.coverage
            );
        }
        // Wider at longer horizons and at the higher level.
        let width = |h: u8, l: f64| {
            scores
                .iter()
                .find(|s| s.horizon == h && s.level == l)
                .unwrap()
                .width
        };
        assert!(
            width(6, 0.8) > width(1, 0.8) && width(6, 0.95) > width(6, 0.8),
            "{name}\n{table}"
        );
        println!("{name}\n{table}");
    }
}

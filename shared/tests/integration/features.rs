//! Code checks on the one feature definition: the batch path (the processed dataset)
//! and the single-row serving path give identical values, and no feature looks ahead.

use crate::helpers::*;
use chrono::Duration;
use rps_core::dataset::Dataset;
use rps_core::features::{FEATURES, FeatureError, INPUT_HOURS, Window, feature_names, serving_row};
use rps_core::observations::{HourlySeries, KEY_VARIABLES, Variable};
use rps_core::transform::regularise::regularise;

fn sample_series() -> HourlySeries {
    HourlySeries::from_raw(&raw(&sample_json())).unwrap()
}

#[test]
fn batch_rows_from_parquet_equal_single_serving_rows() {
    let _turn = testkit::turn(module_path!());
    let series = sample_series();
    let (regular, _) = regularise(&[raw(&sample_json())], 3).unwrap();
    assert_eq!(regular, series, "the sample is already regular");
    // The real batch path: dataset → parquet bytes → training rows.
    let ds = Dataset::from_parquet(&Dataset::build(&regular).unwrap().to_parquet().unwrap()).unwrap();
    let set = ds.training_set().unwrap();
    assert!(set.rows.len() > 8000);
    let index_of = |t| series.times().binary_search(&t).unwrap();
    let mut compared = 0;
    for (k, t) in set.times.iter().enumerate().step_by(97) {
        let i = index_of(*t);
        // The serving path sees only the trailing hours up to t.
        let window = series.between(*t - Duration::hours(INPUT_HOURS as i64 - 1), *t);
        let row = serving_row(&window).unwrap();
        assert_eq!(row.time, *t);
        for (j, f) in FEATURES.iter().enumerate() {
            assert_eq!(
                row.values[j].to_bits(),
                set.rows[k][j].to_bits(),
                "{} differs at {t}: serving {} vs batch {}",
                f.name(),
                row.values[j],
                set.rows[k][j]
            );
        }
        // And a longer window gives the same row.
        let longer = series.between(*t - Duration::hours(100), *t);
        assert_eq!(serving_row(&longer).unwrap(), row);
        assert!(i >= INPUT_HOURS - 1);
        compared += 1;
    }
    assert!(compared > 80);
}

#[test]
fn features_never_read_the_future() {
    let _turn = testkit::turn(module_path!());
    let series = sample_series();
    let w = Window::new(&series).unwrap();
    let i = 5000;
    let before = w.row_at(i).unwrap();
    // Scramble every hour after i.
    let mut cols: Vec<Vec<Option<f64>>> = series.columns().to_vec();
    for c in cols.iter_mut() {
        for v in c.iter_mut().skip(i + 1) {
            *v = v.map(|x| x * 3.0 + 17.0);
        }
    }
    let changed = HourlySeries::new(series.times().to_vec(), cols).unwrap();
    let after = Window::new(&changed).unwrap().row_at(i).unwrap();
    assert_eq!(before, after);
    // But the targets do change: they are the future.
    assert_ne!(w.targets_at(i), Window::new(&changed).unwrap().targets_at(i));
}

#[test]
fn serving_rows_need_enough_consecutive_complete_hours() {
    let _turn = testkit::turn(module_path!());
    let series = sample_series();
    let short = series.tail(INPUT_HOURS - 1);
    assert_eq!(
        serving_row(&short).unwrap_err(),
        FeatureError::NotEnoughHours {
            needed: INPUT_HOURS,
            got: INPUT_HOURS - 1
        }
    );
    assert_eq!(
        serving_row(&short).unwrap_err().to_string(),
        "25 trailing hourly observations are needed, got 24"
    );
    // A hole in the axis.
    let t = series.times();
    let mut times: Vec<_> = t[100..130].to_vec();
    times.remove(20);
    let cols = series
        .columns()
        .iter()
        .map(|c| {
            let mut c = c[100..130].to_vec();
            c.remove(20);
            c
        })
        .collect();
    let holed = HourlySeries::new(times, cols).unwrap();
    assert!(matches!(
        serving_row(&holed),
        Err(FeatureError::NotContiguous { .. })
    ));
    // A missing value the features need is named.
    let mut cols: Vec<Vec<Option<f64>>> = series.tail(30).columns().to_vec();
    let p = Variable::SurfacePressure.key_index().unwrap();
    cols[p][29 - 3] = None;
    let gappy = HourlySeries::new(series.tail(30).times().to_vec(), cols).unwrap();
    match serving_row(&gappy).unwrap_err() {
        FeatureError::Missing { variable, .. } => assert_eq!(variable, "surface_pressure"),
        e => panic!("unexpected {e}"),
    }
}

#[test]
fn the_feature_list_covers_every_key_variable() {
    let _turn = testkit::turn(module_path!());
    let names = feature_names().join(",");
    for v in KEY_VARIABLES {
        let used = FEATURES.iter().any(|f| f.inputs().contains(&v));
        assert!(used, "{} feeds no feature ({names})", v.name());
    }
}

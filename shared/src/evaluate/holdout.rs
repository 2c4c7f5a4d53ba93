//! The hold-out the gates score on: the chronological tail of a dataset that no scored
//! model trained on, and the windows of contiguous hours the latency and smoke gates
//! replay through the serving path.

use chrono::{Duration, NaiveDateTime};

use super::report::Holdout;
use crate::dataset::{Dataset, DatasetManifest, TrainingSet};
use crate::features::{HORIZONS, INPUT_HOURS};
use crate::observations::{HourlySeries, KEY_VARIABLES, TimeWindow, format_time};
use crate::stage::StageError;

/// A model's version and the last hour it trained on.
pub struct Trained<'a> {
    pub version: &'a str,
    pub training_end: NaiveDateTime,
}

/// The observed variables of every dataset row, as serving would see them.
pub fn observed_series(dataset: &Dataset, times: &[NaiveDateTime]) -> Result<HourlySeries, StageError> {
    let columns = KEY_VARIABLES
        .iter()
        .map(|v| dataset.observed(*v))
        .collect::<Result<Vec<_>, _>>()?;
    HourlySeries::new(times.to_vec(), columns)
        .map_err(|e| StageError::Internal(format!("the dataset's observations: {e}")))
}

/// The rows of the tail (`holdout_fraction` of the dataset) whose targets no model in
/// `models` trained on, with a description; fewer than `min_rows` is an error.
pub fn rows(
    set: &TrainingSet,
    manifest: &DatasetManifest,
    models: &[Trained<'_>],
    holdout_fraction: f64,
    min_rows: usize,
) -> Result<(Vec<usize>, Holdout), StageError> {
    let n = set.times.len();
    let tail_start = n - ((n as f64 * holdout_fraction).ceil() as usize).min(n);
    let max_h = Duration::hours(i64::from(*HORIZONS.iter().max().unwrap_or(&6)));
    // A row is unseen by a model when none of its target hours was a training target.
    let mut cutoff: Option<(NaiveDateTime, &str)> = None;
    for m in models {
        let end = m.training_end + max_h;
        if cutoff.is_none_or(|(c, _)| end > c) {
            cutoff = Some((end, m.version));
        }
    }
    let rows: Vec<usize> = (tail_start..n)
        .filter(|&i| cutoff.is_none_or(|(c, _)| set.times[i] > c))
        .collect();
    let tail = n - tail_start;
    let note = match cutoff {
        Some((c, version)) if rows.len() < tail => Some(format!(
            "Version {version} trained on data up to {}, so only the {} of {tail} tail rows after it are used.",
            format_time(c - max_h),
            rows.len()
        )),
        _ => None,
    };
    if rows.len() < min_rows {
        return Err(StageError::Input(format!(
            "data version {} leaves {} hold-out rows that neither model trained on (at least {min_rows} are needed); {}",
            manifest.data_version,
            rows.len(),
            note.as_deref()
                .unwrap_or("evaluate on a newer dataset with --data-version")
        )));
    }
    let window = TimeWindow {
        start: set.times[rows[0]],
        end: set.times[*rows.last().expect("not empty")],
    };
    let holdout = Holdout {
        data_version: manifest.data_version.clone(),
        dataset_window: manifest.window,
        window,
        rows: rows.len(),
        note,
    };
    Ok((rows, holdout))
}

/// Windows of `INPUT_HOURS` contiguous observations ending at hold-out rows, newest
/// first (at most 200).
pub fn serving_windows(series: &HourlySeries, times: &[NaiveDateTime], rows: &[usize]) -> Vec<HourlySeries> {
    let span = Duration::hours(INPUT_HOURS as i64 - 1);
    rows.iter()
        .rev()
        .filter_map(|&i| {
            let w = series.between(times[i] - span, times[i]);
            (w.len() == INPUT_HOURS && w.is_contiguous()).then_some(w)
        })
        .take(200)
        .collect()
}

//! Chronological splits: train, validation and hold-out in time order, with the rows
//! whose targets reach into the next segment purged, so no hour is a target on both
//! sides of a boundary.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use super::TrainError;

/// Row indices of the three chronological segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Split {
    pub train: Vec<usize>,
    pub validation: Vec<usize>,
    pub holdout: Vec<usize>,
}

/// Splits time-ordered rows; `horizon` is the longest target distance, used to purge
/// rows whose targets would reach the following segment.
pub fn chronological_split(
    times: &[NaiveDateTime],
    validation_fraction: f64,
    holdout_fraction: f64,
    horizon: Duration,
) -> Result<Split, TrainError> {
    let n = times.len();
    if times.windows(2).any(|w| w[1] <= w[0]) {
        return Err(TrainError::TooFewRows(
            "rows are not in strictly increasing time order".into(),
        ));
    }
    let n_hold = ((n as f64) * holdout_fraction).ceil() as usize;
    let n_val = ((n as f64) * validation_fraction).ceil() as usize;
    if n < n_hold + n_val + 50 || n_hold < 10 || n_val < 10 {
        return Err(TrainError::TooFewRows(format!(
            "{n} rows cannot make a training set of at least 50 rows, a validation set and a hold-out of at least 10 each"
        )));
    }
    let hold_start = n - n_hold;
    let val_start = hold_start - n_val;
    // A row stays only if every target time (up to t + horizon) is before `next`.
    let purge = |range: std::ops::Range<usize>, next: NaiveDateTime| -> Vec<usize> {
        range.filter(|&i| times[i] + horizon < next).collect()
    };
    let train = purge(0..val_start, times[val_start]);
    let validation = purge(val_start..hold_start, times[hold_start]);
    let holdout: Vec<usize> = (hold_start..n).collect();
    if train.len() < 50 || validation.len() < 10 {
        return Err(TrainError::TooFewRows(format!(
            "after purging, {} training and {} validation rows remain",
            train.len(),
            validation.len()
        )));
    }
    Ok(Split {
        train,
        validation,
        holdout,
    })
}

/// The rows the final model is fitted on: train and validation, purged against the
/// hold-out.
pub fn refit_rows(split: &Split, times: &[NaiveDateTime], horizon: Duration) -> Vec<usize> {
    let hold_start = times[split.holdout[0]];
    split
        .train
        .iter()
        .chain(&split.validation)
        .copied()
        .filter(|&i| times[i] + horizon < hold_start)
        .collect()
}

//! The forecasts' prediction intervals: conformal per horizon, calibrated on errors
//! the chosen model made on rows it was not fitted on.
//!
//! The rows the final model is fitted on are cut into [`FOLDS`] consecutive blocks;
//! for each block the chosen candidate is fitted on the other blocks (purged of the
//! rows within a target distance and an input window of the block, so no hour is seen
//! on both sides) and forecasts the block. Those out-of-fold errors span every season
//! of the training range, which a single validation slice does not. They are kept
//! apart by the half of the year of their issue hour ([`YearHalf`], Mondrian): a
//! continental station's cold-season errors are wider than its summer's, and pooled
//! over the year its 80% interval covered 74–76% of a winter hold-out. Per half,
//! horizon and level, the half-width is the ⌈(n+1)·level⌉-th smallest absolute error.
//!
//! What this promises: the errors come from models fitted on two thirds of the rows
//! and are applied to the model refitted on all of them (closer to cross-conformal than
//! to split conformal), and weather errors depend on each other in time and drift with
//! the seasons, so there is no finite-sample guarantee; the intervals are a calibrated
//! estimate, usually slightly wide, that the hold-out checks and live verification
//! watches.

use chrono::Duration;
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::fit::{Trained, fit_all, gather};
use crate::bundle::{Calibration, Interval, Standardizer, YearHalf};
use crate::dataset::TrainingSet;
use crate::features::{HORIZONS, INPUT_HOURS};

/// Consecutive blocks the out-of-fold errors come from.
pub const FOLDS: usize = 3;

/// Fewer out-of-fold errors than this per horizon calibrate nothing.
const MIN_RESIDUALS: usize = 40;

/// How one interval level did on the hold-out at one horizon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntervalScore {
    pub horizon: u8,
    pub level: f64,
    /// The share of hold-out hours inside the interval.
    pub coverage: f64,
    /// The interval's mean width (°C).
    pub width: f64,
    /// The mean interval (Winkler) score: the width, plus 2/(1−level) times the
    /// distance by which the truth fell outside. Lower is better.
    pub winkler: f64,
}

/// The interval (Winkler) score of `[lower, upper]` at `level` for the truth `y`.
pub fn winkler(lower: f64, upper: f64, level: f64, y: f64) -> f64 {
    let alpha = 1.0 - level;
    let below = if y < lower { lower - y } else { 0.0 };
    let above = if y > upper { y - upper } else { 0.0 };
    (upper - lower) + 2.0 / alpha * (below + above)
}

/// The split-conformal half-width at `level` from absolute errors sorted ascending:
/// the ⌈(n+1)·level⌉-th smallest (the largest when there are too few for that).
pub fn conformal_half_width(sorted_abs: &[f64], level: f64) -> f64 {
    let n = sorted_abs.len();
    let k = ((n as f64 + 1.0) * level).ceil() as usize;
    match n {
        0 => f64::INFINITY,
        _ => sorted_abs[k.clamp(1, n) - 1],
    }
}

/// The fewest errors whose ⌈(n+1)·level⌉-th smallest exists: below it, the interval
/// would cover less than `level`.
pub fn errors_needed(level: f64) -> usize {
    // n ≥ level / (1 − level); the tolerance keeps 0.8's 4.000000000000001 at 4.
    ((level / (1.0 - level)) - 1e-9).ceil().max(1.0) as usize
}

/// The calibration of `trained`'s intervals at `levels`; `None` when the data is too
/// short for out-of-fold errors (the model then serves point forecasts only).
pub fn calibrate(
    set: &TrainingSet,
    trained: &Trained,
    levels: &[f64],
    seed: u64,
) -> Result<Option<Calibration>, TrainError> {
    let rows = &trained.rows.refit;
    let longest = i64::from(*HORIZONS.iter().max().unwrap_or(&1));
    let gap = Duration::hours(longest + INPUT_HOURS as i64);
    // Per half of the year (of the issue hour), per horizon.
    let mut errors: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); HORIZONS.len()]; YearHalf::ALL.len()];
    let block = rows.len().div_ceil(FOLDS).max(1);
    for held in rows.chunks(block) {
        let (first, last) = (set.times[held[0]], set.times[held[held.len() - 1]]);
        let fit: Vec<usize> = rows
            .iter()
            .copied()
            .filter(|&i| set.times[i] + gap < first || set.times[i] > last + gap)
            .collect();
        if fit.len() < 50 {
            continue;
        }
        let fit_rows: Vec<&[f64]> = fit.iter().map(|&i| set.rows[i].as_slice()).collect();
        let scaler = Standardizer::fit(&fit_rows);
        let models = fit_all(set, &scaler, &fit, std::slice::from_ref(&trained.chosen), seed);
        let raw = gather(&set.rows, held);
        for (h, model) in models.into_iter().enumerate() {
            let predicted = model?.predict(&scaler, &raw);
            for (&i, p) in held.iter().zip(predicted) {
                let e = (set.targets[h][i] - p).abs();
                if e.is_finite() {
                    errors[YearHalf::of(set.times[i]) as usize][h].push(e);
                }
            }
        }
    }
    // A half with too few errors (a training range within one season) takes the
    // errors of the whole range.
    let pooled: Vec<Vec<f64>> = (0..HORIZONS.len())
        .map(|h| errors.iter().flat_map(|half| half[h].iter().copied()).collect())
        .collect();
    // Enough errors for the highest level's order statistic to exist, and never fewer
    // than MIN_RESIDUALS.
    let needed = levels
        .iter()
        .map(|&l| errors_needed(l))
        .max()
        .unwrap_or(0)
        .max(MIN_RESIDUALS);
    if pooled.iter().map(Vec::len).min().unwrap_or(0) < needed {
        return Ok(None);
    }
    let mut residuals = usize::MAX;
    let half_widths = errors
        .into_iter()
        .map(|half| {
            half.into_iter()
                .zip(&pooled)
                .map(|(own, all)| {
                    let mut e = if own.len() >= MIN_RESIDUALS {
                        own
                    } else {
                        all.clone()
                    };
                    residuals = residuals.min(e.len());
                    e.sort_by(f64::total_cmp);
                    levels.iter().map(|&l| conformal_half_width(&e, l)).collect()
                })
                .collect()
        })
        .collect();
    Ok(Some(Calibration {
        method: format!(
            "split conformal on out-of-fold errors ({FOLDS} consecutive folds), per half of the year"
        ),
        levels: levels.to_vec(),
        half_widths,
        residuals,
    }))
}

/// Each level's coverage, width and interval score on the hold-out, per horizon.
pub fn holdout_scores(set: &TrainingSet, trained: &Trained, calibration: &Calibration) -> Vec<IntervalScore> {
    let raw = gather(&set.rows, &trained.rows.holdout);
    let mut out = Vec::new();
    for (k, model) in trained.models.iter().enumerate() {
        let predicted = model.predict(&trained.scaler, &raw);
        let truth = gather(&set.targets[k], &trained.rows.holdout);
        let issued = gather(&set.times, &trained.rows.holdout);
        // Each hour's intervals once (as serving makes them), then each level's figures.
        let hours: Vec<(f64, Vec<Interval>)> = truth
            .iter()
            .zip(&predicted)
            .zip(&issued)
            .filter(|((y, _), _)| y.is_finite())
            .map(|((y, p), t)| (*y, calibration.intervals(k, *t, *p)))
            .collect();
        for (j, &level) in calibration.levels.iter().enumerate() {
            let at: Vec<(f64, Interval)> = hours
                .iter()
                .filter_map(|(y, i)| i.get(j).map(|i| (*y, *i)))
                .collect();
            let n = at.len() as f64;
            let inside = at.iter().filter(|(y, i)| i.lower <= *y && *y <= i.upper).count();
            out.push(IntervalScore {
                horizon: model.horizon,
                level,
                coverage: inside as f64 / n,
                width: at.iter().map(|(_, i)| i.upper - i.lower).sum::<f64>() / n,
                winkler: at
                    .iter()
                    .map(|(y, i)| winkler(i.lower, i.upper, level, *y))
                    .sum::<f64>()
                    / n,
            });
        }
    }
    out
}

/// The hold-out's interval scores as a Markdown table.
pub fn markdown_table(scores: &[IntervalScore]) -> String {
    let mut s =
        String::from("| horizon | level | coverage | width (°C) | interval score |\n|---|---|---|---|---|\n");
    for x in scores {
        s.push_str(&format!(
            "| {} h | {:.0}% | {:.1}% | {:.2} | {:.3} |\n",
            x.horizon,
            x.level * 100.0,
            x.coverage * 100.0,
            x.width,
            x.winkler
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_half_width_is_the_conformal_order_statistic() {
        let e: Vec<f64> = (1..=99).map(f64::from).collect();
        // n = 99: ⌈100 · 0.8⌉ = 80th smallest, ⌈100 · 0.95⌉ = 95th.
        assert_eq!(conformal_half_width(&e, 0.8), 80.0);
        assert_eq!(conformal_half_width(&e, 0.95), 95.0);
        // Too few errors for the level: the largest (calibrate asks for enough).
        assert_eq!(conformal_half_width(&[1.0, 2.0], 0.95), 2.0);
        assert_eq!(conformal_half_width(&[], 0.8), f64::INFINITY);
        assert_eq!(errors_needed(0.8), 4);
        assert_eq!(errors_needed(0.95), 19);
    }

    #[test]
    fn the_interval_score_is_the_width_plus_the_scaled_miss() {
        assert_eq!(winkler(1.0, 3.0, 0.8, 2.0), 2.0);
        // 0.5 below at the 80% level: 2 + (2 / 0.2) · 0.5.
        assert!((winkler(1.0, 3.0, 0.8, 0.5) - 7.0).abs() < 1e-12);
        assert!((winkler(1.0, 3.0, 0.8, 4.0) - 12.0).abs() < 1e-12);
    }
}

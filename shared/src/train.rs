//! Training: one model per horizon (direct strategy), chosen by time-ordered
//! validation, refitted, and scored on a chronological hold-out it never saw.
//!
//! The rows are split by time into train | validation | hold-out. Rows whose targets
//! reach into the next segment are purged, so no hour is a target on both sides of a
//! boundary. Candidates are fitted on train and compared on validation (mean RMSE over
//! the horizons); the winner is refitted on train + validation and scored on the
//! hold-out against the persistence and seasonal-naive baselines.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use smartcore::ensemble::extra_trees_regressor::{ExtraTreesRegressor, ExtraTreesRegressorParameters};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{RidgeRegression, RidgeRegressionParameters};

use crate::evaluate::{HorizonScore, rmse};
use crate::features::{HORIZONS, feature_names};
use crate::model::{
    FeatureStats, Histogram, HorizonModel, Node, Regressor, Standardizer, TargetTransform, TimeWindow, Tree,
};

type Matrix = DenseMatrix<f64>;

/// Every regressor learns the change from the current temperature.
pub const TARGET_TRANSFORM: TargetTransform = TargetTransform::ChangeFromCurrent;
use crate::profile::quantile;
use crate::transform::TrainingSet;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("not enough rows: {0}")]
    TooFewRows(String),
    #[error("fitting {candidate} for the {horizon} h horizon failed: {message}")]
    Fit {
        candidate: String,
        horizon: u8,
        message: String,
    },
}

/// A model family with its hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algorithm", rename_all = "snake_case")]
pub enum Candidate {
    Ridge {
        alpha: f64,
    },
    RandomForest {
        trees: usize,
        max_depth: u16,
        min_samples_leaf: usize,
    },
    /// Extremely randomised trees: random split thresholds, no bootstrap.
    ExtraTrees {
        trees: usize,
        max_depth: u16,
        min_samples_leaf: usize,
    },
}

/// The candidates tried by default: ridge at two strengths and two tree ensembles,
/// sized to train a station-year in about two seconds on two cores.
pub fn default_candidates() -> Vec<Candidate> {
    vec![
        Candidate::Ridge { alpha: 1.0 },
        Candidate::Ridge { alpha: 100.0 },
        Candidate::RandomForest {
            trees: 24,
            max_depth: 10,
            min_samples_leaf: 5,
        },
        Candidate::ExtraTrees {
            trees: 24,
            max_depth: 12,
            min_samples_leaf: 5,
        },
    ]
}

impl Candidate {
    pub fn describe(&self) -> String {
        match self {
            Candidate::Ridge { alpha } => format!("ridge(alpha={alpha})"),
            Candidate::RandomForest {
                trees,
                max_depth,
                min_samples_leaf,
            } => format!(
                "random_forest(trees={trees}, max_depth={max_depth}, min_samples_leaf={min_samples_leaf})"
            ),
            Candidate::ExtraTrees {
                trees,
                max_depth,
                min_samples_leaf,
            } => format!(
                "extra_trees(trees={trees}, max_depth={max_depth}, min_samples_leaf={min_samples_leaf})"
            ),
        }
    }

    /// Hyper-parameters as strings (MLflow params are strings).
    pub fn params(&self) -> BTreeMap<String, String> {
        let v = serde_json::to_value(self).unwrap_or_default();
        v.as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let s = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
                        (k.clone(), s)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fits one horizon on standardised rows.
    pub fn fit(&self, x: &[Vec<f64>], y: &[f64], seed: u64, horizon: u8) -> Result<Regressor, TrainError> {
        let err = |m: String| TrainError::Fit {
            candidate: self.describe(),
            horizon,
            message: m,
        };
        let matrix = to_matrix(x).map_err(err)?;
        let y = y.to_vec();
        match *self {
            Candidate::Ridge { alpha } => {
                // The features are centred, so fitting the centred target gives the
                // intercept as the target mean.
                let mean = y.iter().sum::<f64>() / y.len() as f64;
                let centred: Vec<f64> = y.iter().map(|v| v - mean).collect();
                let params = RidgeRegressionParameters::default()
                    .with_alpha(alpha)
                    .with_normalize(false);
                let m: RidgeRegression<f64, f64, Matrix, Vec<f64>> =
                    RidgeRegression::fit(&matrix, &centred, params).map_err(|e| err(e.to_string()))?;
                let coefficients = m.coefficients().iterator(0).copied().collect();
                Ok(Regressor::Linear {
                    coefficients,
                    intercept: mean + m.intercept(),
                })
            }
            Candidate::RandomForest {
                trees,
                max_depth,
                min_samples_leaf,
            } => {
                let p = x.first().map_or(1, |r| r.len());
                let params = RandomForestRegressorParameters::default()
                    .with_n_trees(trees)
                    .with_max_depth(max_depth)
                    .with_min_samples_leaf(min_samples_leaf)
                    .with_m(p.div_ceil(3))
                    .with_keep_samples(false)
                    .with_seed(seed);
                let m: RandomForestRegressor<f64, f64, Matrix, Vec<f64>> =
                    RandomForestRegressor::fit(&matrix, &y, params).map_err(|e| err(e.to_string()))?;
                flatten_forest(&m).map_err(err)
            }
            Candidate::ExtraTrees {
                trees,
                max_depth,
                min_samples_leaf,
            } => {
                let p = x.first().map_or(1, |r| r.len());
                let params = ExtraTreesRegressorParameters::default()
                    .with_n_trees(trees)
                    .with_max_depth(max_depth)
                    .with_min_samples_leaf(min_samples_leaf)
                    .with_m(p.div_ceil(3))
                    .with_keep_samples(false)
                    .with_seed(seed);
                let m: ExtraTreesRegressor<f64, f64, Matrix, Vec<f64>> =
                    ExtraTreesRegressor::fit(&matrix, &y, params).map_err(|e| err(e.to_string()))?;
                flatten_forest(&m).map_err(err)
            }
        }
    }
}

fn to_matrix(rows: &[Vec<f64>]) -> Result<Matrix, String> {
    let p = rows.first().map_or(0, |r| r.len());
    let values: Vec<f64> = rows.iter().flat_map(|r| r.iter().copied()).collect();
    DenseMatrix::new(rows.len(), p, values, false).map_err(|e| e.to_string())
}

/// smartcore's forests, as their serde form lays them out. Only the fields needed to
/// walk the trees are read; the conversion is checked against smartcore's own
/// predictions in the tests.
mod smartcore_forest {
    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Forest {
        pub forest_regressor: Option<Base>,
    }
    #[derive(Deserialize)]
    pub struct Base {
        pub trees: Option<Vec<Tree>>,
    }
    #[derive(Deserialize)]
    pub struct Tree {
        pub nodes: Vec<Node>,
    }
    #[derive(Deserialize)]
    pub struct Node {
        pub output: f64,
        pub split_feature: usize,
        pub split_value: Option<f64>,
        pub true_child: Option<usize>,
        pub false_child: Option<usize>,
    }
}

/// Converts a fitted smartcore forest into the bundle's flat trees.
fn flatten_forest<M: Serialize>(model: &M) -> Result<Regressor, String> {
    let value = serde_json::to_value(model).map_err(|e| e.to_string())?;
    let forest: smartcore_forest::Forest = serde_json::from_value(value).map_err(|e| e.to_string())?;
    let trees = forest
        .forest_regressor
        .and_then(|b| b.trees)
        .ok_or("the forest has no trees")?;
    let trees = trees
        .into_iter()
        .map(|t| {
            let nodes = t
                .nodes
                .into_iter()
                .map(|n| match (n.true_child, n.false_child, n.split_value) {
                    (Some(l), Some(r), Some(threshold)) => Node::Split {
                        feature: n.split_feature as u32,
                        threshold,
                        left: l as u32,
                        right: r as u32,
                    },
                    _ => Node::Leaf { value: n.output },
                })
                .collect();
            Tree { nodes }
        })
        .collect();
    Ok(Regressor::Forest { trees })
}

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

/// Runs `f` over `items` on every core, keeping the order. Threads take the next
/// item as they free up, so a mix of quick and slow jobs still balances.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(item);
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|r| r.expect("every item was processed"))
        .collect()
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateScore {
    pub candidate: Candidate,
    pub description: String,
    /// Validation RMSE per horizon.
    pub validation_rmse: Vec<f64>,
    pub mean_validation_rmse: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitSummary {
    pub train_rows: usize,
    pub validation_rows: usize,
    pub refit_rows: usize,
    pub holdout_rows: usize,
    pub train_window: TimeWindow,
    pub validation_window: TimeWindow,
    pub refit_window: TimeWindow,
    pub holdout_window: TimeWindow,
}

/// What training produced, ready to be bundled.
pub struct Trained {
    pub chosen: Candidate,
    pub candidates: Vec<CandidateScore>,
    pub scaler: Standardizer,
    pub models: Vec<HorizonModel>,
    pub holdout: Vec<HorizonScore>,
    pub feature_stats: Vec<FeatureStats>,
    pub split: SplitSummary,
}

fn window(times: &[NaiveDateTime], idx: &[usize]) -> TimeWindow {
    TimeWindow {
        start: times[idx[0]],
        end: times[idx[idx.len() - 1]],
    }
}

fn gather<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i].clone()).collect()
}

/// Fits every candidate for every horizon on `fit_idx`; returns models per horizon.
fn fit_all(
    set: &TrainingSet,
    scaler: &Standardizer,
    fit_idx: &[usize],
    candidates: &[Candidate],
    seed: u64,
) -> Vec<Result<HorizonModel, TrainError>> {
    let x: Vec<Vec<f64>> = fit_idx.iter().map(|&i| scaler.apply(&set.rows[i])).collect();
    let jobs: Vec<(usize, usize)> = (0..candidates.len())
        .flat_map(|c| (0..HORIZONS.len()).map(move |h| (c, h)))
        .collect();
    par_map(&jobs, |&(c, h)| {
        let y: Vec<f64> = fit_idx
            .iter()
            .map(|&i| TARGET_TRANSFORM.encode(set.targets[h][i], &set.rows[i]))
            .collect();
        candidates[c]
            .fit(&x, &y, seed, HORIZONS[h])
            .map(|regressor| HorizonModel {
                horizon: HORIZONS[h],
                target: TARGET_TRANSFORM,
                regressor,
            })
    })
}

pub fn train(
    set: &TrainingSet,
    candidates: &[Candidate],
    validation_fraction: f64,
    holdout_fraction: f64,
    seed: u64,
) -> Result<Trained, TrainError> {
    if candidates.is_empty() {
        return Err(TrainError::TooFewRows("no candidate models to try".into()));
    }
    let horizon = Duration::hours(*HORIZONS.iter().max().unwrap_or(&1) as i64);
    let split = chronological_split(&set.times, validation_fraction, holdout_fraction, horizon)?;
    let nh = HORIZONS.len();

    // Select on validation.
    let train_rows: Vec<&[f64]> = split.train.iter().map(|&i| set.rows[i].as_slice()).collect();
    let scaler = Standardizer::fit(&train_rows);
    let fitted = fit_all(set, &scaler, &split.train, candidates, seed);
    let val_raw = gather(&set.rows, &split.validation);
    let val_x: Vec<Vec<f64>> = val_raw.iter().map(|r| scaler.apply(r)).collect();
    let mut scores = Vec::with_capacity(candidates.len());
    for (c, cand) in candidates.iter().enumerate() {
        let mut per_h = Vec::with_capacity(nh);
        for h in 0..nh {
            let model = fitted[c * nh + h].as_ref().map_err(|e| TrainError::Fit {
                candidate: cand.describe(),
                horizon: HORIZONS[h],
                message: e.to_string(),
            })?;
            let pred = model.predict_standardised(&val_x, &val_raw);
            per_h.push(rmse(&gather(&set.targets[h], &split.validation), &pred));
        }
        let mean = per_h.iter().sum::<f64>() / nh as f64;
        scores.push(CandidateScore {
            candidate: cand.clone(),
            description: cand.describe(),
            validation_rmse: per_h,
            mean_validation_rmse: mean,
        });
    }
    let best = scores
        .iter()
        .min_by(|a, b| a.mean_validation_rmse.total_cmp(&b.mean_validation_rmse))
        .map(|s| s.candidate.clone())
        .expect("at least one candidate");

    // Refit the winner on train + validation, score on the hold-out.
    let refit = refit_rows(&split, &set.times, horizon);
    let refit_slices: Vec<&[f64]> = refit.iter().map(|&i| set.rows[i].as_slice()).collect();
    let scaler = Standardizer::fit(&refit_slices);
    let models: Vec<HorizonModel> = fit_all(set, &scaler, &refit, std::slice::from_ref(&best), seed)
        .into_iter()
        .collect::<Result<_, _>>()?;
    let hold_raw = gather(&set.rows, &split.holdout);
    let mut holdout = Vec::with_capacity(nh);
    for (h, m) in models.iter().enumerate() {
        let pred = m.predict(&scaler, &hold_raw);
        let truth = gather(&set.targets[h], &split.holdout);
        holdout.push(HorizonScore::new(m.horizon, &hold_raw, &truth, &pred));
    }

    let feature_stats = feature_stats(&refit_slices);
    let split_summary = SplitSummary {
        train_rows: split.train.len(),
        validation_rows: split.validation.len(),
        refit_rows: refit.len(),
        holdout_rows: split.holdout.len(),
        train_window: window(&set.times, &split.train),
        validation_window: window(&set.times, &split.validation),
        refit_window: window(&set.times, &refit),
        holdout_window: window(&set.times, &split.holdout),
    };
    Ok(Trained {
        chosen: best,
        candidates: scores,
        scaler,
        models,
        holdout,
        feature_stats,
        split: split_summary,
    })
}

/// Ranges, moments and histograms of each feature over the rows a model was fitted on.
pub fn feature_stats(rows: &[&[f64]]) -> Vec<FeatureStats> {
    feature_names()
        .into_iter()
        .enumerate()
        .map(|(j, name)| {
            let mut col: Vec<f64> = rows.iter().map(|r| r[j]).collect();
            let n = col.len() as f64;
            let mean = col.iter().sum::<f64>() / n;
            let std = (col.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n).sqrt();
            let histogram = Histogram::new(&col, 20);
            col.sort_by(f64::total_cmp);
            FeatureStats {
                name,
                min: col[0],
                max: col[col.len() - 1],
                mean,
                std,
                p005: quantile(&col, 0.005),
                p995: quantile(&col, 0.995),
                histogram,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_forests_predict_exactly_like_smartcore() {
        let rows: Vec<Vec<f64>> = (0..300)
            .map(|i| {
                let t = i as f64;
                vec![(t * 0.37).sin(), (t * 0.11).cos(), t % 7.0, (t * 1.3).sin() * 3.0]
            })
            .collect();
        let y: Vec<f64> = rows.iter().map(|r| r[0] * 2.0 + r[2] - r[3] * r[1]).collect();
        let x = to_matrix(&rows).unwrap();
        let params = RandomForestRegressorParameters::default()
            .with_n_trees(7)
            .with_max_depth(6)
            .with_min_samples_leaf(2)
            .with_seed(3);
        let rf: RandomForestRegressor<f64, f64, Matrix, Vec<f64>> =
            RandomForestRegressor::fit(&x, &y, params).unwrap();
        let flat = flatten_forest(&rf).unwrap();
        assert_eq!(flat.predict(&rows), rf.predict(&x).unwrap());
        let params = ExtraTreesRegressorParameters::default()
            .with_n_trees(5)
            .with_seed(9);
        let et: ExtraTreesRegressor<f64, f64, Matrix, Vec<f64>> =
            ExtraTreesRegressor::fit(&x, &y, params).unwrap();
        assert_eq!(
            flatten_forest(&et).unwrap().predict(&rows),
            et.predict(&x).unwrap()
        );
    }

    #[test]
    fn candidate_params_are_strings() {
        let p = Candidate::Ridge { alpha: 1.0 }.params();
        assert_eq!(p.get("algorithm").map(String::as_str), Some("ridge"));
        assert_eq!(p.get("alpha").map(String::as_str), Some("1.0"));
    }
}

//! Training: one model per horizon (direct strategy), chosen by time-ordered
//! validation, refitted, and scored on a chronological hold-out it never saw.
//!
//! The rows are split by time into train | validation | hold-out. Rows whose targets
//! reach into the next segment are purged, so no hour is a target on both sides of a
//! boundary. Candidates are fitted on train and compared on validation (mean RMSE over
//! the horizons); the winner is refitted on train + validation and scored on the
//! hold-out against the persistence and seasonal-naive baselines.

use chrono::{Duration, NaiveDateTime};
use serde::Serialize;

use super::TrainError;
use super::candidates::Candidate;
use super::split::{chronological_split, refit_rows};
use crate::bundle::{FeatureStats, Histogram, HorizonModel, Regressor, Standardizer, TargetTransform};
use crate::dataset::TrainingSet;
use crate::features::{HORIZONS, feature_names};
use crate::observations::TimeWindow;
use crate::scores::{HorizonScore, quantile, rmse};

/// Every regressor learns the change from the current temperature.
pub const TARGET_TRANSFORM: TargetTransform = TargetTransform::ChangeFromCurrent;

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
    /// The rows behind the summary.
    pub rows: TrainedRows,
}

/// Which rows of the training set the final model was fitted and scored on.
pub struct TrainedRows {
    pub refit: Vec<usize>,
    pub holdout: Vec<usize>,
    /// Per horizon: the validation rows and the chosen candidate's absolute error on
    /// each, fitted on the rows before them.
    pub validation_errors: Vec<Vec<(usize, f64)>>,
}

fn window(times: &[NaiveDateTime], idx: &[usize]) -> TimeWindow {
    TimeWindow {
        start: times[idx[0]],
        end: times[idx[idx.len() - 1]],
    }
}

pub(super) fn gather<T: Clone>(v: &[T], idx: &[usize]) -> Vec<T> {
    idx.iter().map(|&i| v[i].clone()).collect()
}

/// Fits every candidate for every horizon on `fit_idx`; returns models per horizon.
pub(super) fn fit_all(
    set: &TrainingSet,
    scaler: &Standardizer,
    fit_idx: &[usize],
    candidates: &[Candidate],
    seed: u64,
) -> Vec<Result<HorizonModel, TrainError>> {
    let nh = HORIZONS.len();
    // What is fitted ("units"): every distinct candidate and blend member. A blend is
    // the mean of its members' fits, so a member that also competes alone is fitted
    // once. Each candidate keeps the units it is made of; a blend of blends is refused.
    // A candidate equal to nothing (a NaN setting) is a unit of its own.
    let mut units: Vec<&Candidate> = Vec::new();
    fn unit_of<'a>(units: &mut Vec<&'a Candidate>, c: &'a Candidate) -> usize {
        units.iter().position(|&u| u == c).unwrap_or_else(|| {
            units.push(c);
            units.len() - 1
        })
    }
    let plan: Vec<Result<Vec<usize>, String>> = candidates
        .iter()
        .map(|c| match c {
            Candidate::Blend { members } if members.is_empty() => Err("a blend without members".to_owned()),
            Candidate::Blend { members } => members
                .iter()
                .map(|m| match m {
                    Candidate::Blend { .. } => Err("a blend cannot be a blend's member".to_owned()),
                    m => Ok(unit_of(&mut units, m)),
                })
                .collect(),
            c => Ok(vec![unit_of(&mut units, c)]),
        })
        .collect();
    let x: Vec<Vec<f64>> = fit_idx.iter().map(|&i| scaler.apply(&set.rows[i])).collect();
    let jobs: Vec<(usize, usize)> = (0..units.len())
        .flat_map(|u| (0..nh).map(move |h| (u, h)))
        .collect();
    let fitted = par_map(&jobs, |&(u, h)| {
        let y: Vec<f64> = fit_idx
            .iter()
            .map(|&i| TARGET_TRANSFORM.encode(set.targets[h][i], &set.rows[i]))
            .collect();
        units[u].fit(&x, &y, seed, HORIZONS[h])
    });
    let mut out = Vec::with_capacity(candidates.len() * nh);
    for (c, members) in candidates.iter().zip(&plan) {
        for (h, &horizon) in HORIZONS.iter().enumerate() {
            let regressor = match (c, members) {
                (_, Err(message)) => Err(TrainError::Fit {
                    candidate: c.describe(),
                    horizon,
                    message: message.clone(),
                }),
                (Candidate::Blend { .. }, Ok(members)) => members
                    .iter()
                    .map(|&u| {
                        fitted[u * nh + h].clone().and_then(|r| {
                            r.into_member().map_err(|message| TrainError::Fit {
                                candidate: c.describe(),
                                horizon,
                                message,
                            })
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|members| Regressor::Blend { members }),
                (_, Ok(members)) => fitted[members[0] * nh + h].clone(),
            };
            out.push(regressor.map(|regressor| HorizonModel {
                horizon,
                target: TARGET_TRANSFORM,
                regressor,
            }));
        }
    }
    out
}

/// Fits every candidate, picks the best on validation, refits it and scores it on
/// the hold-out.
pub fn select_and_fit(
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
    let best_index = scores
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.mean_validation_rmse.total_cmp(&b.1.mean_validation_rmse))
        .map(|(c, _)| c)
        .expect("at least one candidate");
    let best = scores[best_index].candidate.clone();
    // The winner's errors on the validation slice: a model fitted only on hours before
    // it, forecasting hours it never saw, as the final model will.
    let validation_errors: Vec<Vec<(usize, f64)>> = (0..nh)
        .map(|h| {
            let model = fitted[best_index * nh + h].as_ref().expect("checked above");
            let pred = model.predict_standardised(&val_x, &val_raw);
            split
                .validation
                .iter()
                .zip(pred)
                .map(|(&i, p)| (i, (set.targets[h][i] - p).abs()))
                .filter(|(_, e)| e.is_finite())
                .collect()
        })
        .collect();

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
        rows: TrainedRows {
            refit,
            holdout: split.holdout,
            validation_errors,
        },
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
    use crate::features::FEATURES;

    #[test]
    fn a_blend_is_the_mean_of_its_members_fits_and_shares_them() {
        let (n, p) = (400, FEATURES.len());
        let start = chrono::NaiveDate::from_ymd_opt(2023, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let rows: Vec<Vec<f64>> = (0..n)
            .map(|i| {
                (0..p)
                    .map(|j| ((i * (j + 1)) as f64 * 0.37).sin() + j as f64)
                    .collect()
            })
            .collect();
        let set = TrainingSet {
            times: (0..n).map(|i| start + Duration::hours(i as i64)).collect(),
            targets: HORIZONS
                .iter()
                .map(|&h| {
                    rows.iter()
                        .map(|r| r[0] * 2.0 + r[1] + f64::from(h) * 0.1)
                        .collect()
                })
                .collect(),
            rows,
        };
        let idx: Vec<usize> = (0..300).collect();
        let slices: Vec<&[f64]> = idx.iter().map(|&i| set.rows[i].as_slice()).collect();
        let scaler = Standardizer::fit(&slices);
        let ridge = Candidate::Ridge { alpha: 1.0 };
        let forest = Candidate::RandomForest {
            trees: 3,
            max_depth: 4,
            min_samples_leaf: 5,
        };
        let blend = Candidate::Blend {
            members: vec![ridge.clone(), forest.clone()],
        };
        let nh = HORIZONS.len();
        let fits = fit_all(&set, &scaler, &idx, &[ridge, blend.clone(), forest], 7);
        let regressor =
            |fits: &[Result<HorizonModel, TrainError>], i: usize| fits[i].as_ref().unwrap().regressor.clone();
        for h in 0..nh {
            assert_eq!(
                regressor(&fits, nh + h),
                Regressor::Blend {
                    members: vec![
                        regressor(&fits, h).into_member().unwrap(),
                        regressor(&fits, 2 * nh + h).into_member().unwrap(),
                    ],
                }
            );
        }
        // Alone, a blend fits its members itself, to the same models.
        let alone = fit_all(&set, &scaler, &idx, std::slice::from_ref(&blend), 7);
        assert_eq!(regressor(&alone, 0), regressor(&fits, nh));
        let empty = fit_all(&set, &scaler, &idx, &[Candidate::Blend { members: vec![] }], 7);
        let err = empty[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("a blend without members"), "{err}");
        let nested = Candidate::Blend {
            members: vec![blend.clone()],
        };
        let refused = fit_all(&set, &scaler, &idx, &[nested.clone(), blend], 7);
        let err = refused[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("a blend cannot be a blend's member"), "{err}");
        assert!(refused[nh].is_ok());
        let x: Vec<Vec<f64>> = idx.iter().map(|&i| scaler.apply(&set.rows[i])).collect();
        let err = nested
            .fit(&x, &set.targets[0][..300], 7, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("a blend cannot be a blend's member"), "{err}");
        // A setting that equals nothing (NaN) is fitted as its own unit, without a
        // panic, alone and in a blend.
        let odd = Candidate::Ridge { alpha: f64::NAN };
        let odd_blend = Candidate::Blend {
            members: vec![odd.clone(), forest_again()],
        };
        let fits = fit_all(&set, &scaler, &idx, &[odd, odd_blend], 7);
        assert_eq!(fits.len(), 2 * nh);
        for h in 0..nh {
            // The blend is made of its two members whatever the NaN ridge came out as.
            if let Ok(m) = &fits[nh + h] {
                assert!(
                    matches!(&m.regressor, Regressor::Blend { members } if members.len() == 2),
                    "{:?}",
                    m.regressor
                );
            }
        }
    }

    fn forest_again() -> Candidate {
        Candidate::RandomForest {
            trees: 3,
            max_depth: 4,
            min_samples_leaf: 5,
        }
    }
}

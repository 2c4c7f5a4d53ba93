//! The model families training tries, their hyper-parameters, and how a fitted
//! smartcore or forust-ml model becomes the bundle's flat, library-free form.

use std::collections::BTreeMap;

use forust_ml::GradientBooster;
use forust_ml::objective::ObjectiveType;
use serde::{Deserialize, Serialize};
use smartcore::ensemble::extra_trees_regressor::{ExtraTreesRegressor, ExtraTreesRegressorParameters};
use smartcore::ensemble::random_forest_regressor::{RandomForestRegressor, RandomForestRegressorParameters};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::ridge_regression::{RidgeRegression, RidgeRegressionParameters};

use super::TrainError;
use crate::bundle::{Node, Regressor, Tree};

pub(super) type Matrix = DenseMatrix<f64>;

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
    /// Gradient-boosted trees (forust-ml: XGBoost's second-order boosting on
    /// histograms).
    GradientBoosting {
        trees: usize,
        learning_rate: f64,
        max_depth: u16,
        /// The least hessian (with squared loss: rows) in a leaf.
        min_leaf_weight: f64,
    },
    /// The mean of its members' forecasts, each fitted on the same rows.
    Blend {
        members: Vec<Candidate>,
    },
}

/// The candidates tried by default: ridge at two strengths, two forests, and the mean
/// of the random forest and gradient-boosted trees (the forest's fit is shared). The
/// boosted trees alone are not a default: on the shipped Sand Point year they tie the
/// blend on validation and forecast its winter hold-out 3% worse at 6 h
/// (docs/benchmarks.md).
pub fn default_candidates() -> Vec<Candidate> {
    let forest = Candidate::RandomForest {
        trees: 24,
        max_depth: 10,
        min_samples_leaf: 5,
    };
    let boosted = Candidate::GradientBoosting {
        trees: 75,
        learning_rate: 0.1,
        max_depth: 4,
        min_leaf_weight: 100.0,
    };
    vec![
        Candidate::Ridge { alpha: 1.0 },
        Candidate::Ridge { alpha: 100.0 },
        forest.clone(),
        Candidate::ExtraTrees {
            trees: 24,
            max_depth: 12,
            min_samples_leaf: 5,
        },
        Candidate::Blend {
            members: vec![forest, boosted],
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
            Candidate::GradientBoosting {
                trees,
                learning_rate,
                max_depth,
                min_leaf_weight,
            } => format!(
                "gradient_boosting(trees={trees}, learning_rate={learning_rate}, max_depth={max_depth}, min_leaf_weight={min_leaf_weight})"
            ),
            Candidate::Blend { members } => format!(
                "blend({})",
                members
                    .iter()
                    .map(Candidate::describe)
                    .collect::<Vec<_>>()
                    .join(" + ")
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
        // smartcore's copy of the rows, made only for its models.
        let matrix = || to_matrix(x).map_err(err);
        let y = y.to_vec();
        // Both tree ensembles: the same shape, a third of the features per split, no
        // kept samples; only smartcore's types differ.
        macro_rules! fit_forest {
            ($model:ident, $params:ident, ($trees:expr, $depth:expr, $leaf:expr)) => {{
                let p = x.first().map_or(1, |r| r.len());
                let params = $params::default()
                    .with_n_trees($trees)
                    .with_max_depth($depth)
                    .with_min_samples_leaf($leaf)
                    .with_m(p.div_ceil(3))
                    .with_keep_samples(false)
                    .with_seed(seed);
                let m: $model<f64, f64, Matrix, Vec<f64>> =
                    $model::fit(&matrix()?, &y, params).map_err(|e| err(e.to_string()))?;
                flatten_forest(&m).map_err(err)
            }};
        }
        match *self {
            Candidate::Blend { ref members } => {
                if members.is_empty() {
                    return Err(err("a blend without members".into()));
                }
                let members = members
                    .iter()
                    .map(|m| m.fit(x, &y, seed, horizon)?.into_member().map_err(err))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Regressor::Blend { members })
            }
            Candidate::Ridge { alpha } => {
                // The features are centred, so fitting the centred target gives the
                // intercept as the target mean.
                let mean = y.iter().sum::<f64>() / y.len() as f64;
                let centred: Vec<f64> = y.iter().map(|v| v - mean).collect();
                let params = RidgeRegressionParameters::default()
                    .with_alpha(alpha)
                    .with_normalize(false);
                let m: RidgeRegression<f64, f64, Matrix, Vec<f64>> =
                    RidgeRegression::fit(&matrix()?, &centred, params).map_err(|e| err(e.to_string()))?;
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
            } => fit_forest!(
                RandomForestRegressor,
                RandomForestRegressorParameters,
                (trees, max_depth, min_samples_leaf)
            ),
            Candidate::ExtraTrees {
                trees,
                max_depth,
                min_samples_leaf,
            } => fit_forest!(
                ExtraTreesRegressor,
                ExtraTreesRegressorParameters,
                (trees, max_depth, min_samples_leaf)
            ),
            Candidate::GradientBoosting { .. } => {
                let booster = fit_boosted(self, x, &y, seed).map_err(err)?;
                flatten_boosted(&booster).map_err(err)
            }
        }
    }
}

/// The largest float below `x` (`f64::next_down`, stable only after this crate's MSRV).
fn just_below(x: f64) -> f64 {
    if x.is_nan() || x == f64::NEG_INFINITY {
        x
    } else if x == 0.0 {
        -f64::from_bits(1)
    } else if x > 0.0 {
        f64::from_bits(x.to_bits() - 1)
    } else {
        f64::from_bits(x.to_bits() + 1)
    }
}

/// Histogram bins per feature: 64 fits a station-year in two thirds of the time 256 takes,
/// with the same validation error to 0.1%.
const BOOSTING_BINS: u16 = 64;

/// Fits forust's booster on one thread (training already runs a job per core, and the
/// train Lambda has one vCPU). The rows hold no missing values, so no split learns
/// where a missing value goes.
fn fit_boosted(
    candidate: &Candidate,
    x: &[Vec<f64>],
    y: &[f64],
    seed: u64,
) -> Result<GradientBooster, String> {
    let Candidate::GradientBoosting {
        trees,
        learning_rate,
        max_depth,
        min_leaf_weight,
    } = *candidate
    else {
        unreachable!("fit_boosted is called for gradient boosting only")
    };
    // forust would learn where a missing value goes, which the bundle's trees cannot
    // follow: training rows have none, and this says so if one ever gets through.
    if x.iter().flatten().chain(y).any(|v| !v.is_finite()) {
        return Err("a training value is not finite".into());
    }
    let p = x.first().map_or(0, |r| r.len());
    // forust's matrix is column-major.
    let columns: Vec<f64> = (0..p).flat_map(|j| x.iter().map(move |r| r[j])).collect();
    let data = forust_ml::Matrix::new(&columns, x.len(), p);
    let mut booster = GradientBooster::default()
        .set_objective_type(ObjectiveType::SquaredLoss)
        .set_iterations(trees)
        .set_learning_rate(learning_rate as f32)
        .set_max_depth(usize::from(max_depth))
        .set_min_leaf_weight(min_leaf_weight as f32)
        .set_initialize_base_score(true)
        .set_nbins(BOOSTING_BINS)
        .set_parallel(false)
        .set_allow_missing_splits(false)
        .set_seed(seed);
    booster
        .fit_unweighted(&data, y, None)
        .map_err(|e| e.to_string())?;
    Ok(booster)
}

/// Converts a fitted booster into the bundle's flat trees: nodes renumbered so every
/// child comes after its parent, and forust's `x < split` becomes the bundle's
/// `x <= threshold` with the threshold just below the split.
fn flatten_boosted(booster: &GradientBooster) -> Result<Regressor, String> {
    let used = booster.prediction_iteration.unwrap_or(booster.trees.len());
    let trees = booster.trees[..used.min(booster.trees.len())]
        .iter()
        .map(|tree| {
            let mut nodes = Vec::with_capacity(tree.nodes.len());
            // Breadth first, by forust's node numbers: a node lands at `nodes.len()`, the
            // nodes queued before its children after it, then its two children.
            let mut queue = std::collections::VecDeque::from([0usize]);
            while let Some(num) = queue.pop_front() {
                let n = tree
                    .nodes
                    .get(num)
                    .ok_or_else(|| format!("boosted tree node {num} is missing"))?;
                if n.is_leaf {
                    nodes.push(Node::Leaf {
                        value: f64::from(n.weight_value),
                    });
                    continue;
                }
                let next = nodes.len() + queue.len() + 1;
                nodes.push(Node::Split {
                    feature: n.split_feature as u32,
                    threshold: just_below(n.split_value),
                    left: next as u32,
                    right: next as u32 + 1,
                });
                queue.push_back(n.left_child);
                queue.push_back(n.right_child);
            }
            Ok(Tree { nodes })
        })
        .collect::<Result<Vec<_>, String>>()?;
    if !booster.base_score.is_finite() {
        return Err(format!("the booster's base score is {}", booster.base_score));
    }
    Ok(Regressor::Boosted {
        base: booster.base_score,
        trees,
    })
}

pub(super) fn to_matrix(rows: &[Vec<f64>]) -> Result<Matrix, String> {
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
    fn flattened_boosted_trees_predict_like_forust() {
        let rows: Vec<Vec<f64>> = (0..400)
            .map(|i| {
                let t = i as f64;
                vec![(t * 0.37).sin(), (t * 0.11).cos(), t % 7.0, (t * 1.3).sin() * 3.0]
            })
            .collect();
        let y: Vec<f64> = rows.iter().map(|r| r[0] * 2.0 + r[2] - r[3] * r[1]).collect();
        let candidate = Candidate::GradientBoosting {
            trees: 50,
            learning_rate: 0.3,
            max_depth: 4,
            min_leaf_weight: 2.0,
        };
        let booster = fit_boosted(&candidate, &rows, &y, 1).unwrap();
        assert_eq!(booster.trees.len(), 50);
        let p = rows[0].len();
        let columns: Vec<f64> = (0..p).flat_map(|j| rows.iter().map(move |r| r[j])).collect();
        let theirs = booster.predict(&forust_ml::Matrix::new(&columns, rows.len(), p), false);
        // A split value is a row's value, so rows sit exactly on thresholds.
        let ours = flatten_boosted(&booster).unwrap().predict(&rows);
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-9, "{a} vs {b}");
        }
        let fit = candidate.fit(&rows, &y, 1, 1).unwrap();
        let rmse = (fit
            .predict(&rows)
            .iter()
            .zip(&y)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            / y.len() as f64)
            .sqrt();
        assert!(rmse < 0.5, "in-sample RMSE {rmse}");
        let mut holed = rows.clone();
        holed[7][2] = f64::NAN;
        let e = candidate.fit(&holed, &y, 1, 1).unwrap_err().to_string();
        assert!(e.contains("not finite"), "{e}");
    }

    #[test]
    fn just_below_is_the_next_float_down() {
        for x in [1.0, -1.0, 0.0, -0.0, 1e-300, -3.5, f64::MAX] {
            let b = just_below(x);
            assert!(b < x, "{b} < {x}");
            // Nothing lies between: the midpoint rounds to one of the two.
            let mid = b / 2.0 + x / 2.0;
            assert!(mid == b || mid == x, "{x}");
        }
    }

    #[test]
    fn candidate_params_are_strings() {
        let p = Candidate::Ridge { alpha: 1.0 }.params();
        assert_eq!(p.get("algorithm").map(String::as_str), Some("ridge"));
        assert_eq!(p.get("alpha").map(String::as_str), Some("1.0"));
    }
}

//! The model families training tries, their hyper-parameters, and how a fitted
//! smartcore model becomes the bundle's flat, library-free form.

use std::collections::BTreeMap;

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
                    $model::fit(&matrix, &y, params).map_err(|e| err(e.to_string()))?;
                flatten_forest(&m).map_err(err)
            }};
        }
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
        }
    }
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
    fn candidate_params_are_strings() {
        let p = Candidate::Ridge { alpha: 1.0 }.params();
        assert_eq!(p.get("algorithm").map(String::as_str), Some("ridge"));
        assert_eq!(p.get("alpha").map(String::as_str), Some("1.0"));
    }
}

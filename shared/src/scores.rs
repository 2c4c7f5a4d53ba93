//! Scores, shared by train, evaluate and the gates: error metrics, quantiles, the
//! baselines every model must beat, and the metrics table whose names (`rmse_h{H}`,
//! `persistence_rmse_h{H}`, …) MLflow and JSON summaries use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::features::{FEATURES, Feature, HORIZONS};
use crate::observations::TARGET;

pub fn rmse(y: &[f64], p: &[f64]) -> f64 {
    (y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum::<f64>() / y.len() as f64).sqrt()
}

pub fn mae(y: &[f64], p: &[f64]) -> f64 {
    y.iter().zip(p).map(|(a, b)| (a - b).abs()).sum::<f64>() / y.len() as f64
}

/// Coefficient of determination; 0 when the truth is constant.
pub fn r2(y: &[f64], p: &[f64]) -> f64 {
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    let ss_tot: f64 = y.iter().map(|a| (a - mean) * (a - mean)).sum();
    let ss_res: f64 = y.iter().zip(p).map(|(a, b)| (a - b) * (a - b)).sum();
    if ss_tot == 0.0 { 0.0 } else { 1.0 - ss_res / ss_tot }
}

/// Forecasts that need no model, read from a feature row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Baseline {
    /// The last observed value: y(t+h) = y(t).
    Persistence,
    /// The same hour the day before: y(t+h) = y(t+h-24).
    SeasonalNaive,
}

impl Baseline {
    pub const ALL: [Baseline; 2] = [Baseline::Persistence, Baseline::SeasonalNaive];

    pub fn name(self) -> &'static str {
        match self {
            Baseline::Persistence => "persistence",
            Baseline::SeasonalNaive => "seasonal_naive",
        }
    }

    /// The column of [`FEATURES`] holding this baseline's forecast for horizon `h`.
    pub fn feature_index(self, h: u8) -> usize {
        let wanted = match self {
            Baseline::Persistence => Feature::Value { var: TARGET },
            Baseline::SeasonalNaive => Feature::Lag {
                var: TARGET,
                hours: 24 - h as usize,
            },
        };
        FEATURES
            .iter()
            .position(|f| *f == wanted)
            .expect("every baseline input is a feature (tested)")
    }

    pub fn forecast(self, rows: &[Vec<f64>], h: u8) -> Vec<f64> {
        let j = self.feature_index(h);
        rows.iter().map(|r| r[j]).collect()
    }
}

/// Scores of one horizon on one set of rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HorizonScore {
    pub horizon: u8,
    pub rows: usize,
    pub rmse: f64,
    pub mae: f64,
    pub r2: f64,
    pub persistence_rmse: f64,
    pub persistence_mae: f64,
    pub seasonal_naive_rmse: f64,
    pub seasonal_naive_mae: f64,
}

impl HorizonScore {
    /// `truth` and `predicted` for horizon `h`; `rows` are the raw feature rows the
    /// baselines are read from.
    pub fn new(h: u8, rows: &[Vec<f64>], truth: &[f64], predicted: &[f64]) -> Self {
        let pers = Baseline::Persistence.forecast(rows, h);
        let seas = Baseline::SeasonalNaive.forecast(rows, h);
        Self {
            horizon: h,
            rows: truth.len(),
            rmse: rmse(truth, predicted),
            mae: mae(truth, predicted),
            r2: r2(truth, predicted),
            persistence_rmse: rmse(truth, &pers),
            persistence_mae: mae(truth, &pers),
            seasonal_naive_rmse: rmse(truth, &seas),
            seasonal_naive_mae: mae(truth, &seas),
        }
    }

    /// Share of the persistence error removed: 1 - rmse / persistence_rmse.
    pub fn skill(&self) -> f64 {
        self.skill_over(Baseline::Persistence)
    }

    /// Skill over the seasonal-naive forecast (the same hour the day before).
    pub fn seasonal_skill(&self) -> f64 {
        self.skill_over(Baseline::SeasonalNaive)
    }

    pub fn baseline_rmse(&self, b: Baseline) -> f64 {
        match b {
            Baseline::Persistence => self.persistence_rmse,
            Baseline::SeasonalNaive => self.seasonal_naive_rmse,
        }
    }

    /// 1 − RMSE / the baseline's RMSE: above 0 when the model beats the baseline.
    pub fn skill_over(&self, b: Baseline) -> f64 {
        1.0 - self.rmse / self.baseline_rmse(b)
    }
}

/// The metrics table by the contract's names.
pub fn metrics_map(scores: &[HorizonScore]) -> BTreeMap<String, f64> {
    let mut m = BTreeMap::new();
    for s in scores {
        let h = s.horizon;
        m.insert(format!("rmse_h{h}"), s.rmse);
        m.insert(format!("mae_h{h}"), s.mae);
        m.insert(format!("r2_h{h}"), s.r2);
        m.insert(format!("persistence_rmse_h{h}"), s.persistence_rmse);
        m.insert(format!("persistence_mae_h{h}"), s.persistence_mae);
        m.insert(format!("seasonal_naive_rmse_h{h}"), s.seasonal_naive_rmse);
        m.insert(format!("seasonal_naive_mae_h{h}"), s.seasonal_naive_mae);
        m.insert(format!("skill_h{h}"), s.skill());
    }
    m
}

/// Every metric name the table must hold.
pub fn required_metric_names() -> Vec<String> {
    let mut names = Vec::new();
    for h in HORIZONS {
        for m in ["rmse", "mae", "r2", "persistence_rmse", "seasonal_naive_rmse"] {
            names.push(format!("{m}_h{h}"));
        }
    }
    names
}

/// A Markdown table of the scores (for reports and pull-request comments).
pub fn markdown_table(scores: &[HorizonScore]) -> String {
    let mut s = String::from(
        "| horizon | rows | RMSE | MAE | R² | persistence RMSE | seasonal-naive RMSE | skill vs persistence |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for h in scores {
        s.push_str(&format!(
            "| {} h | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:+.1}% |\n",
            h.horizon,
            h.rows,
            h.rmse,
            h.mae,
            h.r2,
            h.persistence_rmse,
            h.seasonal_naive_rmse,
            h.skill() * 100.0
        ));
    }
    s
}

/// Linear-interpolated quantile of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_match_hand_computed_values() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let p = [1.0, 2.0, 3.0, 6.0];
        assert_eq!(rmse(&y, &p), 1.0);
        assert_eq!(mae(&y, &p), 0.5);
        assert!((r2(&y, &p) - (1.0 - 4.0 / 5.0)).abs() < 1e-12);
    }

    #[test]
    fn every_baseline_reads_an_existing_feature() {
        for b in Baseline::ALL {
            for h in HORIZONS {
                let _ = b.feature_index(h);
            }
        }
        assert_eq!(
            FEATURES[Baseline::SeasonalNaive.feature_index(1)],
            Feature::Lag {
                var: TARGET,
                hours: 23
            }
        );
    }
}

//! Scores, shared by train, evaluate and the gates: error metrics, quantiles, the
//! baselines every model must beat, and the metrics table whose names (`rmse_h{H}`,
//! `persistence_rmse_h{H}`, …) MLflow and JSON summaries use.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bundle::Interval;
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

/// How one interval level did at one horizon on a set of hours (a hold-out, or the
/// verified forecasts of a window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntervalScore {
    pub horizon: u8,
    pub level: f64,
    /// The share of hours whose truth fell inside the interval.
    pub coverage: f64,
    /// The interval's mean width (°C).
    pub width: f64,
    /// The mean interval (Winkler) score: the width, plus 2/(1−level) times the
    /// distance by which the truth fell outside. Lower is better.
    pub winkler: f64,
    /// How many hours it was measured on.
    #[serde(default)]
    pub hours: usize,
}

impl IntervalScore {
    /// `level` as a metric-name part: 80, 95, 97.5 (to a tenth of a percent).
    pub fn percent(&self) -> f64 {
        (self.level * 1000.0).round() / 10.0
    }
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

/// The interval (Winkler) score of `[lower, upper]` at `level` for the truth `y`.
pub fn winkler(lower: f64, upper: f64, level: f64, y: f64) -> f64 {
    let alpha = 1.0 - level;
    let below = if y < lower { lower - y } else { 0.0 };
    let above = if y > upper { y - upper } else { 0.0 };
    (upper - lower) + 2.0 / alpha * (below + above)
}

/// Each level's coverage, width and interval score at horizon `h`, from each hour's
/// truth and the intervals forecast for it (hours with a non-finite truth or without
/// that level are left out; a level no hour has is left out).
pub fn interval_scores(h: u8, levels: &[f64], hours: &[(f64, Vec<Interval>)]) -> Vec<IntervalScore> {
    levels
        .iter()
        .filter_map(|&level| {
            let at: Vec<(f64, &Interval)> = hours
                .iter()
                .filter(|(y, _)| y.is_finite())
                .filter_map(|(y, i)| i.iter().find(|i| i.level == level).map(|i| (*y, i)))
                .collect();
            let n = at.len() as f64;
            (!at.is_empty()).then(|| IntervalScore {
                horizon: h,
                level,
                coverage: at.iter().filter(|(y, i)| i.lower <= *y && *y <= i.upper).count() as f64 / n,
                width: at.iter().map(|(_, i)| i.upper - i.lower).sum::<f64>() / n,
                winkler: at
                    .iter()
                    .map(|(y, i)| winkler(i.lower, i.upper, level, *y))
                    .sum::<f64>()
                    / n,
                hours: at.len(),
            })
        })
        .collect()
}

/// Interval scores as a Markdown table.
pub fn interval_markdown_table(scores: &[IntervalScore]) -> String {
    let mut s = String::from(
        "| horizon | level | coverage | width (°C) | interval score |\n|---:|---:|---:|---:|---:|\n",
    );
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
    fn the_half_width_is_the_conformal_order_statistic() {
        let e: Vec<f64> = (1..=99).map(f64::from).collect();
        // n = 99: ⌈100 · 0.8⌉ = 80th smallest, ⌈100 · 0.95⌉ = 95th.
        assert_eq!(conformal_half_width(&e, 0.8), 80.0);
        assert_eq!(conformal_half_width(&e, 0.95), 95.0);
        // Too few errors for the level: the largest (callers ask for enough).
        assert_eq!(conformal_half_width(&[1.0, 2.0], 0.95), 2.0);
        assert_eq!(conformal_half_width(&[], 0.8), f64::INFINITY);
        assert_eq!(errors_needed(0.8), 4);
        assert_eq!(errors_needed(0.95), 19);
    }

    #[test]
    fn metrics_match_hand_computed_values() {
        let y = [1.0, 2.0, 3.0, 4.0];
        let p = [1.0, 2.0, 3.0, 6.0];
        assert_eq!(rmse(&y, &p), 1.0);
        assert_eq!(mae(&y, &p), 0.5);
        assert!((r2(&y, &p) - (1.0 - 4.0 / 5.0)).abs() < 1e-12);
    }

    #[test]
    fn the_interval_score_is_the_width_plus_the_scaled_miss() {
        assert_eq!(winkler(1.0, 3.0, 0.8, 2.0), 2.0);
        // 0.5 below at the 80% level: 2 + (2 / 0.2) · 0.5.
        assert!((winkler(1.0, 3.0, 0.8, 0.5) - 7.0).abs() < 1e-12);
        assert!((winkler(1.0, 3.0, 0.8, 4.0) - 12.0).abs() < 1e-12);
    }

    #[test]
    fn interval_scores_count_the_hours_inside_each_level() {
        let i = |level, lower, upper| Interval { level, lower, upper };
        let hours = vec![
            (2.0, vec![i(0.8, 1.0, 3.0), i(0.95, 0.0, 4.0)]),
            (3.5, vec![i(0.8, 1.0, 3.0), i(0.95, 0.0, 4.0)]),
            (f64::NAN, vec![i(0.8, 1.0, 3.0), i(0.95, 0.0, 4.0)]),
            // A record from before the intervals: scored for nothing here.
            (2.0, vec![]),
        ];
        let s = interval_scores(6, &[0.8, 0.95, 0.5], &hours);
        assert_eq!(s.len(), 2, "a level no hour has is left out");
        assert_eq!((s[0].coverage, s[0].hours, s[0].width), (0.5, 2, 2.0));
        // 3.5 is 0.5 above the 80% interval: 2 + (2 / 0.2) · 0.5 = 7.
        assert!((s[0].winkler - (2.0 + 7.0) / 2.0).abs() < 1e-12);
        assert_eq!((s[1].coverage, s[1].percent()), (1.0, 95.0));
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

//! The model bundle: everything serving needs, in one versioned, checksummed file.
//!
//! Layout on disk: the magic `RPSB`, the format version (u32, little endian), then the
//! [`ModelBundle`] encoded with bincode. The format version is read before the body,
//! so an old build refuses a newer bundle with a clear error instead of misreading it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::features::{FEATURES, FeatureRow, HORIZONS, INPUT_HOURS, feature_names};
use crate::observations::{KEY_VARIABLES, TARGET, TimeWindow};

/// The bundle layout this build writes: 2 added the intervals' calibration, 3 made it
/// normalised (a spread model per horizon), 4 added boosted trees as a regressor (read
/// as format 3 is: an older build refuses it instead of failing on the new variant).
pub const BUNDLE_FORMAT_VERSION: u32 = 4;

/// Every layout this build reads. A format 1 bundle (trained before intervals) is
/// served as it was: point forecasts, no intervals; a format 2 bundle with its
/// half-widths per half of the year.
pub const READABLE_BUNDLE_FORMATS: [u32; 4] = [1, 2, 3, BUNDLE_FORMAT_VERSION];

/// The largest bundle accepted (a station-year forest is under 1 MB).
pub const MAX_BUNDLE_BYTES: usize = 256 << 20;
const MAGIC: &[u8; 4] = b"RPSB";

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("not a model bundle (the file does not start with RPSB)")]
    NotABundle,
    #[error("the bundle has format version {found}; this build reads versions 1 to {expected}")]
    FormatVersion { found: u32, expected: u32 },
    #[error("the bundle is corrupt: {0}")]
    Corrupt(String),
    #[error("the bundle checksum is {found}, expected {expected}")]
    Checksum { found: String, expected: String },
    #[error("the bundle's input contract does not match this build: {0}")]
    Schema(String),
    #[error("prediction failed: {0}")]
    Predict(String),
}

/// What the model consumes and produces: the contract between a bundle and the code
/// that serves it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSchema {
    pub target: String,
    /// Observed variables a request must carry, by Open-Meteo name.
    pub variables: Vec<String>,
    pub features: Vec<String>,
    pub input_hours: usize,
    pub horizons: Vec<u8>,
}

impl ModelSchema {
    /// The schema of this build's feature code.
    pub fn current() -> Self {
        Self {
            target: TARGET.name().to_owned(),
            variables: KEY_VARIABLES.iter().map(|v| v.name().to_owned()).collect(),
            features: feature_names(),
            input_hours: INPUT_HOURS,
            horizons: HORIZONS.to_vec(),
        }
    }

    /// Why this build could not serve a bundle with this schema, if it could not.
    pub fn incompatibility(&self) -> Option<String> {
        let cur = Self::current();
        if self.target != cur.target {
            return Some(format!(
                "target {} (this build forecasts {})",
                self.target, cur.target
            ));
        }
        if self.features != cur.features {
            let missing: Vec<_> = self
                .features
                .iter()
                .filter(|f| !cur.features.contains(f))
                .collect();
            return Some(if missing.is_empty() {
                "the feature order differs".to_owned()
            } else {
                format!("features this build does not compute: {missing:?}")
            });
        }
        if self.input_hours != cur.input_hours {
            return Some(format!(
                "input_hours {} (this build needs {})",
                self.input_hours, cur.input_hours
            ));
        }
        if self.horizons != cur.horizons {
            return Some(format!(
                "horizons {:?} (this build has {:?})",
                self.horizons, cur.horizons
            ));
        }
        None
    }
}

/// Centres and scales each feature; a constant column keeps scale 1 (it becomes 0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
}

impl Standardizer {
    pub fn fit(rows: &[&[f64]]) -> Self {
        let p = rows.first().map_or(0, |r| r.len());
        let n = rows.len().max(1) as f64;
        let mut mean = vec![0.0; p];
        for r in rows {
            for (m, x) in mean.iter_mut().zip(r.iter()) {
                *m += x / n;
            }
        }
        let mut var = vec![0.0; p];
        for r in rows {
            for ((v, x), m) in var.iter_mut().zip(r.iter()).zip(&mean) {
                *v += (x - m) * (x - m) / n;
            }
        }
        let scale = var
            .into_iter()
            .map(|v| if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 })
            .collect();
        Self { mean, scale }
    }

    pub fn apply(&self, row: &[f64]) -> Vec<f64> {
        row.iter()
            .zip(self.mean.iter().zip(&self.scale))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
    }
}

/// One horizon's fitted model, in a form serving evaluates without any ML library.
/// `M` is what a blend holds: a [`Member`], which cannot itself be a blend, so a bundle
/// cannot nest blends (decoding a crafted nesting would otherwise recurse unbounded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Regressor<M = Member> {
    /// Ridge regression on standardised features, kept as its coefficients.
    Linear { coefficients: Vec<f64>, intercept: f64 },
    /// A tree ensemble (random forest or extra trees): the mean of its trees.
    Forest { trees: Vec<Tree> },
    /// Gradient-boosted trees: `base` plus the sum of its trees.
    Boosted { base: f64, trees: Vec<Tree> },
    /// The mean of its members' predictions.
    Blend { members: Vec<M> },
}

/// A blend's member: a regressor whose blend variant can hold nothing (it encodes as
/// the same variant of [`Regressor`]).
pub type Member = Regressor<NoBlend>;

/// Uninhabited: what a blend's member would have to hold to be a blend itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum NoBlend {}

/// What a regressor needs of what it blends.
pub trait Blendable {
    fn predict(&self, rows: &[Vec<f64>]) -> Vec<f64>;
    fn node_count(&self) -> usize;
    fn check(&self, features: usize) -> Result<(), String>;
}

impl Blendable for NoBlend {
    fn predict(&self, _: &[Vec<f64>]) -> Vec<f64> {
        match *self {}
    }
    fn node_count(&self) -> usize {
        match *self {}
    }
    fn check(&self, _: usize) -> Result<(), String> {
        match *self {}
    }
}

impl<M: Blendable> Blendable for Regressor<M> {
    fn predict(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        Regressor::predict(self, rows)
    }
    fn node_count(&self) -> usize {
        Regressor::node_count(self)
    }
    fn check(&self, features: usize) -> Result<(), String> {
        Regressor::check(self, features)
    }
}

impl Regressor {
    /// This regressor as a blend's member; a blend cannot be one.
    pub fn into_member(self) -> Result<Member, String> {
        Ok(match self {
            Regressor::Linear {
                coefficients,
                intercept,
            } => Regressor::Linear {
                coefficients,
                intercept,
            },
            Regressor::Forest { trees } => Regressor::Forest { trees },
            Regressor::Boosted { base, trees } => Regressor::Boosted { base, trees },
            Regressor::Blend { .. } => return Err("a blend cannot be a blend's member".into()),
        })
    }
}

/// A binary regression tree as a flat node list; node 0 is the root and every child
/// comes after its parent (checked on load, so a walk always ends).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Node {
    Leaf {
        value: f64,
    },
    /// Go to `left` when `x[feature] <= threshold`, else to `right`.
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
        right: u32,
    },
}

impl Tree {
    pub fn predict(&self, x: &[f64]) -> f64 {
        let mut i = 0;
        loop {
            match self.nodes[i] {
                Node::Leaf { value } => return value,
                Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                } => {
                    i = if x[feature as usize] <= threshold {
                        left as usize
                    } else {
                        right as usize
                    };
                }
            }
        }
    }

    fn check(&self, features: usize) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("an empty tree".into());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            if let Node::Split {
                feature, left, right, ..
            } = *n
            {
                let ok_child = |c: u32| (c as usize) > i && (c as usize) < self.nodes.len();
                if (feature as usize) >= features || !ok_child(left) || !ok_child(right) {
                    return Err(format!("tree node {i} points outside the tree"));
                }
            }
        }
        Ok(())
    }
}

impl<M: Blendable> Regressor<M> {
    /// Predicts standardised rows.
    pub fn predict(&self, rows: &[Vec<f64>]) -> Vec<f64> {
        match self {
            Regressor::Linear {
                coefficients,
                intercept,
            } => rows
                .iter()
                .map(|r| intercept + r.iter().zip(coefficients).map(|(x, c)| x * c).sum::<f64>())
                .collect(),
            Regressor::Forest { trees } => rows
                .iter()
                .map(|r| trees.iter().map(|t| t.predict(r)).sum::<f64>() / trees.len() as f64)
                .collect(),
            Regressor::Boosted { base, trees } => rows
                .iter()
                .map(|r| base + trees.iter().map(|t| t.predict(r)).sum::<f64>())
                .collect(),
            Regressor::Blend { members } => {
                let mut sum = vec![0.0; rows.len()];
                for m in members {
                    for (s, p) in sum.iter_mut().zip(m.predict(rows)) {
                        *s += p;
                    }
                }
                sum.iter().map(|s| s / members.len() as f64).collect()
            }
        }
    }

    /// Nodes in all trees (0 for a linear model): the model's size.
    pub fn node_count(&self) -> usize {
        match self {
            Regressor::Linear { .. } => 0,
            Regressor::Forest { trees } | Regressor::Boosted { trees, .. } => {
                trees.iter().map(|t| t.nodes.len()).sum()
            }
            Regressor::Blend { members } => members.iter().map(M::node_count).sum(),
        }
    }

    fn check(&self, features: usize) -> Result<(), String> {
        match self {
            Regressor::Linear { coefficients, .. } if coefficients.len() != features => Err(format!(
                "{} coefficients for {features} features",
                coefficients.len()
            )),
            Regressor::Linear { .. } => Ok(()),
            Regressor::Forest { trees } if trees.is_empty() => Err("a forest without trees".into()),
            Regressor::Boosted { base, .. } if !base.is_finite() => {
                Err(format!("boosted trees with base {base}"))
            }
            Regressor::Forest { trees } | Regressor::Boosted { trees, .. } => {
                trees.iter().try_for_each(|t| t.check(features))
            }
            Regressor::Blend { members } if members.is_empty() => Err("a blend without members".into()),
            Regressor::Blend { members } => members.iter().try_for_each(|m| m.check(features)),
        }
    }
}

/// What a horizon's regressor predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetTransform {
    /// The temperature itself.
    Level,
    /// The change from the current temperature (the forecast is the current value plus
    /// the prediction): regularisation then shrinks towards persistence, not towards 0.
    ChangeFromCurrent,
}

impl TargetTransform {
    /// The value a regressor is fitted on, from the target and the raw feature row.
    pub fn encode(self, target: f64, raw_row: &[f64]) -> f64 {
        match self {
            TargetTransform::Level => target,
            TargetTransform::ChangeFromCurrent => target - raw_row[current_target_index()],
        }
    }

    /// The forecast, from a regressor's output and the raw feature row.
    pub fn decode(self, predicted: f64, raw_row: &[f64]) -> f64 {
        match self {
            TargetTransform::Level => predicted,
            TargetTransform::ChangeFromCurrent => predicted + raw_row[current_target_index()],
        }
    }
}

/// The feature holding the current value of the target.
fn current_target_index() -> usize {
    FEATURES
        .iter()
        .position(|f| {
            *f == crate::features::Feature::Value {
                var: crate::observations::TARGET,
            }
        })
        .expect("the target's current value is a feature (tested)")
}

#[derive(Debug, Serialize, Deserialize)]
pub struct HorizonModel {
    pub horizon: u8,
    pub target: TargetTransform,
    pub regressor: Regressor,
}

impl HorizonModel {
    /// Forecasts from raw feature rows, standardised with `scaler`.
    pub fn predict(&self, scaler: &Standardizer, raw_rows: &[Vec<f64>]) -> Vec<f64> {
        let z: Vec<Vec<f64>> = raw_rows.iter().map(|r| scaler.apply(r)).collect();
        self.predict_standardised(&z, raw_rows)
    }

    /// Forecasts when the standardised rows are at hand already.
    pub fn predict_standardised(&self, z: &[Vec<f64>], raw_rows: &[Vec<f64>]) -> Vec<f64> {
        self.regressor
            .predict(z)
            .into_iter()
            .zip(raw_rows)
            .map(|(p, r)| self.target.decode(p, r))
            .collect()
    }
}

/// Equal-width histogram of a feature over the training rows (for drift checks).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// `bins + 1` increasing edges.
    pub edges: Vec<f64>,
    pub counts: Vec<u64>,
}

impl Histogram {
    pub fn new(values: &[f64], bins: usize) -> Self {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (min, max) = if values.is_empty() {
            (0.0, 1.0)
        } else if max - min < 1e-12 {
            (min - 0.5, max + 0.5)
        } else {
            (min, max)
        };
        let width = (max - min) / bins as f64;
        let edges: Vec<f64> = (0..=bins).map(|i| min + width * i as f64).collect();
        let mut counts = vec![0u64; bins];
        for v in values {
            counts[Self::bin_of(&edges, *v)] += 1;
        }
        Self { edges, counts }
    }

    /// The bin a value falls in; values outside the edges go to the end bins.
    pub fn bin_of(edges: &[f64], v: f64) -> usize {
        let bins = edges.len() - 1;
        let i = edges.partition_point(|e| *e <= v);
        i.saturating_sub(1).min(bins - 1)
    }
}

/// Per-feature statistics of the training rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    /// The 0.5th and 99.5th percentiles.
    pub p005: f64,
    pub p995: f64,
    pub histogram: Histogram,
}

impl FeatureStats {
    /// Whether `x` lies in the training range: between the smallest and the largest value
    /// the model was trained on. Outside it the model extrapolates. (Not the 0.5–99.5
    /// percentiles: with some forty weather features, their 1% tails put a fifth of
    /// ordinary requests "out of range" somewhere.)
    pub fn in_training_range(&self, x: f64) -> bool {
        x >= self.min && x <= self.max
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    pub model_name: String,
    /// A readable description of the chosen model, e.g. `ridge(alpha=1)`.
    pub algorithm: String,
    pub params: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    /// md5 of the processed dataset (its DVC version).
    pub data_version: String,
    pub dataset_key: String,
    pub git_commit: Option<String>,
    /// The tracking run that produced the model, when there was one.
    pub run_id: Option<String>,
    pub raw_snapshots: Vec<String>,
    /// The rows the final model was fitted on (training and validation).
    pub training_window: TimeWindow,
    /// The rows it was scored on, which it never saw.
    pub holdout_window: TimeWindow,
    pub train_rows: usize,
    pub holdout_rows: usize,
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ModelBundle {
    pub format_version: u32,
    pub schema: ModelSchema,
    pub metadata: ModelMetadata,
    pub scaler: Standardizer,
    pub models: Vec<HorizonModel>,
    pub feature_stats: Vec<FeatureStats>,
    /// The intervals' calibration; `None` in a format 1 bundle.
    pub calibration: Option<Calibration>,
}

/// A format 1 bundle: the same fields, without the calibration.
#[derive(Deserialize)]
struct BundleV1 {
    format_version: u32,
    schema: ModelSchema,
    metadata: ModelMetadata,
    scaler: Standardizer,
    models: Vec<HorizonModel>,
    feature_stats: Vec<FeatureStats>,
}

impl From<BundleV1> for ModelBundle {
    fn from(b: BundleV1) -> Self {
        Self {
            format_version: b.format_version,
            schema: b.schema,
            metadata: b.metadata,
            scaler: b.scaler,
            models: b.models,
            feature_stats: b.feature_stats,
            calibration: None,
        }
    }
}

/// A format 2 bundle: its calibration held half-widths per half of the year only.
#[derive(Deserialize)]
struct BundleV2 {
    format_version: u32,
    schema: ModelSchema,
    metadata: ModelMetadata,
    scaler: Standardizer,
    models: Vec<HorizonModel>,
    feature_stats: Vec<FeatureStats>,
    calibration: Option<CalibrationV2>,
}

#[derive(Deserialize)]
struct CalibrationV2 {
    method: String,
    levels: Vec<f64>,
    half_widths: Vec<Vec<Vec<f64>>>,
    residuals: usize,
}

impl From<BundleV2> for ModelBundle {
    fn from(b: BundleV2) -> Self {
        Self {
            format_version: b.format_version,
            schema: b.schema,
            metadata: b.metadata,
            scaler: b.scaler,
            models: b.models,
            feature_stats: b.feature_stats,
            calibration: b.calibration.map(|c| Calibration {
                method: c.method,
                levels: c.levels,
                widths: Widths::Halves(c.half_widths),
                residuals: c.residuals,
            }),
        }
    }
}

/// Conformal calibration of the forecasts' intervals, from the errors the model made on
/// rows it was not fitted on (out-of-fold, over the whole training range). A forecast's
/// interval at a level is the forecast ± a half-width for its horizon and level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// How the half-widths were found.
    pub method: String,
    /// The central coverages, increasing, each in (0, 1).
    pub levels: Vec<f64>,
    pub widths: Widths,
    /// The fewest out-of-fold errors any half-width was found from.
    pub residuals: usize,
}

/// Where a forecast's half-widths come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Widths {
    /// Format 2: per [`YearHalf`] (its index), per horizon (the models' order), per
    /// level: the half-width (°C).
    Halves(Vec<Vec<Vec<f64>>>),
    /// Normalised conformal, per horizon (the models' order): the half-width at a level
    /// is that level's quantile of the normalised errors times the spread the
    /// forecast's own inputs predict, so it widens in volatile weather and narrows in
    /// calm.
    Normalised(Vec<Normalised>),
}

/// One horizon's normalised calibration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalised {
    pub spread: Spread,
    /// Per level: the conformal quantile of |error| / spread.
    pub quantiles: Vec<f64>,
}

/// The expected size of a forecast's error from its standardised inputs: exp of a
/// linear model of the log absolute error, kept within the range it took on the
/// calibration rows (no extrapolation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    pub coefficients: Vec<f64>,
    pub intercept: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The spread at one standardised row.
    pub fn at(&self, z: &[f64]) -> f64 {
        let log = self.intercept + z.iter().zip(&self.coefficients).map(|(x, c)| x * c).sum::<f64>();
        let s = log.exp();
        if s.is_finite() {
            s.clamp(self.min, self.max)
        } else {
            self.max
        }
    }
}

/// The two halves of the calendar year a format 2 bundle's intervals were calibrated for
/// apart (errors spread differently in the cold and the warm season); format 3 learns the
/// spread from the features instead, the day of the year among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearHalf {
    /// October to March: the northern cold season.
    OctoberToMarch = 0,
    /// April to September.
    AprilToSeptember = 1,
}

impl YearHalf {
    pub const ALL: [YearHalf; 2] = [YearHalf::OctoberToMarch, YearHalf::AprilToSeptember];

    /// The half `t` falls in, by its calendar month (UTC).
    pub fn of(t: NaiveDateTime) -> Self {
        use chrono::Datelike;
        if t.month() >= 10 || t.month() <= 3 {
            YearHalf::OctoberToMarch
        } else {
            YearHalf::AprilToSeptember
        }
    }
}

impl Calibration {
    fn check(&self, horizons: usize, features: usize) -> Result<(), String> {
        let levels_ok =
            self.levels.iter().all(|l| *l > 0.0 && *l < 1.0) && self.levels.windows(2).all(|w| w[0] < w[1]);
        if !levels_ok {
            return Err(format!("interval levels {:?}", self.levels));
        }
        let fits = |w: &Vec<f64>| {
            w.len() == self.levels.len()
                && w.iter().all(|x| x.is_finite() && *x >= 0.0)
                && w.windows(2).all(|p| p[0] <= p[1])
        };
        let ok = match &self.widths {
            Widths::Halves(halves) => {
                halves.len() == YearHalf::ALL.len()
                    && halves
                        .iter()
                        .all(|half| half.len() == horizons && half.iter().all(fits))
            }
            Widths::Normalised(per_horizon) => {
                per_horizon.len() == horizons
                    && per_horizon.iter().all(|n| {
                        let s = &n.spread;
                        fits(&n.quantiles)
                            && s.coefficients.len() == features
                            && s.coefficients.iter().all(|c| c.is_finite())
                            && s.intercept.is_finite()
                            && s.min > 0.0
                            && s.min <= s.max
                            && s.max.is_finite()
                    })
            }
        };
        if !ok {
            return Err("interval widths do not match the horizons, levels and features".into());
        }
        Ok(())
    }

    /// The intervals around `value` for the horizon at `index` (the models' order) of a
    /// forecast issued at `issued` from the standardised row `z` (none for a horizon it
    /// does not hold).
    pub fn intervals(&self, index: usize, issued: NaiveDateTime, z: &[f64], value: f64) -> Vec<Interval> {
        let interval = |(&level, &w): (&f64, &f64)| Interval {
            level,
            lower: value - w,
            upper: value + w,
        };
        match &self.widths {
            Widths::Halves(halves) => halves
                .get(YearHalf::of(issued) as usize)
                .and_then(|half| half.get(index))
                .map_or_else(Vec::new, |w| self.levels.iter().zip(w).map(interval).collect()),
            Widths::Normalised(per_horizon) => per_horizon.get(index).map_or_else(Vec::new, |n| {
                let spread = n.spread.at(z);
                let w: Vec<f64> = n.quantiles.iter().map(|q| q * spread).collect();
                self.levels.iter().zip(&w).map(interval).collect()
            }),
        }
    }
}

/// A prediction interval: the truth is expected inside `[lower, upper]` with
/// probability `level`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Interval {
    pub level: f64,
    pub lower: f64,
    pub upper: f64,
}

/// One horizon's forecast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Forecast {
    pub horizon_hours: u8,
    /// The hour the forecast is for (UTC, Open-Meteo's format).
    pub time: String,
    pub temperature_2m: f64,
    /// Its prediction intervals, one per calibrated level; none from a model trained
    /// without calibration (see `/model`), or in a record written before them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Interval>,
}

impl ModelMetadata {
    /// The newest hour whose observation went into the model: the hold-out's last row
    /// and its targets. A forecast issued before it is in-sample.
    pub fn data_end(&self) -> NaiveDateTime {
        let h = HORIZONS[HORIZONS.len() - 1];
        crate::observations::shift_hours(self.holdout_window.end, i64::from(h))
            .unwrap_or(self.holdout_window.end)
    }
}

impl ModelBundle {
    /// An estimate of the memory the decoded bundle takes: its tree nodes, which
    /// dominate, its feature histograms, and a allowance for the small parts. What the
    /// API charges a location's model against `RPS_MODEL_CACHE_MB`.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let nodes: usize = self.models.iter().map(|m| m.regressor.node_count()).sum();
        let stats: usize = self
            .feature_stats
            .iter()
            .map(|s| {
                size_of::<FeatureStats>()
                    + s.name.len()
                    + (s.histogram.edges.len() + s.histogram.counts.len()) * size_of::<f64>()
            })
            .sum();
        let small = 16 << 10;
        nodes * size_of::<Node>() + stats + self.models.len() * size_of::<HorizonModel>() + small
    }

    pub fn encode(&self) -> Result<Vec<u8>, ModelError> {
        let mut out = Vec::with_capacity(1 << 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.format_version.to_le_bytes());
        let body = bincode::serde::encode_to_vec(self, bincode::config::standard())
            .map_err(|e| ModelError::Corrupt(e.to_string()))?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, ModelError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(ModelError::Corrupt(format!(
                "{} bytes is larger than any bundle ({MAX_BUNDLE_BYTES} at most)",
                bytes.len()
            )));
        }
        if bytes.len() < 8 || &bytes[..4] != MAGIC {
            return Err(ModelError::NotABundle);
        }
        let found = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
        if !READABLE_BUNDLE_FORMATS.contains(&found) {
            return Err(ModelError::FormatVersion {
                found,
                expected: BUNDLE_FORMAT_VERSION,
            });
        }
        // A length in the body can claim no more than the largest bundle accepted.
        let config = bincode::config::standard().with_limit::<MAX_BUNDLE_BYTES>();
        let corrupt = |e: bincode::error::DecodeError| ModelError::Corrupt(e.to_string());
        let (bundle, used): (Self, usize) = match found {
            1 => {
                let (v1, used): (BundleV1, usize) =
                    bincode::serde::decode_from_slice(&bytes[8..], config).map_err(corrupt)?;
                (v1.into(), used)
            }
            2 => {
                let (v2, used): (BundleV2, usize) =
                    bincode::serde::decode_from_slice(&bytes[8..], config).map_err(corrupt)?;
                (v2.into(), used)
            }
            _ => bincode::serde::decode_from_slice(&bytes[8..], config).map_err(corrupt)?,
        };
        if used != bytes.len() - 8 {
            return Err(ModelError::Corrupt(format!(
                "{} trailing bytes after the bundle",
                bytes.len() - 8 - used
            )));
        }
        if bundle.format_version != found {
            return Err(ModelError::Corrupt(
                "the header and body disagree on the format version".into(),
            ));
        }
        bundle.validate()?;
        Ok(bundle)
    }

    /// Decodes and checks the sha256 the registry recorded.
    pub fn decode_verified(bytes: &[u8], expected_sha256: &str) -> Result<Self, ModelError> {
        let found = sha256_hex(bytes);
        if !found.eq_ignore_ascii_case(expected_sha256) {
            return Err(ModelError::Checksum {
                found,
                expected: expected_sha256.to_owned(),
            });
        }
        Self::decode(bytes)
    }

    /// Internal consistency: one model per horizon, statistics and scaler per feature.
    fn validate(&self) -> Result<(), ModelError> {
        let p = self.schema.features.len();
        if self.scaler.mean.len() != p || self.scaler.scale.len() != p || self.feature_stats.len() != p {
            return Err(ModelError::Corrupt(
                "feature count mismatch inside the bundle".into(),
            ));
        }
        for m in &self.models {
            m.regressor
                .check(p)
                .map_err(|e| ModelError::Corrupt(format!("the {} h model: {e}", m.horizon)))?;
        }
        if let Some(c) = &self.calibration {
            c.check(self.models.len(), p)
                .map_err(|e| ModelError::Corrupt(format!("the calibration: {e}")))?;
        }
        let horizons: Vec<u8> = self.models.iter().map(|m| m.horizon).collect();
        if horizons != self.schema.horizons {
            return Err(ModelError::Corrupt(format!(
                "models for horizons {horizons:?}, schema says {:?}",
                self.schema.horizons
            )));
        }
        Ok(())
    }

    /// Fails unless this build can compute the bundle's inputs.
    pub fn check_compatible(&self) -> Result<(), ModelError> {
        match self.schema.incompatibility() {
            None => Ok(()),
            Some(why) => Err(ModelError::Schema(why)),
        }
    }

    /// Forecasts every horizon from one feature row (in [`FEATURES`] order).
    pub fn predict(&self, row: &FeatureRow) -> Result<Vec<Forecast>, ModelError> {
        if row.values.len() != FEATURES.len() || row.values.len() != self.scaler.mean.len() {
            return Err(ModelError::Schema(format!(
                "{} feature values for a model of {}",
                row.values.len(),
                self.scaler.mean.len()
            )));
        }
        let raw = std::slice::from_ref(&row.values);
        let z = vec![self.scaler.apply(&row.values)];
        self.models
            .iter()
            .enumerate()
            .map(|(k, m)| {
                let value = m.predict_standardised(&z, raw)[0];
                if !value.is_finite() {
                    return Err(ModelError::Predict(format!(
                        "the {} h model produced a non-finite value",
                        m.horizon
                    )));
                }
                let time =
                    crate::observations::shift_hours(row.time, i64::from(m.horizon)).ok_or_else(|| {
                        ModelError::Predict(format!(
                            "{} h after {} is past the calendar's end",
                            m.horizon, row.time
                        ))
                    })?;
                Ok(Forecast {
                    horizon_hours: m.horizon,
                    time: crate::observations::format_time(time),
                    temperature_2m: value,
                    intervals: self
                        .calibration
                        .as_ref()
                        .map_or_else(Vec::new, |c| c.intervals(k, row.time, &z[0], value)),
                })
            })
            .collect()
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle whose every horizon forecasts persistence (a linear model of zeros on
    /// the change), with `calibration`.
    fn persistence(calibration: Option<Calibration>) -> ModelBundle {
        let p = FEATURES.len();
        let t = chrono::NaiveDate::from_ymd_opt(2023, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        let window = TimeWindow { start: t, end: t };
        let stats = |name: String| FeatureStats {
            name,
            min: 0.0,
            max: 1.0,
            mean: 0.5,
            std: 0.1,
            p005: 0.0,
            p995: 1.0,
            histogram: Histogram::new(&[0.0, 1.0], 2),
        };
        ModelBundle {
            format_version: BUNDLE_FORMAT_VERSION,
            schema: ModelSchema::current(),
            metadata: ModelMetadata {
                model_name: "m".into(),
                algorithm: "persistence".into(),
                params: BTreeMap::new(),
                created_at: Utc::now(),
                data_version: "0".repeat(32),
                dataset_key: String::new(),
                git_commit: None,
                run_id: None,
                raw_snapshots: Vec::new(),
                training_window: window,
                holdout_window: window,
                train_rows: 1,
                holdout_rows: 1,
                metrics: BTreeMap::new(),
            },
            scaler: Standardizer {
                mean: vec![0.0; p],
                scale: vec![1.0; p],
            },
            models: HORIZONS
                .iter()
                .map(|&horizon| HorizonModel {
                    horizon,
                    target: TargetTransform::ChangeFromCurrent,
                    regressor: Regressor::Linear {
                        coefficients: vec![0.0; p],
                        intercept: 0.0,
                    },
                })
                .collect(),
            feature_stats: feature_names().into_iter().map(stats).collect(),
            calibration,
        }
    }

    fn row(temperature: f64, month: u32) -> FeatureRow {
        let mut values = vec![0.0; FEATURES.len()];
        values[current_target_index()] = temperature;
        FeatureRow {
            time: chrono::NaiveDate::from_ymd_opt(2023, month, 1)
                .unwrap()
                .and_hms_opt(12, 0, 0)
                .unwrap(),
            values,
        }
    }

    fn calibration() -> Calibration {
        Calibration {
            method: "test".into(),
            levels: vec![0.8, 0.95],
            // October to March twice as wide as April to September.
            widths: Widths::Halves(
                [2.0, 1.0]
                    .iter()
                    .map(|k| {
                        HORIZONS
                            .iter()
                            .map(|&h| vec![k * f64::from(h) / 2.0, k * f64::from(h)])
                            .collect()
                    })
                    .collect(),
            ),
            residuals: 100,
        }
    }

    /// Normalised: the spread is e^(0.5·z) of the current temperature's standardised
    /// value (the persistence bundle's scaler is the identity), between 0.5 and 4.
    fn normalised() -> Calibration {
        let mut coefficients = vec![0.0; FEATURES.len()];
        coefficients[current_target_index()] = 0.5;
        Calibration {
            method: "test".into(),
            levels: vec![0.8, 0.95],
            widths: Widths::Normalised(
                HORIZONS
                    .iter()
                    .map(|&h| Normalised {
                        spread: Spread {
                            coefficients: coefficients.clone(),
                            intercept: 0.0,
                            min: 0.5,
                            max: 4.0,
                        },
                        quantiles: vec![f64::from(h) / 2.0, f64::from(h)],
                    })
                    .collect(),
            ),
            residuals: 100,
        }
    }

    #[test]
    fn normalised_intervals_widen_with_the_spread_their_inputs_predict() {
        let b = ModelBundle::decode(&persistence(Some(normalised())).encode().unwrap()).unwrap();
        let interval = |level, lower, upper| Interval { level, lower, upper };
        // z = 0: spread 1, so the 6 h half-widths are 3 and 6.
        assert_eq!(
            b.predict(&row(0.0, 6)).unwrap()[5].intervals,
            [interval(0.8, -3.0, 3.0), interval(0.95, -6.0, 6.0)]
        );
        // z = 2: spread e; at the 1 h horizon 0.5·e and e.
        let e = std::f64::consts::E;
        let one = &b.predict(&row(2.0, 1)).unwrap()[0].intervals;
        assert!((one[0].upper - (2.0 + 0.5 * e)).abs() < 1e-12, "{one:?}");
        assert!((one[1].lower - (2.0 - e)).abs() < 1e-12, "{one:?}");
        // Clamped to the range seen in calibration: z = 40 gives 4, not e^20.
        let far = &b.predict(&row(40.0, 1)).unwrap()[0].intervals;
        assert_eq!(far[1], interval(0.95, 36.0, 44.0));
        // A spread model for other features, or a spread bound of 0, is corrupt.
        for damage in 0..2 {
            let mut c = normalised();
            let Widths::Normalised(per) = &mut c.widths else {
                unreachable!()
            };
            match damage {
                0 => per[2].spread.coefficients.pop(),
                _ => {
                    per[0].spread.min = 0.0;
                    None
                }
            };
            let err = ModelBundle::decode(&persistence(Some(c)).encode().unwrap()).unwrap_err();
            assert!(
                matches!(err, ModelError::Corrupt(ref m) if m.contains("calibration")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_format_2_bundle_serves_its_half_year_widths() {
        #[derive(Serialize)]
        struct CalibrationV2<'a> {
            method: &'a str,
            levels: &'a [f64],
            half_widths: &'a [Vec<Vec<f64>>],
            residuals: usize,
        }
        #[derive(Serialize)]
        struct V2<'a> {
            format_version: u32,
            schema: &'a ModelSchema,
            metadata: &'a ModelMetadata,
            scaler: &'a Standardizer,
            models: &'a [HorizonModel],
            feature_stats: &'a [FeatureStats],
            calibration: Option<CalibrationV2<'a>>,
        }
        let c = calibration();
        let Widths::Halves(halves) = &c.widths else {
            unreachable!()
        };
        let b = persistence(None);
        let v2 = V2 {
            format_version: 2,
            schema: &b.schema,
            metadata: &b.metadata,
            scaler: &b.scaler,
            models: &b.models,
            feature_stats: &b.feature_stats,
            calibration: Some(CalibrationV2 {
                method: "test",
                levels: &c.levels,
                half_widths: halves,
                residuals: 100,
            }),
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&2u32.to_le_bytes());
        bytes.extend(bincode::serde::encode_to_vec(&v2, bincode::config::standard()).unwrap());
        let old = ModelBundle::decode(&bytes).unwrap();
        assert_eq!((old.format_version, old.calibration.as_ref()), (2, Some(&c)));
        let january = old.predict(&row(3.5, 1)).unwrap();
        assert_eq!(
            january[5].intervals[0],
            Interval {
                level: 0.8,
                lower: -2.5,
                upper: 9.5
            }
        );
    }

    #[test]
    fn every_forecast_carries_its_intervals_around_it_for_its_half_of_the_year() {
        let b = ModelBundle::decode(&persistence(Some(calibration())).encode().unwrap()).unwrap();
        let interval = |level, lower, upper| Interval { level, lower, upper };
        let june = b.predict(&row(3.5, 6)).unwrap();
        let six = &june[5];
        assert_eq!((six.horizon_hours, six.temperature_2m), (6, 3.5));
        assert_eq!(
            six.intervals,
            [interval(0.8, 0.5, 6.5), interval(0.95, -2.5, 9.5)]
        );
        let january = b.predict(&row(3.5, 1)).unwrap();
        assert_eq!(
            january[5].intervals,
            [interval(0.8, -2.5, 9.5), interval(0.95, -8.5, 15.5)]
        );
        let at = |y, m, d, h| {
            YearHalf::of(
                chrono::NaiveDate::from_ymd_opt(y, m, d)
                    .unwrap()
                    .and_hms_opt(h, 0, 0)
                    .unwrap(),
            )
        };
        for year in [2023, 2024] {
            assert_eq!(at(year, 9, 30, 23), YearHalf::AprilToSeptember);
            assert_eq!(at(year, 10, 1, 0), YearHalf::OctoberToMarch);
            assert_eq!(at(year, 3, 31, 23), YearHalf::OctoberToMarch);
            assert_eq!(at(year, 4, 1, 0), YearHalf::AprilToSeptember);
        }
    }

    #[test]
    fn a_format_1_bundle_is_served_with_point_forecasts_only() {
        #[derive(Serialize)]
        struct V1<'a> {
            format_version: u32,
            schema: &'a ModelSchema,
            metadata: &'a ModelMetadata,
            scaler: &'a Standardizer,
            models: &'a [HorizonModel],
            feature_stats: &'a [FeatureStats],
        }
        let b = persistence(None);
        let v1 = V1 {
            format_version: 1,
            schema: &b.schema,
            metadata: &b.metadata,
            scaler: &b.scaler,
            models: &b.models,
            feature_stats: &b.feature_stats,
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend(bincode::serde::encode_to_vec(&v1, bincode::config::standard()).unwrap());
        let old = ModelBundle::decode(&bytes).unwrap();
        assert_eq!((old.format_version, old.calibration.is_none()), (1, true));
        let forecasts = old.predict(&row(3.5, 6)).unwrap();
        assert!(forecasts.iter().all(|f| f.intervals.is_empty()), "{forecasts:?}");
        // Without intervals, a forecast serialises as before them.
        let json = serde_json::to_value(&forecasts[0]).unwrap();
        assert!(json.get("intervals").is_none(), "{json}");
        // A format this build does not know is refused by name.
        bytes[4] = 9;
        assert!(matches!(
            ModelBundle::decode(&bytes),
            Err(ModelError::FormatVersion { found: 9, .. })
        ));
    }

    #[test]
    fn a_calibration_that_does_not_fit_the_models_is_corrupt() {
        let mut c = calibration();
        let Widths::Halves(halves) = &mut c.widths else {
            unreachable!()
        };
        halves[1].pop();
        let err = ModelBundle::decode(&persistence(Some(c)).encode().unwrap()).unwrap_err();
        assert!(
            matches!(err, ModelError::Corrupt(ref m) if m.contains("calibration")),
            "{err}"
        );
        let mut c = calibration();
        c.levels = vec![0.95, 0.8];
        assert!(ModelBundle::decode(&persistence(Some(c)).encode().unwrap()).is_err());
    }

    #[test]
    fn boosted_trees_and_blends_round_trip_and_predict_sum_and_mean() {
        let stump = |feature: u32, threshold: f64, below: f64, above: f64| Tree {
            nodes: vec![
                Node::Split {
                    feature,
                    threshold,
                    left: 1,
                    right: 2,
                },
                Node::Leaf { value: below },
                Node::Leaf { value: above },
            ],
        };
        let boosted = Regressor::Boosted {
            base: 1.0,
            trees: vec![stump(0, 0.0, -1.0, 1.0), stump(1, 5.0, 0.5, 2.0)],
        };
        let forest = Regressor::Forest {
            trees: vec![stump(0, 0.0, 10.0, 20.0), stump(0, 0.0, 30.0, 40.0)],
        };
        let blend = Regressor::Blend {
            members: vec![boosted.clone(), forest.clone()],
        };
        let p = FEATURES.len();
        let mut low = vec![0.0; p];
        low[0] = -1.0;
        let mut high = vec![0.0; p];
        high[0] = 1.0;
        high[1] = 9.0;
        // Boosted: 1 + (-1) + 0.5 and 1 + 1 + 2; forest: the mean of 10 and 30, of 20 and 40.
        assert_eq!(boosted.predict(&[low.clone(), high.clone()]), vec![0.5, 4.0]);
        assert_eq!(forest.predict(&[low.clone(), high.clone()]), vec![20.0, 30.0]);
        assert_eq!(blend.predict(&[low, high]), vec![10.25, 17.0]);

        let mut b = persistence(Some(normalised()));
        for m in &mut b.models {
            m.regressor = blend.clone();
        }
        let back = ModelBundle::decode(&b.encode().unwrap()).unwrap();
        assert_eq!(back.models[0].regressor, blend);
        assert_eq!(back.format_version, 4);
        // A format 3 bundle (no boosted trees, no blends) is read as before.
        let mut three = persistence(Some(normalised()));
        three.format_version = 3;
        let back = ModelBundle::decode(&three.encode().unwrap()).unwrap();
        assert_eq!(back.format_version, 3);
        assert_eq!(back.models[5].regressor, three.models[5].regressor);
        assert_eq!(blend.node_count(), 12);

        // What validation refuses, named.
        let refused = |r: Regressor| {
            let mut b = persistence(None);
            b.models[2].regressor = r;
            ModelBundle::decode(&b.encode().unwrap()).unwrap_err().to_string()
        };
        assert!(refused(Regressor::Blend { members: vec![] }).contains("a blend without members"));
        let nan_base = Regressor::Boosted {
            base: f64::NAN,
            trees: vec![stump(0, 0.0, 1.0, 2.0)],
        };
        assert!(refused(nan_base).contains("boosted trees with base NaN"));
        let outside = Regressor::Blend {
            members: vec![Regressor::Boosted {
                base: 0.0,
                trees: vec![stump(p as u32, 0.0, 1.0, 2.0)],
            }],
        };
        assert!(refused(outside).contains("points outside the tree"));
    }

    #[test]
    fn a_crafted_length_is_refused_without_allocating_it() {
        // The header, then a string length of u64::MAX where the schema's target begins.
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&BUNDLE_FORMAT_VERSION.to_le_bytes());
        bytes.push(1); // format_version (varint)
        bytes.push(253); // a u64 varint follows
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        let err = ModelBundle::decode(&bytes).unwrap_err();
        assert!(matches!(err, ModelError::Corrupt(_)), "{err}");
    }
}

//! The one definition of the model's features and targets.
//!
//! A feature is computed at an hour `i` of a contiguous hourly [`Window`] from that
//! hour and the ones before it, never after. The batch path (the transform, building
//! training rows) and the serving path (one row from the trailing hours of a request)
//! both call [`Window::row_at`], so they cannot disagree. To change a feature, change
//! [`FEATURES`]; [`INPUT_HOURS`] follows.

use std::f64::consts::TAU;

use chrono::{Datelike, Duration, NaiveDateTime, Timelike};
use serde::{Deserialize, Serialize};

use crate::observations::{HourlySeries, TARGET, Variable, format_time};

use Variable::*;

/// Forecast horizons in hours: one model per horizon (direct strategy).
pub const HORIZONS: [u8; 6] = [1, 2, 3, 4, 5, 6];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Feature {
    /// The value at the hour.
    Value {
        var: Variable,
    },
    /// The value `hours` before.
    Lag {
        var: Variable,
        hours: usize,
    },
    /// Mean over the last `hours` hours, this one included.
    Mean {
        var: Variable,
        hours: usize,
    },
    /// Sample standard deviation over the last `hours` hours.
    Std {
        var: Variable,
        hours: usize,
    },
    /// Maximum minus minimum over the last `hours` hours.
    Range {
        var: Variable,
        hours: usize,
    },
    /// Change over the last `hours` hours (the tendency: value now minus value then).
    Diff {
        var: Variable,
        hours: usize,
    },
    /// Wind vector components (meteorological convention), from speed and direction.
    WindU,
    WindV,
    /// Temperature minus dew point.
    DewPointDepression,
    /// Hour of the (UTC) day on the unit circle.
    HourSin,
    HourCos,
    /// Day of the year on the unit circle.
    DayOfYearSin,
    DayOfYearCos,
}

const fn value(var: Variable) -> Feature {
    Feature::Value { var }
}
const fn lag(var: Variable, hours: usize) -> Feature {
    Feature::Lag { var, hours }
}
const fn diff(var: Variable, hours: usize) -> Feature {
    Feature::Diff { var, hours }
}

/// The model's inputs, in column order.
pub const FEATURES: &[Feature] = &[
    value(Temperature2m),
    value(RelativeHumidity2m),
    value(DewPoint2m),
    value(SurfacePressure),
    value(WindSpeed10m),
    value(CloudCover),
    value(ShortwaveRadiation),
    Feature::WindU,
    Feature::WindV,
    Feature::DewPointDepression,
    lag(Temperature2m, 1),
    lag(Temperature2m, 2),
    lag(Temperature2m, 3),
    lag(Temperature2m, 6),
    lag(Temperature2m, 12),
    // The same hour yesterday for each horizon: t + h - 24.
    lag(Temperature2m, 18),
    lag(Temperature2m, 19),
    lag(Temperature2m, 20),
    lag(Temperature2m, 21),
    lag(Temperature2m, 22),
    lag(Temperature2m, 23),
    lag(Temperature2m, 24),
    Feature::Mean {
        var: Temperature2m,
        hours: 3,
    },
    Feature::Mean {
        var: Temperature2m,
        hours: 6,
    },
    Feature::Mean {
        var: Temperature2m,
        hours: 24,
    },
    Feature::Std {
        var: Temperature2m,
        hours: 6,
    },
    Feature::Std {
        var: Temperature2m,
        hours: 24,
    },
    Feature::Range {
        var: Temperature2m,
        hours: 24,
    },
    Feature::Mean {
        var: ShortwaveRadiation,
        hours: 3,
    },
    Feature::Mean {
        var: CloudCover,
        hours: 6,
    },
    diff(Temperature2m, 1),
    diff(Temperature2m, 3),
    diff(SurfacePressure, 3),
    diff(SurfacePressure, 12),
    diff(RelativeHumidity2m, 3),
    diff(DewPoint2m, 3),
    diff(CloudCover, 3),
    diff(ShortwaveRadiation, 1),
    Feature::HourSin,
    Feature::HourCos,
    Feature::DayOfYearSin,
    Feature::DayOfYearCos,
];

/// Hours a single row needs: the longest look-back plus the hour itself.
pub const INPUT_HOURS: usize = max_lookback(FEATURES) + 1;

const fn max_lookback(features: &[Feature]) -> usize {
    let mut i = 0;
    let mut max = 0;
    while i < features.len() {
        let l = features[i].lookback();
        if l > max {
            max = l;
        }
        i += 1;
    }
    max
}

impl Feature {
    /// How many hours before the current one the feature reads.
    pub const fn lookback(&self) -> usize {
        match *self {
            Feature::Lag { hours, .. } | Feature::Diff { hours, .. } => hours,
            Feature::Mean { hours, .. } | Feature::Std { hours, .. } | Feature::Range { hours, .. } => {
                hours - 1
            }
            _ => 0,
        }
    }

    /// The column name, e.g. `temperature_2m_lag_3h`.
    pub fn name(&self) -> String {
        match *self {
            Feature::Value { var } => var.name().to_owned(),
            Feature::Lag { var, hours } => format!("{}_lag_{hours}h", var.name()),
            Feature::Mean { var, hours } => format!("{}_mean_{hours}h", var.name()),
            Feature::Std { var, hours } => format!("{}_std_{hours}h", var.name()),
            Feature::Range { var, hours } => format!("{}_range_{hours}h", var.name()),
            Feature::Diff { var, hours } => format!("{}_diff_{hours}h", var.name()),
            Feature::WindU => "wind_u_10m".into(),
            Feature::WindV => "wind_v_10m".into(),
            Feature::DewPointDepression => "dew_point_depression".into(),
            Feature::HourSin => "hour_sin".into(),
            Feature::HourCos => "hour_cos".into(),
            Feature::DayOfYearSin => "day_of_year_sin".into(),
            Feature::DayOfYearCos => "day_of_year_cos".into(),
        }
    }

    /// A feature of the clock and the calendar, not of the weather.
    pub fn is_calendar(&self) -> bool {
        matches!(
            self,
            Feature::HourSin | Feature::HourCos | Feature::DayOfYearSin | Feature::DayOfYearCos
        )
    }

    /// The observed variables the feature reads.
    pub fn inputs(&self) -> &'static [Variable] {
        match *self {
            Feature::Value { var }
            | Feature::Lag { var, .. }
            | Feature::Mean { var, .. }
            | Feature::Std { var, .. }
            | Feature::Range { var, .. }
            | Feature::Diff { var, .. } => match var {
                Temperature2m => &[Temperature2m],
                RelativeHumidity2m => &[RelativeHumidity2m],
                DewPoint2m => &[DewPoint2m],
                SurfacePressure => &[SurfacePressure],
                WindSpeed10m => &[WindSpeed10m],
                WindDirection10m => &[WindDirection10m],
                CloudCover => &[CloudCover],
                ShortwaveRadiation => &[ShortwaveRadiation],
                Precipitation => &[Precipitation],
            },
            Feature::WindU | Feature::WindV => &[WindSpeed10m, WindDirection10m],
            Feature::DewPointDepression => &[Temperature2m, DewPoint2m],
            _ => &[],
        }
    }

    fn eval(&self, w: &Window<'_>, i: usize) -> Option<f64> {
        let at = |var: Variable, j: usize| w.series.column(var)[j];
        let span = |var: Variable, hours: usize| -> Option<Vec<f64>> {
            w.series.column(var)[i + 1 - hours..=i].iter().copied().collect()
        };
        match *self {
            Feature::Value { var } => at(var, i),
            Feature::Lag { var, hours } => at(var, i - hours),
            Feature::Mean { var, hours } => {
                let xs = span(var, hours)?;
                Some(mean(&xs))
            }
            Feature::Std { var, hours } => {
                let xs = span(var, hours)?;
                let m = mean(&xs);
                let ss: f64 = xs.iter().map(|x| (x - m) * (x - m)).sum();
                Some((ss / (xs.len() as f64 - 1.0).max(1.0)).sqrt())
            }
            Feature::Range { var, hours } => {
                let xs = span(var, hours)?;
                let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
                Some(max - min)
            }
            Feature::Diff { var, hours } => Some(at(var, i)? - at(var, i - hours)?),
            Feature::WindU | Feature::WindV => {
                let speed = at(WindSpeed10m, i)?;
                let dir = at(WindDirection10m, i)?.to_radians();
                Some(if *self == Feature::WindU {
                    -speed * dir.sin()
                } else {
                    -speed * dir.cos()
                })
            }
            Feature::DewPointDepression => Some(at(Temperature2m, i)? - at(DewPoint2m, i)?),
            Feature::HourSin => Some((TAU * w.hour_fraction(i)).sin()),
            Feature::HourCos => Some((TAU * w.hour_fraction(i)).cos()),
            Feature::DayOfYearSin => Some((TAU * w.year_fraction(i)).sin()),
            Feature::DayOfYearCos => Some((TAU * w.year_fraction(i)).cos()),
        }
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

pub fn feature_names() -> Vec<String> {
    FEATURES.iter().map(Feature::name).collect()
}

pub fn target_names() -> Vec<String> {
    HORIZONS.iter().map(|h| target_name(*h)).collect()
}

/// `temperature_2m_h3`: the target `h` hours ahead.
pub fn target_name(h: u8) -> String {
    format!("{}_h{h}", TARGET.name())
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FeatureError {
    #[error("{needed} trailing hourly observations are needed, got {got}")]
    NotEnoughHours { needed: usize, got: usize },
    #[error("observations must be consecutive hours: {time} follows {previous}")]
    NotContiguous { time: String, previous: String },
    #[error("{variable} is missing at {time}, which the features need")]
    Missing { variable: &'static str, time: String },
}

/// A series known to be consecutive hours: the only thing features are computed on.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    series: &'a HourlySeries,
}

impl<'a> Window<'a> {
    pub fn new(series: &'a HourlySeries) -> Result<Self, FeatureError> {
        let t = series.times();
        if let Some(i) = (1..t.len()).find(|&i| t[i] - t[i - 1] != Duration::hours(1)) {
            return Err(FeatureError::NotContiguous {
                time: format_time(t[i]),
                previous: format_time(t[i - 1]),
            });
        }
        Ok(Self { series })
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn series(&self) -> &HourlySeries {
        self.series
    }

    fn hour_fraction(&self, i: usize) -> f64 {
        self.series.times()[i].hour() as f64 / 24.0
    }

    fn year_fraction(&self, i: usize) -> f64 {
        let t = self.series.times()[i];
        let days = if t.date().leap_year() { 366.0 } else { 365.0 };
        (t.ordinal0() as f64 + t.hour() as f64 / 24.0) / days
    }

    /// The feature row at hour `i`, in [`FEATURES`] order.
    pub fn row_at(&self, i: usize) -> Result<Vec<f64>, FeatureError> {
        if i + 1 < INPUT_HOURS || i >= self.len() {
            return Err(FeatureError::NotEnoughHours {
                needed: INPUT_HOURS,
                got: (i + 1).min(self.len()),
            });
        }
        FEATURES
            .iter()
            .map(|f| {
                f.eval(self, i).ok_or_else(|| {
                    // Name the first missing input within the feature's look-back.
                    let lo = i - f.lookback();
                    let (variable, time) = f
                        .inputs()
                        .iter()
                        .find_map(|v| {
                            (lo..=i)
                                .find(|&j| self.series.column(*v)[j].is_none())
                                .map(|j| (v.name(), self.series.times()[j]))
                        })
                        .unwrap_or((TARGET.name(), self.series.times()[i]));
                    FeatureError::Missing {
                        variable,
                        time: format_time(time),
                    }
                })
            })
            .collect()
    }

    /// The targets of hour `i`: the temperature 1..=6 hours later, where known.
    pub fn targets_at(&self, i: usize) -> [Option<f64>; HORIZONS.len()] {
        let col = self.series.column(TARGET);
        HORIZONS.map(|h| col.get(i + h as usize).copied().flatten())
    }

    /// The time the forecast for horizon `h` made at hour `i` is for (`None` past the
    /// calendar's end).
    pub fn target_time(&self, i: usize, h: u8) -> Option<NaiveDateTime> {
        crate::observations::shift_hours(self.series.times()[i], i64::from(h))
    }
}

/// One serving row: the features at the newest hour of `series`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureRow {
    pub time: NaiveDateTime,
    pub values: Vec<f64>,
}

/// Builds the row a forecast is made from: the newest hour, computed from the last
/// [`INPUT_HOURS`] hours, which must be consecutive and complete.
pub fn serving_row(series: &HourlySeries) -> Result<FeatureRow, FeatureError> {
    if series.len() < INPUT_HOURS {
        return Err(FeatureError::NotEnoughHours {
            needed: INPUT_HOURS,
            got: series.len(),
        });
    }
    let tail = series.tail(INPUT_HOURS);
    let window = Window::new(&tail)?;
    let values = window.row_at(INPUT_HOURS - 1)?;
    Ok(FeatureRow {
        time: tail.times()[INPUT_HOURS - 1],
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_input_hours_follows_the_lookbacks() {
        let names = feature_names();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        assert_eq!(INPUT_HOURS, 25);
        assert_eq!(target_names()[5], "temperature_2m_h6");
    }
}

//! Transform: raw snapshots → one regular hourly series → the processed dataset.
//!
//! With polars: stack the snapshots, sort, drop duplicate hours (the newest snapshot
//! wins), and join onto a complete hourly axis so absent hours become explicit nulls.
//! Short gaps are then interpolated; long ones stay missing and the rows that would
//! need them are left out. Features and targets come from [`crate::features`], the
//! same code serving uses. The result is written as parquet.

use std::io::Cursor;

use chrono::{DateTime, NaiveDateTime};
use polars::prelude::*;

use crate::features::{FEATURES, HORIZONS, Window, feature_names, target_names};
use crate::observations::{HourlySeries, KEY_VARIABLES, RawSeries, Variable};

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error("polars: {0}")]
    Polars(#[from] PolarsError),
    #[error("{0}")]
    Series(#[from] crate::observations::SeriesError),
    #[error("{0}")]
    Features(#[from] crate::features::FeatureError),
    #[error("no usable rows: {0}")]
    Empty(String),
    #[error("the dataset is missing column {0}")]
    MissingColumn(String),
}

pub const TIME: &str = "time";
const SNAPSHOT: &str = "_snapshot";

fn datetime_column(name: &str, times: impl IntoIterator<Item = NaiveDateTime>) -> Column {
    let ms: Vec<i64> = times
        .into_iter()
        .map(|t| t.and_utc().timestamp_millis())
        .collect();
    Int64Chunked::from_vec(name.into(), ms)
        .into_datetime(TimeUnit::Milliseconds, None)
        .into_column()
}

fn read_times(df: &DataFrame) -> Result<Vec<NaiveDateTime>, TransformError> {
    let col = df
        .column(TIME)
        .map_err(|_| TransformError::MissingColumn(TIME.into()))?
        .datetime()?;
    col.physical()
        .iter()
        .map(|ms| {
            ms.and_then(DateTime::from_timestamp_millis)
                .map(|t| t.naive_utc())
                .ok_or_else(|| TransformError::Empty("a time is null or out of range".into()))
        })
        .collect()
}

fn read_f64(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, TransformError> {
    let col = df
        .column(name)
        .map_err(|_| TransformError::MissingColumn(name.into()))?;
    Ok(col.cast(&DataType::Float64)?.f64()?.iter().collect())
}

/// The snapshots as one frame: time, key variables and the snapshot's position.
fn stack(snapshots: &[HourlySeries]) -> Result<DataFrame, TransformError> {
    let mut frames = Vec::with_capacity(snapshots.len());
    for (order, s) in snapshots.iter().enumerate() {
        let mut cols = vec![datetime_column(TIME, s.times().iter().copied())];
        for v in KEY_VARIABLES {
            cols.push(Column::new(v.name().into(), s.column(v)));
        }
        cols.push(Column::new(SNAPSHOT.into(), vec![order as u32; s.len()]));
        frames.push(DataFrame::new_infer_height(cols)?.lazy());
    }
    Ok(concat(frames, UnionArgs::default())?.collect()?)
}

/// Statistics of the regularisation, for the manifest and the profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RegulariseStats {
    pub input_rows: usize,
    pub duplicate_hours: usize,
    pub absent_hours: usize,
    pub filled_values: usize,
    pub hours: usize,
}

/// Merges snapshots into one complete hourly axis with short gaps filled.
pub fn regularise(
    snapshots: &[RawSeries],
    max_fill_hours: u32,
) -> Result<(HourlySeries, RegulariseStats), TransformError> {
    let parsed: Vec<HourlySeries> = snapshots
        .iter()
        .map(HourlySeries::from_raw)
        .collect::<Result<_, _>>()?;
    let input_rows = parsed.iter().map(HourlySeries::len).sum();
    let stacked = stack(&parsed)?;
    let deduped = stacked
        .lazy()
        .sort([TIME, SNAPSHOT], SortMultipleOptions::default())
        .unique_stable_generic(Some(vec![col(TIME)]), UniqueKeepStrategy::Last)
        .collect()?;
    let times = read_times(&deduped)?;
    let (Some(first), Some(last)) = (times.first().copied(), times.last().copied()) else {
        return Err(TransformError::Empty("the snapshots hold no hours".into()));
    };
    let hours = (last - first).num_hours() as usize + 1;
    let axis = DataFrame::new_infer_height(vec![datetime_column(
        TIME,
        (0..hours).map(|h| first + chrono::Duration::hours(h as i64)),
    )])?;
    let full = axis
        .lazy()
        .left_join(deduped.clone().lazy(), col(TIME), col(TIME))
        .sort([TIME], SortMultipleOptions::default())
        .collect()?;

    let mut filled_values = 0;
    let mut columns = Vec::with_capacity(KEY_VARIABLES.len());
    for v in KEY_VARIABLES {
        let mut c = read_f64(&full, v.name())?;
        filled_values += fill_short_gaps(&mut c, max_fill_hours as usize, v == Variable::WindDirection10m);
        columns.push(c);
    }
    let series = HourlySeries::new(read_times(&full)?, columns)?;
    Ok((
        series,
        RegulariseStats {
            input_rows,
            duplicate_hours: input_rows - deduped.height(),
            absent_hours: hours - deduped.height(),
            filled_values,
            hours,
        },
    ))
}

/// Fills runs of at most `max` missing values that have a value on both sides:
/// linearly, or with the previous value for circular quantities (wind direction).
/// Returns how many values were filled.
pub fn fill_short_gaps(col: &mut [Option<f64>], max: usize, hold_previous: bool) -> usize {
    let mut filled = 0;
    let mut i = 0;
    while i < col.len() {
        if col[i].is_some() {
            i += 1;
            continue;
        }
        let start = i;
        while i < col.len() && col[i].is_none() {
            i += 1;
        }
        let len = i - start;
        if start == 0 || i == col.len() || len > max {
            continue;
        }
        let (a, b) = (col[start - 1].unwrap_or_default(), col[i].unwrap_or_default());
        for (k, slot) in col[start..i].iter_mut().enumerate() {
            let frac = (k + 1) as f64 / (len + 1) as f64;
            *slot = Some(if hold_previous { a } else { a + (b - a) * frac });
        }
        filled += len;
    }
    filled
}

/// The processed dataset: one row per hour with complete features and targets.
pub struct Dataset {
    pub frame: DataFrame,
}

impl Dataset {
    /// Builds features and targets for every hour that has them all.
    pub fn build(series: &HourlySeries) -> Result<Self, TransformError> {
        let window = Window::new(series)?;
        let mut times = Vec::new();
        let mut raw: Vec<Vec<f64>> = vec![Vec::new(); KEY_VARIABLES.len()];
        let mut feats: Vec<Vec<f64>> = vec![Vec::new(); FEATURES.len()];
        let mut targets: Vec<Vec<f64>> = vec![Vec::new(); HORIZONS.len()];
        for i in 0..window.len() {
            let Ok(row) = window.row_at(i) else { continue };
            let ts = window.targets_at(i);
            if ts.iter().any(Option::is_none) {
                continue;
            }
            times.push(series.times()[i]);
            for (k, v) in KEY_VARIABLES.iter().enumerate() {
                raw[k].push(series.column(*v)[i].unwrap_or(f64::NAN));
            }
            for (c, x) in feats.iter_mut().zip(row) {
                c.push(x);
            }
            for (c, y) in targets.iter_mut().zip(ts) {
                c.push(y.unwrap_or_default());
            }
        }
        if times.is_empty() {
            return Err(TransformError::Empty(
                "no hour has all the features and targets it needs".into(),
            ));
        }
        let mut cols = vec![datetime_column(TIME, times)];
        // Raw variables first (for the profile), prefixed so they never clash with a
        // feature of the same name.
        for (v, c) in KEY_VARIABLES.iter().zip(raw) {
            cols.push(Column::new(format!("obs_{}", v.name()).into(), c));
        }
        for (name, c) in feature_names().into_iter().zip(feats) {
            cols.push(Column::new(name.into(), c));
        }
        for (name, c) in target_names().into_iter().zip(targets) {
            cols.push(Column::new(name.into(), c));
        }
        Ok(Self {
            frame: DataFrame::new_infer_height(cols)?,
        })
    }

    pub fn rows(&self) -> usize {
        self.frame.height()
    }

    /// Parquet bytes. The encoding is deterministic: the same rows give the same bytes,
    /// so the md5 (the data version) only changes when the data does.
    pub fn to_parquet(&self) -> Result<Vec<u8>, TransformError> {
        let mut buf = Vec::new();
        let mut df = self.frame.clone();
        ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Zstd(None))
            .with_statistics(StatisticsOptions::full())
            .finish(&mut df)?;
        Ok(buf)
    }

    pub fn from_parquet(bytes: &[u8]) -> Result<Self, TransformError> {
        let frame = ParquetReader::new(Cursor::new(bytes)).finish()?;
        Ok(Self { frame })
    }

    pub fn times(&self) -> Result<Vec<NaiveDateTime>, TransformError> {
        read_times(&self.frame)
    }

    /// Dense columns by name (no nulls in a processed dataset).
    pub fn column(&self, name: &str) -> Result<Vec<f64>, TransformError> {
        read_f64(&self.frame, name)?
            .into_iter()
            .map(|v| v.ok_or_else(|| TransformError::Empty(format!("column {name} has nulls"))))
            .collect()
    }

    /// An observed variable as stored beside the features (`obs_<name>`); NaN is absent.
    pub fn observed(&self, var: crate::observations::Variable) -> Result<Vec<Option<f64>>, TransformError> {
        Ok(read_f64(&self.frame, &format!("obs_{}", var.name()))?
            .into_iter()
            .map(|v| v.filter(|x| x.is_finite()))
            .collect())
    }

    /// Feature rows (row-major, [`FEATURES`] order) and per-horizon targets.
    pub fn training_set(&self) -> Result<TrainingSet, TransformError> {
        let times = self.times()?;
        let feature_cols: Vec<Vec<f64>> = feature_names()
            .iter()
            .map(|n| self.column(n))
            .collect::<Result<_, _>>()?;
        let targets: Vec<Vec<f64>> = target_names()
            .iter()
            .map(|n| self.column(n))
            .collect::<Result<_, _>>()?;
        let rows = (0..times.len())
            .map(|i| feature_cols.iter().map(|c| c[i]).collect())
            .collect();
        Ok(TrainingSet { times, rows, targets })
    }

    pub fn column_names(&self) -> Vec<String> {
        self.frame
            .get_column_names()
            .into_iter()
            .map(|s| s.to_string())
            .collect()
    }
}

/// The dataset as the trainer wants it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainingSet {
    pub times: Vec<NaiveDateTime>,
    /// Row-major features in [`FEATURES`] order.
    pub rows: Vec<Vec<f64>>,
    /// One column per horizon in [`HORIZONS`] order.
    pub targets: Vec<Vec<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_interior_gaps_are_filled() {
        let mut c = vec![
            None,
            Some(1.0),
            None,
            None,
            Some(4.0),
            None,
            None,
            None,
            None,
            Some(0.0),
            None,
        ];
        let n = fill_short_gaps(&mut c, 3, false);
        assert_eq!(n, 2);
        assert_eq!(
            c,
            vec![
                None,
                Some(1.0),
                Some(2.0),
                Some(3.0),
                Some(4.0),
                None,
                None,
                None,
                None,
                Some(0.0),
                None
            ]
        );
        let mut d = vec![Some(350.0), None, Some(10.0)];
        fill_short_gaps(&mut d, 3, true);
        assert_eq!(d, vec![Some(350.0), Some(350.0), Some(10.0)]);
    }
}

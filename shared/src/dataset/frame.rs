//! The processed dataset as a polars frame: one row per hour with complete features and
//! targets, written as parquet. The transform builds it; train and evaluate read it.

use std::io::Cursor;

use chrono::{DateTime, NaiveDateTime};
use polars::prelude::*;

use crate::features::{FEATURES, HORIZONS, Window, feature_names, target_names};
use crate::observations::{HourlySeries, KEY_VARIABLES};

#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
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

pub(crate) fn datetime_column(name: &str, times: impl IntoIterator<Item = NaiveDateTime>) -> Column {
    let ms: Vec<i64> = times
        .into_iter()
        .map(|t| t.and_utc().timestamp_millis())
        .collect();
    Int64Chunked::from_vec(name.into(), ms)
        .into_datetime(TimeUnit::Milliseconds, None)
        .into_column()
}

pub(crate) fn read_times(df: &DataFrame) -> Result<Vec<NaiveDateTime>, DatasetError> {
    let col = df
        .column(TIME)
        .map_err(|_| DatasetError::MissingColumn(TIME.into()))?
        .datetime()?;
    col.physical()
        .iter()
        .map(|ms| {
            ms.and_then(DateTime::from_timestamp_millis)
                .map(|t| t.naive_utc())
                .ok_or_else(|| DatasetError::Empty("a time is null or out of range".into()))
        })
        .collect()
}

pub(crate) fn read_f64(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>, DatasetError> {
    let col = df
        .column(name)
        .map_err(|_| DatasetError::MissingColumn(name.into()))?;
    Ok(col.cast(&DataType::Float64)?.f64()?.iter().collect())
}

/// The processed dataset: one row per hour with complete features and targets.
pub struct Dataset {
    pub frame: DataFrame,
}

impl Dataset {
    /// Builds features and targets for every hour that has them all.
    pub fn build(series: &HourlySeries) -> Result<Self, DatasetError> {
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
            return Err(DatasetError::Empty(
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
    pub fn to_parquet(&self) -> Result<Vec<u8>, DatasetError> {
        let mut buf = Vec::new();
        let mut df = self.frame.clone();
        ParquetWriter::new(&mut buf)
            .with_compression(ParquetCompression::Zstd(None))
            .with_statistics(StatisticsOptions::full())
            .finish(&mut df)?;
        Ok(buf)
    }

    pub fn from_parquet(bytes: &[u8]) -> Result<Self, DatasetError> {
        let frame = ParquetReader::new(Cursor::new(bytes)).finish()?;
        Ok(Self { frame })
    }

    pub fn times(&self) -> Result<Vec<NaiveDateTime>, DatasetError> {
        read_times(&self.frame)
    }

    /// Dense columns by name (no nulls in a processed dataset).
    pub fn column(&self, name: &str) -> Result<Vec<f64>, DatasetError> {
        read_f64(&self.frame, name)?
            .into_iter()
            .map(|v| v.ok_or_else(|| DatasetError::Empty(format!("column {name} has nulls"))))
            .collect()
    }

    /// An observed variable as stored beside the features (`obs_<name>`); NaN is absent.
    pub fn observed(&self, var: crate::observations::Variable) -> Result<Vec<Option<f64>>, DatasetError> {
        Ok(read_f64(&self.frame, &format!("obs_{}", var.name()))?
            .into_iter()
            .map(|v| v.filter(|x| x.is_finite()))
            .collect())
    }

    /// Feature rows (row-major, [`FEATURES`] order) and per-horizon targets.
    pub fn training_set(&self) -> Result<TrainingSet, DatasetError> {
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

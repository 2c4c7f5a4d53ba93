//! What happened: the observations the verification scores against, merged from the
//! newest snapshots that passed the data quality gate.
//!
//! Snapshots are read newest first, and a newer snapshot's value of an hour wins (the
//! archive revises recent hours). Reading stops once the last week up to the newest
//! observed hour is covered, or after [`LOOKBACK`] snapshots: an hourly live ingest
//! covers the week by itself.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDateTime};

use crate::features::INPUT_HOURS;
use crate::observations::{HourlySeries, KEY_VARIABLES, SeriesError, TARGET};
use crate::snapshot;
use crate::stage::StageError;
use crate::store::{ObjectKey, ObjectStore};

use super::score::LiveWindow;

/// Snapshots read at most.
pub const LOOKBACK: usize = 48;

/// Hours kept before the newest: the week of targets, and a feature row's look-back
/// for the drift of its first hour.
const KEEP_HOURS: i64 = LiveWindow::Week.hours() + INPUT_HOURS as i64;

/// The observations of the last week or so.
pub struct Observed {
    /// Every key variable, by hour (not necessarily contiguous).
    pub series: HourlySeries,
    /// The newest observed hour: the verification's "now".
    pub as_of: Option<NaiveDateTime>,
    /// The snapshots read, newest first.
    pub snapshots: Vec<ObjectKey>,
    /// The newest of them, parsed: what the scheduled forecast is made from.
    pub newest: Option<(ObjectKey, HourlySeries)>,
}

impl Observed {
    /// The temperature by hour.
    pub fn temperatures(&self) -> BTreeMap<NaiveDateTime, f64> {
        self.series
            .times()
            .iter()
            .zip(self.series.column(TARGET))
            .filter_map(|(t, v)| v.map(|v| (*t, v)))
            .collect()
    }
}

fn covered(hours: &BTreeMap<NaiveDateTime, Vec<Option<f64>>>, as_of: NaiveDateTime) -> bool {
    let from = as_of - Duration::hours(LiveWindow::Week.hours());
    hours.range(from..=as_of).count() as i64 == LiveWindow::Week.hours() + 1
}

/// Reads the newest validated snapshots (`first`, when given, before any other).
pub async fn load(store: &dyn ObjectStore, first: Option<&ObjectKey>) -> Result<Observed, StageError> {
    let mut keys = snapshot::recent(store, chrono::Utc::now(), LOOKBACK).await?;
    keys.reverse();
    if let Some(f) = first {
        keys.retain(|k| k != f);
        keys.insert(0, f.clone());
    }
    let mut hours: BTreeMap<NaiveDateTime, Vec<Option<f64>>> = BTreeMap::new();
    let mut read = Vec::new();
    let mut newest = None;
    let mut as_of: Option<NaiveDateTime> = None;
    for key in keys.into_iter().take(LOOKBACK) {
        let passed = matches!(snapshot::quality_report(store, &key).await?, Some(r) if r.passed);
        if !passed {
            if Some(&key) == first {
                return Err(StageError::NotValidated {
                    snapshot: store.url(&key),
                    why: "its quality report is missing or failed".into(),
                });
            }
            continue;
        }
        let series = match snapshot::load(store, &key).await {
            Ok((raw, _)) => HourlySeries::from_raw(&raw).map_err(|e: SeriesError| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let series = match series {
            Ok(s) => s,
            Err(why) => {
                tracing::warn!(snapshot = %store.url(&key), "skipping a snapshot the verification cannot read: {why}");
                continue;
            }
        };
        for (i, t) in series.times().iter().enumerate() {
            hours
                .entry(*t)
                .or_insert_with(|| KEY_VARIABLES.iter().map(|v| series.column(*v)[i]).collect());
        }
        as_of = as_of.max(series.last_time());
        read.push(key.clone());
        if newest.is_none() {
            newest = Some((key, series));
        }
        if as_of.is_some_and(|t| covered(&hours, t)) {
            break;
        }
    }
    let series = match as_of {
        Some(t) => {
            let kept: Vec<_> = hours.range(t - Duration::hours(KEEP_HOURS)..=t).collect();
            let times = kept.iter().map(|(t, _)| **t).collect();
            let columns = (0..KEY_VARIABLES.len())
                .map(|j| kept.iter().map(|(_, v)| v[j]).collect())
                .collect();
            HourlySeries::new(times, columns)
                .map_err(|e| StageError::Internal(format!("merging observations: {e}")))?
        }
        None => HourlySeries::new(Vec::new(), vec![Vec::new(); KEY_VARIABLES.len()])
            .map_err(|e| StageError::Internal(e.to_string()))?,
    };
    Ok(Observed {
        series,
        as_of,
        snapshots: read,
        newest,
    })
}

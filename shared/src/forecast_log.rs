//! The forecast log: the forecasts rps issues, kept so that they can be scored once the
//! hours they are for have been observed (the verify stage).
//!
//! Two writers append to it: the verify stage, with the scheduled forecast of each
//! live ingest, and the API, with a bounded sample of its `/predict` answers
//! ([`Sampler`]), batched so that no request waits on the store. The log is
//! append-only: each write is a new immutable segment (JSON lines) in the folder of
//! the day the forecasts were issued on ([`layout::forecast_log_segment`]), so a reader
//! lists only the days it needs and a writer never touches another's bytes.
//!
//! A line that does not parse, or a record that contradicts itself (a target time that
//! is not its issue time plus its horizon, a value that is not finite), is skipped with
//! a warning and counted: one bad writer cannot stop verification.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::bundle::Forecast;
use crate::features::FeatureRow;
use crate::layout;
use crate::observations::shift_hours;
use crate::scores::Baseline;
use crate::store::{ObjectKey, ObjectStore, StoreError};

/// Who issued a forecast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForecastSource {
    /// The verify stage, from the newest validated observations (hourly, after ingest).
    Scheduled,
    /// A sampled `/predict` answer.
    Predict,
}

/// One horizon of a logged forecast.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LoggedHorizon {
    pub hours: u8,
    /// The hour the forecast is for: the issue hour plus `hours`.
    pub target_time: NaiveDateTime,
    pub temperature_2m: f64,
}

/// One forecast as the log keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedForecast {
    pub model_name: String,
    pub model_version: String,
    pub source: ForecastSource,
    /// The newest observed hour the forecast was made from (UTC).
    pub issued_at: NaiveDateTime,
    /// The temperature observed at `issued_at`: what persistence forecasts for every
    /// horizon, and how verification recognises the station's own observations.
    pub observed_temperature: f64,
    /// When it was made (the clock of the process that made it).
    pub made_at: DateTime<Utc>,
    /// The newest hour the model's own data reached ([`crate::bundle::ModelMetadata::data_end`]):
    /// a forecast issued before it is in-sample, and not scored.
    #[serde(default)]
    pub data_end: Option<NaiveDateTime>,
    pub horizons: Vec<LoggedHorizon>,
}

/// Horizons a record may claim: rps forecasts up to 6 h; anything past two days is a
/// corrupt record, not a forecast.
const MAX_HORIZON: u8 = 48;

impl LoggedForecast {
    /// The record of `forecasts`, made from `row` by `name` version `version`, whose
    /// data reached `data_end`.
    pub fn new(
        name: &str,
        version: &str,
        source: ForecastSource,
        row: &FeatureRow,
        forecasts: &[Forecast],
        data_end: Option<NaiveDateTime>,
    ) -> Self {
        let persistence = Baseline::Persistence.feature_index(1);
        Self {
            model_name: name.to_owned(),
            model_version: version.to_owned(),
            source,
            issued_at: row.time,
            observed_temperature: row.values.get(persistence).copied().unwrap_or(f64::NAN),
            made_at: Utc::now(),
            data_end,
            horizons: forecasts
                .iter()
                .filter_map(|f| {
                    Some(LoggedHorizon {
                        hours: f.horizon_hours,
                        target_time: shift_hours(row.time, i64::from(f.horizon_hours))?,
                        temperature_2m: f.temperature_2m,
                    })
                })
                .collect(),
        }
    }

    /// Why the record cannot be scored, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.model_version.is_empty() {
            return Some("no model version".into());
        }
        if !self.observed_temperature.is_finite() {
            return Some("the observed temperature is not a number".into());
        }
        if self.horizons.is_empty() {
            return Some("no horizons".into());
        }
        for h in &self.horizons {
            if h.hours == 0 || h.hours > MAX_HORIZON {
                return Some(format!("a horizon of {} h", h.hours));
            }
            if shift_hours(self.issued_at, i64::from(h.hours)) != Some(h.target_time) {
                return Some(format!(
                    "the {} h forecast is for {}, not {} h after {}",
                    h.hours, h.target_time, h.hours, self.issued_at
                ));
            }
            if !h.temperature_2m.is_finite() {
                return Some(format!("the {} h forecast is not a number", h.hours));
            }
        }
        None
    }
}

/// A segment's bytes: one JSON object per line.
pub fn encode_segment(records: &[LoggedForecast]) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.len() * 400);
    for r in records {
        // A record of plain numbers, strings and times always serialises.
        if let Ok(line) = serde_json::to_vec(r) {
            out.extend_from_slice(&line);
            out.push(b'\n');
        }
    }
    out
}

/// The records of a segment, and how many of its lines had to be skipped.
pub fn decode_segment(bytes: &[u8], url: &str) -> (Vec<LoggedForecast>, usize) {
    let mut records = Vec::new();
    let mut skipped = 0;
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<LoggedForecast>(line) {
            Ok(r) => match r.problem() {
                None => records.push(r),
                Some(why) => {
                    skipped += 1;
                    tracing::warn!(segment = %url, line = i + 1, "skipping a forecast log record: {why}");
                }
            },
            Err(e) => {
                skipped += 1;
                tracing::warn!(segment = %url, line = i + 1, "skipping a forecast log line that does not parse: {e}");
            }
        }
    }
    (records, skipped)
}

/// Appends `records` to the log: one new segment per issue day. Returns the keys
/// written. A segment is written whole or not at all.
pub async fn append(
    store: &dyn ObjectStore,
    name: &str,
    records: &[LoggedForecast],
) -> Result<Vec<ObjectKey>, StoreError> {
    let mut by_day: BTreeMap<NaiveDate, Vec<LoggedForecast>> = BTreeMap::new();
    for r in records {
        by_day.entry(r.issued_at.date()).or_default().push(r.clone());
    }
    let now = Utc::now();
    let mut keys = Vec::with_capacity(by_day.len());
    for (day, recs) in by_day {
        let key = layout::forecast_log_segment(name, day, now, rand::random())?;
        store.put_new(&key, encode_segment(&recs).into()).await?;
        keys.push(key);
    }
    Ok(keys)
}

/// What reading the log found.
#[derive(Debug, Default)]
pub struct LogRead {
    pub records: Vec<LoggedForecast>,
    pub segments: usize,
    /// Lines that did not parse or records that contradicted themselves.
    pub skipped: usize,
}

/// Every record issued on the days `from..=to`.
pub async fn read_days(
    store: &dyn ObjectStore,
    name: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<LogRead, StoreError> {
    let mut out = LogRead::default();
    let mut day = from;
    while day <= to {
        for key in store.list(&layout::forecast_log_day(name, day)).await? {
            let bytes = match store.get(&key).await {
                Ok(b) => b,
                // Listed, then gone: nothing to read (segments are never deleted by rps).
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            let (records, skipped) = decode_segment(&bytes, &store.url(&key));
            out.records.extend(records);
            out.skipped += skipped;
            out.segments += 1;
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    Ok(out)
}

/// What happened to a forecast offered to the [`Sampler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// Kept for the next flush.
    Kept,
    /// The same model already forecast from the same observations recently.
    Duplicate,
    /// Kept in place of an earlier one, or not kept: the batch is full.
    SampledOut,
}

/// A bounded, uniform sample of the forecasts offered between two flushes (reservoir
/// sampling), with repeats dropped: the same model forecasting from the same
/// observations says nothing new, however many clients ask. Memory is bounded by the
/// batch size and the number of recent keys remembered.
pub struct Sampler {
    inner: Mutex<SamplerState>,
    max_per_batch: usize,
}

struct SamplerState {
    /// Distinct forecasts offered since the last take.
    offered: u64,
    batch: Vec<LoggedForecast>,
    seen: HashSet<u64>,
    seen_order: VecDeque<u64>,
}

/// Recent forecasts remembered for dropping repeats (a day of hourly requests for a
/// hundred stations, say).
const REMEMBERED: usize = 4096;

impl Sampler {
    pub fn new(max_per_batch: usize) -> Self {
        Self {
            inner: Mutex::new(SamplerState {
                offered: 0,
                batch: Vec::new(),
                seen: HashSet::new(),
                seen_order: VecDeque::new(),
            }),
            max_per_batch,
        }
    }

    /// Whether sampling is on (`RPS_FORECAST_LOG_SAMPLE` above 0).
    pub fn enabled(&self) -> bool {
        self.max_per_batch > 0
    }

    /// Offers a forecast: `make` builds the record only when it is kept.
    pub fn offer(&self, version: &str, row: &FeatureRow, make: impl FnOnce() -> LoggedForecast) -> Offered {
        if !self.enabled() {
            return Offered::SampledOut;
        }
        let key = {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            version.hash(&mut h);
            row.time.hash(&mut h);
            for v in &row.values {
                v.to_bits().hash(&mut h);
            }
            h.finish()
        };
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if !g.seen.insert(key) {
            return Offered::Duplicate;
        }
        g.seen_order.push_back(key);
        if g.seen_order.len() > REMEMBERED
            && let Some(old) = g.seen_order.pop_front()
        {
            g.seen.remove(&old);
        }
        g.offered += 1;
        if g.batch.len() < self.max_per_batch {
            g.batch.push(make());
            return Offered::Kept;
        }
        let j = rand::random_range(0..g.offered);
        if (j as usize) < self.max_per_batch {
            g.batch[j as usize] = make();
        }
        Offered::SampledOut
    }

    /// The batch so far, leaving an empty one.
    pub fn take(&self) -> Vec<LoggedForecast> {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.offered = 0;
        std::mem::take(&mut g.batch)
    }

    /// Puts back a batch whose write failed, as far as there is room.
    pub fn restore(&self, records: Vec<LoggedForecast>) -> usize {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let room = self.max_per_batch.saturating_sub(g.batch.len());
        let n = records.len().min(room);
        g.batch.extend(records.into_iter().take(n));
        n
    }

    pub fn pending(&self) -> usize {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).batch.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::FEATURES;
    use crate::observations::parse_time;
    use crate::store::MemoryStore;

    fn row(hour: &str, temp: f64) -> FeatureRow {
        let mut values = vec![0.0; FEATURES.len()];
        values[Baseline::Persistence.feature_index(1)] = temp;
        FeatureRow {
            time: parse_time(hour).unwrap(),
            values,
        }
    }

    fn forecasts(r: &FeatureRow) -> Vec<Forecast> {
        (1..=6u8)
            .map(|h| Forecast {
                horizon_hours: h,
                time: crate::observations::format_time(shift_hours(r.time, i64::from(h)).unwrap()),
                temperature_2m: 5.0 + f64::from(h),
            })
            .collect()
    }

    fn record(hour: &str, temp: f64) -> LoggedForecast {
        let r = row(hour, temp);
        LoggedForecast::new("m", "3", ForecastSource::Predict, &r, &forecasts(&r), None)
    }

    #[test]
    fn a_record_knows_its_target_times_and_persistence() {
        let r = record("2023-04-01T23:00", 4.5);
        assert_eq!(r.observed_temperature, 4.5);
        assert_eq!(r.horizons[0].target_time, parse_time("2023-04-02T00:00").unwrap());
        assert_eq!(r.horizons[5].target_time, parse_time("2023-04-02T05:00").unwrap());
        assert_eq!(r.problem(), None);
    }

    #[tokio::test]
    async fn the_log_is_written_per_issue_day_and_bad_lines_are_skipped_and_counted() {
        let store = MemoryStore::new();
        let recs = [record("2023-04-01T22:00", 1.0), record("2023-04-02T01:00", 2.0)];
        let keys = append(&store, "m", &recs).await.unwrap();
        assert_eq!(keys.len(), 2, "one segment per issue day");
        assert!(
            keys[0].as_str().starts_with("forecasts/m/2023/04/01/"),
            "{keys:?}"
        );
        // A writer that went wrong: a line that is not JSON, a record whose target time
        // is not its issue time plus its horizon, one that is fine.
        let mut broken = record("2023-04-02T03:00", 3.0);
        broken.horizons[2].target_time = parse_time("2023-04-02T09:00").unwrap();
        let mut body = b"{not json\n".to_vec();
        body.extend(encode_segment(&[broken, record("2023-04-02T04:00", 4.0)]));
        let key =
            layout::forecast_log_segment("m", parse_time("2023-04-02T00:00").unwrap().date(), Utc::now(), 7)
                .unwrap();
        store.put_new(&key, body.into()).await.unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let read = read_days(&store, "m", d("2023-03-31"), d("2023-04-02"))
            .await
            .unwrap();
        assert_eq!((read.records.len(), read.skipped, read.segments), (3, 2, 3));
        let only_first = read_days(&store, "m", d("2023-04-01"), d("2023-04-01"))
            .await
            .unwrap();
        assert_eq!(only_first.records, vec![recs[0].clone()]);
    }

    #[test]
    fn the_sampler_drops_repeats_and_keeps_at_most_a_batch() {
        let s = Sampler::new(3);
        let r = row("2023-04-01T00:00", 1.0);
        assert_eq!(
            s.offer("3", &r, || record("2023-04-01T00:00", 1.0)),
            Offered::Kept
        );
        assert_eq!(
            s.offer("3", &r, || unreachable!("a repeat is not built")),
            Offered::Duplicate
        );
        // The same observations under another model version are a new forecast.
        assert_eq!(
            s.offer("4", &r, || record("2023-04-01T00:00", 1.0)),
            Offered::Kept
        );
        for i in 0..50 {
            let hour = format!("2023-04-02T{:02}:00", i % 24);
            let r = row(&hour, f64::from(i));
            s.offer("3", &r, || record(&hour, f64::from(i)));
        }
        assert_eq!(s.pending(), 3);
        assert_eq!(s.take().len(), 3);
        assert_eq!(s.pending(), 0);
        assert_eq!(s.restore(vec![record("2023-04-03T00:00", 0.0); 5]), 3, "bounded");
        let off = Sampler::new(0);
        assert!(!off.enabled());
        assert_eq!(off.offer("3", &r, || unreachable!()), Offered::SampledOut);
    }
}

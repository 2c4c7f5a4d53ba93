//! The forecast log: the forecasts rps issues, kept so that they can be scored once the
//! hours they are for have been observed (the verify stage).
//!
//! Two writers append to it, each to its own folder: the verify stage, with the
//! scheduled forecast of each live ingest ([`layout::forecast_log_segment`]), and the
//! API, with a bounded sample of its `/predict` answers ([`Sampler`]), batched so that
//! no request waits on the store, into a fixed number of slots per issue day
//! ([`append_served`]): the client records of a day are bounded across every instance,
//! and the API cannot write where the scheduled forecasts are. The log is append-only:
//! each write is a new immutable segment (JSON lines) in the folder of the day the
//! forecasts were issued on, so a reader lists only the days it needs and a writer
//! never touches another's bytes. Reading keeps one record per model version, issue
//! hour and source as it goes ([`read_days`]), so verification's memory does not grow
//! with traffic.
//!
//! A line that does not parse, or a record that contradicts itself (a target time that
//! is not its issue time plus its horizon, a value that is not finite), is skipped with
//! a warning and counted: one bad writer cannot stop verification.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::bundle::{Forecast, Interval};
use crate::features::FeatureRow;
use crate::layout;
use crate::observations::shift_hours;
use crate::recalibration;
use crate::records::skill::IntervalScale;
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoggedHorizon {
    pub hours: u8,
    /// The hour the forecast is for: the issue hour plus `hours`.
    pub target_time: NaiveDateTime,
    pub temperature_2m: f64,
    /// Its prediction intervals; none from a model without them, or in a record
    /// written before them (scored for its point forecast only). An interval that does
    /// not hold the forecast, or is not one, is left out of the scores.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub intervals: Vec<Interval>,
    /// The live re-calibration factors its intervals were served with
    /// ([`crate::recalibration`]), per level; a level without one was served as
    /// calibrated.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scales: Vec<AppliedScale>,
}

/// The factor an interval's calibrated half-width was multiplied by when it was served.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AppliedScale {
    pub level: f64,
    pub scale: f64,
}

impl LoggedHorizon {
    /// The factor the interval at `level` was served with (1 without one).
    pub fn served_with(&self, level: f64) -> f64 {
        self.scales
            .iter()
            .find(|s| s.level == level)
            .map_or(1.0, |s| s.scale)
    }

    /// The intervals verification can score: a level in (0, 1), finite bounds around
    /// the forecast.
    pub fn valid_intervals(&self) -> impl Iterator<Item = &Interval> {
        self.intervals.iter().filter(|i| {
            i.level > 0.0
                && i.level < 1.0
                && i.lower.is_finite()
                && i.upper.is_finite()
                && i.lower <= self.temperature_2m
                && self.temperature_2m <= i.upper
        })
    }
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
    /// data reached `data_end`, their intervals re-calibrated by `scales`.
    pub fn new(
        name: &str,
        version: &str,
        source: ForecastSource,
        row: &FeatureRow,
        forecasts: &[Forecast],
        data_end: Option<NaiveDateTime>,
        scales: &[IntervalScale],
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
                        intervals: f.intervals.clone(),
                        scales: f
                            .intervals
                            .iter()
                            .filter_map(|i| {
                                let scale = recalibration::lookup(scales, f.horizon_hours, i.level)?;
                                Some(AppliedScale {
                                    level: i.level,
                                    scale,
                                })
                            })
                            .collect(),
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

/// Slots per issue day for client forecasts: with at most `RPS_FORECAST_LOG_SAMPLE`
/// records a segment, the day's client records are bounded across every instance of
/// the API, however many there are and however much traffic they take.
pub const SERVED_SLOTS_PER_DAY: u32 = 48;

/// A day's slots open with the hours of the wall clock, this many an hour: by hour `h`
/// of its own day a flush may take any of the first `(h + 1) ×` this, so traffic
/// early in a day cannot take the slots of its later hours (one instance flushing
/// every minute would otherwise fill a whole day's by 00:48). A past day's are all
/// open; a day still to come (a client's history can claim any date) has the first
/// hour's only.
pub const SERVED_SLOTS_PER_HOUR: u32 = SERVED_SLOTS_PER_DAY / 24;

/// Free slots a flush looks for, one after another from a random open slot, before it
/// drops its records (so drops may begin a little before every open slot is taken).
const SLOT_TRIES: u32 = 4;

/// How many of `day`'s slots are open at `now`.
pub fn open_slots(day: NaiveDate, now: DateTime<Utc>) -> u32 {
    use chrono::Timelike;
    let today = now.date_naive();
    if day < today {
        SERVED_SLOTS_PER_DAY
    } else if day == today {
        (now.hour() + 1) * SERVED_SLOTS_PER_HOUR
    } else {
        SERVED_SLOTS_PER_HOUR
    }
}

/// What [`append_served`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Appended {
    pub written: usize,
    /// Records of days whose slots were taken: dropped, by design.
    pub dropped: usize,
}

/// Appends sampled `/predict` answers: per issue day, one segment in a free slot among
/// those [`open_slots`] at `now` (create-only writes; a taken slot tries the next). When
/// none is found the records are dropped, not queued.
pub async fn append_served(
    store: &dyn ObjectStore,
    name: &str,
    records: &[LoggedForecast],
    now: DateTime<Utc>,
) -> Result<Appended, StoreError> {
    let mut by_day: BTreeMap<NaiveDate, Vec<LoggedForecast>> = BTreeMap::new();
    for r in records {
        by_day.entry(r.issued_at.date()).or_default().push(r.clone());
    }
    let mut out = Appended::default();
    for (day, recs) in by_day {
        let body = bytes::Bytes::from(encode_segment(&recs));
        let mut written = false;
        let open = open_slots(day, now);
        let start = rand::random_range(0..open);
        for i in 0..open.min(SLOT_TRIES) {
            let slot = (start + i) % open;
            match store
                .put_new(&layout::served_log_slot(name, day, slot)?, body.clone())
                .await
            {
                Ok(()) => {
                    written = true;
                    break;
                }
                Err(StoreError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        if written {
            out.written += recs.len();
        } else {
            out.dropped += recs.len();
        }
    }
    Ok(out)
}

/// The log as verification needs it: one record per model version and issue hour for
/// each source, kept while reading (memory does not grow with the number of records).
#[derive(Debug, Default)]
pub struct LogRead {
    /// What the deployment issued (the verify stage's own forecasts).
    pub scheduled: Vec<LoggedForecast>,
    /// What clients were answered (`/predict`): scored and reported, never decisive.
    pub client: Vec<LoggedForecast>,
    /// Records read, before repeats were dropped.
    pub records: usize,
    /// The same model and issue hour read again (from the same source).
    pub duplicates: usize,
    pub segments: usize,
    /// Lines that did not parse or records that contradicted themselves.
    pub skipped: usize,
}

type Kept = HashMap<(String, NaiveDateTime), LoggedForecast>;

/// Keeps one record per version and issue hour: the earliest made (deterministic
/// whatever order segments arrive in).
fn keep(map: &mut Kept, r: LoggedForecast) -> bool {
    match map.entry((r.model_version.clone(), r.issued_at)) {
        std::collections::hash_map::Entry::Occupied(mut e) => {
            if r.made_at < e.get().made_at {
                e.insert(r);
            }
            false
        }
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(r);
            true
        }
    }
}

/// Segments fetched at once.
const READ_CONCURRENCY: usize = 8;

/// The records issued on the days `from..=to`: the scheduled forecasts (`forecasts/`;
/// a client record found there, written before the two were apart, counts as a
/// client's) and the client forecasts (`served/`, whatever a record there claims).
pub async fn read_days(
    store: &Arc<dyn ObjectStore>,
    name: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<LogRead, StoreError> {
    let mut keys: Vec<(ObjectKey, bool)> = Vec::new();
    let mut day = from;
    while day <= to {
        for k in store.list(&layout::forecast_log_day(name, day)).await? {
            keys.push((k, false));
        }
        for k in store.list(&layout::served_log_day(name, day)).await? {
            keys.push((k, true));
        }
        let Some(next) = day.succ_opt() else { break };
        day = next;
    }
    let (mut scheduled, mut client) = (Kept::new(), Kept::new());
    let mut out = LogRead::default();
    let mut pending = keys.into_iter();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        while tasks.len() < READ_CONCURRENCY
            && let Some((key, served)) = pending.next()
        {
            let store = store.clone();
            tasks.spawn(async move {
                let url = store.url(&key);
                match store.get(&key).await {
                    Ok(bytes) => Ok(Some((decode_segment(&bytes, &url), served))),
                    // Listed, then gone (expired): nothing to read.
                    Err(StoreError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            });
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let Some(((records, skipped), served)) =
            done.map_err(|e| StoreError::io("read", "the forecast log", e.to_string()))??
        else {
            continue;
        };
        out.segments += 1;
        out.skipped += skipped;
        for mut r in records {
            out.records += 1;
            let map = if served || r.source != ForecastSource::Scheduled {
                r.source = ForecastSource::Predict;
                &mut client
            } else {
                &mut scheduled
            };
            if !keep(map, r) {
                out.duplicates += 1;
            }
        }
    }
    out.scheduled = scheduled.into_values().collect();
    out.client = client.into_values().collect();
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
                intervals: Vec::new(),
            })
            .collect()
    }

    fn record(hour: &str, temp: f64) -> LoggedForecast {
        let r = row(hour, temp);
        LoggedForecast::new("m", "3", ForecastSource::Predict, &r, &forecasts(&r), None, &[])
    }

    #[test]
    fn a_record_knows_its_target_times_and_persistence() {
        let r = record("2023-04-01T23:00", 4.5);
        assert_eq!(r.observed_temperature, 4.5);
        assert_eq!(r.horizons[0].target_time, parse_time("2023-04-02T00:00").unwrap());
        assert_eq!(r.horizons[5].target_time, parse_time("2023-04-02T05:00").unwrap());
        assert_eq!(r.problem(), None);
    }

    #[test]
    fn a_record_keeps_the_factors_its_intervals_were_served_with_and_an_old_line_reads_as_calibrated() {
        let r = row("2023-04-01T23:00", 4.5);
        let mut f = forecasts(&r);
        for x in &mut f {
            x.intervals = vec![
                Interval {
                    level: 0.8,
                    lower: x.temperature_2m - 1.0,
                    upper: x.temperature_2m + 1.0,
                },
                Interval {
                    level: 0.95,
                    lower: x.temperature_2m - 2.0,
                    upper: x.temperature_2m + 2.0,
                },
            ];
        }
        let scale = IntervalScale {
            horizon: 6,
            level: 0.8,
            scale: 1.25,
            hours: 100,
            calibrated_coverage: 0.7,
        };
        let logged = LoggedForecast::new("m", "3", ForecastSource::Scheduled, &r, &f, None, &[scale]);
        assert_eq!(
            logged.horizons[5].scales,
            [AppliedScale {
                level: 0.8,
                scale: 1.25
            }]
        );
        assert_eq!(logged.horizons[5].served_with(0.8), 1.25);
        assert_eq!(logged.horizons[5].served_with(0.95), 1.0);
        assert!(logged.horizons[0].scales.is_empty());
        let line = serde_json::to_string(&logged).unwrap();
        let back: LoggedForecast = serde_json::from_str(&line).unwrap();
        assert_eq!(back, logged);
        // A line written before re-calibration has no `scales`: served as calibrated.
        let old = line.replace(r#","scales":[{"level":0.8,"scale":1.25}]"#, "");
        assert_ne!(old, line);
        let back: LoggedForecast = serde_json::from_str(&old).unwrap();
        assert_eq!(back.horizons[5].served_with(0.8), 1.0);
    }

    #[tokio::test]
    async fn the_log_is_written_per_issue_day_and_bad_lines_are_skipped_and_counted() {
        let mem = Arc::new(MemoryStore::new());
        let store: Arc<dyn ObjectStore> = mem.clone();
        let mut scheduled = record("2023-04-01T22:00", 1.0);
        scheduled.source = ForecastSource::Scheduled;
        let recs = [scheduled.clone(), record("2023-04-02T01:00", 2.0)];
        let keys = append(store.as_ref(), "m", &recs).await.unwrap();
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
        assert_eq!(
            (
                read.scheduled.len(),
                read.client.len(),
                read.skipped,
                read.segments
            ),
            (1, 2, 2, 3),
            "a client record among the scheduled ones counts as a client's"
        );
        let only_first = read_days(&store, "m", d("2023-04-01"), d("2023-04-01"))
            .await
            .unwrap();
        assert_eq!(only_first.scheduled, vec![scheduled]);
    }

    #[tokio::test]
    async fn client_records_fill_a_fixed_number_of_slots_and_never_pass_for_scheduled_ones() {
        let mem = Arc::new(MemoryStore::new());
        let store: Arc<dyn ObjectStore> = mem.clone();
        // A hostile writer cannot make its records scheduled by saying so.
        let mut claims = record("2023-04-02T05:00", 5.0);
        claims.source = ForecastSource::Scheduled;
        let mut written = 0;
        let mut dropped = 0;
        // Far more flushes than slots, as many instances would write, all day long.
        let midnight = "2023-04-02T00:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let flush = |i: u32, at: DateTime<Utc>| {
            let mut r = record(&format!("2023-04-02T{:02}:00", i % 24), f64::from(i));
            r.made_at += chrono::Duration::seconds(i64::from(i));
            let batch = [r, claims.clone()];
            let store = store.clone();
            async move { append_served(store.as_ref(), "m", &batch, at).await.unwrap() }
        };
        // The first hour's flood takes the first hour's slots only…
        for i in 0..60 {
            let a = flush(i, midnight + chrono::Duration::minutes(i64::from(i))).await;
            written += a.written;
            dropped += a.dropped;
        }
        assert_eq!(written, 2 * SERVED_SLOTS_PER_HOUR as usize);
        assert_eq!(dropped, 2 * (60 - SERVED_SLOTS_PER_HOUR as usize));
        // …a later hour still finds its own…
        let a = flush(100, midnight + chrono::Duration::hours(13)).await;
        assert_eq!((a.written, a.dropped), (2, 0));
        written += a.written;
        // …and once the day is over, the rest are open, never more than the day's.
        for i in 0..(SERVED_SLOTS_PER_DAY * 4) {
            let a = flush(200 + i, midnight + chrono::Duration::hours(30)).await;
            written += a.written;
            dropped += a.dropped;
        }
        assert!(dropped > 2 * 60, "a full day drops");
        let keys = store.list("served/m/2023/04/02/").await.unwrap();
        assert!(keys.len() <= SERVED_SLOTS_PER_DAY as usize, "{}", keys.len());
        assert!(keys.len() > SERVED_SLOTS_PER_DAY as usize / 2, "{}", keys.len());
        assert_eq!(written, keys.len() * 2, "two records a segment");
        assert!(store.list("forecasts/").await.unwrap().is_empty());
        let d = NaiveDate::from_ymd_opt(2023, 4, 2).unwrap();
        let read = read_days(&store, "m", d, d).await.unwrap();
        assert!(read.scheduled.is_empty(), "{:?}", read.scheduled);
        assert_eq!(read.records, written);
        // One record per version and issue hour: 24 hours, whatever the traffic.
        assert!(read.client.len() <= 24, "{}", read.client.len());
        assert!(read.client.iter().all(|r| r.source == ForecastSource::Predict));
    }

    #[test]
    fn a_days_slots_open_with_its_hours() {
        let at = |t: &str| t.parse::<DateTime<Utc>>().unwrap();
        let d = NaiveDate::from_ymd_opt(2023, 4, 2).unwrap();
        assert_eq!(open_slots(d, at("2023-04-02T00:59:00Z")), SERVED_SLOTS_PER_HOUR);
        assert_eq!(
            open_slots(d, at("2023-04-02T11:00:00Z")),
            12 * SERVED_SLOTS_PER_HOUR
        );
        assert_eq!(open_slots(d, at("2023-04-02T23:30:00Z")), SERVED_SLOTS_PER_DAY);
        assert_eq!(open_slots(d, at("2023-04-03T00:00:00Z")), SERVED_SLOTS_PER_DAY);
        assert_eq!(open_slots(d, at("2023-04-01T23:00:00Z")), SERVED_SLOTS_PER_HOUR);
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

//! Drift: how recent inputs compare with the data the served model was trained on: the
//! API's recent requests (`GET /drift`), and the verify stage's observed hours.
//!
//! Over a sliding window of the last N prediction requests it keeps, per feature, how
//! many fell outside the training range ([`FeatureStats::in_training_range`]) and a
//! histogram on the training histogram's bins. From those come the share of requests
//! with any weather feature out of range and each feature's population stability index
//! (PSI) against training. PSI above 0.1 is commonly read as a moderate shift, above
//! 0.2–0.25 as a significant one.
//!
//! The verdict ([`DriftSnapshot::drifting`]) is one rule, used by `/drift`, the
//! `rps_drift_detected` gauge, the alerts and the drift-triggered retraining: with at
//! least `min_requests` in the window, drift is a share of out-of-range requests above
//! `max_out_of_range_share`, or a weather feature's PSI above `max_psi`. Calendar
//! features (hour, day of year) are left out of the PSI rule: a window of recent
//! requests covers a few weeks of one season by nature, so their histogram says when
//! the requests came, not that the weather moved.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::bundle::{FeatureStats, Histogram};
use crate::features::FEATURES;

/// Fewer requests than this give no PSI: a handful of rows cannot fill 20 bins.
pub const MIN_REQUESTS_FOR_PSI: usize = 20;

/// PSI of `actual` against `expected` bin counts, proportions floored at 1e-4.
pub fn psi(expected: &[u64], actual: &[u64]) -> f64 {
    let (te, ta) = (
        expected.iter().sum::<u64>() as f64,
        actual.iter().sum::<u64>() as f64,
    );
    if te == 0.0 || ta == 0.0 {
        return 0.0;
    }
    expected
        .iter()
        .zip(actual)
        .map(|(e, a)| {
            let p = (*e as f64 / te).max(1e-4);
            let q = (*a as f64 / ta).max(1e-4);
            (q - p) * (q / p).ln()
        })
        .sum()
}

pub use crate::config::DriftThresholds;

fn is_calendar(feature: &str) -> bool {
    FEATURES.iter().any(|f| f.is_calendar() && f.name() == feature)
}

struct Record {
    bins: Vec<u16>,
    out: Vec<bool>,
    /// A weather feature was out of range (what the share counts).
    weather_out: bool,
}

struct Inner {
    window: usize,
    stats: Arc<Vec<FeatureStats>>,
    /// Per feature of `stats`: a calendar feature, which the drift rule leaves out.
    calendar: Vec<bool>,
    recent: VecDeque<Record>,
    counts: Vec<Vec<u64>>,
    out_counts: Vec<u64>,
    any_out: u64,
}

impl Inner {
    fn new(window: usize, stats: Arc<Vec<FeatureStats>>) -> Self {
        Self {
            counts: stats.iter().map(|s| vec![0; s.histogram.counts.len()]).collect(),
            out_counts: vec![0; stats.len()],
            calendar: stats.iter().map(|s| is_calendar(&s.name)).collect(),
            recent: VecDeque::with_capacity(window),
            any_out: 0,
            window,
            stats,
        }
    }
}

pub struct DriftTracker {
    inner: Mutex<Inner>,
    thresholds: DriftThresholds,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct FeatureDrift {
    pub feature: String,
    /// A calendar feature (hour, day of year): reported, left out of the drift rule.
    pub calendar: bool,
    pub out_of_range_share: f64,
    /// `None` until the window holds [`MIN_REQUESTS_FOR_PSI`] requests.
    pub psi: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct DriftSnapshot {
    /// Requests in the window.
    pub requests: usize,
    pub window: usize,
    /// Share of those with any weather feature outside its training range.
    pub out_of_range_share: f64,
    pub max_psi: Option<f64>,
    /// Every feature, largest PSI first.
    pub features: Vec<FeatureDrift>,
    /// The rule's verdict on this window.
    pub drifting: bool,
    /// Why it is drifting (empty when it is not).
    pub reasons: Vec<String>,
    pub thresholds: DriftThresholds,
}

impl DriftTracker {
    pub fn new(window: usize, thresholds: DriftThresholds) -> Self {
        Self {
            inner: Mutex::new(Inner::new(window, Arc::new(Vec::new()))),
            thresholds,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most memory the window takes once full: per request, a bin and a flag per
    /// feature (what the API charges a location against `RPS_MODEL_CACHE_MB`).
    pub fn max_bytes(&self) -> usize {
        use std::mem::size_of;
        let g = self.lock();
        let features = g.stats.len().max(FEATURES.len());
        let per_request = size_of::<Record>() + features * (size_of::<u16>() + size_of::<bool>());
        g.window * per_request + g.counts.iter().map(|c| c.len() * size_of::<u64>()).sum::<usize>()
    }

    /// Starts over against a new model's training statistics.
    pub fn reset(&self, stats: Arc<Vec<FeatureStats>>) {
        let mut g = self.lock();
        let window = g.window;
        *g = Inner::new(window, stats);
    }

    /// Records one request's feature row; returns the features outside their range
    /// (calendar ones included) and whether a weather feature is among them (only
    /// those count towards the share).
    pub fn observe(&self, row: &[f64]) -> (Vec<String>, bool) {
        let mut g = self.lock();
        let g = &mut *g;
        if g.stats.len() != row.len() {
            return (Vec::new(), false);
        }
        let mut out = Vec::with_capacity(row.len());
        let mut bins = Vec::with_capacity(row.len());
        let mut names = Vec::new();
        for (j, (x, s)) in row.iter().zip(g.stats.iter()).enumerate() {
            let o = !s.in_training_range(*x);
            if o {
                names.push(s.name.clone());
                g.out_counts[j] += 1;
            }
            out.push(o);
            let b = Histogram::bin_of(&s.histogram.edges, *x);
            g.counts[j][b] += 1;
            bins.push(b as u16);
        }
        // The calendar features say when a request came, not what the weather did: a
        // model always serves days after its training window, so they do not count.
        let weather_out = out.iter().zip(&g.calendar).any(|(o, c)| *o && !c);
        if weather_out {
            g.any_out += 1;
        }
        g.recent.push_back(Record {
            bins,
            out,
            weather_out,
        });
        if g.recent.len() > g.window
            && let Some(old) = g.recent.pop_front()
        {
            for (j, (b, o)) in old.bins.iter().zip(&old.out).enumerate() {
                g.counts[j][*b as usize] -= 1;
                if *o {
                    g.out_counts[j] -= 1;
                }
            }
            if old.weather_out {
                g.any_out -= 1;
            }
        }
        (names, weather_out)
    }

    /// The out-of-range share and the verdict of [`DriftTracker::snapshot`], without
    /// building it: no PSI at all below `min_requests`, and only until one weather
    /// feature passes the limit. Cheap enough for every request (the EMF line on Lambda).
    pub fn verdict(&self) -> (f64, bool) {
        let g = self.lock();
        let n = g.recent.len();
        let share = if n == 0 { 0.0 } else { g.any_out as f64 / n as f64 };
        let t = self.thresholds;
        if n < t.min_requests {
            return (share, false);
        }
        let drifting = share > t.max_out_of_range_share
            || (n >= MIN_REQUESTS_FOR_PSI
                && g.stats
                    .iter()
                    .zip(&g.counts)
                    .zip(&g.calendar)
                    .any(|((s, c), cal)| !cal && psi(&s.histogram.counts, c) > t.max_psi));
        (share, drifting)
    }

    pub fn snapshot(&self) -> DriftSnapshot {
        let g = self.lock();
        let n = g.recent.len();
        let share = |c: u64| if n == 0 { 0.0 } else { c as f64 / n as f64 };
        let mut features: Vec<FeatureDrift> = g
            .stats
            .iter()
            .enumerate()
            .map(|(j, s)| FeatureDrift {
                feature: s.name.clone(),
                calendar: g.calendar[j],
                out_of_range_share: share(g.out_counts[j]),
                psi: (n >= MIN_REQUESTS_FOR_PSI).then(|| psi(&s.histogram.counts, &g.counts[j])),
            })
            .collect();
        features.sort_by(|a, b| b.psi.unwrap_or(0.0).total_cmp(&a.psi.unwrap_or(0.0)));
        let t = self.thresholds;
        let out_of_range_share = share(g.any_out);
        let mut reasons = Vec::new();
        if n >= t.min_requests {
            if out_of_range_share > t.max_out_of_range_share {
                reasons.push(format!(
                    "{:.1}% of the last {n} requests had a feature outside its training range (limit {:.1}%)",
                    out_of_range_share * 100.0,
                    t.max_out_of_range_share * 100.0
                ));
            }
            for f in features.iter().filter(|f| !f.calendar) {
                if let Some(psi) = f.psi.filter(|p| *p > t.max_psi) {
                    reasons.push(format!("{}: PSI {psi:.2} (limit {})", f.feature, t.max_psi));
                }
            }
        }
        DriftSnapshot {
            requests: n,
            window: g.window,
            out_of_range_share,
            max_psi: features.first().and_then(|f| f.psi),
            features,
            drifting: !reasons.is_empty(),
            reasons,
            thresholds: t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats() -> Arc<Vec<FeatureStats>> {
        let values: Vec<f64> = (0..1000).map(|i| (i % 100) as f64).collect();
        Arc::new(vec![FeatureStats {
            name: "x".into(),
            min: 0.0,
            max: 99.0,
            mean: 49.5,
            std: 28.9,
            p005: 0.5,
            p995: 98.5,
            histogram: Histogram::new(&values, 10),
        }])
    }

    /// The snapshot, after checking that the cheap verdict says the same.
    fn agreed(d: &DriftTracker) -> DriftSnapshot {
        let s = d.snapshot();
        assert_eq!(d.verdict(), (s.out_of_range_share, s.drifting), "{s:?}");
        s
    }

    #[test]
    fn too_few_requests_or_a_calendar_shift_is_not_drift() {
        let calendar = |name: &str| {
            let mut s = stats().as_ref().clone();
            s[0].name = name.into();
            Arc::new(s)
        };
        let d = DriftTracker::new(
            100,
            DriftThresholds {
                min_requests: 100,
                ..Default::default()
            },
        );
        d.reset(calendar("day_of_year_sin"));
        for _ in 0..99 {
            d.observe(&[5.0]);
        }
        let s = agreed(&d);
        assert!(
            s.max_psi.unwrap() > 1.0 && !s.drifting,
            "99 < 100 requests: {s:?}"
        );
        d.observe(&[5.0]);
        assert!(!agreed(&d).drifting, "a calendar feature's PSI is not drift");
        d.reset(calendar("temperature_2m"));
        for _ in 0..100 {
            d.observe(&[5.0]);
        }
        let s = agreed(&d);
        assert!(s.drifting, "{s:?}");
        assert!(s.reasons[0].starts_with("temperature_2m: PSI"), "{s:?}");
    }

    #[test]
    fn psi_is_zero_for_the_same_distribution_and_large_for_a_shift() {
        assert!(psi(&[10, 20, 30], &[1, 2, 3]).abs() < 1e-12);
        assert!(psi(&[10, 10, 10, 10], &[0, 0, 0, 40]) > 1.0);
    }

    #[test]
    fn the_window_slides_and_counts_out_of_range_requests() {
        let d = DriftTracker::new(
            40,
            DriftThresholds {
                min_requests: 30,
                ..Default::default()
            },
        );
        d.reset(stats());
        for i in 0..5 {
            d.observe(&[(i * 10) as f64 + 5.0]);
        }
        assert_eq!(d.snapshot().max_psi, None, "too few requests for a PSI");
        for i in 5..40 {
            assert!(d.observe(&[((i * 10) % 100) as f64 + 5.0]).0.is_empty());
        }
        let s = agreed(&d);
        assert_eq!((s.requests, s.out_of_range_share), (40, 0.0));
        assert!(s.max_psi.unwrap() < 0.05, "{s:?}");
        assert!(!s.drifting && s.reasons.is_empty(), "{s:?}");
        // Shift: every new request far above the training range.
        for _ in 0..20 {
            assert_eq!(d.observe(&[500.0]), (vec!["x".to_owned()], true));
        }
        let s = agreed(&d);
        assert_eq!(s.requests, 40, "the window holds the last 40");
        assert_eq!(s.out_of_range_share, 0.5);
        assert!(s.max_psi.unwrap() > 0.25, "{s:?}");
        assert!(s.drifting, "{s:?}");
        assert_eq!(s.reasons.len(), 2, "the share and the PSI: {s:?}");
        for _ in 0..40 {
            d.observe(&[50.0]);
        }
        assert_eq!(
            d.snapshot().out_of_range_share,
            0.0,
            "old requests leave the window"
        );
    }
}

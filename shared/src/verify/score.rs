//! Scoring the forecast log against what happened: the join, the live scores per model
//! version, window and horizon, and the pairs the web page draws. Pure functions of the
//! records and the observations.
//!
//! - A forecast is scored against the temperature observed at its target time, and
//!   persistence (the temperature observed at its issue time) over the same hours, so
//!   the skill compares like with like.
//! - A target time up to `as_of` (the newest observed hour) that has no observation is
//!   *unverified* (a gap in ingest), not an error; one after `as_of` is *pending*.
//! - The same model forecasting the same hour twice (the schedule and a sampled
//!   request, say) counts once, the scheduled one first.
//! - A record whose observed temperature at its issue hour is not the store's (by more
//!   than `max_mismatch`) was made from other observations (another place, or data
//!   since revised): it is counted as *mismatched* and not scored.
//! - A forecast issued before the end of its model's own data (a client asking about
//!   the training period, say) is *in-sample*: counted, not scored.
//! - The windows are of target times: the last 24 hours and the last 7 days up to
//!   `as_of`, on the data's clock, so a replay of past data verifies as live data does.

use std::collections::{BTreeMap, HashMap};

use chrono::{Duration, NaiveDateTime};

use crate::forecast_log::{ForecastSource, LoggedForecast, LoggedHorizon};
use crate::recalibration;
pub use crate::records::verification::{
    HorizonSkill, LiveWindow, LogCounts, RecentForecast, VersionSkill, WindowSkill,
};
use crate::scores::{IntervalScore, errors_needed, winkler};

/// Everything the join found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scored {
    pub versions: Vec<VersionSkill>,
    pub counts: LogCounts,
    /// Verified forecasts with a target in the last `recent_hours`, oldest first.
    pub recent: Vec<RecentForecast>,
}

#[derive(Default)]
struct Acc {
    n: usize,
    se: f64,
    ae: f64,
    err: f64,
    pse: f64,
    pae: f64,
    /// Per interval level: hours, hours inside, summed width, summed interval score.
    intervals: Vec<(f64, IntervalAcc)>,
}

#[derive(Default)]
struct IntervalAcc {
    n: usize,
    inside: usize,
    width: f64,
    winkler: f64,
    /// Each error over its calibrated half-width, for the live re-calibration.
    normalised: Vec<f64>,
}

impl Acc {
    fn add(&mut self, h: &LoggedHorizon, observed: f64, persistence: f64) {
        let e = h.temperature_2m - observed;
        let p = persistence - observed;
        self.n += 1;
        self.se += e * e;
        self.ae += e.abs();
        self.err += e;
        self.pse += p * p;
        self.pae += p.abs();
        for i in h.valid_intervals() {
            let at = match self.intervals.iter().position(|(l, _)| *l == i.level) {
                Some(at) => at,
                None => {
                    self.intervals.push((i.level, IntervalAcc::default()));
                    self.intervals.len() - 1
                }
            };
            let a = &mut self.intervals[at].1;
            a.n += 1;
            a.inside += usize::from(i.lower <= observed && observed <= i.upper);
            a.width += i.upper - i.lower;
            a.winkler += winkler(i.lower, i.upper, i.level, observed);
            a.normalised.extend(recalibration::normalised_error(
                h.temperature_2m,
                i,
                h.served_with(i.level),
                observed,
            ));
        }
    }

    fn skill(&self, horizon: u8) -> HorizonSkill {
        let n = self.n as f64;
        let rmse = (self.se / n).sqrt();
        let persistence_rmse = (self.pse / n).sqrt();
        HorizonSkill {
            horizon,
            n: self.n,
            rmse,
            mae: self.ae / n,
            bias: self.err / n,
            persistence_rmse,
            persistence_mae: self.pae / n,
            skill: (persistence_rmse > 0.0).then(|| 1.0 - rmse / persistence_rmse),
            intervals: {
                let mut v: Vec<IntervalScore> = self
                    .intervals
                    .iter()
                    .map(|(level, a)| IntervalScore {
                        horizon,
                        level: *level,
                        coverage: a.inside as f64 / a.n as f64,
                        width: a.width / a.n as f64,
                        winkler: a.winkler / a.n as f64,
                        hours: a.n,
                    })
                    .collect();
                v.sort_by(|a, b| a.level.total_cmp(&b.level));
                v
            },
        }
    }
}

/// Joins `records` with `observed` (temperature by hour) up to `as_of`; with
/// `recalibrate_min_hours` above 0, re-calibrates each version's intervals on its
/// verified forecasts of the last 7 days ([`crate::recalibration`]).
pub fn score(
    records: Vec<LoggedForecast>,
    observed: &BTreeMap<NaiveDateTime, f64>,
    as_of: NaiveDateTime,
    max_mismatch: f64,
    recent_hours: i64,
    recalibrate_min_hours: usize,
) -> Scored {
    let mut counts = LogCounts {
        records: records.len(),
        ..LogCounts::default()
    };
    // One record per model version and issue hour, the scheduled one first.
    let mut unique: HashMap<(String, NaiveDateTime), LoggedForecast> = HashMap::new();
    for r in records {
        let key = (r.model_version.clone(), r.issued_at);
        match unique.get(&key) {
            Some(kept)
                if kept.source == ForecastSource::Scheduled || r.source != ForecastSource::Scheduled =>
            {
                counts.duplicates += 1;
            }
            Some(_) => {
                counts.duplicates += 1;
                unique.insert(key, r);
            }
            None => {
                unique.insert(key, r);
            }
        }
    }
    let oldest = as_of - Duration::hours(LiveWindow::Week.hours());
    let mut acc: BTreeMap<(String, LiveWindow, u8), Acc> = BTreeMap::new();
    let mut forecasts: BTreeMap<(String, LiveWindow), (usize, usize)> = BTreeMap::new();
    let mut recent = Vec::new();
    for r in unique.into_values() {
        if r.data_end.is_some_and(|end| r.issued_at < end) {
            counts.in_sample += 1;
            continue;
        }
        if let Some(seen) = observed.get(&r.issued_at)
            && (seen - r.observed_temperature).abs() > max_mismatch
        {
            counts.mismatched += 1;
            continue;
        }
        let mut verified_in = [false; LiveWindow::ALL.len()];
        for h in &r.horizons {
            if h.target_time > as_of {
                counts.pending += 1;
                continue;
            }
            if h.target_time <= oldest {
                continue;
            }
            let truth = observed.get(&h.target_time).copied();
            for (i, w) in LiveWindow::ALL.iter().enumerate() {
                if !w.contains(as_of, h.target_time) {
                    continue;
                }
                let entry = forecasts.entry((r.model_version.clone(), *w)).or_default();
                match truth {
                    Some(y) => {
                        acc.entry((r.model_version.clone(), *w, h.hours))
                            .or_default()
                            .add(h, y, r.observed_temperature);
                        verified_in[i] = true;
                    }
                    None => entry.1 += 1,
                }
            }
            match truth {
                None => counts.unverified += 1,
                Some(y) if h.target_time > as_of - Duration::hours(recent_hours) => {
                    recent.push(RecentForecast {
                        version: r.model_version.clone(),
                        horizon: h.hours,
                        issued_at: r.issued_at,
                        target_time: h.target_time,
                        forecast: h.temperature_2m,
                        observed: y,
                    })
                }
                Some(_) => {}
            }
        }
        for (i, w) in LiveWindow::ALL.iter().enumerate() {
            if verified_in[i] {
                forecasts.entry((r.model_version.clone(), *w)).or_default().0 += 1;
            }
        }
    }
    let mut versions: BTreeMap<String, VersionSkill> = BTreeMap::new();
    for ((version, window), (n, unverified)) in forecasts {
        let horizons = acc
            .iter()
            .filter(|((v, w, _), _)| *v == version && *w == window)
            .map(|((_, _, h), a)| a.skill(*h))
            .collect();
        versions
            .entry(version.clone())
            .or_insert_with(|| VersionSkill {
                version,
                windows: Vec::new(),
                recalibration: Vec::new(),
            })
            .windows
            .push(WindowSkill {
                window,
                forecasts: n,
                unverified,
                horizons,
            });
    }
    for ((version, window, horizon), a) in &mut acc {
        if *window != LiveWindow::Week {
            continue;
        }
        // Every level of the horizon or none: each level's factor is then the order
        // statistic of the same hours, so a narrower level stays inside a wider one.
        let min_hours = match recalibrate_min_hours {
            0 => 0,
            m => a
                .intervals
                .iter()
                .map(|(level, _)| errors_needed(*level))
                .fold(m, usize::max),
        };
        let scales: Option<Vec<_>> = a
            .intervals
            .iter_mut()
            .map(|(level, i)| recalibration::scale(*horizon, *level, &mut i.normalised, min_hours))
            .collect();
        if let (Some(v), Some(scales)) = (versions.get_mut(version), scales) {
            v.recalibration.extend(scales);
        }
    }
    let mut versions: Vec<VersionSkill> = versions.into_values().collect();
    for v in &mut versions {
        v.recalibration
            .sort_by(|a, b| a.horizon.cmp(&b.horizon).then(a.level.total_cmp(&b.level)));
    }
    // Newest version first (registry versions are numbers; others sort after).
    versions.sort_by_key(|v| std::cmp::Reverse(v.version.parse::<u64>().unwrap_or(0)));
    recent
        .sort_by(|a, b| (a.target_time, a.horizon, &a.version).cmp(&(b.target_time, b.horizon, &b.version)));
    Scored {
        versions,
        counts,
        recent,
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::forecast_log::LoggedHorizon;
    use crate::observations::parse_time;

    fn t(s: &str) -> NaiveDateTime {
        parse_time(s).unwrap()
    }

    fn record(
        version: &str,
        source: ForecastSource,
        issued: &str,
        base: f64,
        forecast: [f64; 6],
    ) -> LoggedForecast {
        let issued_at = t(issued);
        LoggedForecast {
            model_name: "m".into(),
            model_version: version.into(),
            source,
            issued_at,
            observed_temperature: base,
            made_at: Utc::now(),
            data_end: None,
            horizons: (1..=6u8)
                .map(|h| LoggedHorizon {
                    hours: h,
                    target_time: issued_at + Duration::hours(i64::from(h)),
                    temperature_2m: forecast[usize::from(h) - 1],
                    intervals: vec![],
                    scales: vec![],
                })
                .collect(),
        }
    }

    /// `r` with an interval of ± `half` at `level` around every horizon.
    fn with_interval(mut r: LoggedForecast, level: f64, half: f64) -> LoggedForecast {
        for h in &mut r.horizons {
            h.intervals.push(crate::bundle::Interval {
                level,
                lower: h.temperature_2m - half,
                upper: h.temperature_2m + half,
            });
        }
        r
    }

    #[test]
    fn intervals_are_scored_per_level_and_a_record_without_them_for_its_point_forecast() {
        let obs = rising("2023-04-01T00:00", 14);
        // Forecast 13 everywhere from 00:00 against 11..16 (errors 2, 1, 0, −1, −2, −3),
        // and 19 from 06:00 against 17..22; a record without intervals from 03:00.
        let first = record(
            "1",
            ForecastSource::Scheduled,
            "2023-04-01T00:00",
            10.0,
            [13.0; 6],
        );
        let second = record(
            "1",
            ForecastSource::Scheduled,
            "2023-04-01T06:00",
            16.0,
            [19.0; 6],
        );
        let bare = record(
            "1",
            ForecastSource::Scheduled,
            "2023-04-01T03:00",
            13.0,
            [16.0; 6],
        );
        // An interval that does not hold its forecast is left out, the forecast kept.
        let broken = with_interval(bare, 0.8, -1.0);
        let records = vec![
            with_interval(with_interval(first, 0.8, 1.5), 0.95, 2.5),
            with_interval(second, 0.8, 1.5),
            broken,
        ];
        let s = score(records, &obs, t("2023-04-01T13:00"), 1.0, 72, 0);
        let day = s.versions[0].window(LiveWindow::Day).unwrap();
        // At 1 h: errors 2 (first) and 2 (second): outside ±1.5 both times, inside ±2.5.
        let h1 = day.horizon(1).unwrap();
        assert_eq!(
            h1.n, 3,
            "the record without intervals is scored for its point forecast"
        );
        let i80 = h1.interval(0.8).unwrap();
        assert_eq!((i80.hours, i80.coverage, i80.width), (2, 0.0, 3.0));
        // Width 3 plus 2 / 0.2 times the 0.5 miss.
        assert!((i80.winkler - 8.0).abs() < 1e-12, "{i80:?}");
        let i95 = h1.interval(0.95).unwrap();
        assert_eq!((i95.hours, i95.coverage), (1, 1.0));
        // At 3 h: error 0 twice, inside.
        assert_eq!(day.horizon(3).unwrap().interval(0.8).unwrap().coverage, 1.0);
        let m = s.versions[0].metrics();
        assert_eq!(m["live_interval_coverage_80_h1_24h"], 0.0);
        assert_eq!(m["live_interval_coverage_95_h1_7d"], 1.0);
    }

    #[test]
    fn the_week_of_scheduled_forecasts_re_calibrates_each_versions_intervals_from_their_calibrated_widths() {
        let obs = rising("2023-04-01T00:00", 80);
        // 60 hourly forecasts whose errors cycle through 0.5, 1, 1.5, 2, 2.5 °C at every
        // horizon: a ±1 interval covers 40%. Sorted, the 49th of 60 normalised errors
        // (⌈61 · 0.8⌉) is the first 2.5: the factor that would have covered 80%.
        let make = |version: &str, half: f64, served_with: f64| -> Vec<LoggedForecast> {
            (0..60)
                .map(|i| {
                    let issued = t("2023-04-01T00:00") + Duration::hours(i);
                    let e = [0.5, 1.0, 1.5, 2.0, 2.5][i as usize % 5] * if i % 2 == 0 { 1.0 } else { -1.0 };
                    let truth = |h: i64| 10.0 + (i + h) as f64;
                    let mut r = record(
                        version,
                        ForecastSource::Scheduled,
                        &crate::observations::format_time(issued),
                        truth(0),
                        std::array::from_fn(|k| truth(k as i64 + 1) + e),
                    );
                    r = with_interval(r, 0.8, half);
                    for h in &mut r.horizons {
                        h.scales.push(crate::forecast_log::AppliedScale {
                            level: 0.8,
                            scale: served_with,
                        });
                    }
                    r
                })
                .collect()
        };
        // Version 2 was served at twice its calibrated ±1: the factor is found from ±1.
        let records = [make("1", 1.0, 1.0), make("2", 2.0, 2.0)].concat();
        let as_of = t("2023-04-03T18:00");
        let s = score(records.clone(), &obs, as_of, 1.0, 72, 48);
        for v in &s.versions {
            assert_eq!(v.recalibration.len(), 6, "{v:?}");
            for (k, r) in v.recalibration.iter().enumerate() {
                assert_eq!((r.horizon, r.level, r.hours), (k as u8 + 1, 0.8, 60));
                assert!((r.scale - 2.5).abs() < 1e-12, "version {}: {r:?}", v.version);
                assert!((r.calibrated_coverage - 0.4).abs() < 1e-12, "{r:?}");
            }
        }
        // What was served is scored as served: version 2's ±2 covered 80%.
        let week = s.versions[0].window(LiveWindow::Week).unwrap();
        assert_eq!(week.horizon(6).unwrap().interval(0.8).unwrap().coverage, 0.8);
        assert_eq!(s.versions[0].metrics()["live_interval_scale_80_h6"], 2.5);
        // Too few verified hours, or turned off: served as calibrated.
        assert!(
            score(records.clone(), &obs, as_of, 1.0, 72, 61).versions[0]
                .recalibration
                .is_empty()
        );
        assert!(
            score(records, &obs, as_of, 1.0, 72, 0).versions[1]
                .recalibration
                .is_empty()
        );
        // A horizon gets every level's factor or none: 15 hours would do for 80% (at a
        // minimum of 10) but not for 95% (19), so neither is re-calibrated.
        let both = |n: usize| -> Vec<LoggedForecast> {
            make("3", 1.0, 1.0)
                .into_iter()
                .take(n)
                .map(|r| with_interval(r, 0.95, 2.0))
                .collect()
        };
        assert!(
            score(both(15), &obs, as_of, 1.0, 72, 10).versions[0]
                .recalibration
                .is_empty()
        );
        let s = score(both(60), &obs, as_of, 1.0, 72, 48);
        assert_eq!(s.versions[0].recalibration.len(), 12);
    }

    /// Observed: 10 °C at the issue hour, then 11, 12, … one degree an hour.
    fn rising(from: &str, hours: i64) -> BTreeMap<NaiveDateTime, f64> {
        (0..hours)
            .map(|i| (t(from) + Duration::hours(i), 10.0 + i as f64))
            .collect()
    }

    #[test]
    fn a_perfect_forecast_beats_persistence_and_the_numbers_are_right() {
        let obs = rising("2023-04-01T00:00", 8);
        let perfect = record(
            "2",
            ForecastSource::Scheduled,
            "2023-04-01T00:00",
            10.0,
            [11.0, 12.0, 13.0, 14.0, 15.0, 16.0],
        );
        let off_by_two = record("1", ForecastSource::Predict, "2023-04-01T00:00", 10.0, [13.0; 6]);
        let s = score(vec![perfect, off_by_two], &obs, t("2023-04-01T07:00"), 1.0, 72, 0);
        assert_eq!(
            s.versions.iter().map(|v| v.version.as_str()).collect::<Vec<_>>(),
            ["2", "1"]
        );
        let day = s.versions[0].window(LiveWindow::Day).unwrap();
        let h6 = day.horizon(6).unwrap();
        assert_eq!((h6.n, h6.rmse, h6.persistence_rmse), (1, 0.0, 6.0));
        assert_eq!(h6.skill, Some(1.0));
        let v1 = s.versions[1].window(LiveWindow::Week).unwrap();
        // Forecast 13 everywhere against 11..16: errors 2, 1, 0, -1, -2, -3.
        assert_eq!(v1.horizon(1).unwrap().bias, 2.0);
        assert_eq!(v1.horizon(6).unwrap().rmse, 3.0);
        assert_eq!(v1.horizon(6).unwrap().skill, Some(0.5));
        assert_eq!(v1.forecasts, 1);
        assert_eq!(s.recent.len(), 12);
        let m = s.versions[0].metrics();
        assert_eq!(m["live_skill_h6_24h"], 1.0);
        assert_eq!(m["live_forecasts_7d"], 1.0);
    }

    #[test]
    fn gaps_are_unverified_future_hours_pending_and_repeats_counted_once() {
        let mut obs = rising("2023-04-01T00:00", 6);
        obs.remove(&t("2023-04-01T03:00"));
        let sched = record(
            "1",
            ForecastSource::Scheduled,
            "2023-04-01T00:00",
            10.0,
            [11.0; 6],
        );
        let sampled = record("1", ForecastSource::Predict, "2023-04-01T00:00", 10.0, [50.0; 6]);
        let s = score(vec![sampled, sched], &obs, t("2023-04-01T05:00"), 1.0, 72, 0);
        assert_eq!(s.counts.duplicates, 1);
        assert_eq!((s.counts.unverified, s.counts.pending), (1, 1), "{:?}", s.counts);
        let day = s.versions[0].window(LiveWindow::Day).unwrap();
        assert_eq!(day.unverified, 1);
        assert_eq!(day.horizons.len(), 4, "h3 unverified, h6 pending");
        assert_eq!(day.horizon(1).unwrap().rmse, 0.0, "the scheduled record was kept");
    }

    #[test]
    fn forecasts_from_other_observations_are_not_scored_and_old_ones_leave_the_windows() {
        let obs = rising("2023-04-01T00:00", 24 * 9);
        let foreign = record("1", ForecastSource::Predict, "2023-04-01T00:00", 25.0, [11.0; 6]);
        let old = record("1", ForecastSource::Predict, "2023-04-01T01:00", 11.0, [11.0; 6]);
        let fresh = record(
            "1",
            ForecastSource::Predict,
            "2023-04-08T12:00",
            obs[&t("2023-04-08T12:00")],
            [0.0; 6],
        );
        let mut trained_on_it = record(
            "2",
            ForecastSource::Predict,
            "2023-04-09T00:00",
            obs[&t("2023-04-09T00:00")],
            [0.0; 6],
        );
        trained_on_it.data_end = Some(t("2023-04-09T06:00"));
        let s = score(
            vec![foreign, old, fresh, trained_on_it],
            &obs,
            t("2023-04-09T23:00"),
            1.0,
            72,
            0,
        );
        assert_eq!((s.counts.mismatched, s.counts.in_sample), (1, 1));
        assert_eq!(s.versions.len(), 1, "version 2's only forecast was in-sample");
        let v = &s.versions[0];
        assert!(
            v.window(LiveWindow::Day).is_none(),
            "nothing verified in the last 24 h"
        );
        let week = v.window(LiveWindow::Week).unwrap();
        assert_eq!(week.forecasts, 1, "the 8-day-old forecast is outside the week");
        assert_eq!(week.horizon(1).unwrap().n, 1);
    }
}

//! Live re-calibration of the prediction intervals between retrainings (adaptive
//! conformal).
//!
//! A model's intervals are calibrated once, when it is trained, on errors from before
//! its hold-out ([`crate::bundle::Calibration`]). The weather then moves on: a model
//! calibrated on late summer meets the autumn storms, a winter model meets spring.
//! Verification joins every scheduled forecast with what happened. From the last 7 days
//! of them it finds, per horizon and level, the factor by which the calibrated
//! half-widths would have had to be multiplied to cover their level: the conformal
//! order statistic (as in training) of each error divided by its calibrated half-width.
//! It publishes the factors with the verification; serving multiplies the half-widths
//! by the latest factors of the version it serves, in `/predict`, `/forecast` and the
//! next scheduled forecast alike.
//!
//! - Only the scheduled forecasts count, never sampled client answers: traffic cannot
//!   steer the widths.
//! - Each logged interval records the factor it was served with, so the next factor is
//!   found from the calibrated widths, never compounded.
//! - Below `RPS_RECALIBRATE_MIN_HOURS` verified forecasts at a horizon, its calibrated
//!   widths are served unchanged: a newly promoted version starts from its own
//!   calibration.
//! - A factor is bounded to [`MIN_SCALE`]..=[`MAX_SCALE`], so a broken week cannot
//!   make the intervals vanish or fill the page.
//! - A horizon gets a factor for every level or for none, each from the same hours, so
//!   a narrower level stays inside a wider one.
//! - Factors older than [`MAX_AGE_HOURS`] (verification stopped) are not served, nor
//!   any with `RPS_RECALIBRATE_MIN_HOURS=0`.
//!
//! What it promises: a moving window follows the weather with a lag of days (the price
//! of not chasing one stormy afternoon), and, as at training, errors that depend on each
//! other in time leave no finite-sample guarantee. Live verification scores what was
//! served, factors included.

use crate::bundle::{Forecast, Interval};
use crate::records::skill::IntervalScale;
use crate::scores::{conformal_half_width, errors_needed};

/// Hours after which a verification's factors are no longer served (the verification
/// stopped running, or the store cannot be read): the intervals go back to as
/// calibrated.
pub const MAX_AGE_HOURS: i64 = 48;

/// The factors `verification` found for `version`, in force at `now`: none once the
/// verification is older than [`MAX_AGE_HOURS`] (then the intervals are served as
/// calibrated). The one staleness rule the API and the scheduled forecasts share.
pub fn in_force<'a>(
    verification: &'a crate::records::verification::Verification,
    version: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<&'a [IntervalScale]> {
    let fresh = now - verification.verified_at <= chrono::Duration::hours(MAX_AGE_HOURS);
    fresh
        .then(|| verification.version(version))
        .flatten()
        .map(|s| s.recalibration.as_slice())
}

/// The narrowest re-calibration: a third of the calibrated half-width.
pub const MIN_SCALE: f64 = 1.0 / 3.0;
/// The widest: three times the calibrated half-width.
pub const MAX_SCALE: f64 = 3.0;

/// A logged interval's error over its calibrated half-width (the served half-width
/// divided by the factor it was served with); `None` for an interval of no width or a
/// factor that is not one.
pub fn normalised_error(forecast: f64, interval: &Interval, served_with: f64, truth: f64) -> Option<f64> {
    let half = (interval.upper - interval.lower) / 2.0 / served_with;
    let e = (truth - forecast).abs() / half;
    (served_with.is_finite() && served_with > 0.0 && half > 0.0 && e.is_finite()).then_some(e)
}

/// The factor for `horizon` at `level` from the normalised errors of its verified
/// forecasts; `None` below `min_hours` of them (or too few for the level's order
/// statistic).
pub fn scale(horizon: u8, level: f64, normalised: &mut [f64], min_hours: usize) -> Option<IntervalScale> {
    let n = normalised.len();
    if min_hours == 0 || n < min_hours.max(errors_needed(level)) {
        return None;
    }
    normalised.sort_by(f64::total_cmp);
    let wanted = conformal_half_width(normalised, level);
    Some(IntervalScale {
        horizon,
        level,
        scale: wanted.clamp(MIN_SCALE, MAX_SCALE),
        hours: n,
        calibrated_coverage: normalised.iter().filter(|e| **e <= 1.0).count() as f64 / n as f64,
    })
}

/// The factor for `horizon` at `level`, if `scales` has one.
pub fn lookup(scales: &[IntervalScale], horizon: u8, level: f64) -> Option<f64> {
    scales
        .iter()
        .find(|s| s.horizon == horizon && s.level == level)
        .map(|s| s.scale)
        .filter(|s| s.is_finite() && *s > 0.0)
}

/// Multiplies each forecast's half-widths by its horizon and level's factor, around the
/// forecast.
pub fn apply(forecasts: &mut [Forecast], scales: &[IntervalScale]) {
    if scales.is_empty() {
        return;
    }
    for f in forecasts {
        let centre = f.temperature_2m;
        for i in &mut f.intervals {
            if let Some(s) = lookup(scales, f.horizon_hours, i.level) {
                i.lower = centre - (centre - i.lower) * s;
                i.upper = centre + (i.upper - centre) * s;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(level: f64, lower: f64, upper: f64) -> Interval {
        Interval { level, lower, upper }
    }

    #[test]
    fn errors_are_measured_against_the_calibrated_half_width() {
        // Served ±2 with a factor of 2: calibrated ±1, so an error of 1.5 is 1.5.
        let e = normalised_error(10.0, &interval(0.8, 8.0, 12.0), 2.0, 11.5).unwrap();
        assert!((e - 1.5).abs() < 1e-12);
        assert_eq!(
            normalised_error(10.0, &interval(0.8, 10.0, 10.0), 1.0, 11.0),
            None
        );
        assert_eq!(normalised_error(10.0, &interval(0.8, 9.0, 11.0), 0.0, 11.0), None);
        assert_eq!(
            normalised_error(10.0, &interval(0.8, 9.0, 11.0), f64::NAN, 11.0),
            None
        );
    }

    #[test]
    fn the_factor_is_the_conformal_order_statistic_bounded_and_needs_enough_hours() {
        // 99 errors 0.02, 0.04, …, 1.98 of the calibrated half-width: the 80% interval
        // covered 50 of them; the 80th smallest (1.6) would have covered its level.
        let mut e: Vec<f64> = (1..=99).map(|i| f64::from(i) / 50.0).rev().collect();
        let s = scale(6, 0.8, &mut e, 48).unwrap();
        assert!((s.scale - 1.6).abs() < 1e-12, "{s:?}");
        assert_eq!((s.horizon, s.hours), (6, 99));
        assert!((s.calibrated_coverage - 50.0 / 99.0).abs() < 1e-12, "{s:?}");
        assert_eq!(scale(6, 0.8, &mut e[..47].to_vec(), 48), None, "47 < 48 hours");
        assert_eq!(scale(6, 0.8, &mut e, 0), None, "0 turns it off");
        assert_eq!(scale(6, 0.95, &mut e[..10].to_vec(), 1), None, "too few for 95%");
        let mut wild = vec![50.0; 60];
        assert_eq!(scale(1, 0.8, &mut wild, 48).unwrap().scale, MAX_SCALE);
        let mut calm = vec![0.01; 60];
        assert_eq!(scale(1, 0.8, &mut calm, 48).unwrap().scale, MIN_SCALE);
    }

    #[test]
    fn applying_scales_the_half_widths_of_the_matching_horizon_and_level_only() {
        let scales = vec![IntervalScale {
            horizon: 6,
            level: 0.8,
            scale: 1.5,
            hours: 100,
            calibrated_coverage: 0.7,
        }];
        let forecast = |h: u8| Forecast {
            horizon_hours: h,
            time: String::new(),
            temperature_2m: 10.0,
            intervals: vec![interval(0.8, 9.0, 12.0), interval(0.95, 8.0, 13.0)],
        };
        let mut f = vec![forecast(1), forecast(6)];
        apply(&mut f, &scales);
        assert_eq!(f[0], forecast(1));
        assert_eq!(f[1].intervals[0], interval(0.8, 8.5, 13.0));
        assert_eq!(f[1].intervals[1], interval(0.95, 8.0, 13.0));
        assert_eq!(lookup(&scales, 6, 0.8), Some(1.5));
        assert_eq!(lookup(&scales, 6, 0.95), None);
    }
}

//! The data quality gate: strict checks on a raw snapshot before anything uses it.
//!
//! Every check reports its measured value, its threshold and a sentence. Checks on the
//! key variables fail the gate; the same checks on the other variables only warn.
//! Checks that need a readable time axis are skipped (and say so) when it is not.
//!
//! [`check`] runs the groups in order: row count, variables (present, length, numeric),
//! the time axis, nulls and plausible ranges, gaps, staleness. To change a check,
//! change its group's function here.

use std::collections::HashSet;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};

use crate::config::QualityConfig;
use crate::observations::{
    ALL_VARIABLES, KEY_VARIABLES, MAX_UTC_OFFSET_SECONDS, RawSeries, TARGET, Variable, format_time,
};
use crate::snapshot::{CheckResult, QualityReport, Status};

/// A column of a variable as parsed: each value a number, null, or not a number.
type Column = Vec<Result<Option<f64>, ()>>;

/// What a failed check does to the gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Severity {
    /// A key variable or the time axis: a failure fails the gate.
    Fail,
    /// Any other variable: a failure only warns.
    Warn,
}

impl Severity {
    fn of(var: Variable) -> Self {
        if var.is_key() {
            Severity::Fail
        } else {
            Severity::Warn
        }
    }
}

/// One check's outcome, before it becomes a [`CheckResult`].
struct Check {
    name: String,
    severity: Severity,
    passed: bool,
    measured: Option<f64>,
    threshold: Option<f64>,
    message: String,
}

impl Check {
    /// A check that counts bad items: it passes at zero.
    fn count(name: String, severity: Severity, bad: usize, message: String) -> Self {
        Check {
            name,
            severity,
            passed: bad == 0,
            measured: Some(bad as f64),
            threshold: Some(0.0),
            message,
        }
    }
}

#[derive(Default)]
struct Checks {
    out: Vec<CheckResult>,
}

impl Checks {
    fn record(&mut self, c: Check) {
        let status = match (c.passed, c.severity) {
            (true, _) => Status::Pass,
            (false, Severity::Fail) => Status::Fail,
            (false, Severity::Warn) => Status::Warn,
        };
        self.out.push(CheckResult {
            name: c.name,
            status,
            measured: c.measured,
            threshold: c.threshold,
            message: c.message,
        });
    }

    fn skip(&mut self, name: impl Into<String>, why: &str) {
        self.out.push(CheckResult {
            name: name.into(),
            status: Status::Skip,
            measured: None,
            threshold: None,
            message: format!("not evaluated: {why}"),
        });
    }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

/// Runs every check. `live` is the snapshot's collection time when it came from the
/// live endpoint (the staleness check needs it); backfills have no staleness.
pub fn check(raw: &RawSeries, cfg: &QualityConfig, live: Option<DateTime<Utc>>) -> QualityReport {
    let mut c = Checks::default();
    row_count(&mut c, raw, cfg);
    let usable = variables(&mut c, raw);
    let axis = time_parses(&mut c, raw);
    match &axis {
        Some(axis) => {
            let ordered = time_order(&mut c, axis);
            nulls_and_ranges(&mut c, &usable, axis, cfg);
            if ordered {
                gaps(&mut c, &usable, axis, cfg);
            } else {
                c.skip(
                    "gaps.max_hours",
                    "the time axis is not strictly increasing whole hours",
                );
            }
            if let Some(collected) = live {
                staleness(&mut c, raw, axis, collected, cfg);
            }
        }
        None => {
            for name in [
                "time.on_the_hour",
                "time.no_duplicates",
                "time.strictly_increasing",
                "gaps.max_hours",
            ] {
                c.skip(name, "the time axis does not parse");
            }
            if live.is_some() {
                c.skip("staleness.hours", "the time axis does not parse");
            }
        }
    }
    QualityReport {
        passed: !c.out.iter().any(|r| r.status == Status::Fail),
        rows: raw.len(),
        live: live.is_some(),
        checked_at: Utc::now(),
        first_time: axis
            .as_ref()
            .and_then(|a| a.iter().min())
            .map(|t| format_time(*t)),
        last_time: axis
            .as_ref()
            .and_then(|a| a.iter().max())
            .map(|t| format_time(*t)),
        checks: c.out,
    }
}

fn row_count(c: &mut Checks, raw: &RawSeries, cfg: &QualityConfig) {
    let n = raw.len();
    c.record(Check {
        name: "row_count".into(),
        severity: Severity::Fail,
        passed: n >= cfg.min_rows,
        measured: Some(n as f64),
        threshold: Some(cfg.min_rows as f64),
        message: format!("{n} hourly rows (at least {} needed)", cfg.min_rows),
    });
}

/// Present, as long as the time axis, numeric; returns the columns of the right length.
fn variables(c: &mut Checks, raw: &RawSeries) -> Vec<(Variable, Column)> {
    let n = raw.len();
    let mut usable = Vec::new();
    for var in ALL_VARIABLES {
        let severity = Severity::of(var);
        let Some(col) = raw.numeric(var) else {
            c.record(Check {
                name: format!("present.{}", var.name()),
                severity,
                passed: false,
                measured: None,
                threshold: None,
                message: format!("the variable {} is missing from the response", var.name()),
            });
            continue;
        };
        let len_ok = col.len() == n;
        c.record(Check {
            name: format!("length.{}", var.name()),
            severity,
            passed: len_ok,
            measured: Some(col.len() as f64),
            threshold: Some(n as f64),
            message: format!("{} values for {n} times", col.len()),
        });
        let non_numeric = col.iter().filter(|v| v.is_err()).count();
        c.record(Check::count(
            format!("numeric.{}", var.name()),
            severity,
            non_numeric,
            if non_numeric == 0 {
                "every value is a number or null".into()
            } else {
                format!("{non_numeric} value(s) are neither numbers nor null")
            },
        ));
        if len_ok {
            usable.push((var, col));
        }
    }
    usable
}

/// The UTC offset is plausible and every time parses; returns the axis when it does.
fn time_parses(c: &mut Checks, raw: &RawSeries) -> Option<Vec<NaiveDateTime>> {
    let n = raw.len();
    c.record(Check {
        name: "time.utc_offset".into(),
        severity: Severity::Fail,
        passed: raw.utc_offset_is_plausible(),
        measured: Some(raw.utc_offset_seconds as f64),
        threshold: Some(MAX_UTC_OFFSET_SECONDS as f64),
        message: format!(
            "utc_offset_seconds is {} (at most ±{MAX_UTC_OFFSET_SECONDS}: ±18 h)",
            raw.utc_offset_seconds
        ),
    });
    let times = raw.utc_times();
    let unparsed = times.iter().filter(|t| t.is_none()).count();
    c.record(Check {
        name: "time.parses".into(),
        severity: Severity::Fail,
        passed: unparsed == 0 && n > 0,
        measured: Some(unparsed as f64),
        threshold: Some(0.0),
        message: match times.iter().position(|t| t.is_none()) {
            None if n > 0 => "every time parses as YYYY-MM-DDTHH:MM".into(),
            None => "there are no times".into(),
            Some(i) => format!(
                "{unparsed} time(s) do not parse as YYYY-MM-DDTHH:MM in the years 1900 to 2200 (UTC), the first at index {i}: {}",
                raw.times[i]
            ),
        },
    });
    (unparsed == 0 && n > 0).then(|| times.into_iter().flatten().collect())
}

/// Whole hours, no duplicates, increasing; true when all three hold.
fn time_order(c: &mut Checks, axis: &[NaiveDateTime]) -> bool {
    let off_hour = axis
        .iter()
        .filter(|t| t.and_utc().timestamp() % 3600 != 0)
        .count();
    c.record(Check::count(
        "time.on_the_hour".into(),
        Severity::Fail,
        off_hour,
        if off_hour == 0 {
            "every time is a whole UTC hour".into()
        } else {
            format!("{off_hour} time(s) are not whole hours")
        },
    ));
    let mut seen = HashSet::with_capacity(axis.len());
    let duplicates = axis.iter().filter(|t| !seen.insert(**t)).count();
    c.record(Check::count(
        "time.no_duplicates".into(),
        Severity::Fail,
        duplicates,
        if duplicates == 0 {
            "no time appears twice".into()
        } else {
            format!("{duplicates} time(s) appear more than once")
        },
    ));
    let backwards: Vec<usize> = (1..axis.len()).filter(|&i| axis[i] < axis[i - 1]).collect();
    c.record(Check::count(
        "time.strictly_increasing".into(),
        Severity::Fail,
        backwards.len(),
        match backwards.first() {
            None => "times increase".into(),
            Some(&i) => format!(
                "{} time(s) go backwards, the first at index {i}: {} after {}",
                backwards.len(),
                format_time(axis[i]),
                format_time(axis[i - 1])
            ),
        },
    ));
    off_hour == 0 && duplicates == 0 && backwards.is_empty()
}

fn nulls_and_ranges(
    c: &mut Checks,
    usable: &[(Variable, Column)],
    axis: &[NaiveDateTime],
    cfg: &QualityConfig,
) {
    let n = axis.len();
    for (var, col) in usable {
        let severity = Severity::of(*var);
        let nulls = col.iter().filter(|v| matches!(v, Ok(None))).count();
        let share = if n == 0 { 0.0 } else { nulls as f64 / n as f64 };
        c.record(Check {
            name: format!("null_share.{}", var.name()),
            severity,
            passed: share <= cfg.max_null_share,
            measured: Some(share),
            threshold: Some(cfg.max_null_share),
            message: format!(
                "{} of {n} values are null (limit {})",
                pct(share),
                pct(cfg.max_null_share)
            ),
        });
        let (lo, hi) = var.plausible_range();
        let outside: Vec<(usize, f64)> = col
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Ok(Some(x)) if !(lo..=hi).contains(x) => Some((i, *x)),
                _ => None,
            })
            .collect();
        c.record(Check::count(
            format!("range.{}", var.name()),
            severity,
            outside.len(),
            match outside.first() {
                None => format!("every value is within [{lo}, {hi}] {}", var.unit()),
                Some((i, x)) => format!(
                    "{} value(s) outside the plausible range [{lo}, {hi}] {}, the first {x} at {}",
                    outside.len(),
                    var.unit(),
                    format_time(axis[*i])
                ),
            },
        ));
    }
}

/// The longest run of hours that are absent or miss a key variable.
fn gaps(c: &mut Checks, usable: &[(Variable, Column)], axis: &[NaiveDateTime], cfg: &QualityConfig) {
    let incomplete: Vec<bool> = (0..axis.len())
        .map(|i| {
            KEY_VARIABLES.iter().any(|v| {
                usable
                    .iter()
                    .find(|(u, _)| u == v)
                    .is_none_or(|(_, col)| !matches!(col[i], Ok(Some(_))))
            })
        })
        .collect();
    let (longest, at) = longest_gap(axis, &incomplete);
    c.record(Check {
        name: "gaps.max_hours".into(),
        severity: Severity::Fail,
        passed: longest <= cfg.max_gap_hours as i64,
        measured: Some(longest as f64),
        threshold: Some(cfg.max_gap_hours as f64),
        message: match at {
            Some(t) if longest > 0 => format!(
                "the longest run of missing hours is {longest} h, starting {} (limit {} h)",
                format_time(t),
                cfg.max_gap_hours
            ),
            _ => format!("no missing hours (limit {} h)", cfg.max_gap_hours),
        },
    });
}

/// Longest run of missing hours: absent between two times, or marked incomplete.
/// Returns its length and its first hour.
fn longest_gap(axis: &[NaiveDateTime], incomplete: &[bool]) -> (i64, Option<NaiveDateTime>) {
    let mut best = (0i64, None);
    let mut run = 0i64;
    let mut run_start = None;
    for i in 0..axis.len() {
        if i > 0 {
            let absent = (axis[i] - axis[i - 1]).num_hours() - 1;
            if absent > 0 {
                if run == 0 {
                    run_start = Some(axis[i - 1] + Duration::hours(1));
                }
                run += absent;
                if run > best.0 {
                    best = (run, run_start);
                }
            }
        }
        if incomplete[i] {
            if run == 0 {
                run_start = Some(axis[i]);
            }
            run += 1;
        } else {
            run = 0;
        }
        if run > best.0 {
            best = (run, run_start);
        }
    }
    best
}

/// Live snapshots only: how old the newest observation of the target is.
fn staleness(
    c: &mut Checks,
    raw: &RawSeries,
    axis: &[NaiveDateTime],
    collected: DateTime<Utc>,
    cfg: &QualityConfig,
) {
    let target = raw.numeric(TARGET).unwrap_or_default();
    let newest = axis
        .iter()
        .zip(target.iter().chain(std::iter::repeat(&Ok(None))))
        .filter(|(_, v)| matches!(v, Ok(Some(_))))
        .map(|(t, _)| *t)
        .max();
    let limit = cfg.max_staleness_hours as f64;
    let check = match newest {
        Some(t) => {
            let age = (collected.naive_utc() - t).num_minutes() as f64 / 60.0;
            Check {
                name: "staleness.hours".into(),
                severity: Severity::Fail,
                passed: age <= limit,
                measured: Some(age),
                threshold: Some(limit),
                message: format!(
                    "the newest observation ({}) is {age:.1} h older than the collection time (limit {limit} h)",
                    format_time(t)
                ),
            }
        }
        None => Check {
            name: "staleness.hours".into(),
            severity: Severity::Fail,
            passed: false,
            measured: None,
            threshold: Some(limit),
            message: "there is no observation of the target at all".into(),
        },
    };
    c.record(check);
}

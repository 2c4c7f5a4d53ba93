//! The data quality gate: strict checks on a raw snapshot before anything uses it.
//!
//! Every check reports its measured value, its threshold and a sentence. Checks on the
//! key variables fail the gate; the same checks on the other variables only warn.
//! Checks that need a readable time axis are skipped (and say so) when it is not.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::QualityConfig;
use crate::observations::{ALL_VARIABLES, KEY_VARIABLES, RawSeries, TARGET, format_time};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Warn,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f64>,
    pub message: String,
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.name, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityReport {
    pub passed: bool,
    pub rows: usize,
    pub live: bool,
    pub checked_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_time: Option<String>,
    pub checks: Vec<CheckResult>,
}

impl QualityReport {
    pub fn failures(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status == Status::Fail)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &CheckResult> {
        self.checks.iter().filter(|c| c.status == Status::Warn)
    }

    pub fn check(&self, name: &str) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.name == name)
    }
}

struct Checks {
    out: Vec<CheckResult>,
}

impl Checks {
    /// Records a check; `ok` decides pass or (for key checks) fail, else warn.
    fn record(
        &mut self,
        name: String,
        key: bool,
        ok: bool,
        measured: Option<f64>,
        threshold: Option<f64>,
        message: String,
    ) {
        let status = match (ok, key) {
            (true, _) => Status::Pass,
            (false, true) => Status::Fail,
            (false, false) => Status::Warn,
        };
        self.out.push(CheckResult {
            name,
            status,
            measured,
            threshold,
            message,
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
    let mut c = Checks { out: Vec::new() };
    let n = raw.len();

    c.record(
        "row_count".into(),
        true,
        n >= cfg.min_rows,
        Some(n as f64),
        Some(cfg.min_rows as f64),
        format!("{n} hourly rows (at least {} needed)", cfg.min_rows),
    );

    // Variables: present, as long as the time axis, numeric.
    let mut usable = Vec::new();
    for var in ALL_VARIABLES {
        let key = var.is_key();
        let Some(col) = raw.numeric(var) else {
            c.record(
                format!("present.{}", var.name()),
                key,
                false,
                None,
                None,
                format!("the variable {} is missing from the response", var.name()),
            );
            continue;
        };
        let len_ok = col.len() == n;
        c.record(
            format!("length.{}", var.name()),
            key,
            len_ok,
            Some(col.len() as f64),
            Some(n as f64),
            format!("{} values for {n} times", col.len()),
        );
        let non_numeric = col.iter().filter(|v| v.is_err()).count();
        c.record(
            format!("numeric.{}", var.name()),
            key,
            non_numeric == 0,
            Some(non_numeric as f64),
            Some(0.0),
            if non_numeric == 0 {
                "every value is a number or null".into()
            } else {
                format!("{non_numeric} value(s) are neither numbers nor null")
            },
        );
        if len_ok {
            usable.push((var, col));
        }
    }

    // The time axis.
    let times = raw.utc_times();
    let unparsed = times.iter().filter(|t| t.is_none()).count();
    c.record(
        "time.parses".into(),
        true,
        unparsed == 0 && n > 0,
        Some(unparsed as f64),
        Some(0.0),
        match times.iter().position(|t| t.is_none()) {
            None if n > 0 => "every time parses as YYYY-MM-DDTHH:MM".into(),
            None => "there are no times".into(),
            Some(i) => format!(
                "{unparsed} time(s) do not parse as YYYY-MM-DDTHH:MM, the first at index {i}: {}",
                raw.times[i]
            ),
        },
    );
    let axis: Option<Vec<NaiveDateTime>> = if unparsed == 0 && n > 0 {
        Some(times.into_iter().flatten().collect())
    } else {
        None
    };
    let Some(axis) = axis else {
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
        return finish(c, raw, None, live, cfg);
    };

    let off_hour = axis
        .iter()
        .filter(|t| t.and_utc().timestamp() % 3600 != 0)
        .count();
    c.record(
        "time.on_the_hour".into(),
        true,
        off_hour == 0,
        Some(off_hour as f64),
        Some(0.0),
        if off_hour == 0 {
            "every time is a whole UTC hour".into()
        } else {
            format!("{off_hour} time(s) are not whole hours")
        },
    );
    let mut seen = HashSet::with_capacity(n);
    let duplicates = axis.iter().filter(|t| !seen.insert(**t)).count();
    c.record(
        "time.no_duplicates".into(),
        true,
        duplicates == 0,
        Some(duplicates as f64),
        Some(0.0),
        if duplicates == 0 {
            "no time appears twice".into()
        } else {
            format!("{duplicates} time(s) appear more than once")
        },
    );
    let backwards: Vec<usize> = (1..n).filter(|&i| axis[i] < axis[i - 1]).collect();
    c.record(
        "time.strictly_increasing".into(),
        true,
        backwards.is_empty(),
        Some(backwards.len() as f64),
        Some(0.0),
        match backwards.first() {
            None => "times increase".into(),
            Some(&i) => format!(
                "{} time(s) go backwards, the first at index {i}: {} after {}",
                backwards.len(),
                format_time(axis[i]),
                format_time(axis[i - 1])
            ),
        },
    );

    // Nulls and plausible ranges.
    for (var, col) in &usable {
        let nulls = col.iter().filter(|v| matches!(v, Ok(None))).count();
        let share = if n == 0 { 0.0 } else { nulls as f64 / n as f64 };
        c.record(
            format!("null_share.{}", var.name()),
            var.is_key(),
            share <= cfg.max_null_share,
            Some(share),
            Some(cfg.max_null_share),
            format!(
                "{} of {n} values are null (limit {})",
                pct(share),
                pct(cfg.max_null_share)
            ),
        );
        let (lo, hi) = var.plausible_range();
        let outside: Vec<(usize, f64)> = col
            .iter()
            .enumerate()
            .filter_map(|(i, v)| match v {
                Ok(Some(x)) if !(lo..=hi).contains(x) => Some((i, *x)),
                _ => None,
            })
            .collect();
        c.record(
            format!("range.{}", var.name()),
            var.is_key(),
            outside.is_empty(),
            Some(outside.len() as f64),
            Some(0.0),
            match outside.first() {
                None => format!("every value is within [{lo}, {hi}] {}", var.unit()),
                Some((i, x)) => format!(
                    "{} value(s) outside the plausible range [{lo}, {hi}] {}, the first {x} at {}",
                    outside.len(),
                    var.unit(),
                    format_time(axis[*i])
                ),
            },
        );
    }

    // Gaps: the longest run of hours that are absent or miss a key variable.
    if backwards.is_empty() && duplicates == 0 && off_hour == 0 {
        let incomplete: Vec<bool> = (0..n)
            .map(|i| {
                KEY_VARIABLES.iter().any(|v| {
                    usable
                        .iter()
                        .find(|(u, _)| u == v)
                        .is_none_or(|(_, col)| !matches!(col[i], Ok(Some(_))))
                })
            })
            .collect();
        let (longest, at) = longest_gap(&axis, &incomplete);
        c.record(
            "gaps.max_hours".into(),
            true,
            longest <= cfg.max_gap_hours as i64,
            Some(longest as f64),
            Some(cfg.max_gap_hours as f64),
            match at {
                Some(t) if longest > 0 => format!(
                    "the longest run of missing hours is {longest} h, starting {} (limit {} h)",
                    format_time(t),
                    cfg.max_gap_hours
                ),
                _ => format!("no missing hours (limit {} h)", cfg.max_gap_hours),
            },
        );
    } else {
        c.skip(
            "gaps.max_hours",
            "the time axis is not strictly increasing whole hours",
        );
    }

    finish(c, raw, Some(&axis), live, cfg)
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

fn finish(
    mut c: Checks,
    raw: &RawSeries,
    axis: Option<&[NaiveDateTime]>,
    live: Option<DateTime<Utc>>,
    cfg: &QualityConfig,
) -> QualityReport {
    if let (Some(collected), Some(axis)) = (live, axis) {
        // The newest hour with a target value.
        let target = raw.numeric(TARGET).unwrap_or_default();
        let newest = axis
            .iter()
            .zip(target.iter().chain(std::iter::repeat(&Ok(None))))
            .filter(|(_, v)| matches!(v, Ok(Some(_))))
            .map(|(t, _)| *t)
            .max();
        let limit = cfg.max_staleness_hours as f64;
        match newest {
            Some(t) => {
                let age = (collected.naive_utc() - t).num_minutes() as f64 / 60.0;
                c.record(
                    "staleness.hours".into(),
                    true,
                    age <= limit,
                    Some(age),
                    Some(limit),
                    format!(
                        "the newest observation ({}) is {age:.1} h older than the collection time (limit {limit} h)",
                        format_time(t)
                    ),
                );
            }
            None => c.record(
                "staleness.hours".into(),
                true,
                false,
                None,
                Some(limit),
                "there is no observation of the target at all".into(),
            ),
        }
    }
    let passed = !c.out.iter().any(|r| r.status == Status::Fail);
    QualityReport {
        passed,
        rows: raw.len(),
        live: live.is_some(),
        checked_at: Utc::now(),
        first_time: axis.and_then(|a| a.iter().min()).map(|t| format_time(*t)),
        last_time: axis.and_then(|a| a.iter().max()).map(|t| format_time(*t)),
        checks: c.out,
    }
}

//! The promotion gates: what a candidate must show before it may serve production.
//!
//! Each gate is one function from measurements to a [`GateResult`] (measured value,
//! threshold, verdict, one sentence why). The thresholds live in
//! [`GateConfig`](crate::config::GateConfig); the measurements are made by the evaluate
//! stage. Change a gate here and only here.

use crate::bundle::BUNDLE_FORMAT_VERSION;
use crate::config::GateConfig;
pub use crate::records::gate_report::{Contract, Gate, GateResult, HEADLINE_HORIZON, SmokeCheck, Verdict};
use crate::scores::{Baseline, HorizonScore, IntervalScore};

fn score(scores: &[HorizonScore], h: u8) -> Option<&HorizonScore> {
    scores.iter().find(|s| s.horizon == h)
}

/// The horizons whose skill over `baseline` is not above `min`, for people.
fn not_beating(candidate: &[HorizonScore], min: f64, baseline: Baseline) -> Vec<String> {
    let name = baseline.name().replace('_', "-");
    candidate
        .iter()
        .filter(|s| s.skill_over(baseline).partial_cmp(&min) != Some(std::cmp::Ordering::Greater))
        .map(|s| {
            format!(
                "{} h (RMSE {:.3} vs {name} {:.3})",
                s.horizon,
                s.rmse,
                s.baseline_rmse(baseline)
            )
        })
        .collect()
}

/// Accuracy, judged against the location's own baselines so that it holds in any
/// climate: every horizon must beat the seasonal-naive forecast (the same hour
/// yesterday) by more than `min_skill_seasonal` (the skill gate does the same against
/// persistence). An absolute 6 h RMSE ceiling applies only when `max_rmse_h6` is set:
/// what is a good error in a maritime climate is out of reach in a continental one.
/// The result says which rule applied.
pub fn accuracy(candidate: &[HorizonScore], cfg: &GateConfig) -> GateResult {
    let Some(h6) = score(candidate, HEADLINE_HORIZON) else {
        return GateResult::not_measured(Gate::Accuracy, "the candidate has no 6 h model");
    };
    let worst = candidate
        .iter()
        .min_by(|a, b| a.seasonal_skill().total_cmp(&b.seasonal_skill()))
        .unwrap_or(h6);
    let losing = not_beating(candidate, cfg.min_skill_seasonal, Baseline::SeasonalNaive);
    let over_ceiling = cfg
        .max_rmse_h6
        .filter(|max| !(h6.rmse.is_finite() && h6.rmse < *max));
    let ok = losing.is_empty() && over_ceiling.is_none();
    let rule = match cfg.max_rmse_h6 {
        None => {
            "rule: relative to this location's baselines (no absolute ceiling: RPS_GATE_MAX_RMSE_H6 is unset)"
                .to_owned()
        }
        Some(max) => format!(
            "rule: relative to this location's baselines, and the {HEADLINE_HORIZON} h RMSE under the RPS_GATE_MAX_RMSE_H6 ceiling of {max:.3} °C"
        ),
    };
    let mut why = Vec::new();
    if !losing.is_empty() {
        why.push(format!(
            "not better than the seasonal-naive forecast at {}",
            losing.join(", ")
        ));
    }
    if let Some(max) = over_ceiling {
        why.push(format!(
            "the {HEADLINE_HORIZON} h RMSE {:.3} °C is not under the ceiling of {max:.3} °C",
            h6.rmse
        ));
    }
    GateResult::new(
        Gate::Accuracy,
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!(
            "RMSE {:.3} °C at {HEADLINE_HORIZON} h (persistence {:.3}, seasonal-naive {:.3}); worst skill over seasonal-naive {:+.1}% at {} h",
            h6.rmse,
            h6.persistence_rmse,
            h6.seasonal_naive_rmse,
            worst.seasonal_skill() * 100.0,
            worst.horizon
        ),
        match cfg.max_rmse_h6 {
            None => format!("> {:+.1}% over seasonal-naive at every horizon", cfg.min_skill_seasonal * 100.0),
            Some(max) => format!(
                "> {:+.1}% over seasonal-naive at every horizon, < {max:.3} °C at {HEADLINE_HORIZON} h",
                cfg.min_skill_seasonal * 100.0
            ),
        },
        if ok {
            format!("better than this location's seasonal-naive forecast at every horizon; {rule}")
        } else {
            format!("{}; {rule}", why.join("; "))
        },
    )
    .numbers(worst.seasonal_skill(), cfg.min_skill_seasonal)
}

/// No regression against production: the headline horizon within a tight margin, every
/// horizon within a looser one.
pub fn no_regression(
    candidate: &[HorizonScore],
    production: Option<&[HorizonScore]>,
    cfg: &GateConfig,
) -> GateResult {
    let Some(production) = production else {
        return GateResult::new(
            Gate::NoRegression,
            Verdict::NotApplicable,
            "no production model".into(),
            format!(
                "≤ +{:.1}% at {HEADLINE_HORIZON} h, ≤ +{:.1}% at any horizon",
                cfg.max_regression_headline * 100.0,
                cfg.max_regression_any * 100.0
            ),
            "there is no production model to compare with".into(),
        );
    };
    let mut problems = Vec::new();
    let mut headline_change = f64::NAN;
    let mut worst = (0u8, f64::NEG_INFINITY);
    for c in candidate {
        let Some(p) = score(production, c.horizon) else {
            problems.push(format!("production has no {} h model", c.horizon));
            continue;
        };
        let change = c.rmse / p.rmse - 1.0;
        if change > worst.1 || change.is_nan() {
            worst = (c.horizon, change);
        }
        if c.horizon == HEADLINE_HORIZON {
            headline_change = change;
            if change.is_nan() || change > cfg.max_regression_headline {
                problems.push(format!(
                    "{} h RMSE {:.3} vs production {:.3} ({:+.1}%, allowed +{:.1}%)",
                    c.horizon,
                    c.rmse,
                    p.rmse,
                    change * 100.0,
                    cfg.max_regression_headline * 100.0
                ));
            }
        }
        if change.is_nan() || change > cfg.max_regression_any {
            problems.push(format!(
                "{} h RMSE {:.3} vs production {:.3} ({:+.1}%, allowed +{:.1}% at any horizon)",
                c.horizon,
                c.rmse,
                p.rmse,
                change * 100.0,
                cfg.max_regression_any * 100.0
            ));
        }
    }
    if score(candidate, HEADLINE_HORIZON).is_none() {
        problems.push(format!("the candidate has no {HEADLINE_HORIZON} h model"));
    }
    problems.dedup();
    let ok = problems.is_empty();
    GateResult::new(
        Gate::NoRegression,
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!(
            "{:+.1}% at {HEADLINE_HORIZON} h; worst {:+.1}% at {} h",
            headline_change * 100.0,
            worst.1 * 100.0,
            worst.0
        ),
        format!(
            "≤ +{:.1}% at {HEADLINE_HORIZON} h, ≤ +{:.1}% at any horizon",
            cfg.max_regression_headline * 100.0,
            cfg.max_regression_any * 100.0
        ),
        if ok {
            "not worse than production beyond the margins".into()
        } else {
            format!("worse than production: {}", problems.join("; "))
        },
    )
    .numbers(headline_change, cfg.max_regression_headline)
}

/// No regression when production's model cannot be verified (a corrupt bundle, a
/// checksum that does not match, no checksum tag). Only a contract change may skip the
/// comparison (production scores nothing, so the gate does not apply); a production
/// model that cannot be verified fails it, so a promotion cannot pass blind.
pub fn no_regression_unverifiable(version: &str, why: &str, cfg: &GateConfig) -> GateResult {
    GateResult::new(
        Gate::NoRegression,
        Verdict::Fail,
        format!("production version {version} cannot be verified"),
        format!(
            "≤ +{:.1}% at {HEADLINE_HORIZON} h, ≤ +{:.1}% at any horizon",
            cfg.max_regression_headline * 100.0,
            cfg.max_regression_any * 100.0
        ),
        format!(
            "production version {version} cannot be verified ({why}), so there is no comparison; repair or roll back production first"
        ),
    )
}

/// Intervals: on the hold-out, each level's coverage is within `max_coverage_gap` of the
/// level at every horizon (too narrow promises a certainty the model does not have, too
/// wide says nothing), and the interval score is not worse than production's beyond the
/// no-regression margins (the headline horizon's, then any horizon's), level by level.
/// Over a hold-out shorter than `min_interval_hours` the margin is [`SHORT_HOLDOUT_FACTOR`]
/// times wider: a few weeks' coverage swings with their weather (a calm fortnight makes
/// a calibrated interval look wide, a stormy one narrow), and only gross miscalibration
/// is clear on so few hours. A candidate without intervals fails: it would serve forecasts
/// with no word on how sure they are. A production without intervals (an older bundle)
/// leaves only the coverage to judge.
pub fn intervals(
    candidate: &[IntervalScore],
    production: Option<&[IntervalScore]>,
    cfg: &GateConfig,
) -> GateResult {
    let hours = candidate.iter().map(|s| s.hours).min().unwrap_or(0);
    let short = hours < cfg.min_interval_hours;
    let gap = cfg.max_coverage_gap * if short { SHORT_HOLDOUT_FACTOR } else { 1.0 };
    let threshold = format!(
        "coverage within ±{:.1} pp of each level at every horizon (±{:.1} pp under {} hold-out hours); interval score ≤ +{:.1}% of production's at {HEADLINE_HORIZON} h, ≤ +{:.1}% at any horizon",
        cfg.max_coverage_gap * 100.0,
        cfg.max_coverage_gap * SHORT_HOLDOUT_FACTOR * 100.0,
        cfg.min_interval_hours,
        cfg.max_regression_headline * 100.0,
        cfg.max_regression_any * 100.0
    );
    let Some(worst) = candidate.iter().max_by(|a, b| {
        (a.coverage - a.level)
            .abs()
            .total_cmp(&(b.coverage - b.level).abs())
    }) else {
        return GateResult::new(
            Gate::Intervals,
            Verdict::Fail,
            "no intervals".into(),
            threshold,
            "the candidate has no prediction intervals (it was trained without calibration: too few rows, or by a build before them), so its forecasts would say nothing of how sure they are".into(),
        );
    };
    let label = |s: &IntervalScore| format!("{}% at {} h", s.percent(), s.horizon);
    let miss = |s: &IntervalScore| {
        format!(
            "the {} interval covers {:.1}% ({:+.1} pp)",
            label(s),
            s.coverage * 100.0,
            (s.coverage - s.level) * 100.0
        )
    };
    let mut problems: Vec<String> = candidate
        .iter()
        // NaN (no hours) fails too.
        .filter(|s| {
            !matches!(
                (s.coverage - s.level).abs().partial_cmp(&gap),
                Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
            )
        })
        .map(miss)
        .collect();
    let compared: Vec<(&IntervalScore, f64)> = production
        .unwrap_or_default()
        .iter()
        .filter_map(|p| {
            let c = candidate
                .iter()
                .find(|c| c.horizon == p.horizon && c.level == p.level)?;
            Some((c, c.winkler / p.winkler - 1.0))
        })
        .collect();
    for (c, change) in &compared {
        let allowed = if c.horizon == HEADLINE_HORIZON {
            cfg.max_regression_headline
        } else {
            cfg.max_regression_any
        };
        if change.is_nan() || *change > allowed {
            problems.push(format!(
                "the {} interval score is {:+.1}% of production's (allowed +{:.1}%)",
                label(c),
                change * 100.0,
                allowed * 100.0
            ));
        }
    }
    let worst_change = compared
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(c, change)| {
            format!(
                "; interval score worst {:+.1}% of production's ({})",
                change * 100.0,
                label(c)
            )
        });
    let comparison = match (production, &worst_change) {
        (None, _) => "there is no production model to compare interval scores with",
        (Some(_), None) => "production has no intervals to compare with",
        (Some(_), Some(_)) => "interval scores compared with production's",
    };
    let mut comparison = comparison.to_owned();
    if short {
        comparison.push_str(&format!(
            "; the hold-out's {hours} hours are fewer than RPS_GATE_MIN_INTERVAL_HOURS={}, so the coverage margin is ±{:.1} pp",
            cfg.min_interval_hours,
            gap * 100.0
        ));
    }
    let ok = problems.is_empty();
    GateResult::new(
        Gate::Intervals,
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!(
            "worst coverage {:.1}% for {} ({:+.1} pp){}",
            worst.coverage * 100.0,
            label(worst),
            (worst.coverage - worst.level) * 100.0,
            worst_change.unwrap_or_default()
        ),
        threshold,
        if ok {
            format!("every level holds its coverage at every horizon; {comparison}")
        } else {
            format!("{}; {comparison}", problems.join("; "))
        },
    )
    .numbers((worst.coverage - worst.level).abs(), gap)
}

/// How much wider the coverage margin is over a hold-out shorter than
/// `RPS_GATE_MIN_INTERVAL_HOURS`.
pub const SHORT_HOLDOUT_FACTOR: f64 = 3.0;

/// Skill: better than persistence at every horizon.
pub fn skill(candidate: &[HorizonScore], cfg: &GateConfig) -> GateResult {
    let worst = candidate.iter().min_by(|a, b| a.skill().total_cmp(&b.skill()));
    let Some(worst) = worst else {
        return GateResult::not_measured(Gate::Skill, "the candidate has no models");
    };
    let losing = not_beating(candidate, cfg.min_skill, Baseline::Persistence);
    let ok = losing.is_empty();
    GateResult::new(
        Gate::Skill,
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!(
            "worst skill {:+.1}% at {} h",
            worst.skill() * 100.0,
            worst.horizon
        ),
        format!("> {:+.1}% at every horizon", cfg.min_skill * 100.0),
        if ok {
            "better than persistence at every horizon".into()
        } else {
            format!("not better than persistence at {}", losing.join(", "))
        },
    )
    .numbers(worst.skill(), cfg.min_skill)
}

/// Schema: the serving code accepts the candidate's contract; a difference from
/// production's contract is flagged (returned beside the verdict).
pub fn schema(candidate: &Contract, production: Option<&Contract>) -> (GateResult, Vec<String>) {
    let mut flags = Vec::new();
    if let (Some(c), Some(Some(p))) = (&candidate.schema, production.map(|p| &p.schema)) {
        if c.variables != p.variables {
            flags.push(format!(
                "input variables change from {:?} to {:?}",
                p.variables, c.variables
            ));
        }
        if c.input_hours != p.input_hours {
            flags.push(format!(
                "input_hours changes from {} to {}: clients must send {} hours",
                p.input_hours, c.input_hours, c.input_hours
            ));
        }
        if c.horizons != p.horizons {
            flags.push(format!(
                "horizons change from {:?} to {:?}",
                p.horizons, c.horizons
            ));
        }
        if c.features != p.features {
            flags.push("the feature list changes (same inputs, different engineering)".into());
        }
    }
    if let Some(p) = production {
        if p.format_version != candidate.format_version {
            flags.push(format!(
                "bundle format version changes from {} to {}",
                p.format_version, candidate.format_version
            ));
        }
    }
    let threshold = format!(
        "bundle format 1 to {BUNDLE_FORMAT_VERSION}, input_hours {}, horizons 1–6, this build's features",
        crate::features::INPUT_HOURS
    );
    let result = match &candidate.incompatibility {
        None => GateResult::new(
            Gate::Schema,
            Verdict::Pass,
            candidate
                .schema
                .as_ref()
                .map(|s| {
                    format!(
                        "format {}, {} variables, input_hours {}, {} features",
                        candidate.format_version,
                        s.variables.len(),
                        s.input_hours,
                        s.features.len()
                    )
                })
                .unwrap_or_default(),
            threshold,
            if flags.is_empty() {
                "servable by this build and the same contract as production".into()
            } else {
                format!("servable by this build; flagged: {}", flags.join("; "))
            },
        ),
        Some(why) => GateResult::new(
            Gate::Schema,
            Verdict::Fail,
            why.clone(),
            threshold,
            format!("the serving code cannot accept this model: {why}"),
        ),
    };
    (result, flags)
}

/// Latency: the p99 of single in-process predictions.
pub fn latency(p99_ms: f64, samples: usize, cfg: &GateConfig) -> GateResult {
    let ok = p99_ms.is_finite() && p99_ms < cfg.max_p99_ms;
    GateResult::new(
        Gate::Latency,
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!("p99 {:.3} ms (best of rounds of {samples} predictions)", p99_ms),
        format!("< {:.3} ms", cfg.max_p99_ms),
        if ok {
            "one prediction (features and every horizon) is within budget".into()
        } else {
            format!(
                "a single prediction takes {:.3} ms at p99, over the {:.3} ms budget",
                p99_ms, cfg.max_p99_ms
            )
        },
    )
    .numbers(p99_ms, cfg.max_p99_ms)
}

/// Smoke: every check against staging answered as expected.
pub fn smoke(url: Option<&str>, checks: &[SmokeCheck]) -> GateResult {
    let Some(url) = url else {
        return GateResult::new(
            Gate::Smoke,
            Verdict::NotApplicable,
            "no staging endpoint".into(),
            "/health, /ready, /model, /predict as expected".into(),
            "RPS_STAGING_URL is not set, so there is nothing to smoke-test".into(),
        );
    };
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| format!("{}: {}", c.check, c.detail))
        .collect();
    let ok = failed.is_empty() && !checks.is_empty();
    GateResult::new(
        Gate::Smoke,
        if ok { Verdict::Pass } else { Verdict::Fail },
        format!(
            "{}/{} checks passed at {url}",
            checks.iter().filter(|c| c.ok).count(),
            checks.len()
        ),
        "/health, /ready, /model, /predict as expected".into(),
        if ok {
            "staging serves the candidate and answers the golden request".into()
        } else {
            format!("staging at {url} failed: {}", failed.join("; "))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::ModelSchema;
    use crate::config::Config;
    use std::collections::HashMap;

    fn cfg() -> GateConfig {
        Config::from_map(&HashMap::new()).unwrap().gates
    }

    fn scores(rmse: [f64; 6], persistence: [f64; 6]) -> Vec<HorizonScore> {
        (0..6)
            .map(|i| HorizonScore {
                horizon: i as u8 + 1,
                rows: 100,
                rmse: rmse[i],
                mae: rmse[i] * 0.8,
                r2: 0.9,
                persistence_rmse: persistence[i],
                persistence_mae: persistence[i] * 0.8,
                seasonal_naive_rmse: 3.0,
                seasonal_naive_mae: 2.5,
            })
            .collect()
    }

    const PERS: [f64; 6] = [0.5, 0.8, 1.0, 1.2, 1.3, 1.4];

    #[test]
    fn accuracy_is_relative_to_the_location_by_default_and_a_ceiling_only_when_asked() {
        let c = cfg();
        assert_eq!(c.max_rmse_h6, None, "no absolute ceiling by default");
        // A continental station: 2.6 °C at 6 h is far from any maritime ceiling, but far
        // better than its own seasonal-naive forecast (3.0 °C here).
        let continental = scores([0.9, 1.4, 1.8, 2.1, 2.4, 2.6], PERS);
        let r = accuracy(&continental, &c);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert!(r.detail.contains("no absolute ceiling"), "{}", r.detail);
        // Losing to the same hour yesterday at 6 h fails, naming the horizon.
        let bad = scores([0.4, 0.6, 0.8, 1.0, 1.1, 3.1], PERS);
        let r = accuracy(&bad, &c);
        assert!(r.failed() && r.detail.contains("6 h (RMSE 3.100"), "{}", r.detail);
        assert!(r.value.unwrap() < 0.0);
        let nan = scores([0.4, 0.6, 0.8, 1.0, 1.1, f64::NAN], PERS);
        assert!(accuracy(&nan, &c).failed());
        // The ceiling, when set, applies on top and is reported.
        let capped = GateConfig {
            max_rmse_h6: Some(2.0),
            ..cfg()
        };
        let r = accuracy(&continental, &capped);
        assert!(
            r.failed() && r.detail.contains("ceiling of 2.000"),
            "{}",
            r.detail
        );
        assert!(r.threshold.contains("< 2.000 °C"), "{}", r.threshold);
        let good = scores([0.4, 0.6, 0.8, 1.0, 1.1, 1.2], PERS);
        assert_eq!(accuracy(&good, &capped).verdict, Verdict::Pass);
    }

    #[test]
    fn no_regression_has_a_tight_headline_margin_and_a_loose_one_elsewhere() {
        let c = cfg();
        let prod = scores([0.4, 0.6, 0.8, 1.0, 1.1, 1.2], PERS);
        // 1% worse at 6 h, 8% worse at 1 h: within both margins.
        let ok = scores([0.432, 0.6, 0.8, 1.0, 1.1, 1.212], PERS);
        assert_eq!(no_regression(&ok, Some(&prod), &c).verdict, Verdict::Pass);
        // 5% worse at 6 h: over the 2% headline margin.
        let head = scores([0.4, 0.6, 0.8, 1.0, 1.1, 1.26], PERS);
        let r = no_regression(&head, Some(&prod), &c);
        assert!(r.failed() && r.detail.contains("6 h"), "{}", r.detail);
        // 20% worse at 2 h only: over the any-horizon margin.
        let any = scores([0.4, 0.72, 0.8, 1.0, 1.1, 1.2], PERS);
        let r = no_regression(&any, Some(&prod), &c);
        assert!(r.failed() && r.detail.contains("2 h"), "{}", r.detail);
        // Better everywhere passes; no production does not apply.
        let better = scores([0.3, 0.5, 0.7, 0.9, 1.0, 1.1], PERS);
        assert_eq!(no_regression(&better, Some(&prod), &c).verdict, Verdict::Pass);
        assert_eq!(no_regression(&better, None, &c).verdict, Verdict::NotApplicable);
    }

    fn intervals_scores(coverage: [f64; 2], winkler: f64) -> Vec<IntervalScore> {
        (1..=6)
            .flat_map(|h| {
                [0.8, 0.95]
                    .into_iter()
                    .zip(coverage)
                    .map(move |(level, coverage)| IntervalScore {
                        horizon: h,
                        level,
                        coverage,
                        width: 2.0,
                        winkler: winkler * f64::from(h),
                        hours: 1500,
                    })
            })
            .collect()
    }

    #[test]
    fn intervals_must_hold_their_coverage_and_not_score_worse_than_production() {
        let c = cfg();
        assert_eq!(c.max_coverage_gap, 0.05);
        let prod = intervals_scores([0.8, 0.95], 3.0);
        let good = intervals_scores([0.78, 0.96], 3.0);
        let r = intervals(&good, Some(&prod), &c);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert!(r.detail.contains("compared with production"), "{}", r.detail);
        // Made too narrow: 80% covers 70%.
        let narrow = intervals_scores([0.70, 0.90], 3.0);
        let r = intervals(&narrow, None, &c);
        assert!(r.failed(), "{}", r.detail);
        assert!(
            r.detail.contains("80% at 1 h interval covers 70.0% (-10.0 pp)"),
            "{}",
            r.detail
        );
        assert!((r.value.unwrap() - 0.10).abs() < 1e-9 && r.limit == Some(0.05));
        // Too wide fails too: it says nothing.
        assert!(intervals(&intervals_scores([0.9, 0.99], 3.0), None, &c).failed());
        // Well calibrated but a worse interval score than production's at 6 h.
        let mut worse = good.clone();
        for s in worse.iter_mut().filter(|s| s.horizon == 6) {
            s.winkler *= 1.05;
        }
        let r = intervals(&worse, Some(&prod), &c);
        assert!(
            r.failed() && r.detail.contains("at 6 h interval score is +5.0%"),
            "{}",
            r.detail
        );
        // Production without intervals (an older bundle) leaves the coverage to judge.
        let r = intervals(&worse, Some(&[]), &c);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert!(r.detail.contains("production has no intervals"), "{}", r.detail);
        // Over a short hold-out the margin is three times wider: 10 points off passes,
        // 20 do not.
        let short = |mut v: Vec<IntervalScore>| {
            v.iter_mut().for_each(|s| s.hours = 300);
            v
        };
        let r = intervals(&short(intervals_scores([0.9, 0.99], 3.0)), None, &c);
        assert_eq!(r.verdict, Verdict::Pass, "{}", r.detail);
        assert!(r.detail.contains("300 hours are fewer than"), "{}", r.detail);
        assert!(intervals(&short(narrow.clone()), None, &c).verdict == Verdict::Pass);
        assert!(intervals(&short(intervals_scores([0.6, 0.9], 3.0)), None, &c).failed());
        // A candidate without intervals fails, saying why.
        let r = intervals(&[], Some(&prod), &c);
        assert!(
            r.failed() && r.detail.contains("without calibration"),
            "{}",
            r.detail
        );
    }

    #[test]
    fn skill_requires_beating_persistence_at_every_horizon() {
        let c = cfg();
        assert_eq!(
            skill(&scores([0.4, 0.6, 0.8, 1.0, 1.1, 1.2], PERS), &c).verdict,
            Verdict::Pass
        );
        let r = skill(&scores([0.5, 0.6, 0.8, 1.0, 1.1, 1.2], PERS), &c);
        assert!(r.failed(), "a tie with persistence is not skill");
        assert!(r.detail.contains("1 h"), "{}", r.detail);
    }

    #[test]
    fn schema_fails_what_this_build_cannot_serve_and_flags_contract_changes() {
        let cur = ModelSchema::current();
        let ok = Contract::of(BUNDLE_FORMAT_VERSION, &cur);
        let (r, flags) = schema(&ok, Some(&ok));
        assert_eq!(r.verdict, Verdict::Pass);
        assert!(flags.is_empty());

        let mut renamed = cur.clone();
        renamed.features[3] = "temperature_2m_lag_99h".into();
        let (r, _) = schema(&Contract::of(BUNDLE_FORMAT_VERSION, &renamed), Some(&ok));
        assert!(r.failed() && r.detail.contains("lag_99h"), "{}", r.detail);

        let (r, flags) = schema(&Contract::of(BUNDLE_FORMAT_VERSION + 1, &cur), Some(&ok));
        assert!(r.failed() && r.detail.contains("format version"), "{}", r.detail);
        assert_eq!(flags.len(), 1);

        let mut older = cur.clone();
        older.input_hours = 12;
        let (r, flags) = schema(&ok, Some(&Contract::of(BUNDLE_FORMAT_VERSION, &older)));
        assert_eq!(r.verdict, Verdict::Pass);
        assert!(flags[0].contains("input_hours"), "{flags:?}");
    }

    #[test]
    fn latency_and_smoke_report_what_they_measured() {
        let c = cfg();
        assert_eq!(latency(0.05, 1000, &c).verdict, Verdict::Pass);
        assert!(latency(c.max_p99_ms, 1000, &c).failed());
        assert_eq!(smoke(None, &[]).verdict, Verdict::NotApplicable);
        assert!(smoke(Some("http://x"), &[]).failed(), "no checks is not a pass");
        let checks = vec![
            SmokeCheck {
                check: "/health".into(),
                ok: true,
                detail: "200".into(),
            },
            SmokeCheck {
                check: "/model".into(),
                ok: false,
                detail: "serves version 1, not 2".into(),
            },
        ];
        let r = smoke(Some("http://x"), &checks);
        assert!(r.failed() && r.detail.contains("version 1"), "{}", r.detail);
    }
}

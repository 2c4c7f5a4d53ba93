//! Stage 8, verify: close the loop. Score the forecasts rps issued against what
//! happened, and say when the served model should be retrained.
//!
//! One run, hourly after the live ingest (the state machine, the Airflow DAG, or
//! `rps verify`):
//!
//! 1. **issue**: the scheduled forecast from the newest validated observations, made
//!    by the served model and appended to the [`forecast_log`], with those of the day
//!    before that it has not made yet (a missed run, a new promotion);
//! 2. **score** ([`score`]): the log joined with the observations that have arrived
//!    since ([`observed`]): live RMSE, MAE and skill against persistence per model
//!    version, horizon and window (the last 24 hours and 7 days of target times), for
//!    the scheduled forecasts and, apart, for the sampled client answers;
//! 3. **drift**: the observed hours' feature rows against the served model's training
//!    ranges;
//! 4. **decide** ([`trigger`]): whether a retrain on the newest data is needed, from
//!    the scheduled forecasts and the observations only, and claim and record the
//!    request;
//! 5. **publish**: the summary to the store (the API reads the latest one for its
//!    metrics, `/model` and its page), and a monitoring run per model version to the
//!    tracking server.

pub mod observed;
pub mod score;

pub use crate::records::retrain as trigger;
pub use crate::records::verification::{
    ClientScores, FORMAT, Issued, ObservedHour, RECENT_HOURS, Verification, latest,
};

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::{Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use self::score::{LiveWindow, LogCounts};
use self::trigger::{
    FeatureShare, ObservedDrift, RequestDrift, RetrainDecision, RetrainRecord, RetrainStatus,
};
use crate::bundle::{Forecast, ModelBundle};
use crate::drift::{DriftThresholds, DriftTracker};
use crate::features::{INPUT_HOURS, serving_row};
use crate::forecast_log::{self, ForecastSource, LoggedForecast};
use crate::layout;
use crate::observations::HourlySeries;
use crate::recalibration;
use crate::records::skill::IntervalScale;
use crate::registry::{self, LoadedModel};
use crate::stage::{Context, StageError};
use crate::store::{self, ObjectKey};
use crate::tags;
use crate::tracking::{RunRecord, RunStatus};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyInput {
    /// First issue the scheduled forecast from the newest validated observations.
    #[serde(default = "issue_by_default")]
    pub issue: bool,
    /// The validated snapshot to issue from (default: the newest that passed the gate).
    #[serde(default)]
    pub snapshot: Option<ObjectKey>,
    /// The serving API's drift verdict, when an orchestrator read it (`GET /drift`).
    #[serde(default)]
    pub request_drift: Option<RequestDrift>,
}

fn issue_by_default() -> bool {
    true
}

impl Default for VerifyInput {
    fn default() -> Self {
        Self {
            issue: true,
            snapshot: None,
            request_drift: None,
        }
    }
}

/// Issues, scores, decides and publishes (see the module).
pub async fn verify(ctx: &Context, input: VerifyInput) -> Result<Verification, StageError> {
    let name = ctx.config.registry.model_name.clone();
    let alias = ctx.config.serve.model_alias.clone();
    let served = match registry::find_alias(ctx.registry.as_ref(), &name, &alias).await? {
        Some(info) => {
            Some(registry::load_version(ctx.registry.as_ref(), info, &ctx.config.registry.cache_dir).await?)
        }
        None => None,
    };
    let observed = observed::load(ctx.store.as_ref(), input.snapshot.as_ref()).await?;
    let mut warnings = Vec::new();
    // The log of the windows (and the day before them), read before issuing: the
    // hours the served version has forecast already are not forecast again.
    let mut read = match observed.as_of {
        Some(as_of) => {
            let first = as_of - Duration::hours(LiveWindow::Week.hours() + 24);
            forecast_log::read_days(&ctx.store, &name, first.date(), as_of.date()).await?
        }
        None => forecast_log::LogRead::default(),
    };
    let issued = match (&served, &observed.newest, input.issue) {
        (Some(model), Some((key, series)), true) => {
            // Issued as the API answers: re-calibrated by the latest verification. One
            // that cannot be read costs the factors and a warning, not the run (this run
            // writes a new one).
            let in_force = match ctx.config.verify.recalibrate_min_hours {
                0 => None,
                _ => match latest(ctx.store.as_ref(), &name).await {
                    Ok(v) => v.and_then(|v| {
                        Some(InForce {
                            scales: recalibration::in_force(&v, &model.info.version, Utc::now())?.to_vec(),
                            after: v.as_of?,
                        })
                    }),
                    Err(e) => {
                        warnings.push(format!(
                            "the latest verification could not be read ({e}): the scheduled forecasts are issued as calibrated"
                        ));
                        None
                    }
                },
            };
            let from = IssueFrom {
                snapshot: key,
                newest: series,
                all: &observed.series,
            };
            match issue(ctx, &name, model, &from, in_force.as_ref(), &read.scheduled).await? {
                Ok((i, records)) => {
                    read.records += records.len();
                    read.scheduled.extend(records);
                    Some(i)
                }
                Err(why) => {
                    warnings.push(format!("no scheduled forecast was issued: {why}"));
                    None
                }
            }
        }
        (None, _, true) => {
            warnings.push(format!(
                "no scheduled forecast was issued: {name}@{alias} points at no version"
            ));
            None
        }
        (_, None, true) => {
            warnings
                .push("no scheduled forecast was issued: the store holds no validated observations".into());
            None
        }
        (_, _, false) => None,
    };

    let verified_at = Utc::now();
    let mut out = Verification {
        format: FORMAT,
        id: layout::stamp(verified_at),
        verified_at,
        model_name: name.clone(),
        alias,
        served_version: served.as_ref().map(|m| m.info.version.clone()),
        as_of: observed.as_of,
        issued,
        versions: Vec::new(),
        log: LogCounts::default(),
        client: ClientScores::default(),
        drift: Vec::new(),
        retrain: RetrainDecision::default(),
        snapshots: observed.snapshots.len(),
        monitoring_runs: BTreeMap::new(),
        warnings,
        summary: None,
        recent: Vec::new(),
        observed: Vec::new(),
    };
    if let Some(as_of) = observed.as_of {
        let temps = observed.temperatures();
        let max_mismatch = ctx.config.verify.max_mismatch;
        // Only the scheduled forecasts re-calibrate the intervals: traffic cannot steer them.
        let recalibrate = ctx.config.verify.recalibrate_min_hours;
        let scored = score::score(
            read.scheduled,
            &temps,
            as_of,
            max_mismatch,
            RECENT_HOURS,
            recalibrate,
        );
        let clients = score::score(read.client, &temps, as_of, max_mismatch, 0, 0);
        out.versions = scored.versions;
        out.log = LogCounts {
            records: read.records,
            skipped: read.skipped,
            duplicates: read.duplicates,
            ..scored.counts
        };
        out.client = ClientScores {
            versions: clients.versions,
            log: clients.counts,
        };
        out.recent = scored.recent;
        out.observed = temps
            .range(as_of - Duration::hours(RECENT_HOURS - 1)..=as_of)
            .map(|(t, v)| ObservedHour {
                time: *t,
                temperature_2m: *v,
            })
            .collect();
        if let Some(model) = &served {
            out.drift = LiveWindow::ALL
                .iter()
                .map(|w| observed_drift(&model.bundle, &observed.series, as_of, *w))
                .collect();
        }
        let last = trigger::latest(ctx.store.as_ref(), &name).await?;
        let holding = trigger::holding_run(ctx.store.as_ref(), &name, last.as_ref()).await?;
        out.retrain = trigger::decide(
            &ctx.config.verify.retrain,
            as_of,
            out.served_version.as_deref().and_then(|v| out.version(v)),
            out.drift.iter().find(|d| d.window == LiveWindow::Day),
            input.request_drift.as_ref(),
            last.as_ref(),
            holding,
        );
        request(ctx, &name, last.as_ref(), &mut out.retrain).await?;
    } else {
        out.warnings
            .push("nothing was verified: the store holds no validated observations".into());
    }
    track(ctx, &mut out).await;
    let key = layout::verification(&name, &format!("{}.json", out.id))?;
    out.summary = Some(key.clone());
    store::put_json(ctx.store.as_ref(), &key, &out, true).await?;
    store::put_json(
        ctx.store.as_ref(),
        &layout::verification(&name, layout::LATEST_FILE)?,
        &out,
        false,
    )
    .await?;
    if ctx.config.serve.emf {
        println!("{}", emf_line(&ctx.config.serve.emf_namespace, &out));
    }
    tracing::info!(
        as_of = ?out.as_of,
        versions = out.versions.len(),
        records = out.log.records,
        skipped = out.log.skipped,
        retrain = out.retrain.needed,
        "verified"
    );
    Ok(out.without_series())
}

/// Claims and records the retrain `decision` asks for (a reissued request is recorded
/// already). A verification that loses the claim to another holds instead.
async fn request(
    ctx: &Context,
    name: &str,
    last: Option<&RetrainRecord>,
    decision: &mut RetrainDecision,
) -> Result<(), StageError> {
    let Some(mut t) = decision.trigger.clone() else {
        return Ok(());
    };
    if decision.reissued {
        tracing::warn!(trigger = %t.id, "retrain asked again (no run has taken it up): {}", t.describe());
        return Ok(());
    }
    if let Some(winner) =
        trigger::claim_request(ctx.store.as_ref(), name, last.map(|l| &l.trigger), &t).await?
    {
        if trigger::recorded(ctx.store.as_ref(), name, &winner.id).await? {
            decision.needed = false;
            decision.trigger = None;
            decision.held = Some(format!(
                "another verification asked for a retrain at the same time ({})",
                winner.id
            ));
            return Ok(());
        }
        // The verification that claimed it failed before recording it (this stage's
        // own earlier try, say): this one records it and asks for it.
        t = winner;
        decision.trigger = Some(t.clone());
    }
    tracing::warn!(trigger = %t.id, kinds = %t.kinds(), "retrain needed: {}", t.describe());
    let requested = RetrainRecord {
        trigger: t,
        status: RetrainStatus::Requested,
        updated_at: Utc::now(),
        candidate: None,
        report: None,
        failed_gates: Vec::new(),
    };
    trigger::record(ctx.store.as_ref(), name, &requested).await?;
    Ok(())
}

/// The verification as one CloudWatch Embedded Metric Format line (on Lambda, where
/// nobody scrapes): in `namespace` (`RPS_METRICS_NAMESPACE`), dimension `stage` = `verify`; the served version's
/// 6 h live skill, RMSE and 80% interval coverage over 24 hours, the observations'
/// out-of-range share, and whether a retrain was asked for. `template.yaml` alarms on
/// the skill and the coverage.
pub fn emf_line(namespace: &str, v: &Verification) -> String {
    let day = v
        .served_version
        .as_deref()
        .and_then(|s| v.version(s))
        .and_then(|s| s.window(LiveWindow::Day))
        .and_then(|w| w.horizon(trigger::JUDGED_HORIZON));
    let mut line = serde_json::json!({
        "_aws": {
            "Timestamp": v.verified_at.timestamp_millis(),
            "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["stage"]], "Metrics": []}],
        },
        "stage": "verify",
        "retrain_requested": u8::from(v.retrain.needed),
    });
    let mut metrics = vec![serde_json::json!({"Name": "retrain_requested", "Unit": "Count"})];
    let mut put = |name: &str, unit: &str, value: Option<f64>| {
        if let Some(x) = value.filter(|x| x.is_finite()) {
            metrics.push(serde_json::json!({"Name": name, "Unit": unit}));
            line[name] = serde_json::json!(x);
        }
    };
    put("live_skill_h6_24h", "None", day.and_then(|d| d.skill));
    put("live_rmse_h6_24h", "None", day.map(|d| d.rmse));
    put(
        "live_interval_coverage_80_h6_24h",
        "None",
        day.and_then(|d| d.interval(0.8)).map(|i| i.coverage),
    );
    put(
        "live_out_of_range_ratio_24h",
        "None",
        v.drift
            .iter()
            .find(|d| d.window == LiveWindow::Day)
            .map(|d| d.out_of_range_share),
    );
    line["_aws"]["CloudWatchMetrics"][0]["Metrics"] = serde_json::json!(metrics);
    if let Some(s) = &v.served_version {
        line["model_version"] = serde_json::json!(s);
    }
    line.to_string()
}

/// Hours back from the newest that a verification forecasts, when the served version
/// has not forecast them yet (a run the schedule missed, the day after a promotion).
pub const CATCH_UP_HOURS: i64 = 24;

/// What a scheduled forecast is made from: the newest validated snapshot, its series,
/// and every validated observation.
struct IssueFrom<'a> {
    snapshot: &'a ObjectKey,
    newest: &'a HourlySeries,
    all: &'a HourlySeries,
}

/// The live re-calibration in force: the latest verification's factors for the served
/// version, known from the hour after the one it had observed to.
struct InForce {
    scales: Vec<IntervalScale>,
    after: NaiveDateTime,
}

/// The scheduled forecast from `newest` (the newest snapshot's last hour), and those of
/// the [`CATCH_UP_HOURS`] before it that the served version has not forecast yet (from
/// `all`, the validated observations: exactly what the schedule would have issued, as
/// the model reads nothing after the hour, and re-calibrated only from the hours after
/// the factors were found), appended to the log. The outer error is the store's; the
/// inner says why no forecast could be made.
async fn issue(
    ctx: &Context,
    name: &str,
    model: &LoadedModel,
    from: &IssueFrom<'_>,
    in_force: Option<&InForce>,
    logged: &[LoggedForecast],
) -> Result<Result<(Issued, Vec<LoggedForecast>), String>, StageError> {
    let IssueFrom {
        snapshot,
        newest,
        all,
    } = *from;
    let version = &model.info.version;
    let done: HashSet<NaiveDateTime> = logged
        .iter()
        .filter(|r| &r.model_version == version)
        .map(|r| r.issued_at)
        .collect();
    let row = match serving_row(&newest.tail(INPUT_HOURS)) {
        Ok(r) => r,
        Err(e) => {
            return Ok(Err(format!(
                "the newest observations cannot make a forecast: {e}"
            )));
        }
    };
    if done.contains(&row.time) {
        return Ok(Err(format!(
            "version {version} has forecast from {} already",
            row.time
        )));
    }
    let scales_at = |t: NaiveDateTime| -> &[IntervalScale] {
        match in_force {
            Some(r) if t > r.after => &r.scales,
            _ => &[],
        }
    };
    let predict = |row: &crate::features::FeatureRow| {
        model.bundle.predict(row).map(|mut f| {
            recalibration::apply(&mut f, scales_at(row.time));
            f
        })
    };
    let forecasts = match predict(&row) {
        Ok(f) => f,
        Err(e) => return Ok(Err(format!("version {version} could not forecast: {e}"))),
    };
    let record = |row: &crate::features::FeatureRow, f: &[Forecast]| {
        LoggedForecast::new(
            name,
            version,
            ForecastSource::Scheduled,
            row,
            f,
            Some(model.bundle.metadata.data_end()),
            scales_at(row.time),
        )
    };
    let mut records = Vec::new();
    for back in (1..CATCH_UP_HOURS).rev() {
        let t = row.time - Duration::hours(back);
        if done.contains(&t) {
            continue;
        }
        let window = all.between(t - Duration::hours(INPUT_HOURS as i64 - 1), t);
        if let Ok(r) = serving_row(&window)
            && r.time == t
            && let Ok(f) = predict(&r)
        {
            records.push(record(&r, &f));
        }
    }
    let catch_up = records.len();
    records.push(record(&row, &forecasts));
    let segment = forecast_log::append(ctx.store.as_ref(), name, &records)
        .await?
        .pop()
        .ok_or_else(|| StageError::Internal("appending forecasts wrote no segment".into()))?;
    Ok(Ok((
        Issued {
            version: version.clone(),
            issued_at: row.time,
            snapshot: snapshot.clone(),
            segment,
            forecasts,
            catch_up,
        },
        records,
    )))
}

/// The observed hours of `window` as feature rows, against `bundle`'s training data.
fn observed_drift(
    bundle: &ModelBundle,
    series: &HourlySeries,
    as_of: NaiveDateTime,
    window: LiveWindow,
) -> ObservedDrift {
    let hours = window.hours() as usize;
    let tracker = DriftTracker::new(
        hours,
        DriftThresholds {
            min_requests: 1,
            ..DriftThresholds::default()
        },
    );
    tracker.reset(Arc::new(bundle.feature_stats.clone()));
    for i in 0..window.hours() {
        let t = as_of - Duration::hours(i);
        let w = series.between(t - Duration::hours(INPUT_HOURS as i64 - 1), t);
        if let Ok(row) = serving_row(&w)
            && row.time == t
        {
            tracker.observe(&row.values);
        }
    }
    let snap = tracker.snapshot();
    let weather = || snap.features.iter().filter(|f| !f.calendar);
    let mut features: Vec<FeatureShare> = weather()
        .filter(|f| f.out_of_range_share > 0.0)
        .map(|f| FeatureShare {
            feature: f.feature.clone(),
            out_of_range_share: f.out_of_range_share,
        })
        .collect();
    features.sort_by(|a, b| b.out_of_range_share.total_cmp(&a.out_of_range_share));
    features.truncate(5);
    ObservedDrift {
        window,
        hours: snap.requests,
        out_of_range_share: snap.out_of_range_share,
        features,
        max_psi: weather()
            .filter_map(|f| f.psi)
            .reduce(f64::max)
            .filter(|_| snap.requests >= trigger::PSI_MIN_HOURS),
    }
}

/// The live scores of each version to its monitoring run (one per version, a child of
/// its training run), best effort: a tracking server that fails costs a warning, not
/// the verification.
async fn track(ctx: &Context, out: &mut Verification) {
    let (Some(tracker), Some(as_of)) = (&ctx.tracker, out.as_of) else {
        return;
    };
    // One step per observed hour, so that MLflow draws the metrics against data time.
    let step = as_of.and_utc().timestamp() / 3600;
    for v in &out.versions {
        let result = async {
            let info = ctx.registry.get_version(&out.model_name, &v.version).await?;
            let run = match info.tag(tags::version::MONITORING_RUN) {
                Some(id) => tracker.get_run(id).await?,
                None => {
                    let mut t = BTreeMap::from([
                        (tags::run::STAGE.to_owned(), "verify".to_owned()),
                        (tags::run::MODEL_NAME.to_owned(), out.model_name.clone()),
                        (tags::run::MODEL_VERSION.to_owned(), v.version.clone()),
                    ]);
                    if let Some(parent) = info.run_id.as_deref().or(info.tag(tags::version::RUN_ID)) {
                        t.insert(tags::run::PARENT_RUN.to_owned(), parent.to_owned());
                    }
                    let run = tracker
                        .start_run(&format!("monitor {} v{}", out.model_name, v.version), &t)
                        .await?;
                    ctx.registry
                        .set_version_tag(
                            &out.model_name,
                            &v.version,
                            tags::version::MONITORING_RUN,
                            &run.run_id,
                        )
                        .await?;
                    run
                }
            };
            let record = RunRecord {
                metrics: v.metrics(),
                step,
                ..RunRecord::default()
            };
            tracker.log(&run, &record).await?;
            tracker.finish(&run, RunStatus::Finished).await?;
            Ok::<_, StageError>(run.url.unwrap_or(run.run_id))
        }
        .await;
        match result {
            Ok(run) => {
                out.monitoring_runs.insert(v.version.clone(), run);
            }
            Err(e) => out.warnings.push(format!(
                "version {}'s live scores were not tracked: {e}",
                v.version
            )),
        }
    }
}

#[cfg(test)]
mod tests;

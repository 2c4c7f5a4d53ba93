//! When the served model should be retrained, and the record of each retrain that was
//! asked for: the one rule ([`decide`]) that the CLI, the state machine and the Airflow
//! DAG act on.
//!
//! A retrain is asked for when, on the data's clock (the newest observed hour):
//!
//! - **live skill**: over the last 24 hours, the served model's 6 h forecasts did worse
//!   than `RPS_RETRAIN_MIN_SKILL` against persistence (default 0: worse than "no
//!   change"), with at least `RPS_RETRAIN_MIN_HOURS` of them verified; or
//! - **drift**: over the last 24 observed hours (at least `RPS_RETRAIN_MIN_HOURS`), the
//!   share with a weather feature outside the served model's training range is over
//!   `RPS_DRIFT_MAX_OUT_OF_RANGE` (the API's own drift window, which an orchestrator
//!   that read `GET /drift` passes, only corroborates: see below);
//!
//! and no retrain was asked for in the last `RPS_RETRAIN_COOLDOWN_HOURS` (a retrain that
//! could not help, refused by the gates, is not asked for again every hour). The
//! promotion gates still decide whether the retrained model serves.
//!
//! Only what the deployment itself did decides: the skill of its scheduled forecasts
//! and the observations. The API's drift verdict comes from client requests, which
//! anyone can send: it is named among the causes when another cause holds, and alone
//! it asks for nothing.
//!
//! Each request is made once, and run once:
//!
//! - the request is claimed with a create-only write of the slot after the newest
//!   record ([`claim_request`]): two verifications that read the same newest record
//!   cannot both ask;
//! - a request that no run has taken up (its record still "requested", no run claim)
//!   is asked for again, the same trigger, by the next verification, instead of being
//!   held by its own cooldown: a failure between the request and the run (the event,
//!   the summary, a timeout) does not lose it;
//! - a run takes a trigger up with a create-only claim ([`claim_run`]) before it
//!   trains: a second start with the same trigger (an event delivered twice, a
//!   verification and a person) ends as a conflict, not as a second training. A claim
//!   older than [`RUN_LEASE_HOURS`] whose trigger has no outcome is from a run that died,
//!   and the next run takes over.
//!
//! The out-of-range share, not the PSI, decides on observations: a day of one season
//! against a model's year has a large PSI in any season, while a value outside
//! everything the model has seen is a fact about this model.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::records::skill::{LiveWindow, VersionSkill};
use crate::source::IngestRequest;
use crate::store::{self, ObjectKey, ObjectStore, StoreError};

/// The horizon whose live skill decides: the longest, where a model earns its keep.
pub const JUDGED_HORIZON: u8 = 6;

pub use crate::config::RetrainRule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    LiveSkill,
    Drift,
}

impl TriggerKind {
    pub fn name(self) -> &'static str {
        match self {
            TriggerKind::LiveSkill => "live_skill",
            TriggerKind::Drift => "drift",
        }
    }
}

/// One reason to retrain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cause {
    pub kind: TriggerKind,
    pub reason: String,
}

/// What started a retraining run: it travels with the run (the pipeline's input, the
/// state machine's state, the Airflow conf) into the training run's tags, the gate
/// report and the record of its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Trigger {
    /// Sortable and unique: when it was asked for.
    pub id: String,
    pub causes: Vec<Cause>,
    /// The served version that was judged.
    #[serde(default)]
    pub version: Option<String>,
    /// The newest observed hour when it was asked for.
    pub as_of: NaiveDateTime,
    pub requested_at: DateTime<Utc>,
    /// The data the retrain should fetch.
    pub ingest: IngestRequest,
}

impl Trigger {
    /// `live_skill+drift`: the kinds, for tags and actors.
    pub fn kinds(&self) -> String {
        let mut k: Vec<&str> = self.causes.iter().map(|c| c.kind.name()).collect();
        k.dedup();
        k.join("+")
    }

    /// One line for reports and logs.
    pub fn describe(&self) -> String {
        let reasons: Vec<&str> = self.causes.iter().map(|c| c.reason.as_str()).collect();
        format!("trigger {} ({}): {}", self.id, self.kinds(), reasons.join("; "))
    }
}

/// Drift of the observations against the served model's training data over one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ObservedDrift {
    pub window: LiveWindow,
    /// Observed hours with a complete feature row.
    pub hours: usize,
    /// Share of them with a weather feature outside its training range.
    pub out_of_range_share: f64,
    /// The weather features most often out of range.
    pub features: Vec<FeatureShare>,
    /// The largest PSI of a weather feature, once there are [`PSI_MIN_HOURS`] (reported;
    /// see the module on why it does not decide).
    pub max_psi: Option<f64>,
}

/// A feature and the share of hours it was out of range.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FeatureShare {
    pub feature: String,
    pub out_of_range_share: f64,
}

/// Fewer hours give no PSI: 20 bins carry noise of about 19/n for an unchanged
/// distribution (0.19 at 100 hours), so a day's PSI says nothing.
pub const PSI_MIN_HOURS: usize = 100;

/// The serving API's drift verdict, as an orchestrator read it from `GET /drift`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestDrift {
    pub drifting: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub requests: usize,
}

/// The verdict of one verification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrainDecision {
    pub needed: bool,
    /// Every cause that held, whether or not a retrain was asked for.
    pub causes: Vec<Cause>,
    /// Why no retrain was asked for although a cause held.
    #[serde(default)]
    pub held: Option<String>,
    /// Set when a retrain was asked for.
    #[serde(default)]
    pub trigger: Option<Trigger>,
    /// The trigger is an earlier request that no run has taken up yet, asked again.
    #[serde(default)]
    pub reissued: bool,
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The rule (see the module). `judged` is the served version's live skill from its
/// scheduled forecasts, `drift` the observations' drift against it, `request_drift` the
/// API's verdict (corroborating only), `last` the newest retrain record and
/// `pending_run` when a run took it up, if one holds it now.
pub fn decide(
    rule: &RetrainRule,
    as_of: NaiveDateTime,
    judged: Option<&VersionSkill>,
    drift: Option<&ObservedDrift>,
    request_drift: Option<&RequestDrift>,
    last: Option<&RetrainRecord>,
    pending_run: Option<DateTime<Utc>>,
) -> RetrainDecision {
    let mut causes = Vec::new();
    if let Some(v) = judged
        && let Some(s) = v.window(LiveWindow::Day).and_then(|w| w.horizon(JUDGED_HORIZON))
        && s.n >= rule.min_hours
        && let Some(skill) = s.skill
        && skill < rule.min_skill
    {
        causes.push(Cause {
            kind: TriggerKind::LiveSkill,
            reason: format!(
                "version {}'s {JUDGED_HORIZON} h forecasts over the last 24 hours have a skill of {} against persistence (RMSE {:.2} °C against {:.2} °C, {} forecasts); the limit is {}",
                v.version,
                pct(skill),
                s.rmse,
                s.persistence_rmse,
                s.n,
                pct(rule.min_skill)
            ),
        });
    }
    if let Some(d) = drift
        && d.hours >= rule.min_hours
        && d.out_of_range_share > rule.max_out_of_range
    {
        let names: Vec<&str> = d.features.iter().take(3).map(|f| f.feature.as_str()).collect();
        causes.push(Cause {
            kind: TriggerKind::Drift,
            reason: format!(
                "{} of the last {} observed hours had a weather feature outside the training range (limit {}), most often {}",
                pct(d.out_of_range_share),
                d.hours,
                pct(rule.max_out_of_range),
                names.join(", ")
            ),
        });
    }
    // The API's verdict is made from client requests: it may corroborate a cause
    // found in the observations or the scheduled forecasts, never stand alone.
    let api = request_drift.filter(|r| r.drifting);
    if let Some(r) = api
        && !causes.is_empty()
    {
        causes.push(Cause {
            kind: TriggerKind::Drift,
            reason: format!(
                "the API's drift window ({} requests) drifts too: {}",
                r.requests,
                r.reasons.join("; ")
            ),
        });
    }
    let cooldown = Duration::hours(i64::from(rule.cooldown_hours));
    // A request that nothing has taken up (no run, no outcome) is asked for again,
    // the same trigger, until a run takes it up or its cooldown is over: in the hour it
    // was made (a retried verification), then 1, 2, 4, 8 and 16 hours after it, so a
    // run that keeps failing before it trains is not started every hour.
    if let Some(l) = last
        && l.status == RetrainStatus::Requested
        && l.trigger.as_of > as_of - cooldown
    {
        let age = (as_of - l.trigger.as_of).num_hours();
        let due = age <= 0 || (age as u64).is_power_of_two();
        return match pending_run {
            None if !due => {
                let next = (age as u64).next_power_of_two() as i64;
                RetrainDecision {
                    needed: false,
                    held: Some(format!(
                        "retrain {} was asked for at {} and nothing has taken it up yet; it is asked for again at {}",
                        l.trigger.id,
                        l.trigger.as_of,
                        l.trigger.as_of + Duration::hours(next)
                    )),
                    causes,
                    trigger: None,
                    reissued: false,
                }
            }
            Some(since) => RetrainDecision {
                needed: false,
                held: Some(format!(
                    "retrain {} is being run (taken up at {since}); none is asked for until it ends",
                    l.trigger.id
                )),
                causes,
                trigger: None,
                reissued: false,
            },
            None => RetrainDecision {
                needed: true,
                causes,
                held: None,
                trigger: Some(l.trigger.clone()),
                reissued: true,
            },
        };
    }
    if causes.is_empty() {
        return RetrainDecision {
            held: api.map(|r| {
                format!(
                    "the API's drift window ({} requests) drifts, but client traffic alone never asks for a retrain: the observations and the scheduled forecasts do not call for one",
                    r.requests
                )
            }),
            ..RetrainDecision::default()
        };
    }
    if let Some(l) = last
        && l.trigger.as_of > as_of - cooldown
    {
        return RetrainDecision {
            needed: false,
            held: Some(format!(
                "a retrain was asked for at {} ({}, now {}); none is asked for again within {} hours",
                l.trigger.as_of,
                l.trigger.id,
                l.status.name(),
                rule.cooldown_hours
            )),
            causes,
            trigger: None,
            reissued: false,
        };
    }
    let requested_at = Utc::now();
    let ingest = IngestRequest::Recent {
        days: rule.days,
        lag_days: rule.lag_days,
    }
    .resolved(as_of.date());
    RetrainDecision {
        needed: true,
        trigger: Some(Trigger {
            id: layout::stamp(requested_at),
            causes: causes.clone(),
            version: judged.map(|v| v.version.clone()),
            as_of,
            requested_at,
            ingest,
        }),
        causes,
        held: None,
        reissued: false,
    }
}

/// Where a triggered retrain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetrainStatus {
    Requested,
    /// The retrained model passed every gate and serves.
    Promoted,
    /// The gates refused the retrained model: production is unchanged.
    Refused,
    /// Another promotion moved production first: this one changed nothing (not a
    /// refusal; the next verification judges the new production model).
    Superseded,
}

impl RetrainStatus {
    pub fn name(self) -> &'static str {
        match self {
            RetrainStatus::Requested => "requested",
            RetrainStatus::Promoted => "promoted",
            RetrainStatus::Refused => "refused",
            RetrainStatus::Superseded => "superseded",
        }
    }
}

/// A triggered retrain and, once known, its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrainRecord {
    pub trigger: Trigger,
    pub status: RetrainStatus,
    pub updated_at: DateTime<Utc>,
    /// The retrained version, once there is one.
    #[serde(default)]
    pub candidate: Option<String>,
    /// The gate report that decided.
    #[serde(default)]
    pub report: Option<ObjectKey>,
    #[serde(default)]
    pub failed_gates: Vec<String>,
}

/// The newest retrain record, if any.
pub async fn latest(store: &dyn ObjectStore, name: &str) -> Result<Option<RetrainRecord>, StoreError> {
    match store::get_json(store, &layout::retrain(name, layout::LATEST_FILE)?).await {
        Ok(r) => Ok(Some(r)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Writes `record` under its trigger's id, and as the latest unless a newer trigger is.
pub async fn record(store: &dyn ObjectStore, name: &str, record: &RetrainRecord) -> Result<(), StoreError> {
    let own = layout::retrain(name, &format!("{}.json", record.trigger.id))?;
    store::put_json(store, &own, record, false).await?;
    let newer = latest(store, name)
        .await
        .ok()
        .flatten()
        .is_some_and(|l| l.trigger.id > record.trigger.id);
    if !newer {
        store::put_json(store, &layout::retrain(name, layout::LATEST_FILE)?, record, false).await?;
    }
    Ok(())
}

/// How long a run's claim on a trigger holds: far longer than any training run (the
/// state machine's stages time out in minutes). A claim older than this whose trigger
/// has no outcome is a run that died.
pub const RUN_LEASE_HOURS: i64 = 2;

/// Claims the request after `previous` (the newest record's trigger, if any) for
/// `trigger`, create-only. `Ok(None)`: claimed. `Ok(Some(winner))`: another
/// verification claimed it first, for `winner`.
pub async fn claim_request(
    store: &dyn ObjectStore,
    name: &str,
    previous: Option<&Trigger>,
    trigger: &Trigger,
) -> Result<Option<Trigger>, StoreError> {
    let key = layout::retrain_successor(name, previous.map(|t| t.id.as_str()))?;
    match store::put_json(store, &key, trigger, true).await {
        Ok(()) => Ok(None),
        Err(StoreError::AlreadyExists { .. }) => Ok(Some(store::get_json(store, &key).await?)),
        Err(e) => Err(e),
    }
}

/// Whether trigger `id` was recorded (a claim whose verification failed before
/// recording it was not).
pub async fn recorded(store: &dyn ObjectStore, name: &str, id: &str) -> Result<bool, StoreError> {
    store.exists(&layout::retrain(name, &format!("{id}.json"))?).await
}

/// Where trigger `id` stands, if it was recorded.
pub async fn status(
    store: &dyn ObjectStore,
    name: &str,
    id: &str,
) -> Result<Option<RetrainStatus>, StoreError> {
    match store::get_json::<RetrainRecord>(store, &layout::retrain(name, &format!("{id}.json"))?).await {
        Ok(r) => Ok(Some(r.status)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A run's claim on a trigger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunClaim {
    pub trigger: String,
    pub attempt: u32,
    pub claimed_at: DateTime<Utc>,
    /// The orchestrator's run that claimed it, when it named one.
    #[serde(default)]
    pub run: Option<String>,
    /// Who: unique to the claimant, so that two claims never have the same bytes.
    pub by: String,
}

/// The newest claim on trigger `id`, if any.
pub async fn latest_run(
    store: &dyn ObjectStore,
    name: &str,
    id: &str,
) -> Result<Option<RunClaim>, StoreError> {
    let Some(key) = store.list(&layout::retrain_runs(name, id)).await?.pop() else {
        return Ok(None);
    };
    match store::get_json(store, &key).await {
        Ok(c) => Ok(Some(c)),
        Err(StoreError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// When a run took the request of `last` up, if it holds it now (its claim is within
/// the lease). Verification asks the request again when nothing holds it.
pub async fn holding_run(
    store: &dyn ObjectStore,
    name: &str,
    last: Option<&RetrainRecord>,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let Some(l) = last.filter(|l| l.status == RetrainStatus::Requested) else {
        return Ok(None);
    };
    Ok(latest_run(store, name, &l.trigger.id)
        .await?
        .map(|c| c.claimed_at)
        .filter(|at| *at > Utc::now() - Duration::hours(RUN_LEASE_HOURS)))
}

/// Takes trigger `t` up for one run (create-only), or says why this run must not
/// train: another run holds it, or it has an outcome already. `run` names the
/// orchestrator's run: the same run may take its own claim again (a retried task).
pub async fn claim_run(
    store: &dyn ObjectStore,
    name: &str,
    t: &Trigger,
    run: Option<&str>,
) -> Result<RunClaim, ClaimRefused> {
    let own = layout::retrain(name, &format!("{}.json", t.id))?;
    match store::get_json::<RetrainRecord>(store, &own).await {
        Ok(r) if r.status != RetrainStatus::Requested => {
            return Err(ClaimRefused::Taken(format!(
                "retrain {} has run already ({}, candidate {})",
                t.id,
                r.status.name(),
                r.candidate.as_deref().unwrap_or("none")
            )));
        }
        Ok(_) | Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let now = Utc::now();
    let attempt = match latest_run(store, name, &t.id).await? {
        None => 1,
        Some(c) if run.is_some() && c.run.as_deref() == run => return Ok(c),
        Some(c) if c.claimed_at > now - Duration::hours(RUN_LEASE_HOURS) => {
            return Err(ClaimRefused::Taken(format!(
                "retrain {} is being run already (taken up at {}, attempt {})",
                t.id, c.claimed_at, c.attempt
            )));
        }
        Some(c) => c.attempt + 1,
    };
    let claim = RunClaim {
        trigger: t.id.clone(),
        attempt,
        claimed_at: now,
        run: run.map(str::to_owned),
        by: format!("{}-{:016x}", layout::stamp(now), rand::random::<u64>()),
    };
    match store::put_json(store, &layout::retrain_run(name, &t.id, attempt)?, &claim, true).await {
        Ok(()) => Ok(claim),
        Err(StoreError::AlreadyExists { .. }) => Err(ClaimRefused::Taken(format!(
            "retrain {} was taken up by another run just now (attempt {attempt})",
            t.id
        ))),
        Err(e) => Err(e.into()),
    }
}

/// Why a run may not take a trigger up.
#[derive(Debug, thiserror::Error)]
pub enum ClaimRefused {
    /// Another run has it, or had it: a clean outcome, nothing to do.
    #[error("{0}")]
    Taken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Records what became of a triggered retrain; best effort (the promotion's outcome
/// stands either way), so a failure is logged and returned as a warning.
pub async fn record_outcome(
    store: &dyn ObjectStore,
    name: &str,
    trigger: &Trigger,
    status: RetrainStatus,
    candidate: Option<&str>,
    report: Option<&ObjectKey>,
    failed_gates: &[String],
) -> Option<String> {
    let r = RetrainRecord {
        trigger: trigger.clone(),
        status,
        updated_at: Utc::now(),
        candidate: candidate.map(str::to_owned),
        report: report.cloned(),
        failed_gates: failed_gates.to_vec(),
    };
    match record(store, name, &r).await {
        Ok(()) => {
            tracing::info!(trigger = %trigger.id, status = status.name(), candidate = ?candidate, "triggered retrain {}", status.name());
            None
        }
        Err(e) => {
            let w = format!(
                "the outcome of {} ({}) was not recorded: {e}",
                trigger.id,
                status.name()
            );
            tracing::error!("{w}");
            Some(w)
        }
    }
}

#[cfg(test)]
mod tests;

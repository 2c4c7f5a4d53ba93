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
//!   `RPS_DRIFT_MAX_OUT_OF_RANGE`, or the API's own drift window says it drifts (an
//!   orchestrator that read `GET /drift` passes its verdict);
//!
//! and no retrain was asked for in the last `RPS_RETRAIN_COOLDOWN_HOURS` (a retrain that
//! could not help, refused by the gates, is not asked for again every hour). The
//! promotion gates still decide whether the retrained model serves.
//!
//! The out-of-range share, not the PSI, decides on observations: a day of one season
//! against a model's year has a large PSI in any season, while a value outside
//! everything the model has seen is a fact about this model.

use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::score::{LiveWindow, VersionSkill};
use crate::layout;
use crate::source::IngestRequest;
use crate::store::{self, ObjectKey, ObjectStore, StoreError};

/// The horizon whose live skill decides: the longest, where a model earns its keep.
pub const JUDGED_HORIZON: u8 = 6;

pub use crate::config::RetrainRule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cause {
    pub kind: TriggerKind,
    pub reason: String,
}

/// What started a retraining run: it travels with the run (the pipeline's input, the
/// state machine's state, the Airflow conf) into the training run's tags, the gate
/// report and the record of its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureShare {
    pub feature: String,
    pub out_of_range_share: f64,
}

/// Fewer hours give no PSI: 20 bins carry noise of about 19/n for an unchanged
/// distribution (0.19 at 100 hours), so a day's PSI says nothing.
pub const PSI_MIN_HOURS: usize = 100;

/// The serving API's drift verdict, as an orchestrator read it from `GET /drift`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestDrift {
    pub drifting: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub requests: usize,
}

/// The verdict of one verification.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// The rule (see the module). `judged` is the served version's live skill, `drift` the
/// observations' drift against it, `last` the newest retrain record.
pub fn decide(
    rule: &RetrainRule,
    as_of: NaiveDateTime,
    judged: Option<&VersionSkill>,
    drift: Option<&ObservedDrift>,
    request_drift: Option<&RequestDrift>,
    last: Option<&RetrainRecord>,
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
    if let Some(r) = request_drift.filter(|r| r.drifting) {
        causes.push(Cause {
            kind: TriggerKind::Drift,
            reason: format!(
                "the API's drift window ({} requests) drifts: {}",
                r.requests,
                r.reasons.join("; ")
            ),
        });
    }
    if causes.is_empty() {
        return RetrainDecision::default();
    }
    let cooldown = Duration::hours(i64::from(rule.cooldown_hours));
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
    }
}

/// Where a triggered retrain stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetrainStatus {
    Requested,
    /// The retrained model passed every gate and serves.
    Promoted,
    /// The gates refused the retrained model: production is unchanged.
    Refused,
}

impl RetrainStatus {
    pub fn name(self) -> &'static str {
        match self {
            RetrainStatus::Requested => "requested",
            RetrainStatus::Promoted => "promoted",
            RetrainStatus::Refused => "refused",
        }
    }
}

/// A triggered retrain and, once known, its outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
mod tests {
    use super::*;
    use crate::observations::parse_time;
    use crate::verify::score::{HorizonSkill, WindowSkill};

    fn rule() -> RetrainRule {
        RetrainRule {
            min_skill: 0.0,
            min_hours: 12,
            cooldown_hours: 24,
            max_out_of_range: 0.2,
            days: 365,
            lag_days: 5,
        }
    }

    fn skill(n: usize, rmse: f64, persistence_rmse: f64) -> VersionSkill {
        VersionSkill {
            version: "3".into(),
            windows: vec![WindowSkill {
                window: LiveWindow::Day,
                forecasts: n,
                unverified: 0,
                horizons: vec![HorizonSkill {
                    horizon: 6,
                    n,
                    rmse,
                    mae: rmse,
                    bias: 0.0,
                    persistence_rmse,
                    persistence_mae: persistence_rmse,
                    skill: Some(1.0 - rmse / persistence_rmse),
                }],
            }],
        }
    }

    fn drift(hours: usize, share: f64) -> ObservedDrift {
        ObservedDrift {
            window: LiveWindow::Day,
            hours,
            out_of_range_share: share,
            features: vec![FeatureShare {
                feature: "shortwave_radiation".into(),
                out_of_range_share: share,
            }],
            max_psi: None,
        }
    }

    #[test]
    fn skill_below_the_limit_or_drift_over_it_asks_for_a_retrain_on_the_data_clock() {
        let as_of = parse_time("2023-04-20T23:00").unwrap();
        let d = decide(&rule(), as_of, Some(&skill(20, 2.0, 1.6)), None, None, None);
        assert!(d.needed, "{d:?}");
        let t = d.trigger.unwrap();
        assert_eq!(t.kinds(), "live_skill");
        assert!(t.causes[0].reason.contains("-25.0%"), "{}", t.causes[0].reason);
        assert_eq!(
            serde_json::to_value(t.ingest).unwrap(),
            serde_json::json!({"mode": "backfill", "start": "2022-04-16", "end": "2023-04-15"})
        );
        assert_eq!(t.version.as_deref(), Some("3"));
        let d = decide(
            &rule(),
            as_of,
            Some(&skill(20, 1.0, 1.6)),
            Some(&drift(24, 0.5)),
            None,
            None,
        );
        assert_eq!(d.trigger.unwrap().kinds(), "drift");
    }

    #[test]
    fn too_little_evidence_a_good_model_or_a_recent_retrain_asks_for_nothing() {
        let as_of = parse_time("2023-04-20T23:00").unwrap();
        assert!(
            !decide(
                &rule(),
                as_of,
                Some(&skill(11, 2.0, 1.6)),
                Some(&drift(11, 1.0)),
                None,
                None
            )
            .needed
        );
        assert!(
            !decide(
                &rule(),
                as_of,
                Some(&skill(24, 1.5, 1.6)),
                Some(&drift(24, 0.2)),
                None,
                None
            )
            .needed
        );
        let asked = decide(
            &rule(),
            as_of - Duration::hours(10),
            Some(&skill(20, 2.0, 1.6)),
            None,
            None,
            None,
        );
        let last = RetrainRecord {
            trigger: asked.trigger.unwrap(),
            status: RetrainStatus::Refused,
            updated_at: Utc::now(),
            candidate: Some("4".into()),
            report: None,
            failed_gates: vec!["no_regression".into()],
        };
        let d = decide(
            &rule(),
            as_of,
            Some(&skill(20, 2.0, 1.6)),
            None,
            None,
            Some(&last),
        );
        assert!(!d.needed && d.trigger.is_none(), "{d:?}");
        assert_eq!(d.causes.len(), 1, "the cause is still reported");
        assert!(d.held.unwrap().contains("now refused"));
        // A day later on the data's clock, the cooldown is over.
        let later = as_of + Duration::hours(15);
        assert!(
            decide(
                &rule(),
                later,
                Some(&skill(20, 2.0, 1.6)),
                None,
                None,
                Some(&last)
            )
            .needed
        );
        // The API's own verdict counts as drift.
        let api = RequestDrift {
            drifting: true,
            reasons: vec!["temperature_2m: PSI 0.4 (limit 0.2)".into()],
            requests: 300,
        };
        let d = decide(&rule(), as_of, None, None, Some(&api), None);
        assert!(d.needed && d.causes[0].reason.contains("PSI 0.4"), "{d:?}");
    }

    #[tokio::test]
    async fn the_latest_record_is_the_newest_trigger() {
        let store = crate::store::MemoryStore::new();
        let as_of = parse_time("2023-04-20T23:00").unwrap();
        let mk = |id: &str, status| RetrainRecord {
            trigger: Trigger {
                id: id.into(),
                causes: Vec::new(),
                version: None,
                as_of,
                requested_at: Utc::now(),
                ingest: IngestRequest::recent(),
            },
            status,
            updated_at: Utc::now(),
            candidate: None,
            report: None,
            failed_gates: Vec::new(),
        };
        assert_eq!(latest(&store, "m").await.unwrap(), None);
        record(
            &store,
            "m",
            &mk("20260101T000000.000000Z", RetrainStatus::Requested),
        )
        .await
        .unwrap();
        record(
            &store,
            "m",
            &mk("20260102T000000.000000Z", RetrainStatus::Requested),
        )
        .await
        .unwrap();
        // The outcome of the older one arrives late: recorded, but not the latest.
        record(
            &store,
            "m",
            &mk("20260101T000000.000000Z", RetrainStatus::Refused),
        )
        .await
        .unwrap();
        let l = latest(&store, "m").await.unwrap().unwrap();
        assert_eq!(
            (l.trigger.id.as_str(), l.status),
            ("20260102T000000.000000Z", RetrainStatus::Requested)
        );
        let own: RetrainRecord = store::get_json(
            &store,
            &layout::retrain("m", "20260101T000000.000000Z.json").unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(own.status, RetrainStatus::Refused);
    }
}

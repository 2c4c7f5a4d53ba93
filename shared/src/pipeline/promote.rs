//! Stage 6, promote: move `production` to a candidate only when every gate passed, keep
//! the old one as `previous`, and record who moved it, when and on which report. Also
//! `rollback` and the whole release flow (`rps pipeline promote`).
//!
//! Safety: a promotion holds a lease in the store (a create-only object) while it moves
//! aliases, re-reads `production` right before moving it, and checks it afterwards; two
//! concurrent promotions cannot both win, and the loser changes nothing.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::evaluate::{EvaluateInput, EvaluateOutput, evaluate_with_report, holdout_dataset, production};
use super::{Context, Observer, RunInput, RunOutput, StageError, run};
use crate::layout;
use crate::registry::{ModelRef, StageOutcome, VersionInfo, aliases};
use crate::report::GateReport;
use crate::store::{self, ObjectKey, StoreError};

/// Version tags a promotion writes.
pub mod tags {
    pub const GATE_STATUS: &str = "rps.gate_status";
    pub const GATE_FAILURES: &str = "rps.gate_failures";
    pub const GATE_REPORT: &str = "rps.gate_report";
    pub const GATE_CHECKED_AT: &str = "rps.gate_checked_at";
    pub const PROMOTED_AT: &str = "rps.promoted_at";
    pub const PROMOTED_BY: &str = "rps.promoted_by";
    pub const PROMOTION_REPORT: &str = "rps.promotion_report";
    pub const REPLACED_VERSION: &str = "rps.replaced_version";
    pub const REPLACED_BY: &str = "rps.replaced_by";
    pub const REPLACED_AT: &str = "rps.replaced_at";
    pub const ROLLED_BACK_AT: &str = "rps.rolled_back_at";
    pub const ROLLED_BACK_BY: &str = "rps.rolled_back_by";
    pub const RESTORED_AT: &str = "rps.restored_at";
    pub const RESTORED_BY: &str = "rps.restored_by";
}

/// How long a promotion lease lasts before another promoter may break it.
const LEASE: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromoteInput {
    pub candidate: ModelRef,
    /// A stored gate report to reuse, if it is fresh (same candidate, data version and
    /// production, passed, not too old); otherwise the gates run again.
    #[serde(default)]
    pub report: Option<ObjectKey>,
    #[serde(default)]
    pub data_version: Option<String>,
    /// Who or what is promoting (a CI job, a person); recorded on the version.
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PromoteOutput {
    pub model_name: String,
    pub version: String,
    /// The version `production` pointed at before (now `previous`).
    pub previous: Option<String>,
    /// The candidate already was production: nothing moved.
    pub already_production: bool,
    pub report: Option<ObjectKey>,
    pub markdown: Option<ObjectKey>,
    /// The gates were run by this promotion (not taken from a stored report).
    pub gates_run: bool,
    #[serde(default)]
    pub evaluation: Option<EvaluateOutput>,
    /// What happened to the legacy stages.
    pub stages: String,
    pub promoted_at: DateTime<Utc>,
    pub promoted_by: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RollbackInput {
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackOutput {
    pub model_name: String,
    /// Production now.
    pub version: String,
    /// The version rolled back from.
    pub rolled_back: String,
    /// Where `previous` points now (one step further back), if anywhere.
    pub previous: Option<String>,
    pub stages: String,
}

fn actor(a: &Option<String>) -> String {
    a.clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "rps".to_owned())
}

/// Promotes `candidate` if every gate passes.
pub async fn promote(ctx: &Context, input: PromoteInput) -> Result<PromoteOutput, StageError> {
    let name = ctx.config.registry.model_name.clone();
    let by = actor(&input.actor);
    let candidate = ctx.registry.resolve(&name, &input.candidate).await?;
    let v = candidate.version.clone();
    let production = current_production(ctx, &name).await?;
    if production.as_deref() == Some(v.as_str()) {
        return Ok(PromoteOutput {
            model_name: name,
            version: v,
            previous: candidate.tag(tags::REPLACED_VERSION).map(str::to_owned),
            already_production: true,
            report: candidate
                .tag(tags::PROMOTION_REPORT)
                .and_then(|k| ObjectKey::new(k).ok()),
            markdown: None,
            gates_run: false,
            evaluation: None,
            stages: "unchanged".into(),
            promoted_at: Utc::now(),
            promoted_by: by,
        });
    }

    // The gates: a fresh stored report, or a new run.
    let reused = match &input.report {
        Some(key) => fresh_report(ctx, key, &candidate, production.as_deref(), &input).await?,
        None => None,
    };
    let (report, report_key, markdown_key, evaluation) = match reused {
        Some((r, key)) => {
            let md = key.sibling("report.md")?;
            (r, key, md, None)
        }
        None => {
            let (out, r) = evaluate_with_report(
                ctx,
                EvaluateInput {
                    candidate: ModelRef::Version(v.clone()),
                    data_version: input.data_version.clone(),
                },
            )
            .await?;
            (r, out.report.clone(), out.markdown.clone(), Some(out))
        }
    };
    let now = Utc::now().to_rfc3339();
    if !report.passed {
        let failed = report.failed_gate_names().join(",");
        for (k, val) in [
            (tags::GATE_STATUS, "failed"),
            (tags::GATE_FAILURES, failed.as_str()),
            (tags::GATE_REPORT, report_key.as_str()),
            (tags::GATE_CHECKED_AT, now.as_str()),
        ] {
            ctx.registry.set_version_tag(&name, &v, k, val).await?;
        }
        return Err(StageError::PromotionRefused {
            version: v,
            failed: report.failed_gate_names().iter().map(|s| s.to_string()).collect(),
            report: report_key,
            markdown: markdown_key,
        });
    }
    let baseline = report.production.as_ref().map(|p| p.version.clone());

    // Move, under the lease, only if production is still what the gates compared with.
    let lease = Lease::acquire(ctx, &name, &by).await?;
    let moved = async {
        let now_prod = current_production(ctx, &name).await?;
        if now_prod != baseline {
            return Err(StageError::Conflict(format!(
                "production moved from {} to {} after the gates compared version {v} with it; nothing was changed, re-run the promotion to compare with the new production",
                baseline.as_deref().unwrap_or("nothing"),
                now_prod.as_deref().unwrap_or("nothing")
            )));
        }
        if let Some(p) = &baseline {
            ctx.registry.set_alias(&name, aliases::PREVIOUS, p).await?;
        }
        ctx.registry.set_alias(&name, aliases::PRODUCTION, &v).await?;
        let after = current_production(ctx, &name).await?;
        if after.as_deref() != Some(v.as_str()) {
            return Err(StageError::Conflict(format!(
                "production points at {} right after this promotion set it to {v}: another writer moved it outside rps's lease",
                after.as_deref().unwrap_or("nothing")
            )));
        }
        Ok(())
    }
    .await;
    lease.release(ctx).await;
    moved?;

    let at = Utc::now();
    let at_s = at.to_rfc3339();
    for (k, val) in [
        (tags::GATE_STATUS, "passed"),
        (tags::GATE_FAILURES, ""),
        (tags::GATE_REPORT, report_key.as_str()),
        (tags::GATE_CHECKED_AT, now.as_str()),
        (tags::PROMOTED_AT, at_s.as_str()),
        (tags::PROMOTED_BY, by.as_str()),
        (tags::PROMOTION_REPORT, report_key.as_str()),
        (tags::REPLACED_VERSION, baseline.as_deref().unwrap_or("none")),
    ] {
        ctx.registry.set_version_tag(&name, &v, k, val).await?;
    }
    if let Some(p) = &baseline {
        ctx.registry
            .set_version_tag(&name, p, tags::REPLACED_BY, &v)
            .await?;
        ctx.registry
            .set_version_tag(&name, p, tags::REPLACED_AT, &at_s)
            .await?;
    }
    let stages = mirror_stages(ctx, &name, &v, baseline.as_deref()).await;
    tracing::info!(model = %name, version = %v, previous = ?baseline, by = %by, "promoted to production");
    Ok(PromoteOutput {
        model_name: name,
        version: v,
        previous: baseline,
        already_production: false,
        report: Some(report_key),
        markdown: Some(markdown_key),
        gates_run: evaluation.is_some(),
        evaluation,
        stages,
        promoted_at: at,
        promoted_by: by,
    })
}

/// Moves `production` back to `previous`.
pub async fn rollback(ctx: &Context, input: RollbackInput) -> Result<RollbackOutput, StageError> {
    let name = ctx.config.registry.model_name.clone();
    let by = actor(&input.actor);
    let lease = Lease::acquire(ctx, &name, &by).await?;
    let result = rollback_locked(ctx, &name, &by).await;
    lease.release(ctx).await;
    result
}

async fn rollback_locked(ctx: &Context, name: &str, by: &str) -> Result<RollbackOutput, StageError> {
    let prod = ctx
        .registry
        .get_alias(name, aliases::PRODUCTION)
        .await
        .map_err(|e| not_found_as(e, format!("model {name} has no production version to roll back")))?;
    let prev = ctx
        .registry
        .get_alias(name, aliases::PREVIOUS)
        .await
        .map_err(|e| {
            not_found_as(
                e,
                format!("model {name} has no @previous version to roll back to"),
            )
        })?;
    if prev.version == prod.version {
        return Err(StageError::Input(format!(
            "@previous and @production are both version {}: there is nothing to roll back to",
            prod.version
        )));
    }
    ctx.registry
        .set_alias(name, aliases::PRODUCTION, &prev.version)
        .await?;
    // `previous` steps one further back along the promotion chain, when there is one.
    let further = match prev.tag(tags::REPLACED_VERSION) {
        Some(x) if x != "none" && x != prod.version && x != prev.version => {
            ctx.registry.get_version(name, x).await.ok()
        }
        _ => None,
    };
    match &further {
        Some(f) => {
            ctx.registry
                .set_alias(name, aliases::PREVIOUS, &f.version)
                .await?
        }
        None => ctx.registry.delete_alias(name, aliases::PREVIOUS).await?,
    }
    let at = Utc::now().to_rfc3339();
    for (version, k, val) in [
        (&prod.version, tags::ROLLED_BACK_AT, at.as_str()),
        (&prod.version, tags::ROLLED_BACK_BY, by),
        (&prev.version, tags::RESTORED_AT, at.as_str()),
        (&prev.version, tags::RESTORED_BY, by),
    ] {
        ctx.registry.set_version_tag(name, version, k, val).await?;
    }
    let stages = mirror_stages(ctx, name, &prev.version, Some(&prod.version)).await;
    tracing::info!(model = %name, from = %prod.version, to = %prev.version, by = %by, "rolled back");
    Ok(RollbackOutput {
        model_name: name.to_owned(),
        version: prev.version,
        rolled_back: prod.version,
        previous: further.map(|f| f.version),
        stages,
    })
}

fn not_found_as(e: crate::registry::RegistryError, msg: String) -> StageError {
    if e.is_not_found() {
        StageError::Input(msg)
    } else {
        e.into()
    }
}

async fn current_production(ctx: &Context, name: &str) -> Result<Option<String>, StageError> {
    Ok(production(ctx, name).await?.map(|v| v.version))
}

/// Legacy stages, best effort: the new production to Production, the old to Archived.
async fn mirror_stages(ctx: &Context, name: &str, to: &str, from: Option<&str>) -> String {
    let mut notes = Vec::new();
    let moves = std::iter::once((to, "Production")).chain(from.map(|f| (f, "Archived")));
    for (version, stage) in moves {
        match ctx.registry.set_stage(name, version, stage).await {
            Ok(StageOutcome::Done) => notes.push(format!("version {version} → {stage}")),
            Ok(StageOutcome::Unsupported(why)) => {
                notes.push(format!("stages not supported ({why})"));
                break;
            }
            Err(e) => {
                tracing::warn!(version, stage, "could not mirror the legacy stage: {e}");
                notes.push(format!("version {version} → {stage} failed: {e}"));
            }
        }
    }
    notes.join("; ")
}

/// A stored report that may stand in for running the gates again, with why not if not.
async fn fresh_report(
    ctx: &Context,
    key: &ObjectKey,
    candidate: &VersionInfo,
    production: Option<&str>,
    input: &PromoteInput,
) -> Result<Option<(GateReport, ObjectKey)>, StageError> {
    let report: GateReport = store::get_json(ctx.store.as_ref(), key).await?;
    let data_version = match &input.data_version {
        Some(d) => d.clone(),
        None => holdout_dataset(ctx).await?.data_version,
    };
    let age = Utc::now() - report.created_at;
    let stale = if report.model_name != candidate.name || report.candidate.version != candidate.version {
        Some(format!(
            "it is about {} version {}",
            report.model_name, report.candidate.version
        ))
    } else if report.holdout.data_version != data_version {
        Some(format!(
            "it used data version {}, the newest is {data_version}",
            report.holdout.data_version
        ))
    } else if report.production.as_ref().map(|p| p.version.as_str()) != production {
        Some("production has changed since".to_owned())
    } else if age.to_std().unwrap_or_default() > ctx.config.gates.report_max_age {
        Some(format!("it is {} minutes old", age.num_minutes()))
    } else if !report.passed {
        Some("it did not pass".to_owned())
    } else {
        None
    };
    match stale {
        None => Ok(Some((report, key.clone()))),
        Some(why) => {
            tracing::info!(report = %key, "running the gates again: the stored report is not fresh ({why})");
            Ok(None)
        }
    }
}

/// The promotion lease: a create-only object in the store.
#[derive(Debug, Serialize, Deserialize)]
struct LeaseRecord {
    token: String,
    holder: String,
    acquired_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

struct Lease {
    key: ObjectKey,
    token: String,
}

impl Lease {
    async fn acquire(ctx: &Context, name: &str, holder: &str) -> Result<Self, StageError> {
        let key = layout::promotion_lock(name)?;
        let now = Utc::now();
        let record = LeaseRecord {
            token: format!("{:016x}", rand::random::<u64>()),
            holder: format!("{holder} (pid {})", std::process::id()),
            acquired_at: now,
            expires_at: now + chrono::Duration::from_std(LEASE).unwrap_or_default(),
        };
        for attempt in 0..2 {
            match store::put_json(ctx.store.as_ref(), &key, &record, true).await {
                Ok(()) => {
                    return Ok(Self {
                        key,
                        token: record.token,
                    });
                }
                Err(StoreError::AlreadyExists { .. }) => {
                    let held: Option<LeaseRecord> = store::get_json(ctx.store.as_ref(), &key).await.ok();
                    match held {
                        Some(h) if h.expires_at > Utc::now() || attempt > 0 => {
                            return Err(StageError::Conflict(format!(
                                "another promotion of {name} is in progress ({} since {}, lease until {}); nothing was changed, retry when it is done",
                                h.holder,
                                h.acquired_at.to_rfc3339(),
                                h.expires_at.to_rfc3339()
                            )));
                        }
                        _ => {
                            tracing::warn!(lock = %key, "breaking an expired promotion lease");
                            ctx.store.delete(&key).await?;
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StageError::Conflict(format!(
            "could not take the promotion lease of {name}"
        )))
    }

    async fn release(self, ctx: &Context) {
        let held: Result<LeaseRecord, _> = store::get_json(ctx.store.as_ref(), &self.key).await;
        if matches!(&held, Ok(h) if h.token == self.token) {
            if let Err(e) = ctx.store.delete(&self.key).await {
                tracing::error!(lock = %self.key, "could not release the promotion lease: {e}");
            }
        }
    }
}

/// The release flow CI and the orchestrators call: train and register a candidate,
/// deploy it to staging (the `staging` alias), gate it (smoke-testing the staging
/// endpoint when there is one) and promote it on success.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseInput {
    pub run: RunInput,
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseOutput {
    pub run: RunOutput,
    /// Whether the staging endpoint served the candidate before the gates ran.
    pub staging_ready: Option<bool>,
    pub promote: PromoteOutput,
}

pub async fn release(
    ctx: &Context,
    input: ReleaseInput,
    obs: &dyn Observer,
) -> Result<ReleaseOutput, StageError> {
    let ran = run(ctx, input.run, obs).await?;
    let name = ran.model_name.clone();
    let v = ran.model_version.clone();
    obs.started("staging");
    ctx.registry.set_alias(&name, aliases::STAGING, &v).await?;
    let staging_ready = match &ctx.config.gates.staging_url {
        Some(url) => Some(wait_for_staging(ctx, url.as_str(), &v).await),
        None => None,
    };
    obs.finished(
        "staging",
        &match staging_ready {
            Some(true) => format!("version {v} @staging, served by the staging endpoint"),
            Some(false) => format!("version {v} @staging, but the staging endpoint does not serve it"),
            None => format!("version {v} @staging (no staging endpoint to smoke-test)"),
        },
    );
    obs.started("promote");
    let promoted = promote(
        ctx,
        PromoteInput {
            candidate: ModelRef::Version(v.clone()),
            report: None,
            data_version: None,
            actor: input.actor,
        },
    )
    .await?;
    obs.finished(
        "promote",
        &format!(
            "version {v} is production (previous: {})",
            promoted.previous.as_deref().unwrap_or("none")
        ),
    );
    Ok(ReleaseOutput {
        run: ran,
        staging_ready,
        promote: promoted,
    })
}

/// Polls the staging endpoint's `/model` until it serves `version` (it re-checks its
/// alias periodically) or the configured wait is over.
async fn wait_for_staging(ctx: &Context, url: &str, version: &str) -> bool {
    let deadline = tokio::time::Instant::now() + ctx.config.gates.staging_wait;
    let model = format!("{}/model", url.trim_end_matches('/'));
    loop {
        let served = async {
            let r = ctx
                .http
                .get(&model)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .ok()?;
            let v: serde_json::Value = r.json().await.ok()?;
            v["version"].as_str().map(str::to_owned)
        }
        .await;
        if served.as_deref() == Some(version) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(url, version, served = ?served, "staging does not serve the candidate yet");
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::store::MemoryStore;

    fn ctx() -> Context {
        let config = Config::from_map(&HashMap::new()).unwrap();
        Context::with_store(config, Arc::new(MemoryStore::new())).unwrap()
    }

    #[tokio::test]
    async fn one_lease_at_a_time_and_expired_ones_are_broken() {
        let ctx = ctx();
        let a = Lease::acquire(&ctx, "m", "a").await.unwrap();
        let err = Lease::acquire(&ctx, "m", "b").await.err().unwrap();
        assert!(matches!(err, StageError::Conflict(_)), "{err}");
        assert_eq!(err.exit_code(), 5);
        assert!(err.to_string().contains("a (pid"), "{err}");
        // Another model's promotion is independent.
        let other = Lease::acquire(&ctx, "n", "b").await.unwrap();
        other.release(&ctx).await;
        a.release(&ctx).await;
        let b = Lease::acquire(&ctx, "m", "b").await.unwrap();

        // A lease past its expiry (a crashed promoter) is broken; a stale holder's
        // release does not remove the new lease.
        let key = layout::promotion_lock("m").unwrap();
        let mut rec: LeaseRecord = store::get_json(ctx.store.as_ref(), &key).await.unwrap();
        rec.expires_at = Utc::now() - chrono::Duration::seconds(1);
        store::put_json(ctx.store.as_ref(), &key, &rec, false)
            .await
            .unwrap();
        let c = Lease::acquire(&ctx, "m", "c").await.unwrap();
        b.release(&ctx).await;
        assert!(ctx.store.exists(&key).await.unwrap(), "b released c's lease");
        c.release(&ctx).await;
        assert!(!ctx.store.exists(&key).await.unwrap());
    }

    #[tokio::test]
    async fn rollback_needs_a_previous_version() {
        let ctx = ctx();
        let err = rollback(&ctx, RollbackInput::default()).await.err().unwrap();
        assert!(err.to_string().contains("no production version"), "{err}");
        // The lease was released on the error path.
        assert!(
            !ctx.store
                .exists(&layout::promotion_lock(&ctx.config.registry.model_name).unwrap())
                .await
                .unwrap()
        );
    }
}

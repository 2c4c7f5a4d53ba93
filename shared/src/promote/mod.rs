//! Stage 6, promote: move `production` to a candidate only when every gate passed, keep
//! the old one as `previous`, and record who moved it, when and on which report. Also
//! [`rollback`]. The release flow that ends in a promotion is
//! [`crate::pipeline::promote`].
//!
//! Safety: a promotion holds a [`lease`] in the store while it moves aliases, re-reads
//! `production` right before moving it, and checks it afterwards; two concurrent
//! promotions cannot both win, and the loser changes nothing. The tags rollback relies
//! on are written before `production` moves, so a failure after the move cannot break
//! the promotion chain.

pub mod lease;
pub mod rollback;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use rollback::{RollbackInput, RollbackOutput, rollback};

use self::lease::Lease;
use crate::dataset;
use crate::records::gate_report::GateReport;
use crate::records::retrain::{self as trigger, RetrainStatus, Trigger};
use crate::records::stages::{EvaluateInput, EvaluateOutput};
use crate::registry::{self, ModelRef, StageOutcome, VersionInfo};
use crate::stage::{Context, StageError};
use crate::store::{self, ObjectKey};
use crate::tags::promotion as tags;

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
    /// What asked for the candidate (a verification): told the outcome.
    #[serde(default)]
    pub trigger: Option<Trigger>,
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
    /// Records that could not be written after `production` moved (the move stands).
    #[serde(default)]
    pub warnings: Vec<String>,
}

pub(crate) fn actor(a: &Option<String>) -> String {
    a.clone()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| "rps".to_owned())
}

/// The gates' verdict a promotion acts on.
struct Verdict {
    report: GateReport,
    json: ObjectKey,
    markdown: ObjectKey,
    /// Set when the gates ran now rather than a stored report being reused.
    evaluation: Option<EvaluateOutput>,
}

/// How a promotion has the gates run when no fresh stored report stands in. Promote
/// does not know the evaluate stage: the pipeline hands it in
/// ([`crate::pipeline::gate_and_promote`]).
#[async_trait::async_trait]
pub trait Gates: Send + Sync {
    /// The verdict on `input`'s candidate, and the report it is stored in.
    async fn run(
        &self,
        ctx: &Context,
        input: EvaluateInput,
    ) -> Result<(EvaluateOutput, GateReport), StageError>;
}

/// Promotes `candidate` if every gate passes; `gates` runs them when no fresh report
/// is handed in.
pub async fn promote(
    ctx: &Context,
    input: PromoteInput,
    gates: &dyn Gates,
) -> Result<PromoteOutput, StageError> {
    let name = ctx.config.registry.model_name.clone();
    let by = actor(&input.actor);
    let candidate = ctx.registry.resolve(&name, &input.candidate).await?;
    let production = current_production(ctx, &name).await?;
    if production.as_deref() == Some(candidate.version.as_str()) {
        // A retried promotion that finds its move done still records the outcome.
        let out = unchanged(name, candidate, by);
        if let Some(t) = &input.trigger {
            trigger::record_outcome(
                ctx.store.as_ref(),
                &out.model_name,
                t,
                RetrainStatus::Promoted,
                Some(&out.version),
                out.report.as_ref(),
                &[],
            )
            .await;
        }
        return Ok(out);
    }
    let verdict = gate(ctx, gates, &input, &candidate, production.as_deref()).await?;
    let checked_at = Utc::now().to_rfc3339();
    if !verdict.report.passed {
        // A refusal is final: a failed report handed in is never measured again, and
        // gates run now have recorded a triggered retrain's refusal (evaluate).
        return Err(refuse(ctx, &name, &candidate.version, &verdict, &checked_at).await);
    }
    let baseline = verdict.report.production.as_ref().map(|p| p.version.clone());
    // Attempts of the same promotion share the lease: a retry after a timeout resumes
    // the move its dead attempt began.
    let owner = format!("promote {}", candidate.version);
    let mut lease = match Lease::acquire_for(ctx, &name, &by, Some(&owner)).await {
        Err(e @ StageError::Conflict(_)) => return Err(superseded(ctx, &name, &input, &candidate, e).await),
        other => other?,
    };
    let mut warnings: Vec<String> = lease.warning.take().into_iter().collect();
    let moved = move_production(
        ctx,
        &mut lease,
        &name,
        &candidate.version,
        baseline.as_deref(),
        &verdict.json,
        &checked_at,
    )
    .await;
    lease.release(ctx).await;
    match moved {
        Err(e @ StageError::Conflict(_)) => return Err(superseded(ctx, &name, &input, &candidate, e).await),
        other => other?,
    }
    let promoted_at = Utc::now();
    warnings.extend(
        record_after_move(
            ctx,
            &name,
            &candidate.version,
            baseline.as_deref(),
            &by,
            promoted_at,
        )
        .await,
    );
    let stages = mirror_stages(ctx, &name, &candidate.version, baseline.as_deref()).await;
    if let Some(t) = &input.trigger
        && let Some(w) = trigger::record_outcome(
            ctx.store.as_ref(),
            &name,
            t,
            RetrainStatus::Promoted,
            Some(&candidate.version),
            Some(&verdict.json),
            &[],
        )
        .await
    {
        warnings.push(w);
    }
    tracing::info!(model = %name, version = %candidate.version, previous = ?baseline, by = %by, "promoted to production");
    Ok(PromoteOutput {
        model_name: name,
        version: candidate.version,
        previous: baseline,
        already_production: false,
        report: Some(verdict.json),
        markdown: Some(verdict.markdown),
        gates_run: verdict.evaluation.is_some(),
        evaluation: verdict.evaluation,
        stages,
        promoted_at,
        promoted_by: by,
        warnings,
    })
}

/// Another promotion got there first: a triggered retrain's outcome says so (it was
/// not refused), and the conflict is the answer.
async fn superseded(
    ctx: &Context,
    name: &str,
    input: &PromoteInput,
    candidate: &VersionInfo,
    conflict: StageError,
) -> StageError {
    // A retry of this promotion that took the lease over may have finished it: its
    // outcome stands.
    if let Some(t) = &input.trigger
        && trigger::status(ctx.store.as_ref(), name, &t.id)
            .await
            .ok()
            .flatten()
            != Some(RetrainStatus::Promoted)
    {
        trigger::record_outcome(
            ctx.store.as_ref(),
            name,
            t,
            RetrainStatus::Superseded,
            Some(&candidate.version),
            None,
            &[],
        )
        .await;
    }
    conflict
}

/// Promoting the current production is a no-op.
fn unchanged(name: String, candidate: VersionInfo, by: String) -> PromoteOutput {
    PromoteOutput {
        model_name: name,
        previous: candidate.tag(tags::REPLACED_VERSION).map(str::to_owned),
        report: candidate
            .tag(tags::PROMOTION_REPORT)
            .and_then(|k| ObjectKey::new(k).ok()),
        version: candidate.version,
        already_production: true,
        markdown: None,
        gates_run: false,
        evaluation: None,
        stages: "unchanged".into(),
        promoted_at: Utc::now(),
        promoted_by: by,
        warnings: Vec::new(),
    }
}

/// A fresh stored report, or a new run of the gates.
async fn gate(
    ctx: &Context,
    gates: &dyn Gates,
    input: &PromoteInput,
    candidate: &VersionInfo,
    production: Option<&str>,
) -> Result<Verdict, StageError> {
    if let Some(key) = &input.report
        && let Some(report) = fresh_report(ctx, key, candidate, production, input).await?
    {
        return Ok(Verdict {
            report,
            markdown: key.sibling("report.md")?,
            json: key.clone(),
            evaluation: None,
        });
    }
    let (out, report) = gates
        .run(
            ctx,
            EvaluateInput {
                candidate: ModelRef::Version(candidate.version.clone()),
                data_version: input.data_version.clone(),
                trigger: input.trigger.clone(),
            },
        )
        .await?;
    Ok(Verdict {
        report,
        json: out.report.clone(),
        markdown: out.markdown.clone(),
        evaluation: Some(out),
    })
}

/// Tags the refused candidate and says why; no alias moves.
async fn refuse(ctx: &Context, name: &str, version: &str, verdict: &Verdict, checked_at: &str) -> StageError {
    let failed = verdict.report.failed_gate_names();
    let joined = failed.join(",");
    for (k, val) in [
        (tags::GATE_STATUS, "failed"),
        (tags::GATE_FAILURES, joined.as_str()),
        (tags::GATE_REPORT, verdict.json.as_str()),
        (tags::GATE_CHECKED_AT, checked_at),
    ] {
        if let Err(e) = ctx.registry.set_version_tag(name, version, k, val).await {
            return e.into();
        }
    }
    StageError::PromotionRefused {
        version: version.to_owned(),
        failed: failed.iter().map(|s| s.to_string()).collect(),
        report: verdict.json.clone(),
        markdown: verdict.markdown.clone(),
    }
}

/// Under the lease (re-checked before every write): re-checks that production is what
/// the gates compared with, writes the tags rollback relies on, moves `previous` and
/// `production`, and checks the move.
async fn move_production(
    ctx: &Context,
    lease: &mut Lease,
    name: &str,
    version: &str,
    baseline: Option<&str>,
    report: &ObjectKey,
    checked_at: &str,
) -> Result<(), StageError> {
    lease.check(ctx).await?;
    let now_prod = current_production(ctx, name).await?;
    if now_prod.as_deref() != baseline {
        return Err(StageError::Conflict(format!(
            "production moved from {} to {} after the gates compared version {version} with it; nothing was changed, re-run the promotion to compare with the new production",
            baseline.unwrap_or("nothing"),
            now_prod.as_deref().unwrap_or("nothing")
        )));
    }
    for (k, val) in [
        (tags::GATE_STATUS, "passed"),
        (tags::GATE_FAILURES, ""),
        (tags::GATE_REPORT, report.as_str()),
        (tags::GATE_CHECKED_AT, checked_at),
        (tags::PROMOTION_REPORT, report.as_str()),
        (tags::REPLACED_VERSION, baseline.unwrap_or(tags::NONE)),
    ] {
        ctx.registry.set_version_tag(name, version, k, val).await?;
    }
    let family = ctx.config.aliases();
    if let Some(p) = baseline {
        ctx.registry.set_alias(name, &family.previous, p).await?;
    }
    ctx.registry.set_alias(name, &family.served, version).await?;
    let after = current_production(ctx, name).await?;
    if after.as_deref() != Some(version) {
        return Err(StageError::Conflict(format!(
            "production points at {} right after this promotion set it to {version}: another writer moved it outside rps's lease",
            after.as_deref().unwrap_or("nothing")
        )));
    }
    Ok(())
}

/// Who promoted and when, on both versions. Best effort: the move stands either way,
/// and what could not be written is returned as warnings.
async fn record_after_move(
    ctx: &Context,
    name: &str,
    version: &str,
    baseline: Option<&str>,
    by: &str,
    at: DateTime<Utc>,
) -> Vec<String> {
    let at = at.to_rfc3339();
    let mut writes = vec![
        (version, tags::PROMOTED_AT, at.as_str()),
        (version, tags::PROMOTED_BY, by),
    ];
    if let Some(p) = baseline {
        writes.push((p, tags::REPLACED_BY, version));
        writes.push((p, tags::REPLACED_AT, at.as_str()));
    }
    let mut warnings = Vec::new();
    for (v, k, val) in writes {
        if let Err(e) = ctx.registry.set_version_tag(name, v, k, val).await {
            let w = format!("version {v} is missing the tag {k}: {e}");
            tracing::warn!("{w}");
            warnings.push(w);
        }
    }
    warnings
}

async fn current_production(ctx: &Context, name: &str) -> Result<Option<String>, StageError> {
    Ok(
        registry::find_alias(ctx.registry.as_ref(), name, &ctx.config.aliases().served)
            .await?
            .map(|v| v.version),
    )
}

/// Legacy stages, best effort: the new production to Production, the old to Archived.
pub(crate) async fn mirror_stages(ctx: &Context, name: &str, to: &str, from: Option<&str>) -> String {
    let mut notes = Vec::new();
    let Some(served) = ctx.config.aliases().stage else {
        return "no legacy stage for this alias".into();
    };
    let moves = std::iter::once((to, served)).chain(from.map(|f| (f, "Archived")));
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

/// A stored report that may stand in for running the gates again, or `None` (with why
/// in the log) when it is not fresh.
async fn fresh_report(
    ctx: &Context,
    key: &ObjectKey,
    candidate: &VersionInfo,
    production: Option<&str>,
    input: &PromoteInput,
) -> Result<Option<GateReport>, StageError> {
    let report: GateReport = store::get_json(ctx.store.as_ref(), key).await?;
    let data_version = match &input.data_version {
        Some(d) => d.clone(),
        None => dataset::furthest(ctx.store.as_ref()).await?.data_version,
    };
    let age = Utc::now() - report.created_at;
    let stale = if report.model_name != candidate.name || report.candidate.version != candidate.version {
        Some(format!(
            "it is about {} version {}",
            report.model_name, report.candidate.version
        ))
    } else if !report.passed {
        // A verdict is final: measuring again (the latency gate is a timing) could
        // turn a refusal into a pass.
        tracing::info!(report = %key, "the report refused the candidate: the refusal stands");
        None
    } else if report.holdout.data_version != data_version {
        Some(format!(
            "it used data version {}, the newest is {data_version}",
            report.holdout.data_version
        ))
    } else if report.production.as_ref().map(|p| p.version.as_str()) != production {
        Some("production has changed since".to_owned())
    } else if age.to_std().unwrap_or_default() > ctx.config.gates.report_max_age {
        Some(format!("it is {} minutes old", age.num_minutes()))
    } else {
        None
    };
    match stale {
        None => Ok(Some(report)),
        Some(why) => {
            tracing::info!(report = %key, "running the gates again: the stored report is not fresh ({why})");
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    //! The alias move against a mocked registry: the failure paths a real server
    //! cannot easily produce.

    use std::collections::HashMap;
    use std::sync::Arc;

    use mockall::Sequence;
    use mockall::predicate::eq;

    use super::*;
    use crate::config::Config;
    use crate::registry::{MockRegistry, RegistryError};
    use crate::store::MemoryStore;
    use crate::tags::aliases;

    fn version(v: &str) -> VersionInfo {
        VersionInfo {
            name: "m".into(),
            version: v.into(),
            aliases: Vec::new(),
            run_id: None,
            source: String::new(),
            stage: None,
            created_at: None,
            tags: Default::default(),
        }
    }

    fn ctx(registry: MockRegistry) -> Context {
        let config = Config::from_map(&HashMap::new()).unwrap();
        Context::with_store(config, Arc::new(MemoryStore::new()))
            .unwrap()
            .with_registry(Arc::new(registry))
    }

    fn report() -> ObjectKey {
        ObjectKey::new("reports/m/2/x/report.json").unwrap()
    }

    #[tokio::test]
    async fn rollbacks_chain_is_written_before_production_moves_and_later_failures_only_warn() {
        let mut reg = MockRegistry::new();
        let mut seq = Sequence::new();
        // Production is still the baseline the gates compared with.
        reg.expect_get_alias()
            .with(eq("m"), eq(aliases::PRODUCTION))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(version("1")));
        // The tags rollback relies on come first…
        reg.expect_set_version_tag()
            .withf(|_, v, _, _| v == "2")
            .times(6)
            .in_sequence(&mut seq)
            .returning(|_, _, _, _| Ok(()));
        // …then the aliases move…
        reg.expect_set_alias()
            .with(eq("m"), eq(aliases::PREVIOUS), eq("1"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        reg.expect_set_alias()
            .with(eq("m"), eq(aliases::PRODUCTION), eq("2"))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _, _| Ok(()));
        reg.expect_get_alias()
            .with(eq("m"), eq(aliases::PRODUCTION))
            .times(1)
            .in_sequence(&mut seq)
            .returning(|_, _| Ok(version("2")));
        // …and the registry fails on the records written after the move.
        reg.expect_set_version_tag()
            .times(4)
            .in_sequence(&mut seq)
            .returning(|_, _, k, _| Err(RegistryError::Invalid(format!("{k}: the registry is down"))));
        let ctx = ctx(reg);
        let mut lease = Lease::acquire(&ctx, "m", "test").await.unwrap();
        move_production(&ctx, &mut lease, "m", "2", Some("1"), &report(), "now")
            .await
            .unwrap();
        let warnings = record_after_move(&ctx, "m", "2", Some("1"), "ci", Utc::now()).await;
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        assert!(warnings[0].contains(tags::PROMOTED_AT), "{warnings:?}");
    }

    #[tokio::test]
    async fn a_failed_tag_write_before_the_move_moves_nothing() {
        let mut reg = MockRegistry::new();
        reg.expect_get_alias().times(1).returning(|_, _| Ok(version("1")));
        reg.expect_set_version_tag()
            .times(1)
            .returning(|_, _, _, _| Err(RegistryError::Invalid("the registry is down".into())));
        // No set_alias expectation: a call would fail the test.
        let ctx = ctx(reg);
        let mut lease = Lease::acquire(&ctx, "m", "test").await.unwrap();
        let err = move_production(&ctx, &mut lease, "m", "2", Some("1"), &report(), "now")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("the registry is down"), "{err}");
    }

    #[tokio::test]
    async fn a_production_that_moved_since_the_gates_is_a_conflict_and_nothing_is_written() {
        let mut reg = MockRegistry::new();
        reg.expect_get_alias().times(1).returning(|_, _| Ok(version("3")));
        let ctx = ctx(reg);
        let mut lease = Lease::acquire(&ctx, "m", "test").await.unwrap();
        let err = move_production(&ctx, &mut lease, "m", "2", Some("1"), &report(), "now")
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
        assert_eq!(err.error_type(), "PromotionConflict");
    }

    /// A registry whose move of one alias to one version never answers: the promotion
    /// making it is killed there (a function timing out), every other call is served.
    struct StallsOn {
        inner: Arc<crate::registry::LocalRegistry>,
        alias: &'static str,
        version: &'static str,
    }

    #[async_trait::async_trait]
    impl crate::registry::Registry for StallsOn {
        fn describe(&self) -> String {
            self.inner.describe()
        }
        fn kind(&self) -> &'static str {
            self.inner.kind()
        }
        async fn create_version(
            &self,
            new: crate::registry::NewVersion,
        ) -> Result<VersionInfo, RegistryError> {
            self.inner.create_version(new).await
        }
        async fn get_version(&self, name: &str, version: &str) -> Result<VersionInfo, RegistryError> {
            self.inner.get_version(name, version).await
        }
        async fn get_alias(&self, name: &str, alias: &str) -> Result<VersionInfo, RegistryError> {
            self.inner.get_alias(name, alias).await
        }
        async fn list_versions(&self, name: &str) -> Result<Vec<VersionInfo>, RegistryError> {
            self.inner.list_versions(name).await
        }
        async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), RegistryError> {
            if alias == self.alias && version == self.version {
                std::future::pending::<()>().await;
            }
            self.inner.set_alias(name, alias, version).await
        }
        async fn delete_alias(&self, name: &str, alias: &str) -> Result<(), RegistryError> {
            self.inner.delete_alias(name, alias).await
        }
        async fn set_version_tag(
            &self,
            name: &str,
            version: &str,
            key: &str,
            value: &str,
        ) -> Result<(), RegistryError> {
            self.inner.set_version_tag(name, version, key, value).await
        }
        async fn set_stage(
            &self,
            name: &str,
            version: &str,
            stage: &str,
        ) -> Result<StageOutcome, RegistryError> {
            self.inner.set_stage(name, version, stage).await
        }
        async fn download_bundle(&self, v: &VersionInfo) -> Result<bytes::Bytes, RegistryError> {
            self.inner.download_bundle(v).await
        }
    }

    /// Starts promoting `version` over `baseline` and kills it between moving
    /// `previous` and `production`, lease held.
    async fn killed_between_the_moves(
        ctx: &Context,
        local: &Arc<crate::registry::LocalRegistry>,
        version: &'static str,
        baseline: &str,
    ) {
        let stalling = ctx.clone().with_registry(Arc::new(StallsOn {
            inner: local.clone(),
            alias: aliases::PRODUCTION,
            version,
        }));
        let owner = format!("promote {version}");
        let attempt = async {
            let mut lease = Lease::acquire_for(&stalling, "m", "attempt 1", Some(&owner)).await?;
            move_production(
                &stalling,
                &mut lease,
                "m",
                version,
                Some(baseline),
                &report(),
                "now",
            )
            .await
        };
        let killed = tokio::time::timeout(std::time::Duration::from_millis(300), attempt).await;
        assert!(
            killed.is_err(),
            "the attempt was not stopped between the moves: {killed:?}"
        );
    }

    async fn alias(local: &crate::registry::LocalRegistry, alias: &str) -> Option<String> {
        crate::registry::find_alias(local, "m", alias)
            .await
            .unwrap()
            .map(|v| v.version)
    }

    #[tokio::test]
    async fn a_promotion_killed_between_its_alias_moves_is_resumed_by_its_retry_and_can_be_rolled_back() {
        use crate::registry::{LocalRegistry, NewVersion, Registry};
        let store = Arc::new(MemoryStore::new());
        let local = Arc::new(LocalRegistry::new(store.clone()));
        for _ in 0..4 {
            local
                .create_version(NewVersion {
                    name: "m".into(),
                    source: "models/m/x".into(),
                    run_id: None,
                    tags: Default::default(),
                    description: String::new(),
                })
                .await
                .unwrap();
        }
        // Version 2 serves, having replaced 1.
        local
            .set_version_tag("m", "2", tags::REPLACED_VERSION, "1")
            .await
            .unwrap();
        local.set_alias("m", aliases::PREVIOUS, "1").await.unwrap();
        local.set_alias("m", aliases::PRODUCTION, "2").await.unwrap();
        let config =
            Config::from_map(&HashMap::from([("RPS_MODEL_NAME".to_owned(), "m".to_owned())])).unwrap();
        let ctx = Context::with_store(config, store.clone())
            .unwrap()
            .with_registry(local.clone());

        // Promoting 3 dies half way: `previous` moved, `production` did not.
        killed_between_the_moves(&ctx, &local, "3", "2").await;
        assert_eq!(alias(&local, aliases::PREVIOUS).await.as_deref(), Some("2"));
        assert_eq!(alias(&local, aliases::PRODUCTION).await.as_deref(), Some("2"));
        // Its retry takes the dead attempt's lease over at once and completes the move.
        let mut lease = Lease::acquire_for(&ctx, "m", "attempt 2", Some("promote 3"))
            .await
            .unwrap();
        move_production(&ctx, &mut lease, "m", "3", Some("2"), &report(), "now")
            .await
            .unwrap();
        lease.release(&ctx).await;
        assert_eq!(alias(&local, aliases::PRODUCTION).await.as_deref(), Some("3"));
        assert_eq!(alias(&local, aliases::PREVIOUS).await.as_deref(), Some("2"));
        assert!(
            ctx.store.list("locks/").await.unwrap().is_empty(),
            "the dead attempt's lease outlived the promotion that resumed it"
        );

        // Promoting 4 dies half way too, and nobody retries it.
        killed_between_the_moves(&ctx, &local, "4", "3").await;
        assert_eq!(alias(&local, aliases::PREVIOUS).await.as_deref(), Some("3"));
        // A rollback waits for the dead attempt's lease, saying until when…
        let err = rollback(&ctx, RollbackInput::default()).await.err().unwrap();
        assert!(err.to_string().contains("lease until"), "{err}");
        let key = crate::layout::promotion_lock("m", 1).unwrap();
        let mut rec: lease::LeaseRecord = store::get_json(store.as_ref(), &key).await.unwrap();
        rec.expires_at = Utc::now() - chrono::Duration::hours(1);
        store::put_json(store.as_ref(), &key, &rec, false).await.unwrap();
        // …then goes back from 3 to the version 3 replaced, though `previous` names 3.
        let out = rollback(&ctx, RollbackInput::default()).await.unwrap();
        assert_eq!((out.rolled_back.as_str(), out.version.as_str()), ("3", "2"));
        assert_eq!(alias(&local, aliases::PRODUCTION).await.as_deref(), Some("2"));
        assert_eq!(alias(&local, aliases::PREVIOUS).await.as_deref(), Some("1"));
    }

    #[tokio::test]
    async fn a_promotion_whose_lease_was_taken_over_moves_nothing() {
        use crate::registry::{LocalRegistry, NewVersion, Registry};
        let store = Arc::new(MemoryStore::new());
        let registry = Arc::new(LocalRegistry::new(store.clone()));
        for _ in 0..2 {
            registry
                .create_version(NewVersion {
                    name: "m".into(),
                    source: "models/m/x".into(),
                    run_id: None,
                    tags: Default::default(),
                    description: String::new(),
                })
                .await
                .unwrap();
        }
        registry.set_alias("m", aliases::PRODUCTION, "1").await.unwrap();
        let config = Config::from_map(&HashMap::new()).unwrap();
        let ctx = Context::with_store(config, store.clone())
            .unwrap()
            .with_registry(registry.clone());
        // The slow promoter's lease expires and another promoter takes it over.
        let mut slow = Lease::acquire(&ctx, "m", "slow").await.unwrap();
        let key = crate::layout::promotion_lock("m", 1).unwrap();
        let mut rec: lease::LeaseRecord = store::get_json(store.as_ref(), &key).await.unwrap();
        rec.expires_at = Utc::now() - chrono::Duration::hours(1);
        store::put_json(store.as_ref(), &key, &rec, false).await.unwrap();
        let _fast = Lease::acquire(&ctx, "m", "fast").await.unwrap();
        let err = move_production(&ctx, &mut slow, "m", "2", Some("1"), &report(), "now")
            .await
            .unwrap_err();
        assert_eq!(err.exit_code(), 5, "{err}");
        assert_eq!(
            registry
                .get_alias("m", aliases::PRODUCTION)
                .await
                .unwrap()
                .version,
            "1"
        );
        assert!(registry.get_version("m", "2").await.unwrap().tags.is_empty());
    }
}

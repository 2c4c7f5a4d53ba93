//! Stage 2, validate: the data quality gate on a stored snapshot. Its report is always
//! written; any failed check stops the run.

use serde::{Deserialize, Serialize};

use super::{Context, IngestOutput, SnapshotMeta, StageError};
use crate::layout;
use crate::observations::RawSeries;
use crate::quality;
use crate::store::{self, ObjectKey};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateInput {
    pub snapshot: ObjectKey,
}

impl From<&IngestOutput> for ValidateInput {
    fn from(o: &IngestOutput) -> Self {
        Self {
            snapshot: o.snapshot.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidateOutput {
    pub snapshot: ObjectKey,
    pub report: ObjectKey,
    pub rows: usize,
    pub checks: usize,
    pub warnings: Vec<String>,
}

/// A snapshot's body, parsed, with the forecast hours of a live snapshot dropped.
pub(super) async fn load_snapshot(
    ctx: &Context,
    snapshot: &ObjectKey,
) -> Result<(RawSeries, SnapshotMeta), StageError> {
    let meta: SnapshotMeta = store::get_json(ctx.store.as_ref(), &layout::snapshot_meta(snapshot)?).await?;
    let body = ctx.store.get(snapshot).await?;
    let mut raw = RawSeries::parse(&body).map_err(|source| StageError::Shape {
        snapshot: ctx.store.url(snapshot),
        source,
    })?;
    if meta.request.is_live() {
        raw.truncate_after(meta.collected_at.naive_utc());
    }
    Ok((raw, meta))
}

/// Runs the quality gate on a snapshot and stores its report. Fails, after writing the
/// report, when any check fails.
pub async fn validate(ctx: &Context, input: ValidateInput) -> Result<ValidateOutput, StageError> {
    let (raw, meta) = load_snapshot(ctx, &input.snapshot).await?;
    let live = meta.request.is_live().then_some(meta.collected_at);
    let report = quality::check(&raw, &ctx.config.quality, live);
    let report_key = layout::quality_report(&input.snapshot)?;
    store::put_json(ctx.store.as_ref(), &report_key, &report, false).await?;
    if !report.passed {
        return Err(StageError::QualityGate {
            report: ctx.store.url(&report_key),
            failures: report.failures().map(ToString::to_string).collect(),
        });
    }
    let warnings: Vec<String> = report.warnings().map(ToString::to_string).collect();
    for w in &warnings {
        tracing::warn!(snapshot = %input.snapshot, "quality warning: {w}");
    }
    Ok(ValidateOutput {
        snapshot: input.snapshot,
        report: report_key,
        rows: report.rows,
        checks: report.checks.len(),
        warnings,
    })
}

/// Snapshot keys, newest last.
pub async fn list_snapshots(ctx: &Context) -> Result<Vec<ObjectKey>, StageError> {
    let mut keys: Vec<ObjectKey> = ctx
        .store
        .list(layout::RAW_PREFIX)
        .await?
        .into_iter()
        .filter(layout::is_snapshot)
        .collect();
    keys.sort_by(|a, b| a.file_name().cmp(b.file_name()));
    Ok(keys)
}

//! Stage 2, validate: the data quality gate ([`checks`]) on a stored snapshot. Its
//! report is always written; any failed check stops the run.

pub mod checks;

use crate::layout;
pub use crate::records::stages::{ValidateInput, ValidateOutput};
use crate::snapshot;
use crate::stage::{Context, StageError};
use crate::store;

/// Runs the quality gate on a snapshot and stores its report. Fails, after writing the
/// report, when any check fails.
pub async fn validate(ctx: &Context, input: ValidateInput) -> Result<ValidateOutput, StageError> {
    let (raw, meta) = snapshot::load(ctx.store.as_ref(), &input.snapshot).await?;
    let live = meta.request.is_live().then_some(meta.collected_at);
    let report = checks::check(&raw, &ctx.config.quality, live);
    let report_key = layout::quality_report(&input.snapshot)?;
    store::put_json(ctx.store.as_ref(), &report_key, &report, false).await?;
    if !report.passed {
        return Err(StageError::QualityGate {
            report: ctx.url(&report_key),
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::store::ObjectStore;
    use crate::testing::{context, range};

    /// An ingest that stored its raw body but died before its metadata: the default
    /// `validate` takes the newest complete snapshot instead of failing on it.
    #[tokio::test]
    async fn a_snapshot_without_metadata_does_not_block_the_default_validate() {
        let (ctx, store, _cache) = context(&[]);
        let done = crate::testing::ingested(&ctx, range((1, 1), (1, 31))).await;
        let orphan =
            layout::raw_snapshot("archive", chrono::Utc::now() + chrono::Duration::seconds(5)).unwrap();
        store.put_new(&orphan, Bytes::from_static(b"{}")).await.unwrap();
        let input = ValidateInput::newest(&ctx).await.unwrap();
        assert_eq!(input.snapshot, done.snapshot);
        validate(&ctx, input).await.unwrap();
    }
}

//! Helpers for the crate's unit tests: the shipped sample as an in-memory weather
//! source, contexts over the in-memory store and the local registry, and the stages a
//! test needs before its own, in the pipeline's order (so a stage's tests need not
//! import the stages before it).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::config::Config;
use crate::records::stages::{IngestOutput, ValidateOutput};
use crate::source::{DateRange, IngestRequest, RecordedSource, Recording};
use crate::stage::Context;
use crate::store::MemoryStore;

pub fn sample_recording() -> Recording {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/sample/open-meteo-archive-sandpoint-ak-2023.json");
    Recording::parse(&std::fs::read(path).expect("the shipped sample")).expect("a usable recording")
}

/// A context on a fresh memory store, answering from the sample, with a model cache of
/// its own and `vars` set.
pub fn context(vars: &[(&str, &str)]) -> (Context, Arc<MemoryStore>, tempfile::TempDir) {
    let cache = tempfile::tempdir().expect("a temporary folder");
    let mut map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    map.insert("RPS_MODEL_CACHE".into(), cache.path().display().to_string());
    let store = Arc::new(MemoryStore::new());
    let config = Config::from_map(&map).expect("a configuration");
    let ctx = Context::with_store(config, store.clone())
        .expect("a context")
        .with_source(Arc::new(RecordedSource::new(sample_recording(), 7)));
    (ctx, store, cache)
}

/// A backfill of 2023, `(month, day)` to `(month, day)`.
pub fn range(start: (u32, u32), end: (u32, u32)) -> IngestRequest {
    let d = |(m, day)| NaiveDate::from_ymd_opt(2023, m, day).expect("a date");
    IngestRequest::backfill(DateRange::new(d(start), d(end)).expect("a range"))
}

/// `request` ingested.
pub async fn ingested(ctx: &Context, request: IngestRequest) -> IngestOutput {
    crate::ingest::ingest(ctx, request)
        .await
        .expect("the sample ingests")
}

/// `request` ingested and validated.
pub async fn validated(ctx: &Context, request: IngestRequest) -> ValidateOutput {
    let ingested = ingested(ctx, request).await;
    crate::validate::validate(ctx, (&ingested).into())
        .await
        .expect("the sample passes the quality gate")
}

/// `request` ingested, validated and transformed into a dataset.
#[cfg(feature = "batch")]
pub async fn transformed(ctx: &Context, request: IngestRequest) -> crate::records::stages::TransformOutput {
    let validated = validated(ctx, request).await;
    crate::transform::transform(ctx, (&validated).into())
        .await
        .expect("the sample transforms")
}

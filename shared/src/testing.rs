//! Helpers for the crate's unit tests: the shipped sample as an in-memory weather
//! source, and contexts over the in-memory store and the local registry.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;

use crate::config::Config;
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

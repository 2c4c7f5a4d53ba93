//! Stage 1, ingest: fetch from the weather source and store the raw body before
//! anything else can fail, stamped with its collection time, with its metadata
//! ([`SnapshotMeta`]) beside it. A store holds one place's data: an ingest for another
//! place than the store's is refused before it fetches anything, and the first stored
//! snapshot claims the store for its place ([`crate::fleet::check`]).

use crate::bundle::sha256_hex;
use crate::layout;
use crate::observations::RawSeries;
pub use crate::records::stages::{IngestInput, IngestOutput};
use crate::snapshot::SnapshotMeta;
use crate::stage::{Context, StageError};
use crate::store;

/// Fetches and stores the raw body before anything else can fail.
pub async fn ingest(ctx: &Context, request: IngestInput) -> Result<IngestOutput, StageError> {
    // A `recent` request is recorded as the dates it meant today.
    let request = request.resolved(chrono::Utc::now().date_naive());
    let claimed = crate::fleet::check(ctx.store.as_ref(), &ctx.config).await?;
    let fetched = ctx.source.fetch(&request).await?;
    let snapshot = layout::raw_snapshot(request.endpoint(), fetched.collected_at)?;
    ctx.store.put_new(&snapshot, fetched.body.clone()).await?;
    let meta = SnapshotMeta {
        snapshot: snapshot.clone(),
        source: "open-meteo".into(),
        endpoint: request.endpoint().into(),
        url: fetched.url.to_string(),
        request,
        location: ctx.config.location,
        collected_at: fetched.collected_at,
        bytes: fetched.body.len(),
        sha256: sha256_hex(&fetched.body),
        attempts: fetched.attempts,
    };
    let meta_key = layout::snapshot_meta(&snapshot)?;
    store::put_json(ctx.store.as_ref(), &meta_key, &meta, true).await?;
    if !claimed {
        crate::fleet::record(ctx.store.as_ref(), &ctx.config).await?;
    }
    let raw = RawSeries::parse(&fetched.body).map_err(|source| StageError::Shape {
        snapshot: ctx.url(&snapshot),
        source,
    })?;
    tracing::info!(snapshot = %snapshot, rows = raw.len(), bytes = meta.bytes, "ingested");
    Ok(IngestOutput {
        snapshot,
        meta: meta_key,
        collected_at: meta.collected_at,
        endpoint: meta.endpoint,
        url: meta.url,
        bytes: meta.bytes,
        rows: raw.len(),
        attempts: meta.attempts,
    })
}

#[cfg(test)]
mod tests {
    //! Ingest against a store that refuses a create-only write (a mock).

    use std::collections::HashMap;
    use std::sync::Arc;

    use chrono::NaiveDate;

    use super::*;
    use crate::config::Config;
    use crate::source::IngestRequest;
    use crate::source::{DateRange, RecordedSource, Recording};
    use crate::store::{MockObjectStore, StoreError};

    fn source() -> RecordedSource {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data/sample/open-meteo-archive-sandpoint-ak-2023.json");
        RecordedSource::new(Recording::parse(&std::fs::read(path).unwrap()).unwrap(), 7)
    }

    #[tokio::test]
    async fn a_refused_snapshot_write_stops_ingest_before_anything_else_is_written() {
        let mut store = MockObjectStore::new();
        // The store is checked for this place first (it holds nothing yet); it is
        // claimed only once a snapshot is stored, so never here.
        let claim = layout::location_claim().unwrap();
        store
            .expect_get()
            .withf(move |key| *key == claim)
            .returning(|key| Err(StoreError::NotFound { url: key.to_string() }));
        store.expect_list().returning(|_| Ok(Vec::new()));
        store.expect_url().returning(|key| key.to_string());
        store
            .expect_put_new()
            .withf(|key, _| layout::is_snapshot(key))
            .times(1)
            .returning(|key, _| Err(StoreError::AlreadyExists { url: key.to_string() }));
        // No other expectation: writing the metadata (or anything) would fail the test.
        let config = Config::from_map(&HashMap::new()).unwrap();
        let ctx = Context::with_store(config, Arc::new(store))
            .unwrap()
            .with_source(Arc::new(source()));
        let d = |day| NaiveDate::from_ymd_opt(2023, 1, day).unwrap();
        let range = IngestRequest::backfill(DateRange::new(d(1), d(3)).unwrap());
        let err = ingest(&ctx, range).await.unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
    }
}

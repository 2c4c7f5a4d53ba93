//! Stage 1, ingest: fetch from Open-Meteo and store the raw body before anything else
//! can fail, stamped with its collection time, with a metadata file beside it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Context, StageError};
use crate::config::Location;
use crate::layout;
use crate::observations::RawSeries;
use crate::source::{self, IngestRequest, RetryPolicy};
use crate::store::{self, ObjectKey};

/// How and when a snapshot was fetched: stored beside it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub snapshot: ObjectKey,
    pub source: String,
    pub endpoint: String,
    /// The full request URL (Open-Meteo needs no key, so it holds no secret).
    pub url: String,
    pub request: IngestRequest,
    pub location: Location,
    pub collected_at: DateTime<Utc>,
    pub bytes: usize,
    pub sha256: String,
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestOutput {
    pub snapshot: ObjectKey,
    pub meta: ObjectKey,
    pub collected_at: DateTime<Utc>,
    pub endpoint: String,
    pub url: String,
    pub bytes: usize,
    pub rows: usize,
    pub attempts: u32,
}

/// Fetches from Open-Meteo and stores the raw body before anything else can fail.
pub async fn ingest(ctx: &Context, request: IngestRequest) -> Result<IngestOutput, StageError> {
    let cfg = &ctx.config;
    let url = request.url(&cfg.source, &cfg.location);
    let fetched = source::fetch(&ctx.http, &url, &RetryPolicy::from_config(&cfg.source)).await?;
    let snapshot = layout::raw_snapshot(request.endpoint(), fetched.collected_at)?;
    ctx.store.put_new(&snapshot, fetched.body.clone()).await?;
    let meta = SnapshotMeta {
        snapshot: snapshot.clone(),
        source: "open-meteo".into(),
        endpoint: request.endpoint().into(),
        url: fetched.url.to_string(),
        request,
        location: cfg.location,
        collected_at: fetched.collected_at,
        bytes: fetched.body.len(),
        sha256: crate::model::sha256_hex(&fetched.body),
        attempts: fetched.attempts,
    };
    let meta_key = layout::snapshot_meta(&snapshot)?;
    store::put_json(ctx.store.as_ref(), &meta_key, &meta, true).await?;
    let raw = RawSeries::parse(&fetched.body).map_err(|source| StageError::Shape {
        snapshot: ctx.store.url(&snapshot),
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

//! Many locations' ingests in as few calls as Open-Meteo takes: one request names up to
//! `RPS_OPEN_METEO_BATCH` places (comma-separated coordinates) and is answered with an
//! array, one document per place. Each location still stores its own raw snapshot,
//! with the URL a call of its own would have had.
//!
//! Batching saves requests and latency, not quota: Open-Meteo counts every place of a
//! call as a call of its own (docs/locations.md has the arithmetic).
//!
//! A [`Batch`] is made for one run over a fleet and one [`IngestRequest`]; each
//! location's ingest fetches through its [`BatchedSource`]. The first location of a
//! chunk to ask fetches the whole chunk; the others wait for it and take their part. A
//! chunk whose call fails (or answers in a shape that cannot be split) leaves each of
//! its locations to fetch alone, as it would have without batching: a batch never fails
//! a location that a call of its own would not.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;

use super::open_meteo::{OpenMeteo, request_url};
use super::{Fetched, IngestRequest, SourceError, WeatherSource};
use crate::config::{Location, SourceConfig};

/// One run's batched fetches of `request`.
pub struct Batch {
    request: IngestRequest,
    cfg: SourceConfig,
    client: OpenMeteo,
    chunks: Vec<Chunk>,
    size: usize,
}

struct Chunk {
    places: Vec<Location>,
    /// Each place's part of the answer, taken once; `Err`: fetch alone.
    parts: tokio::sync::OnceCell<Result<Vec<Mutex<Option<Fetched>>>, String>>,
}

impl Batch {
    /// Batches of `size` (at least 1) over `places`, in order.
    pub fn new(
        cfg: &SourceConfig,
        request: IngestRequest,
        places: &[Location],
        size: usize,
    ) -> Result<Arc<Self>, SourceError> {
        let size = size.max(1);
        let first = places
            .first()
            .copied()
            .ok_or_else(|| SourceError::Client("a batch needs at least one place".into()))?;
        Ok(Arc::new(Self {
            request,
            cfg: cfg.clone(),
            client: OpenMeteo::new(cfg.clone(), first)?,
            chunks: places
                .chunks(size)
                .map(|c| Chunk {
                    places: c.to_vec(),
                    parts: tokio::sync::OnceCell::new(),
                })
                .collect(),
            size,
        }))
    }

    /// The source the `index`-th place's ingest fetches through; any other request
    /// than the batch's goes to `alone`.
    pub fn source(self: &Arc<Self>, index: usize, alone: Arc<dyn WeatherSource>) -> BatchedSource {
        BatchedSource {
            batch: self.clone(),
            index,
            alone,
        }
    }

    /// The calls a run makes: one per chunk.
    pub fn calls(&self) -> usize {
        self.chunks.len()
    }

    async fn part(&self, index: usize) -> Result<Option<Fetched>, String> {
        let chunk = &self.chunks[index / self.size];
        let parts = chunk
            .parts
            .get_or_init(|| async {
                let fetched = self
                    .client
                    .fetch_places(&self.request, &chunk.places)
                    .await
                    .map_err(|e| e.to_string())?;
                let bodies = split(&fetched.body, chunk.places.len())?;
                Ok(bodies
                    .into_iter()
                    .zip(&chunk.places)
                    .map(|(body, place)| {
                        Mutex::new(Some(Fetched {
                            body,
                            url: request_url(&self.request, &self.cfg, place),
                            attempts: fetched.attempts,
                            collected_at: fetched.collected_at,
                        }))
                    })
                    .collect())
            })
            .await;
        match parts {
            Ok(parts) => Ok(parts[index % self.size]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()),
            Err(e) => Err(e.clone()),
        }
    }
}

/// One location's view of a [`Batch`].
pub struct BatchedSource {
    batch: Arc<Batch>,
    index: usize,
    alone: Arc<dyn WeatherSource>,
}

#[async_trait]
impl WeatherSource for BatchedSource {
    fn describe(&self) -> String {
        format!(
            "{} (batched, {} places a call)",
            self.alone.describe(),
            self.batch.size
        )
    }

    async fn fetch(&self, request: &IngestRequest) -> Result<Fetched, SourceError> {
        if *request != self.batch.request {
            return self.alone.fetch(request).await;
        }
        match self.batch.part(self.index).await {
            Ok(Some(fetched)) => Ok(fetched),
            // Taken already (a second fetch of this location): a call of its own.
            Ok(None) => self.alone.fetch(request).await,
            Err(why) => {
                tracing::warn!("the batched Open-Meteo call failed ({why}); fetching this location alone");
                self.alone.fetch(request).await
            }
        }
    }
}

/// The `n` documents of a JSON array, as slices of `body` (one document for `n = 1`,
/// as Open-Meteo answers a single place), without parsing them.
pub fn split(body: &Bytes, n: usize) -> Result<Vec<Bytes>, String> {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .ok_or("an empty answer")?;
    if n == 1 && body[start] == b'{' {
        return Ok(vec![body.clone()]);
    }
    if body[start] != b'[' {
        return Err(format!("expected an array of {n} documents"));
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let mut parts = Vec::with_capacity(n);
    let mut from = None;
    for (i, &b) in body.iter().enumerate().skip(start + 1) {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                if depth == 0 {
                    from = Some(i);
                }
                depth += 1;
            }
            b'}' | b']' if depth > 0 => {
                depth -= 1;
                if depth == 0 {
                    let s = from.take().ok_or("a malformed array")?;
                    parts.push(body.slice(s..=i));
                }
            }
            b']' => {
                return if parts.len() == n {
                    Ok(parts)
                } else {
                    Err(format!("expected {n} documents, got {}", parts.len()))
                };
            }
            _ => {}
        }
    }
    Err("an unterminated array".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_splits_into_its_documents_and_nothing_else_does() {
        let body = Bytes::from_static(br#" [{"a": "}]\"", "b": [1, {"c": 2}]}, {"d": 3}]"#);
        let parts = split(&body, 2).unwrap();
        assert_eq!(&parts[0][..], br#"{"a": "}]\"", "b": [1, {"c": 2}]}"#);
        assert_eq!(&parts[1][..], br#"{"d": 3}"#);
        for p in &parts {
            serde_json::from_slice::<serde_json::Value>(p).unwrap();
        }
        let one = Bytes::from_static(br#"{"latitude": 1}"#);
        assert_eq!(split(&one, 1).unwrap(), vec![one.clone()]);
        assert!(split(&body, 3).unwrap_err().contains("expected 3"));
        assert!(split(&one, 2).is_err());
        assert!(split(&Bytes::from_static(b"[{\"a\": 1}"), 1).is_err());
        assert!(split(&Bytes::from_static(b"  "), 1).is_err());
    }
}

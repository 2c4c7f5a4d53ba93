//! The promotion lease: a create-only object in the store (`If-None-Match: *` on S3)
//! that one promotion or rollback of a model holds while it moves aliases. It expires,
//! so a crashed promoter does not block the next one forever.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::stage::{Context, StageError};
use crate::store::{self, ObjectKey, StoreError};

/// How long a lease lasts before another promoter may break it.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(600);

/// What the lease object holds.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct LeaseRecord {
    pub token: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

pub(super) struct Lease {
    key: ObjectKey,
    token: String,
}

impl Lease {
    pub async fn acquire(ctx: &Context, name: &str, holder: &str) -> Result<Self, StageError> {
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

    pub async fn release(self, ctx: &Context) {
        let held: Result<LeaseRecord, _> = store::get_json(ctx.store.as_ref(), &self.key).await;
        if matches!(&held, Ok(h) if h.token == self.token) {
            if let Err(e) = ctx.store.delete(&self.key).await {
                tracing::error!(lock = %self.key, "could not release the promotion lease: {e}");
            }
        }
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
}

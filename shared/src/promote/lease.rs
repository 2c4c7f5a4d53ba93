//! The promotion lease: one promotion or rollback of a model at a time.
//!
//! A lease is a create-only object `locks/<name>/promote.<generation>.json` in the
//! store (`If-None-Match: *` on S3); the newest generation is the lease. Taking over an
//! expired lease creates the next generation, also create-only, so of two contenders
//! only one can win. An unreadable lease counts as held. The holder re-checks that its
//! generation is still the newest, and renews it, before every alias write
//! ([`Lease::check`]); a holder that lost its lease stops without writing.
//!
//! Each renewal lasts [`LEASE`]; the longest step between two checks is one registry
//! call (MLflow: 120 s × 3 attempts), well inside it. Expiry compares clocks of
//! different machines, so a lease counts as expired only [`SKEW`] after its end.
//!
//! A lease in a local folder excludes only processes that share that folder: runners
//! that share one MLflow server must share an S3 store too (`RPS_STORE=s3://…`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::StoreLocation;
use crate::layout;
use crate::stage::{Context, StageError};
use crate::store::{self, ObjectKey, StoreError};

/// How long a lease lasts from its last renewal.
pub const LEASE: std::time::Duration = std::time::Duration::from_secs(600);
/// How far two machines' clocks may disagree.
pub const SKEW: std::time::Duration = std::time::Duration::from_secs(60);

/// What a lease object holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct LeaseRecord {
    pub token: String,
    pub holder: String,
    pub acquired_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// What the lease is for (`promote <version>`), when attempts of the same work may
    /// take it over from each other: a retry of a promotion that timed out part way
    /// resumes at once instead of waiting out its own dead attempt's lease.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

impl LeaseRecord {
    fn expired(&self, now: DateTime<Utc>) -> bool {
        self.expires_at + chrono::Duration::from_std(SKEW).unwrap_or_default() < now
    }
}

pub(super) struct Lease {
    name: String,
    generation: u64,
    record: LeaseRecord,
    /// Said once, in the output: a local lease excludes no other machine.
    pub warning: Option<String>,
}

fn key(name: &str, generation: u64) -> Result<ObjectKey, StoreError> {
    layout::promotion_lock(name, generation)
}

/// The newest generation of `name`'s lease and what it holds (`Err` when unreadable).
async fn newest(ctx: &Context, name: &str) -> Result<Option<(u64, Result<LeaseRecord, String>)>, StageError> {
    let prefix = layout::promotion_lock_prefix(name);
    let newest = ctx
        .store
        .list(&prefix)
        .await?
        .iter()
        .filter_map(layout::promotion_lock_generation)
        .max();
    let Some(generation) = newest else {
        return Ok(None);
    };
    let record = match store::get_json::<LeaseRecord>(ctx.store.as_ref(), &key(name, generation)?).await {
        Ok(r) => Ok(r),
        // Released between the listing and the read: free.
        Err(StoreError::NotFound { .. }) => return Ok(None),
        Err(e) => Err(e.to_string()),
    };
    Ok(Some((generation, record)))
}

impl Lease {
    pub async fn acquire(ctx: &Context, name: &str, holder: &str) -> Result<Self, StageError> {
        Self::acquire_for(ctx, name, holder, None).await
    }

    /// Like [`Lease::acquire`], but a lease held for the same `owner` (an earlier
    /// attempt of the same work) is taken over rather than waited out.
    pub async fn acquire_for(
        ctx: &Context,
        name: &str,
        holder: &str,
        owner: Option<&str>,
    ) -> Result<Self, StageError> {
        let now = Utc::now();
        let record = LeaseRecord {
            token: format!("{:016x}", rand::random::<u64>()),
            holder: format!("{holder} (pid {})", std::process::id()),
            acquired_at: now,
            expires_at: now + chrono::Duration::from_std(LEASE).unwrap_or_default(),
            owner: owner.map(str::to_owned),
        };
        let held = |h: &LeaseRecord| {
            StageError::Conflict(format!(
                "another promotion of {name} is in progress ({} since {}, lease until {}); nothing was changed, retry when it is done",
                h.holder,
                h.acquired_at.to_rfc3339(),
                h.expires_at.to_rfc3339()
            ))
        };
        let generation = match newest(ctx, name).await? {
            None => 1,
            Some((g, Ok(h))) if h.expired(Utc::now()) => {
                tracing::warn!(model = name, holder = %h.holder, "taking over an expired promotion lease");
                g + 1
            }
            Some((g, Ok(h))) if owner.is_some() && h.owner.as_deref() == owner => {
                tracing::warn!(model = name, holder = %h.holder, "an earlier attempt of this promotion holds the lease: taking it over");
                g + 1
            }
            Some((_, Ok(h))) => return Err(held(&h)),
            Some((g, Err(why))) => {
                return Err(StageError::Conflict(format!(
                    "the promotion lease {} cannot be read ({why}), so it counts as held; nothing was changed. If no promotion is running, delete it",
                    ctx.url(&key(name, g)?)
                )));
            }
        };
        let key = key(name, generation)?;
        match store::put_json(ctx.store.as_ref(), &key, &record, true).await {
            Ok(()) => {}
            Err(StoreError::AlreadyExists { .. }) => {
                // Our own write whose answer was lost and retried, or another contender.
                match store::get_json::<LeaseRecord>(ctx.store.as_ref(), &key).await {
                    Ok(r) if r.token == record.token => {}
                    Ok(r) => return Err(held(&r)),
                    Err(e) => return Err(e.into()),
                }
            }
            Err(e) => return Err(e.into()),
        }
        // The generation taken over is no lease any more: removed, so that it cannot
        // become the newest again once this one is released.
        if generation > 1
            && let Err(e) = ctx.store.delete(&self::key(name, generation - 1)?).await
        {
            tracing::warn!(
                model = name,
                "could not remove the promotion lease taken over: {e}"
            );
        }
        let warning = match (&ctx.config.store, &ctx.config.mlflow) {
            (StoreLocation::Local { path }, Some(m)) => {
                let w = format!(
                    "the promotion lease is in the local folder {}: it excludes no other machine promoting {name} on the shared MLflow server {}; use an S3 store (RPS_STORE=s3://…) when several runners promote",
                    path.display(),
                    m.tracking_uri.host_str().unwrap_or("?")
                );
                tracing::warn!("{w}");
                Some(w)
            }
            _ => None,
        };
        Ok(Self {
            name: name.to_owned(),
            generation,
            record,
            warning,
        })
    }

    /// Before an alias write: still the newest generation, still ours, not expired;
    /// renewed for another [`LEASE`]. A lost lease is a conflict, and the caller stops.
    pub async fn check(&mut self, ctx: &Context) -> Result<(), StageError> {
        let lost = |why: String| {
            StageError::Conflict(format!(
                "this promotion of {} lost its lease ({why}); it stopped before writing, re-run it",
                self.name
            ))
        };
        match newest(ctx, &self.name).await? {
            Some((g, Ok(r))) if g == self.generation && r.token == self.record.token => {}
            Some((g, _)) if g != self.generation => {
                return Err(lost(format!("generation {g} was taken after this one's expired")));
            }
            _ => return Err(lost("the lease object is gone or was replaced".into())),
        }
        let now = Utc::now();
        if now >= self.record.expires_at {
            return Err(lost(format!(
                "it expired at {}",
                self.record.expires_at.to_rfc3339()
            )));
        }
        self.record.expires_at = now + chrono::Duration::from_std(LEASE).unwrap_or_default();
        store::put_json(
            ctx.store.as_ref(),
            &key(&self.name, self.generation)?,
            &self.record,
            false,
        )
        .await?;
        Ok(())
    }

    /// Gives the lease back (only ours: never a newer generation).
    pub async fn release(self, ctx: &Context) {
        let Ok(key) = key(&self.name, self.generation) else {
            return;
        };
        let held: Result<LeaseRecord, _> = store::get_json(ctx.store.as_ref(), &key).await;
        if matches!(&held, Ok(h) if h.token == self.record.token)
            && let Err(e) = ctx.store.delete(&key).await
        {
            tracing::error!(lock = %key, "could not release the promotion lease: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::config::Config;
    use crate::store::MemoryStore;

    fn ctx() -> Context {
        let config = Config::from_map(&HashMap::new()).unwrap();
        Context::with_store(config, Arc::new(MemoryStore::new())).unwrap()
    }

    /// Moves a lease's expiry into the past, as if its holder had stalled.
    async fn expire(ctx: &Context, name: &str, generation: u64) {
        let key = key(name, generation).unwrap();
        let mut rec: LeaseRecord = store::get_json(ctx.store.as_ref(), &key).await.unwrap();
        rec.expires_at = Utc::now() - chrono::Duration::from_std(SKEW * 2).unwrap();
        store::put_json(ctx.store.as_ref(), &key, &rec, false)
            .await
            .unwrap();
    }

    async fn held_keys(ctx: &Context) -> Vec<ObjectKey> {
        ctx.store.list("locks/").await.unwrap()
    }

    #[tokio::test]
    async fn one_lease_at_a_time_and_expired_ones_are_taken_over() {
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

        // A lease past its expiry (a crashed promoter) is taken over; the stale holder's
        // release does not remove the new lease.
        expire(&ctx, "m", b.generation).await;
        let c = Lease::acquire(&ctx, "m", "c").await.unwrap();
        assert_eq!(c.generation, b.generation + 1);
        b.release(&ctx).await;
        assert!(
            ctx.store.exists(&key("m", c.generation).unwrap()).await.unwrap(),
            "b released c's lease"
        );
        c.release(&ctx).await;
        assert!(Lease::acquire(&ctx, "m", "d").await.is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_many_contenders_for_an_expired_lease_exactly_one_wins() {
        let ctx = ctx();
        let stalled = Lease::acquire(&ctx, "m", "stalled").await.unwrap();
        expire(&ctx, "m", stalled.generation).await;
        let mut tasks = Vec::new();
        for i in 0..8 {
            let ctx = ctx.clone();
            tasks.push(tokio::spawn(async move {
                Lease::acquire(&ctx, "m", &format!("contender {i}")).await.is_ok()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1);
    }

    #[tokio::test]
    async fn a_slow_holder_that_lost_its_lease_is_stopped_by_its_check() {
        let ctx = ctx();
        let mut slow = Lease::acquire(&ctx, "m", "slow").await.unwrap();
        slow.check(&ctx).await.unwrap();
        expire(&ctx, "m", slow.generation).await;
        let mut fast = Lease::acquire(&ctx, "m", "fast").await.unwrap();
        let err = slow.check(&ctx).await.unwrap_err();
        assert_eq!(err.error_type(), "PromotionConflict", "{err}");
        assert!(err.to_string().contains("lost its lease"), "{err}");
        fast.check(&ctx).await.unwrap();
        // The generation taken over is gone: releasing the new one frees the model.
        assert_eq!(held_keys(&ctx).await.len(), 1);
        fast.release(&ctx).await;
        assert!(Lease::acquire(&ctx, "m", "next").await.is_ok());
    }

    #[tokio::test]
    async fn a_retry_of_the_same_work_takes_its_dead_attempts_lease_over_and_nothing_else_does() {
        let ctx = ctx();
        let mut dead = Lease::acquire_for(&ctx, "m", "attempt 1", Some("promote 3"))
            .await
            .unwrap();
        // Another promotion waits out the lease…
        let err = Lease::acquire_for(&ctx, "m", "other", Some("promote 4"))
            .await
            .err()
            .unwrap();
        assert_eq!(err.exit_code(), 5, "{err}");
        assert!(Lease::acquire(&ctx, "m", "rollback").await.is_err());
        // …the retry of the same one takes it over, and the first attempt, were it still
        // alive, stops at its next check.
        let mut retry = Lease::acquire_for(&ctx, "m", "attempt 2", Some("promote 3"))
            .await
            .unwrap();
        assert_eq!(retry.generation, dead.generation + 1);
        assert!(dead.check(&ctx).await.is_err());
        retry.check(&ctx).await.unwrap();
        // A lease without an owner is never taken over before it expires.
        retry.release(&ctx).await;
        let _plain = Lease::acquire(&ctx, "m", "plain").await.unwrap();
        assert!(
            Lease::acquire_for(&ctx, "m", "x", Some("promote 3"))
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn checking_renews_the_lease() {
        let ctx = ctx();
        let mut l = Lease::acquire(&ctx, "m", "a").await.unwrap();
        let before = l.record.expires_at;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        l.check(&ctx).await.unwrap();
        let stored: LeaseRecord = store::get_json(ctx.store.as_ref(), &key("m", l.generation).unwrap())
            .await
            .unwrap();
        assert!(stored.expires_at > before);
    }

    #[tokio::test]
    async fn an_unreadable_lease_counts_as_held() {
        let ctx = ctx();
        ctx.store
            .put(&key("m", 3).unwrap(), Bytes::from_static(b"{not json"))
            .await
            .unwrap();
        let err = Lease::acquire(&ctx, "m", "a").await.err().unwrap();
        assert_eq!(err.exit_code(), 5, "{err}");
        assert!(err.to_string().contains("cannot be read"), "{err}");
    }

    #[tokio::test]
    async fn our_own_retried_write_is_ours() {
        // The store took the first write but its answer was lost: the retry finds the
        // object, with our token.
        let ctx = ctx();
        let l = Lease::acquire(&ctx, "m", "a").await.unwrap();
        let stored: LeaseRecord = store::get_json(ctx.store.as_ref(), &key("m", 1).unwrap())
            .await
            .unwrap();
        assert_eq!(stored.token, l.record.token);
    }
}

//! Rollback: move `production` back to `previous`, under the promotion lease.
//! `previous` then steps one further back along the promotion chain (the
//! `rps.replaced_version` tags), or is removed at its end.

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::lease::Lease;
use super::{actor, mirror_stages};
use crate::registry::{self, RegistryError};
use crate::stage::{Context, StageError};
use crate::tags::promotion as tags;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RollbackInput {
    #[serde(default)]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RollbackOutput {
    pub model_name: String,
    /// Production now.
    pub version: String,
    /// The version rolled back from.
    pub rolled_back: String,
    /// Where `previous` points now (one step further back), if anywhere.
    pub previous: Option<String>,
    pub stages: String,
}

/// Moves `production` back to `previous`.
pub async fn rollback(ctx: &Context, input: RollbackInput) -> Result<RollbackOutput, StageError> {
    let name = ctx.config.registry.model_name.clone();
    let by = actor(&input.actor);
    let mut lease = Lease::acquire(ctx, &name, &by).await?;
    let result = rollback_locked(ctx, &mut lease, &name, &by).await;
    lease.release(ctx).await;
    result
}

async fn rollback_locked(
    ctx: &Context,
    lease: &mut Lease,
    name: &str,
    by: &str,
) -> Result<RollbackOutput, StageError> {
    let family = ctx.config.aliases();
    let prod = ctx
        .registry
        .get_alias(name, &family.served)
        .await
        .map_err(|e| not_found_as(e, format!("model {name} has no production version to roll back")))?;
    let prev = match registry::find_alias(ctx.registry.as_ref(), name, &family.previous).await? {
        Some(p) if p.version != prod.version => p,
        // A promotion that died between moving `previous` and `production` left both on
        // one version: production's own record of the version it replaced still says
        // where to go back.
        found => match prod.tag(tags::REPLACED_VERSION) {
            Some(x) if x != tags::NONE && x != prod.version => {
                tracing::warn!(model = %name, production = %prod.version, replaced = %x, "@previous does not name the version production replaced: following production's record");
                ctx.registry.get_version(name, x).await?
            }
            _ => {
                return Err(StageError::Input(match found {
                    None => format!("model {name} has no @previous version to roll back to"),
                    Some(_) => format!(
                        "@previous and @production are both version {}, which replaced no other version: there is nothing to roll back to",
                        prod.version
                    ),
                }));
            }
        },
    };
    lease.check(ctx).await?;
    ctx.registry
        .set_alias(name, &family.served, &prev.version)
        .await?;
    // `previous` steps one further back along the promotion chain, when there is one.
    let further = match prev.tag(tags::REPLACED_VERSION) {
        Some(x) if x != tags::NONE && x != prod.version && x != prev.version => {
            ctx.registry.get_version(name, x).await.ok()
        }
        _ => None,
    };
    lease.check(ctx).await?;
    match &further {
        Some(f) => ctx.registry.set_alias(name, &family.previous, &f.version).await?,
        None => ctx.registry.delete_alias(name, &family.previous).await?,
    }
    let at = Utc::now().to_rfc3339();
    for (version, k, val) in [
        (&prod.version, tags::ROLLED_BACK_AT, at.as_str()),
        (&prod.version, tags::ROLLED_BACK_BY, by),
        (&prev.version, tags::RESTORED_AT, at.as_str()),
        (&prev.version, tags::RESTORED_BY, by),
    ] {
        ctx.registry.set_version_tag(name, version, k, val).await?;
    }
    let stages = mirror_stages(ctx, name, &prev.version, Some(&prod.version)).await;
    tracing::info!(model = %name, from = %prod.version, to = %prev.version, by = %by, "rolled back");
    Ok(RollbackOutput {
        model_name: name.to_owned(),
        version: prev.version,
        rolled_back: prod.version,
        previous: further.map(|f| f.version),
        stages,
    })
}

fn not_found_as(e: RegistryError, msg: String) -> StageError {
    if e.is_not_found() {
        StageError::Input(msg)
    } else {
        e.into()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::config::Config;
    use crate::layout;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn rollback_needs_a_previous_version() {
        let config = Config::from_map(&HashMap::new()).unwrap();
        let ctx = Context::with_store(config, Arc::new(MemoryStore::new())).unwrap();
        let err = rollback(&ctx, RollbackInput::default()).await.err().unwrap();
        assert!(err.to_string().contains("no production version"), "{err}");
        // The lease was released on the error path.
        assert!(
            ctx.store
                .list(&layout::promotion_lock_prefix(&ctx.config.registry.model_name))
                .await
                .unwrap()
                .is_empty()
        );
    }
}

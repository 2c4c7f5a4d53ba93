use rps_core::stage::{Context, StageError};
use rps_core::validate::{ValidateInput, validate};

use super::fleet::{self, Finished};
use super::{Out, key, resolved_config};

#[derive(clap::Args)]
pub struct Args {
    /// The snapshot's key (default: the newest)
    snapshot: Option<String>,
}

/// One location's newest (or named) snapshot; with `RPS_LOCATIONS`, every location's
/// newest (or `--location`'s).
pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let config = resolved_config().await?;
    let concurrency = config.site.concurrency;
    let config = match fleet::sites(config).await? {
        fleet::Selected::One(config) => *config,
        fleet::Selected::Many(sites) => {
            anyhow::ensure!(
                a.snapshot.is_none(),
                "a snapshot's key names one location's snapshot: add --location ID"
            );
            return fleet::run_each("validate", sites, concurrency, out, None, |_, ctx| async move {
                let done = validate(&ctx, ValidateInput::newest(&ctx).await?).await?;
                Ok(Finished {
                    model_version: None,
                    summary: format!("passed {} checks ({} warnings)", done.checks, done.warnings.len()),
                    output: serde_json::to_value(&done)
                        .map_err(|e| StageError::Internal(format!("serialising the validation: {e}")))?,
                })
            })
            .await;
        }
    };
    let ctx = Context::new(config).await?;
    let input = match a.snapshot {
        Some(s) => ValidateInput { snapshot: key(&s)? },
        None => ValidateInput::newest(&ctx).await?,
    };
    let done = validate(&ctx, input).await?;
    out.emit(&done, |o| {
        println!(
            "passed {} checks ({} warnings) → {}",
            o.checks,
            o.warnings.len(),
            ctx.url(&o.report)
        )
    })
}

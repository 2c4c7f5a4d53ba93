use rps_core::stage::{Context, StageError};

use super::fleet::{self, Finished};
use super::{Out, RangeArgs, resolved_config};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    range: RangeArgs,
}

/// One location's ingest; with `RPS_LOCATIONS`, every location's (or `--location`'s),
/// their fetches batched into as few Open-Meteo calls as `RPS_OPEN_METEO_BATCH` allows.
pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let config = resolved_config().await?;
    let concurrency = config.site.concurrency;
    let request = a.range.request()?;
    let config = match fleet::sites(config).await? {
        fleet::Selected::One(config) => *config,
        fleet::Selected::Many(sites) => {
            return fleet::run_each(
                "ingest",
                sites,
                concurrency,
                out,
                Some(request),
                move |_, ctx| async move {
                    let done = rps_core::ingest::ingest(&ctx, request).await?;
                    Ok(Finished {
                        model_version: None,
                        summary: format!("{} hours → {}", done.rows, ctx.url(&done.snapshot)),
                        output: serde_json::to_value(&done)
                            .map_err(|e| StageError::Internal(format!("serialising the ingest: {e}")))?,
                    })
                },
            )
            .await;
        }
    };
    let ctx = Context::new(config).await?;
    let done = rps_core::ingest::ingest(&ctx, request).await?;
    out.emit(&done, |o| println!("{} hours → {}", o.rows, ctx.url(&o.snapshot)))
}

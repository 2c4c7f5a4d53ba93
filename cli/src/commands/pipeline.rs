use std::path::PathBuf;

use rps_core::pipeline::{ReleaseInput, RunInput, promote as release, run as run_all};
use rps_core::stage::Quiet;

use super::fleet::{self, Finished};
use super::{Out, RangeArgs, resolved_config, write_file};
use crate::output::{self, Progress};

#[derive(clap::Subcommand)]
pub enum Command {
    /// ingest → validate → transform → train
    Run {
        #[command(flatten)]
        range: RangeArgs,
        /// Also write the processed dataset's .dvc file here (e.g. data.dvc)
        #[arg(long)]
        dvc_file: Option<PathBuf>,
        /// Also write the trained model's version here (for a script, which need not
        /// read the JSON)
        #[arg(long)]
        version_file: Option<PathBuf>,
    },
    /// The release flow: train a candidate, deploy it to @staging, run the gates (smoke
    /// test on RPS_STAGING_URL when set) and promote it on success
    Promote {
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long)]
        actor: Option<String>,
    },
}

pub async fn run(command: Command, out: &Out) -> anyhow::Result<()> {
    let config = resolved_config().await?;
    let concurrency = config.site.concurrency;
    let config = match fleet::sites(config).await? {
        fleet::Selected::One(config) => *config,
        fleet::Selected::Many(sites) => return run_fleet(command, sites, concurrency, out).await,
    };
    let ctx = rps_core::stage::Context::new(config).await?;
    let progress = Progress::new();
    match command {
        Command::Run {
            range,
            dvc_file,
            version_file,
            ..
        } => {
            let done = run_all(
                &ctx,
                RunInput {
                    ingest: range.request()?,
                    trigger: None,
                },
                &progress,
            )
            .await;
            progress.clear();
            let done = done?;
            if let Some(path) = dvc_file {
                write_file(&path, done.transform.dvc.to_dvc_file().as_bytes())?;
                eprintln!("wrote {} (data version {})", path.display(), done.data_version);
            }
            if let Some(path) = version_file {
                write_file(&path, done.model_version.as_bytes())?;
            }
            output::print_run_summary(&ctx, &done, out.json);
            out.emit(&done, |_| {})
        }
        Command::Promote { range, actor, .. } => {
            let input = ReleaseInput {
                run: RunInput {
                    ingest: range.request()?,
                    trigger: None,
                },
                actor: Some(actor.unwrap_or_else(|| ctx.config.provenance.actor.clone())),
            };
            let done = release(&ctx, input, &progress).await;
            progress.clear();
            let done = output::with_report(&ctx, done, out).await?;
            if let Some(md) = &done.promote.markdown {
                output::show_report(&ctx, md, out).await;
            }
            output::print_promoted(&ctx, &done.promote, out.json);
            out.emit(&done, |_| {})
        }
    }
}

/// Every selected location, several at a time: a table instead of one run's summary.
async fn run_fleet(
    command: Command,
    sites: Vec<std::sync::Arc<rps_core::fleet::Site>>,
    concurrency: usize,
    out: &Out,
) -> anyhow::Result<()> {
    match command {
        Command::Run {
            range,
            dvc_file,
            version_file,
            ..
        } => {
            anyhow::ensure!(
                dvc_file.is_none() && version_file.is_none(),
                "--dvc-file and --version-file write one location's run: add --location ID"
            );
            let request = range.request()?;
            fleet::run_each(
                "pipeline run",
                sites,
                concurrency,
                out,
                Some(request),
                move |_, ctx| {
                    let input = RunInput {
                        ingest: request,
                        trigger: None,
                    };
                    async move {
                        let done = run_all(&ctx, input, &Quiet).await?;
                        Ok(Finished {
                            model_version: Some(done.model_version.clone()),
                            summary: format!(
                                "{} @candidate on {} rows (6 h RMSE {})",
                                done.algorithm.split('(').next().unwrap_or(&done.algorithm),
                                done.rows,
                                done.metrics
                                    .get("rmse_h6")
                                    .map_or("–".into(), |v| format!("{v:.3} °C"))
                            ),
                            output: serde_json::to_value(&done).map_err(|e| {
                                rps_core::stage::StageError::Internal(format!("serialising the run: {e}"))
                            })?,
                        })
                    }
                },
            )
            .await
        }
        Command::Promote { range, actor, .. } => {
            // A staging API serves one model: several locations cannot share one.
            let mut staging: Vec<&str> = sites
                .iter()
                .filter_map(|s| s.config.gates.staging_url.as_ref().map(|u| u.as_str()))
                .collect();
            let with_staging = staging.len();
            staging.sort_unstable();
            staging.dedup();
            anyhow::ensure!(
                staging.len() == with_staging,
                "RPS_STAGING_URL names one staging API, which serves one location's model: give each location its own in its overrides, or unset it"
            );
            let request = range.request()?;
            fleet::run_each(
                "pipeline promote",
                sites,
                concurrency,
                out,
                Some(request),
                move |_, ctx| {
                    let input = ReleaseInput {
                        run: RunInput {
                            ingest: request,
                            trigger: None,
                        },
                        actor: Some(
                            actor
                                .clone()
                                .unwrap_or_else(|| ctx.config.provenance.actor.clone()),
                        ),
                    };
                    async move {
                        let done = release(&ctx, input, &Quiet).await?;
                        Ok(Finished {
                            model_version: Some(done.promote.version.clone()),
                            summary: format!(
                                "promoted: version {} is production (previous: {})",
                                done.promote.version,
                                done.promote.previous.as_deref().unwrap_or("none")
                            ),
                            output: serde_json::to_value(&done).map_err(|e| {
                                rps_core::stage::StageError::Internal(format!("serialising the release: {e}"))
                            })?,
                        })
                    }
                },
            )
            .await
        }
    }
}

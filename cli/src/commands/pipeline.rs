use std::path::PathBuf;

use rps_core::pipeline::{ReleaseInput, RunInput, promote as release, run as run_all};

use super::{Out, RangeArgs, context, write_file};
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
    let ctx = context().await?;
    let progress = Progress::new();
    match command {
        Command::Run {
            range,
            dvc_file,
            version_file,
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
        Command::Promote { range, actor } => {
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

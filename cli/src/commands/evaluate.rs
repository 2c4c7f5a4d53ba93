use std::path::PathBuf;

use rps_core::evaluate::{EvaluateInput, evaluate};
use rps_core::registry::ModelRef;
use rps_core::stage::StageError;

use super::{Out, context, write_file};
use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// The candidate: a version number or @alias
    #[arg(long, default_value = "@candidate")]
    candidate: ModelRef,
    /// Cut the hold-out from this dataset (default: the one reaching furthest)
    #[arg(long)]
    data_version: Option<String>,
    /// Also copy the report (JSON, Markdown, PNG) into this folder
    #[arg(long)]
    output: Option<PathBuf>,
}

pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
    let done = evaluate(
        &ctx,
        EvaluateInput {
            candidate: a.candidate,
            data_version: a.data_version,
            trigger: None,
        },
    )
    .await?;
    if let Some(dir) = &a.output {
        for k in [&done.report, &done.markdown, &done.chart] {
            write_file(&dir.join(k.file_name()), &ctx.store.get(k).await?)?;
        }
    }
    output::show_report(&ctx, &done.markdown, out).await;
    out.emit(&done, |o| {
        println!("report: {}", ctx.url(&o.report));
        if let Some(run) = &o.logged_to {
            println!("logged to the candidate's tracking run: {run}");
        }
    })?;
    if !done.passed {
        return Err(StageError::GatesFailed {
            version: done.candidate_version,
            failed: done.failed_gates,
        }
        .into());
    }
    Ok(())
}

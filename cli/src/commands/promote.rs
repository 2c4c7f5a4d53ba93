use rps_core::pipeline::gate_and_promote as promote;
use rps_core::promote::{PromoteInput, RollbackInput, rollback as roll_back};
use rps_core::registry::ModelRef;

use super::{Out, context, key};
use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// A version number or @alias
    reference: ModelRef,
    /// Reuse this stored gate report if it is still fresh
    #[arg(long)]
    report: Option<String>,
    #[arg(long)]
    data_version: Option<String>,
    /// Recorded as who promoted (default: $GITHUB_ACTOR or $USER)
    #[arg(long)]
    actor: Option<String>,
}

#[derive(clap::Args)]
pub struct RollbackArgs {
    /// Recorded as who rolled back (default: $GITHUB_ACTOR or $USER)
    #[arg(long)]
    actor: Option<String>,
}

pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
    let input = PromoteInput {
        candidate: a.reference,
        report: a.report.as_deref().map(key).transpose()?,
        data_version: a.data_version,
        actor: Some(a.actor.unwrap_or_else(|| ctx.config.provenance.actor.clone())),
        trigger: None,
    };
    let done = output::with_report(&ctx, promote(&ctx, input).await, out).await?;
    if let (Some(md), true) = (&done.markdown, done.gates_run) {
        output::show_report(&ctx, md, out).await;
    }
    output::print_promoted(&ctx, &done, out.json);
    out.emit(&done, |_| {})
}

pub async fn rollback(a: RollbackArgs, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
    let actor = Some(a.actor.unwrap_or_else(|| ctx.config.provenance.actor.clone()));
    let done = roll_back(&ctx, RollbackInput { actor }).await?;
    out.emit(&done, |o| {
        println!(
            "{}: production is version {} again (rolled back from {}); previous: {}",
            o.model_name,
            o.version,
            o.rolled_back,
            o.previous.as_deref().unwrap_or("none")
        );
        println!("legacy stages: {}", o.stages);
    })
}

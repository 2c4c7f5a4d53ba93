use rps_core::validate::{ValidateInput, validate};

use super::{Out, context, key};

#[derive(clap::Args)]
pub struct Args {
    /// The snapshot's key (default: the newest)
    snapshot: Option<String>,
}

pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
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

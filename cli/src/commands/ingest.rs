use super::{Out, RangeArgs, context};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    range: RangeArgs,
}

pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
    let done = rps_core::ingest::ingest(&ctx, a.range.request()?).await?;
    out.emit(&done, |o| println!("{} hours → {}", o.rows, ctx.url(&o.snapshot)))
}

use rps_core::train::{TrainInput, train};

use super::{Out, context};
use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// The dataset (default: the newest)
    #[arg(long)]
    data_version: Option<String>,
}

pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
    let input = match a.data_version {
        Some(data_version) => TrainInput {
            data_version,
            trigger: None,
            run: None,
        },
        None => TrainInput::newest(&ctx).await?,
    };
    let done = train(&ctx, input).await?;
    out.emit(&done, |o| {
        output::print_metrics(&o.metrics);
        println!("{} {} → {}", o.algorithm, o.model_version, ctx.url(&o.bundle));
    })
}

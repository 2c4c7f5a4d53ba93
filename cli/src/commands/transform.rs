use rps_core::transform::{TransformInput, transform};
use rps_core::validate::ValidateInput;

use super::{Out, context, key};

#[derive(clap::Args)]
pub struct Args {
    /// Snapshot keys to merge (default: the newest)
    snapshots: Vec<String>,
}

pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
    let snapshots = if a.snapshots.is_empty() {
        vec![ValidateInput::newest(&ctx).await?.snapshot]
    } else {
        a.snapshots
            .iter()
            .map(|s| key(s))
            .collect::<anyhow::Result<_>>()?
    };
    let done = transform(&ctx, TransformInput { snapshots }).await?;
    out.emit(&done, |o| {
        println!("{} rows, data version {} → {}", o.rows, o.data_version, o.dataset)
    })
}

use rps_core::registry::ModelRef;

use super::{Out, context};
use crate::output;

#[derive(clap::Args)]
pub struct Args {
    /// A version number or @alias
    reference: ModelRef,
}

pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
    let lineage = rps_core::lineage::trace(&ctx, &a.reference).await?;
    out.emit(&lineage, output::print_lineage)
}

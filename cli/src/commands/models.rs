use serde::Serialize;
use shared::registry::{self, ModelRef, VersionInfo};

use super::{Out, context};
use crate::output;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every version with its aliases, headline metrics and data version
    List,
    /// One version (a number or @alias): lineage, windows and all metrics
    Show { reference: ModelRef },
}

/// `rps models show --json`.
#[derive(Serialize)]
struct Shown<'a> {
    version: &'a VersionInfo,
    url: Option<String>,
    bundle_sha256: &'a str,
    bundle_bytes: usize,
    schema: &'a shared::bundle::ModelSchema,
    metadata: &'a shared::bundle::ModelMetadata,
}

pub async fn run(command: Command, out: &Out) -> anyhow::Result<()> {
    let ctx = context().await?;
    let name = &ctx.config.registry.model_name;
    match command {
        Command::List => {
            let versions = ctx.registry.list_versions(name).await?;
            out.emit(&versions, |v| {
                if v.is_empty() {
                    println!("{} has no versions of {name} yet", ctx.registry.describe());
                } else {
                    println!("{name} in {}", ctx.registry.describe());
                    println!("{}", output::versions_table(v));
                }
            })
        }
        Command::Show { reference } => {
            let loaded = registry::load(
                ctx.registry.as_ref(),
                name,
                &reference,
                &ctx.config.registry.cache_dir,
            )
            .await?;
            let url = ctx.registry.version_url(name, &loaded.info.version);
            let shown = Shown {
                version: &loaded.info,
                url: url.clone(),
                bundle_sha256: &loaded.sha256,
                bundle_bytes: loaded.bytes,
                schema: &loaded.bundle.schema,
                metadata: &loaded.bundle.metadata,
            };
            out.emit(&shown, |_| output::print_version(&loaded, url.as_deref()))
        }
    }
}

use rps_core::registry::{self, ModelRef, VersionInfo};
use serde::Serialize;

use super::{Out, context, write_file};
use crate::output;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Every version with its aliases, headline metrics and data version
    List,
    /// One version (a number or @alias): lineage, windows and all metrics
    Show { reference: ModelRef },
    /// Download one version's bundle, verified against its sha256 tag, to a file (and
    /// `<file>.sha256` beside it): what `RPS_MODEL_PATH` serves, e.g. baked into an image
    Pull {
        reference: ModelRef,
        #[arg(long)]
        output: std::path::PathBuf,
    },
    /// Point @staging at a version (a number or @alias; default: this deployment's
    /// candidate, `@candidate`, or `@staging-candidate` with RPS_MODEL_ALIAS=staging),
    /// as the staging deploy does; @production moves only through `rps promote`
    Stage {
        reference: Option<ModelRef>,
        /// Then smoke-test this API until it serves the staged version (`rps smoke`,
        /// waiting up to RPS_STAGING_WAIT_SECS)
        #[arg(long)]
        smoke: Option<String>,
    },
}

/// `rps models stage --json`: the version now at @staging (as before `--smoke` was
/// added), and what the smoke test of the API found.
#[derive(Serialize)]
struct Staged {
    #[serde(flatten)]
    version: rps_core::registry::VersionInfo,
    smoke: Option<rps_core::evaluate::smoke::Smoked>,
}

/// `rps models pull --json`.
#[derive(Serialize)]
struct Pulled {
    version: String,
    sha256: String,
    bytes: usize,
    path: String,
}

/// `rps models show --json`.
#[derive(Serialize)]
struct Shown<'a> {
    version: &'a VersionInfo,
    url: Option<String>,
    bundle_sha256: &'a str,
    bundle_bytes: usize,
    schema: &'a rps_core::bundle::ModelSchema,
    metadata: &'a rps_core::bundle::ModelMetadata,
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
        Command::Stage { reference, smoke } => {
            let reference = reference.unwrap_or_else(|| ModelRef::Alias(ctx.config.aliases().candidate));
            let info = ctx.registry.resolve(name, &reference).await?;
            ctx.registry
                .set_alias(name, rps_core::tags::aliases::STAGING, &info.version)
                .await?;
            out.text(&format!("{name}@staging → version {}", info.version));
            let smoke = match smoke {
                Some(url) => {
                    let wait = ctx.config.gates.staging_wait.as_secs();
                    Some(super::smoke::test(&url, Some(&info.version), wait, None).await?)
                }
                None => None,
            };
            let staged = Staged { version: info, smoke };
            out.emit(&staged, |s| {
                if let Some(smoked) = &s.smoke {
                    println!("{} serves version {}", smoked.url, smoked.model_version);
                }
            })
        }
        Command::Pull { reference, output } => {
            let info = ctx.registry.resolve(name, &reference).await?;
            let (bytes, _, sha) = registry::download_verified(ctx.registry.as_ref(), &info).await?;
            write_file(&output, &bytes)?;
            let file = output
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            write_file(
                &std::path::PathBuf::from(format!("{}.sha256", output.display())),
                format!("{sha}  {file}\n").as_bytes(),
            )?;
            let pulled = Pulled {
                version: info.version.clone(),
                sha256: sha.clone(),
                bytes: bytes.len(),
                path: output.display().to_string(),
            };
            out.emit(&pulled, |p| {
                println!(
                    "{name} version {} ({} bytes, sha256 {}) → {}",
                    p.version, p.bytes, p.sha256, p.path
                )
            })
        }
    }
}

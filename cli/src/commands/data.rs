use std::path::PathBuf;

use rps_core::dataset;
use rps_core::dvc::DataRef;

use super::{context, write_file};

#[derive(clap::Subcommand)]
pub enum Command {
    /// Write the .dvc file of a processed dataset (default: the newest)
    Version {
        #[arg(long)]
        data_version: Option<String>,
        /// Where to write it
        #[arg(long, default_value = "data.dvc")]
        output: PathBuf,
    },
    /// Fetch a dataset version from the DVC remote (no DVC needed) and verify its md5
    Pull {
        /// A data version (md5) or a .dvc file
        version: String,
        /// Where to write the dataset (default: the path in the .dvc file, or data/processed.parquet)
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    let ctx = context().await?;
    match command {
        Command::Version { data_version, output } => {
            let store = ctx.store.as_ref();
            let manifest = match data_version {
                Some(v) => dataset::manifest(store, &v).await?,
                None => dataset::newest(store).await?,
            };
            write_file(&output, manifest.dvc.to_dvc_file().as_bytes())?;
            println!(
                "wrote {} for data version {}",
                output.display(),
                manifest.data_version
            );
            println!(
                "DVC remote: {}  (set it in .dvc/config.local to `dvc pull`)",
                ctx.dvc.url()
            );
        }
        Command::Pull { version, output } => {
            let reference = DataRef::parse(&version)?;
            let bytes = ctx.dvc.pull(&reference.md5).await?;
            let target = output.unwrap_or(reference.path);
            write_file(&target, &bytes)?;
            println!(
                "{} ({} bytes, md5 {} verified)",
                target.display(),
                bytes.len(),
                reference.md5
            );
        }
    }
    Ok(())
}

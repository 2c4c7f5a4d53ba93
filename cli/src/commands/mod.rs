//! One module per command; what they share: the context, the output mode, the date
//! range arguments and file writing.

pub mod alerts;
pub mod config;
pub mod data;
pub mod doctor;
pub mod evaluate;
pub mod fleet;
pub mod ingest;
pub mod models;
pub mod pipeline;
pub mod promote;
pub mod sample;
pub mod serve;
pub mod smoke;
pub mod trace;
pub mod train;
pub mod transform;
pub mod validate;
pub mod verify;

use anyhow::Context as _;
use chrono::NaiveDate;
use rps_core::config::Config;
use rps_core::source::{DateRange, IngestRequest};
use rps_core::stage::Context;
use rps_core::store::ObjectKey;
use serde::Serialize;

/// How a command prints its outcome.
pub struct Out {
    /// One JSON object on the last line of stdout (`--json`).
    pub json: bool,
}

impl Out {
    /// The outcome: as JSON with `--json`, else as `human` prints it.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce(&T)) -> anyhow::Result<()> {
        if self.json {
            println!("{}", serde_json::to_string(value)?);
        } else {
            human(value);
        }
        Ok(())
    }

    /// Text that must not break the JSON contract: stderr with `--json`.
    pub fn text(&self, s: &str) {
        if self.json {
            eprintln!("{s}");
        } else {
            println!("{s}");
        }
    }
}

pub fn config() -> anyhow::Result<Config> {
    Config::from_env().context("invalid configuration")
}

/// The configuration with its secrets (the MLflow credentials from Secrets Manager
/// when `RPS_MLFLOW_SECRET_ID` names them).
pub async fn resolved_config() -> anyhow::Result<Config> {
    let mut config = config()?;
    rps_core::secrets::resolve(&mut config).await?;
    Ok(config)
}

/// The context a one-location command runs in: the resolved configuration of
/// `--location`'s location (with `RPS_LOCATIONS`), and the ports it names.
pub async fn context() -> anyhow::Result<Context> {
    let config = fleet::one(resolved_config().await?).await?;
    Ok(Context::new(config).await?)
}

pub fn key(s: &str) -> anyhow::Result<ObjectKey> {
    ObjectKey::new(s).with_context(|| format!("{s:?} is not an object key"))
}

/// Writes a file atomically (a temporary file renamed into place), creating folders.
pub fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// What to fetch: a date range, the live endpoint, or the last year.
#[derive(clap::Args)]
pub struct RangeArgs {
    /// First day (UTC) to fetch from the archive
    #[arg(long, requires = "end", conflicts_with = "live")]
    start: Option<NaiveDate>,
    /// Last day (UTC) to fetch from the archive
    #[arg(long, requires = "start", conflicts_with = "live")]
    end: Option<NaiveDate>,
    /// Fetch the latest hours from the forecast endpoint instead (past_days)
    #[arg(long)]
    live: bool,
}

impl RangeArgs {
    /// Dates given → that range; `--live` → the forecast endpoint; neither → the last
    /// 365 days of the archive, ending five days ago (the archive's usual delay).
    pub fn request(&self) -> anyhow::Result<IngestRequest> {
        if self.live {
            return Ok(IngestRequest::Live { past_days: None });
        }
        match (self.start, self.end) {
            (Some(s), Some(e)) => Ok(IngestRequest::backfill(
                DateRange::new(s, e).map_err(anyhow::Error::msg)?,
            )),
            _ => Ok(IngestRequest::recent()),
        }
    }
}

//! `rps`: every pipeline stage, in-process, on one machine.

mod output;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use chrono::{Duration, NaiveDate, Utc};
use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use shared::config::Config;
use shared::pipeline::{self, Context, StageError};
use shared::registry::{self, ModelRef};
use shared::source::{DateRange, IngestRequest};
use shared::store::ObjectKey;

/// The recorded station year shipped with rps, served by `rps sample serve`.
const SAMPLE: &[u8] = include_bytes!("../../data/sample/open-meteo-archive-sandpoint-ak-2023.json");

#[derive(Parser)]
#[command(
    name = "rps",
    version,
    about = "rps: a real-time predictive system for hourly temperature"
)]
#[command(
    after_help = "Configuration comes from the environment (RPS_STORE, RPS_LATITUDE, \
RPS_LONGITUDE, OPEN_METEO_ARCHIVE_URL, OPEN_METEO_FORECAST_URL, ...); see the README."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch hourly weather from Open-Meteo and store the raw snapshot
    Ingest {
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long)]
        json: bool,
    },
    /// Run the data quality gate on a snapshot (default: the newest)
    Validate {
        snapshot: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Build the processed dataset and its profile from validated snapshots (default: the newest)
    Transform {
        snapshots: Vec<String>,
        #[arg(long)]
        json: bool,
    },
    /// Train, select and score models on a processed dataset (default: the newest)
    Train {
        #[arg(long)]
        data_version: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run stages end to end
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Registered model versions
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Serve the shipped sample year in Open-Meteo's shape (offline runs)
    Sample {
        #[command(subcommand)]
        command: SampleCommand,
    },
    /// Print the configuration read from the environment
    Config,
}

#[derive(Subcommand)]
enum PipelineCommand {
    /// ingest → validate → transform → train
    Run {
        #[command(flatten)]
        range: RangeArgs,
        /// Print the summary as one JSON object on the last line of stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Every version with its aliases, headline metrics and data version
    List {
        #[arg(long)]
        json: bool,
    },
    /// One version (a number or @alias): lineage, windows and all metrics
    Show {
        reference: ModelRef,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SampleCommand {
    /// Answer /v1/archive and /v1/forecast from the recording
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// 0 picks a free port
        #[arg(long, default_value_t = 8089)]
        port: u16,
        /// Write the bound port to this file once listening
        #[arg(long)]
        port_file: Option<PathBuf>,
        /// Serve this Open-Meteo JSON file instead of the shipped sample
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Args)]
struct RangeArgs {
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
    fn request(&self) -> anyhow::Result<IngestRequest> {
        if self.live {
            return Ok(IngestRequest::Live { past_days: None });
        }
        let range = match (self.start, self.end) {
            (Some(s), Some(e)) => DateRange::new(s, e).map_err(anyhow::Error::msg)?,
            _ => {
                let end = Utc::now().date_naive() - Duration::days(5);
                DateRange::new(end - Duration::days(364), end).map_err(anyhow::Error::msg)?
            }
        };
        Ok(IngestRequest::backfill(range))
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    output::init_logging();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<StageError>().map_or(1, StageError::exit_code);
            eprintln!("error: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}

fn context() -> anyhow::Result<Context> {
    let config = Config::from_env().context("invalid configuration")?;
    Ok(Context::new(config)?)
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

fn key(s: &str) -> anyhow::Result<ObjectKey> {
    ObjectKey::new(s).with_context(|| format!("{s:?} is not an object key"))
}

async fn newest_snapshot(ctx: &Context) -> anyhow::Result<ObjectKey> {
    match pipeline::list_snapshots(ctx).await?.pop() {
        Some(k) => Ok(k),
        None => bail!(
            "the store {} holds no snapshot yet; run `rps ingest` first",
            ctx.config.store
        ),
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Ingest { range, json } => {
            let ctx = context()?;
            let out = pipeline::ingest(&ctx, range.request()?).await?;
            if json {
                print_json(&out)?;
            } else {
                println!("{} hours → {}", out.rows, ctx.store.url(&out.snapshot));
            }
        }
        Command::Validate { snapshot, json } => {
            let ctx = context()?;
            let snapshot = match snapshot {
                Some(s) => key(&s)?,
                None => newest_snapshot(&ctx).await?,
            };
            let out = pipeline::validate(&ctx, pipeline::ValidateInput { snapshot }).await?;
            if json {
                print_json(&out)?;
            } else {
                println!(
                    "passed {} checks ({} warnings) → {}",
                    out.checks,
                    out.warnings.len(),
                    ctx.store.url(&out.report)
                );
            }
        }
        Command::Transform { snapshots, json } => {
            let ctx = context()?;
            let snapshots = if snapshots.is_empty() {
                vec![newest_snapshot(&ctx).await?]
            } else {
                snapshots.iter().map(|s| key(s)).collect::<anyhow::Result<_>>()?
            };
            let out = pipeline::transform(&ctx, pipeline::TransformInput { snapshots }).await?;
            if json {
                print_json(&out)?;
            } else {
                println!(
                    "{} rows, data version {} → {}",
                    out.rows,
                    out.data_version,
                    ctx.store.url(&out.dataset)
                );
            }
        }
        Command::Train { data_version, json } => {
            let ctx = context()?;
            let data_version = match data_version {
                Some(v) => v,
                None => pipeline::newest_dataset(&ctx)
                    .await?
                    .context("the store holds no processed dataset yet; run `rps transform` first")?,
            };
            let out = pipeline::train(&ctx, pipeline::TrainInput { data_version }).await?;
            if json {
                print_json(&out)?;
            } else {
                output::print_metrics(&out.metrics);
                println!(
                    "{} {} → {}",
                    out.algorithm,
                    out.model_version,
                    ctx.store.url(&out.bundle)
                );
            }
        }
        Command::Pipeline {
            command: PipelineCommand::Run { range, json },
        } => {
            let ctx = context()?;
            let request = range.request()?;
            let progress = output::Progress::new();
            let out = pipeline::run(&ctx, pipeline::RunInput { ingest: request }, &progress).await;
            progress.clear();
            let out = out?;
            output::print_run_summary(&ctx, &out, json);
            if json {
                print_json(&out)?;
            }
        }
        Command::Sample {
            command:
                SampleCommand::Serve {
                    host,
                    port,
                    port_file,
                    file,
                },
        } => {
            let body = match &file {
                Some(f) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
                None => SAMPLE.to_vec(),
            };
            let recording = shared::replay::Recording::parse(&body).context("the recording is not usable")?;
            let (addr, handle) = shared::replay::serve(recording, SocketAddr::new(host, port))
                .await
                .with_context(|| format!("cannot listen on {host}:{port}"))?;
            if let Some(pf) = port_file {
                std::fs::write(&pf, addr.port().to_string())
                    .with_context(|| format!("writing {}", pf.display()))?;
            }
            println!("serving the Open-Meteo replay on http://{addr} (/v1/archive, /v1/forecast)");
            tokio::select! {
                r = handle => r??,
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Command::Models { command } => {
            let ctx = context()?;
            let name = &ctx.config.registry.model_name;
            match command {
                ModelsCommand::List { json } => {
                    let versions = ctx.registry.list_versions(name).await?;
                    if json {
                        print_json(&versions)?;
                    } else if versions.is_empty() {
                        println!("{} has no versions of {name} yet", ctx.registry.describe());
                    } else {
                        println!("{name} in {}", ctx.registry.describe());
                        println!("{}", output::versions_table(&versions));
                    }
                }
                ModelsCommand::Show { reference, json } => {
                    let loaded = registry::load(
                        ctx.registry.as_ref(),
                        name,
                        &reference,
                        &ctx.config.registry.cache_dir,
                    )
                    .await?;
                    let url = ctx.registry.version_url(name, &loaded.info.version);
                    if json {
                        print_json(&serde_json::json!({
                            "version": loaded.info,
                            "url": url,
                            "bundle_sha256": loaded.sha256,
                            "bundle_bytes": loaded.bytes,
                            "schema": loaded.bundle.schema,
                            "metadata": loaded.bundle.metadata,
                        }))?;
                    } else {
                        output::print_version(&loaded, url.as_deref());
                    }
                }
            }
        }
        Command::Config => {
            let config = Config::from_env().context("invalid configuration")?;
            println!("{}", serde_json::to_string_pretty(&config)?);
        }
    }
    Ok(())
}

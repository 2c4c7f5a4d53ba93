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
    /// Run every promotion gate on a candidate against production; write the report
    /// (exit 4 when a gate fails)
    Evaluate {
        /// The candidate: a version number or @alias
        #[arg(long, default_value = "@candidate")]
        candidate: ModelRef,
        /// Cut the hold-out from this dataset (default: the one reaching furthest)
        #[arg(long)]
        data_version: Option<String>,
        /// Also copy the report (JSON, Markdown, PNG) into this folder
        #[arg(long)]
        output: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Move @production to a candidate if every gate passes; the old one becomes
    /// @previous (exit 4 when refused, 5 when another promotion won)
    Promote {
        /// A version number or @alias
        reference: ModelRef,
        /// Reuse this stored gate report if it is still fresh
        #[arg(long)]
        report: Option<String>,
        #[arg(long)]
        data_version: Option<String>,
        /// Recorded as who promoted (default: $GITHUB_ACTOR or $USER)
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Move @production back to @previous
    Rollback {
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run stages end to end
    Pipeline {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Data versions (DVC)
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// The lineage of a model version: run, git commit, data version, raw snapshots
    Trace {
        /// A version number or @alias
        reference: ModelRef,
        #[arg(long)]
        json: bool,
    },
    /// Serve the prediction API and web page (the model at RPS_MODEL_NAME@RPS_MODEL_ALIAS)
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        host: std::net::IpAddr,
        /// 0 picks a free port
        #[arg(long, default_value_t = 8080)]
        port: u16,
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
        /// Also write the processed dataset's .dvc file here (e.g. data.dvc)
        #[arg(long)]
        dvc_file: Option<PathBuf>,
        /// Print the summary as one JSON object on the last line of stdout
        #[arg(long)]
        json: bool,
    },
    /// The release flow: train a candidate, deploy it to @staging, run the gates (smoke
    /// test on RPS_STAGING_URL when set) and promote it on success
    Promote {
        #[command(flatten)]
        range: RangeArgs,
        #[arg(long)]
        actor: Option<String>,
        /// Print the outcome as one JSON object on the last line of stdout
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum DataCommand {
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

async fn context() -> anyhow::Result<Context> {
    let config = Config::from_env().context("invalid configuration")?;
    Ok(Context::new(config).await?)
}

fn print_json<T: Serialize>(v: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(v)?);
    Ok(())
}

/// Writes a file atomically (a temporary file renamed into place), creating folders.
fn write_file(path: &std::path::Path, bytes: &[u8]) -> anyhow::Result<()> {
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

/// Who is promoting, for the version tags: the CI actor or the local user.
fn actor(given: Option<String>) -> String {
    if let Some(a) = given {
        return a;
    }
    let who = std::env::var("GITHUB_ACTOR")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    match std::env::var("GITHUB_RUN_ID") {
        Ok(run) => format!("{who} (GitHub Actions run {run})"),
        Err(_) => format!("{who} (rps CLI)"),
    }
}

/// Prints a stored gate report's Markdown (to stderr with `--json`, so stdout stays one
/// JSON object).
async fn show_report(ctx: &Context, markdown: &ObjectKey, json: bool) {
    match ctx.store.get(markdown).await {
        Ok(md) => {
            let text = String::from_utf8_lossy(&md);
            if json {
                eprintln!("{text}");
            } else {
                println!("{text}");
            }
        }
        Err(e) => eprintln!("(the report's Markdown could not be read: {e})"),
    }
}

/// A refused promotion still shows its report before the error.
async fn refused<T>(ctx: &Context, r: Result<T, StageError>, json: bool) -> anyhow::Result<T> {
    if let Err(StageError::PromotionRefused { markdown, .. }) = &r {
        show_report(ctx, markdown, json).await;
    }
    Ok(r?)
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
            let ctx = context().await?;
            let out = pipeline::ingest(&ctx, range.request()?).await?;
            if json {
                print_json(&out)?;
            } else {
                println!("{} hours → {}", out.rows, ctx.store.url(&out.snapshot));
            }
        }
        Command::Validate { snapshot, json } => {
            let ctx = context().await?;
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
            let ctx = context().await?;
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
                    out.rows, out.data_version, out.dataset
                );
            }
        }
        Command::Train { data_version, json } => {
            let ctx = context().await?;
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
            command:
                PipelineCommand::Run {
                    range,
                    dvc_file,
                    json,
                },
        } => {
            let ctx = context().await?;
            let request = range.request()?;
            let progress = output::Progress::new();
            let out = pipeline::run(&ctx, pipeline::RunInput { ingest: request }, &progress).await;
            progress.clear();
            let out = out?;
            if let Some(path) = dvc_file {
                write_file(&path, out.transform.dvc.to_dvc_file().as_bytes())?;
                eprintln!("wrote {} (data version {})", path.display(), out.data_version);
            }
            output::print_run_summary(&ctx, &out, json);
            if json {
                print_json(&out)?;
            }
        }
        Command::Pipeline {
            command:
                PipelineCommand::Promote {
                    range,
                    actor: who,
                    json,
                },
        } => {
            let ctx = context().await?;
            let request = range.request()?;
            let progress = output::Progress::new();
            let out = pipeline::release(
                &ctx,
                pipeline::ReleaseInput {
                    run: pipeline::RunInput { ingest: request },
                    actor: Some(actor(who)),
                },
                &progress,
            )
            .await;
            progress.clear();
            let out = refused(&ctx, out, json).await?;
            if let Some(md) = &out.promote.markdown {
                show_report(&ctx, md, json).await;
            }
            output::print_promoted(&ctx, &out.promote, json);
            if json {
                print_json(&out)?;
            }
        }
        Command::Evaluate {
            candidate,
            data_version,
            output: dir,
            json,
        } => {
            let ctx = context().await?;
            let out = pipeline::evaluate(
                &ctx,
                pipeline::EvaluateInput {
                    candidate,
                    data_version,
                },
            )
            .await?;
            if let Some(dir) = &dir {
                for k in [&out.report, &out.markdown, &out.chart] {
                    write_file(&dir.join(k.file_name()), &ctx.store.get(k).await?)?;
                }
            }
            show_report(&ctx, &out.markdown, json).await;
            if json {
                print_json(&out)?;
            } else {
                println!("report: {}", ctx.store.url(&out.report));
                if let Some(run) = &out.logged_to {
                    println!("logged to the candidate's MLflow run: {run}");
                }
            }
            if !out.passed {
                return Err(StageError::GatesFailed {
                    version: out.candidate_version,
                    failed: out.failed_gates,
                }
                .into());
            }
        }
        Command::Promote {
            reference,
            report,
            data_version,
            actor: who,
            json,
        } => {
            let ctx = context().await?;
            let report = report.as_deref().map(key).transpose()?;
            let out = pipeline::promote(
                &ctx,
                pipeline::PromoteInput {
                    candidate: reference,
                    report,
                    data_version,
                    actor: Some(actor(who)),
                },
            )
            .await;
            let out = refused(&ctx, out, json).await?;
            if let (Some(md), true) = (&out.markdown, out.gates_run) {
                show_report(&ctx, md, json).await;
            }
            output::print_promoted(&ctx, &out, json);
            if json {
                print_json(&out)?;
            }
        }
        Command::Rollback { actor: who, json } => {
            let ctx = context().await?;
            let out = pipeline::rollback(
                &ctx,
                pipeline::RollbackInput {
                    actor: Some(actor(who)),
                },
            )
            .await?;
            if json {
                print_json(&out)?;
            } else {
                println!(
                    "{}: production is version {} again (rolled back from {}); previous: {}",
                    out.model_name,
                    out.version,
                    out.rolled_back,
                    out.previous.as_deref().unwrap_or("none")
                );
                println!("legacy stages: {}", out.stages);
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
        Command::Data { command } => {
            let ctx = context().await?;
            match command {
                DataCommand::Version { data_version, output } => {
                    let version = match data_version {
                        Some(v) => v,
                        None => pipeline::newest_dataset(&ctx)
                            .await?
                            .context("the store holds no processed dataset yet; run `rps transform` first")?,
                    };
                    let manifest: pipeline::DatasetManifest = shared::store::get_json(
                        ctx.store.as_ref(),
                        &shared::layout::dataset_manifest(&version)?,
                    )
                    .await
                    .with_context(|| format!("no dataset with data version {version}"))?;
                    write_file(&output, manifest.dvc.to_dvc_file().as_bytes())?;
                    println!("wrote {} for data version {version}", output.display());
                    println!(
                        "DVC remote: {}  (set it in .dvc/config.local to `dvc pull`)",
                        ctx.dvc.url()
                    );
                }
                DataCommand::Pull { version, output } => {
                    let (md5, default_path) = if shared::dvc::is_md5(&version) {
                        (version, PathBuf::from(shared::dvc::DEFAULT_OUT_PATH))
                    } else {
                        let path = PathBuf::from(&version);
                        let text = std::fs::read_to_string(&path).with_context(|| {
                            format!("{version:?} is neither a data version (md5) nor a readable .dvc file")
                        })?;
                        let out = shared::dvc::DvcOut::parse_dvc_file(&text)?;
                        let base = path.parent().unwrap_or(std::path::Path::new(""));
                        (out.md5, base.join(out.path))
                    };
                    let bytes = ctx.dvc.pull(&md5).await?;
                    let target = output.unwrap_or(default_path);
                    write_file(&target, &bytes)?;
                    println!("{} ({} bytes, md5 {md5} verified)", target.display(), bytes.len());
                }
            }
        }
        Command::Trace { reference, json } => {
            let ctx = context().await?;
            let lineage = shared::lineage::trace(&ctx, &reference).await?;
            if json {
                print_json(&lineage)?;
            } else {
                output::print_lineage(&lineage);
            }
        }
        Command::Models { command } => {
            let ctx = context().await?;
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
        Command::Serve { host, port } => {
            let config = Config::from_env().context("invalid configuration")?;
            let (_, app) = shared::serve::app(config).await?;
            shared::serve::serve_http(app, SocketAddr::new(host, port))
                .await
                .with_context(|| format!("cannot serve on {host}:{port}"))?;
        }
        Command::Config => {
            let config = Config::from_env().context("invalid configuration")?;
            println!("{}", serde_json::to_string_pretty(&config)?);
        }
    }
    Ok(())
}

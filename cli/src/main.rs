//! `rps`: every pipeline stage, in-process, on one machine. Each command is one file in
//! `commands/`: parse → call the library → print.

mod commands;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rps_core::stage::{ErrorKind, StageError};

use self::commands::Out;

#[derive(Parser)]
#[command(
    name = "rps",
    version,
    about = "rps: a real-time predictive system for hourly temperature"
)]
#[command(
    after_help = "Configuration comes from the environment (RPS_STORE, RPS_LATITUDE, \
RPS_LONGITUDE, OPEN_METEO_ARCHIVE_URL, OPEN_METEO_FORECAST_URL, ...); see docs/configuration.md."
)]
struct Cli {
    /// Print the outcome as one JSON object on the last line of stdout
    #[arg(long, global = true)]
    json: bool,
    /// With RPS_LOCATIONS: the location to act on (`rps pipeline` and `rps verify`
    /// default to every location; other commands need one)
    #[arg(long, global = true, value_name = "ID")]
    location: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fetch hourly weather from Open-Meteo and store the raw snapshot
    Ingest(commands::ingest::Args),
    /// Run the data quality gate on a snapshot (default: the newest)
    Validate(commands::validate::Args),
    /// Build the processed dataset and its profile from validated snapshots (default: the newest)
    Transform(commands::transform::Args),
    /// Train, select and score models on a processed dataset (default: the newest)
    Train(commands::train::Args),
    /// Run every promotion gate on a candidate against production; write the report
    /// (exit 4 when a gate fails)
    Evaluate(commands::evaluate::Args),
    /// Move @production to a candidate if every gate passes; the old one becomes
    /// @previous (exit 4 when refused, 5 when another promotion won)
    Promote(commands::promote::Args),
    /// Move @production back to @previous
    Rollback(commands::promote::RollbackArgs),
    /// Run stages end to end
    Pipeline {
        #[command(subcommand)]
        command: commands::pipeline::Command,
    },
    /// Data versions (DVC)
    Data {
        #[command(subcommand)]
        command: commands::data::Command,
    },
    /// The lineage of a model version: run, git commit, data version, raw snapshots
    Trace(commands::trace::Args),
    /// Score the logged forecasts against the observations since, issue the scheduled
    /// forecast, and say whether a retrain is needed (--retrain runs it)
    Verify(commands::verify::Args),
    /// Serve the prediction API and web page (the model at RPS_MODEL_NAME@RPS_MODEL_ALIAS)
    Serve(commands::serve::Args),
    /// Smoke-test a running API: /health, /ready and a /predict, waiting until it
    /// serves --expect-version (the staging wait)
    Smoke(commands::smoke::Args),
    /// Registered model versions
    Models {
        #[command(subcommand)]
        command: commands::models::Command,
    },
    /// Serve the shipped sample year in Open-Meteo's shape (offline runs)
    Sample {
        #[command(subcommand)]
        command: commands::sample::Command,
    },
    /// Print the configuration read from the environment
    Config(commands::config::Args),
    /// Probe the store, the DVC remote and MLflow (credentials, version, aliases,
    /// artifacts): what works and what is missing (exit 1 on a blocker)
    Doctor,
    /// Alertmanager's file receiver: append every alert it sends to a JSON-lines file
    Alerts {
        #[command(subcommand)]
        command: commands::alerts::Command,
    },
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
    let out = Out { json: cli.json };
    commands::fleet::select(cli.location.clone());
    match rt.block_on(run(cli.command, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(n) = e.downcast_ref::<commands::fleet::NotAllDone>() {
                eprintln!("error: {n}");
                return ExitCode::from(n.exit_code);
            }
            let stage = e.downcast_ref::<StageError>();
            eprintln!("error: {e:#}");
            // A bad locations file is the configuration's fault, as a bad variable is.
            let fleet = e
                .downcast_ref::<rps_core::fleet::FleetError>()
                .map(|_| ErrorKind::Configuration);
            match stage.map(StageError::kind).or(fleet) {
                Some(ErrorKind::External) => eprintln!("(an outside system failed: retrying may help)"),
                Some(ErrorKind::Configuration) => {
                    eprintln!(
                        "(the configuration or a permission is wrong: retrying will not help; `rps doctor` checks them)"
                    )
                }
                Some(ErrorKind::Internal) => {
                    eprintln!("(this is a bug in rps: please report it with the log above)")
                }
                _ => {}
            }
            ExitCode::from(stage.map_or(1, StageError::exit_code) as u8)
        }
    }
}

async fn run(command: Command, out: &Out) -> anyhow::Result<()> {
    use commands::*;
    match command {
        Command::Ingest(a) => ingest::run(a, out).await,
        Command::Validate(a) => validate::run(a, out).await,
        Command::Transform(a) => transform::run(a, out).await,
        Command::Train(a) => train::run(a, out).await,
        Command::Evaluate(a) => evaluate::run(a, out).await,
        Command::Promote(a) => promote::run(a, out).await,
        Command::Rollback(a) => promote::rollback(a, out).await,
        Command::Pipeline { command } => pipeline::run(command, out).await,
        Command::Data { command } => data::run(command).await,
        Command::Trace(a) => trace::run(a, out).await,
        Command::Verify(a) => verify::run(a, out).await,
        Command::Serve(a) => serve::run(a).await,
        Command::Smoke(a) => smoke::run(a, out).await,
        Command::Models { command } => models::run(command, out).await,
        Command::Sample { command } => sample::run(command).await,
        Command::Config(a) => config::run(a),
        Command::Doctor => doctor::run(out).await,
        Command::Alerts { command } => alerts::run(command).await,
    }
}

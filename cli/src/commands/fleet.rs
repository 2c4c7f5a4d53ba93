//! Many locations on one machine (`RPS_LOCATIONS`): a command runs on every location,
//! or on `--location ID`, several at a time (`RPS_LOCATION_CONCURRENCY`), each on a
//! context of its own, with a progress bar, one line per location as it ends, and a
//! table of outcomes. One location's failure never stops another's run.

use std::future::Future;
use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};

use comfy_table::{Table, presets};
use indicatif::{ProgressBar, ProgressStyle};
use rps_core::config::Config;
use rps_core::fleet::{Fleet, Site};
use rps_core::source::{Batch, IngestRequest};
use rps_core::stage::{Context, ErrorKind, StageError};
use serde::Serialize;
use tokio::task::JoinSet;
use tracing::Instrument;

use super::Out;

/// The global `--location ID`, set once from the command line.
static SELECTED: OnceLock<Option<String>> = OnceLock::new();

pub fn select(location: Option<String>) {
    let _ = SELECTED.set(location);
}

fn selected() -> Option<&'static str> {
    SELECTED.get().and_then(|l| l.as_deref())
}

async fn load(config: &Config) -> anyhow::Result<Fleet> {
    Ok(Fleet::load(config, &|k: &str| std::env::var(k).ok()).await?)
}

/// What a fleet command (`rps pipeline`, `rps verify`) runs on.
pub enum Selected {
    /// One location: the single-location command on its configuration (its summary,
    /// report and exit status). Without `RPS_LOCATIONS`, the deployment's, as always.
    One(Box<Config>),
    /// Several: each on its own context ([`run_each`]).
    Many(Vec<Arc<Site>>),
}

/// `--location`'s location, else every one (`--location default` names the one location
/// of a deployment without `RPS_LOCATIONS`).
pub async fn sites(config: Config) -> anyhow::Result<Selected> {
    let fleet = load(&config).await?;
    if !fleet.configured {
        if let Some(id) = selected() {
            fleet.get(id)?;
        }
        return Ok(Selected::One(Box::new(config)));
    }
    let mut sites = fleet.select(selected())?;
    Ok(match sites.len() {
        1 => Selected::One(Box::new(sites.remove(0).config.clone())),
        _ => Selected::Many(sites),
    })
}

/// What `rps serve` serves: every location, or `--location`'s alone (as a deployment
/// of one location: its paths, model name and answers).
pub async fn serving(config: Config) -> anyhow::Result<(Config, Fleet)> {
    let fleet = load(&config).await?;
    match selected() {
        None => Ok((config, fleet)),
        Some(id) => {
            let site = fleet.get(id)?.config.clone();
            let one = Fleet::single(&site);
            Ok((site, one))
        }
    }
}

/// The configuration a one-location command runs on: `--location`'s (required when
/// `RPS_LOCATIONS` lists more than one), else the deployment's.
pub async fn one(config: Config) -> anyhow::Result<Config> {
    let fleet = load(&config).await?;
    let site = match selected() {
        Some(id) => fleet.get(id)?,
        None if fleet.sites.len() == 1 => &fleet.sites[0],
        None => anyhow::bail!(
            "RPS_LOCATIONS lists {} locations ({}): name one with --location ID",
            fleet.sites.len(),
            fleet
                .sites
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    Ok(site.config.clone())
}

/// How one location's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The command did what it was asked (trained, promoted, verified).
    Done,
    /// A gate refused the data or the model: production is unchanged.
    Refused,
    Failed,
}

/// What a location's job reports when it succeeds.
pub struct Finished {
    pub model_version: Option<String>,
    /// One line for the table.
    pub summary: String,
    pub output: serde_json::Value,
}

#[derive(Serialize)]
pub struct LocationResult {
    pub location: String,
    pub name: String,
    pub model_name: String,
    pub outcome: Outcome,
    pub model_version: Option<String>,
    pub summary: String,
    /// The command's output for this location (its `--json` object without locations).
    pub output: Option<serde_json::Value>,
    /// Why it was refused or failed.
    pub error: Option<String>,
    /// Its exit status alone.
    pub exit_code: i32,
}

/// `--json` with locations: every location's result, in the file's order.
#[derive(Serialize)]
pub struct FleetOutput {
    pub command: &'static str,
    pub locations: Vec<LocationResult>,
    pub done: usize,
    pub refused: usize,
    pub failed: usize,
}

/// Some location was refused (exit 4) or failed (the first failure's status, else 1):
/// the command's exit status.
#[derive(Debug)]
pub struct NotAllDone {
    pub failed: usize,
    pub refused: usize,
    pub total: usize,
    pub exit_code: u8,
}

impl std::fmt::Display for NotAllDone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "of {} location(s), {} failed and {} were refused: see the table above",
            self.total, self.failed, self.refused
        )
    }
}

impl std::error::Error for NotAllDone {}

/// Runs `job` on each site's own context, `concurrency` at a time. With `ingest`, the
/// sites' fetches of it are batched into as few Open-Meteo calls as
/// `RPS_OPEN_METEO_BATCH` allows ([`rps_core::source::Batch`]).
pub async fn run_each<F, Fut>(
    command: &'static str,
    sites: Vec<Arc<Site>>,
    concurrency: usize,
    out: &Out,
    ingest: Option<IngestRequest>,
    job: F,
) -> anyhow::Result<()>
where
    F: Fn(Arc<Site>, Context) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<Finished, StageError>> + Send + 'static,
{
    let total = sites.len();
    let batch = match (ingest, sites.first()) {
        (Some(request), Some(first)) if total > 1 => {
            let places: Vec<_> = sites.iter().map(|s| s.location).collect();
            let source = &first.config.source;
            match Batch::new(source, request, &places, source.batch) {
                Ok(b) => {
                    tracing::info!(calls = b.calls(), locations = total, "Open-Meteo calls batched");
                    Some(b)
                }
                Err(e) => {
                    tracing::warn!("fetching each location alone: {e}");
                    None
                }
            }
        }
        _ => None,
    };
    let bar = progress_bar(total, command);
    let mut queue = sites.into_iter().enumerate();
    let mut running = JoinSet::new();
    // Which location each task runs, to report one that panicked.
    let mut tasks: std::collections::HashMap<tokio::task::Id, (usize, Arc<Site>)> =
        std::collections::HashMap::new();
    let mut results: Vec<Option<LocationResult>> = (0..total).map(|_| None).collect();
    let mut ended = 0;
    loop {
        // In the file's order, `concurrency` at a time.
        while running.len() < concurrency.max(1) {
            let Some((index, site)) = queue.next() else { break };
            let job = job.clone();
            let span = tracing::info_span!("location", id = %site.id);
            let task = site.clone();
            let handle = running.spawn(
                {
                    let batch = batch.clone();
                    async move {
                        match Context::new(task.config.clone()).await {
                            Ok(ctx) => {
                                let ctx = match batch {
                                    Some(b) => {
                                        let alone = ctx.source.clone();
                                        ctx.with_source(Arc::new(b.source(index, alone)))
                                    }
                                    None => ctx,
                                };
                                job(task, ctx).await
                            }
                            Err(e) => Err(e),
                        }
                    }
                }
                .instrument(span),
            );
            tasks.insert(handle.id(), (index, site));
        }
        let Some(joined) = running.join_next_with_id().await else {
            break;
        };
        let (id, result) = match joined {
            Ok((id, result)) => (id, result),
            // A panic is a bug at that location; the others go on.
            Err(e) => (
                e.id(),
                Err(StageError::Internal(format!(
                    "the location's run {}",
                    if e.is_panic() { "panicked" } else { "was cancelled" }
                ))),
            ),
        };
        let (index, site) = tasks.remove(&id).expect("every task is a location's");
        let r = location_result(&site, result);
        ended += 1;
        let line = format!(
            "{ended:>w$}/{total} {}: {}{}",
            site.id,
            if r.error.is_some() {
                format!("{}: ", r.outcome.word())
            } else {
                String::new()
            },
            r.summary,
            w = total.to_string().len()
        );
        match &bar {
            Some(bar) => {
                bar.println(&line);
                bar.inc(1);
            }
            None => eprintln!("{line}"),
        }
        results[index] = Some(r);
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let locations: Vec<LocationResult> = results.into_iter().flatten().collect();
    let count = |o: Outcome| locations.iter().filter(|r| r.outcome == o).count();
    let output = FleetOutput {
        command,
        done: count(Outcome::Done),
        refused: count(Outcome::Refused),
        failed: count(Outcome::Failed),
        locations,
    };
    out.text(&table(&output));
    out.emit(&output, |_| {})?;
    if output.failed + output.refused == 0 {
        return Ok(());
    }
    // The first failure's status; else 3 when only the data gate refused, else 4.
    let exit_code = match output.locations.iter().find(|r| r.outcome == Outcome::Failed) {
        Some(r) => r.exit_code,
        None if output
            .locations
            .iter()
            .all(|r| r.outcome != Outcome::Refused || r.exit_code == 3) =>
        {
            3
        }
        None => 4,
    } as u8;
    Err(NotAllDone {
        failed: output.failed,
        refused: output.refused,
        total,
        exit_code,
    }
    .into())
}

fn location_result(site: &Site, result: Result<Finished, StageError>) -> LocationResult {
    let base = |outcome, exit_code| LocationResult {
        location: site.id.to_string(),
        name: site.name.clone(),
        model_name: site.config.registry.model_name.clone(),
        outcome,
        model_version: None,
        summary: String::new(),
        output: None,
        error: None,
        exit_code,
    };
    match result {
        Ok(f) => LocationResult {
            model_version: f.model_version,
            summary: f.summary,
            output: Some(f.output),
            ..base(Outcome::Done, 0)
        },
        Err(e) => {
            let outcome = if e.kind() == ErrorKind::Refused {
                Outcome::Refused
            } else {
                Outcome::Failed
            };
            let version = match &e {
                StageError::PromotionRefused { version, .. } | StageError::GatesFailed { version, .. } => {
                    Some(version.clone())
                }
                _ => None,
            };
            LocationResult {
                model_version: version,
                summary: first_line(&e.to_string()).to_owned(),
                error: Some(e.to_string()),
                ..base(outcome, e.exit_code())
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

impl Outcome {
    fn word(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::Refused => "refused",
            Outcome::Failed => "failed",
        }
    }
}

fn progress_bar(total: usize, command: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} locations {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(command.to_owned());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    Some(bar)
}

/// The outcome table a person reads.
fn table(o: &FleetOutput) -> String {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header(["location", "model", "version", "outcome", "summary"]);
    for r in &o.locations {
        t.add_row([
            r.location.clone(),
            r.model_name.clone(),
            r.model_version.clone().unwrap_or_else(|| "–".into()),
            r.outcome.word().to_owned(),
            r.summary.clone(),
        ]);
    }
    format!(
        "{t}\n{}: {} done, {} refused, {} failed of {} location(s)",
        o.command,
        o.done,
        o.refused,
        o.failed,
        o.locations.len()
    )
}

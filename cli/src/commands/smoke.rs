//! `rps smoke URL`: smoke-tests a running API (a deployment, a container, a local
//! server), waiting with `--expect-version` until it serves that version (the staging
//! wait). Prints what it found; exit 1 with the reason when it fails.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use rps_core::evaluate::smoke;
use rps_core::features::INPUT_HOURS;
use rps_core::observations::{HourlySeries, RawSeries};

use super::Out;

#[derive(clap::Args)]
pub struct Args {
    /// The API's base URL
    url: String,
    /// Wait until the API serves this version (`3` or `v3`)
    #[arg(long)]
    expect_version: Option<String>,
    /// Seconds to wait for the API to be ready, and then again to serve the expected
    /// version
    #[arg(long, default_value_t = 120)]
    wait: u64,
    /// Observations in Open-Meteo's format (default: the shipped sample year);
    /// `/predict` is asked about a day of them
    #[arg(long)]
    observations: Option<PathBuf>,
}

/// Where in the observations the request's window starts (any complete day will do).
const FIRST_HOUR: usize = 100;

pub async fn run(args: Args, out: &Out) -> anyhow::Result<()> {
    let expect = args.expect_version.as_deref().filter(|v| !v.trim().is_empty());
    let smoked = test(&args.url, expect, args.wait, args.observations.as_deref()).await?;
    out.emit(&smoked, |s| {
        println!(
            "{} serves version {}: /health, /ready and /predict ({} forecasts) answer",
            s.url, s.model_version, s.forecasts
        )
    })
}

/// The smoke test of the API at `url`, asking about a day of `observations`.
pub async fn test(
    url: &str,
    expect: Option<&str>,
    wait_secs: u64,
    observations: Option<&Path>,
) -> anyhow::Result<smoke::Smoked> {
    let (body, name) = match observations {
        Some(path) => (
            std::fs::read(path).with_context(|| format!("reading {}", path.display()))?,
            path.display().to_string(),
        ),
        None => (super::sample::SAMPLE.to_vec(), "the shipped sample".to_owned()),
    };
    let series = HourlySeries::from_raw(&RawSeries::parse(&body)?)
        .with_context(|| format!("{name} is not hourly observations"))?;
    let times = series.times();
    anyhow::ensure!(
        times.len() >= FIRST_HOUR + INPUT_HOURS,
        "{name} holds {} hours; the smoke test asks about hours {FIRST_HOUR}..{}",
        times.len(),
        FIRST_HOUR + INPUT_HOURS
    );
    let window = series.between(times[FIRST_HOUR], times[FIRST_HOUR + INPUT_HOURS - 1]);
    let http = rps_core::http::client().map_err(anyhow::Error::msg)?;
    smoke::until_serving(
        &http,
        url,
        &smoke::golden_request(&window),
        expect,
        Duration::from_secs(wait_secs),
    )
    .await
    .map_err(anyhow::Error::msg)
}

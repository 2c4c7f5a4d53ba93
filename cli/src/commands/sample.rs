//! `rps sample`: the shipped station year as Open-Meteo (`serve`, for offline runs), and
//! a client asking the API about the newest observed hours (`ask`, the demo's traffic).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use chrono::NaiveDateTime;
use rps_core::evaluate::smoke::golden_request;
use rps_core::features::INPUT_HOURS;
use rps_core::observations::{HourlySeries, utc_now};
use rps_core::snapshot;
use rps_core::source::{Recording, replay};

/// The recorded station year shipped with rps, served by `rps sample serve`.
pub const SAMPLE: &[u8] = include_bytes!("../../../data/sample/open-meteo-archive-sandpoint-ak-2023.json");
/// The second shipped station (a continental TMY3 year), served beside it: a fleet's
/// locations are answered from the nearer of the two.
pub const SECOND: &[u8] = include_bytes!("../../../data/sample/open-meteo-tmy3-greensboro-nc.json");

#[derive(clap::Subcommand)]
pub enum Command {
    /// Answer /v1/archive and /v1/forecast from the recording
    Serve {
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// 0 picks a free port
        #[arg(long, default_value_t = 8089)]
        port: u16,
        /// Write the bound port to this file once listening
        #[arg(long)]
        port_file: Option<PathBuf>,
        /// Serve this Open-Meteo JSON file instead of the shipped stations (repeat for
        /// several: each request is answered from the one nearest its coordinates)
        #[arg(long)]
        file: Vec<PathBuf>,
        /// Replay /v1/forecast as if it were this recorded hour (YYYY-MM-DDTHH:MM, UTC):
        /// the times stay today's, the weather is the pinned day's, so a run sees the
        /// same weather whatever the date. The pin is set when the server starts (an
        /// hour later it serves the hour after), and /v1/archive is not moved. Default:
        /// the same hour of the year as now
        #[arg(long, value_parser = parse_hour)]
        as_of: Option<NaiveDateTime>,
    },
    /// Ask the API at URL about each of the newest observed hours (from the newest
    /// snapshot in the store), as a client would: answers the forecast log samples
    Ask {
        url: String,
        /// How many hours to ask about, the newest ending 6 hours ago (so that
        /// verification can score the answers soon)
        #[arg(long, default_value_t = 31)]
        hours: usize,
    },
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            host,
            port,
            port_file,
            file,
            as_of,
        } => serve(host, port, port_file, file, as_of).await,
        Command::Ask { url, hours } => ask(&url, hours).await,
    }
}

async fn serve(
    host: IpAddr,
    port: u16,
    port_file: Option<PathBuf>,
    files: Vec<PathBuf>,
    as_of: Option<NaiveDateTime>,
) -> anyhow::Result<()> {
    let bodies = if files.is_empty() {
        vec![
            ("the shipped sample".to_owned(), SAMPLE.to_vec()),
            ("the shipped second station".to_owned(), SECOND.to_vec()),
        ]
    } else {
        files
            .iter()
            .map(|f| {
                Ok((
                    f.display().to_string(),
                    std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
                ))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    let mut recordings = Vec::with_capacity(bodies.len());
    for (name, body) in bodies {
        let mut recording =
            Recording::parse(&body).with_context(|| format!("{name} is not a usable recording"))?;
        if let Some(as_of) = as_of {
            recording = recording
                .as_of(as_of, utc_now())
                .map_err(|e| anyhow::anyhow!("--as-of {e} ({name})"))?;
        }
        recordings.push(recording);
    }
    let (addr, handle) = replay::serve(recordings, SocketAddr::new(host, port))
        .await
        .with_context(|| format!("cannot listen on {host}:{port}"))?;
    if let Some(pf) = port_file {
        std::fs::write(&pf, addr.port().to_string()).with_context(|| format!("writing {}", pf.display()))?;
    }
    println!("serving the Open-Meteo replay on http://{addr} (/v1/archive, /v1/forecast)");
    tokio::select! {
        r = handle => r??,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}

fn parse_hour(s: &str) -> Result<NaiveDateTime, String> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .map_err(|_| format!("{s:?} is not a time as YYYY-MM-DDTHH:MM"))
}

/// Hours before the newest observed one that the last question ends at.
const LAG_HOURS: usize = 6;

async fn ask(url: &str, hours: usize) -> anyhow::Result<()> {
    let ctx = super::context().await?;
    let newest = snapshot::newest(ctx.store.as_ref())
        .await?
        .context("the store holds no snapshot yet: run `rps ingest --live` first")?;
    let (raw, _) = snapshot::load(ctx.store.as_ref(), &newest).await?;
    let series = HourlySeries::from_raw(&raw)?;
    let now = utc_now();
    let observed = series.times().iter().filter(|t| **t <= now).count();
    anyhow::ensure!(
        observed >= INPUT_HOURS + hours + LAG_HOURS,
        "{} holds {observed} observed hours: too few to ask about {hours}",
        ctx.url(&newest)
    );
    let http = rps_core::http::client().map_err(anyhow::Error::msg)?;
    let url = url.trim_end_matches('/');
    for end in (observed - LAG_HOURS - hours)..(observed - LAG_HOURS) {
        let times = series.times();
        let window = series.between(times[end + 1 - INPUT_HOURS], times[end]);
        let r = http
            .post(format!("{url}/predict"))
            .json(&golden_request(&window))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .with_context(|| format!("asking {url}/predict"))?;
        anyhow::ensure!(r.status().is_success(), "{url}/predict answered {}", r.status());
    }
    println!("asked /predict about {hours} hours of {}", ctx.url(&newest));
    Ok(())
}

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use anyhow::Context as _;
use shared::source::{Recording, replay};

/// The recorded station year shipped with rps, served by `rps sample serve`.
const SAMPLE: &[u8] = include_bytes!("../../../data/sample/open-meteo-archive-sandpoint-ak-2023.json");

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
        /// Serve this Open-Meteo JSON file instead of the shipped sample
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    let Command::Serve {
        host,
        port,
        port_file,
        file,
    } = command;
    let body = match &file {
        Some(f) => std::fs::read(f).with_context(|| format!("reading {}", f.display()))?,
        None => SAMPLE.to_vec(),
    };
    let recording = Recording::parse(&body).context("the recording is not usable")?;
    let (addr, handle) = replay::serve(recording, SocketAddr::new(host, port))
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

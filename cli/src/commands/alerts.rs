use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Receive Alertmanager's webhook on POST /alerts and append each alert to FILE.
    /// With RPS_ALERT_LOG_TOKEN (or RPS_ALERT_LOG_TOKEN_FILE) set, a notification must
    /// carry it as a bearer token; without one, only a loopback HOST is allowed. FILE is
    /// rotated to FILE.1 at 64 MiB.
    Log {
        #[arg(long, default_value = "127.0.0.1")]
        host: IpAddr,
        /// 0 picks a free port
        #[arg(long, default_value_t = 9095)]
        port: u16,
        #[arg(long, default_value = "alerts.jsonl")]
        file: PathBuf,
    },
}

pub async fn run(command: Command) -> anyhow::Result<()> {
    let Command::Log { host, port, file } = command;
    let guard = rps_core::alerts::Guard::from_env()?;
    Ok(rps_core::alerts::serve(SocketAddr::new(host, port), &file, guard).await?)
}

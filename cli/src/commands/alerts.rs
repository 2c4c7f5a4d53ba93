use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Receive Alertmanager's webhook on POST /alerts and append each alert to FILE
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
    Ok(shared::alerts::serve(SocketAddr::new(host, port), &file).await?)
}

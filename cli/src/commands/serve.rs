use std::net::{IpAddr, SocketAddr};

use super::config;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// 0 picks a free port
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    let mut config = config()?;
    rps_core::secrets::resolve(&mut config).await?;
    let (state, app) = rps_core::serve::app(config).await?;
    let limits = rps_core::serve::ServerLimits::of(&state.config);
    rps_core::serve::serve_http(app, SocketAddr::new(a.host, a.port), limits).await?;
    state.finish().await;
    Ok(())
}

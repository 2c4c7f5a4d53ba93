use std::net::{IpAddr, SocketAddr};

use super::{fleet, resolved_config};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// 0 picks a free port
    #[arg(long, default_value_t = 8080)]
    port: u16,
}

pub async fn run(a: Args) -> anyhow::Result<()> {
    // With RPS_LOCATIONS: every location, or --location's alone.
    let (config, fleet) = fleet::serving(resolved_config().await?).await?;
    let (state, app) = rps_core::serve::app_with(config, fleet).await?;
    let limits = rps_core::serve::ServerLimits::of(&state.config);
    rps_core::serve::serve_http(app, SocketAddr::new(a.host, a.port), limits).await?;
    state.finish().await;
    Ok(())
}

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
    shared::secrets::resolve(&mut config).await?;
    let (state, app) = shared::serve::app(config).await?;
    let limits = shared::serve::ServerLimits::of(&state.config);
    shared::serve::serve_http(app, SocketAddr::new(a.host, a.port), limits).await?;
    state.finish().await;
    Ok(())
}

//! The prediction service. Under Lambda it answers API Gateway events; anywhere else it
//! listens on `PORT` (default 8080). MLflow credentials may come from Secrets Manager.
//! `rps-api health` is the container's health check: exit 0 when `/health` answers 200.
//! `rps-api alert-log FILE` is Alertmanager's file receiver (compose.yaml), on
//! 127.0.0.1:`PORT`, guarded by `RPS_ALERT_LOG_TOKEN(_FILE)` when set.

use rps_core::serve;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    rps_core::logging::init("info");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("health") => {
            let port = rps_core::config::Config::from_env()?.serve.port;
            std::process::exit(if serve::probe_health(port) { 0 } else { 1 });
        }
        Some("alert-log") => {
            let port = rps_core::config::Config::from_env()?.serve.port;
            let file = args.get(1).map_or("alerts.jsonl", String::as_str);
            let guard = rps_core::alerts::Guard::from_env()?;
            return Ok(rps_core::alerts::serve(([127, 0, 0, 1], port).into(), file.as_ref(), guard).await?);
        }
        _ => {}
    }
    let config = rps_core::lambda::config().await?;
    let (lambda, port, limits) = (
        config.serve.lambda_runtime,
        config.serve.port,
        serve::ServerLimits::of(&config),
    );
    let (state, app) = serve::app(config).await?;
    if lambda {
        lambda_http::run(app).await
    } else {
        serve::serve_http(app, ([0, 0, 0, 0], port).into(), limits).await?;
        state.finish().await;
        Ok(())
    }
}

//! The prediction service. Under Lambda it answers API Gateway events; anywhere else it
//! listens on `PORT` (default 8080). MLflow credentials may come from Secrets Manager.
//! `rps-api health` is the container's health check: exit 0 when `/health` answers 200.

use shared::serve;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init("info");
    if std::env::args().nth(1).as_deref() == Some("health") {
        let port = shared::config::Config::from_env()?.serve.port;
        std::process::exit(if serve::probe_health(port) { 0 } else { 1 });
    }
    let config = shared::lambda::config().await?;
    let (lambda, port, limits) = (
        config.serve.lambda_runtime,
        config.serve.port,
        serve::ServerLimits::of(&config),
    );
    let (_, app) = serve::app(config).await?;
    if lambda {
        lambda_http::run(app).await
    } else {
        Ok(serve::serve_http(app, ([0, 0, 0, 0], port).into(), limits).await?)
    }
}

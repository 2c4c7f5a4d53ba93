//! The prediction service. Under Lambda (`AWS_LAMBDA_RUNTIME_API` set) it answers API
//! Gateway events; anywhere else it listens on `PORT` (default 8080).

use shared::{config::Config, serve};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::logging::init("info");
    let (_, app) = serve::app(Config::from_env()?).await?;
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        lambda_http::run(app).await
    } else {
        let port = std::env::var("PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(8080);
        Ok(serve::serve_http(app, ([0, 0, 0, 0], port).into()).await?)
    }
}

//! The stage Lambdas' runtime, so that each function's `main.rs` is a few lines:
//! [`init`] once per container (JSON logs, the configuration, the MLflow credentials
//! from Secrets Manager, the ports), then [`serve`] the stage: the event is the stage's
//! serde input, the response its serde output.
//!
//! A stage that fails returns a function error whose `errorType` is
//! [`StageError::error_type`]: `DataQualityGateFailed`, `PromotionGateFailed`,
//! `PromotionConflict`, `InvalidInput`, `DependencyFailed` or `InternalError`. The state
//! machine and the Airflow DAG tell a refusal from a transient fault by it. An event of
//! the wrong shape is `InvalidInput`, naming the field.

use std::future::Future;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{Config, LogConfig};
use crate::stage::{Context, StageError};

pub use lambda_runtime::Error;

/// Once per container: logs, configuration (with the secrets resolved) and the ports,
/// the store limited to `function`'s grants ([`crate::layout::access`]). The context
/// lives as long as the process, as Lambda keeps it between invocations.
pub async fn init(function: &'static str) -> Result<&'static Context, Error> {
    crate::logging::init_with(&LogConfig::from_env(), "info");
    let config = config().await?;
    let ctx = Context::for_function(config, function).await.map_err(|e| {
        tracing::error!(error_type = e.error_type(), "init failed: {e}");
        e
    })?;
    Ok(Box::leak(Box::new(ctx)))
}

/// The configuration from the environment, with the MLflow credentials read from
/// Secrets Manager when `RPS_MLFLOW_SECRET_ID` names a secret.
pub async fn config() -> Result<Config, Error> {
    let mut config = Config::from_env()?;
    crate::secrets::resolve(&mut config).await?;
    Ok(config)
}

/// Serves `stage` until the runtime stops: each event parsed into the stage's input.
pub async fn serve<I, O, F, Fut>(stage: F) -> Result<(), Error>
where
    I: DeserializeOwned + Send,
    O: Serialize,
    F: Fn(I) -> Fut + Send + Sync,
    Fut: Future<Output = Result<O, StageError>> + Send,
{
    let stage = &stage;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let input = parse::<I>(event.payload)?;
        match stage(input).await {
            Ok(out) => Ok(out),
            Err(e) => {
                tracing::error!(error_type = e.error_type(), "the stage failed: {e}");
                Err(diagnostic(&e))
            }
        }
    }))
    .await
}

/// An event of the stage's input type, or an `InvalidInput` error naming what is wrong.
pub fn parse<I: DeserializeOwned>(payload: Value) -> Result<I, Diagnostic> {
    serde_json::from_value(payload).map_err(|e| Diagnostic {
        error_type: "InvalidInput".into(),
        error_message: format!("the event does not fit the stage's input: {e}"),
    })
}

/// A stage error as a Lambda function error.
pub fn diagnostic(e: &StageError) -> Diagnostic {
    Diagnostic {
        error_type: e.error_type().into(),
        error_message: e.to_string(),
    }
}

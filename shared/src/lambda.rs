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

/// Serves `function`'s `stage` until the runtime stops: the context made once
/// ([`init`]), each event parsed into the stage's input. When MLflow refuses the
/// credentials (401) and they come from Secrets Manager, the secret is read again once
/// and the event run again with the new context: a rotated secret does not break a
/// warm function (it keeps the old value until then).
pub async fn serve<I, O, F, Fut>(function: &'static str, stage: F) -> Result<(), Error>
where
    I: DeserializeOwned + Send,
    O: Serialize,
    F: Fn(&'static Context, I) -> Fut + Send + Sync,
    Fut: Future<Output = Result<O, StageError>> + Send,
{
    let current = std::sync::Mutex::new(init(function).await?);
    let (stage, current) = (&stage, &current);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let ctx = *current.lock().unwrap_or_else(|p| p.into_inner());
        let result = with_fresh_credentials(
            ctx,
            || reload(function),
            |ctx| {
                let payload = event.payload.clone();
                async move { stage(ctx, parse::<I>(payload)?).await.map_err(Failed::Stage) }
            },
        )
        .await;
        match result {
            Ok((out, ctx)) => {
                *current.lock().unwrap_or_else(|p| p.into_inner()) = ctx;
                Ok(out)
            }
            Err(Failed::Input(d)) => Err(d),
            Err(Failed::Stage(e)) => {
                tracing::error!(error_type = e.error_type(), "the stage failed: {e}");
                Err(diagnostic(&e))
            }
        }
    }))
    .await
}

/// Why an event failed: its shape, or the stage.
pub enum Failed {
    Input(Diagnostic),
    Stage(StageError),
}

impl From<Diagnostic> for Failed {
    fn from(d: Diagnostic) -> Self {
        Failed::Input(d)
    }
}

/// A new context from a fresh read of the configuration and the secret.
async fn reload(function: &'static str) -> Result<&'static Context, StageError> {
    let config = config()
        .await
        .map_err(|e| StageError::Internal(format!("reading the configuration again: {e}")))?;
    Ok(Box::leak(Box::new(
        Context::for_function(config, function).await?,
    )))
}

/// Whether MLflow refused the credentials themselves (not a missing permission).
pub fn unauthorized(e: &StageError) -> bool {
    use crate::mlflow::MlflowError;
    matches!(
        e,
        StageError::Registry(crate::registry::RegistryError::Mlflow(
            MlflowError::Unauthorized { .. }
        )) | StageError::Tracking(crate::tracking::TrackingError::Mlflow(
            MlflowError::Unauthorized { .. }
        ))
    )
}

/// Runs `run` on `ctx`; when it fails with refused credentials and they came from a
/// secret, makes a new context with `reload` and runs it once more. Hands back the
/// context to keep.
pub async fn with_fresh_credentials<T, R, RF, F, Fut>(
    ctx: &'static Context,
    reload: R,
    run: F,
) -> Result<(T, &'static Context), Failed>
where
    R: FnOnce() -> RF,
    RF: Future<Output = Result<&'static Context, StageError>>,
    F: Fn(&'static Context) -> Fut,
    Fut: Future<Output = Result<T, Failed>>,
{
    match run(ctx).await {
        Err(Failed::Stage(e)) if unauthorized(&e) && ctx.config.secrets.mlflow_secret_id.is_some() => {
            tracing::warn!(
                "MLflow refused the credentials ({e}): reading the secret again, in case it was rotated"
            );
            match reload().await {
                Ok(fresh) => Ok((run(fresh).await?, fresh)),
                Err(r) => {
                    tracing::error!("reading the secret again failed: {r}");
                    Err(Failed::Stage(e))
                }
            }
        }
        other => other.map(|t| (t, ctx)),
    }
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

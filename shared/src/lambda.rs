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
//!
//! With `RPS_LOCATIONS`, an event names its location: `{"location": "<id>", "input":
//! <the stage's input>}` (the state machine's per-location executions send that), and
//! the stage runs on that location's configuration and store folder. A bare input, or a
//! `null` location, is for the deployment's one location.

use std::future::Future;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::config::{Config, LogConfig};
use crate::fleet::Fleet;
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
/// ([`init`]), each event parsed into the stage's input, on its location's context
/// ([`Contexts`]). When MLflow refuses the credentials (401) and they come from
/// Secrets Manager, the secret is read again once and the event run again with the new
/// context: a rotated secret does not break a warm function (it keeps the old value
/// until then).
pub async fn serve<I, O, F, Fut>(function: &'static str, stage: F) -> Result<(), Error>
where
    I: DeserializeOwned + Send,
    O: Serialize,
    F: Fn(&'static Context, I) -> Fut + Send + Sync,
    Fut: Future<Output = Result<O, StageError>> + Send,
{
    let contexts = Contexts::new(function, init(function).await?).await?;
    let (stage, contexts) = (&stage, &contexts);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let (location, payload) = envelope(event.payload)?;
        let ctx = contexts
            .get(location.as_deref())
            .await
            .map_err(|e| diagnostic(&e))?;
        let result = with_fresh_credentials(
            ctx,
            || reload(function, ctx),
            |ctx| {
                let payload = payload.clone();
                async move { stage(ctx, parse::<I>(payload)?).await.map_err(Failed::Stage) }
            },
        )
        .await;
        match result {
            Ok((out, ctx)) => {
                contexts.keep(location.as_deref(), ctx);
                Ok(out)
            }
            Err(Failed::Input(d)) => Err(d),
            Err(Failed::Stage(e)) => {
                tracing::error!(error_type = e.error_type(), location = ?location, "the stage failed: {e}");
                Err(diagnostic(&e))
            }
        }
    }))
    .await
}

/// The location an event names and the stage's input: `{"location", "input"}`, or
/// the input alone.
pub fn envelope(payload: Value) -> Result<(Option<String>, Value), Diagnostic> {
    let is_envelope = payload
        .as_object()
        .is_some_and(|o| o.contains_key("input") && o.keys().all(|k| k == "input" || k == "location"));
    if !is_envelope {
        return Ok((None, payload));
    }
    let Value::Object(mut o) = payload else {
        unreachable!("checked above")
    };
    let input = o.remove("input").unwrap_or(Value::Null);
    match o.remove("location") {
        None | Some(Value::Null) => Ok((None, input)),
        Some(Value::String(id)) => Ok((Some(id), input)),
        Some(other) => Err(Diagnostic {
            error_type: "InvalidInput".into(),
            error_message: format!("the event's location must be a location id, not {other}"),
        }),
    }
}

/// The contexts of the locations a warm function has run for, made on first use: each
/// on its location's configuration ([`crate::fleet`]) and limited to the function's
/// grants inside the location's folder.
pub struct Contexts {
    function: &'static str,
    fleet: Fleet,
    /// The deployment's context (its one location without `RPS_LOCATIONS`).
    deployment: std::sync::Mutex<&'static Context>,
    sites: tokio::sync::Mutex<std::collections::HashMap<String, &'static Context>>,
}

impl Contexts {
    pub async fn new(function: &'static str, deployment: &'static Context) -> Result<Self, Error> {
        let fleet = Fleet::load(&deployment.config, &|k| std::env::var(k).ok())
            .await
            .map_err(|e| {
                tracing::error!(error_type = "InvalidInput", "init failed: {e}");
                e
            })?;
        Ok(Self {
            function,
            fleet,
            deployment: std::sync::Mutex::new(deployment),
            sites: tokio::sync::Mutex::new(std::collections::HashMap::new()),
        })
    }

    /// The context of `location` (`None`: the deployment's one location).
    pub async fn get(&self, location: Option<&str>) -> Result<&'static Context, StageError> {
        let id = match (location, self.fleet.configured) {
            (None, false) => return Ok(*self.deployment.lock().unwrap_or_else(|p| p.into_inner())),
            (None, true) if self.fleet.sites.len() == 1 => self.fleet.sites[0].id.to_string(),
            (None, true) => {
                return Err(StageError::Input(format!(
                    "RPS_LOCATIONS lists {} locations: the event must name one ({{\"location\": \"<id>\", \"input\": …}})",
                    self.fleet.sites.len()
                )));
            }
            (Some(id), _) => {
                let site = self.fleet.get(id).map_err(|e| StageError::Input(e.to_string()))?;
                if !self.fleet.configured {
                    // `--location default` of a deployment of one.
                    return Ok(*self.deployment.lock().unwrap_or_else(|p| p.into_inner()));
                }
                site.id.to_string()
            }
        };
        let mut sites = self.sites.lock().await;
        if let Some(ctx) = sites.get(&id) {
            return Ok(ctx);
        }
        let site = self
            .fleet
            .get(&id)
            .map_err(|e| StageError::Input(e.to_string()))?;
        let ctx: &'static Context = Box::leak(Box::new(
            Context::for_function(site.config.clone(), self.function).await?,
        ));
        sites.insert(id, ctx);
        Ok(ctx)
    }

    /// Keeps `ctx` (a fresh one after a credentials reload) for `location`.
    fn keep(&self, location: Option<&str>, ctx: &'static Context) {
        match location.filter(|_| self.fleet.configured) {
            None if !self.fleet.configured => {
                *self.deployment.lock().unwrap_or_else(|p| p.into_inner()) = ctx;
            }
            _ => {
                if let Ok(mut sites) = self.sites.try_lock() {
                    sites.insert(ctx.config.site.id.to_string(), ctx);
                }
            }
        }
    }
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

/// A new context for `ctx`'s location, from a fresh read of the configuration and the
/// secret.
async fn reload(function: &'static str, ctx: &'static Context) -> Result<&'static Context, StageError> {
    let fresh = config()
        .await
        .map_err(|e| StageError::Internal(format!("reading the configuration again: {e}")))?;
    // A location's configuration is the deployment's over its own; the secret is the
    // deployment's.
    let mut config = ctx.config.clone();
    config.mlflow = fresh.mlflow;
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::envelope;

    #[test]
    fn an_event_names_its_location_or_is_the_stage_input_itself() {
        let (at, input) = envelope(json!({"location": "kodiak", "input": {"snapshot": "raw/x"}})).unwrap();
        assert_eq!(
            (at.as_deref(), input),
            (Some("kodiak"), json!({"snapshot": "raw/x"}))
        );
        // The state machine of a deployment of one sends a null location.
        let (at, input) = envelope(json!({"location": null, "input": {"mode": "live"}})).unwrap();
        assert_eq!((at, input), (None, json!({"mode": "live"})));
        // A bare input (Airflow, a hand-made event) is the stage's input as it is, even
        // one with a field of its own called location.
        for bare in [
            json!({"mode": "live"}),
            json!({"input": 1, "other": 2}),
            json!({"location": "kodiak"}),
            json!([1]),
        ] {
            assert_eq!(envelope(bare.clone()).unwrap(), (None, bare));
        }
        let bad = envelope(json!({"location": 3, "input": {}})).unwrap_err();
        assert_eq!(bad.error_type, "InvalidInput");
        assert!(bad.error_message.contains("location id"), "{}", bad.error_message);
    }
}

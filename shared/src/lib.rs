//! rps: the domain library behind the `rps` CLI, the Lambda functions and the server.
//!
//! **The stages**, one folder each, in the order they run ([`stage::STAGES`]); each is
//! an async function from a serde input to a serde output:
//!
//! [`ingest`] → [`validate`] → [`transform`] → [`train`] → [`evaluate`] → [`promote`],
//! then [`serve`] answers requests and [`verify`] scores the forecasts served against
//! what happened, asking for a retrain when the model stops earning its keep;
//! [`lineage`] traces a model back to its raw data.
//!
//! **Stages are siblings**: a stage imports the core and the ports, never another
//! stage. What one stage writes and another reads is a record in [`records`] (the
//! stages' inputs and outputs, the gate report, retrain requests, verifications, the
//! API's answers); [`pipeline`] is the one place that chains stages. A test over the
//! source keeps it so (`shared/tests/integration/architecture.rs`).
//!
//! **The ports**, one folder each, a trait with a real and an in-memory adapter:
//! [`store`] (local folder, S3, memory), [`registry`] (MLflow, the store), [`tracking`]
//! (MLflow, memory), [`source`] (Open-Meteo, a recording). [`mlflow`] is the REST
//! client under the MLflow adapters, [`dvc`] the DVC remote on a store.
//!
//! **The shared core**, read by several stages: [`records`], [`config`] (the only
//! reader of the environment), [`observations`], [`features`] (the one feature
//! definition), [`drift`] (the inputs against the training data, for serving and
//! verification), [`forecast_log`] (the forecasts issued, for verification),
//! [`fleet`] (many locations: each one's configuration, and the place a store belongs
//! to), [`snapshot`], [`dataset`], [`bundle`] (the model file), [`scores`], [`recalibration`]
//! (the intervals re-calibrated on live errors, for verification and serving), [`layout`] (store
//! keys), [`tags`] (registry and tracking names), [`stage`] (context and errors).
//!
//! The batch stages need polars and smartcore and sit behind the `batch` feature;
//! serving needs neither.

// The shared core.
pub mod alerts;
pub mod bundle;
pub mod config;
pub mod dataset;
pub mod drift;
pub mod features;
pub mod fleet;
pub mod forecast_log;
pub mod git;
pub mod http;
pub mod layout;
pub mod logging;
pub mod observations;
pub mod recalibration;
pub mod records;
pub mod scores;
pub mod snapshot;
pub mod stage;
pub mod tags;

// The ports and their adapters.
pub mod doctor;
pub mod dvc;
pub mod mlflow;
pub mod registry;
pub mod source;
pub mod store;
pub mod tracking;

#[cfg(test)]
pub(crate) mod testing;

// The stage Lambdas' runtime and their secrets.
#[cfg(feature = "lambda")]
pub mod lambda;
#[cfg(feature = "lambda")]
pub mod secrets;

// The stages.
#[cfg(feature = "batch")]
pub mod evaluate;
pub mod ingest;
#[cfg(feature = "batch")]
pub mod lineage;
#[cfg(feature = "batch")]
pub mod pipeline;
#[cfg(feature = "batch")]
pub mod promote;
pub mod serve;
#[cfg(feature = "batch")]
pub mod train;
#[cfg(feature = "batch")]
pub mod transform;
pub mod validate;
pub mod verify;

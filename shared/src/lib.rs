//! rps: the domain library behind the `rps` CLI, the Lambda functions and the server.
//!
//! Data flow, one module per stage:
//! [`source`] fetches Open-Meteo → the raw snapshot goes to the [`store`] (keys in
//! [`layout`]) → [`quality`] gates it → `transform` regularises it and builds the
//! [`features`] → `profile` describes the dataset → `train` fits and scores models
//! ([`evaluate`]) → [`model`] bundles them → [`registry`] versions them → the
//! [`gates`] decide promotion, with a [`report`] → [`serve`] answers requests. [`pipeline`] holds the stage functions,
//! each a serde input to a serde output. The batch stages need polars and sit behind
//! the `batch` feature; serving does not.

pub mod config;
pub mod dvc;
pub mod evaluate;
pub mod features;
pub mod gates;
pub mod git;
pub mod http;
pub mod layout;
pub mod logging;
pub mod mlflow;
pub mod model;
pub mod observations;
pub mod pipeline;
pub mod quality;
pub mod registry;
pub mod replay;
pub mod report;
pub mod serve;
pub mod source;
pub mod store;

#[cfg(feature = "batch")]
pub mod lineage;
#[cfg(feature = "batch")]
pub mod profile;
#[cfg(feature = "batch")]
pub mod train;
#[cfg(feature = "batch")]
pub mod transform;

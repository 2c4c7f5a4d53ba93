//! MLflow over its REST API (tracking, artifacts through the proxy, and the model
//! registry), in plain reqwest + serde: no Python at run time.
//!
//! Quirks it handles: POSTs need `Content-Type: application/json`; ids and versions are
//! strings; param values must be strings; a metric needs a timestamp in ms; a missing
//! alias is a 400, not a 404; `latest` and `v<N>` are reserved alias names; deleting an
//! alias takes a JSON body. 5xx and connection errors are retried, bounded; a 4xx quotes
//! MLflow's `error_code` and `message`; an endpoint an older server lacks (a plain 404)
//! is reported as that server not supporting the feature.
//!
//! [`client`] is the HTTP client, [`registry`] its model-registry endpoints, [`types`]
//! its records, [`error`] the error mapping.
//! The registry adapter (`registry::MlflowRegistry`) and the tracking adapter
//! (`tracking::MlflowTracker`) are built on the client.

pub mod client;
pub mod error;
pub mod registry;
pub mod types;

pub use client::MlflowClient;
pub use error::MlflowError;
pub use types::{
    AliasEntry, Experiment, FileInfo, Metric, ModelVersion, RegisteredModel, Run, RunData, RunInfo,
    RunStatus, Tag, now_ms, tags_map,
};

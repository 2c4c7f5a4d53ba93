//! The library's integration tests, one binary: each module was a test file of its own.
//! They talk to real components where a user would (MLflow, moto's S3, a stub HTTP
//! server) and to the library's public API only.

mod helpers;

mod architecture;
mod data_quality;
mod docs;
#[cfg(feature = "lambda")]
mod events;
mod features;
mod fleet_router;
mod ingest;
mod mlflow;
mod mlflow_auth;
mod mlflow_errors;
mod model;
mod properties;
mod router;
mod s3_store;
mod serve_timeouts;
mod stage_table;
mod tracking;

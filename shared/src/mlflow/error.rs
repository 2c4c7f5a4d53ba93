//! How MLflow's answers map to errors: a 401 names the credential variables, a 4xx
//! quotes MLflow's `error_code` and `message`, a plain 404 means the server lacks the
//! endpoint (an older server), and exhausted retries say how often they tried.

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    #[error(
        "MLflow at {server} refused the credentials (HTTP 401 on {endpoint}): check MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
    )]
    Unauthorized { server: String, endpoint: String },
    #[error("MLflow at {server} denied {endpoint} (HTTP 403): {message}")]
    Forbidden {
        server: String,
        endpoint: String,
        message: String,
    },
    #[error("{message} (MLflow at {server}, {endpoint})")]
    NotFound {
        server: String,
        endpoint: String,
        message: String,
    },
    #[error("MLflow at {server} does not support {feature}: {endpoint} answered HTTP 404. {hint}")]
    Unsupported {
        server: String,
        endpoint: String,
        feature: &'static str,
        hint: &'static str,
    },
    #[error("MLflow at {server} rejected {endpoint} (HTTP {status}, {code}): {message}")]
    Api {
        server: String,
        endpoint: String,
        status: u16,
        code: String,
        message: String,
    },
    #[error("MLflow at {server} did not answer {endpoint} after {attempts} attempt(s): {last}")]
    Unavailable {
        server: String,
        endpoint: String,
        attempts: u32,
        last: String,
    },
    #[error("unexpected answer from MLflow {endpoint}: {message}")]
    Decode { endpoint: String, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl MlflowError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, MlflowError::NotFound { .. })
    }

    /// The deployment's fault, not a passing one: credentials refused, access denied,
    /// or a server without a feature rps needs. Retrying cannot help.
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            MlflowError::Unauthorized { .. }
                | MlflowError::Forbidden { .. }
                | MlflowError::Unsupported { .. }
        )
    }
}

/// What an endpoint provides, for messages about servers that lack it.
pub(super) fn feature_of(endpoint: &str) -> (&'static str, &'static str) {
    if endpoint.contains("registered-models/alias") {
        (
            "model version aliases",
            "Aliases need MLflow 2.3 or newer; upgrade the server, or use stages on this one.",
        )
    } else if endpoint.contains("mlflow-artifacts") {
        (
            "the artifact proxy",
            "Start the server with --serve-artifacts (the default since MLflow 2.0) so clients can upload and download artifacts.",
        )
    } else if endpoint.contains("transition-stage") {
        (
            "model version stages",
            "Stages were removed from this server; aliases replace them.",
        )
    } else {
        (
            "this API",
            "Check MLFLOW_TRACKING_URI: it should be the server's base URL.",
        )
    }
}

#[derive(Debug, Clone, Deserialize)]
pub(super) struct ErrorBody {
    pub error_code: Option<String>,
    pub message: Option<String>,
}

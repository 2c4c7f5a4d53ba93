//! The alert log: an Alertmanager webhook receiver that appends every alert it is sent
//! to a file, one JSON object per line (`rps alerts log`, or `rps-api alert-log` in the
//! container). It is the receiver that needs no outside service; docs/monitoring.md
//! shows the Slack one beside it.
//!
//! A line per alert and notification: `{"received_at", "receiver", "status",
//! "alertname", "labels", "annotations", "starts_at", "ends_at", "fingerprint"}`.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Debug, thiserror::Error)]
pub enum AlertLogError {
    #[error("cannot open the alert log {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Alertmanager's webhook body (version 4); only what the log keeps.
#[derive(Debug, Deserialize)]
pub struct Notification {
    pub receiver: String,
    pub alerts: Vec<Alert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: String,
    pub labels: Map<String, Value>,
    #[serde(default)]
    pub annotations: Map<String, Value>,
    pub starts_at: String,
    #[serde(default)]
    pub ends_at: String,
    #[serde(default)]
    pub fingerprint: String,
}

/// The lines a notification adds to the log.
pub fn lines(n: &Notification, received_at: &str) -> String {
    n.alerts
        .iter()
        .map(|a| {
            let line = json!({
                "received_at": received_at,
                "receiver": n.receiver,
                "status": a.status,
                "alertname": a.labels.get("alertname").cloned().unwrap_or(Value::Null),
                "labels": a.labels,
                "annotations": a.annotations,
                "starts_at": a.starts_at,
                "ends_at": a.ends_at,
                "fingerprint": a.fingerprint,
            });
            format!("{line}\n")
        })
        .collect()
}

struct Log {
    file: Mutex<std::fs::File>,
    path: PathBuf,
}

/// Opens (or creates) the log for appending.
fn open(path: &Path) -> Result<Log, AlertLogError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AlertLogError::Open {
            path: path.display().to_string(),
            source,
        })?;
    Ok(Log {
        file: Mutex::new(file),
        path: path.to_owned(),
    })
}

async fn receive(
    State(log): State<Arc<Log>>,
    body: Result<axum::Json<Notification>, JsonRejection>,
) -> (StatusCode, String) {
    let n = match body {
        Ok(axum::Json(n)) => n,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an Alertmanager webhook notification: {}\n", e.body_text()),
            );
        }
    };
    let text = lines(&n, &chrono::Utc::now().to_rfc3339());
    // One write per notification, so concurrent notifications never interleave lines.
    let written = {
        let mut f = log.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(text.as_bytes()).and_then(|_| f.flush())
    };
    match written {
        Ok(()) => {
            tracing::info!(alerts = n.alerts.len(), receiver = %n.receiver, "alerts logged");
            (StatusCode::OK, format!("logged {} alert(s)\n", n.alerts.len()))
        }
        Err(e) => {
            // A 5xx makes Alertmanager retry the notification: nothing is lost.
            tracing::error!("cannot append to {}: {e}", log.path.display());
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the alert log cannot be written; retry\n".into(),
            )
        }
    }
}

/// The receiver's routes: `POST /alerts` (the webhook) and `GET /health`.
fn router(log: Arc<Log>) -> Router {
    Router::new()
        .route("/alerts", post(receive))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(log)
}

/// Receives Alertmanager notifications on `addr` and appends their alerts to `path`
/// until the process is stopped. Prints `rps alert log listening on http://…`.
pub async fn serve(addr: SocketAddr, path: &Path) -> Result<(), AlertLogError> {
    let log = Arc::new(open(path)?);
    let listen = |source| AlertLogError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    println!(
        "rps alert log listening on http://{bound}/alerts, writing {}",
        path.display()
    );
    axum::serve(listener, router(log)).await.map_err(listen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_alert_of_a_notification_is_one_line() {
        let n: Notification = serde_json::from_value(json!({
            "version": "4", "receiver": "file", "status": "firing",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "RpsFeatureDrift", "feature": "temperature_2m"},
                 "annotations": {"summary": "s"}, "startsAt": "2026-01-01T00:00:00Z",
                 "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "ab"},
                {"status": "resolved", "labels": {"alertname": "RpsApiDown"},
                 "startsAt": "2026-01-01T00:00:00Z"}
            ]
        }))
        .unwrap();
        let text = lines(&n, "now");
        let parsed: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0]["alertname"], "RpsFeatureDrift");
        assert_eq!(parsed[0]["labels"]["feature"], "temperature_2m");
        assert_eq!(parsed[1]["status"], "resolved");
        assert_eq!(parsed[1]["receiver"], "file");
    }
}

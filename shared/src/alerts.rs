//! The alert log: an Alertmanager webhook receiver that appends every alert it is sent
//! to a file, one JSON object per line (`rps alerts log`, or `rps-api alert-log` in the
//! container). It is the receiver that needs no outside service; docs/monitoring.md
//! shows the Slack one beside it.
//!
//! A line per alert and notification: `{"received_at", "receiver", "status",
//! "alertname", "labels", "annotations", "starts_at", "ends_at", "fingerprint"}`.
//!
//! Guarded ([`Guard`]): with a token (`RPS_ALERT_LOG_TOKEN`, or the file
//! `RPS_ALERT_LOG_TOKEN_FILE` names) every notification must carry it as
//! `Authorization: Bearer …` (Alertmanager's `http_config.authorization`); without one
//! the receiver listens on a loopback address only. Bodies over [`MAX_BODY`] are
//! refused with 413, and the file is rotated to `<file>.1` before it passes
//! [`MAX_FILE`], so neither a sender nor a storm of alerts can fill the disk.

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
    #[error(
        "the alert log would listen on {addr}, which is not a loopback address, without a token: anyone who reaches it could write alerts. Set {TOKEN_VAR} (or {TOKEN_FILE_VAR}) and give Alertmanager the same token (http_config.authorization), or listen on 127.0.0.1"
    )]
    Unguarded { addr: SocketAddr },
    #[error("the alert log's token: {0}")]
    Token(String),
}

/// The variable holding the receiver's bearer token.
pub const TOKEN_VAR: &str = "RPS_ALERT_LOG_TOKEN";
/// The variable naming a file that holds it (a compose or Kubernetes secret).
pub const TOKEN_FILE_VAR: &str = "RPS_ALERT_LOG_TOKEN_FILE";
/// The largest notification taken. Alertmanager's `max_alerts` keeps its own below it.
pub const MAX_BODY: usize = 1 << 20;
/// The size at which the file is rotated to `<file>.1` (the older `.1` is replaced).
pub const MAX_FILE: u64 = 64 << 20;

/// What the receiver asks of a sender, and how large its file may grow.
#[derive(Clone)]
pub struct Guard {
    pub token: Option<String>,
    pub max_body: usize,
    pub max_file: u64,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("max_body", &self.max_body)
            .field("max_file", &self.max_file)
            .finish()
    }
}

impl Guard {
    /// The token from the environment ([`TOKEN_VAR`], else the file [`TOKEN_FILE_VAR`]
    /// names), and the default limits.
    pub fn from_env() -> Result<Self, AlertLogError> {
        let token =
            match (std::env::var(TOKEN_VAR), std::env::var(TOKEN_FILE_VAR)) {
                (Ok(t), _) => Some(t),
                (Err(_), Ok(path)) => Some(std::fs::read_to_string(&path).map_err(|e| {
                    AlertLogError::Token(format!("{TOKEN_FILE_VAR}={path} cannot be read: {e}"))
                })?),
                _ => None,
            };
        let token = match token.map(|t| t.trim().to_owned()) {
            Some(t) if t.is_empty() => {
                return Err(AlertLogError::Token(format!(
                    "{TOKEN_VAR} (or the file {TOKEN_FILE_VAR} names) is empty"
                )));
            }
            other => other,
        };
        Ok(Self {
            token,
            max_body: MAX_BODY,
            max_file: MAX_FILE,
        })
    }

    /// Whether `header` (an `Authorization` value) carries the token; always when none
    /// is set. Compared in constant time.
    fn admits(&self, header: Option<&str>) -> bool {
        let Some(token) = &self.token else { return true };
        let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
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
    file: Mutex<(std::fs::File, u64)>,
    path: PathBuf,
    max_file: u64,
}

/// Opens (or creates) the log for appending.
fn open(path: &Path, max_file: u64) -> Result<Log, AlertLogError> {
    let file = append(path)?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok(Log {
        file: Mutex::new((file, size)),
        path: path.to_owned(),
        max_file,
    })
}

fn append(path: &Path) -> Result<std::fs::File, AlertLogError> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AlertLogError::Open {
            path: path.display().to_string(),
            source,
        })
}

impl Log {
    /// Appends `text` in one write (concurrent notifications never interleave lines),
    /// first rotating the file to `<file>.1` when `text` would take it past its limit.
    fn write(&self, text: &str) -> Result<(), String> {
        let mut held = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let (file, size) = &mut *held;
        if *size > 0 && *size + text.len() as u64 > self.max_file {
            let mut rotated = self.path.clone().into_os_string();
            rotated.push(".1");
            std::fs::rename(&self.path, &rotated).map_err(|e| format!("cannot rotate: {e}"))?;
            *file = append(&self.path).map_err(|e| e.to_string())?;
            *size = 0;
            tracing::info!(file = %self.path.display(), "alert log rotated");
        }
        file.write_all(text.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| e.to_string())?;
        *size += text.len() as u64;
        Ok(())
    }
}

struct Receiver {
    log: Log,
    guard: Guard,
}

async fn receive(
    State(r): State<Arc<Receiver>>,
    headers: axum::http::HeaderMap,
    body: Result<axum::Json<Notification>, JsonRejection>,
) -> (StatusCode, String) {
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !r.guard.admits(auth) {
        return (
            StatusCode::UNAUTHORIZED,
            "this alert log takes notifications with its bearer token only (Authorization: Bearer …)\n"
                .into(),
        );
    }
    let n = match body {
        Ok(axum::Json(n)) => n,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the notification is larger than {} bytes; set max_alerts in Alertmanager's webhook_config\n",
                    r.guard.max_body
                ),
            );
        }
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("not an Alertmanager webhook notification: {}\n", e.body_text()),
            );
        }
    };
    let text = lines(&n, &chrono::Utc::now().to_rfc3339());
    match r.log.write(&text) {
        Ok(()) => {
            tracing::info!(alerts = n.alerts.len(), receiver = %n.receiver, "alerts logged");
            (StatusCode::OK, format!("logged {} alert(s)\n", n.alerts.len()))
        }
        Err(e) => {
            // A 5xx makes Alertmanager retry the notification: nothing is lost.
            tracing::error!("cannot append to {}: {e}", r.log.path.display());
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the alert log cannot be written; retry\n".into(),
            )
        }
    }
}

/// The receiver's routes: `POST /alerts` (the webhook) and `GET /health`.
fn router(r: Arc<Receiver>) -> Router {
    let max_body = r.guard.max_body;
    Router::new()
        .route("/alerts", post(receive))
        .route("/health", get(|| async { "ok\n" }))
        .layer(axum::extract::DefaultBodyLimit::max(max_body))
        .with_state(r)
}

/// Receives Alertmanager notifications on `addr` and appends their alerts to `path`
/// until the process is stopped. Prints `rps alert log listening on http://…`. Refuses
/// a non-loopback `addr` without a token.
pub async fn serve(addr: SocketAddr, path: &Path, guard: Guard) -> Result<(), AlertLogError> {
    if guard.token.is_none() && !addr.ip().is_loopback() {
        return Err(AlertLogError::Unguarded { addr });
    }
    let log = open(path, guard.max_file)?;
    let listen = |source| AlertLogError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let bound = listener.local_addr().map_err(listen)?;
    println!(
        "rps alert log listening on http://{bound}/alerts ({}), writing {}",
        if guard.token.is_some() {
            "bearer token required"
        } else {
            "loopback only, no token"
        },
        path.display()
    );
    axum::serve(listener, router(Arc::new(Receiver { log, guard })))
        .await
        .map_err(listen)
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

    fn notification(alerts: usize) -> String {
        let alert = json!({"status": "firing", "labels": {"alertname": "RpsApiDown"}, "startsAt": "2026-01-01T00:00:00Z"});
        json!({"version": "4", "receiver": "file", "alerts": vec![alert; alerts]}).to_string()
    }

    async fn post(app: &Router, auth: Option<&str>, body: String) -> (StatusCode, String) {
        use tower::ServiceExt;
        let mut req = axum::http::Request::post("/alerts").header("content-type", "application/json");
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = app
            .clone()
            .oneshot(req.body(axum::body::Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_notification_without_the_token_or_over_the_limit_is_refused_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let guard = Guard {
            token: Some("s3cret".into()),
            max_body: 4096,
            max_file: MAX_FILE,
        };
        let app = router(Arc::new(Receiver {
            log: open(&path, guard.max_file).unwrap(),
            guard,
        }));
        for auth in [
            None,
            Some("Bearer wrong!"),
            Some("Bearer s3cre"),
            Some("Basic s3cret"),
        ] {
            let (status, text) = post(&app, auth, notification(1)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}: {text}");
            assert!(text.contains("bearer token"), "{text}");
        }
        let (status, text) = post(&app, Some("Bearer s3cret"), notification(200)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{text}");
        assert!(text.contains("max_alerts"), "{text}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let (status, text) = post(&app, Some("Bearer s3cret"), notification(2)).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);
    }

    #[tokio::test]
    async fn without_a_token_it_listens_on_loopback_only() {
        let dir = tempfile::tempdir().unwrap();
        let guard = Guard {
            token: None,
            max_body: MAX_BODY,
            max_file: MAX_FILE,
        };
        let err = serve(([0, 0, 0, 0], 0).into(), &dir.path().join("a.jsonl"), guard)
            .await
            .unwrap_err();
        assert!(matches!(err, AlertLogError::Unguarded { .. }), "{err}");
        assert!(err.to_string().contains(TOKEN_VAR), "{err}");
    }

    #[test]
    fn the_file_is_rotated_before_it_passes_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        let log = open(&path, 100).unwrap();
        let line = format!("{}\n", "x".repeat(39));
        for _ in 0..5 {
            log.write(&line).unwrap();
        }
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        let rotated = dir.path().join("alerts.jsonl.1");
        // 2 lines (80 bytes) fit; the third rotates, twice over five lines.
        assert_eq!(size(&path), 40);
        assert_eq!(size(&rotated), 80);
        assert!(size(&path) <= 100 && size(&rotated) <= 100);
    }
}

//! A fault-injecting HTTP proxy in front of a real server (MLflow, moto): requests pass
//! through unchanged until a rule says otherwise, so a test can make a real component
//! fail at one precise step of a stage (`runs/log-batch`, the second alias move, a PUT
//! under `dvc/`) and then heal it for the re-run.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// When a rule applies and what it does.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Requests whose method is this (`None`: any).
    pub method: Option<String>,
    /// Requests whose path (with its query) contains this.
    pub path_contains: String,
    /// Matching requests to let through before failing.
    pub pass_first: usize,
    /// The status to answer instead.
    pub status: u16,
    seen: usize,
}

impl Rule {
    /// Fails every `method` request whose path contains `path` with `status`.
    pub fn fail(method: Option<&str>, path: &str, status: u16) -> Self {
        Self {
            method: method.map(str::to_owned),
            path_contains: path.to_owned(),
            pass_first: 0,
            status,
            seen: 0,
        }
    }

    /// Lets the first `n` matching requests through.
    pub fn after(mut self, n: usize) -> Self {
        self.pass_first = n;
        self
    }
}

#[derive(Default)]
struct Faults {
    rules: Vec<Rule>,
    /// Requests that were failed, as `METHOD path`.
    failed: Vec<String>,
    /// Every request, as `METHOD path?query`.
    seen: Vec<String>,
}

/// The proxy; it stops with the test process.
pub struct Proxy {
    pub url: String,
    faults: Arc<Mutex<Faults>>,
    target: Arc<Mutex<String>>,
}

#[derive(Clone)]
struct Shared {
    target: Arc<Mutex<String>>,
    http: reqwest::Client,
    faults: Arc<Mutex<Faults>>,
}

impl Proxy {
    /// A proxy forwarding to `target` (`http://127.0.0.1:5000`).
    pub fn start(target: &str) -> Self {
        let faults = Arc::new(Mutex::new(Faults::default()));
        let target = Arc::new(Mutex::new(target.trim_end_matches('/').to_owned()));
        let shared = Shared {
            target: target.clone(),
            http: reqwest::Client::new(),
            faults: faults.clone(),
        };
        let (tx, rx) = std::sync::mpsc::channel::<SocketAddr>();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a port");
                tx.send(listener.local_addr().expect("an address"))
                    .expect("the test waits");
                let app = Router::new().fallback(forward).with_state(shared);
                let _ = axum::serve(listener, app).await;
            });
        });
        let addr = rx.recv().expect("the proxy started");
        Self {
            url: format!("http://{addr}"),
            faults,
            target,
        }
    }

    /// Sends what follows to another server (a replay of other data, say).
    pub fn retarget(&self, target: &str) {
        *self.target.lock().unwrap_or_else(|p| p.into_inner()) = target.trim_end_matches('/').to_owned();
    }

    pub fn add(&self, rule: Rule) {
        self.lock().rules.push(rule);
    }

    /// Every request passes again.
    pub fn heal(&self) {
        self.lock().rules.clear();
    }

    /// The requests failed so far (`POST /api/2.0/mlflow/runs/log-batch`).
    pub fn failed(&self) -> Vec<String> {
        self.lock().failed.clone()
    }

    /// Every request so far, failed or passed (`GET /v1/archive?latitude=…`).
    pub fn requests(&self) -> Vec<String> {
        self.lock().seen.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn forward(State(s): State<Shared>, req: Request) -> Response {
    let method = req.method().to_string();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), |p| p.as_str().to_owned());
    let path = req.uri().path().to_owned();
    {
        let mut f = s.faults.lock().unwrap_or_else(|p| p.into_inner());
        f.seen.push(format!("{method} {path_and_query}"));
        let mut fail = None;
        for rule in &mut f.rules {
            let matches = path_and_query.contains(&rule.path_contains)
                && rule.method.as_deref().is_none_or(|m| m == method);
            if matches {
                rule.seen += 1;
                if rule.seen > rule.pass_first {
                    fail = Some(rule.status);
                    break;
                }
            }
        }
        if let Some(status) = fail {
            f.failed.push(format!("{method} {path}"));
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
            return (status, "injected fault").into_response();
        }
    }
    let headers: HeaderMap = req.headers().clone();
    let body: Bytes = match axum::body::to_bytes(req.into_body(), 512 << 20).await {
        Ok(b) => b,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let target = s.target.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut upstream = s.http.request(
        method.parse().unwrap_or(reqwest::Method::GET),
        format!("{target}{path_and_query}"),
    );
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            upstream = upstream.header(k.as_str(), v.as_bytes());
        }
    }
    match upstream.body(body).send().await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let mut out = Response::builder();
            for (k, v) in resp.headers() {
                if k != "transfer-encoding" && k != "content-length" && k != "connection" {
                    out = out.header(k.as_str(), v.as_bytes());
                }
            }
            let bytes = resp.bytes().await.unwrap_or_default();
            let out = out.status(status);
            out.body(Body::from(bytes))
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

//! Helpers for the black-box tests of the `rps` binary.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const RPS: &str = env!("CARGO_BIN_EXE_rps");

pub fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample/open-meteo-archive-sandpoint-ak-2023.json")
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rps sample serve` on a free port.
pub struct Replay {
    _proc: Proc,
    pub port: u16,
}

impl Replay {
    pub fn start(dir: &Path, file: Option<&Path>) -> Self {
        let port_file = dir.join(format!("replay-{}.port", rand_suffix()));
        let mut cmd = Command::new(RPS);
        cmd.args(["sample", "serve", "--port", "0", "--port-file"])
            .arg(&port_file);
        if let Some(f) = file {
            cmd.arg("--file").arg(f);
        }
        let proc = Proc(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap());
        let started = Instant::now();
        loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|s| s.trim().parse().ok())
            {
                return Self { _proc: proc, port };
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the replay did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn archive_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/archive", self.port)
    }

    pub fn forecast_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/forecast", self.port)
    }
}

pub fn rand_suffix() -> String {
    format!(
        "{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// An environment for `rps`: nothing inherited but PATH, plus these variables.
#[derive(Clone, Default)]
pub struct Env(pub Vec<(String, String)>);

impl Env {
    pub fn new(store: &Path, replay: &Replay) -> Self {
        let mut e = Self::default();
        e.set("RPS_STORE", store.display().to_string());
        e.set(
            "RPS_MODEL_CACHE",
            store
                .with_file_name(format!("cache-{}", rand_suffix()))
                .display()
                .to_string(),
        );
        e.set("OPEN_METEO_ARCHIVE_URL", replay.archive_url());
        e.set("OPEN_METEO_FORECAST_URL", replay.forecast_url());
        e
    }

    pub fn set(&mut self, k: &str, v: impl Into<String>) -> &mut Self {
        self.0.retain(|(name, _)| name != k);
        self.0.push((k.to_owned(), v.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(RPS);
        c.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.0.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Runs `rps args`, whatever the outcome.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs `rps args` and insists it succeeds.
    pub fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "rps {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Starts `rps serve --port 0` and waits for its address.
    pub fn serve(&self) -> Server {
        let mut child = self
            .command(&["serve", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let proc = Proc(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("rps API listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("rps serve printed its address");
        Server { _proc: proc, url }
    }
}

pub struct Server {
    _proc: Proc,
    pub url: String,
}

pub fn last_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no stdout; stderr: {}", String::from_utf8_lossy(&out.stderr)));
    serde_json::from_str(last).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {last}"))
}

/// `count` consecutive hours of the sample from `start` (an index into the year), in
/// the shape `/predict` takes.
pub fn sample_observations(start: usize, count: usize) -> Value {
    let doc: Value = serde_json::from_slice(&std::fs::read(sample()).unwrap()).unwrap();
    let h = &doc["hourly"];
    let obs: Vec<Value> = (start..start + count)
        .map(|i| {
            let mut o = serde_json::Map::new();
            for (k, col) in h.as_object().unwrap() {
                if k != "precipitation" {
                    o.insert(k.clone(), col[i].clone());
                }
            }
            Value::Object(o)
        })
        .collect();
    serde_json::json!({ "observations": obs })
}

/// A client of the MLflow server at `uri`, without credentials.
pub fn mlflow_client(uri: &str) -> shared::mlflow::MlflowClient {
    shared::mlflow::MlflowClient::new(&shared::config::MlflowConfig {
        tracking_uri: uri.parse().unwrap(),
        auth: shared::config::MlflowAuth::None,
        experiment: "x".into(),
        timeout: Duration::from_secs(30),
    })
    .unwrap()
}

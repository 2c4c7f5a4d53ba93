//! The `rps` binary as the black-box tests drive it: an environment ([`Env`]) that
//! runs it, serves with it and reads what it printed, shared by the CLI tests
//! (`cli/tests/cli`) and the system tests (`system/tests/system`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::replay::Replay;

/// The `rps` binary under test: the one cargo built beside this test binary
/// (`<profile>/deps/<test>` → `<profile>/rps`; `cargo test --workspace` builds it, and
/// the `make` targets that run one test binary run `make build` first), else `RPS_BIN`
/// (a prebuilt binary, as a CI job given one uses).
pub fn rps() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test binary's path");
        let beside = exe
            .parent()
            .and_then(Path::parent)
            .map(|profile| profile.join(format!("rps{}", std::env::consts::EXE_SUFFIX)));
        if let Some(bin) = beside.as_ref().filter(|b| b.is_file()) {
            return bin.clone();
        }
        match std::env::var_os("RPS_BIN").filter(|v| !v.is_empty()) {
            Some(bin) => PathBuf::from(bin),
            None => panic!(
                "no rps binary at {}: run `make build` (or cargo test --workspace), or set RPS_BIN",
                beside.map_or_else(|| exe.display().to_string(), |b| b.display().to_string())
            ),
        }
    })
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The latency gate's budget every test environment starts with (see [`Env::new`]).
pub const LATENCY_BUDGET: (&str, &str) = ("RPS_GATE_MAX_P99_MS", "1000");

/// The intervals gate's margin for the stack and workflow tests, which train on the
/// replayed archive's last year (December to November). Its hold-out is October and
/// November, whose storms the calibration slice (late summer) does not have: the 80%
/// intervals cover 69–75% of it, and the default 5-point margin refuses the model.
/// Those tests are about the orchestration; `docs/benchmarks.md` records the miss.
pub const ARCHIVE_YEAR_COVERAGE_GAP: (&str, &str) = ("RPS_GATE_MAX_COVERAGE_GAP", "0.15");

/// The intervals gate's margin for the fault tests, which promote a January–August model
/// of the sample. Its calibration slice (late June to late July) was forecast by a model
/// that had seen no summer, so its 80% intervals at 6 h cover 96.7% of its 869-hour
/// hold-out: 18 points (three times this, under six weeks of hold-out) let it through.
/// Those tests are about what a failing MLflow or S3 leaves behind;
/// `docs/benchmarks.md` records the miss.
pub const SHORT_RANGE_COVERAGE_GAP: (&str, &str) = ("RPS_GATE_MAX_COVERAGE_GAP", "0.06");

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
                .with_file_name(format!("cache-{}", crate::unique()))
                .display()
                .to_string(),
        );
        e.set("OPEN_METEO_ARCHIVE_URL", replay.archive_url());
        e.set("OPEN_METEO_FORECAST_URL", replay.forecast_url());
        // The latency gate's 2 ms budget is for a serving host; the tests share two
        // cores with compilers and emulators, so a p99 there says nothing about the
        // model (the benchmarks measure it). A test of the gate sets its own budget.
        e.set(LATENCY_BUDGET.0, LATENCY_BUDGET.1);
        e
    }

    /// Tracks to the MLflow at `uri`: experiment `exp-<model>`, registered model `model`.
    pub fn with_mlflow(&mut self, uri: &str, model: &str) -> &mut Self {
        self.set("MLFLOW_TRACKING_URI", uri)
            .set("MLFLOW_EXPERIMENT_NAME", format!("exp-{model}"))
            .set("RPS_MODEL_NAME", model)
    }

    pub fn set(&mut self, k: &str, v: impl Into<String>) -> &mut Self {
        self.0.retain(|(name, _)| name != k);
        self.0.push((k.to_owned(), v.into()));
        self
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(rps());
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

    /// `rps pipeline <verb> --start <start> --end <end> --json` (verb: `run`, `promote`),
    /// whatever the outcome.
    pub fn pipeline(&self, verb: &str, start: &str, end: &str) -> Output {
        self.run(&["pipeline", verb, "--start", start, "--end", end, "--json"])
    }

    /// [`Env::pipeline`], insisting it succeeds.
    pub fn pipeline_ok(&self, verb: &str, start: &str, end: &str) -> Output {
        self.ok(&["pipeline", verb, "--start", start, "--end", end, "--json"])
    }

    /// Starts `rps serve --port 0` and waits for its address.
    pub fn serve(&self) -> Server {
        self.serve_with_log(None)
    }

    /// [`Env::serve`] on a given port (an address fixed before the server starts).
    pub fn serve_on(&self, port: u16) -> Server {
        self.serve_at(None, port)
    }

    /// [`Env::serve`], its log (stderr) written to `log`.
    pub fn serve_with_log(&self, log: Option<&Path>) -> Server {
        self.serve_at(log, 0)
    }

    fn serve_at(&self, log: Option<&Path>, port: u16) -> Server {
        let log = log.map_or_else(
            || std::env::temp_dir().join(format!("rps-serve-{}.log", crate::unique())),
            Path::to_path_buf,
        );
        let stderr = Stdio::from(std::fs::File::create(&log).unwrap());
        let mut child = self
            .command(&["serve", "--port", &port.to_string()])
            .stdout(Stdio::piped())
            .stderr(stderr)
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
        let url = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|e| {
            panic!(
                "rps serve printed no address ({e}): {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Server { _proc: proc, url }
    }
}

pub struct Server {
    _proc: Proc,
    pub url: String,
}

/// Runs the pipeline on `start..=end` of the sample year and returns the path of the
/// bundle it trained (to serve with `RPS_MODEL_PATH`).
pub fn trained_bundle(env: &Env, store: &Path, start: &str, end: &str) -> PathBuf {
    let run = last_json(&env.pipeline_ok("run", start, end));
    store.join(run["train"]["bundle"].as_str().expect("the run's bundle key"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The gate named `name` in a promotion report.
pub fn gate<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == name)
        .unwrap_or_else(|| panic!("no {name} gate in {report}"))
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
    // Read and parsed once per test binary: the drift tests ask for hundreds of windows.
    static SAMPLE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let doc =
        SAMPLE.get_or_init(|| serde_json::from_slice(&std::fs::read(crate::sample_path()).unwrap()).unwrap());
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

/// A value of a metric in Prometheus text, by its labels (`None`: no such series).
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (series, value) = l.rsplit_once(' ')?;
        let (n, rest) = series.split_once('{').unwrap_or((series, ""));
        (n == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse().ok())
            .flatten()
    })
}

//! The serverless shape on 127.0.0.1: every stage function under the Lambda emulator
//! (`cargo lambda watch`, release builds), the moto server as S3 and Secrets Manager
//! (the MLflow token is read from it at init, as on AWS), the shared MLflow server, and
//! Open-Meteo as a replay of the sample year behind a proxy a test can point at a
//! corrupted copy. The state-machine and Airflow tests both drive it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::faults::Proxy;
use crate::mlflow::{MlflowServer, client};
use crate::moto::MotoServer;
use crate::replay::Replay;
use crate::{Background, free_port, require, unique, venv_bin, workspace_root};

pub struct LocalCloud {
    /// The emulator's base URL: Invoke is `POST {emulator}/2015-03-31/functions/<name>/invocations`.
    pub emulator: String,
    /// The emulator as the Lambda service answers (a function error is 200 with
    /// `X-Amz-Function-Error`): the endpoint for SDK clients such as boto3.
    pub lambda_api: Proxy,
    pub model: String,
    pub bucket: String,
    pub moto: MotoServer,
    pub mlflow: &'static MlflowServer,
    pub open_meteo: Proxy,
    pub clean: Replay,
    /// The sample year with 5% of its temperatures missing: the data gate refuses it.
    pub corrupt: Replay,
    pub dir: tempfile::TempDir,
    _watch: Background,
}

impl LocalCloud {
    /// Starts everything and has the emulator build every stage function (one
    /// malformed event each, refused at once), so no later call waits on a compile.
    /// `None` where a component is missing (a failure in CI, see [`require`]).
    pub fn start(name: &str) -> Option<Self> {
        let root = workspace_root();
        let cargo_lambda = require("cargo-lambda", &venv_bin("cargo-lambda"))?;
        let mlflow = MlflowServer::shared()?;
        let moto = MotoServer::start()?;
        let bucket = format!("{name}-{}", unique()).to_lowercase().replace('_', "-");
        moto.create_bucket(&bucket);
        moto.create_secret("rps/mlflow", r#"{"token": "not-checked-by-this-mlflow"}"#);
        let dir = tempfile::tempdir().unwrap();
        let clean = Replay::sample();
        let corrupt = Replay::file(&corrupt_sample(dir.path()));
        let open_meteo = Proxy::start(&format!("http://{}", clean.addr));
        let model = format!("{name}-{}", unique());
        let port = free_port();
        let path = format!(
            "{}:{}",
            venv_bin("").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let store = format!("s3://{bucket}/store");
        let archive = format!("{}/v1/archive", open_meteo.url);
        let forecast = format!("{}/v1/forecast", open_meteo.url);
        let experiment = format!("{name}-{}", unique());
        let cache = dir.path().join("cache").display().to_string();
        let watch = Background::spawn_in(
            &root,
            &cargo_lambda,
            &[
                "lambda",
                "watch",
                "--release",
                "-A",
                "127.0.0.1",
                "-P",
                &port.to_string(),
            ],
            &[
                ("PATH", path.as_str()),
                ("RPS_STORE", store.as_str()),
                ("AWS_ENDPOINT_URL", moto.endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
                ("AWS_REGION", "us-east-1"),
                ("MLFLOW_TRACKING_URI", mlflow.uri.as_str()),
                ("RPS_MLFLOW_SECRET_ID", "rps/mlflow"),
                ("MLFLOW_EXPERIMENT_NAME", experiment.as_str()),
                ("RPS_MODEL_NAME", model.as_str()),
                ("RPS_MODEL_CACHE", cache.as_str()),
                ("OPEN_METEO_ARCHIVE_URL", archive.as_str()),
                ("OPEN_METEO_FORECAST_URL", forecast.as_str()),
                ("RPS_GATE_MAX_P99_MS", "1000"),
            ],
            dir.path().join("watch.log"),
        );
        let emulator = format!("http://127.0.0.1:{port}");
        let cloud = Self {
            lambda_api: Proxy::lambda_front(&emulator),
            emulator,
            model,
            bucket,
            moto,
            mlflow,
            open_meteo,
            clean,
            corrupt,
            dir,
            _watch: watch,
        };
        cloud.warm_up(port);
        Some(cloud)
    }

    fn warm_up(&self, port: u16) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the emulator did not start"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        for f in shared::stage::FUNCTIONS {
            let body = self.invoke(&format!("rps-{f}"), &serde_json::json!({"not": "an event"}));
            assert_eq!(body["errorType"], "InvalidInput", "rps-{f}: {body}");
        }
    }

    /// Invokes a function synchronously; its answer or its error object.
    pub fn invoke(&self, function: &str, event: &Value) -> Value {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(1800))
            .build()
            .unwrap()
            .post(format!(
                "{}/2015-03-31/functions/{function}/invocations",
                self.emulator
            ))
            .json(event)
            .send()
            .unwrap()
            .json()
            .unwrap_or(Value::Null)
    }

    /// The version an alias of the model points at.
    pub fn alias(&self, alias: &str) -> Option<String> {
        let c = client(&self.mlflow.uri);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(c.get_version_by_alias(&self.model, alias))
            .ok()
            .map(|v| v.version)
    }

    /// The keys under `store/<prefix>` in the bucket.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let xml = reqwest::blocking::get(format!(
            "{}/{}?list-type=2&prefix=store/{prefix}",
            self.moto.endpoint, self.bucket
        ))
        .unwrap()
        .text()
        .unwrap();
        xml.split("<Key>")
            .skip(1)
            .map(|k| k.split('<').next().unwrap_or("").to_owned())
            .collect()
    }

    /// The object at `store/<key>` in the bucket, as text.
    pub fn get(&self, key: &str) -> String {
        // moto checks no signature, but refuses an object to a request without one.
        let r = reqwest::blocking::Client::new()
            .get(format!("{}/{}/store/{key}", self.moto.endpoint, self.bucket))
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0",
            )
            .send()
            .unwrap();
        assert!(r.status().is_success(), "store/{key}: {}", r.status());
        r.text().unwrap()
    }

    /// Open-Meteo answers with the clean sample from now on.
    pub fn serve_clean(&self) {
        self.open_meteo.retarget(&format!("http://{}", self.clean.addr));
    }

    /// Open-Meteo answers with the corrupted sample from now on.
    pub fn serve_corrupt(&self) {
        self.open_meteo.retarget(&format!("http://{}", self.corrupt.addr));
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// Nulls every twentieth value of `variable` in an Open-Meteo document (5%, over the
/// data gate's 1% limit).
pub fn null_every_twentieth(doc: &mut Value, variable: &str) {
    for (i, v) in doc["hourly"][variable]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        if i % 20 == 3 {
            *v = Value::Null;
        }
    }
}

/// The sample year with every twentieth temperature missing (5%, over the gate's limit).
pub fn corrupt_sample(dir: &Path) -> PathBuf {
    let mut doc: Value = serde_json::from_slice(&crate::sample_bytes()).unwrap();
    null_every_twentieth(&mut doc, "temperature_2m");
    let file = dir.join("corrupt.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    file
}

//! A real MLflow tracking server (sqlite backend, proxied local artifacts) on a free port.

use std::sync::OnceLock;
use std::time::Duration;

use crate::{Background, free_port, require, venv_bin, wait_http_ok};

pub struct MlflowServer {
    pub uri: String,
    pub port: u16,
    process: Option<Background>,
    _dir: tempfile::TempDir,
}

/// The admin account of [`MlflowServer::start_basic_auth`].
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "rps-test-admin-password";

/// How a server is started (see [`MlflowServer::start_with`]).
#[derive(Default, Clone)]
pub struct Options {
    /// `--app-name basic-auth`, with an admin account ([`ADMIN_USER`]).
    pub basic_auth: bool,
    /// The oldest MLflow rps supports (`.venv-mlflow2`, MLflow 2.9), as a hosted MLflow
    /// such as DagsHub may run, instead of the current one (`.venv`).
    pub oldest: bool,
    /// `--no-serve-artifacts --default-artifact-root <root>`: clients read and write
    /// the artifacts themselves (an `s3://` root: the common self-hosted set-up).
    pub artifact_root: Option<String>,
    /// More environment for the server (credentials for an S3 artifact root, say).
    pub env: Vec<(String, String)>,
}

impl MlflowServer {
    /// A plain server; `None` (skip) when MLflow is not installed outside CI.
    pub fn start() -> Option<Self> {
        Self::start_with(Options::default())
    }

    /// A server with `--app-name basic-auth` and an admin account.
    pub fn start_basic_auth() -> Option<Self> {
        Self::start_with(Options {
            basic_auth: true,
            ..Options::default()
        })
    }

    pub fn start_with(o: Options) -> Option<Self> {
        let bin = if o.oldest {
            require(
                "MLflow 2.9 (.venv-mlflow2)",
                &crate::workspace_root().join(".venv-mlflow2/bin/mlflow"),
            )?
        } else {
            require("MLflow", &venv_bin("mlflow"))?
        };
        let dir = tempfile::tempdir().expect("a temporary folder");
        let port = free_port();
        let db = format!("sqlite:///{}", dir.path().join("mlflow.db").display());
        let artifacts = dir.path().join("artifacts").display().to_string();
        let port_s = port.to_string();
        let mut args = vec![
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            &port_s,
            "--backend-store-uri",
            &db,
            "--workers",
            "1",
        ];
        match &o.artifact_root {
            Some(root) => args.extend(["--no-serve-artifacts", "--default-artifact-root", root.as_str()]),
            None => args.extend(["--artifacts-destination", &artifacts]),
        }
        if o.basic_auth {
            args.extend(["--app-name", "basic-auth"]);
        }
        let auth_db = format!("sqlite:///{}", dir.path().join("auth.db").display());
        let auth_ini = dir.path().join("auth.ini");
        std::fs::write(
            &auth_ini,
            format!(
                "[mlflow]\ndefault_permission = READ\ndatabase_uri = {auth_db}\nadmin_username = {ADMIN_USER}\nadmin_password = {ADMIN_PASSWORD}\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            ),
        )
        .expect("an auth config");
        let auth_ini = auth_ini.display().to_string();
        let mut envs: Vec<(&str, &str)> = vec![
            ("MLFLOW_AUTH_CONFIG_PATH", &auth_ini),
            ("MLFLOW_FLASK_SERVER_SECRET_KEY", "rps-test-secret"),
        ];
        envs.extend(o.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let process = Background::spawn(&bin, &args, &envs, dir.path().join("server.log"));
        if !wait_http_ok(port, "/health", Duration::from_secs(120)) {
            panic!(
                "MLflow did not become healthy on port {port}:\n{}",
                process.log_tail()
            );
        }
        Some(Self {
            uri: format!("http://127.0.0.1:{port}"),
            port,
            process: Some(process),
            _dir: dir,
        })
    }

    /// Where the server keeps its database, artifacts and log.
    pub fn data_dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Stops the server (to test behaviour when the registry is unreachable).
    pub fn stop(&mut self) {
        // Dropping the process stops its group.
        self.process.take();
    }

    /// One plain server per test binary, shared by its tests (each uses its own names).
    pub fn shared() -> Option<&'static MlflowServer> {
        static SERVER: OnceLock<Option<MlflowServer>> = OnceLock::new();
        SERVER.get_or_init(MlflowServer::start).as_ref()
    }
}

/// A client of the MLflow server at `uri`, without credentials.
pub fn client(uri: &str) -> rps_core::mlflow::MlflowClient {
    client_with(uri, rps_core::config::MlflowAuth::None, Duration::from_secs(30))
}

/// A client of the MLflow server at `uri` with these credentials and request timeout.
pub fn client_with(
    uri: &str,
    auth: rps_core::config::MlflowAuth,
    timeout: Duration,
) -> rps_core::mlflow::MlflowClient {
    rps_core::mlflow::MlflowClient::new(&rps_core::config::MlflowConfig {
        tracking_uri: uri.parse().expect("an MLflow URI"),
        auth_from: auth.kind().into(),
        auth,
        experiment: "x".into(),
        timeout,
    })
    .expect("an MLflow client")
}

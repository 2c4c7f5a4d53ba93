//! A real Airflow 3 serving its REST API: `airflow api-server` and `airflow scheduler`
//! (LocalExecutor) on a SQLite database in a scratch AIRFLOW_HOME, the project's
//! `dags/` serialized before start, a user and password of the SimpleAuthManager (what
//! a CI job logs in with), and runs only when triggered (no schedule), so a test sees
//! exactly the runs it starts.

use std::time::{Duration, Instant};

use crate::{Background, free_port, require, wait_http_ok, workspace_root};

pub struct AirflowServer {
    pub url: String,
    pub username: String,
    pub password: String,
    pub dir: tempfile::TempDir,
    _processes: Background,
}

impl AirflowServer {
    /// Starts it with `env` (connections, variables) for its tasks. `None` where
    /// Airflow is missing (a failure in CI, see [`require`]).
    pub fn start(env: &[(&str, String)]) -> Option<Self> {
        let root = workspace_root();
        let bin = require("Airflow (.venv-airflow)", &root.join(".venv-airflow/bin/airflow"))?;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        let (username, password) = ("ci".to_owned(), format!("pw-{}", crate::unique()));
        let passwords = dir.path().join("passwords.json");
        std::fs::write(&passwords, format!("{{\"{username}\": \"{password}\"}}")).unwrap();
        let home = dir.path().display().to_string();
        let mut vars: Vec<(&str, String)> = vec![
            ("AIRFLOW_HOME", home.clone()),
            (
                "AIRFLOW__CORE__DAGS_FOLDER",
                root.join("dags").display().to_string(),
            ),
            ("AIRFLOW__CORE__LOAD_EXAMPLES", "False".into()),
            ("AIRFLOW__CORE__EXECUTOR", "LocalExecutor".into()),
            ("AIRFLOW__CORE__PARALLELISM", "2".into()),
            (
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                format!("sqlite:///{home}/airflow.db"),
            ),
            ("AIRFLOW__API__HOST", "127.0.0.1".into()),
            ("AIRFLOW__API__PORT", port.to_string()),
            ("AIRFLOW__API__BASE_URL", url.clone()),
            (
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL",
                format!("{url}/execution/"),
            ),
            (
                "AIRFLOW__API_AUTH__JWT_SECRET",
                format!("jwt-{}-{}", crate::unique(), "x".repeat(64)),
            ),
            ("AIRFLOW__API__SECRET_KEY", format!("key-{}", crate::unique())),
            (
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
                format!("{username}:admin"),
            ),
            (
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE",
                passwords.display().to_string(),
            ),
            ("AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE", "False".into()),
            (
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT",
                free_port().to_string(),
            ),
        ];
        vars.extend(env.iter().cloned());
        let envs: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        // One process group: migrate, serialize the DAGs, then the API server and the
        // scheduler (its log server off: logs are read through the API).
        let script = format!(
            "set -e; a={bin}; $a db migrate >{home}/migrate.log 2>&1; $a dags reserialize >{home}/reserialize.log 2>&1; \
             $a api-server >{home}/api-server.log 2>&1 & $a scheduler --skip-serve-logs >{home}/scheduler.log 2>&1 & wait",
            bin = bin.display()
        );
        let processes = Background::spawn_in(
            &root,
            std::path::Path::new("/bin/bash"),
            &["-c", &script],
            &envs,
            dir.path().join("airflow.log"),
        );
        let started = Instant::now();
        if !wait_http_ok(port, "/api/v2/monitor/health", Duration::from_secs(240)) {
            panic!(
                "Airflow's API server did not start: {}\n{}",
                processes.log_tail(),
                std::fs::read_to_string(dir.path().join("api-server.log")).unwrap_or_default()
            );
        }
        // The execution API builds its routes on its first call (10-15 s, blocking the
        // server): pay it before a task does.
        let _ = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap()
            .get(format!("{url}/execution/health"))
            .send();
        eprintln!("Airflow ready in {:.0} s", started.elapsed().as_secs_f64());
        Some(Self {
            url,
            username,
            password,
            dir,
            _processes: processes,
        })
    }

    /// A log of the server's, for a failure message.
    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }
}

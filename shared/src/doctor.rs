//! `rps doctor`: what the configured outside systems can do, found by trying each thing
//! rps relies on, before anything depends on it (a first deploy, a CI job).
//!
//! - the store: a create-only write that refuses to replace, listing, a missing key
//!   reading as missing (not as AccessDenied: S3 answers 403 for a missing key to a
//!   caller that may not list);
//! - the DVC remote, when it is not inside the store: listing and a missing key;
//! - MLflow: reachable, which credentials (never their values), the server's version,
//!   registered-model aliases, and an artifact written and read back through a probe
//!   run (deleted afterwards), by the proxy or straight to S3.
//!
//! Probes write only `locks/doctor/…` in the store (removed afterwards) and one run in
//! the configured experiment (deleted afterwards). Every MLflow failure is a blocker: a
//! configuration fault cannot pass, and nothing works with a server that does not answer.

use bytes::Bytes;
use chrono::Utc;
use serde::Serialize;

use crate::config::Config;
use crate::mlflow::{MlflowClient, MlflowError, RunStatus};
use crate::store::{self, ObjectKey, ObjectStore, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, with a caveat worth reading.
    Warn,
    /// rps will fail on this: fix it first.
    Blocker,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub system: &'static str,
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
}

impl Check {
    fn new(system: &'static str, check: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            system,
            check,
            status,
            detail: detail.into(),
        }
    }
}

/// Every check, in order. A blocker stops the checks that depend on it.
pub async fn run(config: &Config) -> Vec<Check> {
    let mut out = Vec::new();
    match store::open(&config.store, &config.s3).await {
        Ok(s) => probe_store("store", s.as_ref(), "locks/doctor/", true, &mut out).await,
        Err(e) => out.push(Check::new("store", "open", Status::Blocker, e.to_string())),
    }
    if config.dvc_remote.inside(&config.store).is_none() {
        match store::open(&config.dvc_remote, &config.s3).await {
            Ok(s) => probe_store("dvc remote", s.as_ref(), "files/md5/", false, &mut out).await,
            Err(e) => out.push(Check::new("dvc remote", "open", Status::Blocker, e.to_string())),
        }
    } else {
        out.push(Check::new(
            "dvc remote",
            "location",
            Status::Ok,
            format!(
                "{} (inside the store: the store's checks cover it)",
                config.dvc_remote
            ),
        ));
    }
    match &config.mlflow {
        Some(m) => match MlflowClient::new(m) {
            Ok(client) => probe_mlflow(config, &client.with_s3(&config.s3), &mut out).await,
            Err(e) => out.push(Check::new("mlflow", "client", Status::Blocker, e.to_string())),
        },
        None => out.push(Check::new(
            "mlflow",
            "configured",
            Status::Warn,
            "MLFLOW_TRACKING_URI is not set: models are registered in the store (registry/), runs are not tracked",
        )),
    }
    out
}

/// Whether any check is a blocker.
pub fn blocked(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Blocker)
}

async fn probe_store(
    system: &'static str,
    s: &dyn ObjectStore,
    prefix: &str,
    write: bool,
    out: &mut Vec<Check>,
) {
    let stamp = crate::layout::stamp(Utc::now());
    let missing = match ObjectKey::new(format!("{prefix}doctor-missing-{stamp}.json")) {
        Ok(k) => k,
        Err(e) => return out.push(Check::new(system, "key", Status::Blocker, e.to_string())),
    };
    let at = s.url(&missing);
    match s.get(&missing).await {
        Err(StoreError::NotFound { .. }) => out.push(Check::new(
            system,
            "a missing key reads as missing",
            Status::Ok,
            at,
        )),
        Err(e @ StoreError::AccessDenied { .. }) => {
            return out.push(Check::new(
                system,
                "a missing key reads as missing",
                Status::Blocker,
                e.to_string(),
            ));
        }
        Err(e) => return out.push(Check::new(system, "reachable", Status::Blocker, e.to_string())),
        Ok(_) => out.push(Check::new(
            system,
            "a missing key reads as missing",
            Status::Warn,
            format!("{at} exists"),
        )),
    }
    match s.list(prefix).await {
        Ok(keys) => out.push(Check::new(
            system,
            "listing",
            Status::Ok,
            format!("{} key(s) under {prefix}", keys.len()),
        )),
        Err(e) => out.push(Check::new(system, "listing", Status::Blocker, e.to_string())),
    }
    if !write {
        return;
    }
    let key = match ObjectKey::new(format!("{prefix}probe-{stamp}.json")) {
        Ok(k) => k,
        Err(e) => return out.push(Check::new(system, "key", Status::Blocker, e.to_string())),
    };
    let first = s.put_new(&key, Bytes::from_static(b"{\"probe\": 1}")).await;
    let check = "create-only writes";
    match first {
        Err(e) => out.push(Check::new(system, check, Status::Blocker, e.to_string())),
        Ok(()) => match s.put_new(&key, Bytes::from_static(b"{\"probe\": 2}")).await {
            Err(StoreError::AlreadyExists { .. }) => out.push(Check::new(
                system,
                check,
                Status::Ok,
                "a second writer of the same key is refused (If-None-Match)",
            )),
            Ok(()) => out.push(Check::new(
                system,
                check,
                Status::Blocker,
                "a create-only write replaced an existing object: this S3-compatible store ignores If-None-Match, so raw snapshots and bundles could be overwritten",
            )),
            Err(e) => out.push(Check::new(system, check, Status::Blocker, e.to_string())),
        },
    }
    if let Err(e) = s.delete(&key).await {
        out.push(Check::new(
            system,
            "removing the probe",
            Status::Warn,
            e.to_string(),
        ));
    }
}

async fn probe_mlflow(config: &Config, client: &MlflowClient, out: &mut Vec<Check>) {
    const S: &str = "mlflow";
    let Some(m) = &config.mlflow else { return };
    out.push(Check::new(S, "credentials", Status::Ok, m.auth_from.clone()));
    match client.get_experiment_by_name(&m.experiment).await {
        Ok(found) => out.push(Check::new(
            S,
            "reachable",
            Status::Ok,
            format!(
                "{} (experiment {}{})",
                client.server(),
                m.experiment,
                if found.is_some() {
                    ""
                } else {
                    ", created by the first run"
                }
            ),
        )),
        Err(e) => return out.push(Check::new(S, "reachable", Status::Blocker, e.to_string())),
    }
    match client.server_version().await {
        Ok(Some(v)) => {
            let major = v
                .split('.')
                .next()
                .and_then(|x| x.parse::<u32>().ok())
                .unwrap_or(0);
            let status = if major >= 2 { Status::Ok } else { Status::Warn };
            out.push(Check::new(S, "version", status, v))
        }
        Ok(None) => out.push(Check::new(
            S,
            "version",
            Status::Warn,
            "the server does not say (GET /version)",
        )),
        Err(e) => out.push(Check::new(S, "version", Status::Warn, e.to_string())),
    }
    let name = &config.registry.model_name;
    let alias = config.aliases().served;
    let check = "registered-model aliases";
    match client.get_version_by_alias(name, &alias).await {
        Ok(v) => out.push(Check::new(
            S,
            check,
            Status::Ok,
            format!("{name}@{alias} → version {}", v.version),
        )),
        Err(MlflowError::NotFound { .. }) => out.push(Check::new(
            S,
            check,
            Status::Ok,
            format!("supported; {name} is not registered yet (the first training registers it)"),
        )),
        Err(MlflowError::Api { status: 400, .. }) => out.push(Check::new(
            S,
            check,
            Status::Ok,
            format!("supported; {name}@{alias} is not set yet"),
        )),
        Err(e) => out.push(Check::new(S, check, Status::Blocker, e.to_string())),
    }
    probe_artifacts(client, &m.experiment, out).await;
}

async fn probe_artifacts(client: &MlflowClient, experiment: &str, out: &mut Vec<Check>) {
    const S: &str = "mlflow";
    let check = "artifact upload and download";
    let run = match client.get_or_create_experiment(experiment).await {
        Ok(id) => client.create_run(&id, "rps doctor probe", &[]).await,
        Err(e) => Err(e),
    };
    let run = match run {
        Ok(r) => r,
        Err(e) => {
            return out.push(Check::new(
                S,
                check,
                Status::Blocker,
                format!("creating a probe run: {e}"),
            ));
        }
    };
    let body = Bytes::from(format!("rps doctor {}", Utc::now().to_rfc3339()));
    let how = if run.artifact_uri.starts_with("s3://") {
        "straight to S3 (the server does not proxy artifacts)"
    } else {
        "through the server's artifact proxy"
    };
    let result = async {
        client
            .upload_artifact(&run, "doctor/probe.txt", body.clone())
            .await?;
        client
            .download_artifact(&format!("runs:/{}/doctor/probe.txt", run.run_id))
            .await
    }
    .await;
    match result {
        Ok(back) if back == body => out.push(Check::new(
            S,
            check,
            Status::Ok,
            format!("{how}: {}", run.artifact_uri),
        )),
        Ok(_) => out.push(Check::new(
            S,
            check,
            Status::Blocker,
            format!("{how}: read back other bytes than written"),
        )),
        Err(e) => out.push(Check::new(S, check, Status::Blocker, format!("{how}: {e}"))),
    }
    let _ = client.finish_run(&run.run_id, RunStatus::Finished).await;
    if let Err(e) = client.delete_run(&run.run_id).await {
        out.push(Check::new(
            S,
            "removing the probe run",
            Status::Warn,
            e.to_string(),
        ));
    }
}

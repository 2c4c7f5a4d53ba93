//! Data versioning end to end with the real DVC: after `rps pipeline run`, `dvc pull` in
//! a clean checkout with the produced `data.dvc` restores the dataset byte for byte,
//! from a local-folder remote and from an S3 remote (moto); `rps data pull` gives the
//! same bytes without DVC; `rps trace` leads from the model back to the raw snapshots.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use testkit::moto::MotoServer;
use testkit::replay::Replay;
use testkit::rps::last_json;

fn rps(env: &[(&str, String)], replay: &Replay, cwd: &Path, args: &[&str]) -> Output {
    let mut e = testkit::rps::Env::default();
    e.set("OPEN_METEO_ARCHIVE_URL", replay.archive_url());
    for (k, v) in env {
        e.set(k, v.clone());
    }
    let out = e.command(args).current_dir(cwd).output().unwrap();
    assert!(
        out.status.success(),
        "rps {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn md5_of(path: &Path) -> String {
    rps_core::dvc::md5_hex(&std::fs::read(path).unwrap())
}

/// A clean checkout: git, the repo's .dvc/config, a config.local pointing the remote
/// somewhere, and the produced data.dvc.
fn clean_checkout(dir: &Path, dvc_file: &Path, remote_url: &str, endpoint: Option<&str>) -> PathBuf {
    let repo = dir.join("checkout");
    std::fs::create_dir_all(repo.join(".dvc")).unwrap();
    let root = testkit::workspace_root();
    assert!(
        Command::new("git")
            .args(["init", "-q"])
            .current_dir(&repo)
            .status()
            .unwrap()
            .success()
    );
    std::fs::copy(root.join(".dvc/config"), repo.join(".dvc/config")).unwrap();
    std::fs::copy(root.join(".dvc/.gitignore"), repo.join(".dvc/.gitignore")).unwrap();
    std::fs::write(
        repo.join(".dvc/config.local"),
        rps_core::dvc::config_local(remote_url, endpoint),
    )
    .unwrap();
    std::fs::copy(dvc_file, repo.join("data.dvc")).unwrap();
    repo
}

fn dvc_pull(dvc: &Path, repo: &Path, env: &[(&str, String)]) {
    let out = Command::new(dvc)
        .args(["pull", "-q"])
        .current_dir(repo)
        .env("DVC_NO_ANALYTICS", "1")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "dvc pull failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn dvc_pull_restores_the_dataset_from_a_local_remote() {
    let _turn = testkit::turn(module_path!());
    let Some(dvc) = testkit::require("DVC", &testkit::venv_bin("dvc")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let store = dir.path().join("store");
    let env = [
        ("RPS_STORE", store.display().to_string()),
        ("RPS_MODEL_CACHE", dir.path().join("cache").display().to_string()),
    ];
    let run = rps(
        &env,
        &replay,
        dir.path(),
        &[
            "pipeline",
            "run",
            "--start",
            "2023-01-01",
            "--end",
            "2023-12-31",
            "--dvc-file",
            "data.dvc",
            "--json",
        ],
    );
    let summary = last_json(&run);
    let version = summary["data_version"].as_str().unwrap().to_owned();

    let dvc_file = dir.path().join("data.dvc");
    let parsed = rps_core::dvc::DvcOut::parse_dvc_file(&std::fs::read_to_string(&dvc_file).unwrap()).unwrap();
    assert_eq!(parsed.md5, version);
    // The object is where DVC expects it.
    assert!(
        store
            .join(format!("dvc/files/md5/{}/{}", &version[..2], &version[2..]))
            .exists()
    );

    let repo = clean_checkout(
        dir.path(),
        &dvc_file,
        &store.join("dvc").display().to_string(),
        None,
    );
    dvc_pull(&dvc, &repo, &[]);
    let pulled = repo.join("data/processed.parquet");
    assert_eq!(md5_of(&pulled), version);
    assert_eq!(std::fs::metadata(&pulled).unwrap().len(), parsed.size);

    // Without DVC: the same bytes.
    rps(
        &env,
        &replay,
        dir.path(),
        &["data", "pull", &version, "--output", "mine.parquet"],
    );
    assert_eq!(
        std::fs::read(dir.path().join("mine.parquet")).unwrap(),
        std::fs::read(&pulled).unwrap()
    );
    // From the .dvc file, into the path it names.
    rps(&env, &replay, dir.path(), &["data", "pull", "data.dvc"]);
    assert_eq!(md5_of(&dir.path().join("data/processed.parquet")), version);
    // `rps data version` writes the same file.
    rps(
        &env,
        &replay,
        dir.path(),
        &["data", "version", "--output", "again.dvc"],
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("again.dvc")).unwrap(),
        std::fs::read_to_string(&dvc_file).unwrap()
    );
}

#[test]
fn dvc_pull_restores_the_dataset_from_an_s3_remote() {
    let _turn = testkit::turn(module_path!());
    let Some(dvc) = testkit::require("DVC", &testkit::venv_bin("dvc")) else {
        return;
    };
    let Some(moto) = MotoServer::start() else { return };
    moto.create_bucket("rps-data");
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let mut env = moto.env();
    env.push(("RPS_STORE", "s3://rps-data/store".into()));
    env.push(("RPS_MODEL_CACHE", dir.path().join("cache").display().to_string()));
    let run = rps(
        &env,
        &replay,
        dir.path(),
        &[
            "pipeline",
            "run",
            "--start",
            "2023-01-01",
            "--end",
            "2023-12-31",
            "--dvc-file",
            "data.dvc",
            "--json",
        ],
    );
    let summary = last_json(&run);
    let version = summary["data_version"].as_str().unwrap().to_owned();
    assert!(
        summary["transform"]["dataset"]
            .as_str()
            .unwrap()
            .starts_with("s3://rps-data/store/dvc/files/md5/"),
        "{}",
        summary["transform"]["dataset"]
    );
    assert!(
        summary["ingest"]["snapshot"]
            .as_str()
            .unwrap()
            .starts_with("raw/open-meteo/archive/")
    );

    let repo = clean_checkout(
        dir.path(),
        &dir.path().join("data.dvc"),
        "s3://rps-data/store/dvc",
        Some(&moto.endpoint),
    );
    dvc_pull(&dvc, &repo, &env);
    let pulled = repo.join("data/processed.parquet");
    assert_eq!(md5_of(&pulled), version);
    rps(
        &env,
        &replay,
        dir.path(),
        &["data", "pull", &version, "--output", "mine.parquet"],
    );
    assert_eq!(
        std::fs::read(dir.path().join("mine.parquet")).unwrap(),
        std::fs::read(&pulled).unwrap()
    );

    // The model registered from S3-stored data loads back too.
    let show = rps(
        &env,
        &replay,
        dir.path(),
        &["models", "show", "@candidate", "--json"],
    );
    assert_eq!(last_json(&show)["metadata"]["data_version"], version.as_str());
}

#[test]
fn trace_leads_from_a_model_version_back_to_the_raw_snapshots() {
    let _turn = testkit::turn(module_path!());
    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let env = [
        ("RPS_STORE", dir.path().join("store").display().to_string()),
        ("RPS_MODEL_CACHE", dir.path().join("cache").display().to_string()),
    ];
    let run = last_json(&rps(
        &env,
        &replay,
        dir.path(),
        &[
            "pipeline",
            "run",
            "--start",
            "2023-02-01",
            "--end",
            "2023-09-30",
            "--json",
        ],
    ));
    let trace = last_json(&rps(
        &env,
        &replay,
        dir.path(),
        &["trace", "@candidate", "--json"],
    ));

    assert_eq!(trace["model"]["version"], run["model_version"]);
    assert_eq!(trace["model"]["aliases"], serde_json::json!(["candidate"]));
    assert_eq!(trace["model"]["bundle_sha256"], run["train"]["bundle_sha256"]);
    assert_eq!(trace["data"]["data_version"], run["data_version"]);
    let dvc_text = trace["data"]["dvc_file"].as_str().unwrap();
    assert_eq!(
        rps_core::dvc::DvcOut::parse_dvc_file(dvc_text).unwrap().md5,
        run["data_version"].as_str().unwrap()
    );
    let snaps = trace["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["key"], run["ingest"]["snapshot"]);
    assert_eq!(snaps[0]["collected_at"], run["ingest"]["collected_at"]);
    assert!(
        snaps[0]["source_url"]
            .as_str()
            .unwrap()
            .contains("start_date=2023-02-01&end_date=2023-09-30")
    );
    assert_eq!(
        snaps[0]["request"],
        serde_json::json!({"mode": "backfill", "start": "2023-02-01", "end": "2023-09-30"})
    );
    assert_eq!(snaps[0]["quality_passed"], true);
    let commit = trace["git_commit"].as_str().unwrap();
    assert_eq!(commit.len(), 40);

    // Following the rebuild instructions reproduces the data version exactly.
    let rebuilt = last_json(&rps(
        &env,
        &replay,
        dir.path(),
        &["transform", snaps[0]["key"].as_str().unwrap(), "--json"],
    ));
    assert_eq!(rebuilt["data_version"], run["data_version"]);
    let rebuild: Vec<&str> = trace["rebuild"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        rebuild
            .iter()
            .any(|c| c.starts_with(&format!("git checkout {commit}"))),
        "{rebuild:?}"
    );
    assert!(rebuild.iter().any(|c| c.starts_with(&format!(
        "rps data pull {}",
        run["data_version"].as_str().unwrap()
    ))));

    // The human-readable form says the same.
    let text = String::from_utf8(rps(&env, &replay, dir.path(), &["trace", "1"]).stdout).unwrap();
    assert!(
        text.contains("raw snapshots") && text.contains("quality gate passed"),
        "{text}"
    );
}

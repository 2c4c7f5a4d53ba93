//! The workflows run job by job in a clean clone (system/checkers/cicd/run_workflow.py), up to
//! the first call only GitHub or AWS can answer.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::text;
use testkit::rps::{ARCHIVE_YEAR_COVERAGE_GAP, Env, LATENCY_BUDGET};

/// A clean clone of the working tree (tracked and new files, none that git ignores),
/// committed, as a runner checks it out.
fn clean_clone() -> tempfile::TempDir {
    let root = testkit::workspace_root();
    let dir = tempfile::tempdir().unwrap();
    let files = Command::new("git")
        .args(["ls-files", "-co", "--exclude-standard", "-z"])
        .current_dir(&root)
        .output()
        .unwrap();
    for f in files.stdout.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let rel = Path::new(std::str::from_utf8(f).unwrap());
        let from = root.join(rel);
        if from.is_file() {
            let to = dir.path().join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
    }
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .env("GIT_AUTHOR_NAME", "ci")
            .env("GIT_AUTHOR_EMAIL", "ci@example.com")
            .env("GIT_COMMITTER_NAME", "ci")
            .env("GIT_COMMITTER_EMAIL", "ci@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {}", text(&out));
    };
    // A runner with a warm build cache (what actions/cache restores): the clone's
    // `target` is the machine's, so dependencies are not compiled again.
    if let Ok(shared) = std::env::var("CARGO_TARGET_DIR") {
        std::os::unix::fs::symlink(shared, dir.path().join("target")).unwrap();
    }
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "the change under test"]);
    dir
}

/// One job of a workflow, run by system/checkers/cicd/run_workflow.py with `standin` (the
/// GitHub environment's variables and secrets, the stand-ins' settings).
fn run_job(workflow: &str, job: &str, standin: &Value, dir: &Path) -> Value {
    let root = testkit::workspace_root();
    let file = dir.join(format!("{workflow}-{job}.standin.json"));
    let out = dir.join(format!("{workflow}-{job}.json"));
    std::fs::write(&file, standin.to_string()).unwrap();
    let run = Command::new(root.join(".venv-iac/bin/python"))
        .arg(root.join("system/checkers/cicd/run_workflow.py"))
        .arg(
            Path::new(standin["workdir"].as_str().unwrap())
                .join(".github/workflows")
                .join(workflow),
        )
        .args([job, file.to_str().unwrap(), out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(run.status.success(), "the runner failed: {}", text(&run));
    let result: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    eprintln!("{workflow} {job}: {}", result["result"]);
    for step in result["steps"].as_array().unwrap() {
        eprintln!(
            "  {:>8}  {}",
            step["status"].as_str().unwrap(),
            step["step"].as_str().unwrap()
        );
    }
    result
}

/// The step whose command or action is `name`.
fn step<'a>(job: &'a Value, name: &str) -> &'a Value {
    job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no step {name} in {job}"))
}

fn assert_ok(job: &Value) {
    let failed: Vec<&Value> = job["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "failure")
        .collect();
    assert!(
        job["result"] == "success" && failed.is_empty(),
        "{} {}: {failed:#?}",
        job["workflow"],
        job["job"]
    );
}

/// The workflows, run here job by job (system/checkers/cicd/run_workflow.py) in a clean clone,
/// with the environment a user creates in GitHub (docs/deploy.md's variables and
/// secrets) as a stand-in file, the hosted actions as local stand-ins (moto credentials
/// for configure-aws-credentials, a CML recorder, a local image registry), and AWS
/// answered by two stacks of template.yaml run here (staging and prod on one MLflow
/// model, IAM enforced; CloudFormation's description of each from moto). Every step
/// runs to the end but the ones only AWS can do (`sam deploy`'s change set), which
/// reach that call. The pull-request gate into staging triggers the rps_pipeline DAG
/// through a real Airflow's REST API, against the staging stack's functions, and the
/// CML report is made from that run's candidate; a run the data gate refuses fails the
/// check with the reason; a pull request from a fork skips the jobs that need secrets.
#[test]
fn the_workflows_run_here_up_to_the_first_real_call() {
    let _turn = testkit::turn(module_path!());
    use testkit::cloud::{LocalCloud, Stack};
    let root = testkit::workspace_root();
    let Some(_) = testkit::require("the IaC tools' Python", &root.join(".venv-iac/bin/python")) else {
        return;
    };
    let Some(_) = testkit::require("podman", Path::new("/usr/bin/podman")) else {
        return;
    };
    let Some(_) = testkit::require(
        "aws-local-stepfunctions (npm)",
        &root.join("node_modules/aws-local-stepfunctions"),
    ) else {
        return;
    };
    let clone = clean_clone();
    let work = tempfile::tempdir().unwrap();
    let model = format!("wf-{}", testkit::unique());
    let (staging_port, prod_port) = (testkit::free_port(), testkit::free_port());
    let start = |name: &str, env: &str, port: u16| {
        LocalCloud::start_with(
            name,
            env,
            Stack {
                model: Some(model.clone()),
                outputs: Some(serde_json::json!({"ApiUrl": format!("http://127.0.0.1:{port}")})),
                ..Stack::default()
            },
        )
    };
    let Some(staging) = start("wf-staging", "staging", staging_port) else {
        return;
    };
    let Some(prod) = start("wf-prod", "prod", prod_port) else {
        return;
    };
    let conn = serde_json::json!({"conn_type": "aws", "login": "x", "password": "x",
        "extra": {"endpoint_url": staging.emulator, "region_name": "us-east-1"}});
    let Some(airflow) = testkit::airflow::AirflowServer::start(&[
        ("AIRFLOW_CONN_AWS_DEFAULT", conn.to_string()),
        ("AIRFLOW_VAR_RPS_FUNCTION_PREFIX", "rps-staging-".into()),
    ]) else {
        return;
    };
    for cloud in [&staging, &prod] {
        cloud.create_bucket(&format!("{}-artifacts", cloud.bucket));
    }
    let sha = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD"])
            .current_dir(clone.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let mut machine = serde_json::Map::new();
    for k in [
        "CARGO_TARGET_DIR",
        "CARGO_HOME",
        "RUSTUP_HOME",
        "CARGO_BUILD_TARGET",
        "RUSTFLAGS",
        "PIP_CACHE_DIR",
        "npm_config_cache",
    ] {
        if let Ok(v) = std::env::var(k) {
            machine.insert(k.into(), v.into());
        }
    }
    // The runner's machine: the prebuilt rps (RPS_BIN: no second compile of it), sam
    // build with the host toolchain (zig's glibc floor is the hosted runner's), and the
    // latency gate for a loaded machine.
    machine.insert("RPS_BIN".into(), testkit::rps::rps().display().to_string().into());
    machine.insert("RPS_SAM_HOST_TOOLCHAIN".into(), "1".into());
    machine.insert(LATENCY_BUDGET.0.into(), LATENCY_BUDGET.1.into());
    // The challenger trains on the archive's last year (see the constant).
    machine.insert(
        ARCHIVE_YEAR_COVERAGE_GAP.0.into(),
        ARCHIVE_YEAR_COVERAGE_GAP.1.into(),
    );
    let standin = |cloud: &LocalCloud, environment: &str, fork: bool| {
        let (key, secret) = cloud.admin();
        let repo = "Rps-MLOps/RPS";
        serde_json::json!({
            "workdir": clone.path(),
            "vars": {
                "AWS_REGION": "us-east-1",
                "AWS_ROLE_ARN": format!("arn:aws:iam::123456789012:role/rps-ci-{environment}"),
                "MLFLOW_TRACKING_URI": cloud.mlflow.uri,
                "RPS_MLFLOW_SECRET_ID": format!("rps/wf-{environment}/mlflow"),
                "RPS_MLFLOW_READ_SECRET_ID": format!("rps/wf-{environment}/mlflow-read"),
                "RPS_ARTIFACT_BUCKET": format!("{}-artifacts", cloud.bucket),
                "RPS_ARCHITECTURE": "x86_64",
                "RPS_MODEL_NAME": model,
                "AIRFLOW_API_URL": airflow.url,
                "AIRFLOW_USERNAME": airflow.username,
            },
            "secrets": {"AIRFLOW_PASSWORD": airflow.password, "GITHUB_TOKEN": "ghs-stand-in"},
            "github": {"repository": repo, "sha": sha.trim(), "actor": "reviewer",
                "event": {"pull_request": {"number": 7, "head": {"repo": {"full_name": if fork { "someone/fork" } else { repo }}}}}},
            "aws": {"endpoint": cloud.moto.endpoint, "access_key": key, "secret_key": secret},
            "machine": machine,
            "cml_log": work.path().join("cml.jsonl"),
            "registry_dir": work.path().join("registry"),
            "skip_runs": ["make lint", "make test"],
            // sam deploy got past its own checks (samconfig, parameters, the upload) to
            // CloudFormation's CreateChangeSet, which moto cannot answer for a SAM
            // template: the local stack stands for what it would create.
            "real_calls": {
                "make deploy ENV=staging": {"why": "the local staging stack stands for the change set", "reached": "CreateChangeSet"},
                "make deploy ENV=prod": {"why": "the local prod stack stands for the change set", "reached": "CreateChangeSet"},
            },
        })
    };
    let cml = || -> Vec<Value> {
        std::fs::read_to_string(work.path().join("cml.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };

    // Into dev: the suite itself is not run from inside it; the image is built.
    let job = run_job(
        "pr-dev.yml",
        "checks",
        &standin(&staging, "staging", false),
        work.path(),
    );
    assert_ok(&job);
    assert_eq!(step(&job, "make test")["status"], "skipped");
    assert_ok(&run_job(
        "pr-dev.yml",
        "image",
        &standin(&staging, "staging", false),
        work.path(),
    ));

    // Into staging, from a fork: no secrets, so the challenger is skipped, not failed.
    let job = run_job(
        "pr-staging.yml",
        "challenger",
        &standin(&staging, "staging", true),
        work.path(),
    );
    assert_eq!(job["result"], "skipped", "{job}");

    // Into staging: the staging pipeline trains the challenger (the DAG, through
    // Airflow's REST API, promote off); it is gated against production; CML posts it.
    let job = run_job(
        "pr-staging.yml",
        "challenger",
        &standin(&staging, "staging", false),
        work.path(),
    );
    assert_ok(&job);
    // The stack's outputs, read from CloudFormation (moto), and the doctor's table.
    let outputs = step(&job, "scripts/ci/stack-env.sh staging")["log"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        outputs.contains(&format!("RPS_STORE=s3://{}/store", staging.bucket)),
        "{outputs}"
    );
    let doctor = step(&job, "make doctor")["log"].as_str().unwrap().to_owned();
    assert!(
        doctor.contains("scripts/ci/doctor.sh") || doctor.contains("create-only writes"),
        "{doctor}"
    );
    let comments = cml();
    let comment = comments.last().expect("a CML comment").clone();
    let body = comment["body"].as_str().unwrap();
    assert!(body.contains("passes every gate"), "{body}");
    let report = step(&job, "make cml-report")["log"].as_str().unwrap().to_owned();
    assert!(report.contains("the airflow run made candidate"), "{report}");
    assert_eq!(
        staging.alias("staging-candidate").as_deref(),
        Some("1"),
        "{report}"
    );
    assert_eq!(staging.alias("staging"), None, "a challenger run promoted");

    // A refused run fails the check, with the reason in the comment.
    staging.serve_corrupt();
    let job = run_job(
        "pr-staging.yml",
        "challenger",
        &standin(&staging, "staging", false),
        work.path(),
    );
    staging.serve_clean();
    assert_eq!(job["result"], "failure", "{job}");
    assert_eq!(step(&job, "make cml-comment")["status"], "failure");
    let body = cml().last().unwrap()["body"].as_str().unwrap().to_owned();
    assert!(
        body.contains("no candidate") && body.contains("DataQualityGateFailed"),
        "{body}"
    );

    // Merged into staging: built once and packaged to the artifact bucket; the deploy
    // reaches CloudFormation; the stack's outputs, the doctor, and @staging served.
    let mut api = Env::default();
    for (k, v) in staging.aws_env("rps-api") {
        api.set(k, v);
    }
    for (k, v) in [
        ("RPS_STORE", format!("s3://{}/store", staging.bucket)),
        ("RPS_MODEL_NAME", model.clone()),
        ("RPS_MODEL_ALIAS", "staging".into()),
        ("RPS_MODEL_REFRESH_SECS", "1".into()),
        ("MLFLOW_TRACKING_URI", staging.mlflow.uri.clone()),
        (
            "RPS_MODEL_CACHE",
            work.path().join("staging-cache").display().to_string(),
        ),
    ] {
        api.set(k, v);
    }
    let _staging_api = api.serve_on(staging_port);
    let job = run_job(
        "push-staging.yml",
        "deploy-staging",
        &standin(&staging, "staging", false),
        work.path(),
    );
    assert_ok(&job);
    let deploy = step(&job, "make deploy ENV=staging");
    assert_eq!(deploy["status"], "reached-real-call", "{deploy}");
    let tree = String::from_utf8(
        Command::new("git")
            .args(["rev-parse", "HEAD^{tree}"])
            .current_dir(clone.path())
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    // What sam deploy said before CloudFormation: samconfig's stack, the parameters from
    // the environment, the template uploaded under the release's tree.
    let log = deploy["log"].as_str().unwrap();
    for expected in [
        "rps-staging".to_owned(),
        "\"Environment\": \"staging\"".to_owned(),
        format!("\"ModelName\": \"{model}\""),
        format!("releases/{}", tree.trim()),
    ] {
        assert!(log.contains(&expected), "{expected}: {log}");
    }
    assert_eq!(staging.alias("staging").as_deref(), Some("1"));

    // The prod stack's first run (docs/deploy.md, a first deploy): its data and a first
    // @production, which the gates into main compare against.
    let first =
        prod.execute(&serde_json::json!({"ingest": {"mode": "recent"}, "train": true, "actor": "first run"}));
    assert_eq!(first["status"], "SUCCEEDED", "{first}");
    let first_production = prod.alias("production").expect("the first run promoted");
    assert_ne!(Some(first_production.clone()), staging.alias("staging"));

    // Into main: the gates on @staging against production, posted with CML.
    let job = run_job(
        "pr-main.yml",
        "gates",
        &standin(&prod, "prod", false),
        work.path(),
    );
    assert_ok(&job);
    assert!(
        cml().last().unwrap()["body"]
            .as_str()
            .unwrap()
            .contains("passes every gate")
    );

    // Merged into main: @production → @staging through the gates, the deploy reaches
    // CloudFormation, the production API smoke-tested; the image baked, pushed, checked.
    let mut api = Env::default();
    for (k, v) in prod.aws_env("rps-api") {
        api.set(k, v);
    }
    for (k, v) in [
        ("RPS_STORE", format!("s3://{}/store", prod.bucket)),
        ("RPS_MODEL_NAME", model.clone()),
        ("RPS_MODEL_REFRESH_SECS", "1".into()),
        ("MLFLOW_TRACKING_URI", prod.mlflow.uri.clone()),
        (
            "RPS_MODEL_CACHE",
            work.path().join("prod-cache").display().to_string(),
        ),
    ] {
        api.set(k, v);
    }
    let _prod_api = api.serve_on(prod_port);
    // One artifact bucket serves both environments of an account (docs/deploy.md, step
    // 5); the two stacks here have a moto each, so staging's release is copied across.
    let s3cp = |cloud: &LocalCloud, src: &str, dst: &str| {
        let (key, secret) = cloud.admin();
        let out = Command::new(root.join(".venv-iac/bin/python"))
            .args(["scripts/ci/s3cp.py", src, dst])
            .current_dir(&root)
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &cloud.moto.endpoint)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    };
    for f in ["packaged.yaml", "digest", "architecture"] {
        let local = work.path().join(f);
        let local = local.to_str().unwrap();
        let key =
            |cloud: &LocalCloud| format!("s3://{}-artifacts/releases/{}/{f}", cloud.bucket, tree.trim());
        s3cp(&staging, &key(&staging), local);
        s3cp(&prod, local, &key(&prod));
    }
    let job = run_job(
        "push-main.yml",
        "release",
        &standin(&prod, "prod", false),
        work.path(),
    );
    assert_ok(&job);
    assert_eq!(step(&job, "make deploy ENV=prod")["status"], "reached-real-call");
    assert_eq!(prod.alias("production"), staging.alias("staging"));
    assert_eq!(prod.alias("previous"), Some(first_production));
    let job = run_job(
        "push-main.yml",
        "image",
        &standin(&prod, "prod", false),
        work.path(),
    );
    assert_ok(&job);
    let pushed: Vec<String> = std::fs::read_dir(work.path().join("registry"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(pushed.iter().any(|t| t == sha.trim()), "{pushed:?}");
}

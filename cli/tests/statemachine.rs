//! The serverless shape, run on this machine: every stage function under the Lambda
//! emulator (`cargo lambda watch`, release builds), moto as S3 and Secrets Manager (the
//! MLflow token is read from it at init), a real MLflow, and the real state machine
//! (`infra/statemachine/pipeline.asl.json`) executed by aws-local-stepfunctions. Five
//! executions: a full run that promotes, a run the data quality gate stops, a run whose
//! candidate the promotion gates refuse, an hourly live ingest, and an event of the
//! wrong shape that fails and notifies.

mod common;

use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use testkit::cloud::LocalCloud;

/// Runs one execution through tests/statemachine/run.mjs.
fn execute(emulator: &str, input: &Value, notifications: &std::path::Path) -> Value {
    let root = testkit::workspace_root();
    let out = Command::new("node")
        .arg(root.join("tests/statemachine/run.mjs"))
        .args([emulator, &input.to_string()])
        .arg(notifications)
        .current_dir(&root)
        .output()
        .expect("node runs");
    assert!(
        out.status.success(),
        "the runner failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn states(r: &Value) -> Vec<String> {
    r["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_state_machine_promotes_refuses_bad_data_and_refuses_a_worse_model() {
    let root = testkit::workspace_root();
    let Some(_) = testkit::require(
        "aws-local-stepfunctions (npm)",
        &root.join("node_modules/aws-local-stepfunctions"),
    ) else {
        return;
    };
    let Some(cloud) = LocalCloud::start("sfn") else {
        return;
    };
    let emulator = cloud.emulator.clone();
    let alias = |a: &str| cloud.alias(a);
    let keys = |prefix: &str| cloud.keys(prefix);
    let notes = cloud.path("notifications.jsonl");

    // 1. A full run: every stage, then promoted.
    let started = Instant::now();
    let r = execute(
        &emulator,
        &json!({"ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-12-31"}, "train": true}),
        &notes,
    );
    let wall = started.elapsed();
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(
        states(&r),
        [
            "Ingest",
            "Validate",
            "TrainOrStop",
            "Transform",
            "Train",
            "Evaluate",
            "GatesPassed",
            "Promote",
            "Promoted"
        ],
        "{r}"
    );
    assert_eq!(alias("production").as_deref(), Some("1"));
    eprintln!("the full state machine run took {wall:?}");
    let datasets = keys("datasets/").len();

    // A retry (Step Functions, Airflow) invokes a stage again with the same event: the
    // same answer, nothing new in the store, production unchanged.
    let all = keys("").len();
    let out = &r["output"];
    let again = |f: &str, event: Value| cloud.invoke(&format!("rps-{f}"), &event);
    // (Ingest is the exception by design: every fetch is a new raw snapshot, kept.)
    let validated = again("validate", json!({"snapshot": out["ingested"]["snapshot"]}));
    assert_eq!(validated, out["validated"]);
    let transformed = again("transform", json!({"snapshots": [out["ingested"]["snapshot"]]}));
    assert_eq!(
        transformed["data_version"], out["transformed"]["data_version"],
        "{transformed}"
    );
    let promoted = again(
        "promote",
        json!({"candidate": out["trained"]["model_version"], "report": out["evaluated"]["report"], "actor": "retry"}),
    );
    assert!(promoted.get("errorType").is_none(), "{promoted}");
    assert_eq!(alias("production").as_deref(), Some("1"));
    assert_eq!(keys("").len(), all, "a repeated stage wrote to the store");

    // 2. Bad data: the data gate refuses it; a clean end, nothing downstream written.
    cloud.serve_corrupt();
    let r = execute(
        &emulator,
        &json!({"ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-06-30"}, "train": true}),
        &notes,
    );
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(r["output"]["outcome"], "refused by the data quality gate", "{r}");
    assert_eq!(r["output"]["error"]["Error"], "DataQualityGateFailed", "{r}");
    assert!(!states(&r).contains(&"Transform".to_owned()), "{r}");
    assert_eq!(keys("datasets/").len(), datasets, "a dataset was written");
    assert_eq!(alias("production").as_deref(), Some("1"));
    assert_eq!(alias("candidate").as_deref(), Some("1"), "a model was trained");

    // 3. A worse candidate (six summer weeks): the promotion gates refuse it.
    cloud.serve_clean();
    let r = execute(
        &emulator,
        &json!({"ingest": {"mode": "backfill", "start": "2023-06-01", "end": "2023-07-15"}, "train": true}),
        &notes,
    );
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(r["output"]["outcome"], "refused by the promotion gates", "{r}");
    assert!(states(&r).contains(&"ModelRefused".to_owned()), "{r}");
    assert_eq!(alias("production").as_deref(), Some("1"), "production moved");
    assert_eq!(alias("candidate").as_deref(), Some("2"));
    let report = r["output"]["evaluated"]["report"].as_str().unwrap().to_owned();
    assert!(
        keys(report.as_str()).len() == 1,
        "the report {report} is not in the store"
    );

    // 4. The hourly live ingest: ingest and validate only.
    let r = execute(
        &emulator,
        &json!({"ingest": {"mode": "live"}, "train": false}),
        &notes,
    );
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(
        states(&r),
        ["Ingest", "Validate", "TrainOrStop", "Ingested"],
        "{r}"
    );

    // No execution failed so far, so nothing was notified.
    assert!(!notes.exists() || std::fs::read_to_string(&notes).unwrap().is_empty());

    // 5. An event of the wrong shape: the ingest function refuses it with InvalidInput
    // (not retried); the state machine publishes the failure and fails.
    let r = execute(
        &emulator,
        &json!({"ingest": {"mode": "backfill", "start": "2023-03-01"}, "train": true}),
        &notes,
    );
    assert_eq!(r["status"], "FAILED", "{r}");
    assert_eq!(r["error"], "PipelineFailed", "{r}");
    assert_eq!(states(&r), ["Ingest", "NotifyFailure", "Failed"], "{r}");
    let note = std::fs::read_to_string(&notes).unwrap();
    assert!(note.contains("InvalidInput") && note.contains("end"), "{note}");
}

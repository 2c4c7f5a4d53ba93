//! The serverless shape, run on this machine as template.yaml deploys it: every function
//! `sam build` made, under the Lambda Runtime API with the environment the template
//! gives it and as an IAM user with exactly its role's policies (moto enforcing IAM for
//! S3 and Secrets Manager; the MLflow token read from it at init), a real MLflow, and
//! the state machine as SAM's translator expands it, executed by
//! aws-local-stepfunctions (system/checkers/cloud/stack.py, testkit::cloud). The executions: a
//! full run that promotes, a run the data quality gate stops, a run whose candidate the
//! promotion gates refuse, an hourly live ingest that verifies, the API's drift alarm
//! asking for a retrain (the RetrainRequested event on the stack's own bus), the
//! training run the stack's rule starts from that event (refused), a triggered retrain
//! that is promoted, and an event of the wrong shape that fails and notifies.

use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};
use testkit::cloud::LocalCloud;

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
    let _turn = testkit::turn(module_path!());
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
    let emulator = cloud.stack_file.clone();
    let alias = |a: &str| cloud.alias(a);
    let keys = |prefix: &str| cloud.keys(prefix);
    let notes = cloud.path("notifications.jsonl");

    // The stack as IAM sees it: ingest, validate and transform hold no MLflow secret
    // (they started without one: the warm-up invoked each).
    for f in ["rps-ingest", "rps-validate", "rps-transform"] {
        let env = &cloud.stack["functions"][f]["env"];
        assert!(env.get("RPS_MLFLOW_SECRET_ID").is_none(), "{f}: {env}");
    }
    // (The API's credentials are tried at the end, once the forecast log is counted.)

    // 1. A full run: every stage, then promoted.
    let started = Instant::now();
    let r = cloud.execute(
        &json!({"ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-12-31"}, "train": true}),
    );
    let wall = started.elapsed();
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(
        states(&r),
        [
            "Defaults",
            "FanOut",
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
    let r = cloud.execute(
        &json!({"ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-06-30"}, "train": true}),
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
    let r = cloud.execute(
        &json!({"ingest": {"mode": "backfill", "start": "2023-06-01", "end": "2023-07-15"}, "train": true}),
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

    // 4. The hourly live ingest: ingest, validate, verify (the scheduled forecasts
    // issued, the log scored); the model is doing its job, so no retrain.
    let r = cloud.execute(&json!({"ingest": {"mode": "live"}, "train": false, "actor": "schedule"}));
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(
        states(&r),
        [
            "Defaults",
            "FanOut",
            "Ingest",
            "Validate",
            "TrainOrStop",
            "Verify",
            "RetrainNeeded",
            "Ingested"
        ],
        "{r}"
    );
    let verified = &r["output"]["verified"];
    assert_eq!(verified["served_version"], "1", "{r}");
    assert_eq!(verified["retrain"]["needed"], false, "{r}");
    // The newest hour's forecast and the day before it (one segment per issue day).
    assert!(
        (1..=2).contains(&keys("forecasts/").len()),
        "the scheduled forecasts are in the log"
    );
    assert!(keys(verified["summary"].as_str().unwrap()).len() == 1, "{r}");

    // No execution failed so far, so nothing was notified.
    assert!(!notes.exists() || std::fs::read_to_string(&notes).unwrap().is_empty());

    // 5. The API's drift alarm goes off: template.yaml's rule starts a verification
    // with its verdict. The verdict comes from client requests, which anyone can send:
    // it never asks for a retrain alone, and the observations do not call for one.
    let events = notes.with_file_name("events.jsonl");
    // CloudWatch's event for this stack's alarm (on the default bus), as EventBridge
    // delivers it: the rule must match it.
    let alarm_arn = format!(
        "arn:aws:cloudwatch:us-east-1:123456789012:alarm:rps-{}-RpsInputDrift",
        cloud.environment
    );
    let alarm = json!({"$rule": "ApiDriftAlarmed", "$bus": "default", "$event": {
        "source": "aws.cloudwatch", "detail-type": "CloudWatch Alarm State Change", "resources": [alarm_arn],
        "detail": {"state": {"value": "ALARM", "reason": "Threshold Crossed: 2 datapoints were greater than the threshold (0.5)"}}}});
    let r = cloud.execute(&alarm);
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(r["input"]["request_drift"]["drifting"], true, "{r}");
    assert_eq!(
        states(&r),
        [
            "Defaults",
            "FanOut",
            "Ingest",
            "Validate",
            "TrainOrStop",
            "Verify",
            "RetrainNeeded",
            "Ingested"
        ],
        "{r}"
    );
    let held = &r["output"]["verified"]["retrain"];
    assert_eq!(held["needed"], false, "{r}");
    assert!(
        held["held"].as_str().unwrap().contains("client traffic alone"),
        "{r}"
    );
    assert!(!events.exists(), "nothing was published");

    // A retrain a verification asked for (as verify publishes it: the trigger, on the
    // stack's bus), the year before the newest observation.
    let as_of = r["output"]["verified"]["as_of"].as_str().unwrap().to_owned();
    let end =
        chrono::NaiveDate::parse_from_str(&as_of[..10], "%Y-%m-%d").unwrap() - chrono::Duration::days(5);
    let trigger = json!({
        "id": "20261204T000000.000000Z",
        "causes": [{"kind": "drift", "reason": "60.0% of the last 24 observed hours had a weather feature outside the training range"}],
        "version": "1",
        "as_of": as_of,
        "requested_at": "2026-12-04T00:00:00Z",
        "ingest": {"mode": "backfill", "start": (end - chrono::Duration::days(364)).to_string(), "end": end.to_string()},
    });
    let event = json!({
        "Source": "rps.verify",
        "DetailType": "RetrainRequested",
        "Detail": {"trigger": trigger},
        "EventBusName": format!("rps-{}", cloud.environment),
    });

    // 6. The rule on RetrainRequested starts a training run on the trigger's data (the
    // year before the newest observation, replayed), carrying the trigger through the
    // stages: the report says what started it and its outcome is recorded.
    // The event as EventBridge delivers it on the bus the state machine put it on (the
    // stack's own). The same event on the default bus, where another stack's rule
    // listened before, starts nothing here.
    let bus = event["EventBusName"].clone();
    assert_eq!(bus, format!("rps-{}", cloud.environment), "{event}");
    let delivered =
        json!({"source": event["Source"], "detail-type": event["DetailType"], "detail": event["Detail"]});
    let elsewhere = Command::new("node")
        .arg(root.join("system/checkers/statemachine/run.mjs"))
        .arg(&emulator)
        .arg(json!({"$rule": "RetrainRequested", "$bus": "default", "$event": delivered}).to_string())
        .arg(&notes)
        .arg(&events)
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        !elsewhere.status.success() && String::from_utf8_lossy(&elsewhere.stderr).contains("does not match"),
        "{}",
        String::from_utf8_lossy(&elsewhere.stderr)
    );
    let retrain = json!({"$rule": "RetrainRequested", "$bus": bus, "$event": delivered});
    let r = cloud.execute(&retrain);
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(r["input"]["trigger"], trigger, "{r}");
    assert_eq!(r["input"]["ingest"], trigger["ingest"], "{r}");
    assert!(states(&r).contains(&"Evaluate".to_owned()), "{r}");
    let report_key = r["output"]["evaluated"]["report"].as_str().unwrap().to_owned();
    let report: Value = serde_json::from_str(&cloud.get(&report_key)).unwrap();
    assert_eq!(
        report["trigger"]["id"], trigger["id"],
        "the report names the trigger"
    );
    let outcome: Value =
        serde_json::from_str(&cloud.get(&format!("monitoring/{}/retrains/latest.json", cloud.model)))
            .unwrap();
    assert_eq!(outcome["trigger"]["id"], trigger["id"]);
    eprintln!(
        "the triggered retrain ended {}: {}",
        outcome["status"],
        states(&r).join(" → ")
    );
    // Production was trained on the same recorded year, so on the replayed year's
    // hold-out it is in-sample and the candidate cannot beat it: the gates refuse, and
    // the refusal of a triggered retrain is an alert (the alert topic), not only a
    // clean end. Production is unchanged.
    assert_eq!(outcome["status"], "refused", "{outcome}");
    assert_eq!(
        states(&r)[states(&r).len() - 3..],
        ["Refused", "NotifyRetrainRefused", "ModelRefused"],
        "{r}"
    );
    assert_eq!(alias("production").as_deref(), Some("1"));
    let note = std::fs::read_to_string(&notes).unwrap();
    assert!(
        note.contains(&format!("rps-{}-api-alerts", cloud.environment))
            && note.contains("RpsRetrainRefused")
            && note.contains(trigger["id"].as_str().unwrap()),
        "{note}"
    );
    std::fs::write(&notes, "").unwrap();

    // EventBridge delivers at least once: the same event again trains nothing (the
    // trigger has its outcome), ends Superseded, and pages nobody.
    let r = cloud.execute(&retrain);
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(states(&r).last().map(String::as_str), Some("Superseded"), "{r}");
    assert!(
        states(&r).contains(&"Train".to_owned()) && !states(&r).contains(&"Evaluate".to_owned()),
        "{r}"
    );
    assert_eq!(r["output"]["error"]["Error"], "PromotionConflict", "{r}");
    assert!(
        r["output"]["error"]["Cause"]
            .as_str()
            .unwrap()
            .contains("has run already"),
        "{r}"
    );
    assert!(
        std::fs::read_to_string(&notes).unwrap_or_default().is_empty(),
        "no page"
    );
    let outcome: Value =
        serde_json::from_str(&cloud.get(&format!("monitoring/{}/retrains/latest.json", cloud.model)))
            .unwrap();
    assert_eq!(outcome["status"], "refused", "the outcome stands: {outcome}");

    // 6b. A triggered retrain that is promoted: production is the weak summer model
    // (version 2, as if a bad promotion had slipped through), and a verification asks
    // for a retrain on the replayed year; the candidate beats it, the gates pass, the
    // outcome is recorded as promoted and production moves, with the old one @previous.
    let mlflow = testkit::mlflow::client(&cloud.mlflow.uri);
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(mlflow.set_alias(&cloud.model, "production", "2"))
        .unwrap();
    let mut second = trigger.clone();
    second["id"] = json!(format!("{}-again", trigger["id"].as_str().unwrap()));
    let mut detail = event["Detail"].clone();
    detail["trigger"] = second.clone();
    let r = cloud.execute(&json!({"$rule": "RetrainRequested", "$bus": bus, "$event": {"source": "rps.verify", "detail-type": "RetrainRequested", "detail": detail}}));
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    assert_eq!(states(&r).last().map(String::as_str), Some("Promoted"), "{r}");
    let promoted = r["output"]["trained"]["model_version"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(alias("production").as_deref(), Some(promoted.as_str()));
    assert_eq!(alias("previous").as_deref(), Some("2"));
    let outcome: Value = serde_json::from_str(&cloud.get(&format!(
        "monitoring/{}/retrains/{}.json",
        cloud.model,
        second["id"].as_str().unwrap()
    )))
    .unwrap();
    assert_eq!(
        (outcome["status"].as_str(), outcome["candidate"].as_str()),
        (Some("promoted"), Some(promoted.as_str())),
        "{outcome}"
    );

    // 7. An event of the wrong shape: the ingest function refuses it with InvalidInput
    // (not retried); the state machine publishes the failure and fails.
    let r = cloud.execute(&json!({"ingest": {"mode": "backfill", "start": "2023-03-01"}, "train": true}));
    assert_eq!(r["status"], "FAILED", "{r}");
    assert_eq!(r["error"], "PipelineFailed", "{r}");
    assert_eq!(
        states(&r),
        ["Defaults", "FanOut", "Ingest", "NotifyFailure", "Failed"],
        "{r}"
    );
    let note = std::fs::read_to_string(&notes).unwrap();
    assert!(note.contains("InvalidInput") && note.contains("end"), "{note}");

    // The internet-facing API's credentials may append its answers to their own folder
    // and write nowhere else (not the scheduled forecasts), nor delete; a stage's may
    // not read another's folder.
    assert_eq!(cloud.try_as("rps-api", "put", "store/served/probe.jsonl").0, 200);
    for key in [
        "store/forecasts/probe.jsonl",
        "store/models/probe",
        "store/registry/probe",
        "store/monitoring/probe",
        "outside/probe",
    ] {
        assert_eq!(
            cloud.try_as("rps-api", "put", key),
            (403, "AccessDenied".to_owned()),
            "the API's credentials wrote {key}"
        );
    }
    assert_eq!(
        cloud.try_as("rps-api", "delete", "store/served/probe.jsonl").0,
        403
    );
    assert_eq!(cloud.try_as("rps-ingest", "get", "store/models/probe").0, 403);
}

/// Many locations (issue 28): the stack's LocationsKey names a locations file in the
/// bucket; every function reads it at start. An execution without a location fans out:
/// the distributed Map's ItemReader reads the file as the state machine's role, each
/// location runs as an execution of its own (startExecution.sync:2, which the role may
/// do on its own state machine only), two at a time. Three real station years, one of
/// them corrupt: it alone is refused by the data gate, the other two promote, each its
/// own model in its own folder, and the execution's output lists every outcome.
#[test]
fn an_execution_fans_out_over_the_locations_and_the_corrupt_one_alone_is_refused() {
    let _turn = testkit::turn(module_path!());
    let root = testkit::workspace_root();
    let Some(_) = testkit::require(
        "aws-local-stepfunctions (npm)",
        &root.join("node_modules/aws-local-stepfunctions"),
    ) else {
        return;
    };
    let locations = json!([
        {"id": "sand-point", "name": "Sand Point, AK", "latitude": 55.317, "longitude": -160.517},
        {"id": "greensboro", "name": "Greensboro, NC", "latitude": 36.1, "longitude": -79.95},
        {"id": "kansas", "latitude": 38.5, "longitude": -98.0}
    ]);
    let Some(cloud) = LocalCloud::start_with(
        "fleet",
        "prod",
        testkit::cloud::Stack {
            locations: Some(locations),
            ..Default::default()
        },
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let kansas = testkit::cloud::corrupt_kansas(dir.path());
    let greensboro = testkit::cloud::greensboro_path();
    let replay = testkit::replay::Replay::files(&[&testkit::sample_path(), &greensboro, &kansas]);
    cloud.serve_replay(&replay);
    let env = &cloud.stack["functions"]["rps-ingest"]["env"];
    assert_eq!(
        env["RPS_LOCATIONS"],
        format!("s3://{}/{}", cloud.bucket, testkit::cloud::LOCATIONS_KEY),
        "{env}"
    );

    let r = cloud.execute(&json!({
        "ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-12-31"},
        "train": true,
        "fanout": {"max_concurrency": 2, "tolerated_failures": 0}
    }));
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    let s = states(&r);
    assert_eq!(
        s.iter()
            .filter(|x| !x.starts_with("Location"))
            .cloned()
            .collect::<Vec<_>>(),
        ["Defaults", "FanOut", "AnyFailed", "SomeFailed", "NoneFailed"],
        "{r}"
    );
    assert_eq!(s.first().map(String::as_str), Some("Defaults"));
    assert_eq!(s.last().map(String::as_str), Some("LocationsDone"), "{r}");
    assert!(
        !s.contains(&"Ingest".to_owned()),
        "the parent ran a stage itself: {r}"
    );
    let out = &r["output"];
    assert_eq!(
        out["locations"],
        json!([
            {"location": "sand-point", "outcome": "promoted"},
            {"location": "greensboro", "outcome": "promoted"},
            {"location": "kansas", "outcome": "refused by the data quality gate"}
        ]),
        "{r}"
    );
    assert_eq!(out["failed"], json!([]), "{r}");
    // Each location ran as an execution of its own, to its own end.
    let children = r["children"].as_array().unwrap();
    assert_eq!(children.len(), 3, "{r}");
    for c in children {
        let ended = c["states"].as_array().unwrap().last().cloned();
        let want = if c["input"]["location"] == "kansas" {
            "DataRefused"
        } else {
            "Promoted"
        };
        assert_eq!(ended, Some(json!(want)), "{c}");
        assert_eq!(c["states"][1], "FanOut", "{c}");
        assert_eq!(c["states"][2], "Ingest", "a child fanned out again: {c}");
    }
    // Each its own model and folder; the refused one has none, and nothing of the
    // deployment's own (unprefixed) folders was written.
    let version = |id: &str| {
        let c = testkit::mlflow::client(&cloud.mlflow.uri);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(c.get_version_by_alias(&format!("{}-{id}", cloud.model), "production"))
            .ok()
            .map(|v| v.version)
    };
    assert_eq!(version("sand-point").as_deref(), Some("1"));
    assert_eq!(version("greensboro").as_deref(), Some("1"));
    assert_eq!(version("kansas"), None, "the corrupt location was promoted");
    for id in ["sand-point", "greensboro", "kansas"] {
        assert!(
            !cloud.keys(&format!("locations/{id}/raw/")).is_empty(),
            "{id} has no raw snapshot"
        );
    }
    assert!(cloud.keys("locations/kansas/datasets/").is_empty());
    assert!(!cloud.keys("locations/greensboro/datasets/").is_empty());
    assert!(
        cloud.keys("raw/").is_empty(),
        "the deployment's own folder was written"
    );

    // A location's folder is granted as the deployment's is: ingest writes raw/ there,
    // never models/.
    assert_eq!(
        cloud
            .try_as("rps-ingest", "put", "store/locations/kansas/raw/probe.json")
            .0,
        200
    );
    assert_eq!(
        cloud
            .try_as("rps-ingest", "put", "store/locations/kansas/models/probe")
            .0,
        403
    );
    // A stage event must name its location when there are several.
    let e = cloud.invoke("rps-validate", &json!({"snapshot": "raw/x"}));
    assert_eq!(e["errorType"], "InvalidInput", "{e}");
    assert!(
        e["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("3 locations"),
        "{e}"
    );
}

/// The fan-out measured (a benchmark, not a test: `bash bench/fanout.sh`, which runs it
/// with `--ignored`): the state machine over `RPS_BENCH_LOCATIONS` locations (default
/// 50) of a year each, `RPS_BENCH_CONCURRENCY` at a time (default 10), on the local
/// stack. Writes the wall time, the outcomes and the functions' peak memory to
/// `bench/results/fanout.json`; asserts only that every location promoted.
#[test]
#[ignore = "a benchmark: bash bench/fanout.sh"]
fn bench_the_fan_out() {
    let _turn = testkit::turn(module_path!());
    let n: usize = std::env::var("RPS_BENCH_LOCATIONS").map_or(50, |v| v.parse().unwrap());
    let concurrency: usize = std::env::var("RPS_BENCH_CONCURRENCY").map_or(10, |v| v.parse().unwrap());
    // Alternating between the two shipped stations, each at coordinates of its own.
    let stations = [(55.317, -160.517), (36.1, -79.95)];
    let locations: Vec<Value> = (0..n)
        .map(|i| {
            let (lat, lon) = stations[i % 2];
            let step = 0.01 * (i / 2) as f64;
            json!({"id": format!("site-{i:04}"), "latitude": lat + step, "longitude": lon + step})
        })
        .collect();
    let Some(cloud) = LocalCloud::start_with(
        "fanout",
        "prod",
        testkit::cloud::Stack {
            locations: Some(Value::Array(locations)),
            ..Default::default()
        },
    ) else {
        return;
    };
    let greensboro = testkit::cloud::greensboro_path();
    let replay = testkit::replay::Replay::files(&[&testkit::sample_path(), &greensboro]);
    cloud.serve_replay(&replay);
    let started = Instant::now();
    let r = cloud.execute(&json!({
        "ingest": {"mode": "backfill", "start": "2023-01-01", "end": "2023-12-31"},
        "train": true,
        "fanout": {"max_concurrency": concurrency, "tolerated_failures": 0}
    }));
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(r["status"], "SUCCEEDED", "{r}");
    let outcomes = r["output"]["locations"].as_array().unwrap();
    let promoted = outcomes.iter().filter(|o| o["outcome"] == "promoted").count();
    assert_eq!(promoted, n, "{r}");
    let peaks = cloud.peak_memory_mb();
    let result = json!({
        "machine": machine(),
        "locations": n,
        "concurrency": concurrency,
        "wall_seconds": wall,
        "seconds_per_location": wall / n as f64,
        "promoted": promoted,
        "function_peak_mb": peaks,
    });
    eprintln!("{result}");
    let out = testkit::workspace_root().join("bench/results/fanout.json");
    std::fs::write(&out, serde_json::to_string_pretty(&result).unwrap()).unwrap();
}

/// This machine, for a benchmark's record: its cores and CPU model.
fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    format!("{cores} cores, {cpu}")
}

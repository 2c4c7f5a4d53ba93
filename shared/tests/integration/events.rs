//! Code checks on docs/events.md: every example event parses into its stage's input
//! type and every example response into its output type, so the page and the code
//! cannot drift apart; and the outputs the next stage reads are references, not data.

use serde::de::DeserializeOwned;
use serde_json::Value;

fn examples(kind: &str) -> Vec<String> {
    let text = std::fs::read_to_string(testkit::workspace_root().join("docs/events.md")).unwrap();
    let fence = format!("```json {kind}\n");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find(&fence) {
        let body = &rest[i + fence.len()..];
        let end = body.find("```").expect("a closed block");
        out.push(body[..end].to_owned());
        rest = &body[end..];
    }
    assert!(!out.is_empty(), "docs/events.md has no {kind} example");
    out
}

fn parse_all<T: DeserializeOwned>(kind: &str) {
    for e in examples(kind) {
        if let Err(err) = serde_json::from_str::<T>(&e) {
            panic!("a {kind} example does not parse: {err}\n{e}");
        }
    }
}

#[test]
fn every_documented_event_and_response_parses() {
    let _turn = testkit::turn(module_path!());
    use rps_core::{evaluate, ingest, promote, train, transform, validate, verify};
    parse_all::<ingest::IngestInput>("ingest-event");
    parse_all::<ingest::IngestOutput>("ingest-response");
    parse_all::<validate::ValidateInput>("validate-event");
    parse_all::<validate::ValidateOutput>("validate-response");
    parse_all::<transform::TransformInput>("transform-event");
    parse_all::<transform::TransformOutput>("transform-response");
    parse_all::<train::TrainInput>("train-event");
    parse_all::<train::TrainOutput>("train-response");
    parse_all::<evaluate::EvaluateInput>("evaluate-event");
    parse_all::<evaluate::EvaluateOutput>("evaluate-response");
    parse_all::<promote::PromoteInput>("promote-event");
    parse_all::<promote::PromoteOutput>("promote-response");
    parse_all::<verify::VerifyInput>("verify-event");
    parse_all::<verify::Verification>("verify-response");
}

#[test]
fn the_documented_location_envelope_unwraps_to_its_stage_event() {
    let _turn = testkit::turn(module_path!());
    for e in examples("location-event") {
        let (at, input) = rps_core::lambda::envelope(serde_json::from_str(&e).unwrap()).unwrap();
        assert_eq!(at.as_deref(), Some("kodiak"), "{e}");
        rps_core::lambda::parse::<rps_core::validate::ValidateInput>(input).unwrap();
    }
}

#[test]
fn a_wrong_event_names_the_field() {
    let _turn = testkit::turn(module_path!());
    let err = rps_core::lambda::parse::<rps_core::validate::ValidateInput>(serde_json::json!({"snap": "x"}))
        .unwrap_err();
    assert_eq!(err.error_type, "InvalidInput");
    assert!(err.error_message.contains("snapshot"), "{}", err.error_message);
    let err = rps_core::lambda::parse::<rps_core::source::IngestRequest>(
        serde_json::json!({"mode": "backfill", "start": "2023-03-01"}),
    )
    .unwrap_err();
    assert!(err.error_message.contains("end"), "{}", err.error_message);
    // Verify's fields all have defaults: a misspelt one must not pass for an empty event.
    let err = rps_core::lambda::parse::<rps_core::verify::VerifyInput>(serde_json::json!({"isue": false}))
        .unwrap_err();
    assert!(err.error_message.contains("isue"), "{}", err.error_message);
}

#[test]
fn payloads_stay_far_below_the_state_machines_limit() {
    let _turn = testkit::turn(module_path!());
    for kind in [
        "ingest-response",
        "validate-response",
        "transform-response",
        "train-response",
        "evaluate-response",
        "promote-response",
        "verify-response",
    ] {
        for e in examples(kind) {
            let v: Value = serde_json::from_str(&e).unwrap();
            assert!(
                v.to_string().len() < 16 << 10,
                "{kind} is {} bytes",
                v.to_string().len()
            );
        }
    }
}

/// A deployed function whose MLflow secret was rotated: the first 401 reads the secret
/// again and runs the event once more; a second 401 is the answer; without a secret,
/// or for any other refusal, nothing is read again.
#[tokio::test]
async fn refused_mlflow_credentials_read_the_secret_again_once() {
    let _turn = testkit::turn(module_path!());
    use std::cell::Cell;
    use std::collections::HashMap;
    use std::sync::Arc;

    use rps_core::lambda::{Failed, with_fresh_credentials};
    use rps_core::mlflow::MlflowError;
    use rps_core::registry::RegistryError;
    use rps_core::stage::{Context, StageError};

    let ctx = |secret: Option<&str>| -> &'static Context {
        let mut vars = HashMap::new();
        if let Some(s) = secret {
            vars.insert("RPS_MLFLOW_SECRET_ID".to_owned(), s.to_owned());
        }
        let config = rps_core::config::Config::from_map(&vars).unwrap();
        let store = Arc::new(rps_core::store::MemoryStore::new());
        Box::leak(Box::new(Context::with_store(config, store).unwrap()))
    };
    let refused = || {
        Failed::Stage(StageError::Registry(RegistryError::Mlflow(
            MlflowError::Unauthorized {
                server: "https://dagshub.com/ada/rps.mlflow".into(),
                endpoint: "registered-models/alias".into(),
            },
        )))
    };
    let old = ctx(Some("rps/prod/mlflow"));
    let rotated = ctx(Some("rps/prod/mlflow"));
    // The old credentials are refused, the re-read ones accepted.
    let (runs, reads) = (Cell::new(0), Cell::new(0));
    let out = with_fresh_credentials(
        old,
        || async {
            reads.set(reads.get() + 1);
            Ok(rotated)
        },
        |c| {
            runs.set(runs.get() + 1);
            let ok = std::ptr::eq(c, rotated);
            async move { if ok { Ok("done") } else { Err(refused()) } }
        },
    )
    .await;
    let Ok((answer, kept)) = out else {
        panic!("the re-read credentials were not used")
    };
    assert_eq!((answer, runs.get(), reads.get()), ("done", 2, 1));
    assert!(
        std::ptr::eq(kept, rotated),
        "the new context is kept for the next events"
    );
    // Refused again: once is enough.
    let (runs, reads) = (Cell::new(0), Cell::new(0));
    let out = with_fresh_credentials(
        old,
        || async {
            reads.set(reads.get() + 1);
            Ok(rotated)
        },
        |_| {
            runs.set(runs.get() + 1);
            async { Err::<(), _>(refused()) }
        },
    )
    .await;
    assert!(matches!(out, Err(Failed::Stage(ref e)) if rps_core::lambda::unauthorized(e)));
    assert_eq!((runs.get(), reads.get()), (2, 1));
    // Credentials from the environment: nothing to read again.
    let (runs, reads) = (Cell::new(0), Cell::new(0));
    let out = with_fresh_credentials(
        ctx(None),
        || async {
            reads.set(reads.get() + 1);
            Ok(rotated)
        },
        |_| {
            runs.set(runs.get() + 1);
            async { Err::<(), _>(refused()) }
        },
    )
    .await;
    assert!(out.is_err());
    assert_eq!((runs.get(), reads.get()), (1, 0));
}

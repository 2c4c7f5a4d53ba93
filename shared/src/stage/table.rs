//! The stage table: how an orchestrator runs each stage function. The state machine's
//! Task states are this table written in Amazon States Language ([`task_state`]); a test
//! reads `infra/statemachine/pipeline.asl.json` and fails when a Task state differs
//! from the table, and the Airflow DAG is checked against the state machine's retries
//! and outcomes (`system/checkers/dags/check_dags.py`), so neither can drift from it. The error
//! vocabulary a stage fails with, and the exit codes the CLI and the scripts use, are
//! [`ERROR_TYPES`].

use serde_json::{Map, Value, json};

/// One stage as an orchestrator runs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StageSpec {
    /// The stage (`rps <name>`, the function `rps-<name>`).
    pub name: &'static str,
    /// Its Task state.
    pub state: &'static str,
    /// Where its event comes from: the execution state's fields, by JSONPath.
    pub event: Event,
    /// Where its output goes in the execution's state.
    pub result: &'static str,
    /// The output's fields kept there (all of it when empty).
    pub keep: &'static [&'static str],
    /// An outside system's failure (`DependencyFailed`) and a crashed or timed-out
    /// function are tried again. Train is not: a retry would train a second model.
    pub retried: bool,
    /// The error types that end in a state of their own rather than a failure: a
    /// refusal is an outcome, not a crash.
    pub outcomes: &'static [(&'static str, &'static str)],
    /// The state after success.
    pub next: &'static str,
}

/// Where a stage's event comes from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Event {
    /// One part of the execution's state, as it is.
    Path(&'static str),
    /// Fields: a name ending in `.$` takes a JSONPath (or an intrinsic), any other a
    /// JSON literal.
    Fields(&'static [(&'static str, &'static str)]),
}

/// Every stage function, in the order they run: the pipeline's six, then verify.
pub const TABLE: [StageSpec; 7] = [
    StageSpec {
        name: "ingest",
        state: "Ingest",
        event: Event::Path("$.ingest"),
        result: "$.ingested",
        keep: &[],
        retried: true,
        outcomes: &[],
        next: "Validate",
    },
    StageSpec {
        name: "validate",
        state: "Validate",
        event: Event::Fields(&[("snapshot.$", "$.ingested.snapshot")]),
        result: "$.validated",
        keep: &[],
        retried: true,
        outcomes: &[(DATA_REFUSED, "DataRefused")],
        next: "TrainOrStop",
    },
    StageSpec {
        name: "transform",
        state: "Transform",
        event: Event::Fields(&[("snapshots.$", "States.Array($.validated.snapshot)")]),
        result: "$.transformed",
        keep: &[],
        retried: true,
        outcomes: &[(DATA_REFUSED, "DataRefused")],
        next: "Train",
    },
    StageSpec {
        name: "train",
        state: "Train",
        event: Event::Fields(&[
            ("data_version.$", "$.transformed.data_version"),
            ("trigger.$", "$.trigger"),
            ("run.$", "$$.Execution.Name"),
        ]),
        result: "$.trained",
        keep: &[
            "model_name",
            "model_version",
            "data_version",
            "run_url",
            "algorithm",
        ],
        retried: false,
        outcomes: &[(CONFLICT, "Superseded")],
        next: "Evaluate",
    },
    StageSpec {
        name: "evaluate",
        state: "Evaluate",
        event: Event::Fields(&[
            ("candidate.$", "$.trained.model_version"),
            ("trigger.$", "$.trigger"),
        ]),
        result: "$.evaluated",
        keep: &[],
        retried: true,
        outcomes: &[],
        next: "GatesPassed",
    },
    StageSpec {
        name: "promote",
        state: "Promote",
        event: Event::Fields(&[
            ("candidate.$", "$.trained.model_version"),
            ("report.$", "$.evaluated.report"),
            ("actor.$", "$.actor"),
            ("trigger.$", "$.trigger"),
        ]),
        result: "$.promoted",
        keep: &["model_name", "version", "previous", "report"],
        retried: true,
        outcomes: &[(MODEL_REFUSED, "Refused"), (CONFLICT, "Superseded")],
        next: "Promoted",
    },
    StageSpec {
        name: "verify",
        state: "Verify",
        event: Event::Fields(&[
            ("issue", "true"),
            ("snapshot.$", "$.validated.snapshot"),
            ("request_drift.$", "$.request_drift"),
        ]),
        result: "$.verified",
        keep: &["as_of", "served_version", "retrain", "summary"],
        retried: true,
        outcomes: &[],
        next: "RetrainNeeded",
    },
];

/// Where every failure that is not an outcome goes.
pub const FAILURE_STATE: &str = "NotifyFailure";

/// The stage `name`.
pub fn spec(name: &str) -> Option<&'static StageSpec> {
    TABLE.iter().find(|s| s.name == name)
}

/// A failure type: what a Lambda function error's `errorType` says, what the state
/// machine and the DAG match, and the exit code of `rps` and the scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorType {
    pub name: &'static str,
    pub exit_code: i32,
    /// Tried again by the orchestrators (for a stage that is [`StageSpec::retried`]).
    pub retried: bool,
    pub meaning: &'static str,
}

/// The data quality gate refused the data.
pub const DATA_REFUSED: &str = "DataQualityGateFailed";
/// The promotion gates refused the model.
pub const MODEL_REFUSED: &str = "PromotionGateFailed";
/// Another run got there first.
pub const CONFLICT: &str = "PromotionConflict";
pub const INVALID_INPUT: &str = "InvalidInput";
pub const CONFIGURATION: &str = "ConfigurationError";
pub const DEPENDENCY_FAILED: &str = "DependencyFailed";
pub const INTERNAL: &str = "InternalError";

/// Every failure a stage reports, and its exit code.
pub const ERROR_TYPES: [ErrorType; 7] = [
    ErrorType {
        name: DATA_REFUSED,
        exit_code: 3,
        retried: false,
        meaning: "the data quality gate refused the data",
    },
    ErrorType {
        name: MODEL_REFUSED,
        exit_code: 4,
        retried: false,
        meaning: "the promotion gates refused the model",
    },
    ErrorType {
        name: CONFLICT,
        exit_code: 5,
        retried: false,
        meaning: "another run got there first; nothing changed",
    },
    ErrorType {
        name: INVALID_INPUT,
        exit_code: 1,
        retried: false,
        meaning: "the caller's input is wrong",
    },
    ErrorType {
        name: CONFIGURATION,
        exit_code: 1,
        retried: false,
        meaning: "the deployment's configuration or permissions are wrong",
    },
    ErrorType {
        name: DEPENDENCY_FAILED,
        exit_code: 1,
        retried: true,
        meaning: "an outside system failed; trying again may help",
    },
    ErrorType {
        name: INTERNAL,
        exit_code: 1,
        retried: false,
        meaning: "a bug in rps",
    },
];

/// The failure type `name`.
pub fn error_type(name: &str) -> Option<&'static ErrorType> {
    ERROR_TYPES.iter().find(|e| e.name == name)
}

/// Lambda's own failures tried again for every stage (the service throttled or failed).
const LAMBDA_SERVICE: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// A function that crashed or timed out: tried once more.
const CRASHED: [&str; 3] = ["Runtime.ExitError", "Sandbox.Timedout", "Lambda.Unknown"];

fn retrier(errors: Vec<&str>, interval: u32, attempts: u32) -> Value {
    json!({
        "ErrorEquals": errors,
        "IntervalSeconds": interval,
        "BackoffRate": 2,
        "MaxAttempts": attempts,
        "JitterStrategy": "FULL",
    })
}

/// The stage's Task state in Amazon States Language, `${<State>FunctionArn}` standing
/// for its function (the template substitutes it). `Comment`s are the file's own.
pub fn task_state(s: &StageSpec) -> Value {
    let mut state = Map::new();
    state.insert("Type".into(), json!("Task"));
    state.insert("Resource".into(), json!(format!("${{{}FunctionArn}}", s.state)));
    // Every event names the execution's location (`crate::lambda::envelope`).
    let mut params = Map::new();
    params.insert("location.$".into(), json!("$.location"));
    match s.event {
        Event::Path(p) => {
            params.insert("input.$".into(), json!(p));
        }
        Event::Fields(fields) => {
            let input: Map<String, Value> = fields
                .iter()
                .map(|(k, v)| {
                    let v = if k.ends_with(".$") {
                        json!(v)
                    } else {
                        serde_json::from_str(v).unwrap_or_else(|_| json!(v))
                    };
                    ((*k).to_owned(), v)
                })
                .collect();
            params.insert("input".into(), Value::Object(input));
        }
    }
    state.insert("Parameters".into(), Value::Object(params));
    if !s.keep.is_empty() {
        let keep: Map<String, Value> = s
            .keep
            .iter()
            .map(|f| (format!("{f}.$"), json!(format!("$.{f}"))))
            .collect();
        state.insert("ResultSelector".into(), Value::Object(keep));
    }
    state.insert("ResultPath".into(), json!(s.result));
    state.insert("Next".into(), json!(s.next));
    let retried: Vec<&str> = ERROR_TYPES.iter().filter(|e| e.retried).map(|e| e.name).collect();
    let retry = if s.retried {
        vec![
            retrier(retried.into_iter().chain(LAMBDA_SERVICE).collect(), 5, 3),
            retrier(CRASHED.to_vec(), 10, 1),
        ]
    } else {
        vec![retrier(LAMBDA_SERVICE.to_vec(), 5, 3)]
    };
    state.insert("Retry".into(), Value::Array(retry));
    let catch: Vec<Value> = s
        .outcomes
        .iter()
        .map(|(error, next)| json!({"ErrorEquals": [error], "ResultPath": "$.error", "Next": next}))
        .chain([json!({"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": FAILURE_STATE})])
        .collect();
    state.insert("Catch".into(), Value::Array(catch));
    Value::Object(state)
}

/// The table as Markdown, for `docs/architecture.md` (a test keeps the two equal).
pub fn markdown() -> String {
    let mut out = String::from(
        "| stage | its event, from the execution's state | retried | ends in a state of its own |\n|---|---|---|---|\n",
    );
    for s in TABLE {
        let event = match s.event {
            Event::Path(p) => format!("`{p}`"),
            Event::Fields(fields) => fields
                .iter()
                .map(|(k, v)| format!("`{}` ← `{v}`", k.trim_end_matches(".$")))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let outcomes = s
            .outcomes
            .iter()
            .map(|(e, state)| format!("`{e}` → {state}"))
            .collect::<Vec<_>>()
            .join(", ");
        let retried = if s.retried { "yes" } else { "no" };
        out.push_str(&format!("| {} | {event} | {retried} | {outcomes} |\n", s.name));
    }
    out.push_str("\n| error type | exit code | retried | meaning |\n|---|---|---|---|\n");
    for e in ERROR_TYPES {
        let retried = if e.retried { "yes" } else { "no" };
        out.push_str(&format!(
            "| `{}` | {} | {retried} | {} |\n",
            e.name, e.exit_code, e.meaning
        ));
    }
    out
}

/// `RPS_EXIT_<ERROR_TYPE>`: the shell variable holding an error type's exit code
/// (`PromotionGateFailed` → `RPS_EXIT_PROMOTION_GATE_FAILED`).
pub fn shell_name(error_type: &str) -> String {
    let mut out = String::from("RPS_EXIT_");
    for (i, c) in error_type.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// `scripts/exit-codes.sh`, which `scripts/lib.sh` sources: the exit codes the scripts
/// compare `rps`'s with, one variable per error type (a test keeps the file equal).
pub fn shell_exit_codes() -> String {
    let mut out = String::from(
        "# shellcheck shell=bash disable=SC2034\n\
         # Generated from ERROR_TYPES in shared/src/stage/table.rs: do not edit.\n\
         # make docs rewrites it.\n\
         # The exit code rps ends with for each error type; scripts/lib.sh sources this.\n",
    );
    for e in ERROR_TYPES {
        out.push_str(&format!(
            "{}={}  # {}\n",
            shell_name(e.name),
            e.exit_code,
            e.meaning
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_and_retried_failure_is_a_known_error_type() {
        for s in TABLE {
            for (error, _) in s.outcomes {
                let e = error_type(error).unwrap_or_else(|| panic!("{}: {error}", s.name));
                assert!(
                    !e.retried && e.exit_code > 1,
                    "{}: an outcome is a refusal or a conflict",
                    s.name
                );
            }
        }
        let codes: Vec<i32> = ERROR_TYPES
            .iter()
            .map(|e| e.exit_code)
            .filter(|c| *c != 1)
            .collect();
        assert_eq!(codes, [3, 4, 5], "one exit code per outcome");
    }

    #[test]
    fn the_shell_names_an_exit_code_after_its_error_type() {
        assert_eq!(shell_name(MODEL_REFUSED), "RPS_EXIT_PROMOTION_GATE_FAILED");
        assert_eq!(shell_name(DATA_REFUSED), "RPS_EXIT_DATA_QUALITY_GATE_FAILED");
        assert!(shell_exit_codes().contains("\nRPS_EXIT_PROMOTION_CONFLICT=5  # "));
    }

    #[test]
    fn the_table_names_every_function_once_in_order() {
        let names: Vec<&str> = TABLE.iter().map(|s| s.name).collect();
        assert_eq!(names, super::super::FUNCTIONS);
        let train = task_state(spec("train").unwrap());
        assert_eq!(train["Retry"].as_array().unwrap().len(), 1, "{train}");
        assert!(
            !train.to_string().contains("DependencyFailed"),
            "train is never retried: {train}"
        );
    }
}

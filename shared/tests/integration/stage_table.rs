//! The state machine's Task states are the stage table (`rps_core::stage::table`): one
//! definition of each stage's event, retries and outcomes. A state that differs fails
//! here with the state the table makes; the DAG is checked against the state machine
//! (`system/checkers/dags/check_dags.py`, in the system tests).

use rps_core::stage::table::{self, ERROR_TYPES, TABLE};
use serde_json::Value;

fn asl() -> Value {
    let path = testkit::workspace_root().join("infra/statemachine/pipeline.asl.json");
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// Every state of the machine, nested ones included.
fn states(v: &Value, out: &mut Vec<(String, Value)>) {
    if let Some(map) = v["States"].as_object() {
        for (name, state) in map {
            out.push((name.clone(), state.clone()));
            for branch in state["Branches"].as_array().into_iter().flatten() {
                states(branch, out);
            }
            for inner in ["Iterator", "ItemProcessor"] {
                states(&state[inner], out);
            }
        }
    }
}

#[test]
fn every_stage_task_in_the_state_machine_is_the_one_the_table_makes() {
    let _turn = testkit::turn(module_path!());
    let mut all = Vec::new();
    states(&asl(), &mut all);
    let functions: Vec<&(String, Value)> = all
        .iter()
        .filter(|(_, s)| {
            s["Resource"]
                .as_str()
                .is_some_and(|r| r.ends_with("FunctionArn}"))
        })
        .collect();
    assert_eq!(
        functions
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .len(),
        TABLE.len(),
        "one Task state per stage function"
    );
    for spec in TABLE {
        let (_, state) = functions
            .iter()
            .find(|(n, _)| n == spec.state)
            .unwrap_or_else(|| panic!("the state machine has no {} state", spec.state));
        let mut state = state.clone();
        state.as_object_mut().unwrap().remove("Comment");
        let want = table::task_state(&spec);
        assert_eq!(
            state,
            want,
            "the {} state differs from the stage table; the table makes:\n{}",
            spec.state,
            serde_json::to_string_pretty(&want).unwrap()
        );
        let next = &spec.next;
        assert!(
            all.iter().any(|(n, _)| n == next),
            "{} goes to {next}, which is no state",
            spec.state
        );
        for (_, outcome) in spec.outcomes {
            assert!(
                all.iter().any(|(n, _)| n == outcome),
                "{} ends in {outcome}, which is no state",
                spec.state
            );
        }
    }
}

#[test]
fn the_state_machine_matches_only_error_types_the_stages_report() {
    let _turn = testkit::turn(module_path!());
    let mut all = Vec::new();
    states(&asl(), &mut all);
    for (name, state) in &all {
        for list in ["Retry", "Catch"] {
            for rule in state[list].as_array().into_iter().flatten() {
                for e in rule["ErrorEquals"].as_array().unwrap() {
                    let e = e.as_str().unwrap();
                    let aws = ["States.", "Lambda.", "Runtime.", "Sandbox.", "StepFunctions."]
                        .iter()
                        .any(|p| e.starts_with(p));
                    assert!(
                        aws || ERROR_TYPES.iter().any(|t| t.name == e),
                        "{name} matches {e}, which no stage reports"
                    );
                }
            }
        }
    }
}

#[test]
fn a_changed_table_would_fail_the_check() {
    let _turn = testkit::turn(module_path!());
    // The comparison above can fail: a stage that is retried differs from one that is not.
    let mut spec = TABLE[3];
    assert_eq!(spec.name, "train");
    let as_is = table::task_state(&spec);
    spec.retried = true;
    assert_ne!(table::task_state(&spec), as_is);
}

//! Schemathesis (property-based API testing from the OpenAPI document) against
//! `rps serve`: every operation, every check (no server error, status codes, content
//! types and response bodies conforming to the document, bad input rejected), with a
//! fixed seed so a finding is reproducible. Zero failures.
//!
//! One check is left out: `positive_data_acceptance` expects every schema-valid body to
//! be accepted, but `/predict` has rules no JSON Schema can state (consecutive hours,
//! oldest first), so schema-valid bodies are rightly refused with a 422.

use std::process::Command;

use testkit::replay::Replay;
use testkit::rps::{Env, trained_bundle};

#[test]
fn the_api_conforms_to_its_openapi_document() {
    let _turn = testkit::turn(module_path!());
    let Some(st) = testkit::require("schemathesis", &testkit::venv_bin("schemathesis")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let replay = Replay::sample();
    let mut env = Env::new(&store, &replay);
    let bundle = trained_bundle(&env, &store, "2023-01-01", "2023-12-31");
    // Fresh validated observations, so /forecast answers 200 as well as 503, and a
    // verification, so /verification does.
    env.ok(&["ingest", "--live"]);
    env.ok(&["validate"]);
    env.ok(&["verify"]);
    env.set("RPS_MODEL_PATH", bundle.display().to_string());
    let server = env.serve();
    let out = Command::new(st)
        .args([
            "run",
            &format!("{}/openapi.json", server.url),
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "100",
            "--seed",
            "42",
            "--no-color",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        // Its crash cache (`.schemathesis/`) goes to the working directory: not the repo.
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let tail: String = stdout
        .chars()
        .rev()
        .take(6000)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    assert!(
        out.status.success(),
        "schemathesis found failures:\n{tail}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("Tested: 10"),
        "every operation was tested:\n{tail}"
    );
}

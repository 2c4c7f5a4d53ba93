//! The infrastructure as code, linted and checked against the code: `cfn-lint` and
//! `sam validate --lint` on template.yaml, `asl-validator` on the state machine, and a
//! check that the template's functions, the state machine's Task states and the
//! library's stage list agree (tests/infra/check_template.py).

use std::path::Path;
use std::process::Command;

fn run(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(testkit::workspace_root())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{text}",
        program.display()
    );
    text
}

#[test]
fn the_state_machine_is_valid_asl() {
    let root = testkit::workspace_root();
    let Some(validator) = testkit::require(
        "asl-validator (npm)",
        &root.join("node_modules/.bin/asl-validator"),
    ) else {
        return;
    };
    run(
        &validator,
        &["--json-path", "infra/statemachine/pipeline.asl.json"],
        &[],
    );
}

#[test]
fn the_template_passes_cfn_lint_and_sam_validate() {
    let iac = testkit::workspace_root().join(".venv-iac/bin");
    let Some(cfn_lint) = testkit::require("cfn-lint", &iac.join("cfn-lint")) else {
        return;
    };
    let Some(sam) = testkit::require("aws-sam-cli", &iac.join("sam")) else {
        return;
    };
    run(&cfn_lint, &["template.yaml"], &[]);
    run(
        &sam,
        &["validate", "--lint", "--template-file", "template.yaml"],
        &[("AWS_DEFAULT_REGION", "eu-west-1"), ("SAM_CLI_TELEMETRY", "0")],
    );
}

#[test]
fn the_template_the_state_machine_and_the_stages_agree() {
    let python = testkit::workspace_root().join(".venv-iac/bin/python");
    let Some(python) = testkit::require("the IaC tools' Python (cfn-lint)", &python) else {
        return;
    };
    run(
        &python,
        &[
            "tests/infra/check_template.py",
            &shared::stage::STAGES.join(","),
            shared::stage::VERIFY,
        ],
        &[],
    );
}

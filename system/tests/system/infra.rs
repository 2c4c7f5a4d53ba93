//! The infrastructure as code, linted and checked against the code: `cfn-lint` and
//! `sam validate --lint` on template.yaml, `asl-validator` on the state machine, and a
//! check that the template's functions, the state machine's Task states and the
//! library's stage list agree (system/checkers/infra/check_template.py).

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
    let _turn = testkit::turn(module_path!());
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
    let _turn = testkit::turn(module_path!());
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
    let _turn = testkit::turn(module_path!());
    let python = testkit::workspace_root().join(".venv-iac/bin/python");
    let Some(python) = testkit::require("the IaC tools' Python (cfn-lint)", &python) else {
        return;
    };
    run(
        &python,
        &[
            "system/checkers/infra/check_template.py",
            &rps_core::stage::STAGES.join(","),
            rps_core::stage::VERIFY,
        ],
        &[],
    );
}

/// The template as CloudFormation and IAM meet it, for a staging and a prod stack in one
/// account (system/checkers/infra/check_stacks.py, on SAM's own translator): no shared physical
/// name, no rule that hears the other stack, every reader may list, the secrets granted
/// in the form their real ARNs match, and each role's store grants exactly what its
/// function's code declares (rps_core::layout::access).
#[test]
fn two_stacks_side_by_side_are_isolated_and_least_privileged() {
    let _turn = testkit::turn(module_path!());
    let root = testkit::workspace_root();
    let Some(python) = testkit::require(
        "the IaC tools' Python (SAM translator)",
        &root.join(".venv-iac/bin/python"),
    ) else {
        return;
    };
    let access: serde_json::Map<String, serde_json::Value> = rps_core::stage::FUNCTIONS
        .iter()
        .chain(&["api"])
        .map(|f| {
            let grants = rps_core::layout::access(f).expect("every function has grants");
            (format!("rps-{f}"), serde_json::to_value(grants).unwrap())
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("access.json");
    std::fs::write(&file, serde_json::Value::Object(access).to_string()).unwrap();
    let out = run(
        &python,
        &["system/checkers/infra/check_stacks.py", file.to_str().unwrap()],
        &[("AWS_DEFAULT_REGION", "eu-west-1")],
    );
    assert!(out.contains("0 problem(s)"), "{out}");
}

/// `sam build` of the shipped template through aws-sam-cli's Rust builder and
/// cargo-lambda (testkit::cloud::sam_build, for this machine's x86_64): every function
/// the template declares gets a `bootstrap` that is the binary its
/// Metadata.BuildProperties.Binary names, built for the requested architecture, and
/// each starts under the Lambda Runtime API and answers (a stage refuses a malformed
/// event with InvalidInput; the API answers an API Gateway /health).
#[test]
fn sam_build_makes_every_function_the_template_names() {
    let _turn = testkit::turn(module_path!());
    let root = testkit::workspace_root();
    let Some(python) = testkit::require("the IaC tools' Python", &root.join(".venv-iac/bin/python")) else {
        return;
    };
    let Some(build) = testkit::cloud::sam_build() else {
        return;
    };
    // Each function's logical id and binary, as template.yaml declares them.
    let listed = run(
        &python,
        &[
            "-c",
            "import json; from samcli.yamlhelper import yaml_parse; r = yaml_parse(open('template.yaml').read())['Resources']; \
             print(json.dumps({k: v.get('Metadata', {}).get('BuildProperties', {}).get('Binary') for k, v in r.items() \
             if v['Type'] == 'AWS::Serverless::Function'}))",
        ],
        &[],
    );
    let functions: std::collections::BTreeMap<String, Option<String>> =
        serde_json::from_str(listed.lines().last().unwrap()).unwrap();
    assert_eq!(
        functions.len(),
        rps_core::stage::FUNCTIONS.len() + 1,
        "{functions:?}"
    );
    let mut seen = std::collections::HashSet::new();
    let store = tempfile::tempdir().unwrap();
    let mut service = Vec::new();
    for (logical, binary) in &functions {
        let binary = binary
            .as_deref()
            .unwrap_or_else(|| panic!("{logical}: no Metadata.BuildProperties.Binary"));
        let bootstrap = build.join(logical).join("bootstrap");
        let built = std::fs::read(&bootstrap).unwrap_or_else(|e| panic!("{}: {e}", bootstrap.display()));
        assert_eq!(&built[..4], b"\x7fELF", "{logical}: not an executable");
        assert_eq!(
            u16::from_le_bytes([built[18], built[19]]),
            0x3e,
            "{logical}: not built for x86_64 (the Architecture parameter)"
        );
        // What `cargo lambda build --bin <Binary>` made (<target>/lambda/<bin>/bootstrap,
        // as kept by sam_build: a clean clone's build in another test overwrites it).
        let compiled = testkit::cloud::compiled_bootstrap(binary);
        assert!(
            std::fs::read(&compiled).is_ok_and(|b| b == built),
            "{logical}: its bootstrap is not {}",
            compiled.display()
        );
        assert!(
            seen.insert(built),
            "{logical}: the same bootstrap as another function"
        );
        let memory = if binary == "rps-train" { 1769 } else { 512 };
        service.push((
            binary,
            logical.as_str(),
            vec![("RPS_STORE", store.path().display().to_string())],
            memory,
            60,
        ));
    }
    let Some(lambda) = testkit::cloud::LambdaService::start(&service) else {
        return;
    };
    for (binary, ..) in &service {
        let (status, error, payload) = if *binary == "rps-api" {
            let health = serde_json::json!({
                "version": "2.0", "routeKey": "$default", "rawPath": "/health", "rawQueryString": "",
                "headers": {}, "isBase64Encoded": false,
                "requestContext": {"http": {"method": "GET", "path": "/health", "protocol": "HTTP/1.1",
                    "sourceIp": "127.0.0.1", "userAgent": "rps-test"}, "requestId": "t", "routeKey": "$default",
                    "stage": "$default", "accountId": "123456789012", "apiId": "rps", "domainName": "localhost",
                    "domainPrefix": "localhost", "time": "04/Dec/2026:00:00:00 +0000", "timeEpoch": 1796342400000u64}
            });
            lambda.invoke(binary, &health)
        } else {
            lambda.invoke(binary, &serde_json::json!({"not": "an event"}))
        };
        assert_eq!(status, 200, "{binary}: {payload}\n{}", lambda.log(binary));
        if *binary == "rps-api" {
            assert_eq!(
                (error, payload["statusCode"].as_u64()),
                (None, Some(200)),
                "{payload}\n{}",
                lambda.log(binary)
            );
        } else {
            assert_eq!(error.as_deref(), Some("Unhandled"), "{binary}: {payload}");
            assert_eq!(
                payload["errorType"],
                "InvalidInput",
                "{binary}: {payload}\n{}",
                lambda.log(binary)
            );
        }
    }
}

/// samconfig.toml and scripts/ci/deploy.sh against what the real `sam deploy` refuses
/// or waits on (system/checkers/infra/check_samconfig.py): no resolve_s3 beside --s3-bucket, no
/// confirmation prompt, no `[default.*]` setting that --config-env ignores, nothing
/// account-specific committed, every parameter without a default passed from the
/// environment.
#[test]
fn samconfig_and_the_deploy_script_pass_what_sam_deploy_enforces() {
    let _turn = testkit::turn(module_path!());
    let python = testkit::workspace_root().join(".venv-iac/bin/python");
    let Some(python) = testkit::require("the IaC tools' Python (aws-sam-cli)", &python) else {
        return;
    };
    let out = run(&python, &["system/checkers/infra/check_samconfig.py"], &[]);
    assert!(out.contains("0 problem(s)"), "{out}");
}

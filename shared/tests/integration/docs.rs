//! Code checks on the documentation: every table in `docs/` that repeats the code is
//! equal to it. Run with `UPDATE_DOCS=1` to rewrite the generated parts.

use std::path::PathBuf;

fn doc(name: &str) -> (PathBuf, String) {
    let path = testkit::workspace_root().join("docs").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (path, text)
}

fn update() -> bool {
    std::env::var("UPDATE_DOCS").is_ok_and(|v| v == "1")
}

/// The text between `<!-- name:start -->` and `<!-- name:end -->`.
fn between<'a>(text: &'a str, name: &str) -> (usize, usize, &'a str) {
    let start = format!("<!-- {name}:start -->\n");
    let end = format!("<!-- {name}:end -->");
    let i = text.find(&start).unwrap_or_else(|| panic!("no {start:?} marker")) + start.len();
    let j = text[i..]
        .find(&end)
        .unwrap_or_else(|| panic!("no {end:?} marker"))
        + i;
    (i, j, &text[i..j])
}

#[test]
fn the_configuration_table_is_generated_from_the_code() {
    let _turn = testkit::turn(module_path!());
    let (path, text) = doc("configuration.md");
    let (i, j, table) = between(&text, "vars");
    let want = rps_core::config::vars::markdown_table();
    if update() {
        std::fs::write(&path, format!("{}{want}{}", &text[..i], &text[j..])).unwrap();
        return;
    }
    assert_eq!(table, want, "docs/configuration.md is out of date: run make docs");
}

#[test]
fn the_store_layout_is_the_one_layout_rs_documents() {
    let _turn = testkit::turn(module_path!());
    let code = std::fs::read_to_string(testkit::workspace_root().join("shared/src/layout.rs")).unwrap();
    let block = |text: &str, prefix: &str| -> String {
        let start = text.find(&format!("{prefix}```text\n")).expect("a text block") + prefix.len() + 8;
        let end = text[start..].find(&format!("{prefix}```")).expect("its end") + start;
        text[start..end]
            .lines()
            .map(|l| l.strip_prefix(prefix).unwrap_or(l.trim_end()).trim_end())
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (_, data) = doc("data.md");
    assert_eq!(block(&data, ""), block(&code, "//! "));
}

#[test]
fn every_metric_the_service_exports_is_documented_and_no_other() {
    let _turn = testkit::turn(module_path!());
    let (_, serving) = doc("serving.md");
    let documented: std::collections::BTreeSet<&str> = serving
        .lines()
        .filter(|l| l.starts_with("| `rps_"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    let exported: std::collections::BTreeSet<&str> = rps_core::serve::metrics::ALL.iter().copied().collect();
    assert_eq!(documented, exported);
}

#[test]
fn every_stage_has_its_folder_its_row_in_the_architecture_and_in_the_readme() {
    let _turn = testkit::turn(module_path!());
    let readme = std::fs::read_to_string(testkit::workspace_root().join("README.md")).unwrap();
    let (_, architecture) = doc("architecture.md");
    for stage in rps_core::stage::FUNCTIONS {
        let folder = testkit::workspace_root().join("shared/src").join(stage);
        assert!(folder.join("mod.rs").exists(), "{} has no folder", stage);
        assert!(
            architecture.contains(&format!("| {stage} |"))
                && architecture.contains(&format!("`shared/src/{stage}/`")),
            "docs/architecture.md's stage table misses {stage}"
        );
        assert!(
            readme.contains(&format!("| {stage} |")),
            "the README's stage table misses {stage}"
        );
    }
}

#[test]
fn the_stage_table_in_the_architecture_is_generated_from_the_code() {
    let _turn = testkit::turn(module_path!());
    let (path, text) = doc("architecture.md");
    let (i, j, table) = between(&text, "stages");
    let want = rps_core::stage::table::markdown();
    if update() {
        std::fs::write(&path, format!("{}{want}{}", &text[..i], &text[j..])).unwrap();
        return;
    }
    assert_eq!(table, want, "docs/architecture.md is out of date: run make docs");
}

#[test]
fn the_scripts_exit_codes_are_generated_from_the_stage_table() {
    let _turn = testkit::turn(module_path!());
    let path = testkit::workspace_root().join("scripts/exit-codes.sh");
    let want = rps_core::stage::table::shell_exit_codes();
    if update() {
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(have, want, "scripts/exit-codes.sh is out of date: run make docs");
    // No script compares an exit code with, or exits with, a number the table holds: it
    // names it (shell: the variable; Python: scripts/exit-codes.sh read by name).
    let scripts = testkit::workspace_root().join("scripts");
    let scripts = crate::helpers::files_under(&scripts)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "sh" || e == "py"));
    for entry in scripts {
        let text = std::fs::read_to_string(&entry).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split('#').next().unwrap_or("");
            for e in rps_core::stage::table::ERROR_TYPES
                .iter()
                .filter(|e| e.exit_code > 1)
            {
                let c = e.exit_code;
                let python = entry.extension().is_some_and(|x| x == "py");
                let literal = if python {
                    code.contains(&format!("exit({c}"))
                } else {
                    [
                        format!("-eq {c}"),
                        format!("-ne {c}"),
                        format!("== {c}"),
                        format!("!= {c}"),
                        format!("= {c} ]"),
                        format!("=={c}"),
                        format!("exit {c}"),
                        format!("exit({c}"),
                        format!("\"{c}\")"),
                        format!("{c}|"),
                        format!("|{c})"),
                    ]
                    .iter()
                    .any(|p| code.contains(p.as_str()))
                        || code.trim_start().starts_with(&format!("{c})"))
                };
                assert!(
                    !literal,
                    "{}:{}: compare with ${} (scripts/exit-codes.sh), not {c}: {line}",
                    entry.display(),
                    n + 1,
                    rps_core::stage::table::shell_name(e.name)
                );
            }
        }
    }
}

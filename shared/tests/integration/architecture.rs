//! The library's layering, read from its own source: stages are siblings. A stage's
//! code imports the core, the ports and itself, never another stage nor the wiring
//! (`pipeline`); the core and the ports import no stage; `pipeline.rs` is the one place
//! that chains stages. A stage's tests may set a scene with the pipeline (they are not
//! part of the stage).

use std::path::{Path, PathBuf};

/// The stage folders of `shared/src`, in the order they run.
const STAGES: [&str; 9] = [
    "ingest",
    "validate",
    "transform",
    "train",
    "evaluate",
    "promote",
    "serve",
    "verify",
    "lineage",
];

/// Files that may name every stage: the wiring, the crate root and the unit tests' helpers.
const WIRING: [&str; 3] = ["pipeline.rs", "lib.rs", "testing.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = crate::helpers::files_under(dir);
    files.retain(|p| p.extension().is_some_and(|e| e == "rs"));
    files
}

/// The code of a file without its test modules (a `tests.rs` file is all test).
fn production_code(path: &Path) -> String {
    if path.file_name().is_some_and(|n| n == "tests.rs") {
        return String::new();
    }
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `code` without its comments (`//` to the end of the line, `/* */`), strings kept.
fn without_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut chars = code.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            match c {
                '\\' => out.extend(chars.next()),
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match (c, chars.peek()) {
            ('"', _) => {
                in_string = true;
                out.push(c);
            }
            ('/', Some('/')) => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        out.push('\n');
                        break;
                    }
                }
            }
            ('/', Some('*')) => {
                let mut last = ' ';
                for c in chars.by_ref() {
                    if last == '*' && c == '/' {
                        break;
                    }
                    last = c;
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The items of the `{...}` group `rest` starts with (nested groups kept whole).
fn group_items(rest: &str) -> Vec<String> {
    let mut depth = 0;
    let mut items = Vec::new();
    let mut item = String::new();
    for c in rest.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    continue;
                }
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    items.push(std::mem::take(&mut item));
                    break;
                }
            }
            ',' if depth == 1 => {
                items.push(std::mem::take(&mut item));
                continue;
            }
            _ => {}
        }
        item.push(c);
    }
    items
}

/// The module a path starts with (`verify` in `verify::trigger::{self, Trigger}`).
fn first_segment(path: &str) -> &str {
    let path = path.trim_start();
    let end = path
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(path.len());
    &path[..end]
}

/// The stages (and the wiring, `pipeline`) a piece of code names through `crate::` or
/// `super::super::`: paths, grouped imports over several lines, nested groups.
fn stages_named(code: &str) -> Vec<&'static str> {
    let code = without_comments(code);
    let mut named = Vec::new();
    let mut note = |first: &str| {
        for stage in STAGES.into_iter().chain(["pipeline"]) {
            if first == stage && !named.contains(&stage) {
                named.push(stage);
            }
        }
    };
    for prefix in ["crate::", "super::super::"] {
        for (at, _) in code.match_indices(prefix) {
            let rest = &code[at + prefix.len()..];
            if rest.starts_with('{') {
                for item in group_items(rest) {
                    note(first_segment(&item));
                }
            } else {
                note(first_segment(rest));
            }
        }
    }
    named
}

/// Where a file sits: `Some(stage)` inside a stage's folder, `None` in the core.
fn stage_of(path: &Path) -> Option<&'static str> {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?;
    let first = first.strip_suffix(".rs").unwrap_or(first);
    STAGES.into_iter().find(|s| *s == first)
}

#[test]
fn no_stage_imports_another_stage_and_the_core_imports_none() {
    let _turn = testkit::turn(module_path!());
    let files = rust_files(&src());
    assert!(
        files.len() > 50,
        "read the library's source: {} files",
        files.len()
    );
    let mut edges = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        if WIRING.contains(&name) && path.parent() == Some(src().as_path()) {
            continue;
        }
        let home = stage_of(path);
        for named in stages_named(&production_code(path)) {
            if Some(named) != home {
                let rel = path.strip_prefix(src()).unwrap().display().to_string();
                edges.push(format!(
                    "{rel} ({}) imports the {named} stage",
                    home.unwrap_or("core")
                ));
            }
        }
    }
    assert!(
        edges.is_empty(),
        "stages are siblings: move what crosses into crate::records, chain in pipeline.rs:\n{}",
        edges.join("\n")
    );
}

#[test]
fn the_check_sees_the_imports_it_forbids() {
    let _turn = testkit::turn(module_path!());
    let named = |code: &str| stages_named(code);
    assert_eq!(named("use crate::verify::trigger::{self, Trigger};"), ["verify"]);
    assert_eq!(
        named("use crate::{layout, train, evaluate::gates};"),
        ["train", "evaluate"]
    );
    assert_eq!(named("let x = crate::ingest::ingest(ctx, r);"), ["ingest"]);
    assert_eq!(
        named("use crate::{\n    layout,\n    verify::trigger,\n};"),
        ["verify"]
    );
    assert_eq!(named("use crate::{records::{a, b}, serve::api};"), ["serve"]);
    assert_eq!(named("use super::super::promote::lease;"), ["promote"]);
    assert_eq!(
        named("let u = \"http://x\"; crate::train::train(c, i)"),
        ["train"]
    );
    assert_eq!(named("crate::pipeline::run(ctx, input, obs)"), ["pipeline"]);
    assert!(named("use crate::records::stages::TrainInput;").is_empty());
    assert!(named("use crate::training::x; // crate::serve").is_empty());
    assert!(named("use crate::x; /* crate::serve */").is_empty());
    let root = src();
    assert_eq!(stage_of(&root.join("verify/score.rs")), Some("verify"));
    assert_eq!(stage_of(&root.join("lineage/mod.rs")), Some("lineage"));
    assert_eq!(stage_of(&root.join("records/retrain/mod.rs")), None);
    assert_eq!(stage_of(&root.join("drift.rs")), None);
}

#[test]
fn the_pipeline_chains_every_batch_stage() {
    let _turn = testkit::turn(module_path!());
    let pipeline = std::fs::read_to_string(src().join("pipeline.rs")).unwrap();
    let named = stages_named(&pipeline);
    for stage in ["ingest", "validate", "transform", "train", "evaluate", "promote"] {
        assert!(
            named.contains(&stage),
            "pipeline.rs does not chain {stage}: {named:?}"
        );
    }
}

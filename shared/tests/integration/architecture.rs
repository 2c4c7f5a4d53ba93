//! The library's layering, read from its own source: stages are siblings. A stage's
//! code imports the core, the ports and itself, never another stage; the core and the
//! ports import no stage; `pipeline.rs` is the one place that chains stages. A stage's
//! tests may set a scene with the pipeline (they are not part of the stage).

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

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
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

/// The stages a piece of code names through `crate::` (paths and grouped imports).
fn stages_named(code: &str) -> Vec<&'static str> {
    let mut named = Vec::new();
    for line in code.lines() {
        // The code before any comment on the line.
        let line = line.split("//").next().unwrap_or_default();
        for (at, _) in line.match_indices("crate::") {
            let rest = &line[at + "crate::".len()..];
            let group = rest.strip_prefix('{').map(|g| g.split('}').next().unwrap_or(g));
            for stage in STAGES {
                let direct = rest.starts_with(stage)
                    && !rest[stage.len()..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
                let grouped = group.is_some_and(|g| {
                    g.split(',').any(|item| {
                        let item = item.trim();
                        item == stage || item.starts_with(&format!("{stage}::"))
                    })
                });
                if (direct || grouped) && !named.contains(&stage) {
                    named.push(stage);
                }
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
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
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
    assert_eq!(
        stages_named("use crate::verify::trigger::{self, Trigger};"),
        ["verify"]
    );
    assert_eq!(
        stages_named("use crate::{layout, train, evaluate::gates};"),
        ["train", "evaluate"]
    );
    assert_eq!(stages_named("let x = crate::ingest::ingest(ctx, r);"), ["ingest"]);
    assert!(stages_named("use crate::records::stages::TrainInput;").is_empty());
    assert!(stages_named("use crate::training::x; // crate::serve").is_empty());
    let root = src();
    assert_eq!(stage_of(&root.join("verify/score.rs")), Some("verify"));
    assert_eq!(stage_of(&root.join("lineage/mod.rs")), Some("lineage"));
    assert_eq!(stage_of(&root.join("records/retrain/mod.rs")), None);
    assert_eq!(stage_of(&root.join("drift.rs")), None);
}

#[test]
fn the_pipeline_chains_every_batch_stage() {
    let pipeline = std::fs::read_to_string(src().join("pipeline.rs")).unwrap();
    let named = stages_named(&pipeline);
    for stage in ["ingest", "validate", "transform", "train", "evaluate", "promote"] {
        assert!(
            named.contains(&stage),
            "pipeline.rs does not chain {stage}: {named:?}"
        );
    }
}

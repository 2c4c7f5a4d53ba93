//! What people see: logs, progress spinners and summary tables.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use comfy_table::{CellAlignment, Table, presets};
use indicatif::{ProgressBar, ProgressStyle};
use rps_core::features::HORIZONS;
use rps_core::pipeline::RunOutput;
use rps_core::promote::PromoteOutput;
use rps_core::registry::{LoadedModel, VersionInfo};
use rps_core::stage::{Context, Observer, StageError};
use rps_core::store::ObjectKey;
use rps_core::tags;

use crate::commands::Out;

/// Logs go to stderr (see `rps_core::logging`); the default level is `warn` on a
/// terminal, where spinners show progress, and `info` otherwise.
pub fn init_logging() {
    rps_core::logging::init(if std::io::stderr().is_terminal() {
        "warn"
    } else {
        "info"
    });
}

/// One spinner per stage on a terminal; plain lines otherwise.
pub struct Progress {
    tty: bool,
    state: Mutex<Option<(ProgressBar, Instant)>>,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            tty: std::io::stderr().is_terminal(),
            state: Mutex::new(None),
        }
    }

    pub fn clear(&self) {
        if let Some((bar, _)) = self.state.lock().unwrap_or_else(|p| p.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

impl Observer for Progress {
    fn started(&self, stage: &'static str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let bar = if self.tty {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        } else {
            ProgressBar::hidden()
        };
        bar.set_message(format!("{stage}…"));
        *state = Some((bar, Instant::now()));
    }

    fn finished(&self, stage: &'static str, summary: &str) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let took = state.as_ref().map(|(_, t)| t.elapsed()).unwrap_or_default();
        let line = format!("✓ {stage:<9} {summary} ({:.2} s)", took.as_secs_f64());
        match state.take() {
            Some((bar, _)) if self.tty => bar.finish_with_message(line),
            _ => eprintln!("{line}"),
        }
    }
}

fn metric(m: &BTreeMap<String, f64>, name: &str, h: u8) -> String {
    m.get(&format!("{name}_h{h}"))
        .map(|v| format!("{v:.3}"))
        .unwrap_or_else(|| "–".into())
}

/// The per-horizon metrics next to the baselines.
pub fn metrics_table(m: &BTreeMap<String, f64>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "horizon",
        "RMSE",
        "MAE",
        "R²",
        "persistence RMSE",
        "seasonal-naive RMSE",
        "skill vs persistence",
    ]);
    for h in HORIZONS {
        let skill = m
            .get(&format!("skill_h{h}"))
            .map(|s| format!("{:+.1}%", s * 100.0))
            .unwrap_or_default();
        t.add_row([
            format!("{h} h"),
            metric(m, "rmse", h),
            metric(m, "mae", h),
            metric(m, "r2", h),
            metric(m, "persistence_rmse", h),
            metric(m, "seasonal_naive_rmse", h),
            skill,
        ]);
    }
    for c in 1..7 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}

/// Registered versions, newest first.
pub fn versions_table(versions: &[VersionInfo]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED);
    t.set_header([
        "version",
        "aliases",
        "created (UTC)",
        "algorithm",
        "data version",
        "RMSE 1 h",
        "RMSE 6 h",
        "persistence 6 h",
    ]);
    for v in versions {
        let tag = |k: &str| v.tag(k).unwrap_or("–").to_owned();
        t.add_row([
            v.version.clone(),
            v.aliases
                .iter()
                .map(|a| format!("@{a}"))
                .collect::<Vec<_>>()
                .join(" "),
            v.created_at
                .map(|c| c.format("%Y-%m-%d %H:%M").to_string())
                .unwrap_or_default(),
            tag(tags::version::ALGORITHM),
            v.data_version()
                .map(|d| d.chars().take(12).collect())
                .unwrap_or_default(),
            tag(&tags::version::metric("rmse_h1")),
            tag(&tags::version::metric("rmse_h6")),
            tag(&tags::version::metric("persistence_rmse_h6")),
        ]);
    }
    t
}

pub fn print_metrics(m: &BTreeMap<String, f64>) {
    println!("{}", metrics_table(m));
}

/// The end-of-run summary: metrics and where every output is. On stderr when stdout
/// carries the JSON contract.
pub fn print_run_summary(ctx: &Context, out: &RunOutput, json: bool) {
    let s = ctx.store.as_ref();
    let mut text = String::new();
    text.push_str(&format!(
        "\nModel {} version {} (@candidate in {}): {} on {} rows (data version {})\n",
        out.model_name, out.model_version, out.train.registry, out.algorithm, out.rows, out.data_version
    ));
    text.push_str(&format!("{}\n\nOutputs:\n", metrics_table(&out.metrics)));
    let rows = [
        ("raw snapshot", s.url(&out.ingest.snapshot)),
        ("snapshot metadata", s.url(&out.ingest.meta)),
        ("quality report", s.url(&out.validate.report)),
        ("processed dataset", out.transform.dataset.clone()),
        ("data profile", s.url(&out.transform.profile)),
        ("dataset manifest", s.url(&out.transform.manifest)),
        ("model bundle", s.url(&out.train.bundle)),
        ("evaluation", s.url(&out.train.evaluation)),
        ("evaluation (Markdown)", s.url(&out.train.evaluation_markdown)),
    ];
    for (what, url) in rows {
        text.push_str(&format!("  {what:<22} {url}\n"));
    }
    if let Some(url) = &out.run_url {
        text.push_str(&format!("  {:<22} {url}\n", "MLflow run"));
    }
    if let Some(url) = &out.train.version_url {
        text.push_str(&format!("  {:<22} {url}\n", "model version"));
    }
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
        let _ = std::io::stdout().flush();
    }
}

/// The outcome of a promotion.
pub fn print_promoted(ctx: &Context, out: &PromoteOutput, json: bool) {
    let mut text = if out.already_production {
        format!(
            "{} version {} already is production: nothing changed\n",
            out.model_name, out.version
        )
    } else {
        format!(
            "{} version {} is now @production (previous: {}), promoted by {}\n",
            out.model_name,
            out.version,
            out.previous.as_deref().unwrap_or("none"),
            out.promoted_by
        )
    };
    if let Some(r) = &out.report {
        text.push_str(&format!(
            "  gate report {}{}\n",
            ctx.store.url(r),
            if out.gates_run { "" } else { " (reused)" }
        ));
    }
    if !out.already_production {
        text.push_str(&format!("  legacy stages: {}\n", out.stages));
    }
    if let Some(url) = ctx.registry.version_url(&out.model_name, &out.version) {
        text.push_str(&format!("  {url}\n"));
    }
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
        let _ = std::io::stdout().flush();
    }
}

/// One version in detail.
pub fn print_version(loaded: &LoadedModel, url: Option<&str>) {
    let (v, m) = (&loaded.info, &loaded.bundle.metadata);
    let aliases = v
        .aliases
        .iter()
        .map(|a| format!("@{a}"))
        .collect::<Vec<_>>()
        .join(" ");
    println!("{} version {} {aliases}", v.name, v.version);
    let rows: Vec<(&str, String)> = vec![
        ("algorithm", m.algorithm.clone()),
        ("trained at", m.created_at.to_rfc3339()),
        ("data version", m.data_version.clone()),
        ("dataset", m.dataset_key.clone()),
        (
            "git commit",
            m.git_commit.clone().unwrap_or_else(|| "unknown".into()),
        ),
        ("run", v.run_id.clone().unwrap_or_else(|| "untracked".into())),
        (
            "training window",
            format!(
                "{} → {} ({} rows)",
                fmt_time(m.training_window.start),
                fmt_time(m.training_window.end),
                m.train_rows
            ),
        ),
        (
            "hold-out window",
            format!(
                "{} → {} ({} rows)",
                fmt_time(m.holdout_window.start),
                fmt_time(m.holdout_window.end),
                m.holdout_rows
            ),
        ),
        ("input hours", loaded.bundle.schema.input_hours.to_string()),
        (
            "bundle",
            format!("{} bytes, sha256 {}", loaded.bytes, loaded.sha256),
        ),
        ("source", v.source.clone()),
        ("stage", v.stage.clone().unwrap_or_else(|| "–".into())),
    ];
    for (k, val) in rows {
        println!("  {k:<16} {val}");
    }
    if let Some(u) = url {
        println!("  {:<16} {u}", "MLflow");
    }
    println!("{}", metrics_table(&m.metrics));
}

fn fmt_time(t: chrono::NaiveDateTime) -> String {
    rps_core::observations::format_time(t)
}

/// A lineage as a tree.
pub fn print_lineage(l: &rps_core::lineage::Lineage) {
    let m = &l.model;
    let aliases = m
        .aliases
        .iter()
        .map(|a| format!("@{a}"))
        .collect::<Vec<_>>()
        .join(" ");
    println!("{} version {} {aliases}", m.name, m.version);
    println!("│ {} in {}", m.algorithm, m.registry);
    if let Some(u) = &m.url {
        println!("│ {u}");
    }
    println!("│ bundle sha256 {}", m.bundle_sha256.as_deref().unwrap_or("–"));
    println!(
        "│ trained {} on {} → {}, scored on {} → {}",
        m.trained_at.format("%Y-%m-%d %H:%M UTC"),
        fmt_time(m.training_window.start),
        fmt_time(m.training_window.end),
        fmt_time(m.holdout_window.start),
        fmt_time(m.holdout_window.end)
    );
    match &l.run {
        Some(r) => println!(
            "├─ run {} {} {}",
            r.run_id,
            r.status.as_deref().unwrap_or(""),
            r.url.as_deref().unwrap_or("")
        ),
        None => println!("├─ run: untracked"),
    }
    println!("├─ git commit {}", l.git_commit.as_deref().unwrap_or("unknown"));
    let d = &l.data;
    println!("├─ data version {}", d.data_version);
    println!("│  ├─ dataset {}", d.dataset);
    if let (Some(rows), Some(w)) = (d.rows, d.window) {
        println!("│  ├─ {rows} rows, {} → {}", fmt_time(w.start), fmt_time(w.end));
    }
    println!("│  ├─ manifest {}", d.manifest);
    match &d.dvc_file {
        Some(f) => {
            println!("│  └─ .dvc file (DVC remote {}):", d.dvc_remote);
            for line in f.lines() {
                println!("│       {line}");
            }
        }
        None => println!("│  └─ no manifest found: the dataset's lineage is not in this store"),
    }
    println!("└─ raw snapshots");
    for (i, s) in l.snapshots.iter().enumerate() {
        let last = i + 1 == l.snapshots.len();
        let (branch, pipe) = if last {
            ("└─", "   ")
        } else {
            ("├─", "│  ")
        };
        println!("   {branch} {}", s.url);
        if let Some(c) = s.collected_at {
            println!("   {pipe}   collected {}", c.to_rfc3339());
        }
        if let Some(u) = &s.source_url {
            println!("   {pipe}   from {u}");
        }
        if let Some(sha) = &s.sha256 {
            println!("   {pipe}   sha256 {sha}, {} bytes", s.bytes.unwrap_or(0));
        }
        let verdict = match s.quality_passed {
            Some(true) => "passed",
            Some(false) => "FAILED",
            None => "no report",
        };
        println!("   {pipe}   quality gate {verdict} ({})", s.quality_report);
    }
    println!("\nTo rebuild:");
    for c in &l.rebuild {
        println!("  {c}");
    }
}

/// Prints a stored gate report's Markdown (to stderr with `--json`, so stdout stays one
/// JSON object).
pub async fn show_report(ctx: &Context, markdown: &ObjectKey, out: &Out) {
    match ctx.store.get(markdown).await {
        Ok(md) => out.text(&String::from_utf8_lossy(&md)),
        Err(e) => eprintln!("(the report's Markdown could not be read: {e})"),
    }
}

/// A refused promotion still shows its report before the error.
pub async fn with_report<T>(ctx: &Context, r: Result<T, StageError>, out: &Out) -> anyhow::Result<T> {
    if let Err(StageError::PromotionRefused { markdown, .. }) = &r {
        show_report(ctx, markdown, out).await;
    }
    Ok(r?)
}

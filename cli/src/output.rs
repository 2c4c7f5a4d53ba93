//! What people see: logs, progress spinners and summary tables.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use comfy_table::{CellAlignment, Table, presets};
use indicatif::{ProgressBar, ProgressStyle};
use shared::features::HORIZONS;
use shared::pipeline::{Context, Observer, RunOutput};
use tracing_subscriber::EnvFilter;

/// Logs go to stderr: human-readable by default, JSON with `RPS_LOG_FORMAT=json`.
/// `RUST_LOG` sets the level (default `warn` on a terminal, where spinners show
/// progress, and `info` otherwise).
pub fn init_logging() {
    let default = if std::io::stderr().is_terminal() {
        "warn"
    } else {
        "info"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("RPS_LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
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

pub fn print_metrics(m: &BTreeMap<String, f64>) {
    println!("{}", metrics_table(m));
}

/// The end-of-run summary: metrics and where every output is. On stderr when stdout
/// carries the JSON contract.
pub fn print_run_summary(ctx: &Context, out: &RunOutput, json: bool) {
    let s = ctx.store.as_ref();
    let mut text = String::new();
    text.push_str(&format!(
        "\nModel {} {}: {} on {} rows (data version {})\n",
        out.model_name, out.model_version, out.algorithm, out.rows, out.data_version
    ));
    text.push_str(&format!("{}\n\nOutputs:\n", metrics_table(&out.metrics)));
    let rows = [
        ("raw snapshot", s.url(&out.ingest.snapshot)),
        ("snapshot metadata", s.url(&out.ingest.meta)),
        ("quality report", s.url(&out.validate.report)),
        ("processed dataset", s.url(&out.transform.dataset)),
        ("data profile", s.url(&out.transform.profile)),
        ("dataset manifest", s.url(&out.transform.manifest)),
        ("model bundle", s.url(&out.train.bundle)),
        ("evaluation", s.url(&out.train.evaluation)),
        ("evaluation (Markdown)", s.url(&out.train.evaluation_markdown)),
    ];
    for (what, url) in rows {
        text.push_str(&format!("  {what:<22} {url}\n"));
    }
    if json {
        eprint!("{text}");
    } else {
        print!("{text}");
        let _ = std::io::stdout().flush();
    }
}

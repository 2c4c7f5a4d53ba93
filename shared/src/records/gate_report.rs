//! The champion/challenger report the promotion gates produce (evaluate writes it,
//! promote acts on it, CI comments it): JSON for machines and Markdown for a
//! pull-request comment (CML); the gates' outcomes it is made of.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::bundle::{BUNDLE_FORMAT_VERSION, ModelSchema, READABLE_BUNDLE_FORMATS};
use crate::observations::{TimeWindow, format_time};
use crate::scores::{HorizonScore, IntervalScore};

/// The horizon the headline figures are about.
pub const HEADLINE_HORIZON: u8 = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    Schema,
    Accuracy,
    NoRegression,
    Intervals,
    Skill,
    Latency,
    Smoke,
}

impl Gate {
    pub const ALL: [Gate; 7] = [
        Gate::Schema,
        Gate::Accuracy,
        Gate::NoRegression,
        Gate::Intervals,
        Gate::Skill,
        Gate::Latency,
        Gate::Smoke,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Gate::Schema => "schema",
            Gate::Accuracy => "accuracy",
            Gate::NoRegression => "no_regression",
            Gate::Intervals => "intervals",
            Gate::Skill => "skill",
            Gate::Latency => "latency",
            Gate::Smoke => "smoke",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    /// The gate does not apply (no production model to compare with, no staging
    /// endpoint). It neither passes nor blocks.
    NotApplicable,
}

impl Verdict {
    pub fn symbol(self) -> &'static str {
        match self {
            Verdict::Pass => "✅ pass",
            Verdict::Fail => "❌ fail",
            Verdict::NotApplicable => "➖ n/a",
        }
    }
}

/// One gate's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub gate: Gate,
    pub verdict: Verdict,
    /// What was measured, for people ("1.272 °C").
    pub measured: String,
    /// What it had to be, for people ("< 2.000 °C").
    pub threshold: String,
    /// The number behind `measured`, when there is one.
    #[serde(default)]
    pub value: Option<f64>,
    #[serde(default)]
    pub limit: Option<f64>,
    /// Why, in one sentence.
    pub detail: String,
}

impl GateResult {
    pub(crate) fn new(
        gate: Gate,
        verdict: Verdict,
        measured: String,
        threshold: String,
        detail: String,
    ) -> Self {
        Self {
            gate,
            verdict,
            measured,
            threshold,
            value: None,
            limit: None,
            detail,
        }
    }

    pub(crate) fn numbers(mut self, value: f64, limit: f64) -> Self {
        self.value = Some(value);
        self.limit = Some(limit);
        self
    }

    pub fn failed(&self) -> bool {
        self.verdict == Verdict::Fail
    }

    /// A gate that could not be measured because an earlier one failed.
    pub fn not_measured(gate: Gate, why: &str) -> Self {
        Self::new(
            gate,
            Verdict::Fail,
            "not measured".into(),
            "-".into(),
            format!("not measured: {why}"),
        )
    }
}

/// What the schema gate knows about a model's input contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    pub format_version: u32,
    /// `None` when the bundle could not even be decoded far enough to read it.
    pub schema: Option<ModelSchema>,
    /// Why this build cannot serve it, if it cannot.
    pub incompatibility: Option<String>,
}

impl Contract {
    pub fn of(format_version: u32, schema: &ModelSchema) -> Self {
        Self {
            format_version,
            schema: Some(schema.clone()),
            incompatibility: if !READABLE_BUNDLE_FORMATS.contains(&format_version) {
                Some(format!(
                    "bundle format version {format_version} (this build reads 1 to {BUNDLE_FORMAT_VERSION})"
                ))
            } else {
                schema.incompatibility()
            },
        }
    }

    pub fn unreadable(why: String, format_version: u32) -> Self {
        Self {
            format_version,
            schema: None,
            incompatibility: Some(why),
        }
    }
}

/// One smoke check against the staging endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SmokeCheck {
    pub check: String,
    pub ok: bool,
    pub detail: String,
}

pub const REPORT_FORMAT: u32 = 1;

/// The rows both models were scored on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holdout {
    pub data_version: String,
    /// The whole dataset the hold-out was cut from.
    pub dataset_window: TimeWindow,
    pub window: TimeWindow,
    pub rows: usize,
    /// Set when the hold-out had to be shortened (a model trained on part of it).
    #[serde(default)]
    pub note: Option<String>,
}

/// One model's side of the comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Side {
    pub version: String,
    pub aliases: Vec<String>,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub data_version: Option<String>,
    #[serde(default)]
    pub git_commit: Option<String>,
    #[serde(default)]
    pub algorithm: Option<String>,
    #[serde(default)]
    pub training_window: Option<TimeWindow>,
    pub contract: Contract,
    /// Scores on the common hold-out; empty when the model could not be scored.
    pub scores: Vec<HorizonScore>,
    /// Its intervals' scores on the same hold-out, per horizon and level; empty when it
    /// could not be scored or has no intervals (trained without calibration).
    #[serde(default)]
    pub intervals: Vec<IntervalScore>,
    #[serde(default)]
    pub latency_p50_ms: Option<f64>,
    #[serde(default)]
    pub latency_p99_ms: Option<f64>,
}

impl Side {
    pub fn score(&self, h: u8) -> Option<&HorizonScore> {
        self.scores.iter().find(|s| s.horizon == h)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateReport {
    pub format: u32,
    /// Sortable and unique: the UTC time it was made.
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub model_name: String,
    pub passed: bool,
    pub failed_gates: Vec<Gate>,
    pub gates: Vec<GateResult>,
    /// Contract changes a reviewer should know about (they do not fail a gate).
    pub flags: Vec<String>,
    pub holdout: Holdout,
    pub candidate: Side,
    pub production: Option<Side>,
    #[serde(default)]
    pub staging_url: Option<String>,
    #[serde(default)]
    pub smoke: Vec<SmokeCheck>,
    /// What asked for the candidate, when a verification did.
    #[serde(default)]
    pub trigger: Option<crate::records::retrain::Trigger>,
}

impl GateReport {
    /// A report with no gates yet; add them, then [`GateReport::seal`].
    pub fn new(model_name: String, holdout: Holdout, candidate: Side, production: Option<Side>) -> Self {
        let created_at = Utc::now();
        Self {
            format: REPORT_FORMAT,
            id: crate::layout::stamp(created_at),
            created_at,
            model_name,
            passed: false,
            failed_gates: Vec::new(),
            gates: Vec::new(),
            flags: Vec::new(),
            holdout,
            candidate,
            production,
            staging_url: None,
            smoke: Vec::new(),
            trigger: None,
        }
    }

    /// Records the verdict: passed when every gate is there and none failed.
    pub fn seal(mut self) -> Self {
        self.failed_gates = self.gates.iter().filter(|g| g.failed()).map(|g| g.gate).collect();
        let complete = Gate::ALL.iter().all(|g| self.gates.iter().any(|r| r.gate == *g));
        self.passed = complete && self.failed_gates.is_empty();
        self
    }

    pub fn failed_gate_names(&self) -> Vec<&'static str> {
        self.failed_gates.iter().map(|g| g.name()).collect()
    }

    /// The report as a pull-request comment.
    pub fn to_markdown(&self, chart_link: Option<&str>) -> String {
        let mut s = String::new();
        let verdict = if self.passed {
            "✅ **all gates passed**: the candidate may be promoted".to_owned()
        } else {
            format!(
                "❌ **refused**: failed {}; production does not change",
                self.failed_gate_names().join(", ")
            )
        };
        let prod = self
            .production
            .as_ref()
            .map_or("none".to_owned(), |p| format!("version {}", p.version));
        s.push_str(&format!(
            "## Promotion gates: {} version {} vs production ({prod})\n\n{verdict}\n\n",
            self.model_name, self.candidate.version
        ));
        if let Some(t) = &self.trigger {
            s.push_str(&format!(
                "**Started by a verification** ({}, trigger `{}`, observations up to {}):\n\n",
                t.kinds(),
                t.id,
                format_time(t.as_of)
            ));
            for c in &t.causes {
                s.push_str(&format!("- {}: {}\n", c.kind.name(), c.reason));
            }
            s.push('\n');
        }
        s.push_str("| gate | verdict | measured | threshold | detail |\n|---|---|---|---|---|\n");
        for g in &self.gates {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                g.gate.name(),
                g.verdict.symbol(),
                cell(&g.measured),
                cell(&g.threshold),
                cell(&g.detail)
            ));
        }
        if !self.flags.is_empty() {
            s.push_str("\n**Flagged contract changes**\n\n");
            for f in &self.flags {
                s.push_str(&format!("- {f}\n"));
            }
        }
        s.push_str(&format!(
            "\n### Error by horizon on the common hold-out\n\n{} rows, {} → {}, data version `{}` (dataset {} → {}).{}\n\n",
            self.holdout.rows,
            format_time(self.holdout.window.start),
            format_time(self.holdout.window.end),
            self.holdout.data_version,
            format_time(self.holdout.dataset_window.start),
            format_time(self.holdout.dataset_window.end),
            self.holdout
                .note
                .as_ref()
                .map(|n| format!(" {n}"))
                .unwrap_or_default()
        ));
        s.push_str(
            "| horizon | candidate RMSE | production RMSE | change | persistence RMSE | candidate skill |\n|---:|---:|---:|---:|---:|---:|\n",
        );
        for c in &self.candidate.scores {
            let p = self.production.as_ref().and_then(|p| p.score(c.horizon));
            s.push_str(&format!(
                "| {} h | {:.3} | {} | {} | {:.3} | {:+.1}% |\n",
                c.horizon,
                c.rmse,
                p.map_or("-".into(), |p| format!("{:.3}", p.rmse)),
                p.map_or("-".into(), |p| format!(
                    "{:+.1}%",
                    (c.rmse / p.rmse - 1.0) * 100.0
                )),
                c.persistence_rmse,
                c.skill() * 100.0
            ));
        }
        if let Some(link) = chart_link {
            s.push_str(&format!("\n![error by horizon]({link})\n"));
        }
        s.push_str(&self.intervals_markdown());
        s.push_str("\n### Lineage\n\n| | candidate | production |\n|---|---|---|\n");
        let row = |label: &str, f: &dyn Fn(&Side) -> Option<String>| {
            format!(
                "| {label} | {} | {} |\n",
                f(&self.candidate).unwrap_or_else(|| "-".into()),
                self.production.as_ref().and_then(f).unwrap_or_else(|| "-".into())
            )
        };
        s.push_str(&row("version", &|m| Some(m.version.clone())));
        s.push_str(&row("algorithm", &|m| m.algorithm.clone()));
        s.push_str(&row("data version", &|m| {
            m.data_version.as_ref().map(|d| format!("`{d}`"))
        }));
        s.push_str(&row("git commit", &|m| {
            m.git_commit
                .as_ref()
                .map(|c| format!("`{}`", &c[..c.len().min(12)]))
        }));
        s.push_str(&row("trained on", &|m| {
            m.training_window
                .as_ref()
                .map(|w| format!("{} → {}", format_time(w.start), format_time(w.end)))
        }));
        s.push_str(&row("MLflow run", &|m| m.run_id.clone()));
        s.push_str(&row("p99 latency", &|m| {
            m.latency_p99_ms.map(|v| format!("{v:.3} ms"))
        }));
        if !self.smoke.is_empty() {
            s.push_str(&format!(
                "\n### Smoke test of {}\n\n| check | result | detail |\n|---|---|---|\n",
                self.staging_url.as_deref().unwrap_or("staging")
            ));
            for c in &self.smoke {
                s.push_str(&format!(
                    "| {} | {} | {} |\n",
                    c.check,
                    if c.ok { "✅" } else { "❌" },
                    cell(&c.detail)
                ));
            }
        }
        s.push_str(&format!("\n<sub>report {}</sub>\n", self.id));
        s
    }

    /// The intervals on the common hold-out, the candidate's beside production's.
    fn intervals_markdown(&self) -> String {
        if self.candidate.intervals.is_empty() {
            return "\n### Prediction intervals on the common hold-out\n\nThe candidate has no prediction intervals.\n".into();
        }
        let mut s = String::from(
            "\n### Prediction intervals on the common hold-out\n\n| horizon | level | candidate coverage | production coverage | candidate width (°C) | candidate interval score | production interval score | change |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for c in &self.candidate.intervals {
            let p = self.production.as_ref().and_then(|p| {
                p.intervals
                    .iter()
                    .find(|p| p.horizon == c.horizon && p.level == c.level)
            });
            s.push_str(&format!(
                "| {} h | {}% | {:.1}% | {} | {:.2} | {:.3} | {} | {} |\n",
                c.horizon,
                c.percent(),
                c.coverage * 100.0,
                p.map_or("-".into(), |p| format!("{:.1}%", p.coverage * 100.0)),
                c.width,
                c.winkler,
                p.map_or("-".into(), |p| format!("{:.3}", p.winkler)),
                p.map_or("-".into(), |p| format!(
                    "{:+.1}%",
                    (c.winkler / p.winkler - 1.0) * 100.0
                )),
            ));
        }
        s
    }

    /// A one-line verdict per gate, for terminals.
    pub fn summary_lines(&self) -> Vec<String> {
        self.gates
            .iter()
            .map(|g| {
                let mark = match g.verdict {
                    Verdict::Pass => "pass",
                    Verdict::Fail => "FAIL",
                    Verdict::NotApplicable => "n/a ",
                };
                format!("{mark}  {:<13} {}", g.gate.name(), g.detail)
            })
            .collect()
    }
}

/// Markdown table cells cannot hold `|` or newlines.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

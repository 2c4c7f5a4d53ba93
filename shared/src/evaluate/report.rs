//! The champion/challenger report the promotion gates produce: JSON for machines,
//! Markdown for a pull-request comment (CML), and a PNG chart of the error by horizon.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::gates::{Contract, Gate, GateResult, SmokeCheck, Verdict};
use crate::observations::{TimeWindow, format_time};
use crate::scores::HorizonScore;

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
    pub trigger: Option<crate::verify::trigger::Trigger>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{BUNDLE_FORMAT_VERSION, ModelSchema};
    use crate::evaluate::gates::{self, Gate};
    use crate::observations::parse_time;

    fn side(version: &str, rmse: f64) -> Side {
        Side {
            version: version.into(),
            aliases: vec![],
            run_id: Some(format!("run{version}")),
            data_version: Some("0123456789abcdef0123456789abcdef".into()),
            git_commit: Some("a".repeat(40)),
            algorithm: Some("ridge(alpha=1)".into()),
            training_window: None,
            contract: Contract::of(BUNDLE_FORMAT_VERSION, &ModelSchema::current()),
            scores: (1..=6)
                .map(|h| HorizonScore {
                    horizon: h,
                    rows: 100,
                    rmse: rmse * h as f64,
                    mae: 0.0,
                    r2: 0.9,
                    persistence_rmse: 0.25 * h as f64,
                    persistence_mae: 0.0,
                    seasonal_naive_rmse: 3.0,
                    seasonal_naive_mae: 0.0,
                })
                .collect(),
            latency_p50_ms: Some(0.02),
            latency_p99_ms: Some(0.05),
        }
    }

    fn report() -> GateReport {
        let t = parse_time("2023-11-01T00:00").unwrap();
        let w = TimeWindow { start: t, end: t };
        let mut r = GateReport::new(
            "m".into(),
            Holdout {
                data_version: "d".into(),
                dataset_window: w,
                window: w,
                rows: 100,
                note: None,
            },
            side("2", 0.2),
            Some(side("1", 0.3)),
        );
        let cfg = crate::config::Config::from_map(&Default::default())
            .unwrap()
            .gates;
        r.gates.push(gates::accuracy(&r.candidate.scores, &cfg));
        r
    }

    #[test]
    fn a_report_passes_only_with_every_gate_present_and_none_failed() {
        let incomplete = report().seal();
        assert!(!incomplete.passed, "a missing gate is not a pass");
        let mut r = report();
        let cfg = crate::config::Config::from_map(&Default::default())
            .unwrap()
            .gates;
        let (schema, _) = gates::schema(&r.candidate.contract, None);
        r.gates.push(schema);
        r.gates
            .push(gates::no_regression(&r.candidate.scores, None, &cfg));
        r.gates.push(gates::skill(&r.candidate.scores, &cfg));
        r.gates.push(gates::latency(0.05, 1000, &cfg));
        r.gates.push(gates::smoke(None, &[]));
        let r = r.seal();
        assert!(r.passed, "{:?}", r.failed_gates);
        let mut failing = r.clone();
        failing.gates.push(gates::latency(50.0, 1000, &cfg));
        let failing = failing.seal();
        assert!(!failing.passed);
        assert_eq!(failing.failed_gates, [Gate::Latency]);
        let md = failing.to_markdown(Some("chart.png"));
        assert!(md.contains("❌ **refused**: failed latency"), "{md}");
        assert!(md.contains("| 6 h | 1.200 | 1.800 | -33.3% | 1.500 |"), "{md}");
        assert!(md.contains("![error by horizon](chart.png)"));
        let back: GateReport = serde_json::from_str(&serde_json::to_string(&failing).unwrap()).unwrap();
        assert_eq!(back, failing);
    }

    #[test]
    fn the_chart_is_a_png_of_the_expected_size() {
        let png = crate::evaluate::chart::error_chart_png(&report()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, right after the signature and chunk header.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 800);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 450);
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-output");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("gate-chart.png"), &png).unwrap();
    }
}

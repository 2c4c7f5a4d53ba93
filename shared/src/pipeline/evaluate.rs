//! Stage 5, evaluate: score the candidate and the production model on the same unseen
//! hold-out, run every promotion gate, and write the report (JSON, Markdown, PNG) to
//! the store and to the candidate's MLflow run. Nothing here moves an alias.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Context, DatasetManifest, StageError, dataset_manifests};
use crate::config::GateConfig;
use crate::evaluate::HorizonScore;
use crate::features::{HORIZONS, INPUT_HOURS, serving_row};
use crate::gates::{self, Contract, Gate, GateResult, SmokeCheck};
use crate::layout;
use crate::model::{ModelBundle, ModelError, TimeWindow};
use crate::observations::{HourlySeries, KEY_VARIABLES, format_time};
use crate::registry::{self, ModelRef, RegistryError, VersionInfo, aliases};
use crate::report::{self, GateReport, Holdout, Side};
use crate::store::{self, ObjectKey};
use crate::transform::{Dataset, TrainingSet};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateInput {
    pub candidate: ModelRef,
    /// The dataset to cut the hold-out from; default: the newest one in the store.
    #[serde(default)]
    pub data_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluateOutput {
    pub model_name: String,
    pub candidate_version: String,
    pub production_version: Option<String>,
    pub data_version: String,
    pub passed: bool,
    pub failed_gates: Vec<String>,
    pub report: ObjectKey,
    pub markdown: ObjectKey,
    pub chart: ObjectKey,
    /// The MLflow artifact folder the report was logged to, when tracked.
    #[serde(default)]
    pub logged_to: Option<String>,
}

/// A model as the gates see it.
struct Loaded {
    info: VersionInfo,
    contract: Contract,
    bundle: Option<ModelBundle>,
}

/// Predictions in the time a request would take: features from a window, then every
/// horizon, this many times.
const LATENCY_SAMPLES: usize = 1000;
const LATENCY_ROUNDS: usize = 3;

/// Scores, gates and reports a candidate against production.
pub async fn evaluate(ctx: &Context, input: EvaluateInput) -> Result<EvaluateOutput, StageError> {
    Ok(evaluate_with_report(ctx, input).await?.0)
}

/// [`evaluate`], also handing back the report itself.
pub(super) async fn evaluate_with_report(
    ctx: &Context,
    input: EvaluateInput,
) -> Result<(EvaluateOutput, GateReport), StageError> {
    let (report, keys, files) = run_gates(ctx, &input).await?;
    let logged_to = log_to_run(ctx, &report, &files).await?;
    let out = EvaluateOutput {
        model_name: report.model_name.clone(),
        candidate_version: report.candidate.version.clone(),
        production_version: report.production.as_ref().map(|p| p.version.clone()),
        data_version: report.holdout.data_version.clone(),
        passed: report.passed,
        failed_gates: report.failed_gate_names().iter().map(|s| s.to_string()).collect(),
        report: keys.json,
        markdown: keys.markdown,
        chart: keys.chart,
        logged_to,
    };
    Ok((out, report))
}

struct ReportKeys {
    pub json: ObjectKey,
    pub markdown: ObjectKey,
    pub chart: ObjectKey,
}

/// A stored report file and its bytes.
type ReportFile = (ObjectKey, Bytes);

/// Runs the gates and stores the report; returns it with where it is and its files.
async fn run_gates(
    ctx: &Context,
    input: &EvaluateInput,
) -> Result<(GateReport, ReportKeys, Vec<ReportFile>), StageError> {
    let name = ctx.config.registry.model_name.clone();
    let cfg = ctx.config.gates.clone();
    let candidate_info = ctx.registry.resolve(&name, &input.candidate).await?;
    let production_info = production(ctx, &name).await?;
    let candidate = load(ctx, candidate_info).await?;
    let production = match production_info {
        Some(info) => Some(load(ctx, info).await?),
        None => None,
    };

    let manifest = match &input.data_version {
        Some(v) => store::get_json(ctx.store.as_ref(), &layout::dataset_manifest(v)?).await?,
        None => holdout_dataset(ctx).await?,
    };
    let parquet = ctx.dvc.pull(&manifest.data_version).await?;
    let data = tokio::task::spawn_blocking(move || -> Result<_, StageError> {
        let dataset = Dataset::from_parquet(&parquet)?;
        let set = dataset.training_set()?;
        let series = observed_series(&dataset, &set.times)?;
        Ok((set, series))
    })
    .await
    .map_err(|e| StageError::Input(format!("loading the hold-out failed: {e}")))??;
    let (set, series) = data;

    let scorable: Vec<&Loaded> = std::iter::once(&candidate)
        .chain(production.as_ref())
        .filter(|m| m.bundle.is_some() && m.contract.incompatibility.is_none())
        .collect();
    let (rows, holdout) = holdout_rows(
        &set,
        &manifest,
        &scorable,
        ctx.config.train.holdout_fraction,
        &cfg,
    )?;

    let score = |m: &Loaded| -> Vec<HorizonScore> {
        match (&m.bundle, &m.contract.incompatibility) {
            (Some(b), None) => score_bundle(b, &set, &rows),
            _ => Vec::new(),
        }
    };
    let windows = latency_windows(&series, &set.times, &rows);
    let mut cand_side = side(&candidate, score(&candidate));
    if let (Some(b), None) = (&candidate.bundle, &candidate.contract.incompatibility) {
        let (p50, p99) = measure_latency(b, &windows)?;
        cand_side.latency_p50_ms = Some(p50);
        cand_side.latency_p99_ms = Some(p99);
    }
    let prod_side = production.as_ref().map(|p| {
        let mut s = side(p, score(p));
        if let (Some(b), None) = (&p.bundle, &p.contract.incompatibility) {
            if let Ok((p50, p99)) = measure_latency(b, &windows) {
                s.latency_p50_ms = Some(p50);
                s.latency_p99_ms = Some(p99);
            }
        }
        s
    });

    // The gates, in the order a reviewer reads them.
    let mut report = GateReport::new(name.clone(), holdout, cand_side, prod_side);
    let (schema_gate, mut flags) =
        gates::schema(&candidate.contract, production.as_ref().map(|p| &p.contract));
    let scored = !report.candidate.scores.is_empty();
    report.gates.push(schema_gate);
    if scored {
        report.gates.push(gates::accuracy(&report.candidate.scores, &cfg));
        let prod_scores = report
            .production
            .as_ref()
            .filter(|p| !p.scores.is_empty())
            .map(|p| p.scores.as_slice());
        if let (Some(p), None) = (&production, prod_scores) {
            flags.push(format!(
                "production version {} cannot be scored by this build ({}), so there is no comparison",
                p.info.version,
                p.contract.incompatibility.as_deref().unwrap_or("unreadable")
            ));
        }
        report
            .gates
            .push(gates::no_regression(&report.candidate.scores, prod_scores, &cfg));
        report.gates.push(gates::skill(&report.candidate.scores, &cfg));
        let p99 = report.candidate.latency_p99_ms.unwrap_or(f64::NAN);
        report.gates.push(gates::latency(p99, LATENCY_SAMPLES, &cfg));
    } else {
        for g in [Gate::Accuracy, Gate::NoRegression, Gate::Skill, Gate::Latency] {
            report
                .gates
                .push(GateResult::not_measured(g, "the schema gate failed"));
        }
    }
    let staging = cfg
        .staging_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_owned());
    let checks = match (&staging, &candidate.bundle) {
        (Some(url), Some(bundle)) => smoke_checks(ctx, url, &candidate.info, bundle, windows.first()).await,
        (Some(_), None) => vec![SmokeCheck {
            check: "candidate".into(),
            ok: false,
            detail: "the candidate bundle cannot be read, so there is no golden answer".into(),
        }],
        (None, _) => Vec::new(),
    };
    report.gates.push(gates::smoke(staging.as_deref(), &checks));
    report.staging_url = staging;
    report.smoke = checks;
    report.flags = flags;
    let report = report.seal();

    let (keys, files) = write_report(ctx, &report).await?;
    Ok((report, keys, files))
}

/// The version `production` points at, if any.
pub(super) async fn production(ctx: &Context, name: &str) -> Result<Option<VersionInfo>, StageError> {
    match ctx.registry.get_alias(name, aliases::PRODUCTION).await {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

async fn load(ctx: &Context, info: VersionInfo) -> Result<Loaded, StageError> {
    let cache = ctx.config.registry.cache_dir.clone();
    match registry::load_version(ctx.registry.as_ref(), info.clone(), &cache).await {
        Ok(m) => Ok(Loaded {
            info: m.info,
            contract: Contract::of(m.bundle.format_version, &m.bundle.schema),
            bundle: Some(m.bundle),
        }),
        // A bundle this build cannot read is the schema gate's business, not an error.
        Err(RegistryError::Bundle { source, .. }) => {
            let format_version = match &source {
                ModelError::FormatVersion { found, .. } => *found,
                _ => 0,
            };
            Ok(Loaded {
                info,
                contract: Contract::unreadable(source.to_string(), format_version),
                bundle: None,
            })
        }
        Err(RegistryError::Invalid(why)) => Ok(Loaded {
            info,
            contract: Contract::unreadable(why, 0),
            bundle: None,
        }),
        Err(e) => Err(e.into()),
    }
}

fn side(m: &Loaded, scores: Vec<HorizonScore>) -> Side {
    let meta = m.bundle.as_ref().map(|b| &b.metadata);
    Side {
        version: m.info.version.clone(),
        aliases: m.info.aliases.clone(),
        run_id: m.info.run_id.clone(),
        data_version: m.info.data_version().map(str::to_owned),
        git_commit: m.info.tag(registry::tags::GIT_COMMIT).map(str::to_owned),
        algorithm: m.info.tag(registry::tags::ALGORITHM).map(str::to_owned),
        training_window: meta.map(|m| m.training_window),
        contract: m.contract.clone(),
        scores,
        latency_p50_ms: None,
        latency_p99_ms: None,
    }
}

/// The dataset hold-outs are cut from: the one whose observations reach furthest (ties:
/// more rows, then the newer one). Not the most recently built, which may be a short one.
pub async fn holdout_dataset(ctx: &Context) -> Result<DatasetManifest, StageError> {
    let best = dataset_manifests(ctx)
        .await?
        .into_iter()
        .max_by_key(|m| (m.window.end, m.rows, m.created_at));
    best.ok_or_else(|| {
        StageError::Input(format!(
            "there is no processed dataset in {} to evaluate on: run `rps pipeline run` first",
            ctx.store.url(&ObjectKey::new("datasets").expect("a valid key"))
        ))
    })
}

/// The observed variables of every dataset row, as the series serving would see.
fn observed_series(dataset: &Dataset, times: &[NaiveDateTime]) -> Result<HourlySeries, StageError> {
    let columns = KEY_VARIABLES
        .iter()
        .map(|v| dataset.observed(*v))
        .collect::<Result<Vec<_>, _>>()?;
    HourlySeries::new(times.to_vec(), columns)
        .map_err(|e| StageError::Input(format!("the dataset's observations: {e}")))
}

/// The chronological tail of the dataset that no scored model trained on.
fn holdout_rows(
    set: &TrainingSet,
    manifest: &DatasetManifest,
    models: &[&Loaded],
    holdout_fraction: f64,
    cfg: &GateConfig,
) -> Result<(Vec<usize>, Holdout), StageError> {
    let n = set.times.len();
    let tail_start = n - ((n as f64 * holdout_fraction).ceil() as usize).min(n);
    let max_h = chrono::Duration::hours(*HORIZONS.iter().max().unwrap_or(&6) as i64);
    // A row is unseen by a model when none of its target hours was a training target.
    let mut cutoff: Option<(NaiveDateTime, String)> = None;
    for m in models {
        if let Some(b) = &m.bundle {
            let end = b.metadata.training_window.end + max_h;
            if cutoff.as_ref().is_none_or(|(c, _)| end > *c) {
                cutoff = Some((end, m.info.version.clone()));
            }
        }
    }
    let rows: Vec<usize> = (tail_start..n)
        .filter(|&i| cutoff.as_ref().is_none_or(|(c, _)| set.times[i] > *c))
        .collect();
    let tail = n - tail_start;
    let note = match &cutoff {
        Some((c, version)) if rows.len() < tail => Some(format!(
            "Version {version} trained on data up to {}, so only the {} of {tail} tail rows after it are used.",
            format_time(*c - max_h),
            rows.len()
        )),
        _ => None,
    };
    if rows.len() < cfg.min_holdout_rows {
        return Err(StageError::Input(format!(
            "data version {} leaves {} hold-out rows that neither model trained on (at least {} are needed); {}",
            manifest.data_version,
            rows.len(),
            cfg.min_holdout_rows,
            note.as_deref()
                .unwrap_or("evaluate on a newer dataset with --data-version")
        )));
    }
    let window = TimeWindow {
        start: set.times[rows[0]],
        end: set.times[*rows.last().expect("not empty")],
    };
    let holdout = Holdout {
        data_version: manifest.data_version.clone(),
        dataset_window: manifest.window,
        window,
        rows: rows.len(),
        note,
    };
    Ok((rows, holdout))
}

fn score_bundle(bundle: &ModelBundle, set: &TrainingSet, rows: &[usize]) -> Vec<HorizonScore> {
    let raw: Vec<Vec<f64>> = rows.iter().map(|&i| set.rows[i].clone()).collect();
    bundle
        .models
        .iter()
        .filter_map(|m| {
            let h = HORIZONS.iter().position(|h| *h == m.horizon)?;
            let truth: Vec<f64> = rows.iter().map(|&i| set.targets[h][i]).collect();
            let predicted = m.predict(&bundle.scaler, &raw);
            Some(HorizonScore::new(m.horizon, &raw, &truth, &predicted))
        })
        .collect()
}

/// Windows of `INPUT_HOURS` contiguous observations ending at hold-out rows.
fn latency_windows(series: &HourlySeries, times: &[NaiveDateTime], rows: &[usize]) -> Vec<HourlySeries> {
    let span = chrono::Duration::hours(INPUT_HOURS as i64 - 1);
    rows.iter()
        .rev()
        .filter_map(|&i| {
            let w = series.between(times[i] - span, times[i]);
            (w.len() == INPUT_HOURS && w.is_contiguous()).then_some(w)
        })
        .take(200)
        .collect()
}

/// p50 and p99 (ms) of one prediction as the API makes it: features, then every horizon.
/// The best of [`LATENCY_ROUNDS`] rounds, so a burst of load elsewhere on the machine
/// does not pass for the model's own cost.
fn measure_latency(bundle: &ModelBundle, windows: &[HourlySeries]) -> Result<(f64, f64), StageError> {
    if windows.is_empty() {
        return Err(StageError::Input(
            "the hold-out has no window of contiguous hours to time predictions on".into(),
        ));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..LATENCY_ROUNDS {
        let mut times = Vec::with_capacity(LATENCY_SAMPLES);
        for k in 0..LATENCY_SAMPLES + 100 {
            let w = &windows[k % windows.len()];
            let t = Instant::now();
            let row = serving_row(w).map_err(|e| StageError::Input(format!("a latency window: {e}")))?;
            std::hint::black_box(bundle.predict(&row)?);
            if k >= 100 {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let q = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
        let round = (ms(q(0.50)), ms(q(0.99)));
        if best.is_none_or(|b| round.1 < b.1) {
            best = Some(round);
        }
    }
    Ok(best.expect("at least one round"))
}

/// The golden request: the newest hold-out window as `/predict` takes it.
pub fn golden_request(window: &HourlySeries) -> Value {
    let obs: Vec<Value> = (0..window.len())
        .map(|i| {
            let mut o = serde_json::Map::new();
            o.insert("time".into(), json!(format_time(window.times()[i])));
            for v in KEY_VARIABLES {
                o.insert(v.name().into(), json!(window.column(v)[i]));
            }
            Value::Object(o)
        })
        .collect();
    json!({ "observations": obs })
}

async fn smoke_checks(
    ctx: &Context,
    url: &str,
    candidate: &VersionInfo,
    bundle: &ModelBundle,
    golden: Option<&HourlySeries>,
) -> Vec<SmokeCheck> {
    let mut checks = Vec::new();
    let get = |path: &str| {
        let u = format!("{url}{path}");
        async move {
            let r = ctx.http.get(&u).timeout(Duration::from_secs(10)).send().await?;
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            Ok::<_, reqwest::Error>((status, body))
        }
    };
    let mut check = |name: &str, ok: bool, detail: String| {
        checks.push(SmokeCheck {
            check: name.to_owned(),
            ok,
            detail,
        })
    };
    for path in ["/health", "/ready"] {
        match get(path).await {
            Ok((s, _)) => check(path, s.as_u16() == 200, format!("HTTP {}", s.as_u16())),
            Err(e) => check(
                path,
                false,
                format!("no answer: {}", crate::http::error_chain(&e)),
            ),
        }
    }
    match get("/model").await {
        Ok((s, body)) => {
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let served = v["version"].as_str().unwrap_or("?").to_owned();
            let sha_ok = v["sha256"].as_str() == candidate.bundle_sha256();
            let ok = s.as_u16() == 200 && served == candidate.version && sha_ok;
            check(
                "/model",
                ok,
                if ok {
                    format!("serves version {served}")
                } else if s.as_u16() != 200 {
                    format!("HTTP {}", s.as_u16())
                } else {
                    format!(
                        "serves version {served}, not the candidate {}{}",
                        candidate.version,
                        if sha_ok { "" } else { " (bundle checksum differs)" }
                    )
                },
            );
        }
        Err(e) => check(
            "/model",
            false,
            format!("no answer: {}", crate::http::error_chain(&e)),
        ),
    }
    let Some(window) = golden else {
        check(
            "/predict",
            false,
            "no contiguous hold-out window for a golden request".into(),
        );
        return checks;
    };
    let expected = serving_row(window)
        .map_err(|e| e.to_string())
        .and_then(|row| bundle.predict(&row).map_err(|e| e.to_string()));
    let sent = ctx
        .http
        .post(format!("{url}/predict"))
        .timeout(Duration::from_secs(10))
        .json(&golden_request(window))
        .send()
        .await;
    match (sent, expected) {
        (Err(e), _) => check(
            "/predict",
            false,
            format!("no answer: {}", crate::http::error_chain(&e)),
        ),
        (_, Err(e)) => check("/predict", false, format!("no golden answer in-process: {e}")),
        (Ok(r), Ok(expected)) => {
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            let got: Vec<f64> = v["forecasts"]
                .as_array()
                .map(|a| a.iter().filter_map(|f| f["temperature_2m"].as_f64()).collect())
                .unwrap_or_default();
            let worst = if got.len() == expected.len() {
                got.iter()
                    .zip(&expected)
                    .map(|(g, e)| (g - e.temperature_2m).abs())
                    .fold(0.0, f64::max)
            } else {
                f64::INFINITY
            };
            let ok = status == 200 && worst < 1e-6;
            check(
                "/predict",
                ok,
                if ok {
                    format!("{} forecasts equal the in-process answer", got.len())
                } else if status != 200 {
                    format!("HTTP {status}: {}", v["error"]["message"].as_str().unwrap_or(""))
                } else {
                    format!(
                        "{} forecasts, off the in-process answer by up to {worst:.3e}",
                        got.len()
                    )
                },
            );
        }
    }
    checks
}

async fn write_report(
    ctx: &Context,
    report: &GateReport,
) -> Result<(ReportKeys, Vec<ReportFile>), StageError> {
    let name = &report.model_name;
    let version = &report.candidate.version;
    let keys = ReportKeys {
        json: layout::gate_report(name, version, &report.id, "report.json")?,
        markdown: layout::gate_report(name, version, &report.id, "report.md")?,
        chart: layout::gate_report(name, version, &report.id, CHART_FILE)?,
    };
    let r = report.clone();
    let png = tokio::task::spawn_blocking(move || report::error_chart_png(&r))
        .await
        .map_err(|e| StageError::Input(format!("drawing the chart failed: {e}")))?
        .map_err(|e| StageError::Input(format!("drawing the chart failed: {e}")))?;
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| StageError::Input(format!("cannot serialise the report: {e}")))?;
    // The JSON last: its presence means the report is complete.
    let files: Vec<ReportFile> = vec![
        (keys.chart.clone(), png.into()),
        (keys.markdown.clone(), report.to_markdown(Some(CHART_FILE)).into()),
        (keys.json.clone(), json.into()),
    ];
    for (key, body) in &files {
        ctx.store.put_new(key, body.clone()).await?;
    }
    Ok((keys, files))
}

pub const CHART_FILE: &str = "error-by-horizon.png";

/// Logs the report to the candidate's MLflow run, under `gates/<report id>/`.
async fn log_to_run(
    ctx: &Context,
    report: &GateReport,
    files: &[ReportFile],
) -> Result<Option<String>, StageError> {
    let (Some(client), Some(run_id)) = (&ctx.mlflow, &report.candidate.run_id) else {
        return Ok(None);
    };
    let run = client.get_run(run_id).await?;
    let dir = format!("gates/{}", report.id);
    for (key, body) in files {
        client
            .upload_artifact(&run.info, &format!("{dir}/{}", key.file_name()), body.clone())
            .await?;
    }
    client
        .set_run_tag(run_id, "rps.gate_report", &format!("{dir}/report.json"))
        .await?;
    client
        .set_run_tag(
            run_id,
            "rps.gates",
            if report.passed { "passed" } else { "failed" },
        )
        .await?;
    Ok(Some(format!(
        "{}/{dir}",
        run.info.artifact_uri.trim_end_matches('/')
    )))
}

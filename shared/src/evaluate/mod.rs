//! Stage 5, evaluate: score the candidate and the production model on the same unseen
//! hold-out ([`holdout`]), run every promotion gate ([`gates`]), and write the report
//! ([`report`], with its [`chart`]) to the store and to the candidate's tracking run.
//! Nothing here moves an alias.

pub mod chart;
pub mod gates;
pub mod holdout;
pub mod latency;
pub mod report;
pub mod smoke;

use bytes::Bytes;

use self::gates::{Contract, Gate, GateResult, SmokeCheck};
use self::report::{GateReport, Side};
use crate::bundle::{Interval, ModelBundle, ModelError};
use crate::dataset::{self, Dataset, DatasetManifest, TrainingSet};
use crate::features::HORIZONS;
use crate::layout;
use crate::observations::HourlySeries;
use crate::records::retrain::{self as trigger, RetrainStatus};
pub use crate::records::stages::{CHART_FILE, EvaluateInput, EvaluateOutput};
use crate::registry::{self, RegistryError, VersionInfo};
use crate::scores::{HorizonScore, IntervalScore, interval_scores};
use crate::stage::{Context, StageError, blocking};
use crate::store::ObjectKey;
use crate::tags;

/// A model as the gates see it: its bundle, when this build can read it.
struct Loaded {
    info: VersionInfo,
    contract: Contract,
    bundle: Option<ModelBundle>,
    /// Why the bundle cannot be trusted (corrupt, checksum mismatch, no checksum), as
    /// opposed to a contract this build does not serve.
    unverifiable: Option<String>,
}

impl Loaded {
    /// The bundle, when the gates can score it.
    fn scorable(&self) -> Option<&ModelBundle> {
        self.bundle
            .as_ref()
            .filter(|_| self.contract.incompatibility.is_none())
    }
}

/// Scores, gates and reports a candidate against production.
pub async fn evaluate(ctx: &Context, input: EvaluateInput) -> Result<EvaluateOutput, StageError> {
    Ok(evaluate_with_report(ctx, input).await?.0)
}

/// [`evaluate`], also handing back the report itself.
pub(crate) async fn evaluate_with_report(
    ctx: &Context,
    input: EvaluateInput,
) -> Result<(EvaluateOutput, GateReport), StageError> {
    if let Some((out, report)) = stored_refusal(ctx, &input).await? {
        record_refusal(ctx, &input, &out).await;
        return Ok((out, report));
    }
    let mut report = assess(ctx, &input).await?;
    report.trigger = input.trigger.clone();
    let files = write_report(ctx, &report).await?;
    // The verdict is stored: nothing after it may fail the stage, or a retry would
    // measure again (the latency gate is a timing) and could turn a refusal into a pass.
    let mut warnings = Vec::new();
    let logged_to = match log_to_run(ctx, &report, &files).await {
        Ok(at) => at,
        Err(e) => {
            let w = format!("the report was not logged to the candidate's run: {e}");
            tracing::error!("{w}");
            warnings.push(w);
            None
        }
    };
    let [chart, markdown, json] = files.map(|(key, _)| key);
    let out = EvaluateOutput {
        markdown,
        chart,
        logged_to,
        warnings,
        ..EvaluateOutput::of(&report, json)?
    };
    if !report.passed {
        for g in report.gates.iter().filter(|g| g.failed()) {
            tracing::warn!(
                gate = g.gate.name(),
                "version {} failed the {} gate: {}",
                report.candidate.version,
                g.gate.name(),
                g.detail
            );
        }
        record_refusal(ctx, &input, &out).await;
    }
    Ok((out, report))
}

/// Tells a triggered retrain that its candidate was refused.
async fn record_refusal(ctx: &Context, input: &EvaluateInput, out: &EvaluateOutput) {
    if let Some(t) = &input.trigger {
        trigger::record_outcome(
            ctx.store.as_ref(),
            &out.model_name,
            t,
            RetrainStatus::Refused,
            Some(&out.candidate_version),
            Some(&out.report),
            &out.failed_gates,
        )
        .await;
    }
}

/// A refusal already stored for this candidate against the same production and data.
/// It is final: a retried evaluation (its first attempt timed out after storing the
/// verdict) returns it instead of measuring again, since the latency gate is a timing
/// and a second measurement could pass.
async fn stored_refusal(
    ctx: &Context,
    input: &EvaluateInput,
) -> Result<Option<(EvaluateOutput, GateReport)>, StageError> {
    let name = &ctx.config.registry.model_name;
    let candidate = ctx.registry.resolve(name, &input.candidate).await?;
    let mut keys: Vec<ObjectKey> = ctx
        .store
        .list(&layout::gate_reports_prefix(name, &candidate.version))
        .await?
        .into_iter()
        .filter(|k| k.file_name() == "report.json")
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    keys.sort_by(|a, b| b.as_str().cmp(a.as_str()));
    let production = registry::find_alias(ctx.registry.as_ref(), name, &ctx.config.aliases().served)
        .await?
        .map(|v| v.version);
    let data_version = match &input.data_version {
        Some(v) => v.clone(),
        None => dataset::furthest(ctx.store.as_ref()).await?.data_version,
    };
    for key in keys {
        let Ok(report) = crate::store::get_json::<GateReport>(ctx.store.as_ref(), &key).await else {
            continue;
        };
        if report.passed
            || report.production.as_ref().map(|p| p.version.as_str()) != production.as_deref()
            || report.holdout.data_version != data_version
        {
            continue;
        }
        let warning = format!(
            "version {} was refused against the same production and data before (report {key}): the verdict stands, nothing was measured again",
            candidate.version
        );
        tracing::info!("{warning}");
        let out = EvaluateOutput {
            warnings: vec![warning],
            ..EvaluateOutput::of(&report, key)?
        };
        return Ok(Some((out, report)));
    }
    Ok(None)
}

/// Loads both models and the hold-out, measures, and runs every gate.
async fn assess(ctx: &Context, input: &EvaluateInput) -> Result<GateReport, StageError> {
    let name = ctx.config.registry.model_name.clone();
    let cfg = &ctx.config.gates;
    let candidate = load(ctx, ctx.registry.resolve(&name, &input.candidate).await?).await?;
    let production =
        match registry::find_alias(ctx.registry.as_ref(), &name, &ctx.config.aliases().served).await? {
            Some(info) => Some(load(ctx, info).await?),
            None => None,
        };
    let manifest = match &input.data_version {
        Some(v) => dataset::manifest(ctx.store.as_ref(), v).await?,
        None => dataset::furthest(ctx.store.as_ref()).await?,
    };
    let (set, series) = load_holdout_data(ctx, &manifest).await?;
    let trained: Vec<holdout::Trained<'_>> = std::iter::once(&candidate)
        .chain(production.as_ref())
        .filter_map(|m| {
            m.scorable().map(|b| holdout::Trained {
                version: &m.info.version,
                training_end: b.metadata.training_window.end,
            })
        })
        .collect();
    let (rows, held_out) = holdout::rows(
        &set,
        &manifest,
        &trained,
        ctx.config.train.holdout_fraction,
        cfg.min_holdout_rows,
    )?;
    let windows = holdout::serving_windows(&series, &set.times, &rows);

    let mut cand_side = side(&candidate, &set, &rows);
    if let Some(b) = candidate.scorable() {
        let (p50, p99) = latency::measure(b, &windows)?;
        (cand_side.latency_p50_ms, cand_side.latency_p99_ms) = (Some(p50), Some(p99));
    }
    let prod_side = production.as_ref().map(|p| {
        let mut s = side(p, &set, &rows);
        if let Some((p50, p99)) = p.scorable().and_then(|b| latency::measure(b, &windows).ok()) {
            (s.latency_p50_ms, s.latency_p99_ms) = (Some(p50), Some(p99));
        }
        s
    });

    let mut report = GateReport::new(name, held_out, cand_side, prod_side);
    report.flags = measured_gates(&mut report, &candidate, production.as_ref(), cfg);
    let staging = cfg
        .staging_url
        .as_ref()
        .map(|u| u.as_str().trim_end_matches('/').to_owned());
    let checks = match (&staging, &candidate.bundle) {
        (Some(url), Some(bundle)) => {
            smoke::checks(&ctx.http, url, &candidate.info, bundle, windows.first()).await
        }
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
    Ok(report.seal())
}

/// The gates that judge measurements, in the order a reviewer reads them; returns the
/// report's flags (differences worth a reviewer's eye that fail nothing).
fn measured_gates(
    report: &mut GateReport,
    candidate: &Loaded,
    production: Option<&Loaded>,
    cfg: &crate::config::GateConfig,
) -> Vec<String> {
    let (schema_gate, mut flags) = gates::schema(&candidate.contract, production.map(|p| &p.contract));
    report.gates.push(schema_gate);
    if report.candidate.scores.is_empty() {
        for g in [
            Gate::Accuracy,
            Gate::NoRegression,
            Gate::Intervals,
            Gate::Skill,
            Gate::Latency,
        ] {
            report
                .gates
                .push(GateResult::not_measured(g, "the schema gate failed"));
        }
        return flags;
    }
    report.gates.push(gates::accuracy(&report.candidate.scores, cfg));
    let prod_scores = report
        .production
        .as_ref()
        .filter(|p| !p.scores.is_empty())
        .map(|p| p.scores.as_slice());
    let no_regression = match (production, prod_scores) {
        (Some(p), None) if p.unverifiable.is_some() => gates::no_regression_unverifiable(
            &p.info.version,
            p.unverifiable.as_deref().unwrap_or_default(),
            cfg,
        ),
        (Some(p), None) => {
            flags.push(format!(
                "production version {} cannot be scored by this build ({}), so there is no comparison",
                p.info.version,
                p.contract.incompatibility.as_deref().unwrap_or("unreadable")
            ));
            gates::no_regression(&report.candidate.scores, None, cfg)
        }
        (_, scores) => gates::no_regression(&report.candidate.scores, scores, cfg),
    };
    report.gates.push(no_regression);
    let prod_intervals = report
        .production
        .as_ref()
        .filter(|p| !p.scores.is_empty())
        .map(|p| p.intervals.as_slice());
    report
        .gates
        .push(gates::intervals(&report.candidate.intervals, prod_intervals, cfg));
    report.gates.push(gates::skill(&report.candidate.scores, cfg));
    let p99 = report.candidate.latency_p99_ms.unwrap_or(f64::NAN);
    report.gates.push(gates::latency(p99, latency::SAMPLES, cfg));
    flags
}

async fn load(ctx: &Context, info: VersionInfo) -> Result<Loaded, StageError> {
    let cache = ctx.config.registry.cache_dir.clone();
    match registry::load_version(ctx.registry.as_ref(), info.clone(), &cache).await {
        Ok(m) => Ok(Loaded {
            info: m.info,
            contract: Contract::of(m.bundle.format_version, &m.bundle.schema),
            bundle: Some(m.bundle),
            unverifiable: None,
        }),
        // A bundle this build cannot read is the schema gate's business, not an error;
        // one that cannot be verified is the no-regression gate's.
        Err(RegistryError::Bundle { source, .. }) => {
            let (format_version, unverifiable) = match &source {
                ModelError::FormatVersion { found, .. } => (*found, None),
                ModelError::Schema(_) => (0, None),
                other => (0, Some(other.to_string())),
            };
            Ok(Loaded {
                info,
                contract: Contract::unreadable(source.to_string(), format_version),
                bundle: None,
                unverifiable,
            })
        }
        Err(RegistryError::Invalid(why)) => Ok(Loaded {
            info,
            contract: Contract::unreadable(why.clone(), 0),
            bundle: None,
            unverifiable: Some(why),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The dataset's training set and its observations as serving sees them.
async fn load_holdout_data(
    ctx: &Context,
    manifest: &DatasetManifest,
) -> Result<(TrainingSet, HourlySeries), StageError> {
    let parquet = ctx.dvc.pull(&manifest.data_version).await?;
    blocking("loading the hold-out", move || {
        let dataset = Dataset::from_parquet(&parquet)?;
        let set = dataset.training_set()?;
        let series = holdout::observed_series(&dataset, &set.times)?;
        Ok((set, series))
    })
    .await
}

/// A model's side of the report, scored on the hold-out rows when it can be.
fn side(m: &Loaded, set: &TrainingSet, rows: &[usize]) -> Side {
    let meta = m.bundle.as_ref().map(|b| &b.metadata);
    let (scores, intervals) = m.scorable().map(|b| score(b, set, rows)).unwrap_or_default();
    Side {
        version: m.info.version.clone(),
        aliases: m.info.aliases.clone(),
        run_id: m.info.run_id.clone(),
        data_version: m.info.data_version().map(str::to_owned),
        git_commit: m.info.tag(tags::version::GIT_COMMIT).map(str::to_owned),
        algorithm: m.info.tag(tags::version::ALGORITHM).map(str::to_owned),
        training_window: meta.map(|m| m.training_window),
        contract: m.contract.clone(),
        scores,
        intervals,
        latency_p50_ms: None,
        latency_p99_ms: None,
    }
}

/// The point forecasts' scores per horizon, and the intervals' per horizon and level
/// (none from a bundle without calibration), as serving would make them.
fn score(bundle: &ModelBundle, set: &TrainingSet, rows: &[usize]) -> (Vec<HorizonScore>, Vec<IntervalScore>) {
    let raw: Vec<Vec<f64>> = rows.iter().map(|&i| set.rows[i].clone()).collect();
    let z: Vec<Vec<f64>> = raw.iter().map(|r| bundle.scaler.apply(r)).collect();
    let mut points = Vec::new();
    let mut intervals = Vec::new();
    for (k, m) in bundle.models.iter().enumerate() {
        let Some(h) = HORIZONS.iter().position(|h| *h == m.horizon) else {
            continue;
        };
        let truth: Vec<f64> = rows.iter().map(|&i| set.targets[h][i]).collect();
        let predicted = m.predict_standardised(&z, &raw);
        points.push(HorizonScore::new(m.horizon, &raw, &truth, &predicted));
        if let Some(c) = &bundle.calibration {
            let hours: Vec<(f64, Vec<Interval>)> = rows
                .iter()
                .zip(&truth)
                .zip(predicted.iter().zip(&z))
                .map(|((&i, y), (p, z))| (*y, c.intervals(k, set.times[i], z, *p)))
                .collect();
            intervals.extend(interval_scores(m.horizon, &c.levels, &hours));
        }
    }
    (points, intervals)
}

/// A stored report file and its bytes.
type ReportFile = (ObjectKey, Bytes);

/// The chart, the Markdown and the JSON, in that order: the JSON last, since its
/// presence means the report is complete.
async fn write_report(ctx: &Context, report: &GateReport) -> Result<[ReportFile; 3], StageError> {
    let key =
        |file: &str| layout::gate_report(&report.model_name, &report.candidate.version, &report.id, file);
    let r = report.clone();
    let png = blocking("drawing the chart", move || {
        chart::error_chart_png(&r).map_err(|e| StageError::Internal(format!("drawing the chart failed: {e}")))
    })
    .await?;
    let json = serde_json::to_vec_pretty(report)
        .map_err(|e| StageError::Internal(format!("cannot serialise the report: {e}")))?;
    let files: [ReportFile; 3] = [
        (key(CHART_FILE)?, png.into()),
        (key("report.md")?, report.to_markdown(Some(CHART_FILE)).into()),
        (key("report.json")?, json.into()),
    ];
    for (key, body) in &files {
        ctx.store.put_new(key, body.clone()).await?;
    }
    Ok(files)
}

/// Logs the report to the candidate's tracking run, under `gates/<report id>/`.
async fn log_to_run(
    ctx: &Context,
    report: &GateReport,
    files: &[ReportFile],
) -> Result<Option<String>, StageError> {
    let (Some(tracker), Some(run_id)) = (&ctx.tracker, &report.candidate.run_id) else {
        return Ok(None);
    };
    let run = tracker.get_run(run_id).await?;
    let dir = format!("gates/{}", report.id);
    for (key, body) in files {
        tracker
            .log_artifact(&run, &format!("{dir}/{}", key.file_name()), body.clone())
            .await?;
    }
    // The figures the gates judged, as metrics beside training's own hold-out figures.
    let mut metrics = std::collections::BTreeMap::new();
    for x in &report.candidate.intervals {
        let pct = x.percent();
        metrics.insert(format!("gate_interval_coverage_{pct}_h{}", x.horizon), x.coverage);
        metrics.insert(format!("gate_interval_winkler_{pct}_h{}", x.horizon), x.winkler);
    }
    for x in &report.candidate.scores {
        metrics.insert(format!("gate_rmse_h{}", x.horizon), x.rmse);
    }
    tracker
        .log(
            &run,
            &crate::tracking::RunRecord {
                metrics,
                ..Default::default()
            },
        )
        .await?;
    tracker
        .set_tag(&run, tags::run::GATE_REPORT, &format!("{dir}/report.json"))
        .await?;
    tracker
        .set_tag(
            &run,
            tags::run::GATES,
            if report.passed { "passed" } else { "failed" },
        )
        .await?;
    Ok(Some(format!("{}/{dir}", run.artifact_uri.trim_end_matches('/'))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{RunInput, run};
    use crate::registry::ModelRef;
    use crate::stage::Quiet;
    use crate::store::ObjectStore;
    use crate::testing::{context, range};

    /// A model whose intervals are made too narrow on purpose is refused by the
    /// intervals gate alone; the same model as trained passes it.
    #[tokio::test]
    async fn intervals_made_too_narrow_are_refused() {
        let (ctx, store, _cache) = context(&[("RPS_GATE_MAX_P99_MS", "1000")]);
        let first = run(
            &ctx,
            RunInput {
                ingest: range((1, 1), (12, 31)),
                trigger: None,
            },
            &Quiet,
        )
        .await
        .unwrap();
        let evaluated = || {
            evaluate_with_report(
                &ctx,
                EvaluateInput {
                    candidate: ModelRef::Version(first.model_version.clone()),
                    data_version: None,
                    trigger: None,
                },
            )
        };
        let intervals_gate = |r: &GateReport| {
            r.gates
                .iter()
                .find(|g| g.gate == Gate::Intervals)
                .cloned()
                .unwrap()
        };
        let (_, report) = evaluated().await.unwrap();
        let gate = intervals_gate(&report);
        let md = report.to_markdown(None);
        assert_eq!(gate.verdict, gates::Verdict::Pass, "{gate:?}\n{md}");
        assert_eq!(report.candidate.intervals.len(), HORIZONS.len() * 2);
        assert!(
            md.contains("### Prediction intervals on the common hold-out"),
            "{md}"
        );

        // Halve every half-width, store it as the version's bundle, checksum and all.
        let mut bundle = ModelBundle::decode(&store.get(&first.train.bundle).await.unwrap()).unwrap();
        let Some(crate::bundle::Calibration {
            widths: crate::bundle::Widths::Normalised(per_horizon),
            ..
        }) = &mut bundle.calibration
        else {
            panic!("a normalised calibration")
        };
        for q in per_horizon.iter_mut().flat_map(|n| n.quantiles.iter_mut()) {
            *q *= 0.5;
        }
        let narrowed = bundle.encode().unwrap();
        store
            .put(&first.train.bundle, Bytes::from(narrowed.clone()))
            .await
            .unwrap();
        ctx.registry
            .set_version_tag(
                &first.model_name,
                &first.model_version,
                tags::version::BUNDLE_SHA256,
                &crate::bundle::sha256_hex(&narrowed),
            )
            .await
            .unwrap();
        let (out, report) = evaluated().await.unwrap();
        assert!(!out.passed);
        assert_eq!(report.failed_gates, [Gate::Intervals], "{:?}", report.gates);
        let gate = intervals_gate(&report);
        assert!(
            gate.detail.contains("80% at 6 h interval covers"),
            "{}",
            gate.detail
        );
        assert!(gate.value.unwrap() > 0.05, "{gate:?}");
    }

    /// Production is a model whose bundle or checksum cannot be verified: the gates
    /// cannot know whether the candidate is worse, so no_regression must fail.
    #[tokio::test]
    async fn an_unverifiable_production_fails_no_regression() {
        for damage in ["bundle", "checksum tag"] {
            let (ctx, store, _cache) = context(&[("RPS_GATE_MAX_P99_MS", "1000")]);
            let first = run(
                &ctx,
                RunInput {
                    ingest: range((1, 1), (9, 30)),
                    trigger: None,
                },
                &Quiet,
            )
            .await
            .unwrap();
            let name = first.model_name.clone();
            ctx.registry
                .set_alias(&name, tags::aliases::PRODUCTION, &first.model_version)
                .await
                .unwrap();
            match damage {
                "bundle" => store
                    .put(&first.train.bundle, Bytes::from_static(b"RPSB not really"))
                    .await
                    .unwrap(),
                _ => ctx
                    .registry
                    .set_version_tag(
                        &name,
                        &first.model_version,
                        tags::version::BUNDLE_SHA256,
                        "0".repeat(64).as_str(),
                    )
                    .await
                    .unwrap(),
            }
            let second = run(
                &ctx,
                RunInput {
                    ingest: range((1, 1), (12, 31)),
                    trigger: None,
                },
                &Quiet,
            )
            .await
            .unwrap();
            let (out, report) = evaluate_with_report(
                &ctx,
                EvaluateInput {
                    candidate: ModelRef::Version(second.model_version.clone()),
                    data_version: None,
                    trigger: None,
                },
            )
            .await
            .unwrap();
            let gate = report
                .gates
                .iter()
                .find(|g| g.gate == Gate::NoRegression)
                .unwrap();
            assert_eq!(gate.verdict, gates::Verdict::Fail, "{damage}: {gate:?}");
            assert!(
                gate.detail.contains("cannot be verified"),
                "{damage}: {}",
                gate.detail
            );
            assert!(!out.passed, "{damage}");
        }
    }
}

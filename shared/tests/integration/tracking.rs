//! The pipeline with a real MLflow server: every training run is tracked (params,
//! metrics, lineage tags, artifacts), registered as a version with the alias
//! `candidate`, and loads back by alias as the identical bundle; a run whose stage fails
//! is marked FAILED.

use std::sync::Arc;

use chrono::NaiveDate;
use rps_core::bundle::sha256_hex;
use rps_core::config::Config;
use rps_core::mlflow::tags_map;
use rps_core::pipeline;
use rps_core::registry::{self, ModelRef, RegistryError};
use rps_core::source::{DateRange, IngestRequest};
use rps_core::stage::{Context, Quiet, StageError};
use rps_core::store::MemoryStore;
use testkit::mlflow::MlflowServer;

async fn replay() -> std::net::SocketAddr {
    testkit::replay::Replay::sample().addr
}

fn context(
    server: &MlflowServer,
    replay: std::net::SocketAddr,
    tag: &str,
    cache: &std::path::Path,
) -> Context {
    let vars = [
        ("MLFLOW_TRACKING_URI", server.uri.clone()),
        ("MLFLOW_EXPERIMENT_NAME", format!("exp-{tag}")),
        ("RPS_MODEL_NAME", format!("model-{tag}")),
        ("RPS_MODEL_CACHE", cache.display().to_string()),
        ("OPEN_METEO_ARCHIVE_URL", format!("http://{replay}/v1/archive")),
    ];
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    Context::with_store(config, Arc::new(MemoryStore::new())).unwrap()
}

fn range(start: (i32, u32, u32), end: (i32, u32, u32)) -> IngestRequest {
    let d = |(y, m, dd)| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
    IngestRequest::backfill(DateRange::new(d(start), d(end)).unwrap())
}

use testkit::unique;

#[tokio::test]
async fn a_tracked_run_registers_a_candidate_that_loads_back_identically() {
    let _turn = testkit::turn(module_path!());
    let Some(server) = MlflowServer::shared() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let ctx = context(server, replay().await, &unique(), cache.path());
    let out = pipeline::run(
        &ctx,
        pipeline::RunInput {
            ingest: range((2023, 1, 1), (2023, 8, 31)),
            trigger: None,
        },
        &Quiet,
    )
    .await
    .unwrap();
    let t = &out.train;
    assert_eq!(t.model_version, "1");
    assert_eq!(t.aliases, ["candidate"]);
    let run_id = t.run_id.clone().expect("a tracked run");
    assert!(
        t.run_url
            .as_deref()
            .unwrap()
            .starts_with(&format!("{}/#/experiments/", server.uri))
    );

    // The run: finished, with params, every metric and the lineage tags.
    let client = testkit::mlflow::client(&server.uri);
    let run = client.get_run(&run_id).await.unwrap();
    assert_eq!(run.info.status, "FINISHED");
    let params = tags_map(&run.data.params);
    for p in [
        "algorithm",
        "features",
        "feature_count",
        "input_hours",
        "seed",
        "candidates",
        "validation_fraction",
    ] {
        assert!(params.contains_key(p), "param {p} missing: {params:?}");
    }
    assert!(params["features"].contains("temperature_2m_lag_24h"));
    let metrics: std::collections::BTreeMap<_, _> = run
        .data
        .metrics
        .iter()
        .map(|m| (m.key.clone(), m.value))
        .collect();
    for name in rps_core::scores::required_metric_names() {
        assert!(
            metrics.get(&name).is_some_and(|v| v.is_finite()),
            "metric {name} missing"
        );
    }
    let tags = tags_map(&run.data.tags);
    assert_eq!(tags["rps.data_version"], out.data_version);
    assert_eq!(tags["rps.raw_snapshots"], out.ingest.snapshot.as_str());
    assert_eq!(
        tags["rps.data_window_start"],
        rps_core::observations::format_time(out.transform.window.start)
    );
    let commit = tags.get("mlflow.source.git.commit").expect("the git commit tag");
    assert_eq!(commit.len(), 40);

    // Its artifacts: bundle, profile, quality report, evaluation.
    let mut files = Vec::new();
    for dir in ["model", "data", "data/quality", "evaluation"] {
        for f in client.list_artifacts(&run.info, dir).await.unwrap() {
            files.push(format!("{dir}/{}", f.path.rsplit('/').next().unwrap()));
        }
    }
    for expected in [
        "model/model.rpsb",
        "data/profile.html",
        "evaluation/evaluation.md",
        "evaluation/evaluation.json",
    ] {
        assert!(files.iter().any(|f| f == expected), "{expected} not in {files:?}");
    }
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("data/quality/") && f.ends_with(".json")),
        "{files:?}"
    );

    // The version links back to its run, commit and data.
    let v = ctx.registry.get_alias(&t.model_name, "candidate").await.unwrap();
    assert_eq!(v.run_id.as_deref(), Some(run_id.as_str()));
    assert_eq!(v.data_version(), Some(out.data_version.as_str()));
    assert_eq!(v.tag("rps.git_commit"), Some(commit.as_str()));
    assert_eq!(v.bundle_sha256(), Some(t.bundle_sha256.as_str()));
    let listed = ctx.registry.list_versions(&t.model_name).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].aliases, ["candidate"]);

    // Load by alias: downloaded, verified, identical to what training wrote; then cached.
    let stored = ctx.store.get(&t.bundle).await.unwrap();
    let first = registry::load(
        ctx.registry.as_ref(),
        &t.model_name,
        &ModelRef::Alias("candidate".into()),
        cache.path(),
    )
    .await
    .unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.sha256, sha256_hex(&stored));
    assert_eq!(first.bundle.metadata.run_id.as_deref(), Some(run_id.as_str()));
    let again = registry::load(
        ctx.registry.as_ref(),
        &t.model_name,
        &ModelRef::Version("1".into()),
        cache.path(),
    )
    .await
    .unwrap();
    assert!(again.from_cache);
    assert_eq!(again.bundle.metadata, first.bundle.metadata);
}

#[tokio::test]
async fn a_failed_training_marks_its_run_failed() {
    let _turn = testkit::turn(module_path!());
    let Some(server) = MlflowServer::shared() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let tag = unique();
    let ctx = context(server, replay().await, &tag, cache.path());
    // Four days pass the gate but are far too few rows to train on.
    let err = pipeline::run(
        &ctx,
        pipeline::RunInput {
            ingest: range((2023, 3, 1), (2023, 3, 4)),
            trigger: None,
        },
        &Quiet,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, StageError::Train(_)), "{err}");
    let client = testkit::mlflow::client(&server.uri);
    let exp = client
        .get_experiment_by_name(&format!("exp-{tag}"))
        .await
        .unwrap()
        .unwrap();
    let runs = client.search_runs(&exp.experiment_id, "").await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].info.status, "FAILED");
    // And nothing was registered.
    assert!(
        ctx.registry
            .list_versions(&format!("model-{tag}"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_bundle_that_does_not_match_its_checksum_is_refused() {
    let _turn = testkit::turn(module_path!());
    let Some(server) = MlflowServer::shared() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let ctx = context(server, replay().await, &unique(), cache.path());
    let out = pipeline::run(
        &ctx,
        pipeline::RunInput {
            ingest: range((2023, 1, 1), (2023, 4, 30)),
            trigger: None,
        },
        &Quiet,
    )
    .await
    .unwrap();
    let name = &out.train.model_name;
    ctx.registry
        .set_version_tag(name, "1", "rps.bundle_sha256", &"0".repeat(64))
        .await
        .unwrap();
    let err = registry::load(
        ctx.registry.as_ref(),
        name,
        &ModelRef::Version("1".into()),
        cache.path(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RegistryError::Bundle { .. }), "{err}");
    assert!(err.to_string().contains("checksum"), "{err}");
    // A cached copy that was tampered with is discarded and fetched again.
    ctx.registry
        .set_version_tag(name, "1", "rps.bundle_sha256", &out.train.bundle_sha256)
        .await
        .unwrap();
    let ok = registry::load(
        ctx.registry.as_ref(),
        name,
        &ModelRef::Version("1".into()),
        cache.path(),
    )
    .await
    .unwrap();
    let cached: Vec<_> = crate::helpers::files_under(cache.path());
    assert_eq!(cached.len(), 1);
    std::fs::write(&cached[0], b"RPSB garbage").unwrap();
    let again = registry::load(
        ctx.registry.as_ref(),
        name,
        &ModelRef::Version("1".into()),
        cache.path(),
    )
    .await
    .unwrap();
    assert!(!again.from_cache);
    assert_eq!(again.sha256, ok.sha256);
}

/// The loop's tracking: every verification logs each version's live scores to one
/// monitoring run per version, a child of its training run, named on the version.
#[tokio::test]
async fn live_scores_go_to_one_monitoring_run_per_version() {
    let _turn = testkit::turn(module_path!());
    let Some(server) = MlflowServer::shared() else {
        return;
    };
    let cache = tempfile::tempdir().unwrap();
    let ctx = context(server, replay().await, &unique(), cache.path());
    let out = pipeline::run(
        &ctx,
        pipeline::RunInput {
            ingest: range((2023, 1, 1), (2023, 3, 31)),
            trigger: None,
        },
        &Quiet,
    )
    .await
    .unwrap();
    let name = out.model_name.clone();
    ctx.registry.set_alias(&name, "production", "1").await.unwrap();
    let arrive = |end| {
        let ctx = ctx.clone();
        async move {
            let i = rps_core::ingest::ingest(&ctx, range((2023, 4, 1), end))
                .await
                .unwrap();
            rps_core::validate::validate(&ctx, (&i).into()).await.unwrap();
        }
    };
    use rps_core::verify::{VerifyInput, verify};
    arrive((2023, 4, 3)).await;
    verify(&ctx, VerifyInput::default()).await.unwrap();
    arrive((2023, 4, 4)).await;
    let first = verify(&ctx, VerifyInput::default()).await.unwrap();
    assert!(first.warnings.is_empty(), "{:?}", first.warnings);
    let again = verify(
        &ctx,
        VerifyInput {
            issue: false,
            ..VerifyInput::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        first.monitoring_runs, again.monitoring_runs,
        "one run per version, reused"
    );

    let client = testkit::mlflow::client(&server.uri);
    let version = client.get_model_version(&name, "1").await.unwrap();
    let run_id = tags_map(&version.tags)["rps.monitoring_run"].clone();
    assert!(
        first.monitoring_runs["1"].ends_with(&run_id),
        "{:?}",
        first.monitoring_runs
    );
    let run = client.get_run(&run_id).await.unwrap();
    assert_eq!(run.info.status, "FINISHED");
    let tags = tags_map(&run.data.tags);
    assert_eq!(tags["rps.stage"], "verify");
    assert_eq!(tags["rps.model_version"], "1");
    assert_eq!(
        Some(&tags["mlflow.parentRunId"]),
        out.train.run_id.as_ref(),
        "a child of its training run"
    );
    let rmse = run
        .data
        .metrics
        .iter()
        .find(|m| m.key == "live_rmse_h6_24h")
        .expect("the live 6 h RMSE");
    let day = first
        .version("1")
        .unwrap()
        .window(rps_core::verify::score::LiveWindow::Day)
        .unwrap();
    // Equal up to the last bit: serde_json's default float parser (without its
    // `float_roundtrip` feature) may read MLflow's shortest repr one ULP off.
    let want = day.horizon(6).unwrap().rmse;
    assert!(
        (rmse.value - want).abs() <= want.abs() * 4.0 * f64::EPSILON,
        "logged {} for a live RMSE of {want}",
        rmse.value
    );
    // Logged against the data's clock: the step is the newest observed hour.
    let as_of = NaiveDate::from_ymd_opt(2023, 4, 4)
        .unwrap()
        .and_hms_opt(23, 0, 0)
        .unwrap();
    assert_eq!(rmse.step, as_of.and_utc().timestamp() / 3600);
}

//! The verify stage on the in-memory store, the local registry and in-memory tracking:
//! forecasts issued from one day's observations are scored when the next day's arrive.

use std::sync::Arc;

use super::*;
use crate::forecast_log::read_days;
use crate::pipeline::{RunInput, run};
use crate::stage::Quiet;
use crate::store::ObjectStore;
use crate::testing::{context, range};
use crate::tracking::MemoryTracker;
use crate::validate::{ValidateInput, validate};

/// Ingests and validates a backfill of 2023 (`(month, day)` to `(month, day)`).
async fn arrive(ctx: &Context, start: (u32, u32), end: (u32, u32)) {
    let ingested = crate::ingest::ingest(ctx, range(start, end)).await.unwrap();
    validate(ctx, ValidateInput::from(&ingested)).await.unwrap();
}

/// A context whose production model was trained on January to March.
async fn winter(
    vars: &[(&str, &str)],
) -> (
    Context,
    Arc<crate::store::MemoryStore>,
    tempfile::TempDir,
    Arc<MemoryTracker>,
) {
    let (ctx, store, cache) = context(vars);
    let out = run(
        &ctx,
        RunInput {
            ingest: range((1, 1), (3, 31)),
            trigger: None,
        },
        &Quiet,
    )
    .await
    .unwrap();
    ctx.registry
        .set_alias(&out.model_name, tags::aliases::PRODUCTION, &out.model_version)
        .await
        .unwrap();
    // As if it had been trained in a tracked run (the local registry cannot fetch a
    // bundle from in-memory tracking, so training ran untracked).
    ctx.registry
        .set_version_tag(
            &out.model_name,
            &out.model_version,
            tags::version::RUN_ID,
            "training-run-1",
        )
        .await
        .unwrap();
    let tracker = Arc::new(MemoryTracker::new());
    (ctx.with_tracker(Some(tracker.clone())), store, cache, tracker)
}

#[tokio::test]
async fn scheduled_forecasts_are_scored_once_their_hours_are_observed() {
    let (ctx, store, _cache, tracker) = winter(&[]).await;
    arrive(&ctx, (4, 1), (4, 3)).await;
    let first = verify(&ctx, VerifyInput::default()).await.unwrap();
    let issued = first.issued.clone().expect("a scheduled forecast");
    assert_eq!(issued.issued_at.to_string(), "2023-04-03 23:00:00");
    assert_eq!((issued.version.as_str(), issued.forecasts.len()), ("1", 6));
    assert!(
        issued
            .segment
            .as_str()
            .starts_with("forecasts/rps-temperature/2023/04/03/")
    );
    assert_eq!(first.log.pending, 6, "{:?}", first.log);
    assert!(first.versions.is_empty(), "nothing is due yet");
    assert!(!first.retrain.needed);
    assert!(first.recent.is_empty(), "the stage's answer carries no series");

    // The next day arrives: the forecast from 23:00 is verified at every horizon.
    arrive(&ctx, (4, 1), (4, 4)).await;
    let second = verify(&ctx, VerifyInput::default()).await.unwrap();
    assert_eq!(second.as_of.unwrap().to_string(), "2023-04-04 23:00:00");
    let day = second.version("1").unwrap().window(LiveWindow::Day).unwrap();
    assert_eq!(day.forecasts, 1);
    assert_eq!(day.horizons.iter().map(|h| h.n).collect::<Vec<_>>(), [1; 6]);
    assert!(day.horizon(6).unwrap().rmse.is_finite());
    assert_eq!(second.log.records, 2);
    assert_eq!(second.drift.len(), 2);
    assert!(second.drift[0].hours >= 20, "{:?}", second.drift[0]);

    // The summary in the store has the page's pairs; the latest is this one.
    let latest = latest(store.as_ref(), "rps-temperature").await.unwrap().unwrap();
    assert_eq!(latest.id, second.id);
    assert_eq!(latest.recent.len(), 6);
    assert_eq!(latest.observed.len() as i64, RECENT_HOURS);
    assert!(store.exists(second.summary.as_ref().unwrap()).await.unwrap());

    // A monitoring run for version 1, a child of its training run, named on the version.
    let info = ctx.registry.get_version("rps-temperature", "1").await.unwrap();
    let run_id = info
        .tag(tags::version::MONITORING_RUN)
        .expect("the version names its run");
    let runs = tracker.runs();
    let monitor = &runs[run_id];
    assert_eq!(monitor.record.metrics["live_forecasts_24h"], 1.0);
    assert!(monitor.record.metrics.contains_key("live_rmse_h6_24h"));
    assert_eq!(
        monitor.record.tags.get(tags::run::PARENT_RUN).map(String::as_str),
        Some("training-run-1"),
        "{:?}",
        monitor.record.tags
    );
    assert_eq!(second.monitoring_runs["1"], run_id);
}

#[tokio::test]
async fn a_bad_log_line_is_skipped_and_counted_and_a_missing_model_issues_nothing() {
    let (ctx, store, _cache) = context(&[]);
    arrive(&ctx, (4, 1), (4, 3)).await;
    let day = chrono::NaiveDate::from_ymd_opt(2023, 4, 3).unwrap();
    let key = layout::forecast_log_segment("rps-temperature", day, Utc::now(), 1).unwrap();
    store
        .put_new(&key, bytes::Bytes::from_static(b"{\"model_version\": 3}\n"))
        .await
        .unwrap();
    let v = verify(&ctx, VerifyInput::default()).await.unwrap();
    assert_eq!((v.log.records, v.log.skipped), (0, 1), "{:?}", v.log);
    assert_eq!(v.issued, None);
    assert!(v.warnings[0].contains("points at no version"), "{:?}", v.warnings);
    assert!(v.drift.is_empty(), "no model, no drift");
}

#[tokio::test]
async fn a_needed_retrain_is_recorded_once_and_held_through_the_cooldown() {
    // Every model is "worse" than a skill of 99%: the rule must ask.
    let (ctx, store, _cache, _) =
        winter(&[("RPS_RETRAIN_MIN_SKILL", "0.99"), ("RPS_RETRAIN_MIN_HOURS", "1")]).await;
    arrive(&ctx, (4, 1), (4, 3)).await;
    verify(&ctx, VerifyInput::default()).await.unwrap();
    arrive(&ctx, (4, 1), (4, 4)).await;
    let v = verify(&ctx, VerifyInput::default()).await.unwrap();
    assert!(v.retrain.needed, "{:?}", v.retrain);
    let t = v.retrain.trigger.clone().unwrap();
    assert_eq!(t.kinds(), "live_skill");
    assert_eq!(t.version.as_deref(), Some("1"));
    let recorded = trigger::latest(store.as_ref(), "rps-temperature")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (recorded.trigger.id.as_str(), recorded.status),
        (t.id.as_str(), RetrainStatus::Requested)
    );
    // An hour later on the data's clock: still a cause, but held.
    let again = verify(
        &ctx,
        VerifyInput {
            issue: false,
            ..VerifyInput::default()
        },
    )
    .await
    .unwrap();
    assert!(
        !again.retrain.needed && !again.retrain.causes.is_empty(),
        "{:?}",
        again.retrain
    );
    assert!(again.retrain.held.as_deref().unwrap().contains("within 24 hours"));
    assert!(again.issued.is_none());
    let d = |day| chrono::NaiveDate::from_ymd_opt(2023, 4, day).unwrap();
    let log = read_days(store.as_ref(), "rps-temperature", d(1), d(30))
        .await
        .unwrap();
    assert_eq!(log.records.len(), 2, "issue: false issued nothing");
}

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

/// Ingests and validates a backfill of 2023 (`(month, day)` to `(month, day)`).
async fn arrive(ctx: &Context, start: (u32, u32), end: (u32, u32)) {
    crate::testing::validated(ctx, range(start, end)).await;
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
    // The day before the newest hour is forecast too (no run of the schedule did).
    assert_eq!(issued.catch_up, 23);
    assert!(
        issued
            .segment
            .as_str()
            .starts_with("forecasts/rps-temperature/2023/04/03/")
    );
    // Issued at 18:00 to 23:00: 1 + 2 + … + 6 horizons are still to come.
    assert_eq!(first.log.pending, 21, "{:?}", first.log);
    assert!(!first.retrain.needed);
    assert!(first.recent.is_empty(), "the stage's answer carries no series");
    // Run again on the same observations: nothing is forecast twice.
    let repeat = verify(&ctx, VerifyInput::default()).await.unwrap();
    assert!(repeat.issued.is_none());
    assert!(repeat.warnings[0].contains("already"), "{:?}", repeat.warnings);
    assert_eq!((repeat.log.records, repeat.log.duplicates), (24, 0));

    // The next day arrives: every hour of it forecast, every horizon verified 24 times.
    arrive(&ctx, (4, 1), (4, 4)).await;
    let second = verify(&ctx, VerifyInput::default()).await.unwrap();
    assert_eq!(second.as_of.unwrap().to_string(), "2023-04-04 23:00:00");
    let day = second.version("1").unwrap().window(LiveWindow::Day).unwrap();
    // Forecasts with a target in the window: the day's 24, and 5 from the day before.
    assert_eq!(day.forecasts, 29);
    assert_eq!(day.horizons.iter().map(|h| h.n).collect::<Vec<_>>(), [24; 6]);
    assert!(day.horizon(6).unwrap().rmse.is_finite());
    assert_eq!(second.log.records, 48);
    assert_eq!(second.drift.len(), 2);
    assert!(second.drift[0].hours >= 20, "{:?}", second.drift[0]);
    assert!(second.client.versions.is_empty(), "no client asked");

    // The summary in the store has the page's pairs; the latest is this one.
    let latest = latest(store.as_ref(), "rps-temperature").await.unwrap().unwrap();
    assert_eq!(latest.id, second.id);
    // Every verified (issue, horizon) pair of the two days: 48 − h for horizon h.
    assert_eq!(latest.recent.len(), (1..=6).map(|h| 48 - h).sum::<usize>());
    assert_eq!(latest.observed.len() as i64, RECENT_HOURS);
    assert!(store.exists(second.summary.as_ref().unwrap()).await.unwrap());

    // A monitoring run for version 1, a child of its training run, named on the version.
    let info = ctx.registry.get_version("rps-temperature", "1").await.unwrap();
    let run_id = info
        .tag(tags::version::MONITORING_RUN)
        .expect("the version names its run");
    let runs = tracker.runs();
    let monitor = &runs[run_id];
    assert_eq!(monitor.record.metrics["live_forecasts_24h"], 29.0);
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
async fn a_needed_retrain_is_asked_again_until_a_run_takes_it_up_then_held_through_the_cooldown() {
    // Every model is "worse" than a skill of 99%: the rule must ask.
    let (ctx, store, _cache, _) =
        winter(&[("RPS_RETRAIN_MIN_SKILL", "0.99"), ("RPS_RETRAIN_MIN_HOURS", "1")]).await;
    arrive(&ctx, (4, 1), (4, 3)).await;
    verify(&ctx, VerifyInput::default()).await.unwrap();
    arrive(&ctx, (4, 1), (4, 4)).await;
    let v = verify(&ctx, VerifyInput::default()).await.unwrap();
    assert!(v.retrain.needed && !v.retrain.reissued, "{:?}", v.retrain);
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
    let no_issue = || VerifyInput {
        issue: false,
        ..VerifyInput::default()
    };
    // Nothing ran it (the event was lost, `rps verify` without --retrain): the next
    // verification asks for the same retrain again instead of holding it.
    let again = verify(&ctx, no_issue()).await.unwrap();
    assert!(
        again.retrain.needed && again.retrain.reissued,
        "{:?}",
        again.retrain
    );
    assert_eq!(again.retrain.trigger.as_ref().unwrap().id, t.id);
    // A run takes it up: held while it runs.
    trigger::claim_run(store.as_ref(), "rps-temperature", &t, Some("run-1"))
        .await
        .unwrap();
    let running = verify(&ctx, no_issue()).await.unwrap();
    assert!(!running.retrain.needed, "{:?}", running.retrain);
    assert!(running.retrain.held.as_deref().unwrap().contains("is being run"));
    // It ends (refused): held through the cooldown, the cause still reported.
    trigger::record_outcome(
        store.as_ref(),
        "rps-temperature",
        &t,
        RetrainStatus::Refused,
        Some("2"),
        None,
        &[],
    )
    .await;
    let held = verify(&ctx, no_issue()).await.unwrap();
    assert!(
        !held.retrain.needed && !held.retrain.causes.is_empty(),
        "{:?}",
        held.retrain
    );
    assert!(held.retrain.held.as_deref().unwrap().contains("within 24 hours"));
    assert!(held.issued.is_none());
    let d = |day| chrono::NaiveDate::from_ymd_opt(2023, 4, day).unwrap();
    let store: Arc<dyn ObjectStore> = store;
    let log = read_days(&store, "rps-temperature", d(1), d(30)).await.unwrap();
    assert_eq!(log.scheduled.len(), 48, "two days; issue: false issued nothing");
}

#[tokio::test]
async fn client_answers_are_scored_apart_and_never_decide() {
    // Skill below −100% asks for a retrain (the poisoned answers are far below it, the
    // scheduled forecasts far above); the observations' drift never does here.
    let (ctx, store, _cache, _) = winter(&[
        ("RPS_RETRAIN_MIN_HOURS", "1"),
        ("RPS_RETRAIN_MIN_SKILL", "-1"),
        ("RPS_DRIFT_MAX_OUT_OF_RANGE", "1"),
    ])
    .await;
    arrive(&ctx, (4, 1), (4, 3)).await;
    verify(&ctx, VerifyInput::default()).await.unwrap();
    arrive(&ctx, (4, 1), (4, 4)).await;
    // A poisoned flood: client "forecasts" for every hour of the day, far off, made
    // from the store's own observations so that they are not mismatched.
    let served = crate::registry::find_alias(ctx.registry.as_ref(), "rps-temperature", "production")
        .await
        .unwrap()
        .unwrap();
    let model = crate::registry::load_version(ctx.registry.as_ref(), served, &ctx.config.registry.cache_dir)
        .await
        .unwrap();
    let obs = observed::load(ctx.store.as_ref(), None).await.unwrap();
    let series = &obs.series;
    let mut poisoned = Vec::new();
    for h in 0..24 {
        let t = obs.as_of.unwrap() - chrono::Duration::hours(6 + h);
        let w = series.between(t - chrono::Duration::hours(INPUT_HOURS as i64 - 1), t);
        let row = serving_row(&w).unwrap();
        let mut f = model.bundle.predict(&row).unwrap();
        for x in &mut f {
            x.temperature_2m += 15.0;
        }
        poisoned.push(LoggedForecast::new(
            "rps-temperature",
            "1",
            ForecastSource::Predict,
            &row,
            &f,
            Some(model.bundle.metadata.data_end()),
            &[],
        ));
    }
    // As many instances would write it over the hours.
    for (i, chunk) in poisoned.chunks(4).enumerate() {
        let at = chrono::Utc::now() - chrono::Duration::hours(i as i64);
        forecast_log::append_served(store.as_ref(), "rps-temperature", chunk, at)
            .await
            .unwrap();
    }
    let drifting = RequestDrift {
        drifting: true,
        reasons: vec!["temperature_2m: PSI 0.9".into()],
        requests: 5000,
    };
    let v = verify(
        &ctx,
        VerifyInput {
            request_drift: Some(drifting),
            ..VerifyInput::default()
        },
    )
    .await
    .unwrap();
    // The clients' answers are scored, apart, and are terrible.
    let client = v.client.versions.iter().find(|s| s.version == "1").unwrap();
    let skill = client.window(LiveWindow::Day).unwrap().horizon(6).unwrap();
    assert!(skill.n >= 12 && skill.skill.unwrap() < -1.0, "{skill:?}");
    // The served version's own scores are the scheduled forecasts' alone.
    let own = v.version("1").unwrap().window(LiveWindow::Day).unwrap();
    assert_eq!(own.forecasts, 29, "{own:?}");
    assert!(own.horizon(6).unwrap().skill.unwrap() > -1.0, "{own:?}");
    // Nothing is asked for: neither the poisoned answers nor the API's verdict decide.
    assert!(!v.retrain.needed, "{:?}", v.retrain);
    assert!(v.retrain.causes.is_empty(), "{:?}", v.retrain);
    assert!(
        v.retrain
            .held
            .as_deref()
            .unwrap()
            .contains("client traffic alone")
    );
}

#[tokio::test]
async fn a_request_claimed_but_never_recorded_is_taken_over_not_held() {
    let (ctx, store, _cache, _) =
        winter(&[("RPS_RETRAIN_MIN_SKILL", "0.99"), ("RPS_RETRAIN_MIN_HOURS", "1")]).await;
    arrive(&ctx, (4, 1), (4, 4)).await;
    // An earlier try of this verification claimed its request, then failed before
    // recording it (a store error, a timeout): the retry must not hold on that claim.
    let lost = trigger::Trigger {
        id: "20260101T000000.000000Z".into(),
        causes: Vec::new(),
        version: Some("1".into()),
        as_of: crate::observations::parse_time("2023-04-04T23:00").unwrap(),
        requested_at: Utc::now(),
        ingest: crate::source::IngestRequest::recent(),
    };
    let name = "rps-temperature";
    assert_eq!(
        trigger::claim_request(store.as_ref(), name, None, &lost)
            .await
            .unwrap(),
        None
    );
    assert!(!trigger::recorded(store.as_ref(), name, &lost.id).await.unwrap());
    let v = verify(&ctx, VerifyInput::default()).await.unwrap();
    assert!(v.retrain.needed, "{:?}", v.retrain);
    assert_eq!(v.retrain.trigger.as_ref().unwrap().id, lost.id);
    assert!(trigger::recorded(store.as_ref(), name, &lost.id).await.unwrap());
    let latest = trigger::latest(store.as_ref(), name).await.unwrap().unwrap();
    assert_eq!(
        (latest.trigger.id.as_str(), latest.status),
        (lost.id.as_str(), RetrainStatus::Requested)
    );
}

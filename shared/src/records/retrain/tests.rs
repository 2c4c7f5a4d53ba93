use super::*;
use crate::observations::parse_time;
use crate::records::skill::{HorizonSkill, WindowSkill};

fn rule() -> RetrainRule {
    RetrainRule {
        min_skill: 0.0,
        min_hours: 12,
        cooldown_hours: 24,
        max_out_of_range: 0.2,
        days: 365,
        lag_days: 5,
    }
}

fn skill(n: usize, rmse: f64, persistence_rmse: f64) -> VersionSkill {
    VersionSkill {
        version: "3".into(),
        windows: vec![WindowSkill {
            window: LiveWindow::Day,
            forecasts: n,
            unverified: 0,
            horizons: vec![HorizonSkill {
                horizon: 6,
                n,
                rmse,
                mae: rmse,
                bias: 0.0,
                persistence_rmse,
                persistence_mae: persistence_rmse,
                skill: Some(1.0 - rmse / persistence_rmse),
                intervals: vec![],
            }],
        }],
        recalibration: vec![],
    }
}

fn drift(hours: usize, share: f64) -> ObservedDrift {
    ObservedDrift {
        window: LiveWindow::Day,
        hours,
        out_of_range_share: share,
        features: vec![FeatureShare {
            feature: "shortwave_radiation".into(),
            out_of_range_share: share,
        }],
        max_psi: None,
    }
}

#[test]
fn skill_below_the_limit_or_drift_over_it_asks_for_a_retrain_on_the_data_clock() {
    let as_of = parse_time("2023-04-20T23:00").unwrap();
    let d = decide(&rule(), as_of, Some(&skill(20, 2.0, 1.6)), None, None, None, None);
    assert!(d.needed, "{d:?}");
    let t = d.trigger.unwrap();
    assert_eq!(t.kinds(), "live_skill");
    assert!(t.causes[0].reason.contains("-25.0%"), "{}", t.causes[0].reason);
    assert_eq!(
        serde_json::to_value(t.ingest).unwrap(),
        serde_json::json!({"mode": "backfill", "start": "2022-04-16", "end": "2023-04-15"})
    );
    assert_eq!(t.version.as_deref(), Some("3"));
    let d = decide(
        &rule(),
        as_of,
        Some(&skill(20, 1.0, 1.6)),
        Some(&drift(24, 0.5)),
        None,
        None,
        None,
    );
    assert_eq!(d.trigger.unwrap().kinds(), "drift");
}

#[test]
fn too_little_evidence_a_good_model_or_a_recent_retrain_asks_for_nothing() {
    let as_of = parse_time("2023-04-20T23:00").unwrap();
    assert!(
        !decide(
            &rule(),
            as_of,
            Some(&skill(11, 2.0, 1.6)),
            Some(&drift(11, 1.0)),
            None,
            None,
            None
        )
        .needed
    );
    assert!(
        !decide(
            &rule(),
            as_of,
            Some(&skill(24, 1.5, 1.6)),
            Some(&drift(24, 0.2)),
            None,
            None,
            None
        )
        .needed
    );
    let asked = decide(
        &rule(),
        as_of - Duration::hours(10),
        Some(&skill(20, 2.0, 1.6)),
        None,
        None,
        None,
        None,
    );
    let last = RetrainRecord {
        trigger: asked.trigger.unwrap(),
        status: RetrainStatus::Refused,
        updated_at: Utc::now(),
        candidate: Some("4".into()),
        report: None,
        failed_gates: vec!["no_regression".into()],
    };
    let d = decide(
        &rule(),
        as_of,
        Some(&skill(20, 2.0, 1.6)),
        None,
        None,
        Some(&last),
        None,
    );
    assert!(!d.needed && d.trigger.is_none(), "{d:?}");
    assert_eq!(d.causes.len(), 1, "the cause is still reported");
    assert!(d.held.unwrap().contains("now refused"));
    // A day later on the data's clock, the cooldown is over.
    let later = as_of + Duration::hours(15);
    assert!(
        decide(
            &rule(),
            later,
            Some(&skill(20, 2.0, 1.6)),
            None,
            None,
            Some(&last),
            None
        )
        .needed
    );
    // The API's own verdict, made from client requests, never asks alone; beside
    // another cause it is named.
    let api = RequestDrift {
        drifting: true,
        reasons: vec!["temperature_2m: PSI 0.4 (limit 0.2)".into()],
        requests: 300,
    };
    let d = decide(&rule(), as_of, None, None, Some(&api), None, None);
    assert!(!d.needed && d.causes.is_empty(), "{d:?}");
    assert!(d.held.unwrap().contains("client traffic alone"));
    let d = decide(
        &rule(),
        as_of,
        None,
        Some(&drift(24, 0.5)),
        Some(&api),
        None,
        None,
    );
    assert!(d.needed && d.causes[1].reason.contains("PSI 0.4"), "{d:?}");
}

#[test]
fn a_request_no_run_took_up_is_asked_again_not_held_by_its_own_cooldown() {
    let as_of = parse_time("2023-04-20T23:00").unwrap();
    let asked = decide(&rule(), as_of, Some(&skill(20, 2.0, 1.6)), None, None, None, None);
    let requested = RetrainRecord {
        trigger: asked.trigger.clone().unwrap(),
        status: RetrainStatus::Requested,
        updated_at: Utc::now(),
        candidate: None,
        report: None,
        failed_gates: Vec::new(),
    };
    // The next verification, even with nothing wrong any more: the same trigger.
    let again = decide(&rule(), as_of, None, None, None, Some(&requested), None);
    assert!(again.needed && again.reissued, "{again:?}");
    assert_eq!(again.trigger.unwrap().id, requested.trigger.id);
    // A run holds it: held, not asked a third time.
    let held = decide(
        &rule(),
        as_of,
        None,
        None,
        None,
        Some(&requested),
        Some(Utc::now()),
    );
    assert!(!held.needed && held.held.unwrap().contains("is being run"));
    // Nothing takes it up (a run that fails before it trains): asked again 1, 2, 4,
    // 8 and 16 hours after, not every hour.
    let asked_at: Vec<i64> = (1..24)
        .filter(|h| {
            decide(
                &rule(),
                as_of + Duration::hours(*h),
                None,
                None,
                None,
                Some(&requested),
                None,
            )
            .needed
        })
        .collect();
    assert_eq!(asked_at, vec![1, 2, 4, 8, 16]);
    let between = decide(
        &rule(),
        as_of + Duration::hours(5),
        None,
        None,
        None,
        Some(&requested),
        None,
    );
    assert!(
        between
            .held
            .unwrap()
            .contains("asked for again at 2023-04-21 07:00")
    );
    // Past its cooldown, a request nothing took up is not asked again.
    let later = as_of + Duration::hours(25);
    assert!(!decide(&rule(), later, None, None, None, Some(&requested), None).needed);
}

#[tokio::test]
async fn a_request_is_claimed_once_and_a_trigger_is_run_once() {
    let store = crate::store::MemoryStore::new();
    let as_of = parse_time("2023-04-20T23:00").unwrap();
    let mk = || {
        decide(&rule(), as_of, Some(&skill(20, 2.0, 1.6)), None, None, None, None)
            .trigger
            .unwrap()
    };
    let (a, b) = (mk(), mk());
    assert_ne!(a.id, b.id);
    assert_eq!(claim_request(&store, "m", None, &a).await.unwrap(), None);
    assert_eq!(
        claim_request(&store, "m", None, &b).await.unwrap(),
        Some(a.clone())
    );
    // Two starts of the same trigger: one runs.
    let first = claim_run(&store, "m", &a, Some("execution-1")).await.unwrap();
    assert_eq!(first.attempt, 1);
    // The same run's retried task takes its own claim again; another run cannot.
    assert_eq!(
        claim_run(&store, "m", &a, Some("execution-1")).await.unwrap(),
        first
    );
    let second = claim_run(&store, "m", &a, Some("execution-2")).await.unwrap_err();
    assert!(
        matches!(&second, ClaimRefused::Taken(why) if why.contains("being run")),
        "{second}"
    );
    assert!(
        holding_run(
            &store,
            "m",
            Some(&RetrainRecord {
                trigger: a.clone(),
                status: RetrainStatus::Requested,
                updated_at: Utc::now(),
                candidate: None,
                report: None,
                failed_gates: Vec::new(),
            })
        )
        .await
        .unwrap()
        .is_some()
    );
    // A claim past its lease is a run that died: the next one takes over.
    let stale = RunClaim {
        claimed_at: Utc::now() - Duration::hours(RUN_LEASE_HOURS + 1),
        ..first
    };
    store::put_json(
        &store,
        &layout::retrain_run("m", &a.id, 1).unwrap(),
        &stale,
        false,
    )
    .await
    .unwrap();
    assert_eq!(claim_run(&store, "m", &a, None).await.unwrap().attempt, 2);
    // Once it has an outcome, no run takes it up again.
    record_outcome(&store, "m", &a, RetrainStatus::Refused, Some("4"), None, &[]).await;
    let done = claim_run(&store, "m", &a, None).await.unwrap_err();
    assert!(done.to_string().contains("has run already (refused"), "{done}");
}

#[tokio::test]
async fn the_latest_record_is_the_newest_trigger() {
    let store = crate::store::MemoryStore::new();
    let as_of = parse_time("2023-04-20T23:00").unwrap();
    let mk = |id: &str, status| RetrainRecord {
        trigger: Trigger {
            id: id.into(),
            causes: Vec::new(),
            version: None,
            as_of,
            requested_at: Utc::now(),
            ingest: IngestRequest::recent(),
        },
        status,
        updated_at: Utc::now(),
        candidate: None,
        report: None,
        failed_gates: Vec::new(),
    };
    assert_eq!(latest(&store, "m").await.unwrap(), None);
    record(
        &store,
        "m",
        &mk("20260101T000000.000000Z", RetrainStatus::Requested),
    )
    .await
    .unwrap();
    record(
        &store,
        "m",
        &mk("20260102T000000.000000Z", RetrainStatus::Requested),
    )
    .await
    .unwrap();
    // The outcome of the older one arrives late: recorded, but not the latest.
    record(
        &store,
        "m",
        &mk("20260101T000000.000000Z", RetrainStatus::Refused),
    )
    .await
    .unwrap();
    let l = latest(&store, "m").await.unwrap().unwrap();
    assert_eq!(
        (l.trigger.id.as_str(), l.status),
        ("20260102T000000.000000Z", RetrainStatus::Requested)
    );
    let own: RetrainRecord = store::get_json(
        &store,
        &layout::retrain("m", "20260101T000000.000000Z.json").unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(own.status, RetrainStatus::Refused);
}

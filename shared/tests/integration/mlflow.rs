//! The MLflow client and registry against a real `mlflow server` on a free port.

use bytes::Bytes;
use rps_core::mlflow::{Metric, MlflowClient, MlflowError, RunStatus, Tag, now_ms};
use rps_core::registry::{MlflowRegistry, ModelRef, NewVersion, Registry, StageOutcome};
use testkit::mlflow::MlflowServer;

fn client(server: &MlflowServer) -> MlflowClient {
    testkit::mlflow::client(&server.uri)
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", testkit::unique())
}

#[tokio::test]
async fn experiments_runs_batches_and_artifacts() {
    let _turn = testkit::turn(module_path!());
    let Some(server) = MlflowServer::shared() else {
        return;
    };
    let c = client(server);
    let name = unique("exp");
    assert!(c.get_experiment_by_name(&name).await.unwrap().is_none());
    let id = c.get_or_create_experiment(&name).await.unwrap();
    assert_eq!(
        c.get_or_create_experiment(&name).await.unwrap(),
        id,
        "get-or-create is idempotent"
    );

    let run = c.create_run(&id, "r1", &[Tag::new("team", "rps")]).await.unwrap();
    assert_eq!(run.status, "RUNNING");
    // More than one batch's worth of metrics and params: the client splits them.
    let metrics: Vec<Metric> = (0..1205)
        .map(|i| Metric {
            key: format!("m{i}"),
            value: i as f64 / 2.0,
            timestamp: now_ms(),
            step: 0,
        })
        .collect();
    let params: Vec<Tag> = (0..130)
        .map(|i| Tag::new(format!("p{i}"), i.to_string()))
        .collect();
    c.log_batch(
        &run.run_id,
        &metrics,
        &params,
        &[Tag::new("mlflow.source.git.commit", "abc123")],
    )
    .await
    .unwrap();
    c.set_run_tag(&run.run_id, "late", "yes").await.unwrap();

    let bundle = Bytes::from((0..200_000u32).flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>());
    c.upload_artifact(&run, "model/model.rpsb", bundle.clone())
        .await
        .unwrap();
    c.upload_artifact(&run, "report.md", Bytes::from_static(b"# hi"))
        .await
        .unwrap();
    let mut root: Vec<(String, bool)> = c
        .list_artifacts(&run, "")
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.path, f.is_dir))
        .collect();
    root.sort();
    assert_eq!(
        root,
        [("model".to_string(), true), ("report.md".to_string(), false)]
    );
    let inside = c.list_artifacts(&run, "model").await.unwrap();
    assert_eq!(inside.len(), 1);
    assert_eq!(inside[0].file_size, Some(bundle.len() as u64));
    let got = c
        .download_artifact(&format!("{}/model/model.rpsb", run.artifact_uri))
        .await
        .unwrap();
    assert_eq!(got, bundle);
    let via_runs = c
        .download_artifact(&format!("runs:/{}/report.md", run.run_id))
        .await
        .unwrap();
    assert_eq!(&via_runs[..], b"# hi");

    c.finish_run(&run.run_id, RunStatus::Finished).await.unwrap();
    let fetched = c.get_run(&run.run_id).await.unwrap();
    assert_eq!(fetched.info.status, "FINISHED");
    assert_eq!(fetched.data.metrics.len(), 1205);
    assert_eq!(fetched.data.params.len(), 130);
    let tags = rps_core::mlflow::tags_map(&fetched.data.tags);
    assert_eq!(
        tags.get("mlflow.source.git.commit").map(String::as_str),
        Some("abc123")
    );
    assert_eq!(tags.get("late").map(String::as_str), Some("yes"));
    assert_eq!(
        fetched.data.params.iter().find(|p| p.key == "p7").unwrap().value,
        "7"
    );
}

#[tokio::test]
async fn registry_versions_aliases_tags_and_stages() {
    let _turn = testkit::turn(module_path!());
    let Some(server) = MlflowServer::shared() else {
        return;
    };
    let c = client(server);
    let exp = c.get_or_create_experiment(&unique("reg")).await.unwrap();
    let model = unique("model");
    let reg = MlflowRegistry::new(c.clone());
    assert!(reg.list_versions(&model).await.unwrap().is_empty());

    let mut versions = Vec::new();
    for i in 0..2 {
        let run = c.create_run(&exp, "train", &[]).await.unwrap();
        c.upload_artifact(&run, "model/model.rpsb", Bytes::from(format!("bundle {i}")))
            .await
            .unwrap();
        let v = reg
            .create_version(NewVersion {
                name: model.clone(),
                source: format!("{}/model", run.artifact_uri),
                run_id: Some(run.run_id.clone()),
                tags: [("rps.data_version".to_string(), format!("d{i}"))].into(),
                description: "test".into(),
            })
            .await
            .unwrap();
        assert_eq!(v.run_id.as_deref(), Some(run.run_id.as_str()));
        versions.push(v);
    }
    assert_eq!(
        (versions[0].version.as_str(), versions[1].version.as_str()),
        ("1", "2")
    );

    reg.set_alias(&model, "candidate", "2").await.unwrap();
    reg.set_alias(&model, "production", "1").await.unwrap();
    assert_eq!(reg.get_alias(&model, "candidate").await.unwrap().version, "2");
    assert_eq!(
        reg.resolve(&model, &ModelRef::Alias("production".into()))
            .await
            .unwrap()
            .version,
        "1"
    );
    let listed = reg.list_versions(&model).await.unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|v| (v.version.as_str(), v.aliases.clone()))
            .collect::<Vec<_>>(),
        [
            ("2", vec!["candidate".to_string()]),
            ("1", vec!["production".to_string()])
        ]
    );

    // A missing alias is "not found", though MLflow answers 400.
    let err = reg.get_alias(&model, "staging").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("has no alias @staging"), "{err}");
    reg.delete_alias(&model, "candidate").await.unwrap();
    assert!(
        reg.get_alias(&model, "candidate")
            .await
            .unwrap_err()
            .is_not_found()
    );
    // Reserved names are refused before reaching the server.
    assert!(matches!(
        c.set_alias(&model, "latest", "1").await,
        Err(MlflowError::Invalid(_))
    ));

    reg.set_version_tag(&model, "1", "rps.promoted_by", "test")
        .await
        .unwrap();
    assert_eq!(
        reg.get_version(&model, "1").await.unwrap().tag("rps.promoted_by"),
        Some("test")
    );
    assert_eq!(
        reg.set_stage(&model, "1", "Production").await.unwrap(),
        StageOutcome::Done
    );
    assert_eq!(
        reg.get_version(&model, "1").await.unwrap().stage.as_deref(),
        Some("Production")
    );

    let bytes = reg
        .download_bundle(&reg.get_version(&model, "2").await.unwrap())
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"bundle 1");
    let err = reg.get_version(&model, "99").await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
}

//! Tracking on an MLflow server: runs in an experiment, metrics, params and tags in
//! batches within MLflow's limits, artifacts through the server's proxy.

use async_trait::async_trait;
use bytes::Bytes;

use super::{RunRecord, RunStatus, TrackedRun, Tracker, TrackingError};
use crate::mlflow::{Metric, MlflowClient, RunInfo, Tag, now_ms};

#[derive(Debug, Clone)]
pub struct MlflowTracker {
    client: MlflowClient,
    experiment: String,
}

impl MlflowTracker {
    pub fn new(client: MlflowClient, experiment: String) -> Self {
        Self { client, experiment }
    }

    fn tracked(&self, info: RunInfo) -> TrackedRun {
        TrackedRun {
            url: Some(self.client.run_url(&info.experiment_id, &info.run_id)),
            status: Some(info.status).filter(|s| !s.is_empty()),
            run_id: info.run_id,
            experiment_id: info.experiment_id,
            artifact_uri: info.artifact_uri,
        }
    }

    fn info(run: &TrackedRun) -> RunInfo {
        RunInfo {
            run_id: run.run_id.clone(),
            experiment_id: run.experiment_id.clone(),
            run_name: String::new(),
            status: String::new(),
            artifact_uri: run.artifact_uri.clone(),
            start_time: None,
            end_time: None,
        }
    }
}

#[async_trait]
impl Tracker for MlflowTracker {
    fn describe(&self) -> String {
        format!(
            "MLflow at {} (experiment {})",
            self.client.server(),
            self.experiment
        )
    }

    async fn start_run(
        &self,
        name: &str,
        tags: &std::collections::BTreeMap<String, String>,
    ) -> Result<TrackedRun, TrackingError> {
        let experiment = self.client.get_or_create_experiment(&self.experiment).await?;
        let tags: Vec<Tag> = tags.iter().map(|(k, v)| Tag::new(k, v)).collect();
        let run = self.client.create_run(&experiment, name, &tags).await?;
        Ok(self.tracked(run))
    }

    async fn get_run(&self, run_id: &str) -> Result<TrackedRun, TrackingError> {
        Ok(self.tracked(self.client.get_run(run_id).await?.info))
    }

    async fn log(&self, run: &TrackedRun, record: &RunRecord) -> Result<(), TrackingError> {
        let ts = now_ms();
        let metrics: Vec<Metric> = record
            .metrics
            .iter()
            .map(|(k, v)| Metric {
                key: k.clone(),
                value: *v,
                timestamp: ts,
                step: record.step,
            })
            .collect();
        let params: Vec<Tag> = record.params.iter().map(|(k, v)| Tag::new(k, v)).collect();
        let tags: Vec<Tag> = record.tags.iter().map(|(k, v)| Tag::new(k, v)).collect();
        Ok(self
            .client
            .log_batch(&run.run_id, &metrics, &params, &tags)
            .await?)
    }

    async fn log_artifact(&self, run: &TrackedRun, path: &str, body: Bytes) -> Result<(), TrackingError> {
        Ok(self.client.upload_artifact(&Self::info(run), path, body).await?)
    }

    async fn set_tag(&self, run: &TrackedRun, key: &str, value: &str) -> Result<(), TrackingError> {
        Ok(self.client.set_run_tag(&run.run_id, key, value).await?)
    }

    async fn finish(&self, run: &TrackedRun, status: RunStatus) -> Result<(), TrackingError> {
        Ok(self.client.finish_run(&run.run_id, status).await?)
    }
}

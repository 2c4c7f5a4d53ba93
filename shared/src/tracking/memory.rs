//! Tracking in memory: every run, with what was logged to it. For tests, and for
//! callers that want a record of a run without a server.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;

use super::{RunRecord, RunStatus, TrackedRun, Tracker, TrackingError};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryRun {
    pub name: String,
    /// `None` while running.
    pub status: Option<RunStatus>,
    pub record: RunRecord,
    pub artifacts: BTreeMap<String, Bytes>,
}

#[derive(Debug, Default)]
pub struct MemoryTracker {
    runs: Mutex<BTreeMap<String, MemoryRun>>,
}

impl MemoryTracker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every run so far, by id.
    pub fn runs(&self) -> BTreeMap<String, MemoryRun> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, MemoryRun>> {
        self.runs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with_run<T>(&self, run_id: &str, f: impl FnOnce(&mut MemoryRun) -> T) -> Result<T, TrackingError> {
        let mut runs = self.lock();
        let run = runs.get_mut(run_id).ok_or_else(|| TrackingError::Run {
            run_id: run_id.to_owned(),
            message: "no such run".into(),
        })?;
        Ok(f(run))
    }
}

fn tracked(run_id: &str, status: Option<RunStatus>) -> TrackedRun {
    TrackedRun {
        run_id: run_id.to_owned(),
        experiment_id: "memory".into(),
        artifact_uri: format!("memory://{run_id}/artifacts"),
        url: None,
        status: Some(status.map_or("RUNNING", RunStatus::as_str).to_owned()),
    }
}

#[async_trait]
impl Tracker for MemoryTracker {
    fn describe(&self) -> String {
        "in-memory tracking".into()
    }

    async fn start_run(
        &self,
        name: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<TrackedRun, TrackingError> {
        let mut runs = self.lock();
        let run_id = format!("run-{:04}", runs.len() + 1);
        runs.insert(
            run_id.clone(),
            MemoryRun {
                name: name.to_owned(),
                record: RunRecord {
                    tags: tags.clone(),
                    ..RunRecord::default()
                },
                ..MemoryRun::default()
            },
        );
        Ok(tracked(&run_id, None))
    }

    async fn get_run(&self, run_id: &str) -> Result<TrackedRun, TrackingError> {
        let status = self.with_run(run_id, |r| r.status)?;
        Ok(tracked(run_id, status))
    }

    async fn log(&self, run: &TrackedRun, record: &RunRecord) -> Result<(), TrackingError> {
        self.with_run(&run.run_id, |r| {
            r.record.params.extend(record.params.clone());
            r.record.metrics.extend(record.metrics.clone());
            r.record.tags.extend(record.tags.clone());
        })
    }

    async fn log_artifact(&self, run: &TrackedRun, path: &str, body: Bytes) -> Result<(), TrackingError> {
        self.with_run(&run.run_id, |r| {
            r.artifacts.insert(path.to_owned(), body);
        })
    }

    async fn set_tag(&self, run: &TrackedRun, key: &str, value: &str) -> Result<(), TrackingError> {
        self.with_run(&run.run_id, |r| {
            r.record.tags.insert(key.to_owned(), value.to_owned());
        })
    }

    async fn finish(&self, run: &TrackedRun, status: RunStatus) -> Result<(), TrackingError> {
        self.with_run(&run.run_id, |r| r.status = Some(status))
    }
}

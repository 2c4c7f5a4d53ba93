//! Where everything lives in the store: the one place that names object keys.
//!
//! ```text
//! raw/location.json                                             the place the data is from
//!                                                               (claimed by the first ingest)
//! raw/open-meteo/<endpoint>/<YYYY>/<MM>/<DD>/<stamp>.json       response body, immutable
//! raw/open-meteo/<endpoint>/<YYYY>/<MM>/<DD>/<stamp>.meta.json  how and when it was fetched
//! quality/open-meteo/<endpoint>/<YYYY>/<MM>/<DD>/<stamp>.json   the gate's report on it
//! datasets/<md5>/profile.html, manifest.json                    a dataset's profile and lineage
//! dvc/files/md5/<2 hex>/<30 hex>                                the dataset itself (DVC remote,
//!                                                               by default inside the store)
//! models/<name>/<bundle id>/model.rpsb, evaluation.json|.md     bundle and its scores
//! reports/<name>/<version>/<stamp>/report.json|.md, *.png        promotion gate reports
//! locks/<name>/promote.<generation>.json                         held while promoting
//! registry/<name>/…                                              the local registry (no MLflow)
//! forecasts/<name>/<YYYY>/<MM>/<DD>/<stamp>-<hex>.jsonl          the scheduled forecasts, by issue day
//! served/<name>/<YYYY>/<MM>/<DD>/slot-<NNN>.jsonl                 sampled /predict answers, a fixed
//!                                                               number of slots per issue day
//! monitoring/<name>/verification/<stamp>.json, latest.json       live skill, drift, the decision
//! monitoring/<name>/retrains/<trigger id>.json, latest.json      triggered retrains and outcomes
//! monitoring/<name>/retrains/after-<trigger id|none>.json        the request after the one named
//! monitoring/<name>/retrains/<trigger id>.run-<N>.json           a run that took up the request
//! locations/<id>/…                                              with RPS_LOCATIONS: each location's
//!                                                               own store, laid out as above
//! ```
//!
//! A bundle id is the training's UTC stamp; a version is the registry's number. The
//! block above is the store layout of `docs/data.md`, and a test keeps the two equal.

use chrono::{DateTime, NaiveDate, Utc};

pub use crate::store::Grant;
use crate::store::{ObjectKey, StoreError};

pub const RAW_PREFIX: &str = "raw/open-meteo/";
/// With `RPS_LOCATIONS`, each location's store is a folder of the deployment's.
pub const SITES_PREFIX: &str = "locations/";

/// The place a store's data is from (a `fleet::Claim`).
pub fn location_claim() -> Result<ObjectKey, StoreError> {
    ObjectKey::new("raw/location.json")
}
/// The latest of a series of monitoring records: a mutable copy of the newest one.
pub const LATEST_FILE: &str = "latest.json";
pub const DATASETS_PREFIX: &str = "datasets/";
pub const MANIFEST_FILE: &str = "manifest.json";

/// `20231001T120000.123456Z`: sortable, unique to the microsecond.
pub fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%S%.6fZ").to_string()
}

pub fn raw_snapshot(endpoint: &str, collected_at: DateTime<Utc>) -> Result<ObjectKey, StoreError> {
    // Readers list the endpoints they know, a day at a time (`snapshot::recent`).
    if !RAW_ENDPOINTS.contains(&endpoint) {
        return Err(StoreError::InvalidKey {
            key: format!("{RAW_PREFIX}{endpoint}/ (not one of {RAW_ENDPOINTS:?})"),
        });
    }
    ObjectKey::new(format!(
        "{RAW_PREFIX}{endpoint}/{}/{}.json",
        collected_at.format("%Y/%m/%d"),
        stamp(collected_at)
    ))
}

/// The endpoints snapshots are collected from (`raw/open-meteo/<endpoint>/…`).
pub const RAW_ENDPOINTS: [&str; 2] = ["archive", "forecast"];

/// The snapshots of one endpoint collected on one (UTC) day.
pub fn raw_day_prefix(endpoint: &str, day: NaiveDate) -> String {
    format!("{RAW_PREFIX}{endpoint}/{}/", day.format("%Y/%m/%d"))
}

fn stem(key: &ObjectKey) -> &str {
    key.file_name().trim_end_matches(".json")
}

pub fn snapshot_meta(snapshot: &ObjectKey) -> Result<ObjectKey, StoreError> {
    snapshot.sibling(&format!("{}.meta.json", stem(snapshot)))
}

/// Is this key a snapshot body (not its metadata)?
pub fn is_snapshot(key: &ObjectKey) -> bool {
    key.as_str().starts_with(RAW_PREFIX)
        && key.as_str().ends_with(".json")
        && !key.as_str().ends_with(".meta.json")
}

pub fn quality_report(snapshot: &ObjectKey) -> Result<ObjectKey, StoreError> {
    let rest = snapshot
        .as_str()
        .strip_prefix("raw/")
        .unwrap_or(snapshot.as_str());
    ObjectKey::new(format!("quality/{rest}"))
}

pub fn dataset_profile(data_version: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("datasets/{data_version}/profile.html"))
}

pub fn dataset_manifest(data_version: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("{DATASETS_PREFIX}{data_version}/{MANIFEST_FILE}"))
}

/// The folder of one trained bundle; a local registry version's `source`.
pub fn bundle_folder(name: &str, bundle_id: &str) -> String {
    format!("models/{name}/{bundle_id}")
}

pub fn model_bundle(name: &str, bundle_id: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("{}/{BUNDLE_FILE}", bundle_folder(name, bundle_id)))
}

pub fn model_evaluation(name: &str, bundle_id: &str, ext: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("{}/evaluation.{ext}", bundle_folder(name, bundle_id)))
}

/// The file a registered version's bundle has inside its source folder.
pub const BUNDLE_FILE: &str = "model.rpsb";

/// The promotion gate reports on model version `version`.
pub fn gate_reports_prefix(name: &str, version: &str) -> String {
    format!("reports/{name}/{version}/")
}

/// One file of a promotion gate report on model version `version`.
pub fn gate_report(name: &str, version: &str, id: &str, file: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("reports/{name}/{version}/{id}/{file}"))
}

/// Where a model's promotion leases are.
pub fn promotion_lock_prefix(name: &str) -> String {
    format!("locks/{name}/")
}

/// One generation of the lease a promotion holds so that two never move `production`
/// at once (the newest generation is the lease).
pub fn promotion_lock(name: &str, generation: u64) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!(
        "{}promote.{generation:010}.json",
        promotion_lock_prefix(name)
    ))
}

/// The generation of a lease key.
pub fn promotion_lock_generation(key: &ObjectKey) -> Option<u64> {
    key.file_name()
        .strip_prefix("promote.")?
        .strip_suffix(".json")?
        .parse()
        .ok()
}

/// The forecast log's folder of one model.
pub fn forecast_log_prefix(name: &str) -> String {
    format!("forecasts/{name}/")
}

/// The forecast log's folder of one issue day.
pub fn forecast_log_day(name: &str, day: NaiveDate) -> String {
    format!("{}{}/", forecast_log_prefix(name), day.format("%Y/%m/%d"))
}

/// One append-only segment of the forecast log: the forecasts issued on `day`, written
/// at `written_at` by one writer (`nonce` keeps two writers' segments apart).
pub fn forecast_log_segment(
    name: &str,
    day: NaiveDate,
    written_at: DateTime<Utc>,
    nonce: u32,
) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!(
        "{}{}-{nonce:08x}.jsonl",
        forecast_log_day(name, day),
        stamp(written_at)
    ))
}

/// The client forecasts' folder of one issue day (sampled `/predict` answers): apart
/// from the scheduled ones, so that the API can write here and nowhere else.
pub fn served_log_day(name: &str, day: NaiveDate) -> String {
    format!("served/{name}/{}/", day.format("%Y/%m/%d"))
}

/// One of the fixed slots of an issue day's client forecasts: written once, so the day
/// holds at most as many segments as there are slots, however many instances write.
pub fn served_log_slot(name: &str, day: NaiveDate, slot: u32) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("{}slot-{slot:03}.jsonl", served_log_day(name, day)))
}

/// One verification run's summary (`file` = its stamp's `.json`, or [`LATEST_FILE`]).
pub fn verification(name: &str, file: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("monitoring/{name}/verification/{file}"))
}

/// The record of one triggered retrain (`file` = `<trigger id>.json`, or [`LATEST_FILE`]).
pub fn retrain(name: &str, file: &str) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("monitoring/{name}/retrains/{file}"))
}

/// The claim on the request that follows `previous` (a trigger id, or none yet): two
/// verifications that read the same newest record cannot both ask for a retrain.
pub fn retrain_successor(name: &str, previous: Option<&str>) -> Result<ObjectKey, StoreError> {
    retrain(name, &format!("after-{}.json", previous.unwrap_or("none")))
}

/// The `attempt`-th run that took up trigger `id` (one per lease).
pub fn retrain_run(name: &str, id: &str, attempt: u32) -> Result<ObjectKey, StoreError> {
    ObjectKey::new(format!("{}{attempt:03}.json", retrain_runs(name, id)))
}

/// Where the runs that took up trigger `id` are listed.
pub fn retrain_runs(name: &str, id: &str) -> String {
    format!("monitoring/{name}/retrains/{id}.run-")
}

/// The store's top-level folders (the layout above): what a function's grants name.
pub const AREAS: [&str; 11] = [
    "raw/",
    "quality/",
    "datasets/",
    "dvc/",
    "models/",
    "reports/",
    "locks/",
    "registry/",
    "forecasts/",
    "served/",
    "monitoring/",
];

const fn grant(prefix: &'static str, read: bool, write: bool, delete: bool) -> Grant {
    Grant {
        prefix,
        read,
        write,
        delete,
    }
}
const fn read(prefix: &'static str) -> Grant {
    grant(prefix, true, false, false)
}
const fn read_write(prefix: &'static str) -> Grant {
    grant(prefix, true, true, false)
}

/// Every function's access to the store: the one list of it. Each Lambda runs with a
/// store that refuses anything else ([`crate::store::Scoped`]), and a test holds
/// template.yaml's IAM policies to it (each role may do at least this, and no more).
/// `api` is the prediction service; the rest are the stages of
/// [`crate::stage::FUNCTIONS`].
pub fn access(function: &str) -> Option<&'static [Grant]> {
    const INGEST: &[Grant] = &[read_write("raw/")];
    const VALIDATE: &[Grant] = &[read("raw/"), read_write("quality/")];
    const TRANSFORM: &[Grant] = &[
        read("raw/"),
        read("quality/"),
        read_write("datasets/"),
        read_write("dvc/"),
    ];
    // A triggered training claims its trigger first (monitoring/), so that it runs once.
    const TRAIN: &[Grant] = &[
        read("quality/"),
        read("datasets/"),
        read("dvc/"),
        read_write("models/"),
        read_write("registry/"),
        read_write("monitoring/"),
    ];
    // Evaluate and promote record what became of a triggered retrain (monitoring/).
    const EVALUATE: &[Grant] = &[
        read("datasets/"),
        read("dvc/"),
        read("models/"),
        read("registry/"),
        read_write("reports/"),
        read_write("monitoring/"),
    ];
    const PROMOTE: &[Grant] = &[
        read("datasets/"),
        read("dvc/"),
        read("models/"),
        read_write("reports/"),
        read_write("registry/"),
        grant("locks/", true, true, true),
        read_write("monitoring/"),
    ];
    const VERIFY: &[Grant] = &[
        read("raw/"),
        read("quality/"),
        read("models/"),
        read("registry/"),
        read_write("forecasts/"),
        read("served/"),
        read_write("monitoring/"),
    ];
    // The internet-facing API reads what serving needs and only appends sampled
    // answers to their own folder: it cannot touch the scheduled forecasts.
    const API: &[Grant] = &[
        read("raw/"),
        read("quality/"),
        read("models/"),
        read("registry/"),
        read("monitoring/"),
        grant("served/", false, true, false),
    ];
    Some(match function {
        "ingest" => INGEST,
        "validate" => VALIDATE,
        "transform" => TRANSFORM,
        "train" => TRAIN,
        "evaluate" => EVALUATE,
        "promote" => PROMOTE,
        "verify" => VERIFY,
        "api" => API,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_follow_the_layout() {
        let t = Utc.with_ymd_and_hms(2023, 10, 1, 12, 0, 0).unwrap();
        let k = raw_snapshot("archive", t).unwrap();
        assert_eq!(
            k.as_str(),
            "raw/open-meteo/archive/2023/10/01/20231001T120000.000000Z.json"
        );
        assert!(is_snapshot(&k));
        let meta = snapshot_meta(&k).unwrap();
        assert_eq!(
            meta.as_str(),
            "raw/open-meteo/archive/2023/10/01/20231001T120000.000000Z.meta.json"
        );
        assert!(!is_snapshot(&meta));
        assert_eq!(
            quality_report(&k).unwrap().as_str(),
            "quality/open-meteo/archive/2023/10/01/20231001T120000.000000Z.json"
        );
    }

    #[test]
    fn every_function_has_grants_inside_the_layout() {
        for f in crate::stage::FUNCTIONS.iter().chain(&["api"]) {
            let grants = access(f).unwrap_or_else(|| panic!("{f} has no grants"));
            for g in grants {
                assert!(
                    AREAS.contains(&g.prefix),
                    "{f}: {} is not a folder of the layout",
                    g.prefix
                );
                assert!(g.read || g.write, "{f}: {} grants nothing", g.prefix);
            }
        }
        assert!(access("nope").is_none());
        // Keys the layout makes fall in its areas.
        let t = Utc.with_ymd_and_hms(2023, 10, 1, 12, 0, 0).unwrap();
        for k in [
            raw_snapshot("archive", t).unwrap(),
            retrain("m", LATEST_FILE).unwrap(),
            verification("m", LATEST_FILE).unwrap(),
            promotion_lock("m", 1).unwrap(),
            gate_report("m", "1", "x", "report.json").unwrap(),
            model_bundle("m", "b").unwrap(),
            dataset_manifest("d").unwrap(),
            forecast_log_segment("m", t.date_naive(), t, 1).unwrap(),
        ] {
            assert!(AREAS.iter().any(|a| k.as_str().starts_with(a)), "{k}");
        }
    }
}

//! Many locations in one deployment: the fleet (`RPS_LOCATIONS`), each site's
//! configuration, and the claim a store keeps of the place its data is from.
//!
//! A site is one location of the fleet: an id, a name, coordinates and its own values
//! of the per-location thresholds (the variables [`vars::Var::per_location`] marks).
//! Every site runs the same stages on a configuration of its own ([`Site::config`]):
//! its store is the deployment's `locations/<id>/` folder and its model is
//! `<RPS_MODEL_NAME>-<id>`, so no two sites share a snapshot, a dataset, a model, an
//! alias, a lease, a forecast log or a verification. Without `RPS_LOCATIONS` the fleet
//! is the one site `default` at `RPS_LATITUDE`/`RPS_LONGITUDE`, with the store and the
//! model name as they are: stores and registries made before fleets keep working.
//!
//! The file is a JSON array, the shape a Step Functions distributed Map's `ItemReader`
//! reads as is:
//!
//! ```json
//! [{"id": "greensboro", "name": "Greensboro, NC", "latitude": 36.1, "longitude": -79.95,
//!   "overrides": {"RPS_GATE_MIN_SKILL": "0.05"}}]
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::config::vars::{self, Var};
use crate::config::{
    Config, ConfigError, Latitude, Location, Longitude, SiteId, StoreLocation, valid_model_name,
};
use crate::layout;
use crate::snapshot::{self, SnapshotMeta};
use crate::store::{self, ObjectKey, ObjectStore, StoreError};
use crate::tags;

/// The folder of the deployment's store that holds one site's store.
pub fn site_prefix(id: &SiteId) -> String {
    format!("{}{id}", layout::SITES_PREFIX)
}

/// One location of the fleet, with the configuration its stages run on.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
    pub location: Location,
    /// Its own values of per-location variables, as given.
    pub overrides: BTreeMap<String, String>,
    pub config: Config,
}

/// Every site of the deployment, in the file's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Fleet {
    /// `RPS_LOCATIONS` is set: the sites have prefixes and model names of their own.
    pub configured: bool,
    pub sites: Vec<Arc<Site>>,
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("RPS_LOCATIONS={file}: {reason}")]
    Invalid { file: String, reason: String },
    #[error("RPS_LOCATIONS={file} could not be read: {source}")]
    Read {
        file: String,
        #[source]
        source: StoreError,
    },
    #[error("there is no location {id:?}: {known}")]
    Unknown { id: String, known: String },
}

/// One entry of the file, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
    #[serde(default)]
    name: Option<String>,
    latitude: f64,
    longitude: f64,
    #[serde(default)]
    overrides: BTreeMap<String, serde_json::Value>,
}

impl Fleet {
    /// The one site of a deployment without `RPS_LOCATIONS`: its configuration as is.
    pub fn single(config: &Config) -> Self {
        Self {
            configured: false,
            sites: vec![Arc::new(Site {
                id: config.site.id.clone(),
                name: config.site.name.clone(),
                location: config.location,
                overrides: BTreeMap::new(),
                config: config.clone(),
            })],
        }
    }

    /// The sites of `RPS_LOCATIONS` (read from the file or S3), else the one site.
    /// `env` is the environment `config` was read from: a site's overrides are layered
    /// over it and read by the same parsers, so a bad value is refused as the variable
    /// would be, naming the entry.
    pub async fn load(config: &Config, env: &dyn Fn(&str) -> Option<String>) -> Result<Self, FleetError> {
        let Some(file) = &config.site.fleet else {
            return Ok(Self::single(config));
        };
        let body = read(file, config).await.map_err(|source| FleetError::Read {
            file: file.to_string(),
            source,
        })?;
        Self::parse(&body, &file.to_string(), config, env)
    }

    /// The sites of a locations file's body (`file` names it in errors).
    pub fn parse(
        body: &[u8],
        file: &str,
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, FleetError> {
        let invalid = |reason: String| FleetError::Invalid {
            file: file.to_owned(),
            reason,
        };
        let entries: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(|e| {
            invalid(format!(
                "expected a JSON array of {{\"id\", \"name\", \"latitude\", \"longitude\", \"overrides\"}}: {e}"
            ))
        })?;
        if entries.is_empty() {
            return Err(invalid("the list is empty: name at least one location".into()));
        }
        let mut seen = BTreeSet::new();
        let mut sites = Vec::with_capacity(entries.len());
        for (i, raw) in entries.into_iter().enumerate() {
            let label = match raw.get("id").and_then(|v| v.as_str()) {
                Some(id) => format!("entry {} ({id:?})", i + 1),
                None => format!("entry {}", i + 1),
            };
            let site =
                Site::from_entry(raw, config, env).map_err(|why| invalid(format!("{label}: {why}")))?;
            if !seen.insert(site.id.clone()) {
                return Err(invalid(format!(
                    "{label}: the id is used twice; ids must be unique"
                )));
            }
            sites.push(Arc::new(site));
        }
        Ok(Self {
            configured: true,
            sites,
        })
    }

    /// The site named `id`.
    pub fn get(&self, id: &str) -> Result<&Arc<Site>, FleetError> {
        self.sites
            .iter()
            .find(|s| s.id.as_str() == id)
            .ok_or_else(|| FleetError::Unknown {
                id: id.to_owned(),
                known: self.known(),
            })
    }

    /// `Some(id)`: that site; `None`: every site.
    pub fn select(&self, id: Option<&str>) -> Result<Vec<Arc<Site>>, FleetError> {
        match id {
            Some(id) => Ok(vec![self.get(id)?.clone()]),
            None => Ok(self.sites.clone()),
        }
    }

    fn known(&self) -> String {
        let ids: Vec<&str> = self.sites.iter().map(|s| s.id.as_str()).collect();
        if self.configured {
            format!("RPS_LOCATIONS lists {}", ids.join(", "))
        } else {
            format!(
                "without RPS_LOCATIONS the one location is {:?} (RPS_LATITUDE, RPS_LONGITUDE)",
                SiteId::DEFAULT
            )
        }
    }
}

impl Site {
    fn from_entry(
        raw: serde_json::Value,
        base: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let entry: Entry = serde_json::from_value(raw).map_err(|e| e.to_string())?;
        let id = SiteId::new(&entry.id)
            .ok_or_else(|| format!("id {:?} is invalid: expected {}", entry.id, SiteId::EXPECTED))?;
        let latitude = Latitude::new(entry.latitude)
            .ok_or_else(|| format!("latitude {} is outside -90..=90", entry.latitude))?;
        let longitude = Longitude::new(entry.longitude)
            .ok_or_else(|| format!("longitude {} is outside -180..=180", entry.longitude))?;
        let location = Location { latitude, longitude };
        let mut overrides = BTreeMap::new();
        for (name, value) in entry.overrides {
            let var = vars::ALL
                .iter()
                .find(|v| v.name == name)
                .ok_or_else(|| format!("overrides: {name} is not a variable rps reads"))?;
            if !var.per_location {
                return Err(format!(
                    "overrides: {name} is the deployment's, not a location's (per-location variables: {})",
                    per_location_names().join(", ")
                ));
            }
            let value = match value {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(format!(
                        "overrides: {name} must be a string or a number, not {other}"
                    ));
                }
            };
            overrides.insert(name, value);
        }
        let name = entry.name.unwrap_or_else(|| id.to_string());
        let config = site_config(base, env, &id, &name, location, &overrides).map_err(|e| e.to_string())?;
        Ok(Self {
            id,
            name,
            location,
            overrides,
            config,
        })
    }
}

/// The names of the variables a site may set for itself.
pub fn per_location_names() -> Vec<&'static str> {
    vars::ALL
        .iter()
        .filter(|v| v.per_location)
        .map(|v: &&Var| v.name)
        .collect()
}

/// The deployment's configuration for one site: its overrides read over `env`, its
/// coordinates, its store folder, its DVC remote (in that folder unless
/// `RPS_DVC_REMOTE` names a shared one: datasets are addressed by their md5) and its
/// model name.
fn site_config(
    base: &Config,
    env: &dyn Fn(&str) -> Option<String>,
    id: &SiteId,
    name: &str,
    location: Location,
    overrides: &BTreeMap<String, String>,
) -> Result<Config, ConfigError> {
    let mut c = Config::from_lookup(|k| overrides.get(k).cloned().or_else(|| env(k)))?;
    let shared_remote = c.dvc_remote != c.store.join("dvc");
    c.store = base.store.join(&site_prefix(id));
    if !shared_remote {
        c.dvc_remote = c.store.join("dvc");
    }
    let model_name = format!("{}-{id}", base.registry.model_name);
    if !valid_model_name(&model_name) {
        return Err(ConfigError::Invalid {
            var: vars::RPS_MODEL_NAME.name,
            value: base.registry.model_name.clone(),
            expected: "a name that leaves room for '-<location id>' within 100 characters",
        });
    }
    c.registry.model_name = model_name;
    c.location = location;
    c.site.id = id.clone();
    c.site.name = name.to_owned();
    // What `crate::secrets` resolved for the deployment holds for every site.
    c.mlflow = base.mlflow.clone();
    Ok(c)
}

async fn read(file: &StoreLocation, config: &Config) -> Result<Vec<u8>, StoreError> {
    match file {
        StoreLocation::Local { path } => {
            std::fs::read(path).map_err(|e| StoreError::io("read", path.display().to_string(), e))
        }
        StoreLocation::S3 { bucket, prefix } => {
            let root = StoreLocation::S3 {
                bucket: bucket.clone(),
                prefix: String::new(),
            };
            let store = store::open(&root, &config.s3).await?;
            Ok(store.get(&ObjectKey::new(prefix.clone())?).await?.to_vec())
        }
    }
}

/// What a store remembers of the place its data is from (`raw/location.json`),
/// written by the first ingest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    pub site: String,
    pub name: String,
    pub location: Location,
    pub claimed_at: DateTime<Utc>,
}

/// A store (or a registered model) belongs to another place than the configuration's.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{what} belongs to {held}, not to {wanted} (this configuration's location {site:?}): one store and one model belong to one place. \
     For another place, use another RPS_STORE and RPS_MODEL_NAME, or list every place in RPS_LOCATIONS, which gives each its own folder and model (docs/locations.md)"
)]
pub struct WrongPlace {
    pub what: String,
    pub held: String,
    pub wanted: String,
    pub site: String,
}

/// Claims `store` for the configuration's place, or refuses when it holds another's
/// ([`check`], then [`record`]).
pub async fn claim(store: &dyn ObjectStore, config: &Config) -> Result<(), ClaimError> {
    if !check(store, config).await? {
        record(store, config).await?;
    }
    Ok(())
}

fn refusal(config: &Config, held: String) -> ClaimError {
    ClaimError::WrongPlace(WrongPlace {
        what: format!("the store {}", config.store),
        held,
        wanted: config.location.to_string(),
        site: config.site.id.to_string(),
    })
}

fn judge(claim: &Claim, config: &Config) -> Result<(), ClaimError> {
    if claim.location.same_place(&config.location) {
        return Ok(());
    }
    Err(refusal(
        config,
        format!(
            "{} ({:?}, claimed {})",
            claim.location,
            claim.site,
            claim.claimed_at.format("%Y-%m-%d %H:%M UTC")
        ),
    ))
}

/// Refuses when `store` belongs to another place than the configuration's: its claim,
/// else (a store made before claims) its newest snapshot, says which. `true` when it is
/// claimed for this place already; `false` when nothing claims it yet (the ingest then
/// [`record`]s the claim once its snapshot is stored: a fetch that fails claims nothing).
pub async fn check(store: &dyn ObjectStore, config: &Config) -> Result<bool, ClaimError> {
    match store::get_json::<Claim>(store, &layout::location_claim()?).await {
        Ok(c) => return judge(&c, config).map(|()| true),
        Err(StoreError::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(newest) = snapshot::newest(store).await? {
        let meta: SnapshotMeta = store::get_json(store, &layout::snapshot_meta(&newest)?).await?;
        if !meta.location.same_place(&config.location) {
            return Err(refusal(
                config,
                format!(
                    "{} (its newest snapshot, {})",
                    meta.location,
                    meta.collected_at.format("%Y-%m-%d %H:%M UTC")
                ),
            ));
        }
    }
    Ok(false)
}

/// Writes the claim (create-only); when another ingest claimed the store first, its
/// claim decides.
pub async fn record(store: &dyn ObjectStore, config: &Config) -> Result<(), ClaimError> {
    let key = layout::location_claim()?;
    let claim = Claim {
        site: config.site.id.to_string(),
        name: config.site.name.clone(),
        location: config.location,
        claimed_at: Utc::now(),
    };
    match store::put_json(store, &key, &claim, true).await {
        Ok(()) => Ok(()),
        Err(StoreError::AlreadyExists { .. }) => judge(&store::get_json::<Claim>(store, &key).await?, config),
        Err(e) => Err(e.into()),
    }
}

/// The tags that say which place a model version forecasts.
pub fn version_tags(config: &Config) -> [(String, String); 3] {
    [
        (tags::version::SITE.to_owned(), config.site.id.to_string()),
        (
            tags::version::LATITUDE.to_owned(),
            config.location.latitude.get().to_string(),
        ),
        (
            tags::version::LONGITUDE.to_owned(),
            config.location.longitude.get().to_string(),
        ),
    ]
}

/// The place a version's tags name (`None` for one registered before they existed).
pub fn version_place(tags: &BTreeMap<String, String>) -> Option<Location> {
    let number = |k: &str| tags.get(k).and_then(|v| v.parse::<f64>().ok());
    Some(Location {
        latitude: Latitude::new(number(tags::version::LATITUDE)?)?,
        longitude: Longitude::new(number(tags::version::LONGITUDE)?)?,
    })
}

/// Refuses to add a version for the configuration's place to a model whose version
/// `version` (tagged `tags`) forecasts another.
pub fn check_model(
    config: &Config,
    version: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), WrongPlace> {
    match version_place(tags) {
        Some(held) if !held.same_place(&config.location) => Err(WrongPlace {
            what: format!(
                "the registered model {} (version {version})",
                config.registry.model_name
            ),
            held: format!(
                "{held} ({:?})",
                tags.get(tags::version::SITE).map_or("?", String::as_str)
            ),
            wanted: config.location.to_string(),
            site: config.site.id.to_string(),
        }),
        _ => Ok(()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error(transparent)]
    WrongPlace(#[from] WrongPlace),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::store::MemoryStore;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn fleet(body: &str, pairs: &[(&str, &str)]) -> Result<Fleet, FleetError> {
        let env = env(pairs);
        let base = Config::from_lookup(&env).unwrap();
        Fleet::parse(body.as_bytes(), "sites.json", &base, &env)
    }

    const TWO: &str = r#"[
        {"id": "sand-point", "name": "Sand Point, AK", "latitude": 55.317, "longitude": -160.517},
        {"id": "greensboro", "latitude": 36.1, "longitude": -79.95,
         "overrides": {"RPS_GATE_MIN_SKILL": 0.05, "RPS_RETRAIN_MIN_SKILL": "0.2"}}
    ]"#;

    #[test]
    fn each_site_gets_its_own_folder_model_and_thresholds() {
        let f = fleet(
            TWO,
            &[("RPS_STORE", "s3://bucket/store"), ("RPS_GATE_MIN_SKILL", "0.1")],
        )
        .unwrap();
        assert!(f.configured);
        let [a, b] = [&f.sites[0], &f.sites[1]];
        assert_eq!(
            a.config.store.to_string(),
            "s3://bucket/store/locations/sand-point"
        );
        assert_eq!(
            a.config.dvc_remote.to_string(),
            "s3://bucket/store/locations/sand-point/dvc"
        );
        assert_eq!(a.config.registry.model_name, "rps-temperature-sand-point");
        assert_eq!(a.config.site.name, "Sand Point, AK");
        assert_eq!(a.config.gates.min_skill, 0.1, "the deployment's value");
        assert_eq!(b.config.registry.model_name, "rps-temperature-greensboro");
        assert_eq!(
            b.config.site.name, "greensboro",
            "the id names an entry without a name"
        );
        assert_eq!(b.config.location.latitude.get(), 36.1);
        assert_eq!(b.config.gates.min_skill, 0.05, "its own value");
        assert_eq!(b.config.verify.retrain.min_skill, 0.2);
        assert_eq!(f.get("greensboro").unwrap().id.as_str(), "greensboro");
        let err = f.get("amsterdam").unwrap_err().to_string();
        assert_eq!(
            err,
            "there is no location \"amsterdam\": RPS_LOCATIONS lists sand-point, greensboro"
        );
        assert_eq!(f.select(None).unwrap().len(), 2);
    }

    #[test]
    fn a_shared_dvc_remote_stays_shared() {
        let f = fleet(TWO, &[("RPS_DVC_REMOTE", "s3://bucket/dvc")]).unwrap();
        assert_eq!(f.sites[1].config.dvc_remote.to_string(), "s3://bucket/dvc");
    }

    #[test]
    fn without_a_fleet_the_one_site_is_the_configuration_as_it_is() {
        let base = Config::from_lookup(env(&[])).unwrap();
        let f = Fleet::single(&base);
        assert!(!f.configured);
        assert_eq!(f.sites.len(), 1);
        assert_eq!(f.sites[0].config, base);
        assert_eq!(f.sites[0].id.as_str(), "default");
        assert!(
            f.get("greensboro")
                .unwrap_err()
                .to_string()
                .contains("without RPS_LOCATIONS the one location is \"default\"")
        );
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_entry() {
        let cases = [
            ("{}", "expected a JSON array"),
            ("[]", "the list is empty"),
            (
                r#"[{"id": "Grensboro", "latitude": 1, "longitude": 2}]"#,
                "entry 1 (\"Grensboro\"): id \"Grensboro\" is invalid: expected a slug",
            ),
            (
                r#"[{"id": "a", "latitude": 1, "longitude": 2}, {"id": "a", "latitude": 3, "longitude": 4}]"#,
                "entry 2 (\"a\"): the id is used twice",
            ),
            (
                r#"[{"id": "a", "latitude": 91, "longitude": 2}]"#,
                "entry 1 (\"a\"): latitude 91 is outside -90..=90",
            ),
            (
                r#"[{"id": "a", "latitude": 1}]"#,
                "entry 1 (\"a\"): missing field `longitude`",
            ),
            (
                r#"[{"id": "a", "latitude": 1, "longitude": 2, "lat": 3}]"#,
                "entry 1 (\"a\"): unknown field `lat`",
            ),
            (
                r#"[{"id": "a", "latitude": 1, "longitude": 2, "overrides": {"RPS_GATE_MIN_SKIL": 1}}]"#,
                "overrides: RPS_GATE_MIN_SKIL is not a variable rps reads",
            ),
            (
                r#"[{"id": "a", "latitude": 1, "longitude": 2, "overrides": {"RPS_STORE": "/tmp"}}]"#,
                "overrides: RPS_STORE is the deployment's, not a location's",
            ),
            (
                r#"[{"id": "a", "latitude": 1, "longitude": 2, "overrides": {"RPS_GATE_MIN_SKILL": "lots"}}]"#,
                "entry 1 (\"a\"): RPS_GATE_MIN_SKILL=\"lots\" is invalid",
            ),
        ];
        for (body, want) in cases {
            let err = fleet(body, &[]).unwrap_err().to_string();
            assert!(err.starts_with("RPS_LOCATIONS=sites.json: "), "{err}");
            assert!(err.contains(want), "{body}: {err}");
        }
    }

    #[test]
    fn a_model_name_must_leave_room_for_the_id() {
        let long = "m".repeat(95);
        let err = fleet(TWO, &[("RPS_MODEL_NAME", &long)]).unwrap_err().to_string();
        assert!(err.contains("leaves room for '-<location id>'"), "{err}");
    }

    fn config_at(lat: &str, lon: &str) -> Config {
        Config::from_lookup(env(&[("RPS_LATITUDE", lat), ("RPS_LONGITUDE", lon)])).unwrap()
    }

    #[tokio::test]
    async fn a_store_is_claimed_by_its_first_place_and_refuses_another() {
        let store = MemoryStore::new();
        let sand_point = config_at("55.317", "-160.517");
        claim(&store, &sand_point).await.unwrap();
        claim(&store, &sand_point).await.unwrap();
        let held: Claim = store::get_json(&store, &layout::location_claim().unwrap())
            .await
            .unwrap();
        assert_eq!(held.site, "default");
        assert!(held.location.same_place(&sand_point.location));
        let err = claim(&store, &config_at("36.1", "-79.95"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("belongs to 55.317, -160.517 (\"default\", claimed "),
            "{err}"
        );
        assert!(err.contains("not to 36.1, -79.95"), "{err}");
        assert!(err.contains("list every place in RPS_LOCATIONS"), "{err}");
    }

    #[tokio::test]
    async fn a_store_made_before_claims_belongs_to_its_newest_snapshot() {
        let store = MemoryStore::new();
        let sand_point = config_at("55.317", "-160.517");
        let collected_at = Utc::now();
        let snapshot = layout::raw_snapshot("archive", collected_at).unwrap();
        store.put_new(&snapshot, "{}".into()).await.unwrap();
        let meta = SnapshotMeta {
            snapshot: snapshot.clone(),
            source: "open-meteo".into(),
            endpoint: "archive".into(),
            url: "http://x".into(),
            request: crate::source::IngestRequest::recent(),
            location: sand_point.location,
            collected_at,
            bytes: 2,
            sha256: String::new(),
            attempts: 1,
        };
        store::put_json(&store, &layout::snapshot_meta(&snapshot).unwrap(), &meta, true)
            .await
            .unwrap();
        let err = claim(&store, &config_at("52.37", "4.89"))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("belongs to 55.317, -160.517 (its newest snapshot"),
            "{err}"
        );
        assert!(!store.exists(&layout::location_claim().unwrap()).await.unwrap());
        claim(&store, &sand_point).await.unwrap();
        assert!(store.exists(&layout::location_claim().unwrap()).await.unwrap());
    }

    #[test]
    fn a_model_version_names_its_place_and_refuses_another() {
        let sand_point = config_at("55.317", "-160.517");
        let tags: BTreeMap<String, String> = version_tags(&sand_point).into_iter().collect();
        assert!(version_place(&tags).unwrap().same_place(&sand_point.location));
        check_model(&sand_point, "3", &tags).unwrap();
        check_model(&sand_point, "1", &BTreeMap::new()).expect("a version from before the tags");
        let err = check_model(&config_at("36.1", "-79.95"), "3", &tags)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "the registered model rps-temperature (version 3) belongs to 55.317, -160.517 (\"default\"), not to 36.1, -79.95"
            ),
            "{err}"
        );
    }
}

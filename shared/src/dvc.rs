//! DVC, natively: the processed dataset is stored in a DVC remote's layout and
//! described by a `.dvc` file, so `dvc pull` restores it byte for byte and no DVC
//! installation is needed to write or read it.
//!
//! The data version used everywhere (MLflow tags, bundles, summaries) is the md5 of the
//! dataset file, which is what DVC records as `outs[0].md5` and what names the object
//! in the remote: `<remote>/files/md5/<first 2 hex>/<other 30 hex>`.

use std::fmt::Write;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use crate::config::{S3Config, StoreLocation};
use crate::store::{self, ObjectKey, ObjectStore, StoreError};

/// Where `rps data pull` and `dvc pull` put the dataset, relative to the `.dvc` file.
pub const DEFAULT_OUT_PATH: &str = "data/processed.parquet";

pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

pub fn is_md5(s: &str) -> bool {
    s.len() == 32
        && s.chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

#[derive(Debug, thiserror::Error)]
pub enum DvcError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0:?} is not a data version (an md5: 32 lowercase hex digits)")]
    NotAVersion(String),
    #[error("the object for data version {expected} has md5 {found}: the remote copy is corrupt")]
    Corrupt { expected: String, found: String },
    #[error("not a .dvc file this tool understands: {0}")]
    BadDvcFile(String),
    #[error("{0:?} is neither a data version (md5) nor a readable .dvc file")]
    NotAReference(String),
}

/// What `rps data pull` is given: a data version, or a `.dvc` file that names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRef {
    pub md5: String,
    /// Where the dataset goes by default: the `.dvc` file's path beside it, else
    /// [`DEFAULT_OUT_PATH`].
    pub path: std::path::PathBuf,
}

impl DataRef {
    pub fn parse(arg: &str) -> Result<Self, DvcError> {
        if is_md5(arg) {
            return Ok(Self {
                md5: arg.to_owned(),
                path: DEFAULT_OUT_PATH.into(),
            });
        }
        let file = std::path::Path::new(arg);
        let text = std::fs::read_to_string(file).map_err(|_| DvcError::NotAReference(arg.to_owned()))?;
        let out = DvcOut::parse_dvc_file(&text)?;
        let base = file.parent().unwrap_or(std::path::Path::new(""));
        Ok(Self {
            md5: out.md5,
            path: base.join(out.path),
        })
    }
}

/// One tracked output, as a `.dvc` file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DvcOut {
    pub md5: String,
    pub size: u64,
    pub path: String,
}

impl DvcOut {
    /// The `.dvc` file content (DVC 3 format).
    pub fn to_dvc_file(&self) -> String {
        let mut s = String::from("outs:\n");
        let _ = writeln!(s, "- md5: {}", self.md5);
        let _ = writeln!(s, "  size: {}", self.size);
        let _ = writeln!(s, "  hash: md5");
        let _ = writeln!(s, "  path: {}", self.path);
        s
    }

    /// Reads the first output of a `.dvc` file (written by rps or by `dvc add`).
    pub fn parse_dvc_file(text: &str) -> Result<Self, DvcError> {
        let mut md5 = None;
        let mut size = None;
        let mut path = None;
        let mut in_outs = false;
        let mut items = 0;
        for line in text.lines() {
            let trimmed = line.trim_end();
            if trimmed.is_empty() || trimmed.trim_start().starts_with('#') {
                continue;
            }
            if !line.starts_with(' ') && !line.starts_with('-') {
                in_outs = trimmed == "outs:";
                continue;
            }
            if !in_outs {
                continue;
            }
            let mut field = trimmed.trim_start();
            if let Some(rest) = field.strip_prefix("- ") {
                items += 1;
                field = rest;
            }
            if items != 1 {
                continue;
            }
            if let Some((k, v)) = field.split_once(':') {
                let v = v.trim().trim_matches('\'').trim_matches('"').to_owned();
                match k.trim() {
                    "md5" => md5 = Some(v),
                    "size" => size = v.parse().ok(),
                    "path" => path = Some(v),
                    _ => {}
                }
            }
        }
        let md5 = md5.ok_or_else(|| DvcError::BadDvcFile("no outs[0].md5".into()))?;
        if !is_md5(&md5) {
            return Err(DvcError::BadDvcFile(format!(
                "outs[0].md5 {md5:?} is not a file md5 (directories are not supported)"
            )));
        }
        Ok(Self {
            md5,
            size: size.ok_or_else(|| DvcError::BadDvcFile("no outs[0].size".into()))?,
            path: path.ok_or_else(|| DvcError::BadDvcFile("no outs[0].path".into()))?,
        })
    }
}

/// A DVC remote: any object store location laid out as DVC expects.
#[derive(Debug, Clone)]
pub struct DvcRemote {
    store: Arc<dyn ObjectStore>,
    location: StoreLocation,
}

impl DvcRemote {
    pub fn new(store: Arc<dyn ObjectStore>, location: StoreLocation) -> Self {
        Self { store, location }
    }

    /// Opens the remote at `location`.
    pub async fn open(location: &StoreLocation, s3: &S3Config) -> Result<Self, DvcError> {
        Ok(Self::new(store::open(location, s3).await?, location.clone()))
    }

    /// The remote's URL, as `.dvc/config` wants it (absolute for a local folder).
    pub fn url(&self) -> String {
        match &self.location {
            StoreLocation::Local { path } => std::path::absolute(path)
                .unwrap_or_else(|_| path.clone())
                .display()
                .to_string(),
            other => other.to_string(),
        }
    }

    pub fn object_key(md5: &str) -> Result<ObjectKey, DvcError> {
        if !is_md5(md5) {
            return Err(DvcError::NotAVersion(md5.to_owned()));
        }
        Ok(ObjectKey::new(format!("files/md5/{}/{}", &md5[..2], &md5[2..]))?)
    }

    /// Where the object of `md5` lives, for people.
    pub fn object_url(&self, md5: &str) -> Result<String, DvcError> {
        Ok(self.store.url(&Self::object_key(md5)?))
    }

    /// Stores `bytes` under their md5 (an identical object already there is fine).
    pub async fn push(&self, bytes: Bytes, path: &str) -> Result<DvcOut, DvcError> {
        let md5 = md5_hex(&bytes);
        let out = DvcOut {
            md5: md5.clone(),
            size: bytes.len() as u64,
            path: path.to_owned(),
        };
        match self.store.put_new(&Self::object_key(&md5)?, bytes).await {
            Ok(()) | Err(StoreError::AlreadyExists { .. }) => Ok(out),
            Err(e) => Err(e.into()),
        }
    }

    /// Fetches the object of `md5` and checks it is what it claims to be.
    pub async fn pull(&self, md5: &str) -> Result<Bytes, DvcError> {
        let bytes = self.store.get(&Self::object_key(md5)?).await?;
        let found = md5_hex(&bytes);
        if found != md5 {
            return Err(DvcError::Corrupt {
                expected: md5.to_owned(),
                found,
            });
        }
        Ok(bytes)
    }
}

/// The `.dvc/config.local` that points the project's `storage` remote at `url`.
pub fn config_local(url: &str, endpoint: Option<&str>) -> String {
    let mut s = format!("['remote \"storage\"']\n    url = {url}\n");
    if let Some(e) = endpoint {
        let _ = writeln!(s, "    endpointurl = {e}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn md5_matches_the_reference_value() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(md5_hex(b"rps"), "651cb023e8a7c22b217106f3145522d3");
    }

    #[test]
    fn objects_use_the_dvc_remote_layout() {
        let k = DvcRemote::object_key("651cb023e8a7c22b217106f3145522d3").unwrap();
        assert_eq!(k.as_str(), "files/md5/65/1cb023e8a7c22b217106f3145522d3");
        assert!(DvcRemote::object_key("../../etc").is_err());
        assert!(DvcRemote::object_key("651CB023E8A7C22B217106F3145522D3").is_err());
    }

    #[test]
    fn dvc_files_round_trip_and_dvc_add_output_parses() {
        let out = DvcOut {
            md5: "651cb023e8a7c22b217106f3145522d3".into(),
            size: 3,
            path: DEFAULT_OUT_PATH.into(),
        };
        assert_eq!(DvcOut::parse_dvc_file(&out.to_dvc_file()).unwrap(), out);
        // What `dvc add` writes, with extra fields.
        let by_dvc = "outs:\n- md5: 651cb023e8a7c22b217106f3145522d3\n  size: 3\n  hash: md5\n  path: processed.parquet\n  cloud: {}\nmeta:\n  a: b\n";
        assert_eq!(DvcOut::parse_dvc_file(by_dvc).unwrap().path, "processed.parquet");
        let dir = "outs:\n- md5: 0123456789abcdef0123456789abcdef.dir\n  size: 3\n  path: data\n";
        assert!(DvcOut::parse_dvc_file(dir).is_err());
    }

    #[tokio::test]
    async fn push_and_pull_verify_the_content() {
        let store = Arc::new(MemoryStore::new());
        let remote = DvcRemote::new(store.clone(), StoreLocation::parse("remote").unwrap());
        let out = remote.push(Bytes::from_static(b"rps"), "x").await.unwrap();
        assert_eq!(out.md5, "651cb023e8a7c22b217106f3145522d3");
        assert_eq!(
            remote.push(Bytes::from_static(b"rps"), "x").await.unwrap(),
            out,
            "pushing twice is fine"
        );
        assert_eq!(&remote.pull(&out.md5).await.unwrap()[..], b"rps");
        // A corrupted remote copy is caught.
        store
            .put(
                &DvcRemote::object_key(&out.md5).unwrap(),
                Bytes::from_static(b"tampered"),
            )
            .await
            .unwrap();
        assert!(matches!(
            remote.pull(&out.md5).await,
            Err(DvcError::Corrupt { .. })
        ));
    }
}

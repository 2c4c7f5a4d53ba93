//! Loading a model: resolve a version or `@alias`, download the bundle once into a
//! cache keyed by version and checksum, and verify it before use (checksum against the
//! version's tag, format version, internal consistency). A tampered cache entry is
//! discarded and fetched again.

use std::path::{Path, PathBuf};

use super::{ModelRef, Registry, RegistryError, VersionInfo};
use crate::bundle::ModelBundle;
use crate::tags;

/// A verified bundle and the version it is.
#[derive(Debug)]
pub struct LoadedModel {
    pub info: VersionInfo,
    pub bundle: ModelBundle,
    pub sha256: String,
    pub bytes: usize,
    pub from_cache: bool,
}

fn cache_path(cache_dir: &Path, info: &VersionInfo, sha: &str) -> PathBuf {
    let safe = |s: &str| {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect::<String>()
    };
    cache_dir
        .join(safe(&info.name))
        .join(safe(&info.version))
        .join(format!("{}.rpsb", safe(sha)))
}

/// Resolves `r`, then returns its bundle from the cache or the registry, verified
/// (checksum against the version's tag, format version, internal consistency).
pub async fn load(
    registry: &dyn Registry,
    name: &str,
    r: &ModelRef,
    cache_dir: &Path,
) -> Result<LoadedModel, RegistryError> {
    let info = registry.resolve(name, r).await?;
    load_version(registry, info, cache_dir).await
}

/// The checksum a version's bundle must have (its tag), or why there is none.
fn expected_sha256(info: &VersionInfo) -> Result<String, RegistryError> {
    info.bundle_sha256().map(str::to_owned).ok_or_else(|| {
        RegistryError::Invalid(format!(
            "model {} version {} has no {} tag: it was not registered by rps",
            info.name,
            info.version,
            tags::version::BUNDLE_SHA256
        ))
    })
}

/// Downloads a version's bundle and verifies it against its checksum tag, bypassing
/// the cache (`rps models pull` bakes it into an image). The bytes, the bundle and the
/// checksum.
pub async fn download_verified(
    registry: &dyn Registry,
    info: &VersionInfo,
) -> Result<(bytes::Bytes, ModelBundle, String), RegistryError> {
    let sha = expected_sha256(info)?;
    let bytes = registry.download_bundle(info).await?;
    let bundle = ModelBundle::decode_verified(&bytes, &sha).map_err(|source| RegistryError::Bundle {
        name: info.name.clone(),
        version: info.version.clone(),
        source,
    })?;
    Ok((bytes, bundle, sha))
}

pub async fn load_version(
    registry: &dyn Registry,
    info: VersionInfo,
    cache_dir: &Path,
) -> Result<LoadedModel, RegistryError> {
    let sha = expected_sha256(&info)?;
    let path = cache_path(cache_dir, &info, &sha);
    if let Ok(bytes) = tokio::fs::read(&path).await {
        match ModelBundle::decode_verified(&bytes, &sha) {
            Ok(bundle) => {
                return Ok(LoadedModel {
                    info,
                    bundle,
                    sha256: sha,
                    bytes: bytes.len(),
                    from_cache: true,
                });
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "discarding a bad cached bundle: {e}");
                let _ = tokio::fs::remove_file(&path).await;
            }
        }
    }
    let (bytes, bundle, sha) = download_verified(registry, &info).await?;
    write_cache(&path, &bytes).await?;
    Ok(LoadedModel {
        info,
        bundle,
        sha256: sha,
        bytes: bytes.len(),
        from_cache: false,
    })
}

async fn write_cache(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let err = |source| RegistryError::Cache {
        path: path.display().to_string(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir).await.map_err(err)?;
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), rand::random::<u64>()));
    tokio::fs::write(&tmp, bytes).await.map_err(err)?;
    tokio::fs::rename(&tmp, path).await.map_err(err)
}

//! The git commit the running code was built from, for lineage.

use std::process::Command;

/// `RPS_GIT_COMMIT` (set by CI or a Lambda deploy), else `GITHUB_SHA`, else
/// `git rev-parse HEAD` in the working directory. `None` outside a repository.
pub fn current_commit() -> Option<String> {
    for var in ["RPS_GIT_COMMIT", "GITHUB_SHA"] {
        if let Ok(v) = std::env::var(var) {
            let v = v.trim().to_owned();
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    let out = Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit())).then_some(sha)
}

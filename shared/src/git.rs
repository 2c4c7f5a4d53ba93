//! The git commit of the code that runs, for lineage.

use std::process::Command;

/// `RPS_GIT_COMMIT` (set by CI or a deploy), else `GITHUB_SHA`, else the commit the
/// binary was built from, else `git rev-parse HEAD` in the working directory. `None`
/// when none of them is known.
pub fn current_commit() -> Option<String> {
    for var in ["RPS_GIT_COMMIT", "GITHUB_SHA"] {
        if let Ok(v) = std::env::var(var) {
            let v = v.trim().to_owned();
            if !v.is_empty() {
                return Some(v);
            }
        }
    }
    if let Some(built) = option_env!("RPS_BUILD_COMMIT") {
        return Some(built.to_owned());
    }
    let out = Command::new("git").args(["rev-parse", "HEAD"]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let sha = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit())).then_some(sha)
}

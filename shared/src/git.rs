//! The git commit of the code that runs, for lineage.

use std::process::Command;

use crate::config::Provenance;

/// The configured commit (`RPS_GIT_COMMIT`, else `GITHUB_SHA`), else the commit the
/// binary was built from, else `git rev-parse HEAD` in the working directory. `None`
/// when none of them is known.
pub fn current_commit(provenance: &Provenance) -> Option<String> {
    if let Some(c) = &provenance.git_commit {
        return Some(c.clone());
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

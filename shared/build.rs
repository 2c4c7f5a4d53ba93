//! Embeds the git commit the library is built from (`RPS_BUILD_COMMIT`), so binaries
//! know their code version without a repository at run time (Lambda, containers).

use std::path::Path;
use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .map(|s| s.trim().to_owned())
    };
    if let Some(sha) = git(&["rev-parse", "HEAD"]).filter(|s| s.len() == 40) {
        println!("cargo:rustc-env=RPS_BUILD_COMMIT={sha}");
    }
    // Rebuild when HEAD moves: the HEAD file, the branch it points to, packed refs.
    // Only files that exist: cargo counts a missing one as changed on every build,
    // which would recompile this crate (and link every binary again) each time cargo
    // runs, `sam build`'s eight runs included.
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let dir = Path::new(&dir);
        let mut watched = vec![dir.join("HEAD"), dir.join("packed-refs")];
        if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watched.push(dir.join(r));
        }
        for path in watched.iter().filter(|p| p.exists()) {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-env-changed=RPS_BUILD_COMMIT");
}

//! Helpers for tests that talk to real components on 127.0.0.1.
//!
//! Servers run under a watchdog: a shell that owns a process group, exits when the test
//! process does, and takes the group with it, so no server outlives its tests. A test
//! that needs a component calls [`require`]: where it is missing, the test fails in CI
//! (`CI=true`) and is skipped, loudly, on a developer's machine.

pub mod airflow;
pub mod cloud;
pub mod faults;
pub mod mlflow;
pub mod moto;
pub mod replay;
pub mod rps;
pub mod stub;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit sits in the workspace")
        .to_path_buf()
}

/// The shipped sample year (Open-Meteo's archive format).
pub fn sample_path() -> PathBuf {
    workspace_root().join("data/sample/open-meteo-archive-sandpoint-ak-2023.json")
}

pub fn sample_bytes() -> Vec<u8> {
    std::fs::read(sample_path()).expect("the shipped sample is readable")
}

/// A name no other test in this run uses (experiments, models, folders).
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}{:x}", N.fetch_add(1, Ordering::Relaxed))
}

pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The path of a tool the test needs. A missing tool fails the test, unless skipping
/// is asked for explicitly with `RPS_ALLOW_SKIP=1` outside CI: then the test returns
/// early (`None`) and is recorded in `test-output/skipped.log`, which `make test`
/// counts and prints, so a green local run says what it did not run.
pub fn require(what: &str, path: &Path) -> Option<PathBuf> {
    let allow = !in_ci() && std::env::var("RPS_ALLOW_SKIP").is_ok_and(|v| v == "1");
    require_with(what, path, allow, &skipped_log())
}

/// Where skipped tests are recorded.
pub fn skipped_log() -> PathBuf {
    workspace_root().join("test-output/skipped.log")
}

/// [`require`] with the policy and the log given.
pub fn require_with(what: &str, path: &Path, allow_skip: bool, log: &Path) -> Option<PathBuf> {
    if path.exists() {
        return Some(path.to_path_buf());
    }
    let msg = format!(
        "{what} is not installed at {} (`make test` installs it)",
        path.display()
    );
    if !allow_skip {
        panic!("{msg}; set RPS_ALLOW_SKIP=1 to skip such tests on purpose (never in CI)");
    }
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    eprintln!("SKIPPED {test}: {msg}");
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(log) {
        let _ = writeln!(f, "{test}: {msg}");
    }
    None
}

/// A program from the project's Python environment (`.venv/bin/<name>`).
pub fn venv_bin(name: &str) -> PathBuf {
    workspace_root().join(".venv/bin").join(name)
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Removes the test harness's cargo variables (CARGO_MANIFEST_DIR, CARGO_PKG_*, …) from
/// a command that may run cargo (`sam build`): build scripts that watch them would
/// rebuild the dependency tree, polars included. Where the build goes and for which
/// target (CARGO_HOME, CARGO_TARGET_DIR, CARGO_BUILD_TARGET) stays.
pub fn clean_cargo_env(command: &mut Command) {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        let keep = matches!(
            k.as_ref(),
            "CARGO_HOME" | "CARGO_TARGET_DIR" | "CARGO_BUILD_TARGET"
        );
        if (k == "CARGO" || k.starts_with("CARGO_")) && !keep {
            command.env_remove(k.as_ref());
        }
    }
}

/// A process group started under a watchdog; killed when dropped or when the test
/// process exits.
pub struct Background {
    child: std::process::Child,
    pub log: PathBuf,
}

impl Background {
    pub fn spawn(program: &Path, args: &[&str], envs: &[(&str, &str)], log: PathBuf) -> Self {
        Self::spawn_in(Path::new("."), program, args, envs, log)
    }

    /// Like [`Background::spawn`], in the working directory `dir`.
    pub fn spawn_in(dir: &Path, program: &Path, args: &[&str], envs: &[(&str, &str)], log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt;
        let out = std::fs::File::create(&log).expect("a log file");
        let err = out.try_clone().expect("a log file");
        let watchdog = r#"parent=$1; shift
"$@" & child=$!
trap 'kill -TERM -- -$$ 2>/dev/null' EXIT
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done"#;
        let mut command = Command::new("bash");
        clean_cargo_env(&mut command);
        let child = command
            .arg("-c")
            .arg(watchdog)
            .arg("rps-test-watchdog")
            .arg(std::process::id().to_string())
            .arg(program)
            .args(args)
            .envs(envs.iter().copied())
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        Self { child, log }
    }

    /// Stops the whole group now (the watchdog's group id is its pid).
    pub fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }

    pub fn log_tail(&self) -> String {
        let s = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = s.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `GET http://127.0.0.1:<port><path>` until it answers 2xx.
pub fn wait_http_ok(port: u16, path: &str, timeout: Duration) -> bool {
    use std::io::{Read, Write};
    let started = Instant::now();
    while started.elapsed() < timeout {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            let mut buf = [0u8; 16];
            if s.write_all(req.as_bytes()).is_ok()
                && s.read(&mut buf).is_ok()
                && buf.starts_with(b"HTTP/1.1 2")
            {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// A test's turn in a binary that holds several groups of tests (one module each):
/// tests of the same group run side by side, other groups wait until the group running
/// now has finished. So a binary of many modules runs them as separate binaries would,
/// one group at a time, while linking once. The group is the test's module under the
/// binary (`system::cicd::workflows` is in `system::cicd`). Hold the guard for the
/// whole test:
/// `let _turn = testkit::turn(module_path!());`.
pub fn turn(group: &'static str) -> Turn {
    // `binary::module::inner` takes the turn of `binary::module`.
    let group = match group.match_indices("::").nth(1) {
        Some((end, _)) => &group[..end],
        None => group,
    };
    let (lock, changed) = &TURNS;
    let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
    while state.0.is_some_and(|g| g != group) {
        state = changed.wait(state).unwrap_or_else(|e| e.into_inner());
    }
    state.0 = Some(group);
    state.1 += 1;
    Turn
}

/// Which group runs, and how many of its tests.
type Turns = (
    std::sync::Mutex<(Option<&'static str>, usize)>,
    std::sync::Condvar,
);

static TURNS: Turns = (std::sync::Mutex::new((None, 0)), std::sync::Condvar::new());

/// Held while a test runs ([`turn`]); a test that panics gives its turn back too.
#[must_use = "the turn ends when the guard is dropped"]
pub struct Turn;

impl Drop for Turn {
    fn drop(&mut self) {
        let (lock, changed) = &TURNS;
        let mut state = lock.lock().unwrap_or_else(|e| e.into_inner());
        state.1 -= 1;
        if state.1 == 0 {
            state.0 = None;
            changed.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "is not installed")]
    fn a_missing_tool_fails_the_test_unless_skipping_is_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        require_with("a tool", &dir.path().join("nope"), false, &dir.path().join("log"));
    }

    #[test]
    fn an_asked_for_skip_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out/skipped.log");
        assert!(require_with("a tool", &dir.path().join("nope"), true, &log).is_none());
        let text = std::fs::read_to_string(&log).unwrap();
        assert!(text.contains("a tool is not installed"), "{text}");
        assert_eq!(
            require_with("here", dir.path(), false, &log),
            Some(dir.path().to_path_buf())
        );
    }

    #[test]
    fn groups_take_turns_and_a_group_runs_side_by_side() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        // (tests of "a" running, of "b" running, most of "a" at once, a clash seen)
        let seen = Arc::new([0, 1, 2, 3].map(|_| AtomicUsize::new(0)));
        let first = turn("a");
        let a = seen.clone();
        let side = std::thread::spawn(move || {
            let _t = turn("a");
            a[0].fetch_add(1, Ordering::SeqCst);
            let now = a[0].load(Ordering::SeqCst);
            a[2].fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(100));
            a[0].fetch_sub(1, Ordering::SeqCst);
        });
        let b = seen.clone();
        let other = std::thread::spawn(move || {
            let _t = turn("b");
            if b[0].load(Ordering::SeqCst) > 0 {
                b[3].fetch_add(1, Ordering::SeqCst);
            }
            b[1].fetch_add(1, Ordering::SeqCst);
        });
        seen[0].fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(seen[1].load(Ordering::SeqCst), 0, "b ran while a held its turn");
        seen[0].fetch_sub(1, Ordering::SeqCst);
        drop(first);
        side.join().unwrap();
        other.join().unwrap();
        assert_eq!(seen[1].load(Ordering::SeqCst), 1, "b ran after a");
        assert_eq!(seen[3].load(Ordering::SeqCst), 0, "b overlapped a");
        assert!(seen[2].load(Ordering::SeqCst) >= 1);
    }
}

//! The web page in a real browser: headless Chromium driven by playwright-core loads
//! `/`, draws the 48 observed hours and six forecast points, shows the serving model and
//! the drift status, fetches nothing from elsewhere, and leaves a screenshot in
//! `test-output/`; before any verification and after one that scored nothing yet (the
//! verified page with scores is cli/tests/cli/verify.rs's).

use std::process::Command;

use serde_json::Value;
use testkit::replay::Replay;
use testkit::rps::{Env, last_json};

#[test]
fn the_page_shows_the_forecast_chart() {
    let _turn = testkit::turn(module_path!());
    let root = testkit::workspace_root();
    let Some(node_module) = testkit::require(
        "playwright-core (npm)",
        &root.join("node_modules/playwright-core"),
    ) else {
        return;
    };
    let Some(_) = testkit::require("Chromium", std::path::Path::new("/usr/bin/chromium")) else {
        return;
    };
    let _ = node_module;

    let dir = tempfile::tempdir().unwrap();
    let replay = Replay::sample();
    let mut env = Env::new(&dir.path().join("store"), &replay);
    env.ok(&["pipeline", "run", "--start", "2023-01-01", "--end", "2023-12-31"]);
    // A live snapshot: the replay puts the recorded year onto today's calendar.
    env.ok(&["ingest", "--live"]);
    env.ok(&["validate"]);
    env.set("RPS_MODEL_ALIAS", "candidate");
    // The API re-reads the verification every second.
    env.set("RPS_MODEL_REFRESH_SECS", "1");
    let server = env.serve();

    let out_dir = root.join("test-output");
    std::fs::create_dir_all(&out_dir).unwrap();
    let load = |file: &str| -> Value {
        let shot = out_dir.join(file);
        let _ = std::fs::remove_file(&shot);
        let out = Command::new("node")
            .arg(root.join("system/checkers/browser/page.mjs"))
            .arg(format!("{}/", server.url))
            .arg(&shot)
            .output()
            .expect("node runs");
        assert!(
            out.status.success(),
            "the browser script failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let png = std::fs::read(&shot).expect("a screenshot");
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 20_000, "the screenshot is suspiciously small");
        last_json(&out)
    };
    let page = load("web-page.png");

    assert_eq!(page["httpStatus"], 200);
    assert_eq!(page["errors"], serde_json::json!([]), "{page}");
    assert_eq!(
        page["foreignRequests"],
        serde_json::json!([]),
        "everything comes from the app itself"
    );
    assert_eq!(page["forecastPoints"], 6, "{page}");
    assert_eq!(page["forecastRows"], 6, "{page}");
    assert_eq!(page["observedPoints"], 48, "{page}");
    // The 80% and 95% intervals, one shaded band each around the forecast line.
    assert_eq!(page["intervalBands"], 2, "{page}");
    assert_eq!(page["statusIsError"], false, "{page}");
    assert!(
        page["status"]
            .as_str()
            .unwrap()
            .contains("version 1 (@candidate)"),
        "{page}"
    );
    assert!(
        page["model"].as_str().unwrap().contains("random_forest"),
        "{page}"
    );
    assert!(
        page["drift"].as_str().unwrap().contains("requests in window"),
        "{page}"
    );
    // The service's verdict, not the page's own: no requests yet is no verdict.
    assert!(
        page["drift"]
            .as_str()
            .unwrap()
            .contains("too few requests to tell"),
        "{page}"
    );
    // Nothing verified yet: the page says so instead of drawing an empty chart
    // (cli/tests/cli/verify.rs draws a real one).
    assert!(
        page["liveStatus"]
            .as_str()
            .unwrap()
            .contains("no verification has run yet"),
        "{page}"
    );
    assert_eq!(page["verifiedPoints"], 0, "{page}");

    // A verification that has scored nothing yet (here: nothing issued, an empty log):
    // the page says so, without a script error above an empty chart.
    env.ok(&["verify", "--no-issue"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let page = load("web-page-verified-nothing-scored.png");
    assert_eq!(page["errors"], serde_json::json!([]), "{page}");
    assert_eq!(page["statusIsError"], false, "{page}");
    let live = page["liveStatus"].as_str().unwrap();
    assert!(
        live.contains("version 1: 0 forecasts") && live.contains("no retrain needed"),
        "{page}"
    );
    assert_eq!(page["verifiedPoints"], 0, "{page}");
    assert_eq!(page["liveRows"], 6, "the skill table is drawn, empty: {page}");
}

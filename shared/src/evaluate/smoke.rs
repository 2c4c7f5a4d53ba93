//! The smoke gate's checks against a deployed staging API: it is up and ready, serves
//! the candidate (version and checksum), and answers a golden request from the hold-out
//! exactly as the candidate does in-process.

use std::time::Duration;

use serde_json::{Value, json};

use super::gates::SmokeCheck;
use crate::bundle::{Forecast, ModelBundle};
use crate::features::serving_row;
use crate::http::error_chain;
use crate::observations::{HourlySeries, KEY_VARIABLES, format_time};
use crate::records::wire::{ErrorResponse, ModelInfo, PredictResponse};
use crate::registry::VersionInfo;

const TIMEOUT: Duration = Duration::from_secs(10);

/// The golden request: a hold-out window as `/predict` takes it.
pub fn golden_request(window: &HourlySeries) -> Value {
    let obs: Vec<Value> = (0..window.len())
        .map(|i| {
            let mut o = serde_json::Map::new();
            o.insert("time".into(), json!(format_time(window.times()[i])));
            for v in KEY_VARIABLES {
                o.insert(v.name().into(), json!(window.column(v)[i]));
            }
            Value::Object(o)
        })
        .collect();
    json!({ "observations": obs })
}

/// What the API at `url` serves, by `/model`.
pub async fn served_model(
    http: &reqwest::Client,
    url: &str,
) -> Result<(u16, Option<ModelInfo>), reqwest::Error> {
    let r = http
        .get(format!("{}/model", url.trim_end_matches('/')))
        .timeout(TIMEOUT)
        .send()
        .await?;
    let status = r.status().as_u16();
    Ok((status, r.json::<ModelInfo>().await.ok()))
}

/// Every check, in order; a check that cannot run fails with the reason.
pub async fn checks(
    http: &reqwest::Client,
    url: &str,
    candidate: &VersionInfo,
    bundle: &ModelBundle,
    golden: Option<&HourlySeries>,
) -> Vec<SmokeCheck> {
    let mut out = Vec::new();
    for path in ["/health", "/ready"] {
        out.push(up(http, url, path).await);
    }
    out.push(serves_candidate(http, url, candidate).await);
    out.push(match golden {
        Some(window) => predicts_like(http, url, bundle, window).await,
        None => failed(
            "/predict",
            "no contiguous hold-out window for a golden request".into(),
        ),
    });
    out
}

fn failed(check: &str, detail: String) -> SmokeCheck {
    SmokeCheck {
        check: check.to_owned(),
        ok: false,
        detail,
    }
}

fn no_answer(check: &str, e: &reqwest::Error) -> SmokeCheck {
    failed(check, format!("no answer: {}", error_chain(e)))
}

async fn up(http: &reqwest::Client, url: &str, path: &str) -> SmokeCheck {
    match http.get(format!("{url}{path}")).timeout(TIMEOUT).send().await {
        Ok(r) => SmokeCheck {
            check: path.to_owned(),
            ok: r.status().as_u16() == 200,
            detail: format!("HTTP {}", r.status().as_u16()),
        },
        Err(e) => no_answer(path, &e),
    }
}

async fn serves_candidate(http: &reqwest::Client, url: &str, candidate: &VersionInfo) -> SmokeCheck {
    let (status, info) = match served_model(http, url).await {
        Ok(answer) => answer,
        Err(e) => return no_answer("/model", &e),
    };
    let served = info.as_ref().map_or("?", |m| m.version.as_str());
    let sha_ok = info.as_ref().map(|m| m.sha256.as_str()) == candidate.bundle_sha256();
    let ok = status == 200 && served == candidate.version && sha_ok;
    let detail = if ok {
        format!("serves version {served}")
    } else if status != 200 {
        format!("HTTP {status}")
    } else {
        format!(
            "serves version {served}, not the candidate {}{}",
            candidate.version,
            if sha_ok { "" } else { " (bundle checksum differs)" }
        )
    };
    SmokeCheck {
        check: "/model".into(),
        ok,
        detail,
    }
}

async fn predicts_like(
    http: &reqwest::Client,
    url: &str,
    bundle: &ModelBundle,
    window: &HourlySeries,
) -> SmokeCheck {
    let expected: Result<Vec<Forecast>, String> = serving_row(window)
        .map_err(|e| e.to_string())
        .and_then(|row| bundle.predict(&row).map_err(|e| e.to_string()));
    let expected = match expected {
        Ok(e) => e,
        Err(e) => return failed("/predict", format!("no golden answer in-process: {e}")),
    };
    let got = match predict(http, url, &golden_request(window)).await {
        Ok(answer) => answer.forecasts,
        Err(e) => return failed("/predict", e),
    };
    // Every forecast and every bound of its intervals, as the candidate makes them.
    let values = |f: &[Forecast]| -> Vec<Vec<f64>> {
        f.iter()
            .map(|x| {
                std::iter::once(x.temperature_2m)
                    .chain(x.intervals.iter().flat_map(|i| [i.level, i.lower, i.upper]))
                    .collect()
            })
            .collect()
    };
    let (got_values, want) = (values(&got), values(&expected));
    let same_shape =
        got_values.len() == want.len() && got_values.iter().zip(&want).all(|(g, w)| g.len() == w.len());
    let worst = if same_shape {
        got_values
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .map(|(g, w)| (g - w).abs())
            .fold(0.0, f64::max)
    } else {
        f64::INFINITY
    };
    let intervals = expected.first().map_or(0, |f| f.intervals.len());
    SmokeCheck {
        check: "/predict".into(),
        ok: worst < 1e-6,
        detail: if worst < 1e-6 {
            format!(
                "{} forecasts and their {intervals} intervals each equal the in-process answer",
                got.len()
            )
        } else if !same_shape {
            format!(
                "{} forecasts, not the {} of the in-process answer, or other intervals",
                got.len(),
                expected.len()
            )
        } else {
            format!(
                "{} forecasts, off the in-process answer by up to {worst:.3e}",
                got.len()
            )
        },
    }
}

/// What a smoke test of a running API found (`rps smoke`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Smoked {
    pub url: String,
    pub model_version: String,
    pub forecasts: usize,
}

/// Smoke-tests the API at `url` (a deployment, a container, a local server): `/health`
/// and `/ready` answer 200 (each within `wait`), and `/predict` forecasts `request`;
/// with `expect`, once the version it serves is that one (the staging wait,
/// [`until_version`], within `wait` again). Gives up saying what it saw last.
pub async fn until_serving(
    http: &reqwest::Client,
    url: &str,
    request: &Value,
    expect: Option<&str>,
    wait: Duration,
) -> Result<Smoked, String> {
    let url = url.trim_end_matches('/');
    for path in ["/health", "/ready"] {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let attempt = http.get(format!("{url}{path}")).timeout(Duration::from_secs(2));
            let seen = match attempt.send().await {
                Ok(r) if r.status().is_success() => break,
                Ok(r) => format!(
                    "it answered {}: {}",
                    r.status().as_u16(),
                    r.text().await.unwrap_or_default()
                ),
                Err(e) => error_chain(&e),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(format!("{url}{path} does not answer 200 ({})", seen.trim()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let expect = expect.map(|v| v.trim_start_matches('v'));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(want) = expect {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            until_version(http, url, want, left).await?;
        }
        // `/model` and `/predict` may reach different instances, one of them not yet
        // refreshed: a version other than the expected one is asked again until the
        // deadline; any other failure ends the wait at once.
        let answer = predict(http, url, request).await?;
        let version = answer.model.version;
        match expect {
            Some(want) if version != want => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("{url} serves version {version}, not {want}"));
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            _ if answer.forecasts.is_empty() => return Err(format!("{url}/predict returned no forecasts")),
            _ => {
                return Ok(Smoked {
                    url: url.to_owned(),
                    model_version: version,
                    forecasts: answer.forecasts.len(),
                });
            }
        }
    }
}

/// One `/predict` of `request`; a refusal or an answer that is not a forecast is an
/// error saying so.
async fn predict(http: &reqwest::Client, url: &str, request: &Value) -> Result<PredictResponse, String> {
    let r = http
        .post(format!("{url}/predict"))
        .json(request)
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("{url}/predict failed: {}", error_chain(&e)))?;
    let status = r.status();
    if !status.is_success() {
        let why = r.json::<ErrorResponse>().await.map(|e| e.error.message);
        return Err(format!(
            "{url}/predict answered {}: {}",
            status.as_u16(),
            why.unwrap_or_default()
        ));
    }
    r.json()
        .await
        .map_err(|e| format!("{url}/predict answered something that is not a forecast: {e}"))
}

/// The staging wait: polls `url`'s `/model` until it serves `version` (the API
/// re-checks its alias periodically) or `wait` is over, then says what it saw last.
/// The release flow (`rps pipeline promote`) and `rps smoke --expect` both wait here.
pub async fn until_version(
    http: &reqwest::Client,
    url: &str,
    version: &str,
    wait: Duration,
) -> Result<(), String> {
    let url = url.trim_end_matches('/');
    let want = version.trim_start_matches('v');
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let seen = match served_model(http, url).await {
            Ok((_, Some(m))) if m.version == want => return Ok(()),
            Ok((_, Some(m))) => format!("{url} serves version {}, not {want}", m.version),
            Ok((status, None)) => {
                format!("{url}/model answered {status} without a model, not version {want}")
            }
            Err(e) => format!(
                "{url}/model did not answer ({}), not version {want}",
                error_chain(&e)
            ),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(seen);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

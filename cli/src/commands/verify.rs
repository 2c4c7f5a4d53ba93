use comfy_table::{CellAlignment, Table, presets};
use rps_core::pipeline::{ReleaseInput, ReleaseOutput, RunInput, promote as release};
use rps_core::verify::score::LiveWindow;
use rps_core::verify::{Verification, VerifyInput, verify};
use serde::Serialize;

use super::fleet::{self, Finished};
use super::{Out, key, resolved_config};
use crate::output::{self, Progress};

#[derive(clap::Args)]
pub struct Args {
    /// Only score the log: do not issue the scheduled forecast first
    #[arg(long)]
    no_issue: bool,
    /// Issue the scheduled forecast from this validated snapshot (default: the newest)
    #[arg(long)]
    snapshot: Option<String>,
    /// When a retrain is needed, run it now: the release flow on the trigger's data,
    /// promoted only if every gate passes (exit 4 when the gates refuse it)
    #[arg(long)]
    retrain: bool,
}

/// `--retrain --json`: the verification and the retrain it started, if any.
#[derive(Serialize)]
struct WithRetrain<'a> {
    verification: &'a Verification,
    release: Option<&'a ReleaseOutput>,
}

pub async fn run(a: Args, out: &Out) -> anyhow::Result<()> {
    let config = resolved_config().await?;
    let input = VerifyInput {
        issue: !a.no_issue,
        snapshot: a.snapshot.as_deref().map(key).transpose()?,
        request_drift: None,
    };
    let concurrency = config.site.concurrency;
    let config = match fleet::sites(config).await? {
        fleet::Selected::One(config) => *config,
        fleet::Selected::Many(sites) => {
            anyhow::ensure!(
                input.snapshot.is_none(),
                "--snapshot names one location's snapshot: add --location ID"
            );
            let retrain = a.retrain;
            return fleet::run_each("verify", sites, concurrency, out, None, move |_, ctx| {
                let input = input.clone();
                async move { verify_location(&ctx, input, retrain).await }
            })
            .await;
        }
    };
    let ctx = rps_core::stage::Context::new(config).await?;
    let v = verify(&ctx, input).await?;
    out.text(&summary(&ctx, &v));
    let trigger = match (&v.retrain.trigger, a.retrain) {
        (Some(t), true) => t.clone(),
        _ => {
            return if a.retrain {
                out.emit(
                    &WithRetrain {
                        verification: &v,
                        release: None,
                    },
                    |_| {},
                )
            } else {
                out.emit(&v, |_| {})
            };
        }
    };
    let progress = Progress::new();
    let done = release(
        &ctx,
        ReleaseInput {
            run: RunInput {
                ingest: trigger.ingest,
                trigger: Some(trigger.clone()),
            },
            actor: Some(format!("rps verify ({})", trigger.kinds())),
        },
        &progress,
    )
    .await;
    progress.clear();
    let done = output::with_report(&ctx, done, out).await?;
    output::print_promoted(&ctx, &done.promote, out.json);
    out.emit(
        &WithRetrain {
            verification: &v,
            release: Some(&done),
        },
        |_| {},
    )
}

/// One location of a fleet: verify, and retrain when asked and needed.
async fn verify_location(
    ctx: &rps_core::stage::Context,
    input: VerifyInput,
    retrain: bool,
) -> Result<Finished, rps_core::stage::StageError> {
    let v = verify(ctx, input).await?;
    let skill = v
        .served_version
        .as_deref()
        .and_then(|s| v.versions.iter().find(|x| x.version == s))
        .and_then(|x| x.window(LiveWindow::Day))
        .and_then(|w| w.horizon(6))
        .and_then(|h| h.skill);
    let mut summary = format!("6 h skill over 24 h {}; ", pct(skill));
    let mut release_out = None;
    match (&v.retrain.trigger, retrain) {
        (Some(t), true) => {
            let done = release(
                ctx,
                ReleaseInput {
                    run: RunInput {
                        ingest: t.ingest,
                        trigger: Some(t.clone()),
                    },
                    actor: Some(format!("rps verify ({})", t.kinds())),
                },
                &rps_core::stage::Quiet,
            )
            .await?;
            summary.push_str(&format!(
                "retrained: version {} is production",
                done.promote.version
            ));
            release_out = Some(done);
        }
        (Some(t), false) => summary.push_str(&format!("retrain needed: {}", t.describe())),
        (None, _) => summary.push_str(match &v.retrain.held {
            Some(_) => "retrain held",
            None => "no retrain needed",
        }),
    }
    // What the one-location command prints: the verification, with its retrain when asked.
    let output = if retrain {
        serde_json::to_value(WithRetrain {
            verification: &v,
            release: release_out.as_ref(),
        })
    } else {
        serde_json::to_value(&v)
    }
    .map_err(|e| rps_core::stage::StageError::Internal(format!("serialising the verification: {e}")))?;
    Ok(Finished {
        model_version: v.served_version.clone(),
        summary,
        output,
    })
}

fn pct(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{:+.1}%", v * 100.0))
}

/// What a person reads: the live scores of each version, drift, the decision.
fn summary(ctx: &rps_core::stage::Context, v: &Verification) -> String {
    let mut s = String::new();
    let Some(as_of) = v.as_of else {
        return format!("nothing verified: {}", v.warnings.join("; "));
    };
    if let Some(i) = &v.issued {
        s.push_str(&format!(
            "issued version {}'s forecast from {} UTC\n",
            i.version, i.issued_at
        ));
    }
    s.push_str(&format!(
        "observations up to {as_of} UTC from {} snapshot(s); the log: {} forecasts read, {} skipped, {} repeated, {} mismatched; {} horizon forecasts pending, {} unverified (hour never observed)\n",
        v.snapshots, v.log.records, v.log.skipped, v.log.duplicates, v.log.mismatched, v.log.pending, v.log.unverified
    ));
    for version in &v.versions {
        let served = v.served_version.as_deref() == Some(version.version.as_str());
        s.push_str(&format!(
            "\nversion {}{}:\n",
            version.version,
            if served {
                format!(" (@{})", v.alias)
            } else {
                String::new()
            }
        ));
        let mut t = Table::new();
        t.load_preset(presets::UTF8_FULL_CONDENSED);
        t.set_header([
            "horizon",
            "n 24h",
            "RMSE 24h",
            "persistence",
            "skill 24h",
            "n 7d",
            "RMSE 7d",
            "skill 7d",
        ]);
        for h in rps_core::features::HORIZONS {
            let day = version.window(LiveWindow::Day).and_then(|w| w.horizon(h));
            let week = version.window(LiveWindow::Week).and_then(|w| w.horizon(h));
            let num = |x: Option<f64>| x.map_or("–".into(), |v| format!("{v:.3}"));
            t.add_row([
                format!("{h} h"),
                day.map_or("0".into(), |d| d.n.to_string()),
                num(day.map(|d| d.rmse)),
                num(day.map(|d| d.persistence_rmse)),
                pct(day.and_then(|d| d.skill)),
                week.map_or("0".into(), |d| d.n.to_string()),
                num(week.map(|d| d.rmse)),
                pct(week.and_then(|d| d.skill)),
            ]);
        }
        for c in 1..8 {
            if let Some(col) = t.column_mut(c) {
                col.set_cell_alignment(CellAlignment::Right);
            }
        }
        s.push_str(&format!("{t}\n"));
    }
    for d in &v.drift {
        s.push_str(&format!(
            "drift over the last {}: {:.1}% of {} observed hours outside the training range{}\n",
            d.window.label(),
            d.out_of_range_share * 100.0,
            d.hours,
            if d.features.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    d.features
                        .iter()
                        .map(|f| f.feature.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        ));
    }
    match (&v.retrain.trigger, &v.retrain.held) {
        (Some(t), _) => s.push_str(&format!("retrain needed: {}\n", t.describe())),
        (None, Some(held)) => s.push_str(&format!("retrain held: {held}\n")),
        (None, None) => s.push_str("no retrain needed\n"),
    }
    for w in &v.warnings {
        s.push_str(&format!("warning: {w}\n"));
    }
    if let Some(k) = &v.summary {
        s.push_str(&format!("summary: {}\n", ctx.store.url(k)));
    }
    s
}

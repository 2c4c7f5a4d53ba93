//! Where the chosen model's 6 h forecasts miss on the hold-out: RMSE by hour of the
//! (UTC) day, by month, by cloud cover, wind and recent temperature change, and the
//! features the errors follow most closely (correlation with the signed error).
//!
//!     cargo run --release -p rps-core --example residuals [-- path/to/open-meteo.json]

use chrono::{Datelike, Timelike};
use rps_core::dataset::Dataset;
use rps_core::features::{HORIZONS, feature_names};
use rps_core::observations::RawSeries;
use rps_core::train::{default_candidates, select_and_fit};
use rps_core::transform::regularise::regularise;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/sample/open-meteo-archive-sandpoint-ak-2023.json".into());
    let (series, _) = regularise(&[RawSeries::parse(&std::fs::read(&path)?)?], 3)?;
    let set = Dataset::build(&series)?.training_set()?;
    let t = select_and_fit(&set, &default_candidates(), 0.15, 0.15, 42)?;
    let h = HORIZONS.len() - 1;
    let rows: Vec<Vec<f64>> = t.rows.holdout.iter().map(|&i| set.rows[i].clone()).collect();
    let pred = t.models[h].predict(&t.scaler, &rows);
    let errors: Vec<f64> = t
        .rows
        .holdout
        .iter()
        .zip(&pred)
        .map(|(&i, p)| set.targets[h][i] - p)
        .collect();
    let names = feature_names();
    let col = |name: &str| names.iter().position(|n| n == name).expect("a feature");
    println!(
        "{path}: {}, {} hold-out rows, {} h RMSE {:.3}",
        t.chosen.describe(),
        errors.len(),
        HORIZONS[h],
        rms(&errors)
    );
    let report = |title: &str, key: &dyn Fn(usize) -> String| {
        let mut groups = std::collections::BTreeMap::<String, Vec<f64>>::new();
        for (k, e) in errors.iter().enumerate() {
            groups.entry(key(k)).or_default().push(*e);
        }
        println!("\n{title}");
        for (g, es) in groups {
            let bias = es.iter().sum::<f64>() / es.len() as f64;
            println!(
                "  {g:<14} n {:>5}  RMSE {:.3}  bias {:+.3}",
                es.len(),
                rms(&es),
                bias
            );
        }
    };
    let time = |k: usize| set.times[t.rows.holdout[k]];
    report("hour of day (UTC, of the forecast's issue)", &|k| {
        format!("{:02}-{:02}", time(k).hour() / 4 * 4, time(k).hour() / 4 * 4 + 3)
    });
    report("month", &|k| format!("{:02}", time(k).month()));
    let bucket = |name: &str, edges: &[f64]| {
        let c = col(name);
        let rows = &rows;
        let edges = edges.to_vec();
        move |k: usize| {
            let v = rows[k][c];
            let i = edges.iter().filter(|&&e| v >= e).count();
            match i {
                0 => format!("< {}", edges[0]),
                i if i == edges.len() => format!(">= {}", edges[i - 1]),
                i => format!("{}..{}", edges[i - 1], edges[i]),
            }
        }
    };
    report("cloud cover %", &bucket("cloud_cover", &[20.0, 80.0]));
    report("wind speed km/h", &bucket("wind_speed_10m", &[10.0, 25.0]));
    report(
        "temperature change over 3 h °C",
        &bucket("temperature_2m_diff_3h", &[-1.0, 1.0]),
    );
    let mut corr: Vec<(f64, &String)> = names
        .iter()
        .enumerate()
        .map(|(j, n)| {
            (
                correlation(&rows.iter().map(|r| r[j]).collect::<Vec<_>>(), &errors),
                n,
            )
        })
        .collect();
    corr.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()));
    println!("\nfeatures most correlated with the signed error");
    for (c, n) in corr.iter().take(8) {
        println!("  {n:<32} {c:+.3}");
    }
    Ok(())
}

fn rms(v: &[f64]) -> f64 {
    (v.iter().map(|e| e * e).sum::<f64>() / v.len().max(1) as f64).sqrt()
}

fn correlation(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let cov: f64 = a.iter().zip(b).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = a.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = b.iter().map(|y| (y - mb).powi(2)).sum();
    if va > 0.0 && vb > 0.0 {
        cov / (va * vb).sqrt()
    } else {
        0.0
    }
}

//! Scores every default candidate alone, and every blend's members alone, on a recorded
//! Open-Meteo file (default: the shipped sample), to see what changing a candidate or a
//! feature does.
//!
//!     cargo run --release -p rps-core --example candidates [-- path/to/open-meteo.json]

use rps_core::dataset::Dataset;
use rps_core::observations::RawSeries;
use rps_core::scores::metrics_map;
use rps_core::train::{Candidate, default_candidates, select_and_fit};
use rps_core::transform::regularise::regularise;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "data/sample/open-meteo-archive-sandpoint-ak-2023.json".into());
    let (series, _) = regularise(&[RawSeries::parse(&std::fs::read(&path)?)?], 3)?;
    let set = Dataset::build(&series)?.training_set()?;
    println!("{} rows from {path}", set.rows.len());
    println!(
        "{:<62} {:>8} {:>15} {:>15} {:>8}",
        "candidate", "val RMSE", "h1 RMSE/pers.", "h6 RMSE/pers.", "seconds"
    );
    let mut candidates = default_candidates();
    for c in default_candidates() {
        if let Candidate::Blend { members } = c {
            for m in members {
                if !candidates.contains(&m) {
                    candidates.push(m);
                }
            }
        }
    }
    for c in candidates {
        let started = std::time::Instant::now();
        let t = select_and_fit(&set, std::slice::from_ref(&c), 0.15, 0.15, 42)?;
        let m = metrics_map(&t.holdout);
        println!(
            "{:<62} {:>8.4} {:>7.3}/{:<7.3} {:>7.3}/{:<7.3} {:>8.2}",
            c.describe(),
            t.candidates[0].mean_validation_rmse,
            m["rmse_h1"],
            m["persistence_rmse_h1"],
            m["rmse_h6"],
            m["persistence_rmse_h6"],
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

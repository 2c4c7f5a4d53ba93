//! Live re-calibration replayed on a hold-out: the chosen model's intervals as
//! calibrated at training, against the same intervals re-calibrated hour by hour as
//! verification would (`rps_core::recalibration`): each hour's forecast multiplied by
//! the factor found from the forecasts verified in the 7 days before it.
//!
//!     cargo run --release -p rps-core --example recalibration [-- path [first-day last-day [min-hours]]]

use chrono::{Duration, NaiveDate, NaiveDateTime};
use rps_core::bundle::Interval;
use rps_core::dataset::Dataset;
use rps_core::features::HORIZONS;
use rps_core::observations::RawSeries;
use rps_core::recalibration;
use rps_core::scores::interval_scores;
use rps_core::train::intervals::calibrate;
use rps_core::train::{default_candidates, select_and_fit};
use rps_core::transform::regularise::regularise;

const LEVELS: [f64; 2] = [0.8, 0.95];
/// Verification's window: the last 7 days of target times.
const WINDOW_HOURS: i64 = 168;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .cloned()
        .unwrap_or_else(|| "data/sample/open-meteo-archive-sandpoint-ak-2023.json".into());
    let day = |i: usize| args.get(i).map(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d"));
    let min_hours: usize = args.get(3).map_or(Ok(48), |s| s.parse())?;
    let (mut series, _) = regularise(&[RawSeries::parse(&std::fs::read(&path)?)?], 3)?;
    if let (Some(first), Some(last)) = (day(1).transpose()?, day(2).transpose()?) {
        let at = |d: NaiveDate, h| d.and_hms_opt(h, 0, 0).expect("a time of day");
        series = series.between(at(first, 0), at(last, 23));
    }
    let set = Dataset::build(&series)?.training_set()?;
    let t = select_and_fit(&set, &default_candidates(), 0.15, 0.15, 42)?;
    let calibration = calibrate(&set, &t, &LEVELS, 42)?.ok_or("too little data to calibrate")?;
    let rows = &t.rows.holdout;
    println!(
        "{path}: {}, hold-out {} to {} ({} hours); re-calibrated from {min_hours} verified hours",
        t.chosen.describe(),
        set.times[rows[0]],
        set.times[rows[rows.len() - 1]],
        rows.len()
    );
    println!(
        "\n| horizon | level | coverage as calibrated | re-calibrated | interval score as calibrated | re-calibrated | mean factor |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let raw: Vec<Vec<f64>> = rows.iter().map(|&i| set.rows[i].clone()).collect();
    let z: Vec<Vec<f64>> = raw.iter().map(|r| t.scaler.apply(r)).collect();
    for (k, model) in t.models.iter().enumerate() {
        let h = HORIZONS[k];
        let predicted = model.predict_standardised(&z, &raw);
        let issued: Vec<NaiveDateTime> = rows.iter().map(|&i| set.times[i]).collect();
        let truth: Vec<f64> = rows.iter().map(|&i| set.targets[k][i]).collect();
        let calibrated: Vec<Vec<Interval>> = (0..rows.len())
            .map(|j| calibration.intervals(k, issued[j], &z[j], predicted[j]))
            .collect();
        let mut served = calibrated.clone();
        let mut factors = vec![Vec::new(); LEVELS.len()];
        for j in 0..rows.len() {
            // The verification before this hour's forecast: targets up to the hour
            // before it, within the window.
            let as_of = issued[j] - Duration::hours(1);
            let verified: Vec<usize> = (0..j)
                .filter(|&m| {
                    let target = issued[m] + Duration::hours(i64::from(h));
                    target <= as_of && target > as_of - Duration::hours(WINDOW_HOURS)
                })
                .collect();
            for (l, &level) in LEVELS.iter().enumerate() {
                let mut errors: Vec<f64> = verified
                    .iter()
                    .filter_map(|&m| {
                        let i = calibrated[m].iter().find(|i| i.level == level)?;
                        recalibration::normalised_error(predicted[m], i, 1.0, truth[m])
                    })
                    .collect();
                let factor = recalibration::scale(h, level, &mut errors, min_hours).map_or(1.0, |s| s.scale);
                factors[l].push(factor);
                for i in served[j].iter_mut().filter(|i| i.level == level) {
                    i.lower = predicted[j] - (predicted[j] - i.lower) * factor;
                    i.upper = predicted[j] + (i.upper - predicted[j]) * factor;
                }
            }
        }
        let pair = |ivs: &[Vec<Interval>]| {
            let hours: Vec<(f64, Vec<Interval>)> = truth.iter().copied().zip(ivs.iter().cloned()).collect();
            interval_scores(h, &LEVELS, &hours)
        };
        for ((before, after), f) in pair(&calibrated).iter().zip(pair(&served)).zip(&factors) {
            println!(
                "| {h} h | {:.0}% | {:.1}% | {:.1}% | {:.2} | {:.2} | {:.2} |",
                before.level * 100.0,
                before.coverage * 100.0,
                after.coverage * 100.0,
                before.winkler,
                after.winkler,
                f.iter().sum::<f64>() / f.len() as f64
            );
        }
    }
    Ok(())
}

//! The latency gate's measurement: one prediction as the API makes it (features from a
//! window, then every horizon), timed in-process.

use std::time::{Duration, Instant};

use crate::bundle::ModelBundle;
use crate::features::serving_row;
use crate::observations::HourlySeries;
use crate::stage::StageError;

/// Timed predictions per round.
pub const SAMPLES: usize = 1000;
/// Rounds; the best one counts, so a burst of load elsewhere on the machine does not
/// pass for the model's own cost.
pub const ROUNDS: usize = 3;
/// Untimed predictions before each round.
const WARM_UP: usize = 100;

/// p50 and p99 in milliseconds of the best round.
pub fn measure(bundle: &ModelBundle, windows: &[HourlySeries]) -> Result<(f64, f64), StageError> {
    if windows.is_empty() {
        return Err(StageError::Input(
            "the hold-out has no window of contiguous hours to time predictions on".into(),
        ));
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mut best: Option<(f64, f64)> = None;
    for _ in 0..ROUNDS {
        let mut times = Vec::with_capacity(SAMPLES);
        for k in 0..SAMPLES + WARM_UP {
            let w = &windows[k % windows.len()];
            let t = Instant::now();
            let row = serving_row(w).map_err(|e| StageError::Internal(format!("a latency window: {e}")))?;
            std::hint::black_box(bundle.predict(&row)?);
            if k >= WARM_UP {
                times.push(t.elapsed());
            }
        }
        times.sort();
        let q = |p: f64| times[((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1];
        let round = (ms(q(0.50)), ms(q(0.99)));
        if best.is_none_or(|b| round.1 < b.1) {
            best = Some(round);
        }
    }
    Ok(best.expect("at least one round"))
}

//! Regularise: raw snapshots → one complete hourly series.
//!
//! With polars: stack the snapshots, sort, drop duplicate hours (the newest snapshot
//! wins), and join onto a complete hourly axis so absent hours become explicit nulls.
//! Short gaps are then interpolated; long ones stay missing, and the rows that would
//! need them are left out of the dataset.

use polars::prelude::*;

use crate::dataset::{DatasetError, RegulariseStats, TIME, datetime_column, read_f64, read_times};
use crate::observations::{HourlySeries, KEY_VARIABLES, RawSeries, Variable};

const SNAPSHOT: &str = "_snapshot";

/// The snapshots as one frame: time, key variables and the snapshot's position.
fn stack(snapshots: &[HourlySeries]) -> Result<DataFrame, DatasetError> {
    let mut frames = Vec::with_capacity(snapshots.len());
    for (order, s) in snapshots.iter().enumerate() {
        let mut cols = vec![datetime_column(TIME, s.times().iter().copied())];
        for v in KEY_VARIABLES {
            cols.push(Column::new(v.name().into(), s.column(v)));
        }
        cols.push(Column::new(SNAPSHOT.into(), vec![order as u32; s.len()]));
        frames.push(DataFrame::new_infer_height(cols)?.lazy());
    }
    Ok(concat(frames, UnionArgs::default())?.collect()?)
}

/// Merges snapshots into one complete hourly axis with short gaps filled.
pub fn regularise(
    snapshots: &[RawSeries],
    max_fill_hours: u32,
) -> Result<(HourlySeries, RegulariseStats), DatasetError> {
    let parsed: Vec<HourlySeries> = snapshots
        .iter()
        .map(HourlySeries::from_raw)
        .collect::<Result<_, _>>()?;
    let input_rows = parsed.iter().map(HourlySeries::len).sum();
    let stacked = stack(&parsed)?;
    let deduped = stacked
        .lazy()
        .sort([TIME, SNAPSHOT], SortMultipleOptions::default())
        .unique_stable_generic(Some(vec![col(TIME)]), UniqueKeepStrategy::Last)
        .collect()?;
    let times = read_times(&deduped)?;
    let (Some(first), Some(last)) = (times.first().copied(), times.last().copied()) else {
        return Err(DatasetError::Empty("the snapshots hold no hours".into()));
    };
    let hours = (last - first).num_hours() as usize + 1;
    let axis = DataFrame::new_infer_height(vec![datetime_column(
        TIME,
        (0..hours).map(|h| first + chrono::Duration::hours(h as i64)),
    )])?;
    let full = axis
        .lazy()
        .left_join(deduped.clone().lazy(), col(TIME), col(TIME))
        .sort([TIME], SortMultipleOptions::default())
        .collect()?;

    let mut filled_values = 0;
    let mut columns = Vec::with_capacity(KEY_VARIABLES.len());
    for v in KEY_VARIABLES {
        let mut c = read_f64(&full, v.name())?;
        filled_values += fill_short_gaps(&mut c, max_fill_hours as usize, v == Variable::WindDirection10m);
        columns.push(c);
    }
    let series = HourlySeries::new(read_times(&full)?, columns)?;
    Ok((
        series,
        RegulariseStats {
            input_rows,
            duplicate_hours: input_rows - deduped.height(),
            absent_hours: hours - deduped.height(),
            filled_values,
            hours,
        },
    ))
}

/// Fills runs of at most `max` missing values that have a value on both sides:
/// linearly, or with the previous value for circular quantities (wind direction).
/// Returns how many values were filled.
pub fn fill_short_gaps(col: &mut [Option<f64>], max: usize, hold_previous: bool) -> usize {
    let mut filled = 0;
    let mut i = 0;
    while i < col.len() {
        if col[i].is_some() {
            i += 1;
            continue;
        }
        let start = i;
        while i < col.len() && col[i].is_none() {
            i += 1;
        }
        let len = i - start;
        if start == 0 || i == col.len() || len > max {
            continue;
        }
        let (a, b) = (col[start - 1].unwrap_or_default(), col[i].unwrap_or_default());
        for (k, slot) in col[start..i].iter_mut().enumerate() {
            let frac = (k + 1) as f64 / (len + 1) as f64;
            *slot = Some(if hold_previous { a } else { a + (b - a) * frac });
        }
        filled += len;
    }
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_interior_gaps_are_filled() {
        let mut c = vec![
            None,
            Some(1.0),
            None,
            None,
            Some(4.0),
            None,
            None,
            None,
            None,
            Some(0.0),
            None,
        ];
        let n = fill_short_gaps(&mut c, 3, false);
        assert_eq!(n, 2);
        assert_eq!(
            c,
            vec![
                None,
                Some(1.0),
                Some(2.0),
                Some(3.0),
                Some(4.0),
                None,
                None,
                None,
                None,
                Some(0.0),
                None
            ]
        );
        let mut d = vec![Some(350.0), None, Some(10.0)];
        fill_short_gaps(&mut d, 3, true);
        assert_eq!(d, vec![Some(350.0), Some(350.0), Some(10.0)]);
    }
}

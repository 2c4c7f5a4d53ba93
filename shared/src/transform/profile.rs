//! The data profile: a self-contained HTML report of the processed dataset (per-column
//! statistics and histograms, correlation with the targets, time coverage). Our
//! equivalent of a pandas-profiling report; no scripts, no external assets.

use std::fmt::Write;

use serde::Serialize;

use crate::dataset::{Dataset, DatasetError, RegulariseStats, TIME};
use crate::features::target_name;
use crate::observations::format_time;
use crate::scores::quantile;

const BINS: usize = 20;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnProfile {
    pub name: String,
    pub count: usize,
    pub missing_share: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub std: f64,
    /// 5th, 25th, 50th, 75th and 95th percentiles.
    pub quantiles: [f64; 5],
    pub histogram: Vec<u64>,
    /// Pearson correlation with the 1 h and 6 h targets.
    pub corr_h1: f64,
    pub corr_h6: f64,
}

pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        cov += (x - ma) * (y - mb);
        va += (x - ma) * (x - ma);
        vb += (y - mb) * (y - mb);
    }
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

fn profile_column(name: &str, raw: &[Option<f64>], h1: &[f64], h6: &[f64]) -> ColumnProfile {
    let vals: Vec<f64> = raw.iter().flatten().copied().filter(|x| x.is_finite()).collect();
    let mut sorted = vals.clone();
    sorted.sort_by(f64::total_cmp);
    let n = vals.len() as f64;
    let mean = vals.iter().sum::<f64>() / n;
    let std = (vals.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    let (min, max) = (
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN),
    );
    let mut histogram = vec![0u64; BINS];
    let width = (max - min) / BINS as f64;
    for x in &vals {
        let b = if width > 0.0 {
            ((x - min) / width) as usize
        } else {
            0
        };
        histogram[b.min(BINS - 1)] += 1;
    }
    let complete = vals.len() == raw.len();
    ColumnProfile {
        name: name.to_owned(),
        count: vals.len(),
        missing_share: 1.0 - n / raw.len().max(1) as f64,
        min,
        max,
        mean,
        std,
        quantiles: [0.05, 0.25, 0.5, 0.75, 0.95].map(|q| quantile(&sorted, q)),
        histogram,
        corr_h1: if complete { pearson(&vals, h1) } else { f64::NAN },
        corr_h6: if complete { pearson(&vals, h6) } else { f64::NAN },
    }
}

/// Profiles every numeric column of the dataset.
pub fn profile_columns(ds: &Dataset) -> Result<Vec<ColumnProfile>, DatasetError> {
    let h1 = ds.column(&target_name(1))?;
    let h6 = ds.column(&target_name(6))?;
    ds.column_names()
        .iter()
        .filter(|n| *n != TIME)
        .map(|n| {
            let raw: Vec<Option<f64>> = ds.column(n)?.into_iter().map(Some).collect();
            Ok(profile_column(n, &raw, &h1, &h6))
        })
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn num(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else if x.abs() >= 1000.0 || x == x.trunc() {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

fn svg_histogram(counts: &[u64]) -> String {
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let (w, h) = (160.0, 36.0);
    let bw = w / counts.len() as f64;
    let mut s = format!(r#"<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">"#);
    for (i, c) in counts.iter().enumerate() {
        let bh = (*c as f64 / max * h).max(if *c > 0 { 1.0 } else { 0.0 });
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}"><title>{c}</title></rect>"#,
            i as f64 * bw,
            h - bh,
            (bw - 1.0).max(1.0)
        );
    }
    s.push_str("</svg>");
    s
}

/// What the report says about the dataset as a whole.
pub struct ProfileContext<'a> {
    pub data_version: &'a str,
    pub stats: &'a RegulariseStats,
    pub snapshots: &'a [String],
}

/// Renders the HTML report.
pub fn render_html(ds: &Dataset, ctx: &ProfileContext<'_>) -> Result<String, DatasetError> {
    let cols = profile_columns(ds)?;
    let times = ds.times()?;
    let (first, last) = (times.first().copied(), times.last().copied());
    let span_hours = match (first, last) {
        (Some(a), Some(b)) => (b - a).num_hours() + 1,
        _ => 0,
    };
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>rps data profile {version}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24}}
table{{border-collapse:collapse;font-size:.85rem}}td,th{{padding:.25rem .5rem;border-bottom:1px solid #ddd;text-align:right}}
th{{background:#f4f6f8;position:sticky;top:0}}td:first-child,th:first-child{{text-align:left;font-family:monospace}}
svg rect{{fill:#3b7dd8}}.bar{{display:inline-block;height:.7rem;background:#d83b3b}}.pos{{background:#3b7dd8}}
dl{{display:grid;grid-template-columns:max-content auto;gap:.2rem 1rem}}dt{{font-weight:600}}
</style></head><body>
<h1>Data profile</h1>
<dl>
<dt>Data version (md5)</dt><dd><code>{version}</code></dd>
<dt>Rows</dt><dd>{rows}</dd>
<dt>Columns</dt><dd>{ncols}</dd>
<dt>Time coverage (UTC)</dt><dd>{first} → {last} ({span} h spanned, {rows} rows with complete features and targets, {cover:.1}% coverage)</dd>
<dt>Raw hours merged</dt><dd>{input} from {nsnap} snapshot(s); {dups} duplicate hour(s) dropped; {absent} absent hour(s); {filled} value(s) interpolated</dd>
<dt>Snapshots</dt><dd>{snapshots}</dd>
</dl>
"#,
        version = esc(ctx.data_version),
        rows = ds.rows(),
        ncols = cols.len() + 1,
        first = first.map(format_time).unwrap_or_default(),
        last = last.map(format_time).unwrap_or_default(),
        span = span_hours,
        cover = 100.0 * ds.rows() as f64 / span_hours.max(1) as f64,
        input = ctx.stats.input_rows,
        nsnap = ctx.snapshots.len(),
        dups = ctx.stats.duplicate_hours,
        absent = ctx.stats.absent_hours,
        filled = ctx.stats.filled_values,
        snapshots = ctx
            .snapshots
            .iter()
            .map(|s| format!("<code>{}</code>", esc(s)))
            .collect::<Vec<_>>()
            .join("<br>"),
    );

    html.push_str("<h2>Correlation with the target</h2><p>Pearson correlation of each column with the temperature 1 h and 6 h ahead, strongest first.</p><table><tr><th>column</th><th>r (1 h)</th><th></th><th>r (6 h)</th></tr>");
    let mut by_corr: Vec<&ColumnProfile> = cols.iter().filter(|c| !c.corr_h1.is_nan()).collect();
    by_corr.sort_by(|a, b| b.corr_h1.abs().total_cmp(&a.corr_h1.abs()));
    for c in by_corr {
        let _ = write!(
            html,
            r#"<tr><td>{}</td><td>{:.3}</td><td style="text-align:left"><span class="bar{}" style="width:{:.0}px"></span></td><td>{:.3}</td></tr>"#,
            esc(&c.name),
            c.corr_h1,
            if c.corr_h1 >= 0.0 { " pos" } else { "" },
            c.corr_h1.abs() * 120.0,
            c.corr_h6
        );
    }
    html.push_str("</table>");

    html.push_str("<h2>Columns</h2><table><tr><th>column</th><th>count</th><th>missing</th><th>min</th><th>p5</th><th>p25</th><th>median</th><th>p75</th><th>p95</th><th>max</th><th>mean</th><th>std</th><th>histogram</th></tr>");
    for c in &cols {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{:.2}%</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            c.count,
            c.missing_share * 100.0,
            num(c.min),
            num(c.quantiles[0]),
            num(c.quantiles[1]),
            num(c.quantiles[2]),
            num(c.quantiles[3]),
            num(c.quantiles[4]),
            num(c.max),
            num(c.mean),
            num(c.std),
            svg_histogram(&c.histogram)
        );
    }
    html.push_str("</table></body></html>\n");
    Ok(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_correlation() {
        let s = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&s, 0.5), 3.0);
        assert_eq!(quantile(&s, 0.25), 2.0);
        assert!((pearson(&s, &[2.0, 4.0, 6.0, 8.0, 10.0]) - 1.0).abs() < 1e-12);
        assert_eq!(pearson(&s, &[1.0; 5]), 0.0);
    }

    #[test]
    fn constant_and_missing_columns_profile_without_panicking() {
        let p = profile_column(
            "c",
            &[Some(1.0), None, Some(1.0)],
            &[1.0, 2.0, 3.0],
            &[1.0, 2.0, 3.0],
        );
        assert_eq!(p.count, 2);
        assert!((p.missing_share - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(p.histogram.iter().sum::<u64>(), 2);
        assert!(p.corr_h1.is_nan());
    }
}

//! The report's chart: RMSE by horizon for the candidate, production and persistence,
//! as a PNG drawn with plotters and a compiled-in font (the same on Lambda and laptops).

use super::report::{GateReport, Side};
use crate::scores::HorizonScore;

/// The chart: RMSE by horizon for the candidate, production and persistence.
pub fn error_chart_png(report: &GateReport) -> Result<Vec<u8>, String> {
    use plotters::prelude::*;

    static FONT: std::sync::Once = std::sync::Once::new();
    FONT.call_once(|| {
        // A font compiled in: the chart renders the same on Lambda and laptops.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });

    let (w, h) = (800u32, 450u32);
    let mut buf = vec![0u8; (w * h * 3) as usize];
    type Series = (String, RGBColor, Vec<(f64, f64)>);
    let series: Vec<Series> = {
        let mut v = Vec::new();
        let pts = |side: &Side, pick: &dyn Fn(&HorizonScore) -> f64| -> Vec<(f64, f64)> {
            side.scores.iter().map(|s| (s.horizon as f64, pick(s))).collect()
        };
        v.push((
            format!("candidate v{}", report.candidate.version),
            RGBColor(0x1f, 0x77, 0xb4),
            pts(&report.candidate, &|s| s.rmse),
        ));
        if let Some(p) = &report.production {
            v.push((
                format!("production v{}", p.version),
                RGBColor(0xd6, 0x27, 0x28),
                pts(p, &|s| s.rmse),
            ));
        }
        v.push((
            "persistence".to_owned(),
            RGBColor(0x7f, 0x7f, 0x7f),
            pts(&report.candidate, &|s| s.persistence_rmse),
        ));
        v
    };
    let y_max = series
        .iter()
        .flat_map(|(_, _, p)| p.iter().map(|(_, y)| *y))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max)
        .max(0.1)
        * 1.15;
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let title = format!(
            "{}: RMSE by horizon on {} hold-out rows",
            report.model_name, report.holdout.rows
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(55)
            .build_cartesian_2d(0.5f64..6.5f64, 0f64..y_max)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("horizon (hours ahead)")
            .y_desc("RMSE (°C)")
            .x_labels(6)
            .x_label_formatter(&|x| format!("{x:.0} h"))
            .y_label_formatter(&|y| format!("{y:.1}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (name, color, points) in &series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            chart
                .draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    encode_png(&buf, w, h)
}

fn encode_png(rgb: &[u8], w: u32, h: u32) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

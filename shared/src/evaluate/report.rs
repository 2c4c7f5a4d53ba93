//! The report's format is a record other stages read: [`crate::records::gate_report`].

pub use crate::records::gate_report::{GateReport, Holdout, REPORT_FORMAT, Side};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{BUNDLE_FORMAT_VERSION, ModelSchema};
    use crate::evaluate::gates::{self, Contract, Gate};
    use crate::observations::{TimeWindow, parse_time};
    use crate::scores::HorizonScore;

    fn side(version: &str, rmse: f64) -> Side {
        Side {
            version: version.into(),
            aliases: vec![],
            run_id: Some(format!("run{version}")),
            data_version: Some("0123456789abcdef0123456789abcdef".into()),
            git_commit: Some("a".repeat(40)),
            algorithm: Some("ridge(alpha=1)".into()),
            training_window: None,
            contract: Contract::of(BUNDLE_FORMAT_VERSION, &ModelSchema::current()),
            scores: (1..=6)
                .map(|h| HorizonScore {
                    horizon: h,
                    rows: 100,
                    rmse: rmse * h as f64,
                    mae: 0.0,
                    r2: 0.9,
                    persistence_rmse: 0.25 * h as f64,
                    persistence_mae: 0.0,
                    seasonal_naive_rmse: 3.0,
                    seasonal_naive_mae: 0.0,
                })
                .collect(),
            intervals: (1..=6)
                .map(|h| crate::scores::IntervalScore {
                    horizon: h,
                    level: 0.8,
                    coverage: 0.8,
                    width: (rmse * 10.0).round(),
                    winkler: (rmse * 10.0).round() * f64::from(h),
                    hours: 100,
                })
                .collect(),
            latency_p50_ms: Some(0.02),
            latency_p99_ms: Some(0.05),
        }
    }

    fn report() -> GateReport {
        let t = parse_time("2023-11-01T00:00").unwrap();
        let w = TimeWindow { start: t, end: t };
        let mut r = GateReport::new(
            "m".into(),
            Holdout {
                data_version: "d".into(),
                dataset_window: w,
                window: w,
                rows: 100,
                note: None,
            },
            side("2", 0.2),
            Some(side("1", 0.3)),
        );
        let cfg = crate::config::Config::from_map(&Default::default())
            .unwrap()
            .gates;
        r.gates.push(gates::accuracy(&r.candidate.scores, &cfg));
        r
    }

    #[test]
    fn a_report_passes_only_with_every_gate_present_and_none_failed() {
        let incomplete = report().seal();
        assert!(!incomplete.passed, "a missing gate is not a pass");
        let mut r = report();
        let cfg = crate::config::Config::from_map(&Default::default())
            .unwrap()
            .gates;
        let (schema, _) = gates::schema(&r.candidate.contract, None);
        r.gates.push(schema);
        r.gates
            .push(gates::no_regression(&r.candidate.scores, None, &cfg));
        let prod = r.production.as_ref().map(|p| p.intervals.as_slice());
        r.gates.push(gates::intervals(&r.candidate.intervals, prod, &cfg));
        r.gates.push(gates::skill(&r.candidate.scores, &cfg));
        r.gates.push(gates::latency(0.05, 1000, &cfg));
        r.gates.push(gates::smoke(None, &[]));
        let r = r.seal();
        assert!(r.passed, "{:?}", r.failed_gates);
        let mut failing = r.clone();
        failing.gates.push(gates::latency(50.0, 1000, &cfg));
        let failing = failing.seal();
        assert!(!failing.passed);
        assert_eq!(failing.failed_gates, [Gate::Latency]);
        let md = failing.to_markdown(Some("chart.png"));
        assert!(md.contains("❌ **refused**: failed latency"), "{md}");
        assert!(md.contains("| 6 h | 1.200 | 1.800 | -33.3% | 1.500 |"), "{md}");
        assert!(md.contains("![error by horizon](chart.png)"));
        // The intervals, the candidate's beside production's.
        assert!(
            md.contains("| 6 h | 80% | 80.0% | 80.0% | 2.00 | 12.000 | 18.000 | -33.3% |"),
            "{md}"
        );
        let back: GateReport = serde_json::from_str(&serde_json::to_string(&failing).unwrap()).unwrap();
        assert_eq!(back, failing);
    }

    #[test]
    fn the_chart_is_a_png_of_the_expected_size() {
        let png = crate::evaluate::chart::error_chart_png(&report()).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, right after the signature and chunk header.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 800);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 450);
        let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../test-output");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("gate-chart.png"), &png).unwrap();
    }
}

//! Every name rps writes into a registry or a tracking server, in one place: the
//! `rps.*` tags on model versions and runs, and the aliases that mean something.
//!
//! This module depends on nothing else in the crate, so any layer may use it.

/// Aliases with a meaning in rps, and MLflow's reserved alias names.
pub mod aliases {
    /// Set by training on every new version.
    pub const CANDIDATE: &str = "candidate";
    /// What the staging deployment serves; set by the release flow.
    pub const STAGING: &str = "staging";
    /// What production serves; moved only by a promotion whose gates passed.
    pub const PRODUCTION: &str = "production";
    /// The version production replaced; rollback goes back to it.
    pub const PREVIOUS: &str = "previous";

    /// The aliases one deployment moves, named after the alias it serves
    /// (`RPS_MODEL_ALIAS`): production's are `candidate`, `production` and `previous`; any
    /// other deployment (staging) has its own `<alias>-candidate` and `<alias>-previous`,
    /// so two stacks on one registered model never move each other's aliases.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Family {
        /// What the deployment serves, gates against and promotes to.
        pub served: String,
        /// Set by the deployment's training on every new version.
        pub candidate: String,
        /// The version `served` replaced; rollback goes back to it.
        pub previous: String,
        /// The legacy MLflow stage a promotion mirrors (`Production`, `Staging`, or none).
        pub stage: Option<&'static str>,
    }

    impl Family {
        pub fn of(served: &str) -> Self {
            if served == PRODUCTION {
                return Self {
                    served: PRODUCTION.into(),
                    candidate: CANDIDATE.into(),
                    previous: PREVIOUS.into(),
                    stage: Some("Production"),
                };
            }
            Self {
                served: served.into(),
                candidate: format!("{served}-candidate"),
                previous: format!("{served}-previous"),
                stage: (served == STAGING).then_some("Staging"),
            }
        }
    }

    /// Alias names MLflow reserves (`latest`, `v<N>`): none can be set.
    pub fn is_reserved(alias: &str) -> bool {
        let a = alias.to_ascii_lowercase();
        a == "latest" || (a.len() > 1 && a.starts_with('v') && a[1..].chars().all(|c| c.is_ascii_digit()))
    }

    /// An alias rps accepts: letters, digits, `-` and `_`, not reserved.
    pub fn is_valid(alias: &str) -> bool {
        !alias.is_empty()
            && alias
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !is_reserved(alias)
    }
}

/// Tags on every registered model version (written by training).
pub mod version {
    pub const BUNDLE_SHA256: &str = "rps.bundle_sha256";
    pub const DATA_VERSION: &str = "rps.data_version";
    pub const GIT_COMMIT: &str = "rps.git_commit";
    pub const RUN_ID: &str = "rps.run_id";
    pub const ALGORITHM: &str = "rps.algorithm";
    pub const TRAINED_AT: &str = "rps.trained_at";
    /// The place the version forecasts: its site id and coordinates
    /// (written by training, read when a version is added: `fleet::version_tags`).
    pub const SITE: &str = "rps.location";
    pub const LATITUDE: &str = "rps.latitude";
    pub const LONGITUDE: &str = "rps.longitude";
    /// Set when training registered the version but could not finish (no
    /// `@candidate`): `incomplete: <why>`.
    pub const REGISTRATION: &str = "rps.registration";
    /// The version's monitoring run: its live scores, logged by every verification.
    pub const MONITORING_RUN: &str = "rps.monitoring_run";
    /// Headline metrics copied onto the version as `rps.<metric>`, so listings need no
    /// extra requests.
    pub const HEADLINE_METRICS: [&str; 4] = ["rmse_h1", "rmse_h6", "persistence_rmse_h6", "skill_h6"];

    /// The tag that holds a headline metric.
    pub fn metric(name: &str) -> String {
        format!("rps.{name}")
    }
}

/// Tags the promotion gates, promotion and rollback write on versions.
pub mod promotion {
    pub const GATE_STATUS: &str = "rps.gate_status";
    pub const GATE_FAILURES: &str = "rps.gate_failures";
    pub const GATE_REPORT: &str = "rps.gate_report";
    pub const GATE_CHECKED_AT: &str = "rps.gate_checked_at";
    pub const PROMOTED_AT: &str = "rps.promoted_at";
    pub const PROMOTED_BY: &str = "rps.promoted_by";
    pub const PROMOTION_REPORT: &str = "rps.promotion_report";
    pub const REPLACED_VERSION: &str = "rps.replaced_version";
    pub const REPLACED_BY: &str = "rps.replaced_by";
    pub const REPLACED_AT: &str = "rps.replaced_at";
    pub const ROLLED_BACK_AT: &str = "rps.rolled_back_at";
    pub const ROLLED_BACK_BY: &str = "rps.rolled_back_by";
    pub const RESTORED_AT: &str = "rps.restored_at";
    pub const RESTORED_BY: &str = "rps.restored_by";
    /// The value of [`REPLACED_VERSION`] when there was no production before.
    pub const NONE: &str = "none";
}

/// Tags on tracking runs.
pub mod run {
    /// MLflow's own tag for the source commit (shown in its UI).
    pub const GIT_COMMIT: &str = "mlflow.source.git.commit";
    pub const DATA_VERSION: &str = super::version::DATA_VERSION;
    pub const DATASET: &str = "rps.dataset";
    pub const RAW_SNAPSHOTS: &str = "rps.raw_snapshots";
    pub const DATA_WINDOW_START: &str = "rps.data_window_start";
    pub const DATA_WINDOW_END: &str = "rps.data_window_end";
    pub const MODEL_NAME: &str = "rps.model_name";
    pub const MODEL_VERSION: &str = "rps.model_version";
    pub const STAGE: &str = "rps.stage";
    pub const ALGORITHM: &str = super::version::ALGORITHM;
    pub const BUNDLE_SHA256: &str = super::version::BUNDLE_SHA256;
    pub const BUNDLE_KEY: &str = "rps.bundle_key";
    /// MLflow's own tag for a parent run (a monitoring run's training run).
    pub const PARENT_RUN: &str = "mlflow.parentRunId";
    /// What started a retraining run (`live_skill`, `drift`), and the trigger's id.
    pub const TRIGGER: &str = "rps.trigger";
    pub const TRIGGER_ID: &str = "rps.trigger_id";
    /// The newest gate report logged to the run, and its verdict.
    pub const GATE_REPORT: &str = "rps.gate_report";
    pub const GATES: &str = "rps.gates";
}

#[cfg(test)]
mod tests {
    use super::aliases;

    #[test]
    fn reserved_aliases_are_recognised() {
        for a in ["latest", "LATEST", "v1", "V23"] {
            assert!(aliases::is_reserved(a), "{a}");
            assert!(!aliases::is_valid(a), "{a}");
        }
        for a in ["production", "candidate", "v", "vx1", "previous"] {
            assert!(!aliases::is_reserved(a), "{a}");
            assert!(aliases::is_valid(a), "{a}");
        }
        assert!(!aliases::is_valid("pro duction"));
        assert!(!aliases::is_valid(""));
    }

    #[test]
    fn each_deployment_moves_only_its_own_aliases() {
        let prod = aliases::Family::of("production");
        assert_eq!(
            (
                prod.served.as_str(),
                prod.candidate.as_str(),
                prod.previous.as_str(),
                prod.stage
            ),
            ("production", "candidate", "previous", Some("Production"))
        );
        let staging = aliases::Family::of("staging");
        assert_eq!(
            (
                staging.served.as_str(),
                staging.candidate.as_str(),
                staging.previous.as_str(),
                staging.stage
            ),
            (
                "staging",
                "staging-candidate",
                "staging-previous",
                Some("Staging")
            )
        );
        let mine = aliases::Family::of("eu-west");
        assert_eq!(mine.stage, None);
        for f in [&prod, &staging, &mine] {
            for a in [&f.served, &f.candidate, &f.previous] {
                assert!(aliases::is_valid(a), "{a}");
            }
        }
        let names = |f: &aliases::Family| [f.served.clone(), f.candidate.clone(), f.previous.clone()];
        assert!(names(&prod).iter().all(|a| !names(&staging).contains(a)));
    }
}

use super::*;

fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::from_map(&map)
}

#[test]
fn defaults_are_the_embedded_local_setup() {
    let c = config(&[]).unwrap();
    assert_eq!(
        c.store,
        StoreLocation::Local {
            path: PathBuf::from(DEFAULT_STORE)
        }
    );
    assert_eq!(c.source.archive_url.as_str(), DEFAULT_ARCHIVE_URL);
    assert_eq!(c.source.forecast_url.as_str(), DEFAULT_FORECAST_URL);
    assert_eq!(c.quality.max_null_share, 0.01);
    assert_eq!(c.registry.model_name, DEFAULT_MODEL_NAME);
    assert_eq!(c.mlflow, None);
}

#[test]
fn mlflow_auth_follows_the_standard_variables() {
    let c = config(&[
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        ("MLFLOW_TRACKING_USERNAME", "ada"),
        ("MLFLOW_TRACKING_PASSWORD", "s3cret"),
        ("MLFLOW_TRACKING_TOKEN", "tok"),
    ])
    .unwrap();
    let m = c.mlflow.as_ref().unwrap();
    assert!(matches!(&m.auth, MlflowAuth::Basic { username, .. } if username == "ada"));
    assert_eq!(m.experiment, DEFAULT_EXPERIMENT);
    let c = config(&[
        ("MLFLOW_TRACKING_URI", "https://dagshub.com/u/r.mlflow"),
        ("MLFLOW_TRACKING_TOKEN", "tok"),
    ])
    .unwrap();
    assert!(matches!(c.mlflow.unwrap().auth, MlflowAuth::Bearer { .. }));
    // What every CI job used to set (a user name and a token): MLflow's client sends
    // the token as a Bearer token and ignores the user name; so does rps, and says so.
    let c = config(&[
        ("MLFLOW_TRACKING_URI", "https://dagshub.com/u/r.mlflow"),
        ("MLFLOW_TRACKING_USERNAME", "ada"),
        ("MLFLOW_TRACKING_TOKEN", "tok"),
    ])
    .unwrap();
    let m = c.mlflow.unwrap();
    assert!(matches!(&m.auth, MlflowAuth::Bearer { token } if token.expose() == "tok"));
    assert_eq!(
        m.auth_from,
        "bearer: MLFLOW_TRACKING_TOKEN; MLFLOW_TRACKING_USERNAME is ignored without \
         MLFLOW_TRACKING_PASSWORD, as MLflow's client ignores it"
    );
    // DagsHub's documented form: the token as the password.
    let c = config(&[
        ("MLFLOW_TRACKING_URI", "https://dagshub.com/u/r.mlflow"),
        ("MLFLOW_TRACKING_USERNAME", "ada"),
        ("MLFLOW_TRACKING_PASSWORD", "tok"),
    ])
    .unwrap();
    let m = c.mlflow.unwrap();
    assert!(
        matches!(&m.auth, MlflowAuth::Basic { username, password } if username == "ada" && password.expose() == "tok")
    );
    assert_eq!(
        m.auth_from,
        "basic: MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD"
    );
    // A user name alone is no credential (MLflow ignores it too): no auth, said so.
    let c = config(&[
        ("MLFLOW_TRACKING_URI", "http://x"),
        ("MLFLOW_TRACKING_USERNAME", "ada"),
    ])
    .unwrap();
    let m = c.mlflow.unwrap();
    assert_eq!(m.auth, MlflowAuth::None);
    assert!(
        m.auth_from
            .starts_with("none: no credentials are set; MLFLOW_TRACKING_USERNAME is ignored"),
        "{}",
        m.auth_from
    );
    let err = config(&[("MLFLOW_TRACKING_URI", "databricks")]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("MLFLOW_TRACKING_URI=\"databricks\" is invalid"),
        "{err}"
    );
}

#[test]
fn credentials_in_the_tracking_uri_become_basic_auth_and_never_show() {
    let c = config(&[(
        "MLFLOW_TRACKING_URI",
        "https://ada:tok-in-uri-42@dagshub.com/ada/repo.mlflow",
    )])
    .unwrap();
    let m = c.mlflow.as_ref().unwrap();
    assert_eq!(m.tracking_uri.as_str(), "https://dagshub.com/ada/repo.mlflow");
    assert!(
        matches!(&m.auth, MlflowAuth::Basic { username, password } if username == "ada" && password.expose() == "tok-in-uri-42")
    );
    assert!(!format!("{c:?}").contains("tok-in-uri-42"));
    assert!(!serde_json::to_string(&c).unwrap().contains("tok-in-uri-42"));
    let c = config(&[("MLFLOW_TRACKING_URI", "https://ada:a%2Bb+c%40d@h.example/")]).unwrap();
    assert!(
        matches!(&c.mlflow.unwrap().auth, MlflowAuth::Basic { password, .. } if password.expose() == "a+b+c@d")
    );
    // A token alone in the user part is a bearer token.
    let c = config(&[("MLFLOW_TRACKING_URI", "https://tok-only-42@dagshub.com/r.mlflow")]).unwrap();
    assert!(
        matches!(&c.mlflow.unwrap().auth, MlflowAuth::Bearer { token } if token.expose() == "tok-only-42")
    );
    // The standard variables win over the URI's user part.
    let c = config(&[
        ("MLFLOW_TRACKING_URI", "https://x:y@h.example/"),
        ("MLFLOW_TRACKING_TOKEN", "tok-var"),
    ])
    .unwrap();
    assert!(matches!(&c.mlflow.unwrap().auth, MlflowAuth::Bearer { token } if token.expose() == "tok-var"));
    // An invalid value is quoted without its credentials.
    let err = config(&[("MLFLOW_TRACKING_URI", "ftp://ada:tok-in-uri-42@h.example/")]).unwrap_err();
    assert!(!err.to_string().contains("tok-in-uri-42"), "{err}");
    assert!(err.to_string().contains("MLFLOW_TRACKING_URI"), "{err}");
}

#[test]
fn secrets_never_appear_in_debug_or_json() {
    let c = config(&[
        ("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000"),
        ("MLFLOW_TRACKING_USERNAME", "ada"),
        ("MLFLOW_TRACKING_PASSWORD", "hunter2-password"),
    ])
    .unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));
    let c = config(&[
        ("MLFLOW_TRACKING_URI", "http://x"),
        ("MLFLOW_TRACKING_TOKEN", "tok-very-secret"),
    ])
    .unwrap();
    assert!(!format!("{c:?}").contains("very-secret"));
    assert!(!serde_json::to_string(&c).unwrap().contains("very-secret"));
}

#[test]
fn invalid_values_name_the_variable_and_the_expectation() {
    let err = config(&[("RPS_LATITUDE", "91")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "RPS_LATITUDE=\"91\" is invalid: expected a latitude in degrees between -90 and 90"
    );
    let err = config(&[("OPEN_METEO_ARCHIVE_URL", "archive-api.open-meteo.com")]).unwrap_err();
    assert!(err.to_string().starts_with("OPEN_METEO_ARCHIVE_URL="), "{err}");
    let err = config(&[("RPS_STORE", "gs://bucket/x")]).unwrap_err();
    assert!(err.to_string().contains("RPS_STORE"), "{err}");
    let err = config(&[("RPS_MAX_NULL_SHARE", "5%")]).unwrap_err();
    assert!(err.to_string().contains("RPS_MAX_NULL_SHARE"), "{err}");
    let err = config(&[("RPS_MODEL_NAME", "my model")]).unwrap_err();
    assert!(err.to_string().contains("RPS_MODEL_NAME"), "{err}");
}

#[test]
fn interval_levels_are_between_0_and_1_each_once() {
    let c = config(&[]).unwrap();
    assert_eq!(c.train.interval_levels.as_slice(), [0.8, 0.95]);
    let c = config(&[("RPS_INTERVAL_LEVELS", "0.95, 0.5")]).unwrap();
    assert_eq!(c.train.interval_levels.as_slice(), [0.5, 0.95], "sorted");
    for bad in ["1", "0", "1.2", "0.8,0.8", "0.8,,0.9", "80%", "-0.5"] {
        let err = config(&[("RPS_INTERVAL_LEVELS", bad)]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("RPS_INTERVAL_LEVELS=\"{bad}\" is invalid")),
            "{bad}: {err}"
        );
    }
}

#[test]
fn empty_variables_count_as_unset() {
    let c = config(&[("RPS_LATITUDE", ""), ("RPS_STORE", "  ")]).unwrap();
    assert_eq!(c.location.latitude.get(), DEFAULT_LATITUDE);
}

#[test]
fn defaults_match_the_documented_table() {
    let c = config(&[]).unwrap();
    assert_eq!(
        c.source.archive_url.as_str(),
        vars::OPEN_METEO_ARCHIVE_URL.default.unwrap()
    );
    assert_eq!(
        c.location.latitude.get().to_string(),
        vars::RPS_LATITUDE.default.unwrap()
    );
    assert_eq!(c.registry.model_name, vars::RPS_MODEL_NAME.default.unwrap());
    assert_eq!(c.s3.multipart_threshold, 16 << 20);
    assert_eq!(c.serve.port, 8080);
    assert!(!c.serve.emf);
    let names: std::collections::HashSet<_> = vars::ALL.iter().map(|v| v.name).collect();
    assert_eq!(names.len(), vars::ALL.len(), "a variable is listed twice");
    let table = vars::markdown_table();
    assert_eq!(table.lines().count(), vars::ALL.len() + 2);
}

#[test]
fn provenance_and_lambda_come_from_the_environment() {
    let c = config(&[
        ("GITHUB_SHA", "abc"),
        ("GITHUB_ACTOR", "octocat"),
        ("GITHUB_RUN_ID", "7"),
        ("AWS_LAMBDA_FUNCTION_NAME", "rps-api"),
        ("RPS_S3_MULTIPART_THRESHOLD_MB", "5"),
    ])
    .unwrap();
    assert_eq!(c.provenance.git_commit.as_deref(), Some("abc"));
    assert_eq!(c.provenance.actor, "octocat (GitHub Actions run 7)");
    assert!(c.serve.emf);
    assert_eq!(c.s3.multipart_threshold, 5 << 20);
    let err = config(&[("RPS_S3_MULTIPART_THRESHOLD_MB", "4")]).unwrap_err();
    assert!(err.to_string().contains("RPS_S3_MULTIPART_THRESHOLD_MB"), "{err}");
    let c = config(&[("RPS_GIT_COMMIT", "def"), ("GITHUB_SHA", "abc"), ("USER", "ada")]).unwrap();
    assert_eq!(c.provenance.git_commit.as_deref(), Some("def"));
    assert_eq!(c.provenance.actor, "ada (rps CLI)");
}

#[test]
fn s3_store_urls_parse_into_bucket_and_prefix() {
    let c = config(&[("RPS_STORE", "s3://my-bucket/rps/prod/")]).unwrap();
    assert_eq!(
        c.store,
        StoreLocation::S3 {
            bucket: "my-bucket".into(),
            prefix: "rps/prod".into()
        }
    );
    assert_eq!(c.store.to_string(), "s3://my-bucket/rps/prod");
    assert_eq!(c.dvc_remote.to_string(), "s3://my-bucket/rps/prod/dvc");
    assert!(config(&[("RPS_STORE", "s3://A_B/x")]).is_err());
}

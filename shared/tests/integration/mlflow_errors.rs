//! Unit tests of the MLflow client's error mapping and retries, against a scripted
//! local HTTP stub (no MLflow needed).

use std::time::Duration;

use rps_core::config::{MlflowAuth, Secret};
use rps_core::mlflow::{MlflowClient, MlflowError};
use testkit::stub::{Reply, Stub};

fn client(stub: &Stub, timeout: Duration, auth: MlflowAuth) -> MlflowClient {
    testkit::mlflow::client_with(&stub.url(), auth, timeout)
}

#[tokio::test]
async fn a_400_quotes_mlflows_error_code_and_message() {
    let _turn = testkit::turn(module_path!());
    let stub = Stub::start(vec![Reply::new(400, r#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "Invalid value 'x' for parameter 'max_results'"}"#)]).await;
    let err = client(&stub, Duration::from_secs(5), MlflowAuth::None)
        .search_model_versions("m")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MlflowError::Api { status: 400, .. }), "{msg}");
    assert!(
        msg.contains("INVALID_PARAMETER_VALUE")
            && msg.contains("Invalid value 'x' for parameter 'max_results'"),
        "{msg}"
    );
    assert_eq!(stub.hits(), 1, "4xx is not retried");
}

#[tokio::test]
async fn a_plain_text_401_says_the_credentials_were_refused() {
    let _turn = testkit::turn(module_path!());
    let stub = Stub::start(vec![Reply::text(401, "You are not authenticated.")]).await;
    let c = client(
        &stub,
        Duration::from_secs(5),
        MlflowAuth::Bearer {
            token: Secret::new("tok-123"),
        },
    );
    let err = c.get_experiment_by_name("e").await.unwrap_err();
    assert!(matches!(err, MlflowError::Unauthorized { .. }), "{err}");
    assert!(err.to_string().contains("refused the credentials"));
    // The token was sent as a bearer token.
    let auth = stub.requests()[0]
        .headers
        .iter()
        .find(|(k, _)| k == "authorization")
        .map(|(_, v)| v.clone());
    assert_eq!(auth.as_deref(), Some("Bearer tok-123"));
}

#[tokio::test]
async fn basic_auth_is_preferred_and_posts_are_json() {
    let _turn = testkit::turn(module_path!());
    let stub = Stub::start(vec![Reply::new(200, r#"{"experiment_id": "4"}"#)]).await;
    let c = client(
        &stub,
        Duration::from_secs(5),
        MlflowAuth::Basic {
            username: "ada".into(),
            password: Secret::new("pw"),
        },
    );
    assert_eq!(c.create_experiment("e").await.unwrap(), "4");
    let req = &stub.requests()[0];
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("authorization").as_deref(), Some("Basic YWRhOnB3"));
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(req.uri, "/api/2.0/mlflow/experiments/create");
}

#[tokio::test]
async fn a_500_then_success_is_retried() {
    let _turn = testkit::turn(module_path!());
    let stub = Stub::start(vec![
        Reply::text(500, "boom"),
        Reply::new(200, r#"{"experiment": {"experiment_id": "1", "name": "e"}}"#),
    ])
    .await;
    let got = client(&stub, Duration::from_secs(5), MlflowAuth::None)
        .get_experiment_by_name("e")
        .await
        .unwrap();
    assert_eq!(got.unwrap().experiment_id, "1");
    assert_eq!(stub.hits(), 2);
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_bounded_attempts() {
    let _turn = testkit::turn(module_path!());
    let stub = Stub::start(vec![Reply::text(503, "down")]).await;
    let err = client(&stub, Duration::from_secs(5), MlflowAuth::None)
        .get_registered_model("m")
        .await
        .unwrap_err();
    assert!(
        matches!(err, MlflowError::Unavailable { attempts: 3, .. }),
        "{err}"
    );
    assert_eq!(stub.hits(), 3);
}

#[tokio::test]
async fn a_timeout_is_retried_then_reported() {
    let _turn = testkit::turn(module_path!());
    let stub = Stub::start(vec![Reply::new(200, "{}").delayed(Duration::from_secs(3))]).await;
    let err = client(&stub, Duration::from_secs(1), MlflowAuth::None)
        .get_run("r")
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MlflowError::Unavailable { .. }), "{msg}");
    assert!(msg.contains("timed out"), "{msg}");
}

#[tokio::test]
async fn an_old_server_without_aliases_gets_a_specific_error() {
    let _turn = testkit::turn(module_path!());
    // Old MLflow (and some hosted versions) answer an unknown endpoint with a plain 404.
    let stub = Stub::start(vec![Reply::text(
        404,
        "<!doctype html><title>404 Not Found</title>",
    )])
    .await;
    let c = client(&stub, Duration::from_secs(5), MlflowAuth::None);
    let err = c.get_version_by_alias("m", "production").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MlflowError::Unsupported { .. }), "{msg}");
    assert!(msg.contains("does not support model version aliases"), "{msg}");
    assert!(msg.contains("MLflow 2.3 or newer"), "{msg}");
    let err = c.set_alias("m", "production", "1").await.unwrap_err();
    assert!(matches!(err, MlflowError::Unsupported { .. }));
}

#[tokio::test]
async fn a_missing_resource_is_not_found() {
    let _turn = testkit::turn(module_path!());
    let stub = Stub::start(vec![Reply::new(
        404,
        r#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run with id=x not found"}"#,
    )])
    .await;
    let err = client(&stub, Duration::from_secs(5), MlflowAuth::None)
        .get_run("x")
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("Run with id=x not found"));
}

#[tokio::test]
async fn creating_a_run_or_a_version_is_not_retried_after_the_request_was_sent() {
    let _turn = testkit::turn(module_path!());
    // A 500 may come after the server created the run: a retry would make a second one.
    let stub = Stub::start(vec![
        Reply::text(500, "boom"),
        Reply::new(200, r#"{"run": {"info": {"run_id": "r2", "experiment_id": "1", "status": "RUNNING", "artifact_uri": "x"}}}"#),
    ])
    .await;
    let c = client(&stub, Duration::from_secs(5), MlflowAuth::None);
    let err = c.create_run("1", "name", &[]).await.unwrap_err();
    assert!(
        matches!(err, MlflowError::Unavailable { attempts: 1, .. }),
        "{err}"
    );
    assert_eq!(stub.hits(), 1);
    let stub = Stub::start(vec![
        Reply::new(200, "{}").delayed(Duration::from_secs(3)),
        Reply::new(200, r#"{"model_version": {"name": "m", "version": "2"}}"#),
    ])
    .await;
    let c = client(&stub, Duration::from_secs(1), MlflowAuth::None);
    let err = c.create_model_version("m", "s", "r", &[], "").await.unwrap_err();
    assert!(
        matches!(err, MlflowError::Unavailable { attempts: 1, .. }),
        "{err}"
    );
    assert_eq!(stub.hits(), 1);
}

#[tokio::test]
async fn a_server_repeating_its_page_token_is_an_error_not_a_loop() {
    let _turn = testkit::turn(module_path!());
    let page = r#"{"model_versions": [{"name": "m", "version": "1"}], "next_page_token": "same"}"#;
    let stub = Stub::start(vec![Reply::new(200, page)]).await;
    let c = client(&stub, Duration::from_secs(5), MlflowAuth::None);
    let got = tokio::time::timeout(Duration::from_secs(10), c.search_model_versions("m"))
        .await
        .expect("listing ended");
    let err = got.unwrap_err();
    assert!(err.to_string().contains("page token"), "{err}");
}

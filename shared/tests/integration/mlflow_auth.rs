//! Credentials against `mlflow server --app-name basic-auth`: accepted when right, a
//! clear 401 message when wrong or missing, and never echoed.

use std::time::Duration;

use rps_core::config::{MlflowAuth, Secret};
use rps_core::mlflow::{MlflowClient, MlflowError};
use testkit::mlflow::{ADMIN_PASSWORD, ADMIN_USER, MlflowServer};

fn client(uri: &str, auth: MlflowAuth) -> MlflowClient {
    testkit::mlflow::client_with(uri, auth, Duration::from_secs(30))
}

#[tokio::test]
async fn good_credentials_work_and_bad_ones_are_refused_clearly() {
    let _turn = testkit::turn(module_path!());
    let Some(server) = MlflowServer::start_basic_auth() else {
        return;
    };
    let good = client(
        &server.uri,
        MlflowAuth::Basic {
            username: ADMIN_USER.into(),
            password: Secret::new(ADMIN_PASSWORD),
        },
    );
    let id = good.get_or_create_experiment("auth-test").await.unwrap();
    assert!(!id.is_empty());

    let wrong_password = "not-the-password-123";
    let bad = client(
        &server.uri,
        MlflowAuth::Basic {
            username: ADMIN_USER.into(),
            password: Secret::new(wrong_password),
        },
    );
    let err = bad.get_experiment_by_name("auth-test").await.unwrap_err();
    assert!(matches!(err, MlflowError::Unauthorized { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("refused the credentials (HTTP 401"), "{msg}");
    assert!(msg.contains("MLFLOW_TRACKING_USERNAME"), "{msg}");
    assert!(!msg.contains(wrong_password), "the password leaked into: {msg}");

    let anonymous = client(&server.uri, MlflowAuth::None);
    assert!(matches!(
        anonymous.get_experiment_by_name("auth-test").await,
        Err(MlflowError::Unauthorized { .. })
    ));
}

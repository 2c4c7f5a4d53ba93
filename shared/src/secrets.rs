//! Secrets from AWS Secrets Manager, read once at start: the MLflow credentials of a
//! deployed function (DagsHub's token, say) never sit in an environment variable or a
//! template. `RPS_MLFLOW_SECRET_ID` names the secret; its value is a token, or JSON
//! `{"token": …}` or `{"username": …, "password": …}`.

use aws_sdk_secretsmanager::Client;
use serde::Deserialize;

use crate::config::{Config, ConfigError, MlflowAuth, Secret};

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("reading the secret {id} failed: {message}")]
    Read { id: String, message: String },
    #[error("the secret {id} holds no usable MLflow credentials: {why}")]
    Shape { id: String, why: String },
    #[error(transparent)]
    Config(#[from] ConfigError),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Credentials {
    Token { token: String },
    Basic { username: String, password: String },
}

/// Replaces the MLflow credentials with the secret's, when a secret is named.
pub async fn resolve(config: &mut Config) -> Result<(), SecretsError> {
    let Some(id) = config.secrets.mlflow_secret_id.clone() else {
        return Ok(());
    };
    let Some(mlflow) = config.mlflow.as_mut() else {
        return Err(ConfigError::Missing {
            var: "MLFLOW_TRACKING_URI",
            expected: "the MLflow server's URL, since RPS_MLFLOW_SECRET_ID names its credentials",
        }
        .into());
    };
    let sdk = crate::store::S3Store::config_loader().load().await;
    let value = Client::new(&sdk)
        .get_secret_value()
        .secret_id(&id)
        .send()
        .await
        .map_err(|e| SecretsError::Read {
            id: id.clone(),
            message: aws_sdk_secretsmanager::error::DisplayErrorContext(e).to_string(),
        })?
        .secret_string
        .ok_or_else(|| SecretsError::Shape {
            id: id.clone(),
            why: "it is binary, not a string".into(),
        })?;
    mlflow.auth = parse(&value).map_err(|why| SecretsError::Shape { id: id.clone(), why })?;
    mlflow.auth_from = format!(
        "{}: the Secrets Manager secret {id} (RPS_MLFLOW_SECRET_ID)",
        mlflow.auth.kind()
    );
    tracing::info!(secret = %id, "MLflow credentials read from Secrets Manager");
    Ok(())
}

/// A secret's value as MLflow credentials.
pub fn parse(value: &str) -> Result<MlflowAuth, String> {
    let value = value.trim();
    if value.starts_with('{') {
        return match serde_json::from_str::<Credentials>(value) {
            Ok(Credentials::Token { token }) => Ok(MlflowAuth::Bearer {
                token: Secret::new(token),
            }),
            Ok(Credentials::Basic { username, password }) => Ok(MlflowAuth::Basic {
                username,
                password: Secret::new(password),
            }),
            Err(_) => Err("JSON without a \"token\" or a \"username\" and \"password\"".into()),
        };
    }
    if value.is_empty() {
        return Err("it is empty".into());
    }
    Ok(MlflowAuth::Bearer {
        token: Secret::new(value),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_hold_a_token_or_basic_credentials() {
        assert!(matches!(parse("tok"), Ok(MlflowAuth::Bearer { token }) if token.expose() == "tok"));
        assert!(matches!(
            parse(r#"{"token": "t"}"#),
            Ok(MlflowAuth::Bearer { .. })
        ));
        assert!(matches!(
            parse(r#"{"username": "u", "password": "p"}"#),
            Ok(MlflowAuth::Basic { username, password }) if username == "u" && password.expose() == "p"
        ));
        assert!(parse(r#"{"user": "u"}"#).is_err());
        assert!(parse("  ").is_err());
    }
}

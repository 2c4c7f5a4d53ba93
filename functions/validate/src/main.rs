//! The validate stage on AWS Lambda: a ValidateInput event (a snapshot key) in, ValidateOutput (the report's key) out; a refusal is DataQualityGateFailed.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve("validate", shared::validate::validate).await
}

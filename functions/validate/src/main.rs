//! The validate stage on AWS Lambda: a ValidateInput event (a snapshot key) in, ValidateOutput (the report's key) out; a refusal is DataQualityGateFailed.

#[tokio::main]
async fn main() -> Result<(), rps_core::lambda::Error> {
    rps_core::lambda::serve("validate", rps_core::validate::validate).await
}

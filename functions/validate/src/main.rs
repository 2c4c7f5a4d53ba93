//! The validate stage on AWS Lambda: a ValidateInput event (a snapshot key) in, ValidateOutput (the report's key) out; a refusal is DataQualityGateFailed.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    let ctx = shared::lambda::init("validate").await?;
    shared::lambda::serve(move |input| shared::validate::validate(ctx, input)).await
}

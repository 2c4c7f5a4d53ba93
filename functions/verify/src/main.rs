//! The verify stage on AWS Lambda: a VerifyInput event (issue the scheduled forecast first, from which snapshot) in, the Verification (live skill per version, drift, whether a retrain is needed and its trigger) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    let ctx = shared::lambda::init("verify").await?;
    shared::lambda::serve(move |input| shared::verify::verify(ctx, input)).await
}

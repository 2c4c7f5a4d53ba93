//! The promote stage on AWS Lambda: a PromoteInput event (a candidate, a fresh report) in, PromoteOutput out; a refusal is PromotionGateFailed, a lost race PromotionConflict.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    let ctx = shared::lambda::init("promote").await?;
    shared::lambda::serve(move |input| shared::promote::promote(ctx, input)).await
}

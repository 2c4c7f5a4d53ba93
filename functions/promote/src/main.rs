//! The promote stage on AWS Lambda: a PromoteInput event (a candidate, a fresh report) in, PromoteOutput out; a refusal is PromotionGateFailed, a lost race PromotionConflict.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve("promote", shared::pipeline::gate_and_promote).await
}

//! The promote stage on AWS Lambda: a PromoteInput event (a candidate, a fresh report) in, PromoteOutput out; a refusal is PromotionGateFailed, a lost race PromotionConflict.

#[tokio::main]
async fn main() -> Result<(), rps_core::lambda::Error> {
    rps_core::lambda::serve("promote", rps_core::pipeline::gate_and_promote).await
}

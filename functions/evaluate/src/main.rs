//! The evaluate stage on AWS Lambda: an EvaluateInput event (a candidate) in, EvaluateOutput (the gates' verdict and report keys) out.

#[tokio::main]
async fn main() -> Result<(), rps_core::lambda::Error> {
    rps_core::lambda::serve("evaluate", rps_core::evaluate::evaluate).await
}

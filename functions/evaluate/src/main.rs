//! The evaluate stage on AWS Lambda: an EvaluateInput event (a candidate) in, EvaluateOutput (the gates' verdict and report keys) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve("evaluate", shared::evaluate::evaluate).await
}

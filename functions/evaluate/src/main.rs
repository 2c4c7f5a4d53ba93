//! The evaluate stage on AWS Lambda: an EvaluateInput event (a candidate) in, EvaluateOutput (the gates' verdict and report keys) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    let ctx = shared::lambda::init("evaluate").await?;
    shared::lambda::serve(move |input| shared::evaluate::evaluate(ctx, input)).await
}

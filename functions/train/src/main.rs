//! The train stage on AWS Lambda: a TrainInput event (a data version) in, TrainOutput (the registered version, @candidate) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    let ctx = shared::lambda::init("train").await?;
    shared::lambda::serve(move |input| shared::train::train(ctx, input)).await
}

//! The train stage on AWS Lambda: a TrainInput event (a data version) in, TrainOutput (the registered version, @candidate) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve("train", shared::train::train).await
}

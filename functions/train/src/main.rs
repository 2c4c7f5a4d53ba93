//! The train stage on AWS Lambda: a TrainInput event (a data version) in, TrainOutput (the registered version, @candidate) out.

#[tokio::main]
async fn main() -> Result<(), rps_core::lambda::Error> {
    rps_core::lambda::serve("train", rps_core::train::train).await
}

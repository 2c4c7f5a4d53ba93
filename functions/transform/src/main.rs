//! The transform stage on AWS Lambda: a TransformInput event (validated snapshot keys) in, TransformOutput (the data version) out.

#[tokio::main]
async fn main() -> Result<(), rps_core::lambda::Error> {
    rps_core::lambda::serve("transform", rps_core::transform::transform).await
}

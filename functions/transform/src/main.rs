//! The transform stage on AWS Lambda: a TransformInput event (validated snapshot keys) in, TransformOutput (the data version) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve("transform", shared::transform::transform).await
}

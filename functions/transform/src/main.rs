//! The transform stage on AWS Lambda: a TransformInput event (validated snapshot keys) in, TransformOutput (the data version) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    let ctx = shared::lambda::init("transform").await?;
    shared::lambda::serve(move |input| shared::transform::transform(ctx, input)).await
}

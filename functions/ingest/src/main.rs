//! The ingest stage on AWS Lambda: an IngestRequest event (a date range, the recent year, or live) in, IngestOutput (the snapshot's keys) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    let ctx = shared::lambda::init("ingest").await?;
    shared::lambda::serve(move |input| shared::ingest::ingest(ctx, input)).await
}

//! The ingest stage on AWS Lambda: an IngestRequest event (a date range, the recent year, or live) in, IngestOutput (the snapshot's keys) out.

#[tokio::main]
async fn main() -> Result<(), shared::lambda::Error> {
    shared::lambda::serve("ingest", shared::ingest::ingest).await
}

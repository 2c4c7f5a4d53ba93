//! The ingest stage on AWS Lambda: an IngestRequest event (a date range, the recent year, or live) in, IngestOutput (the snapshot's keys) out.

#[tokio::main]
async fn main() -> Result<(), rps_core::lambda::Error> {
    rps_core::lambda::serve("ingest", rps_core::ingest::ingest).await
}

//! The verify stage on AWS Lambda: a VerifyInput event (issue the scheduled forecast first, from which snapshot) in, the Verification (live skill per version, drift, whether a retrain is needed and its trigger) out.

#[tokio::main]
async fn main() -> Result<(), rps_core::lambda::Error> {
    rps_core::lambda::serve("verify", rps_core::verify::verify).await
}

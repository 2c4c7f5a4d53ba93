//! HTTP plumbing shared by every client (Open-Meteo, MLflow, the smoke gate): the
//! client builder, bounded retries with exponential backoff and jitter, and readable
//! error chains. It depends on nothing else in the crate.

use std::time::Duration;

/// A client with rps's user agent and a connect timeout.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("rps/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))
}

/// An error with its causes, `outer: inner: innermost`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// How hard to try.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub timeout: Duration,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Bound on the whole fetch, sleeps included: no retry starts past it.
    pub max_total: Duration,
}

impl RetryPolicy {
    /// Exponential backoff with "equal jitter": half the capped exponential delay plus a
    /// random share of the other half, so retries spread out but still grow.
    pub fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(2u32.saturating_pow(retry.min(16)))
            .min(self.max_delay);
        let half = exp / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            timeout: Duration::from_secs(1),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_total: Duration::from_secs(10),
        };
        for retry in 0..10 {
            let d = p.backoff(retry);
            let cap = (Duration::from_millis(100) * 2u32.pow(retry)).min(Duration::from_secs(1));
            assert!(
                d >= cap / 2 && d <= cap,
                "retry {retry}: {d:?} outside [{:?}, {cap:?}]",
                cap / 2
            );
        }
    }
}

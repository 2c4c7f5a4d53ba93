//! Logs: tracing to stderr, human-readable by default, JSON on Lambda or with
//! `RPS_LOG_FORMAT=json`. `RUST_LOG` sets the level.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber (once; later calls do nothing).
pub fn init(default_level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
    let json = std::env::var("RPS_LOG_FORMAT").is_ok_and(|f| f == "json")
        || std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

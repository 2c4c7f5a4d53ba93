//! Logs: tracing to stderr, human-readable by default, JSON on Lambda or with
//! `RPS_LOG_FORMAT=json` ([`LogConfig`]). `RUST_LOG` sets the level.

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// Installs the subscriber (once; later calls do nothing).
pub fn init(default_level: &str) {
    init_with(&LogConfig::from_env(), default_level)
}

pub fn init_with(cfg: &LogConfig, default_level: &str) {
    let filter = cfg
        .filter
        .as_deref()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if cfg.json {
        builder.json().try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

//! Logging: `tracing` with a human or JSON formatter, filtered by the config's level (or `RUST_LOG`). The
//! access log is the `penghubung::access` target: one line per request, never bodies, secrets or raw paths
//! (the operation template is logged instead, since paths can carry personal identifiers such as a NIK).
//! Every value of the request that is logged passes the sanitiser shared with the audit trail
//! ([`penghubung_audit::sanitise`]).

use tracing_subscriber::EnvFilter;

use penghubung_types::config::{LogConfig, LogFormat};

/// Installs the global subscriber. Returns false when one was already installed (as in tests).
pub fn init_logging(config: &LogConfig) -> bool {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&config.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    match config.format {
        LogFormat::Human => builder.with_target(true).try_init().is_ok(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init().is_ok(),
    }
}

//! The process's adapter registry: the built-in adapters, the config's secrets store (`[secrets]`), and their
//! HTTP client for token endpoints verifying servers with the upstream roots. Built once per process and passed
//! to every snapshot build ([`crate::BuildContext::adapters`]), so that adapters and their cached tokens survive
//! reloads.

use std::time::Duration;

use penghubung_adapters::{AdapterRegistry, HttpClient, Secrets};
use penghubung_tls::UpstreamTls;
use penghubung_types::config::Config;

/// How long a token request may take.
const TOKEN_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The secrets store the config describes (`[secrets] dir` relative to the config file).
pub fn secrets(config: &Config) -> Secrets {
    let dir = config.secrets.dir.as_ref().map(|dir| config.resolve(dir));
    Secrets::new(dir, config.secrets.env.clone())
}

/// The registry with every built-in adapter, reading `config`'s secrets.
pub fn registry(config: &Config, upstream_tls: &UpstreamTls) -> AdapterRegistry {
    let http = HttpClient::new(upstream_tls.default_config().clone(), TOKEN_REQUEST_TIMEOUT);
    AdapterRegistry::with_builtins(http, secrets(config))
}

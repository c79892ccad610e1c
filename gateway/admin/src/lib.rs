//! Penghubung's admin API: the management plane's own TLS listener (`[admin]`, default `127.0.0.1:9443`) with
//! JSON under `/api/v1/`, for the CLI and scripts; the web console's pages (`penghubung-console`) are served
//! beside it ([`start_with`]).
//!
//! - [`routes`]: the ONE route table: method, path, the management operation (its roles come from
//!   `penghubung_manage::PERMISSIONS`), body and handler. Deny unless listed.
//! - [`dispatch`]: the router built from it, and the steps every request takes (operator certificate →
//!   operator → role → `If-Match` → body → handler → gateway reload).
//! - [`handlers`]: each route's inputs turned into a call of `penghubung_manage::Manager`, which holds every
//!   rule (permissions with OPD scope, the two approvals, the whole-store check, etags, history).
//! - [`openapi`]: the API's OpenAPI 3.1 document, generated from the route table.
//! - [`error`]: the one place an error becomes problem+json.
//! - [`tls`] and [`server`]: TLS 1.2+ with an operator certificate requested but not required, the accept
//!   loop and HTTP/1.1 + HTTP/2.
#![forbid(unsafe_code)]

pub mod dispatch;
pub mod error;
pub mod handlers;
pub mod openapi;
pub mod routes;
pub mod server;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use penghubung_manage::Manager;
use penghubung_types::config::Config;

pub use error::ApiError;
pub use routes::{Route, ROUTES};

/// Why the admin listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("the admin API is not configured (no [admin] section, or enabled = false)")]
    Disabled,
    #[error("admin TLS: {0}")]
    Tls(String),
    #[error("cannot listen on {address}: {source}")]
    Bind { address: SocketAddr, source: std::io::Error },
}

/// A running admin listener.
pub struct AdminServer {
    listener: server::Listener,
}

impl AdminServer {
    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.address
    }

    /// Stops accepting and lets open requests finish (a few seconds at most).
    pub async fn shutdown(self) {
        self.listener.shutdown().await;
    }
}

/// Starts the admin listener `[admin]` describes. `on_change` is called after each successful change, before
/// its answer is sent (the binary passes the gateway's reload, so that a change serves at once).
pub async fn start(
    config: &Config,
    manager: Arc<Manager>,
    on_change: Arc<dyn Fn() + Send + Sync>,
) -> Result<AdminServer, AdminError> {
    start_with(config, manager, on_change, None).await
}

/// [`start`], with more routes served beside the API's (the web console's pages, outside `/api/v1/`). The
/// API's fallback (problem+json) answers what neither knows.
pub async fn start_with(
    config: &Config,
    manager: Arc<Manager>,
    on_change: Arc<dyn Fn() + Send + Sync>,
    beside: Option<axum::Router>,
) -> Result<AdminServer, AdminError> {
    let admin = config.admin_enabled().ok_or(AdminError::Disabled)?;
    let tls = Arc::new(tls::AdminTls::load(config).map_err(AdminError::Tls)?);
    let address = admin.listen;
    let listener =
        tokio::net::TcpListener::bind(address).await.map_err(|source| AdminError::Bind { address, source })?;
    let bound = listener.local_addr().map_err(|source| AdminError::Bind { address, source })?;
    let max_body = usize::try_from(admin.max_body.0).unwrap_or(usize::MAX);
    let state = Arc::new(dispatch::AdminState { manager, on_change, openapi: openapi::document(), max_body });
    let router = match beside {
        Some(beside) => dispatch::router(state).merge(beside),
        None => dispatch::router(state),
    };
    tracing::info!(target: "penghubung::admin", admin_address = %bound, "admin API started (TLS, operator certificates)");
    Ok(AdminServer { listener: server::Listener::start(listener, tls, router, admin.handshake_timeout.0) })
}

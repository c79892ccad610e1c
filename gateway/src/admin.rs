//! `penghubung serve` with the admin API beside the gateway: when `[admin]` is on, the management plane
//! ([`Manager`]) opens the same store and the admin listener starts next to the data plane; each change made
//! through it reloads the gateway at once, before its answer is sent. The web console (`penghubung-console`)
//! is served on the same listener, beside the API.

use std::sync::Arc;

pub use penghubung_admin as api;
use penghubung_admin::AdminServer;
use penghubung_manage::Manager;
use penghubung_server::{Gateway, Signals};
use penghubung_types::config::Config;

use crate::exit::{exit_code, start_failed};

/// Starts the gateway and, when configured, the admin listener; serves until SIGTERM/SIGINT; returns the exit
/// code.
pub async fn serve(config: Config, signals: Signals) -> i32 {
    let admin_config = config.clone();
    let gateway = match Gateway::start(config).await {
        Ok(gateway) => gateway,
        Err(e) => return start_failed(e),
    };
    let admin = match start_beside(&admin_config, &gateway).await {
        Ok(admin) => admin,
        Err(e) => {
            eprintln!("penghubung: cannot start the admin API: {e}");
            gateway.shutdown().await;
            return 1;
        }
    };
    let outcome = gateway.run_until_signal(signals).await;
    if let Some(admin) = admin {
        admin.shutdown().await;
    }
    exit_code(outcome)
}

/// The admin listener for `gateway`, when `[admin]` is on (`None` otherwise).
pub async fn start_beside(config: &Config, gateway: &Gateway) -> Result<Option<AdminServer>, String> {
    if config.admin_enabled().is_none() {
        return Ok(None);
    }
    let manager = Arc::new(Manager::open(config).map_err(|e| e.to_string())?);
    let reloader = gateway.reloader();
    let on_change: Arc<dyn Fn() + Send + Sync> = Arc::new(move || reloader.reload_and_log("admin API"));
    let auditor = gateway.auditor().cloned();
    let console = penghubung_console::Console::new(config, Arc::clone(&manager), Arc::clone(&on_change), auditor)?;
    let pages = penghubung_console::router(Arc::new(console));
    penghubung_admin::start_with(config, manager, on_change, Some(pages)).await.map(Some).map_err(|e| e.to_string())
}

//! Penghubung's web console: server-rendered pages on the admin listener, beside the API, for the people of a
//! Dinas who do not run a CLI. Every page performs the admin API's own routes
//! (`penghubung_admin::dispatch::perform`), so the console holds no rule of its own: the role table, the OPD
//! scope, the two approvals and the whole-store check are the management plane's.
//!
//! - [`web`]: the request's context (the viewer, the language, CSRF and `Origin` checks), the security headers
//!   every answer carries, and the one place an error becomes a page ([`error`]).
//! - [`redis_sessions`]: sessions shared by every replica (`[console] sessions = "redis"`).
//! - [`login`]: sign-in with a certificate (no session) or a password and a TOTP code (a session), lockout,
//!   sign-out, and their audit records; [`session`], [`lockout`], [`csrf`] hold the pieces.
//! - [`layout`]: the page frame (header with the viewer and sign-out, skip link, navigation) and the two
//!   languages; [`assets`] the embedded stylesheet and icon.
//! - [`pages`]: the dashboard, OPDs, services and their lifecycle, clients, grants, audit, history, explain,
//!   reports.
#![forbid(unsafe_code)]

pub mod assets;
pub mod csrf;
pub mod error;
pub mod layout;
pub mod lockout;
pub mod login;
pub mod pages;
pub mod redis_sessions;
pub mod session;
pub mod web;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use penghubung_admin::dispatch::AdminState;
use penghubung_audit::Auditor;
use penghubung_manage::Manager;
use penghubung_types::config::{Config, SessionsBackend};

pub use redis_sessions::RedisSessions;
pub use session::{MemorySessions, Session, SessionStore};

/// What every console request shares.
pub struct Console {
    /// The admin API's state: the console performs its routes.
    pub(crate) admin: AdminState,
    pub(crate) auditor: Option<Arc<Auditor>>,
    pub(crate) sessions: Arc<dyn SessionStore>,
    pub(crate) lockout: lockout::Lockout,
    pub(crate) csrf: csrf::Csrf,
    /// Redis's `host:port` when configured (cluster rate limits): the dashboard checks it is reachable.
    pub(crate) redis: Option<String>,
}

impl Console {
    /// The console of `config`'s `[console]` section over `manager`; `on_change` is called after each change
    /// (the gateway's reload), `auditor` receives the sign-in records.
    pub fn new(
        config: &Config,
        manager: Arc<Manager>,
        on_change: Arc<dyn Fn() + Send + Sync>,
        auditor: Option<Arc<Auditor>>,
    ) -> Result<Console, String> {
        let settings = &config.console;
        let admin = AdminState {
            manager,
            on_change,
            openapi: penghubung_admin::openapi::document(),
            max_body: usize::try_from(config.admin.as_ref().map_or(1 << 20, |a| a.max_body.0)).unwrap_or(1 << 20),
        };
        let (idle, absolute) = (settings.session_idle_timeout.0, settings.session_absolute_timeout.0);
        let sessions: Arc<dyn SessionStore> = match (config.console_sessions(), &config.redis) {
            (SessionsBackend::Redis, Some(redis)) => Arc::new(RedisSessions::of_config(redis, idle, absolute)?),
            (SessionsBackend::Redis, None) => return Err("[console] sessions = \"redis\" needs [redis]".into()),
            (SessionsBackend::Memory, _) => Arc::new(MemorySessions::new(idle, absolute)),
        };
        Ok(Console {
            admin,
            auditor,
            sessions,
            lockout: lockout::Lockout::new(
                settings.max_failures_per_user,
                settings.max_failures_per_address,
                settings.lockout_window.0,
            ),
            csrf: csrf::Csrf::new().ok_or("no randomness for the console's CSRF key")?,
            redis: config.redis.as_ref().and_then(|r| web::redis_address(&r.url)),
        })
    }

    /// The same console with another session store (a cluster's).
    pub fn with_sessions(mut self, sessions: Arc<dyn SessionStore>) -> Console {
        self.sessions = sessions;
        self
    }
}

/// The console's routes (every path outside `/api/v1/`), to merge with the API's router.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(pages::dashboard::page))
        .route("/login", get(login::form).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/language", post(web::language))
        .route("/assets/{file}", get(assets::serve))
        .route("/opds", get(pages::documents::opds))
        .route("/opds/{opd}", get(pages::documents::opd))
        .route("/clients", get(pages::documents::clients))
        .route("/clients/{opd}/{app}", get(pages::documents::client))
        .route("/grants", get(pages::documents::grants))
        .route("/services", get(pages::services::list).post(pages::services::create))
        .route("/services/new", get(pages::services::new_form))
        .route("/services/{opd}/{name}/{version}", get(pages::services::page))
        .route("/services/{opd}/{name}/{version}/{action}", post(pages::services::action))
        .route("/audit", get(pages::audit::search))
        .route("/audit/verify", post(pages::audit::verify))
        .route("/history/{kind}/{*id}", get(pages::history::page).post(pages::history::rollback))
        .route("/explain", get(pages::explain::page))
        .route("/reports", get(pages::reports::page))
        .layer(axum::middleware::from_fn(web::security_headers))
        .with_state(console)
}

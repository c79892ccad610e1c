//! Signing in and out. An operator certificate signs in without a session (see [`crate::web`]). Without one:
//! `GET /login` shows the form (its CSRF token bound to a pre-session cookie), `POST /login` checks the lockout,
//! then the password (argon2id) and the TOTP code (RFC 6238, a code accepted once) through the management
//! plane, and on success starts a session with a fresh id and drops the pre-session. Every failure answers the
//! same words (`console.login_failed`); a locked username or address answers 429 (`console.login_locked`).
//! Every sign-in, failed sign-in and sign-out is an audit record (`security` kind; never the password or code).

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Form, State};
use axum::response::Response;
use http::request::Parts;
use http::{header, StatusCode};
use maud::html;
use penghubung_audit::record::{ConsoleEvent, Record, SecurityRecord};
use penghubung_manage::LoginFailure;

use crate::error::ConsoleError;
use crate::layout::{self, Lang};
use crate::session::random_id;
use crate::web::{
    self, cookie, field, raw_field, same_origin, see_other, set_cookie, Binding, Fields, LOGIN_COOKIE, SESSION_COOKIE,
};
use crate::Console;

/// The longest username kept (an attempted name goes into the audit record, sanitised).
const MAX_USERNAME: usize = 64;

enum Outcome {
    Form,
    Failed,
    Locked,
}

fn login_page(lang: Lang, csrf: &str, username: &str, outcome: Outcome) -> Response {
    let title = lang.pick("Masuk", "Sign in");
    let (status, alert) = match outcome {
        Outcome::Form => (StatusCode::OK, html! {}),
        Outcome::Failed => (
            StatusCode::UNAUTHORIZED,
            html! { div #login-error role="alert" {
                (lang.pick("Nama pengguna, kata sandi, atau kode TOTP salah.", "The username, password or TOTP code is wrong."))
                " (" code { "console.login_failed" } ")"
            } },
        ),
        Outcome::Locked => (
            StatusCode::TOO_MANY_REQUESTS,
            html! { div #login-error role="alert" {
                (lang.pick(
                    "Terlalu banyak percobaan gagal; coba lagi nanti.",
                    "Too many failed attempts; try again later."
                ))
                " (" code { "console.login_locked" } ")"
            } },
        ),
    };
    let body = html! {
        div.login {
            h1 { (title) }
            p.muted { (lang.pick(
                "Operator dengan sertifikat di peramban langsung masuk. Tanpa sertifikat: nama pengguna, kata sandi, dan kode dari aplikasi autentikator.",
                "Operators with a certificate in their browser are signed in at once. Without one: username, password and the code of an authenticator app."
            )) }
            (alert)
            form #login-form method="post" action="/login" {
                input type="hidden" name="csrf" value=(csrf);
                div.field {
                    label for="username" { (lang.pick("Nama pengguna (id operator)", "Username (operator id)")) }
                    input #username type="text" name="username" value=(username) autocomplete="username" required autocapitalize="none" spellcheck="false";
                }
                div.field {
                    label for="password" { (lang.pick("Kata sandi", "Password")) }
                    input #password type="password" name="password" autocomplete="current-password" required;
                }
                div.field {
                    label for="totp" { (lang.pick("Kode TOTP (6 angka)", "TOTP code (6 digits)")) }
                    input #totp type="text" name="totp" inputmode="numeric" pattern="[0-9]{6}" maxlength="6" autocomplete="one-time-code" required;
                }
                button #login-submit type="submit" { (title) }
            }
        }
    };
    layout::bare(lang, status, title, body)
}

/// `GET /login`: the form, with a pre-session cookie its token is bound to.
pub async fn form(State(console): State<Arc<Console>>, parts: Parts) -> Response {
    let lang = web::lang(&parts);
    let (pre, fresh) = match cookie(&parts, LOGIN_COOKIE).filter(|c| c.len() == 64) {
        Some(pre) => (pre.to_string(), false),
        None => match random_id() {
            Some(pre) => (pre, true),
            None => return crate::error::page(None, lang, ConsoleError::Unavailable("no randomness".into())),
        },
    };
    let mut response = login_page(lang, &console.csrf.token(&format!("login:{pre}")), "", Outcome::Form);
    if fresh {
        response.headers_mut().append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &pre));
    }
    response
}

/// `POST /login`.
pub async fn submit(State(console): State<Arc<Console>>, parts: Parts, Form(fields): Form<Fields>) -> Response {
    let lang = web::lang(&parts);
    let pre = cookie(&parts, LOGIN_COOKIE).map(str::to_string);
    let token_ok = pre.as_ref().is_some_and(|pre| console.csrf.check(&format!("login:{pre}"), field(&fields, "csrf")));
    if !same_origin(&parts) || !token_ok {
        return crate::error::page(None, lang, ConsoleError::Csrf);
    }
    let pre = pre.unwrap_or_default();
    let csrf = console.csrf.token(&format!("login:{pre}"));
    let username: String = field(&fields, "username").unwrap_or("").chars().take(MAX_USERNAME).collect();
    let password = raw_field(&fields, "password").to_string();
    let code = field(&fields, "totp").unwrap_or("").to_string();
    let address = web::peer_ip(&parts);
    let peer = web::peer(&parts);

    if console.lockout.locked(&username, address) {
        console.audit("console.login_locked", &username, Some("locked"), "password", peer);
        return login_page(lang, &csrf, &username, Outcome::Locked);
    }
    let manager = Arc::clone(&console.admin.manager);
    let name = username.clone();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let outcome = tokio::task::spawn_blocking(move || manager.authenticate_password(&name, &password, &code, now))
        .await
        .unwrap_or(Err(LoginFailure::Unavailable));
    match outcome {
        Err(failure) => {
            console.lockout.failed(&username, address);
            console.audit("console.login_failed", &username, Some(failure.as_str()), "password", peer);
            login_page(lang, &csrf, &username, Outcome::Failed)
        }
        Ok(actor) => {
            console.lockout.succeeded(&username);
            let Some(session) = console.sessions.create(&actor.id) else {
                return crate::error::page(None, lang, ConsoleError::Unavailable("no session could be started".into()));
            };
            console.audit("console.login", &actor.id, None, "password", peer);
            let mut response = see_other("/");
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &session.id));
            headers.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, ""));
            response
        }
    }
}

/// `POST /logout`: ends the session (CSRF-checked) and goes to the sign-in page.
pub async fn logout(State(console): State<Arc<Console>>, parts: Parts, Form(fields): Form<Fields>) -> Response {
    let lang = web::lang(&parts);
    let ctx = match console.form_context(&parts, &fields).await {
        Ok(ctx) => ctx,
        Err((ctx, e)) => return crate::error::page(ctx.as_ref(), lang, e),
    };
    let method = match &ctx.viewer.binding {
        Binding::Session(id) => {
            console.sessions.remove(id);
            "password"
        }
        Binding::Certificate(_) => "certificate",
    };
    console.audit("console.logout", &ctx.viewer.actor.id, None, method, web::peer(&parts));
    let mut response = see_other("/login");
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, ""));
    response
}

impl Console {
    /// Writes a console event to the audit trail (and the log, with the same members; never a credential).
    pub(crate) fn audit(
        &self,
        event: &'static str,
        who: &str,
        reason: Option<&'static str>,
        method: &'static str,
        peer: Option<std::net::SocketAddr>,
    ) {
        let clean = penghubung_audit::sanitise::clean(penghubung_audit::sanitise::process_key(), who);
        tracing::info!(target: "penghubung::console", event, who = %clean, reason = reason.unwrap_or("-"), method, "console sign-in event");
        if let Some(auditor) = &self.auditor {
            let record = SecurityRecord::console(ConsoleEvent { event, who: who.to_string(), reason, method }, peer);
            auditor.record_now(Record::Security(Box::new(record)));
        }
    }
}

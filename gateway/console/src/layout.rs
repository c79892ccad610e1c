//! The page frame and the languages. Every page: `<html lang>`, the embedded stylesheet, a skip link to the
//! main content, a header with the viewer's name and roles (`#whoami`), the navigation, the language switch
//! and the sign-out button (`#logout`); then `<main id="main">`. Indonesian is the default language; English
//! is the other ([`Lang`]). maud escapes every value written into a page.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use maud::{html, Markup, DOCTYPE};

use crate::web::Ctx;

/// The console's two languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    /// Bahasa Indonesia (the default).
    Id,
    En,
}

impl Lang {
    /// `en` is English; anything else Indonesian.
    pub fn parse(code: &str) -> Lang {
        if code.trim().eq_ignore_ascii_case("en") {
            Lang::En
        } else {
            Lang::Id
        }
    }

    /// `id` or `en` (the `<html lang>`).
    pub fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    /// The text of this language.
    pub fn pick<'a>(self, id: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }
}

/// The navigation: path, Indonesian, English.
const NAV: &[(&str, &str, &str)] = &[
    ("/", "Dasbor", "Dashboard"),
    ("/opds", "OPD", "OPDs"),
    ("/services", "Layanan", "Services"),
    ("/clients", "Klien", "Clients"),
    ("/grants", "Izin akses", "Grants"),
    ("/audit", "Audit", "Audit"),
    ("/explain", "Uji kebijakan", "Policy explain"),
    ("/reports", "Laporan", "Reports"),
];

fn head(lang: Lang, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Penghubung" }
            link rel="stylesheet" href=(crate::assets::CSS_PATH);
            link rel="icon" href=(crate::assets::ICON_PATH) type="image/svg+xml";
            meta name="description" content=(lang.pick("Konsol Penghubung", "Penghubung console"));
        }
    }
}

fn skip(lang: Lang) -> Markup {
    html! { a.skip href="#main" { (lang.pick("Lewati ke isi utama", "Skip to main content")) } }
}

/// A page of a signed-in viewer.
pub fn page(ctx: &Ctx, status: StatusCode, title: &str, body: Markup) -> Response {
    let lang = ctx.lang;
    let actor = &ctx.viewer.actor;
    let roles = actor.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang, title))
            body {
                (skip(lang))
                header {
                    div.bar {
                        a.brand href="/" { "Penghubung" }
                        div #whoami {
                            span.name { (actor.name) } " (" code { (actor.id) } ") · "
                            span.roles { (lang.pick("peran", "roles")) ": " (roles) }
                        }
                        form.lang method="post" action="/language" {
                            input type="hidden" name="csrf" value=(ctx.viewer.csrf);
                            input type="hidden" name="back" value=(ctx.path);
                            label for="lang-select" { (lang.pick("Bahasa", "Language")) }
                            select #lang-select name="lang" {
                                option value="id" selected[lang == Lang::Id] { "Bahasa Indonesia" }
                                option value="en" selected[lang == Lang::En] { "English" }
                            }
                            button type="submit" #lang-submit { (lang.pick("Ganti", "Switch")) }
                        }
                        form.logout method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(ctx.viewer.csrf);
                            button type="submit" #logout { (lang.pick("Keluar", "Sign out")) }
                        }
                    }
                    nav aria-label=(lang.pick("Navigasi utama", "Main navigation")) {
                        ul {
                            @for (path, id, en) in NAV {
                                @let current = ctx.path == *path || (*path != "/" && ctx.path.starts_with(&format!("{path}/")));
                                li { a href=(path) aria-current=[current.then_some("page")] { (lang.pick(id, en)) } }
                            }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    };
    html_response(status, markup)
}

/// A page without a viewer (the sign-in page, an error before sign-in).
pub fn bare(lang: Lang, status: StatusCode, title: &str, body: Markup) -> Response {
    let other = match lang {
        Lang::Id => ("en", "English"),
        Lang::En => ("id", "Bahasa Indonesia"),
    };
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            (head(lang, title))
            body {
                (skip(lang))
                header {
                    div.bar {
                        span.brand { "Penghubung" }
                        a.lang-link href={ "/login?lang=" (other.0) } lang=(other.0) { (other.1) }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    };
    html_response(status, markup)
}

/// An HTML answer.
pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    response
}

/// The notice of a change done (`?done=` after the redirect): a fixed text per action, never the query's text.
pub fn notice(lang: Lang, done: Option<&str>) -> Markup {
    let text = match done {
        Some("created") => lang.pick("Layanan dibuat (draf).", "The service was created (draft)."),
        Some("submit") => lang.pick("Layanan diajukan untuk pengujian.", "The service was submitted for testing."),
        Some("approve-operations") => lang.pick("Persetujuan operasi diberikan.", "The operations approval was given."),
        Some("approve-security") => lang.pick("Persetujuan keamanan diberikan.", "The security approval was given."),
        Some("withdraw") => lang.pick("Persetujuan ditarik.", "The approval was withdrawn."),
        Some("suspend") => lang.pick("Layanan dihentikan sementara.", "The service was suspended."),
        Some("resume") => lang.pick("Layanan dilanjutkan.", "The service was resumed."),
        Some("retire") => lang.pick("Layanan dipensiunkan.", "The service was retired."),
        Some("rollback") => lang.pick("Versi dipulihkan.", "The version was restored."),
        _ => return html! {},
    };
    html! { div #notice role="status" { (text) } }
}

/// A labelled text field.
pub fn text_field(id: &str, name: &str, label: &str, value: &str) -> Markup {
    html! {
        div.field {
            label for=(id) { (label) }
            input type="text" id=(id) name=(name) value=(value);
        }
    }
}

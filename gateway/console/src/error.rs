//! The one place a console error becomes a page: [`ConsoleError`], each with its status and stable code, shown
//! in `<div id="error" role="alert">` as its reason and `(code)`.

use axum::response::Response;
use http::StatusCode;
use maud::html;
use penghubung_admin::ApiError;

use crate::layout::{self, Lang};
use crate::web::{see_other, Ctx};

/// Why a console request was refused.
#[derive(Debug)]
pub enum ConsoleError {
    /// No operator: to the sign-in page.
    SignIn,
    /// A form without its CSRF token, with another's, or from another origin.
    Csrf,
    /// The admin API's route refused (the management plane's code: `admin.forbidden`, `admin.conflict`, ...).
    Api(ApiError),
    /// The form is not what the page sends.
    BadRequest(String),
    NotFound,
    Unavailable(String),
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        ConsoleError::Api(e)
    }
}

impl From<penghubung_manage::ManageError> for ConsoleError {
    fn from(e: penghubung_manage::ManageError) -> Self {
        ConsoleError::Api(ApiError::Manage(e))
    }
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::SignIn => StatusCode::SEE_OTHER,
            ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::Api(e) => e.status(),
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound => StatusCode::NOT_FOUND,
            ConsoleError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ConsoleError::SignIn => "console.sign_in",
            ConsoleError::Csrf => "console.csrf_rejected",
            ConsoleError::Api(e) => e.code(),
            ConsoleError::BadRequest(_) => "console.bad_request",
            ConsoleError::NotFound => "console.not_found",
            ConsoleError::Unavailable(_) => "console.unavailable",
        }
    }

    /// The reason, in the viewer's language where the console wrote it (the management plane's reasons are
    /// English).
    pub fn reason(&self, lang: Lang) -> String {
        match self {
            ConsoleError::SignIn => lang.pick("Silakan masuk.", "Please sign in.").into(),
            ConsoleError::Csrf => lang
                .pick(
                    "Formulir ditolak: token CSRF tidak ada atau tidak sah. Muat ulang halaman lalu coba lagi.",
                    "The form was refused: its CSRF token is missing or not valid. Reload the page and try again.",
                )
                .into(),
            ConsoleError::Api(ApiError::Manage(penghubung_manage::ManageError::InvalidStore { problems })) => {
                problems.join("; ")
            }
            ConsoleError::Api(e) => e.to_string(),
            ConsoleError::BadRequest(detail) | ConsoleError::Unavailable(detail) => detail.clone(),
            ConsoleError::NotFound => lang.pick("Halaman tidak ditemukan.", "There is no such page.").into(),
        }
    }

    /// The alert holding the reason and the code.
    pub fn alert(&self, lang: Lang) -> maud::Markup {
        html! { div #error role="alert" { (self.reason(lang)) " (" code { (self.code()) } ")" } }
    }
}

/// The page of an error: the sign-in page for [`ConsoleError::SignIn`], otherwise the reason in the frame of
/// the viewer's pages (a bare frame when there is no viewer).
pub fn page(ctx: Option<&Ctx>, lang: Lang, error: ConsoleError) -> Response {
    if matches!(error, ConsoleError::SignIn) {
        return see_other("/login");
    }
    let status = error.status();
    let title = lang.pick("Permintaan ditolak", "Request refused");
    let body =
        html! { h1 { (title) } (error.alert(lang)) p { a href="/" { (lang.pick("Ke dasbor", "To the dashboard")) } } };
    match ctx {
        Some(ctx) => layout::page(ctx, status, title, body),
        None => layout::bare(lang, status, title, body),
    }
}

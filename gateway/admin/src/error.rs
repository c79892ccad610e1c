//! The one place an error of the admin API becomes a response: [`ApiError`] (the management plane's
//! [`ManageError`] and the listener's own few refusals), each with a stable `code`, its status, and an RFC 9457
//! `application/problem+json` body (`type`, `title`, `status`, `detail`, `code`, and `problems` listing every
//! reason a change would break the store).

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use penghubung_manage::ManageError;
use serde_json::json;

/// Why the admin API refused a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Refused by the management plane (authentication, permission, the store's checks, ...).
    #[error(transparent)]
    Manage(#[from] ManageError),
    /// No route has this path.
    #[error("no admin API route at {path}")]
    NoRoute { path: String },
    /// The path exists, the method does not.
    #[error("{method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    /// The request body is larger than `[admin] max_body`.
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: u64 },
}

impl ApiError {
    /// A 400 with `detail`.
    pub fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::Manage(ManageError::BadRequest { detail: detail.into() })
    }

    /// A 401 with `detail`.
    pub fn unauthenticated(detail: impl Into<String>) -> ApiError {
        ApiError::Manage(ManageError::Unauthenticated { detail: detail.into() })
    }

    /// A 403 with `detail`.
    pub fn forbidden(detail: impl Into<String>) -> ApiError {
        ApiError::Manage(ManageError::Forbidden { detail: detail.into() })
    }

    /// A 428 with `detail`.
    pub fn precondition_required(detail: impl Into<String>) -> ApiError {
        ApiError::Manage(ManageError::PreconditionRequired { detail: detail.into() })
    }

    /// A 503 with `detail`.
    pub fn unavailable(detail: impl Into<String>) -> ApiError {
        ApiError::Manage(ManageError::Unavailable { detail: detail.into() })
    }

    /// The stable code (`admin.forbidden`).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Manage(e) => e.code(),
            ApiError::NoRoute { .. } => "admin.no_route",
            ApiError::MethodNotAllowed { .. } => "admin.method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "admin.payload_too_large",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        let status = match self {
            ApiError::Manage(e) => e.status(),
            ApiError::NoRoute { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge { .. } => 413,
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// A short, fixed title per code.
    fn title(&self) -> &'static str {
        match self.code() {
            "admin.unauthenticated" => "Operator not authenticated",
            "admin.forbidden" => "Not allowed for this operator",
            "admin.not_found" => "Document not found",
            "admin.conflict" => "Conflicts with the current state",
            "admin.precondition_failed" => "The document changed since it was read",
            "admin.precondition_required" => "If-Match required",
            "admin.invalid_store" => "The change would break the store",
            "admin.bad_request" => "Bad request",
            "admin.unavailable" => "The store is unavailable",
            "admin.no_route" => "No such admin API route",
            "admin.method_not_allowed" => "Method not allowed",
            "admin.payload_too_large" => "Request body too large",
            _ => "Refused",
        }
    }

    /// The problem+json body.
    pub fn problem(&self) -> serde_json::Value {
        let code = self.code();
        let mut body = json!({
            "type": format!("urn:penghubung:problem:{code}"),
            "title": self.title(),
            "status": self.status().as_u16(),
            "code": code,
        });
        match self {
            ApiError::Manage(ManageError::InvalidStore { problems }) => {
                body["detail"] = json!(format!("the change was not written: {} problem(s)", problems.len()));
                body["problems"] = json!(problems);
            }
            other => body["detail"] = json!(other.to_string()),
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if status == StatusCode::UNAUTHORIZED {
            // A client certificate is how an operator authenticates today; the console adds a session.
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Certificate"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_of_an_invalid_store_is_listed() {
        let error = ApiError::from(ManageError::InvalidStore { problems: vec!["one".into(), "two".into()] });
        let body = error.problem();
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(body["code"], "admin.invalid_store");
        assert_eq!(body["problems"], json!(["one", "two"]));
        assert_eq!(body["type"], "urn:penghubung:problem:admin.invalid_store");
    }

    #[test]
    fn each_manage_error_keeps_its_code_and_status() {
        let cases = [
            (ManageError::Unauthenticated { detail: "x".into() }, 401),
            (ManageError::Forbidden { detail: "x".into() }, 403),
            (ManageError::NotFound { detail: "x".into() }, 404),
            (ManageError::Conflict { detail: "x".into() }, 409),
            (ManageError::PreconditionFailed { detail: "x".into() }, 412),
            (ManageError::PreconditionRequired { detail: "x".into() }, 428),
            (ManageError::BadRequest { detail: "x".into() }, 400),
            (ManageError::Unavailable { detail: "x".into() }, 503),
        ];
        for (error, status) in cases {
            let code = error.code();
            let api = ApiError::from(error);
            assert_eq!((api.status().as_u16(), api.code()), (status, code));
            assert_eq!(api.problem()["detail"], "x");
            assert_ne!(api.title(), "Refused", "{code} has a title");
        }
    }
}

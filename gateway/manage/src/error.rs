//! [`ManageError`]: why an operation of the management plane was refused, one stable code each. The admin API
//! maps it to problem+json in one place; the CLI prints its detail. A store failure ([`StoreError`]) becomes
//! one of these in one place too (`From`).

use penghubung_snapshot::store::StoreError;

/// Why an operation was refused or failed. Nothing was written when an operation returns one of these.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    /// No operator could be identified (no certificate, an unknown or disabled one).
    #[error("{detail}")]
    Unauthenticated { detail: String },
    /// The operator's roles (or OPD scope) do not allow the operation, or a rule of the two approvals forbids it.
    #[error("{detail}")]
    Forbidden { detail: String },
    #[error("{detail}")]
    NotFound { detail: String },
    /// The document exists already, or the lifecycle transition is not allowed from the current state.
    #[error("{detail}")]
    Conflict { detail: String },
    /// The `If-Match` etag is not the document's current one: someone changed it since it was read.
    #[error("{detail}")]
    PreconditionFailed { detail: String },
    /// A change of an existing document came without the etag it was read at.
    #[error("{detail}")]
    PreconditionRequired { detail: String },
    /// The store after the change would not compile: every reason.
    #[error("the change was not written; it would make the store invalid:\n{}", problems.join("\n"))]
    InvalidStore { problems: Vec<String> },
    #[error("{detail}")]
    BadRequest { detail: String },
    /// The store (or the CA, or the signing key) could not be read or written.
    #[error("{detail}")]
    Unavailable { detail: String },
    /// The store changed on another replica while this change was prepared: nothing was written.
    #[error("{detail}")]
    StoreConflict { detail: String },
    /// The shared store (Redis) cannot be reached: nothing was written.
    #[error("{detail}")]
    StoreUnavailable { detail: String },
}

impl From<StoreError> for ManageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { expected, found } => ManageError::StoreConflict {
                detail: format!(
                    "the store changed on another replica while this change was prepared (generation {expected}, \
                     now {found}); nothing was written: read it again and retry"
                ),
            },
            StoreError::Unavailable(detail) => ManageError::StoreUnavailable {
                detail: format!("the shared store cannot be reached, nothing was written: {detail}"),
            },
            StoreError::InvalidKey { .. } => ManageError::BadRequest { detail: e.to_string() },
            StoreError::Io { .. } => ManageError::Unavailable { detail: format!("the store: {e}") },
        }
    }
}

impl ManageError {
    /// The stable code (`admin.forbidden`).
    pub fn code(&self) -> &'static str {
        match self {
            ManageError::Unauthenticated { .. } => "admin.unauthenticated",
            ManageError::Forbidden { .. } => "admin.forbidden",
            ManageError::NotFound { .. } => "admin.not_found",
            ManageError::Conflict { .. } => "admin.conflict",
            ManageError::PreconditionFailed { .. } => "admin.precondition_failed",
            ManageError::PreconditionRequired { .. } => "admin.precondition_required",
            ManageError::InvalidStore { .. } => "admin.invalid_store",
            ManageError::BadRequest { .. } => "admin.bad_request",
            ManageError::Unavailable { .. } => "admin.unavailable",
            ManageError::StoreConflict { .. } => "store.conflict",
            ManageError::StoreUnavailable { .. } => "store.unavailable",
        }
    }

    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> u16 {
        match self {
            ManageError::Unauthenticated { .. } => 401,
            ManageError::Forbidden { .. } => 403,
            ManageError::NotFound { .. } => 404,
            ManageError::Conflict { .. } => 409,
            ManageError::PreconditionFailed { .. } => 412,
            ManageError::PreconditionRequired { .. } => 428,
            ManageError::InvalidStore { .. } => 422,
            ManageError::BadRequest { .. } => 400,
            ManageError::Unavailable { .. } => 503,
            ManageError::StoreConflict { .. } => 409,
            ManageError::StoreUnavailable { .. } => 503,
        }
    }

    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        ManageError::Forbidden { detail: detail.into() }
    }
    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        ManageError::NotFound { detail: detail.into() }
    }
    pub(crate) fn conflict(detail: impl Into<String>) -> Self {
        ManageError::Conflict { detail: detail.into() }
    }
    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        ManageError::BadRequest { detail: detail.into() }
    }
    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        ManageError::Unavailable { detail: detail.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_has_its_stable_code_and_status() {
        let detail = || "x".to_string();
        let table = [
            (ManageError::Unauthenticated { detail: detail() }, "admin.unauthenticated", 401),
            (ManageError::Forbidden { detail: detail() }, "admin.forbidden", 403),
            (ManageError::NotFound { detail: detail() }, "admin.not_found", 404),
            (ManageError::Conflict { detail: detail() }, "admin.conflict", 409),
            (ManageError::PreconditionFailed { detail: detail() }, "admin.precondition_failed", 412),
            (ManageError::PreconditionRequired { detail: detail() }, "admin.precondition_required", 428),
            (ManageError::InvalidStore { problems: vec![detail(), "y".into()] }, "admin.invalid_store", 422),
            (ManageError::BadRequest { detail: detail() }, "admin.bad_request", 400),
            (ManageError::Unavailable { detail: detail() }, "admin.unavailable", 503),
            (ManageError::StoreConflict { detail: detail() }, "store.conflict", 409),
            (ManageError::StoreUnavailable { detail: detail() }, "store.unavailable", 503),
        ];
        for (error, code, status) in table {
            assert_eq!((error.code(), error.status()), (code, status), "{error:?}");
        }
        let invalid = ManageError::InvalidStore { problems: vec!["a: one".into(), "b: two".into()] };
        assert!(invalid.to_string().ends_with("a: one\nb: two"), "every reason in the message: {invalid}");
    }
}

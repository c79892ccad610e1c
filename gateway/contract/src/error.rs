//! What holding a request to its contract refuses: the media type, the strict reading of the body (syntax,
//! duplicate keys, nesting, exact numbers), and the schemas of the body and the query. The gateway's error
//! module turns each into its problem response (`contract.*`, 415 or 400, with the violations, the line and
//! column, or the pointer as extension members); the contract itself knows no response.

use crate::violation::Violation;

/// Why a request does not meet its operation's contract.
#[derive(Debug, thiserror::Error)]
pub enum ContractError {
    /// `got`: the essence of the request's `Content-Type`, if it has one.
    #[error("this operation takes `{expected}`; the request's Content-Type is {}", got.as_deref().map_or("missing".to_string(), |g| format!("`{g}`")))]
    UnsupportedMediaType { expected: String, got: Option<String> },
    #[error("the request body is not valid JSON (line {line}, column {column}): {reason}")]
    MalformedJson { line: usize, column: usize, reason: String },
    /// `pointer`: the object member named twice.
    #[error("the request body names the member `{pointer}` more than once; each key of a JSON object must be unique")]
    DuplicateKey { pointer: String },
    #[error("the request body nests arrays and objects deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("the number at `{pointer}` has more precision than can be compared exactly (at most 17 significant digits, integers within 64 bits); send fewer digits, or a string")]
    NumberPrecision { pointer: String },
    #[error("the request body does not match the operation's contract ({} violation(s), see `violations`)", violations.len())]
    RequestInvalid { violations: Vec<Violation> },
    #[error("the query parameters do not match the operation's contract ({} violation(s), see `violations`)", violations.len())]
    QueryInvalid { violations: Vec<Violation> },
}

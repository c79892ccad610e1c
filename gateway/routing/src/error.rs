//! What routing refuses: a path that leads nowhere, a method the matched path does not offer, a path that is
//! not safe to forward. The gateway's error module turns each into its problem response (`route.not_found`,
//! `route.method_not_allowed` with `Allow`, `request.invalid_path`); routing itself knows no response.

use http::header::HeaderValue;
use http::Method;

/// Why a request path found no operation.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// No service at this address, or no operation of it on this path.
    #[error("nothing is registered at this path (no such service, or no such operation of it)")]
    NotFound,
    /// The path matches operations, none for this method (boxed: rare, and it would triple the error's size).
    #[error("the service has no operation for method {} on this path", .0.method)]
    MethodNotAllowed(Box<MethodNotAllowed>),
    /// A segment of the path is refused by [`super::path`].
    #[error("the request path is not acceptable: {reason}")]
    InvalidPath { reason: &'static str },
}

/// A path matched with another method: the request's method, and the `Allow` value naming those it offers.
#[derive(Debug)]
pub struct MethodNotAllowed {
    pub method: Method,
    pub allow: HeaderValue,
}

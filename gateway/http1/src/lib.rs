//! The HTTP/1.1 codec both roles share, as hyper's `proto/h1` does: the gateway's upstream client and its
//! HTTP/1.1 server parse heads and fields, decide and decode body framing, and write chunked bodies with the
//! same code.
//!
//! - [`decode`]: a response head parsed in place, header field positions ([`decode::field_spans`]), the body's
//!   framing as RFC 9112 §6.3 decides it, and the incremental body decoder (`Content-Length`, chunked, or until
//!   close).
//! - [`encode`]: how a body is delimited ([`encode::Framing`]) and the chunked framing.
//! - [`is_hop_by_hop`]: the fixed hop-by-hop fields, which neither side passes on.
//!
//! It names nothing of the gateway above it (neither role, nor the pipeline, its errors or the snapshot): it
//! depends on `http`, `http-body`, `bytes`, `httparse` and `smallvec` only.
#![forbid(unsafe_code)]

pub mod decode;
pub mod encode;

use http::header::{HeaderName, CONNECTION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};

const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
const PROXY_AUTHENTICATE: HeaderName = HeaderName::from_static("proxy-authenticate");
const PROXY_AUTHORIZATION: HeaderName = HeaderName::from_static("proxy-authorization");

/// Whether `name` is one of the fixed hop-by-hop headers (those a `Connection` header names come on top).
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    // Standard names compare as enum values; the two custom ones by bytes.
    *name == CONNECTION
        || *name == TE
        || *name == TRAILER
        || *name == TRANSFER_ENCODING
        || *name == UPGRADE
        || *name == PROXY_AUTHENTICATE
        || *name == PROXY_AUTHORIZATION
        || *name == KEEP_ALIVE
        || *name == PROXY_CONNECTION
}

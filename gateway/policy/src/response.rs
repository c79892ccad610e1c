//! Releasing upstream responses on operations with fields above the caller's clearance (the permit says which).
//! The rule: such a response leaves the gateway only once it has been filtered, whatever its status, content
//! type or form ([`release`]). The caller's range and conditional headers were not forwarded
//! (by the forward phase), so a partial answer (206) is never one the caller asked for and is withheld;
//! answers that carry no body (`HEAD`, 1xx, 204, 304) pass without one; a status whose schema marks fields is
//! buffered up to a limit, filtered by the [`RedactionPlan`] and sent with `X-Penghubung-Redacted` listing the
//! withheld pointer templates; a status whose schema marks nothing passes; a status the contract declares no
//! schema for (nor `default`) has nothing to filter by and is withheld unless its body is empty. Anything that
//! cannot be filtered (not JSON, compressed, too large, broken off) fails closed: 502 `policy.redaction_failed`,
//! never the unfiltered body. Responses of other operations, and of callers cleared for every marked field,
//! stream untouched. The functions work over any body; a body they replace comes back whole ([`Released`]),
//! for the caller to wrap in its own body type.

use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
};
use http::{Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};

use super::{OperationPolicy, RedactionPlan, ResponseFilter};
use penghubung_types::documents::Classification;

/// Lists the withheld fields of a filtered response.
pub const X_PENGHUBUNG_REDACTED: HeaderName = HeaderName::from_static("x-penghubung-redacted");

/// Why a response that must be filtered was withheld instead (fail closed).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the response of {service} could not be filtered: {reason}")]
pub struct RedactionError {
    /// The service's key.
    pub service: String,
    /// What made filtering impossible.
    pub reason: String,
}

/// What [`release`] lets out.
#[derive(Debug)]
pub enum Released<B> {
    /// The upstream's response, its body streaming untouched (its head may have lost range headers).
    Untouched(Response<B>),
    /// A response whose whole body is this: filtered, or empty.
    Whole(Response<Bytes>),
}

impl<B> Released<B> {
    /// The response, a whole body wrapped by `wrap`.
    pub fn into_response(self, wrap: impl FnOnce(Bytes) -> B) -> Response<B> {
        match self {
            Released::Untouched(response) => response,
            Released::Whole(response) => response.map(wrap),
        }
    }
}

/// Releases `response` (to a request of method `HEAD` when `head`) to a caller with `clearance` below some marked
/// field of the operation whose `policy` it is: filtered, passed without a body, or refused (see the module).
pub async fn release<B>(
    response: Response<B>,
    policy: &OperationPolicy,
    clearance: Classification,
    head: bool,
    limit: u64,
    timeout: Duration,
    service: &str,
) -> Result<Released<B>, RedactionError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let fail = |reason: String| RedactionError { service: service.to_string(), reason };
    let status = response.status();
    let (mut parts, body) = response.into_parts();
    // Parts are never served here: a filtered body has other byte offsets than the upstream's.
    parts.headers.remove(ACCEPT_RANGES);
    parts.headers.remove(CONTENT_RANGE);
    if status == StatusCode::PARTIAL_CONTENT {
        return Err(fail("the upstream answered 206 Partial Content, a part of a body that cannot be filtered".into()));
    }
    if head || status.is_informational() || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        // A form that carries no body: nothing to filter, nothing passed on but the head (the length of an
        // unfiltered representation is not repeated either).
        if head {
            parts.headers.remove(CONTENT_LENGTH);
        }
        parts.headers.remove(ETAG);
        return Ok(Released::Whole(Response::from_parts(parts, Bytes::new())));
    }
    match policy.filter_for(status.as_u16()) {
        ResponseFilter::Plan(plan) if plan.applies_to(clearance) => {
            let filtered = withhold_fields(Response::from_parts(parts, body), plan, clearance, limit, timeout, service);
            Ok(Released::Whole(filtered.await?))
        }
        ResponseFilter::Plan(_) | ResponseFilter::Unmarked => {
            Ok(Released::Untouched(Response::from_parts(parts, body)))
        }
        ResponseFilter::Undeclared => {
            let empty = body.is_end_stream()
                || body.size_hint().exact() == Some(0)
                || parts.headers.get(CONTENT_LENGTH).is_some_and(|v| v.as_bytes() == b"0");
            if empty {
                return Ok(Released::Whole(Response::from_parts(parts, Bytes::new())));
            }
            Err(fail(format!(
                "the upstream answered {}, a status whose body the contract declares no schema for, so it cannot be \
                 filtered (declare `responses.\"{}\".schema` or `responses.\"default\".schema`)",
                status.as_u16(),
                status.as_u16()
            )))
        }
    }
}

/// Filters `response` for a caller with `clearance`, returning the filtered body whole. `limit` bounds the
/// buffered body, `timeout` the time to read it.
pub async fn withhold_fields<B>(
    response: Response<B>,
    plan: &RedactionPlan,
    clearance: Classification,
    limit: u64,
    timeout: Duration,
    service: &str,
) -> Result<Response<Bytes>, RedactionError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let fail = |reason: String| RedactionError { service: service.to_string(), reason };
    let (mut parts, body) = response.into_parts();
    if parts.headers.get(CONTENT_ENCODING).is_some_and(|e| e.as_bytes() != b"identity") {
        return Err(fail("the upstream sent a compressed body".into()));
    }
    let is_json = parts.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(is_json_media_type);
    if !is_json {
        return Err(fail("the upstream's response is not JSON".into()));
    }
    if let Some(length) = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok()) {
        if length > limit {
            return Err(fail(format!("the body is {length} bytes, over the {limit}-byte limit for filtering")));
        }
    }
    let limited = Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    let bytes = match tokio::time::timeout(timeout, limited.collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) => return Err(fail(format!("reading the body failed: {e}"))),
        Err(_) => return Err(fail(format!("the body did not arrive within {timeout:?}"))),
    };
    let mut value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| fail(format!("the upstream's body is not valid JSON: {e}")))?;
    let withheld = plan.apply(&mut value, clearance);
    let body = if withheld.is_empty() {
        bytes
    } else {
        let header = HeaderValue::from_str(&withheld.join(", ")).map_err(|_| fail("field names".into()))?;
        parts.headers.insert(X_PENGHUBUNG_REDACTED, header);
        parts.headers.remove(ETAG); // the representation changed
        parts.headers.remove("digest");
        parts.headers.remove("repr-digest");
        parts.headers.remove("content-md5");
        Bytes::from(serde_json::to_vec(&value).map_err(|e| fail(e.to_string()))?)
    };
    parts.headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    Ok(Response::from_parts(parts, body))
}

/// `application/json`, `application/problem+json`, `application/vnd.x+json`, with or without parameters.
fn is_json_media_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Full;
    use serde_json::json;

    fn plan() -> RedactionPlan {
        RedactionPlan::compile(&json!({ "properties": { "nik": { "x-klasifikasi": "rahasia" } } })).unwrap().unwrap()
    }

    fn response(content_type: &str, body: &'static str) -> Response<Full<Bytes>> {
        let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        r.headers_mut().insert(ETAG, HeaderValue::from_static("\"v1\""));
        r
    }

    async fn run(r: Response<Full<Bytes>>, limit: u64) -> Result<(Response<()>, Bytes), RedactionError> {
        let r = withhold_fields(r, &plan(), Classification::Terbatas, limit, Duration::from_secs(5), "s").await?;
        let (parts, bytes) = r.into_parts();
        Ok((Response::from_parts(parts, ()), bytes))
    }

    #[tokio::test]
    async fn filters_json_and_says_what_was_withheld() {
        let (r, body) =
            run(response("application/json; charset=utf-8", r#"{"nik":"1","nama":"A"}"#), 1024).await.unwrap();
        assert_eq!(body, r#"{"nama":"A"}"#);
        assert_eq!(r.headers()[X_PENGHUBUNG_REDACTED], "/nik");
        assert_eq!(r.headers()[CONTENT_LENGTH], "12");
        assert!(r.headers().get(ETAG).is_none());
    }

    #[tokio::test]
    async fn fails_closed() {
        let not_json = run(response("text/plain", r#"{"nik":"1"}"#), 1024).await.unwrap_err();
        assert_eq!(not_json.service, "s", "{not_json:?}");
        assert!(run(response("application/json", r#"{"nik":"1"#), 1024).await.is_err(), "broken JSON");
        assert!(run(response("application/json", r#"{"nik":"1234567890"}"#), 8).await.is_err(), "over the limit");
        let mut gzip = response("application/json", "{}");
        gzip.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(run(gzip, 1024).await.is_err());
    }

    #[test]
    fn json_media_types() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/Problem+JSON; charset=utf-8"));
        assert!(!is_json_media_type("text/json"));
        assert!(!is_json_media_type("application/jsonp"));
    }
}

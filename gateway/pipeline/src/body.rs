//! The body the pipeline sends back to the caller, and the only place that names every kind of it: the
//! upstream's body ([`UpstreamBody`]), a small body the gateway wrote itself, or one of those inside the
//! wrappers the lower layers offer for any body: [`Metered`] (bytes charged to the caller OPD's byte limit) and
//! [`Audited`] (watched for the audit record). The enum keeps the plain path concrete (no box, no dynamic call
//! per frame); only the wrapped kinds are boxed, and only the exchanges that need them pay for it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;

use penghubung_audit::tap::{Audited, RecordLost};
use penghubung_ratelimit::Metered;
use penghubung_upstream::response::{UpstreamBody, UpstreamBodyError};

/// What the gateway sends back to the caller.
#[derive(Debug)]
pub enum ResponseBody {
    /// The upstream's body, streamed as it arrives.
    Upstream(UpstreamBody),
    /// A body the gateway produced (errors, gateway endpoints).
    Full(Full<Bytes>),
    /// A body whose bytes are charged to the caller OPD's byte limit (boxed: only such OPDs pay for it).
    Metered(Box<Metered<ResponseBody>>),
    /// Any of the above, watched for the audit record.
    Audited(Box<Audited<ResponseBody>>),
}

/// Why a response body broke off.
#[derive(Debug, thiserror::Error)]
pub enum ResponseBodyError {
    /// The upstream's body broke off, was malformed, or paused for too long.
    #[error(transparent)]
    Upstream(#[from] UpstreamBodyError),
    /// A sync service's record could not be made durable: the response is not completed.
    #[error("the audit record of this exchange could not be written; the response is withheld")]
    AuditUnavailable,
}

impl From<RecordLost> for ResponseBodyError {
    fn from(_: RecordLost) -> Self {
        ResponseBodyError::AuditUnavailable
    }
}

impl ResponseBody {
    pub fn full(bytes: Bytes) -> Self {
        ResponseBody::Full(Full::new(bytes))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            ResponseBody::Upstream(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(ResponseBodyError::Upstream(e)))),
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ResponseBody::Audited(b) => Pin::new(&mut **b).poll_frame(cx),
            ResponseBody::Metered(b) => Pin::new(&mut **b).poll_frame(cx),
            ResponseBody::Full(b) => match Pin::new(b).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(b) => b.is_end_stream(),
            ResponseBody::Full(b) => b.is_end_stream(),
            ResponseBody::Metered(b) => b.is_end_stream(),
            ResponseBody::Audited(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(b) => b.size_hint(),
            ResponseBody::Full(b) => b.size_hint(),
            ResponseBody::Metered(b) => b.size_hint(),
            ResponseBody::Audited(b) => b.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_final_body_is_no_larger_than_the_upstreams() {
        // Every request moves its response body a few times: the wrappers cost a box only when used, and the
        // plain upstream body travels in the final enum without growing it.
        assert_eq!(std::mem::size_of::<ResponseBody>(), std::mem::size_of::<UpstreamBody>());
    }

    #[test]
    fn a_lost_record_ends_the_body_as_audit_unavailable() {
        let error = ResponseBodyError::from(RecordLost);
        assert!(matches!(error, ResponseBodyError::AuditUnavailable));
        assert_eq!(error.to_string(), RecordLost.to_string());
    }
}

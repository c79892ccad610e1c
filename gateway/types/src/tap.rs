//! A watcher of a body as it streams ([`BodyTap`]): told each data chunk as it passes and when the body has
//! ended. The request body on its way upstream carries one only when something must see its bytes (the audit
//! trail hashes and scans them), so the body type does not name who watches it: the plain path carries `None`
//! and pays nothing; a watched body pays one dynamic call per chunk.

use std::fmt;

/// Watches a body's bytes as they pass. Dropped without [`BodyTap::finish`] when the body was cut off (an
/// implementation that must tell that apart does so in its `Drop`).
pub trait BodyTap: fmt::Debug + Send + Sync {
    /// The next data chunk of the body, in order.
    fn observe(&mut self, data: &[u8]);

    /// The body reached its end (called at most once by the body; an implementation may ignore a second call).
    fn finish(&mut self);
}

//! A deadline watched by a timer that is re-armed lazily, for deadlines that move with every request on a
//! long-lived connection (the head read timeout of a caller's connection, the request timeout of a pooled
//! upstream connection, the pause allowed within a body or a write: [`StallWatch`]). Moving the deadline
//! touches no timer: the timer, armed once, fires at its old deadline at the latest, and is only then pushed to
//! the current one. A `tokio::time::timeout` per request would insert into and remove from the timer wheel
//! (under its lock) on every request instead.

use std::future::Future;
use std::pin::Pin;
use std::task::Context;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// The timer of one connection; the deadline itself is passed in on each poll.
#[derive(Debug, Default)]
pub struct LazyTimer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl LazyTimer {
    /// Whether `deadline` has passed; if not, the task is woken at or before it. Deadlines are expected to move
    /// forward; an earlier one re-arms the timer at once.
    pub fn poll_expired(&mut self, deadline: Instant, cx: &mut Context<'_>) -> bool {
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        loop {
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            if sleep.deadline() >= deadline {
                return true;
            }
            sleep.as_mut().reset(deadline);
        }
    }
}

/// A wait that may last at most a given timeout after the last progress: the pause allowed within a body or a
/// write. The clock is read only when a wait begins (the first pending poll after progress), never while bytes
/// flow. The timeout is passed in on each poll (it lives in the configuration, not in every watch).
#[derive(Debug, Default)]
pub struct StallWatch {
    /// While waiting: when the wait runs out. `None` while bytes flow.
    deadline: Option<Instant>,
}

impl StallWatch {
    /// Bytes moved: the next wait starts afresh.
    pub fn progressed(&mut self) {
        self.deadline = None;
    }

    /// Called when the watched operation is pending: whether the wait has lasted the whole `timeout`; if not, the
    /// task is woken by `timer` when it would.
    pub fn poll_expired(&mut self, timeout: Duration, timer: &mut LazyTimer, cx: &mut Context<'_>) -> bool {
        let deadline = *self.deadline.get_or_insert_with(|| Instant::now() + timeout);
        timer.poll_expired(deadline, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::task::Poll;

    #[tokio::test]
    async fn a_moved_deadline_is_kept_and_a_passed_one_is_seen() {
        let mut timer = LazyTimer::default();
        let first = Instant::now() + Duration::from_millis(200);
        assert!(!poll_fn(|cx| Poll::Ready(timer.poll_expired(first, cx))).await);
        // The deadline moves on (a new request): the timer fires at the old one and is pushed, not expired.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = Instant::now() + Duration::from_millis(200);
        poll_fn(|cx| if timer.poll_expired(second, cx) { Poll::Ready(()) } else { Poll::Pending }).await;
        assert!(Instant::now() >= second, "expired at the moved deadline, not the first one");
        // A deadline earlier than the armed one takes effect at once.
        let mut timer = LazyTimer::default();
        let start = Instant::now();
        assert!(!poll_fn(|cx| Poll::Ready(timer.poll_expired(start + Duration::from_secs(60), cx))).await);
        let early = start + Duration::from_millis(50);
        poll_fn(|cx| if timer.poll_expired(early, cx) { Poll::Ready(()) } else { Poll::Pending }).await;
        assert!(Instant::now() >= early && start.elapsed() < Duration::from_secs(5));
    }
}

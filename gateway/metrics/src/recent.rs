//! Each thread's last few request series, so that a request whose labels the thread saw lately neither hashes
//! them nor reads the shared table, and its shard: the counters of a series are split into [`SHARDS`]
//! cache-line-aligned parts, and a thread adds to its own (threads are given shards in turn), so that two
//! workers do not contend for one cache line. A kept series is matched by its label values, not by where they
//! are stored, and by the [`crate::Metrics`] value it belongs to (each has an id never reused), so a reloaded
//! snapshot or a second `Metrics` is never served another's series.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::RequestSeries;

/// Shards per series: the counters of one series take `SHARDS` times the memory, and up to `SHARDS` threads
/// add without sharing a cache line.
pub(crate) const SHARDS: usize = 4;

/// Series kept per thread: a worker serves a handful of label combinations at a time.
const KEPT: usize = 4;

/// The next thread's shard.
static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static RECENT: RefCell<Recent> = const { RefCell::new(Recent::new()) };
}

/// One thread's recent series and its shard.
pub(crate) struct Recent {
    /// `(Metrics id, series)`; the newest replaces the oldest.
    kept: [Option<(u64, Arc<RequestSeries>)>; KEPT],
    /// Where the next series goes.
    next: usize,
    /// This thread's shard, `SHARDS` until it is given one.
    shard: usize,
}

impl Recent {
    const fn new() -> Recent {
        Recent { kept: [const { None }; KEPT], next: 0, shard: SHARDS }
    }

    /// Runs `f` with this thread's recent series; `None` while the thread is ending (its cache dropped) or
    /// should `f` reach it again.
    pub fn with<R>(f: impl FnOnce(&mut Recent) -> R) -> Option<R> {
        RECENT.try_with(|recent| recent.try_borrow_mut().ok().map(|mut recent| f(&mut recent))).ok().flatten()
    }

    /// Where a kept series of the `Metrics` with id `metrics` for which `counts` holds is.
    pub fn find(&self, metrics: u64, counts: impl Fn(&RequestSeries) -> bool) -> Option<usize> {
        self.kept.iter().position(|kept| kept.as_ref().is_some_and(|(id, series)| *id == metrics && counts(series)))
    }

    /// Keeps `series` of the `Metrics` with id `metrics` in place of the oldest; returns where.
    pub fn keep(&mut self, metrics: u64, series: Arc<RequestSeries>) -> usize {
        let at = self.next;
        self.kept[at] = Some((metrics, series));
        self.next = (at + 1) % KEPT;
        at
    }

    /// The series kept at `at`.
    pub fn get(&self, at: usize) -> Option<&RequestSeries> {
        self.kept.get(at)?.as_ref().map(|(_, series)| &**series)
    }

    /// This thread's shard of every series.
    pub fn shard(&mut self) -> usize {
        if self.shard == SHARDS {
            self.shard = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        self.shard
    }
}

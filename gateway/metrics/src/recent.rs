//! Each thread's last few request series, so that a request whose labels the thread saw lately neither hashes
//! them nor reads the shared table, and its shard: the counters of a series are split into [`SHARDS`]
//! cache-line-aligned parts, and a thread adds to its own (threads are given shards in turn), so that two
//! workers do not contend for one cache line.
//!
//! A kept series is found by the *addresses* of the observation's label values, not by their text: the request
//! path hands over the snapshot's own shared strings (`Arc<str>`), so a label compares in one instruction. The
//! entry holds a clone of each of those strings, which keeps them alive, so an address it compares can never
//! have been reused for another text. A reloaded snapshot's strings live elsewhere: its first request per thread
//! misses here, finds the same series in the shared table by text, and keeps it under the new addresses. An
//! entry also names the [`crate::Metrics`] value it belongs to (each has an id never reused), so a second
//! `Metrics` is never served another's series.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::{Observation, RequestSeries};

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

/// What a series is found by in a thread's cache, as machine words compared all at once: the addresses of the
/// four label strings (0 for an absent one), the address of the code (0 for none), and its length with the
/// status class and the `Metrics` id.
#[derive(Clone, Copy)]
pub(crate) struct Key([usize; 6]);

impl Key {
    /// The key of `o` (of status class `class`) in the `Metrics` with id `metrics`.
    pub fn of(metrics: u64, o: &Observation<'_>, class: usize) -> Key {
        let address = |label: Option<&Arc<str>>| label.map_or(0, |l| Arc::as_ptr(l).cast::<u8>() as usize);
        let (code, code_len) = o.code.map_or((0, 0), |c| (c.as_ptr() as usize, c.len()));
        let rest = class | (code_len & 0xffff) << 8 | (metrics as usize) << 24;
        Key([address(o.service), address(o.provider_opd), address(o.caller_opd), address(o.operation), code, rest])
    }

    /// Every word equal (without a branch per word).
    fn same(&self, other: &Key) -> bool {
        self.0.iter().zip(&other.0).fold(0, |differ, (a, b)| differ | (a ^ b)) == 0
    }
}

/// A kept series, its key, and the label strings the key's addresses point into (held, so that no address
/// can be reused for another text while the entry lives).
struct Kept {
    key: Key,
    _labels: [Option<Arc<str>>; 4],
    series: Arc<RequestSeries>,
}

/// One thread's recent series and its shard.
pub(crate) struct Recent {
    /// The newest replaces the oldest.
    kept: [Option<Kept>; KEPT],
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

    /// The kept series with `key`, when this thread has one.
    pub fn find(&self, key: &Key) -> Option<&RequestSeries> {
        self.kept.iter().flatten().find(|kept| kept.key.same(key)).map(|kept| &*kept.series)
    }

    /// Keeps `series`, found for `o`'s labels under `key`, in place of the oldest.
    pub fn keep(&mut self, key: Key, o: &Observation<'_>, series: Arc<RequestSeries>) {
        let labels = [o.service, o.provider_opd, o.caller_opd, o.operation].map(|label| label.cloned());
        self.kept[self.next] = Some(Kept { key, _labels: labels, series });
        self.next = (self.next + 1) % KEPT;
    }

    /// This thread's shard of every series.
    pub fn shard(&mut self) -> usize {
        if self.shard == SHARDS {
            self.shard = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
        }
        self.shard
    }
}

//! The series table, read by a thread's first request with a label combination (later ones find the series in
//! the thread's own cache, the `recent` module): a copy-on-write map read through an `ArcSwap` (no lock, no allocation on
//! a hit). A label combination seen for the first time copies the map once under a mutex; since every label
//! value comes from a set the snapshot knows (or a static code), the table stops growing after warm-up.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

/// Entries by the hash of their labels (colliding entries share a bucket).
type Buckets<E> = HashMap<u64, Box<[Arc<E>]>, BuildHasherDefault<Prehashed>>;

/// A series stored under a 64-bit hash of its labels; entries whose hashes collide share a bucket.
pub(crate) struct Table<E> {
    map: ArcSwap<Buckets<E>>,
    grow: Mutex<()>,
}

impl<E> Default for Table<E> {
    fn default() -> Self {
        Table { map: ArcSwap::from_pointee(HashMap::default()), grow: Mutex::new(()) }
    }
}

impl<E> std::fmt::Debug for Table<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("series", &self.map.load().values().map(|b| b.len()).sum::<usize>()).finish()
    }
}

impl<E> Table<E> {
    /// The entry with `hash` for which `matches` holds, made by `make` when there is none.
    pub fn get_or_insert(&self, hash: u64, matches: impl Fn(&E) -> bool, make: impl FnOnce() -> E) -> Arc<E> {
        if let Some(found) = self.map.load().get(&hash).and_then(|b| b.iter().find(|e| matches(e))) {
            return Arc::clone(found);
        }
        let _grow = self.grow.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.map.load_full();
        if let Some(found) = current.get(&hash).and_then(|b| b.iter().find(|e| matches(e))) {
            return Arc::clone(found);
        }
        let entry = Arc::new(make());
        let mut next = (*current).clone();
        let bucket = next.entry(hash).or_default();
        *bucket = bucket.iter().cloned().chain([Arc::clone(&entry)]).collect();
        self.map.store(Arc::new(next));
        entry
    }

    /// Every entry (for a scrape).
    pub fn entries(&self) -> Vec<Arc<E>> {
        self.map.load().values().flat_map(|b| b.iter().cloned()).collect()
    }
}

/// The map's keys are hashes already.
#[derive(Default)]
pub(crate) struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// FxHash-style mixing of label values (short ASCII identifiers): cheap and good enough for a table whose
/// entries are compared in full anyway.
#[derive(Clone, Copy)]
pub(crate) struct LabelHash(u64);

impl LabelHash {
    const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

    pub fn new() -> Self {
        LabelHash(0)
    }

    pub fn add(mut self, value: &str) -> Self {
        for chunk in value.as_bytes().chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        // The length separates ("ab","c") from ("a","bc").
        self.mix(value.len() as u64 | 1 << 63);
        self
    }

    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(Self::SEED);
    }

    pub fn finish(self) -> u64 {
        self.0
    }
}

//! The single writer: one OS thread owns the current segment file. It takes whatever records are queued (up
//! to [`MAX_BATCH`]), chains and seals them, appends them with one `write`, makes them durable with one
//! `fdatasync`, and only then wakes every waiter of the batch (group commit: one fsync for many concurrent
//! records). A batch nobody waits for (only `async` records) is written at once and fsynced with the next batch
//! that has a waiter, or within [`ASYNC_FSYNC_WITHIN`]; the durable position published to the shipper and the
//! health endpoint only moves after an fsync. It adds a signed checkpoint every `checkpoint_every` records or `checkpoint_interval`, rotates
//! segments by size and age (sealing the old one with a checkpoint; the new one starts with a `segment` record
//! whose `prev` is the last hash of the old one), and on start resumes the chain of the existing files.
//!
//! When a write or fsync fails (disk full, I/O error) the batch's waiters are told at once (their responses
//! fail), the health flag goes red (sync services then refuse new requests with `audit.unavailable`), the error
//! is logged loudly, and the same batch is retried every [`RETRY_EVERY`] until it is written: records are never
//! dropped. Meanwhile the queue fills up and async senders wait for a permit (backpressure).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{mpsc, oneshot};

use super::chain::{self, hex, GENESIS};
use super::keys::{checkpoint_message, SigningKey};
use super::record::{format_time, push_digits, Record};

/// Most records written with one fsync.
pub const MAX_BATCH: usize = 1024;
/// How often a failed write is retried.
pub const RETRY_EVERY: Duration = Duration::from_millis(500);
/// After a batch without sync waiters, the writer lets records gather this long before it looks again: fewer
/// wake-ups of the writer (each one costs the request threads a futex call) and fewer, larger writes. A batch
/// with sync waiters is followed at once (whatever queued during its fsync is the next group).
pub const LINGER: Duration = Duration::from_micros(500);
/// A batch nobody waits for (only `async` records) is written at once but fsynced at most this long after its
/// write: with the next batch that has a waiter, a checkpoint, a rotation, or when this much time has passed.
/// A killed process loses nothing written (it is in the page cache); a machine crash loses at most this much of
/// `async` records, never a `sync` one.
pub const ASYNC_FSYNC_WITHIN: Duration = Duration::from_millis(50);

/// Segment file names: `seg-{first seq, 20 digits}.jsonl`, so that names sort in chain order.
pub fn segment_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.jsonl")
}

/// The segment files of `dir`, in chain order.
pub fn segment_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("seg-") && n.ends_with(".jsonl"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Writer settings (from `[audit]`).
#[derive(Clone, Debug)]
pub struct WriterSettings {
    pub dir: PathBuf,
    pub checkpoint_every: u64,
    pub checkpoint_interval: Duration,
    pub segment_max_size: u64,
    pub segment_max_age: Duration,
    pub queue_capacity: usize,
    /// Keys the sanitiser that the caller's values in a record pass (the NIK secret).
    pub nik_key: ring::hmac::Key,
}

/// What the queue carries.
#[derive(Debug)]
pub enum Job {
    /// A record; the sender (sync) learns whether it is durable.
    Record(Record, Option<oneshot::Sender<bool>>),
    /// Write a checkpoint now and report when it is durable.
    Checkpoint(oneshot::Sender<bool>),
}

/// How far the log is durable: the `seq` of the last record that is on disk (written and fsynced), published by
/// the writer after every group commit. Readers of the segment files (the shipper) never read past it: a line
/// beyond it may still be cut off by a failed write.
#[derive(Debug, Default)]
pub struct Durable {
    seq: AtomicU64,
    /// Woken after every commit.
    pub changed: tokio::sync::Notify,
}

impl Durable {
    pub fn seq(&self) -> u64 {
        self.seq.load(Ordering::Acquire)
    }

    fn publish(&self, seq: u64) {
        if self.seq.swap(seq, Ordering::AcqRel) != seq {
            self.changed.notify_one();
        }
    }
}

/// The handle the gateway holds.
#[derive(Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Job>,
    failed: Arc<AtomicBool>,
    durable: Arc<Durable>,
}

impl AuditWriter {
    /// Resumes the chain in `settings.dir` (or starts one), opens a new segment, and starts the writer thread.
    /// Fails when the directory cannot be written.
    pub fn start(settings: WriterSettings, key: SigningKey) -> Result<AuditWriter, String> {
        std::fs::create_dir_all(&settings.dir).map_err(|e| format!("{}: {e}", settings.dir.display()))?;
        let resumed = resume(&settings.dir)?;
        let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
        let mut writer = Writer {
            segment: None,
            seq: resumed.seq,
            synced_seq: resumed.seq,
            unsynced_since: None,
            prev: resumed.hash,
            since_checkpoint: 0,
            last_checkpoint: Instant::now(),
            buf: Vec::with_capacity(256 * 1024),
            reason: "start",
            torn_bytes: resumed.torn_bytes,
            key,
            settings,
        };
        writer.write_batch(&[], false).map_err(|e| format!("{}: {e}", writer.settings.dir.display()))?;
        let durable = Arc::new(Durable::default());
        durable.publish(writer.synced_seq);
        let failed = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&failed);
        let published = Arc::clone(&durable);
        let relay = Relay::spawn();
        std::thread::Builder::new()
            .name("penghubung-audit".into())
            .spawn(move || run(writer, rx, flag, published, relay))
            .map_err(|e| format!("audit writer thread: {e}"))?;
        Ok(AuditWriter { tx, failed, durable })
    }

    /// How far the log is durable.
    pub fn durable(&self) -> &Arc<Durable> {
        &self.durable
    }

    /// Whether the last write failed (and is being retried), or the writer is gone.
    pub fn is_failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed) || self.tx.is_closed()
    }

    /// A queue slot, waiting while the queue is full (backpressure). `None` when the writer has stopped.
    pub async fn reserve(&self) -> Option<mpsc::OwnedPermit<Job>> {
        self.tx.clone().reserve_owned().await.ok()
    }

    /// A queue slot if one is free now.
    pub fn try_reserve(&self) -> Option<mpsc::OwnedPermit<Job>> {
        self.tx.clone().try_reserve_owned().ok()
    }

    /// A sender for contexts outside the runtime.
    pub fn sender(&self) -> mpsc::Sender<Job> {
        self.tx.clone()
    }

    /// Writes a checkpoint now; true once it is durable.
    pub async fn checkpoint(&self) -> bool {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Checkpoint(done)).await.is_err() {
            return false;
        }
        wait.await.unwrap_or(false)
    }
}

/// Where the chain stands.
struct Resumed {
    seq: u64,
    hash: String,
    torn_bytes: u64,
}

/// Finds the last record of the existing segments. A torn last line (a crash in the middle of a write: never
/// acknowledged) is moved aside to `<segment>.torn` and cut off, so the chain continues from the last whole
/// record; the next segment's first record says how many bytes were cut.
fn resume(dir: &Path) -> Result<Resumed, String> {
    let fail = |path: &Path, e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut torn_bytes = 0;
    let mut files = segment_files(dir).map_err(|e| fail(dir, &e))?;
    while let Some(path) = files.pop() {
        let bytes = std::fs::read(&path).map_err(|e| fail(&path, &e))?;
        let whole = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        if whole < bytes.len() {
            let torn = &bytes[whole..];
            torn_bytes += torn.len() as u64;
            let aside = path.with_extension("jsonl.torn");
            std::fs::write(&aside, torn).map_err(|e| fail(&aside, &e))?;
            let file = OpenOptions::new().write(true).open(&path).map_err(|e| fail(&path, &e))?;
            file.set_len(whole as u64).and_then(|()| file.sync_all()).map_err(|e| fail(&path, &e))?;
            tracing::warn!(
                target: "penghubung::audit",
                segment = %path.display(),
                bytes = torn.len(),
                kept = %aside.display(),
                "the last audit record was torn by a crash (never acknowledged); cut off and kept aside"
            );
        }
        if whole == 0 {
            // A segment whose first record never made it: nothing to resume from here.
            std::fs::remove_file(&path).map_err(|e| fail(&path, &e))?;
            continue;
        }
        let text = String::from_utf8_lossy(&bytes[..whole - 1]);
        let last = text.rsplit('\n').next().unwrap_or_default();
        let unreadable = || {
            format!(
                "{}: the last audit record is unreadable; run `penghubung audit verify {}` and move the damaged segment away",
                path.display(),
                dir.display()
            )
        };
        let (sealed, hash) = chain::split(last).ok_or_else(unreadable)?;
        let seq = serde_json::from_str::<serde_json::Value>(&format!("{sealed}}}"))
            .ok()
            .and_then(|v| v["seq"].as_u64())
            .ok_or_else(unreadable)?;
        return Ok(Resumed { seq, hash: hash.to_string(), torn_bytes });
    }
    Ok(Resumed { seq: 0, hash: GENESIS.to_string(), torn_bytes })
}

struct Segment {
    file: File,
    size: u64,
    opened: Instant,
}

impl Segment {
    /// Appends and makes durable; on failure cuts the file back to where it was.
    fn append(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.append_with(bytes, true)
    }

    /// Appends, and makes durable when `sync` (with what earlier unsynced appends wrote); on failure cuts the file
    /// back to where it was before this append.
    fn append_with(&mut self, bytes: &[u8], sync: bool) -> std::io::Result<()> {
        let written = self.file.write_all(bytes);
        match written.and_then(|()| if sync { self.file.sync_data() } else { Ok(()) }) {
            Ok(()) => {
                self.size += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = self.file.set_len(self.size);
                Err(e)
            }
        }
    }
}

struct Writer {
    settings: WriterSettings,
    key: SigningKey,
    segment: Option<Segment>,
    /// The last record written (durable when `unsynced_since` is `None`).
    seq: u64,
    /// The last durable record (published to `Durable`).
    synced_seq: u64,
    /// When the oldest write not yet fsynced was made.
    unsynced_since: Option<Instant>,
    prev: String,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    buf: Vec<u8>,
    /// Why the next segment starts.
    reason: &'static str,
    torn_bytes: u64,
}

/// Opens `{"seq":…,"prev":"…","kind":"…"` in `buf`; returns where the record starts.
fn open_record(buf: &mut Vec<u8>, seq: u64, prev: &str, kind: &str) -> usize {
    let start = buf.len();
    buf.extend_from_slice(b"{\"seq\":");
    push_digits(buf, seq, 1);
    buf.extend_from_slice(b",\"prev\":\"");
    buf.extend_from_slice(prev.as_bytes());
    buf.extend_from_slice(b"\",\"kind\":\"");
    buf.extend_from_slice(kind.as_bytes());
    buf.push(b'"');
    start
}

impl Writer {
    /// Appends a signed checkpoint for `seq` after `prev`; returns its hash.
    fn encode_checkpoint(&mut self, seq: u64, prev: &str) -> String {
        let start = open_record(&mut self.buf, seq, prev, "checkpoint");
        let signature = self.key.sign(&checkpoint_message(seq, prev));
        let _ = write!(
            self.buf,
            ",\"time\":\"{}\",\"key\":\"{}\",\"sig\":\"{signature}\"",
            format_time(SystemTime::now()),
            self.key.key_id
        );
        hex(&chain::seal(&mut self.buf, start))
    }

    fn needs_new_segment(&self) -> bool {
        self.segment.as_ref().is_none_or(|s| {
            s.size >= self.settings.segment_max_size || s.opened.elapsed() >= self.settings.segment_max_age
        })
    }

    /// Seals the current segment (if any) with a checkpoint and starts the next one.
    fn rotate(&mut self) -> std::io::Result<()> {
        if self.segment.is_some() {
            self.buf.clear();
            let seq = self.seq + 1;
            let prev = std::mem::take(&mut self.prev);
            let hash = self.encode_checkpoint(seq, &prev);
            self.prev = prev;
            let buf = std::mem::take(&mut self.buf);
            let result = self.segment.as_mut().map_or(Ok(()), |s| s.append(&buf));
            self.buf = buf;
            result?;
            (self.seq, self.prev) = (seq, hash);
            self.since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        }
        let seq = self.seq + 1;
        let name = segment_name(seq);
        let path = self.settings.dir.join(&name);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.set_len(0)?;
        self.buf.clear();
        let start = open_record(&mut self.buf, seq, &self.prev, "segment");
        let _ = write!(
            self.buf,
            ",\"time\":\"{}\",\"file\":\"{name}\",\"reason\":\"{}\",\"key\":\"{}\"",
            format_time(SystemTime::now()),
            self.reason,
            self.key.key_id
        );
        if self.torn_bytes > 0 {
            let _ = write!(self.buf, ",\"torn_bytes\":{}", self.torn_bytes);
        }
        let hash = hex(&chain::seal(&mut self.buf, start));
        file.write_all(&self.buf)?;
        file.sync_all()?;
        File::open(&self.settings.dir)?.sync_all()?;
        self.segment = Some(Segment { file, size: self.buf.len() as u64, opened: Instant::now() });
        (self.seq, self.prev) = (seq, hash);
        (self.synced_seq, self.unsynced_since) = (seq, None);
        self.since_checkpoint += 1;
        self.reason = "rotate";
        self.torn_bytes = 0;
        Ok(())
    }

    fn checkpoint_due(&self, pending: u64) -> bool {
        let total = self.since_checkpoint + pending;
        total > 0
            && (total >= self.settings.checkpoint_every
                || self.last_checkpoint.elapsed() >= self.settings.checkpoint_interval)
    }

    /// Writes `jobs`' records (and a checkpoint when due or `force`d) with one write and one fsync. On failure
    /// nothing of the batch is kept in the file, and the same batch may be written again.
    fn write_batch(&mut self, jobs: &[Job], force: bool) -> std::io::Result<()> {
        let has_records = jobs.iter().any(|j| matches!(j, Job::Record(..)));
        let work = has_records || (force && self.since_checkpoint > 0) || self.checkpoint_due(0);
        if !work && self.segment.is_some() {
            return self.sync_if_due(); // nothing to write: no rotation either
        }
        if self.needs_new_segment() {
            self.rotate()?;
        }
        self.buf.clear();
        let (mut seq, mut prev) = (self.seq, std::mem::take(&mut self.prev));
        let durable_prev = prev.clone();
        let mut count = 0;
        for job in jobs {
            if let Job::Record(record, _) = job {
                seq += 1;
                let start = open_record(&mut self.buf, seq, &prev, record.kind());
                record.write_members(&mut self.buf, &self.settings.nik_key);
                let hash = chain::seal(&mut self.buf, start);
                prev.clear();
                chain::push_hex(&mut prev, &hash);
                count += 1;
            }
        }
        let checkpoint = (force && self.since_checkpoint + count > 0) || self.checkpoint_due(count);
        if checkpoint {
            seq += 1;
            prev = self.encode_checkpoint(seq, &prev);
        }
        if self.buf.is_empty() {
            self.prev = durable_prev;
            return Ok(());
        }
        // fsync now when somebody waits for it (a sync record, a checkpoint, shutdown) or when an earlier write has
        // waited long enough; otherwise later (ASYNC_FSYNC_WITHIN)
        let waited = jobs.iter().any(|j| matches!(j, Job::Record(_, Some(_)) | Job::Checkpoint(_)));
        let sync =
            force || checkpoint || waited || self.unsynced_since.is_some_and(|t| t.elapsed() >= ASYNC_FSYNC_WITHIN);
        let buf = std::mem::take(&mut self.buf);
        let result = match self.segment.as_mut() {
            Some(segment) => segment.append_with(&buf, sync),
            None => Err(std::io::Error::other("no open segment")),
        };
        self.buf = buf;
        if let Err(e) = result {
            self.prev = durable_prev;
            return Err(e);
        }
        (self.seq, self.prev) = (seq, prev);
        if sync {
            (self.synced_seq, self.unsynced_since) = (seq, None);
        } else if self.unsynced_since.is_none() {
            self.unsynced_since = Some(Instant::now());
        }
        if checkpoint {
            self.since_checkpoint = 0;
            self.last_checkpoint = Instant::now();
        } else {
            self.since_checkpoint += count;
        }
        Ok(())
    }

    /// fsyncs what earlier batches wrote once it has waited [`ASYNC_FSYNC_WITHIN`].
    fn sync_if_due(&mut self) -> std::io::Result<()> {
        if self.unsynced_since.is_some_and(|t| t.elapsed() >= ASYNC_FSYNC_WITHIN) {
            if let Some(segment) = self.segment.as_mut() {
                segment.file.sync_data()?;
            }
            (self.synced_seq, self.unsynced_since) = (self.seq, None);
        }
        Ok(())
    }

    /// How long the writer may sleep before a time-based checkpoint (or a deferred fsync) is due.
    fn idle_wait(&self) -> Duration {
        let wait = self.checkpoint_wait();
        match self.unsynced_since {
            Some(t) => wait.min(ASYNC_FSYNC_WITHIN.saturating_sub(t.elapsed()).max(Duration::from_millis(1))),
            None => wait,
        }
    }

    fn checkpoint_wait(&self) -> Duration {
        if self.since_checkpoint == 0 {
            self.settings.checkpoint_interval.max(Duration::from_millis(100))
        } else {
            self.settings
                .checkpoint_interval
                .saturating_sub(self.last_checkpoint.elapsed())
                .max(Duration::from_millis(1))
        }
    }
}

/// The waiters of one group and whether their records are durable.
type Outcome = (Vec<oneshot::Sender<bool>>, bool);

/// Tells the `sync` waiters of a group from inside the gateway's runtime. Waking a task from the writer thread
/// costs a system call per task (the runtime's event fd); the relay is one task on the runtime, woken once per
/// group, that then tells each waiter with a local, syscall-free wake.
#[derive(Clone)]
struct Relay(mpsc::UnboundedSender<Outcome>);

impl Relay {
    /// A relay on the current tokio runtime, or `None` outside one (waiters are then told directly).
    fn spawn() -> Option<Relay> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let (tx, mut rx) = mpsc::unbounded_channel::<Outcome>();
        runtime.spawn(async move {
            while let Some((waiters, durable)) = rx.recv().await {
                for waiter in waiters {
                    let _ = waiter.send(durable);
                }
            }
        });
        Some(Relay(tx))
    }
}

/// Tells the group's `sync` waiters whether their records are durable: through the relay, or directly when
/// there is none (or its runtime has stopped).
fn notify(jobs: &mut [Job], durable: bool, relay: Option<&Relay>) {
    let waiters: Vec<oneshot::Sender<bool>> = jobs
        .iter_mut()
        .filter_map(|job| match job {
            Job::Record(_, waiter) => waiter.take(),
            Job::Checkpoint(_) => None,
        })
        .collect();
    if waiters.is_empty() {
        return;
    }
    let unsent = match relay {
        Some(relay) => match relay.0.send((waiters, durable)) {
            Ok(()) => return,
            Err(mpsc::error::SendError((waiters, _))) => waiters,
        },
        None => waiters,
    };
    for waiter in unsent {
        let _ = waiter.send(durable);
    }
}

fn run(
    mut writer: Writer,
    mut rx: mpsc::Receiver<Job>,
    failed: Arc<AtomicBool>,
    durable: Arc<Durable>,
    relay: Option<Relay>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
        Ok(r) => r,
        Err(e) => {
            failed.store(true, Ordering::SeqCst);
            tracing::error!(target: "penghubung::audit", error = %e, "AUDIT WRITER COULD NOT START: audit records cannot be written");
            return;
        }
    };
    runtime.block_on(async move {
        let mut jobs: Vec<Job> = Vec::with_capacity(MAX_BATCH);
        loop {
            let closed = match tokio::time::timeout(writer.idle_wait(), rx.recv_many(&mut jobs, MAX_BATCH)).await {
                Ok(0) => true,
                Ok(_) | Err(_) => false,
            };
            let force = closed || jobs.iter().any(|j| matches!(j, Job::Checkpoint(_)));
            let mut told_failure = false;
            loop {
                match writer.write_batch(&jobs, force) {
                    Ok(()) => {
                        durable.publish(writer.synced_seq);
                        if failed.swap(false, Ordering::SeqCst) {
                            tracing::warn!(target: "penghubung::audit", "audit log writable again; held records written, sync services accept requests");
                        }
                        break;
                    }
                    Err(e) => {
                        if !failed.swap(true, Ordering::SeqCst) {
                            tracing::error!(
                                target: "penghubung::audit",
                                dir = %writer.settings.dir.display(),
                                error = %e,
                                records = jobs.len(),
                                "AUDIT LOG UNAVAILABLE: records cannot be made durable; sync services refuse requests \
                                 (503 audit.unavailable), async services wait once the queue is full; the records are \
                                 held in memory and retried"
                            );
                        }
                        if !told_failure {
                            notify(&mut jobs, false, relay.as_ref());
                            told_failure = true;
                        }
                        tokio::time::sleep(RETRY_EVERY).await;
                    }
                }
            }
            let waiters = jobs.iter().any(|j| matches!(j, Job::Record(_, Some(_)) | Job::Checkpoint(_)));
            let records = jobs.len();
            notify(&mut jobs, true, relay.as_ref());
            for job in jobs.drain(..) {
                if let Job::Checkpoint(done) = job {
                    let _ = done.send(true);
                }
            }
            if closed {
                break;
            }
            if records > 0 && records < MAX_BATCH && !waiters {
                std::thread::sleep(LINGER);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::{HeaderValue, Method};

    use super::*;
    use crate::keys;
    use crate::record::{ChangeAction, ChangeRecord, ExchangeRecord};
    use penghubung_types::documents::AuditDurability;

    fn exchange(i: u64) -> Record {
        Record::Exchange(Box::new(ExchangeRecord {
            time: SystemTime::now(),
            request_id: HeaderValue::from_str(&format!("req-{i}")).unwrap(),
            traceparent: Some(HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")),
            client: Some(HeaderValue::from_static("dinsos/sikasos")),
            opd: Some(HeaderValue::from_static("dinsos")),
            service: Some(Arc::from("disdukcapil/kependudukan/v1")),
            operation: Some(Arc::from("ambil-penduduk")),
            method: Method::GET,
            path: Some(Arc::from("/penduduk/{nik}")),
            purpose: Some(HeaderValue::from_static("penyaluran-bansos")),
            code: (i % 2 == 1).then_some("policy.no_grant"),
            status: 200,
            bytes_in: 0,
            bytes_out: 12,
            latency_us: 345,
            upstream: Some(Arc::from("http://10.0.0.1:8080")),
            request_sha256: Some([1; 32]),
            response_sha256: Some([2; 32]),
            withheld: Some(HeaderValue::from_static("/nama_ibu_kandung")),
            nik: vec![chain::hex(&[3; 32])],
            nik_overflow: false,
            complete: true,
            durability: AuditDurability::Sync,
        }))
    }

    #[tokio::test]
    async fn group_commit_rotation_and_every_line_matches_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let key = keys::generate(&dir.path().join("k.key"), &dir.path().join("k.pub")).unwrap();
        let log = dir.path().join("audit");
        let settings = WriterSettings {
            dir: log.clone(),
            checkpoint_every: 7,
            checkpoint_interval: Duration::from_secs(3600),
            segment_max_size: 3000,
            segment_max_age: Duration::from_secs(3600),
            queue_capacity: 64,
            nik_key: crate::sanitise::process_key().clone(),
        };
        let writer = AuditWriter::start(settings.clone(), key).unwrap();
        // Sync waiters: all are told once their batch is durable.
        let mut waits = Vec::new();
        for i in 0..20 {
            let (done, wait) = oneshot::channel();
            writer.sender().send(Job::Record(exchange(i), Some(done))).await.unwrap();
            waits.push(wait);
        }
        for wait in waits {
            assert!(wait.await.unwrap());
        }
        let change = ChangeRecord {
            time: SystemTime::now(),
            who: "file".into(),
            document: "grants/a.toml".into(),
            action: ChangeAction::Changed,
            before: Some([4; 32]),
            after: Some([5; 32]),
            reason: None,
            generation: 2,
        };
        writer.sender().send(Job::Record(Record::Change(Box::new(change)), None)).await.unwrap();
        // A security event and a summary of suppressed ones.
        for (peer, suppressed) in
            [(Some("192.0.2.1:4433".parse().unwrap()), None), (None, Some((7, SystemTime::now())))]
        {
            let event = crate::record::SecurityRecord {
                time: SystemTime::now(),
                code: "tls.unknown_ca",
                peer,
                suppressed,
                console: None,
            };
            writer.sender().send(Job::Record(Record::Security(Box::new(event)), None)).await.unwrap();
        }
        assert!(writer.checkpoint().await);
        drop(writer);

        let schema: serde_json::Value =
            serde_json::from_str(penghubung_types::embedded::schema("audit/record.schema.json").unwrap()).unwrap();
        let validator = jsonschema::validator_for(&schema).unwrap();
        let files = segment_files(&log).unwrap();
        assert!(files.len() >= 2, "rotated by size: {files:?}");
        let mut kinds = std::collections::HashMap::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            for line in text.lines() {
                let value: serde_json::Value = serde_json::from_str(line).unwrap();
                let errors: Vec<String> = validator.iter_errors(&value).map(|e| e.to_string()).collect();
                assert!(errors.is_empty(), "{line}: {errors:?}");
                *kinds.entry(value["kind"].as_str().unwrap().to_string()).or_insert(0) += 1;
            }
        }
        assert_eq!(kinds["exchange"], 20);
        assert_eq!(kinds["change"], 1);
        assert_eq!(kinds["security"], 2);
        assert_eq!(kinds["segment"], files.len());
        assert!(kinds["checkpoint"] >= 2, "{kinds:?}");

        // A crash in the middle of a write leaves a torn line; a restart cuts it off (keeping it aside), notes it
        // in the new segment's first record and resumes the chain.
        let last = files.last().unwrap();
        let mut text = std::fs::read_to_string(last).unwrap();
        text.push_str("{\"seq\":999,\"prev\":\"ab");
        std::fs::write(last, &text).unwrap();
        let key = keys::SigningKey::read(&dir.path().join("k.key")).unwrap();
        let public = key.public();
        let writer = AuditWriter::start(settings, key).unwrap();
        assert!(writer.checkpoint().await);
        drop(writer);
        let report = crate::verify::verify_dir(&log, &public).unwrap();
        assert!(report.ok(), "{report:?}");
        assert!(report.warnings.is_empty(), "{report:?}");
        assert_eq!(report.segments, files.len() + 1);
        assert_eq!(std::fs::read_to_string(last.with_extension("jsonl.torn")).unwrap(), "{\"seq\":999,\"prev\":\"ab");
        let newest = segment_files(&log).unwrap().pop().unwrap();
        let header: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(newest).unwrap().lines().next().unwrap()).unwrap();
        assert_eq!(header["torn_bytes"], 21);
        assert_eq!(header["reason"], "start");
    }
}

//! Shipping the audit trail to a Redis Stream for central collection (`[redis]` configured and
//! `[audit] ship_to_redis`, the default). The local segment files stay the durable source: the shipper only
//! *reads* them, and only up to the last record the writer made durable ([`Durable`]); it never holds records of
//! its own, so a Redis outage loses nothing and never slows the data plane or the writer.
//!
//! Every record line becomes one entry of the stream `[audit] redis_stream` (one per replica: the key carries
//! the gateway id), with the record's `seq` as the entry id (`{seq}-0`) and the fields `seq`, `hash` and `line`
//! (the exact line, so a collector can re-verify the chain and the checkpoint signatures). Redis only accepts
//! explicit ids above the stream's last one, so shipping is idempotent: a record shipped twice is refused
//! (`equal or smaller than the target stream top item`), never stored twice.
//!
//! On (re)connection the shipper reads where the stream stands (`XINFO STREAM`: its last id, and its last entry),
//! checks that the last entry's `hash` is the local record's with that `seq` (another chain in the same stream is a conflict: reported,
//! nothing shipped), and ships every record after it, in `seq` order, in pipelined batches of at most
//! [`MAX_BATCH`] entries / [`MAX_BATCH_BYTES`], reading from the files. While Redis is unreachable it retries
//! with backoff (50 ms doubling up to `[redis] max_reconnect_backoff`), logs the loss once (`warn`) and the
//! recovery once (`info`). It runs on its own thread with its own runtime and its own Redis connection (the
//! rate limiter's connection stays free for requests).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use tokio::sync::Notify;

use super::chain;
use super::writer::{segment_files, segment_name, Durable};
use penghubung_types::config::{redacted_url, RedisConfig};

/// Most entries per round trip.
pub const MAX_BATCH: usize = 512;
/// Most line bytes per round trip (a bigger single line still goes, alone).
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// A batch must be acknowledged within this.
const BATCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Even without a wake-up from the writer, look at the files this often.
const POLL: Duration = Duration::from_secs(1);

const DOWN: u8 = 0;
const UP: u8 = 1;
const CONFLICT: u8 = 2;

/// What the gateway holds: the shipper's state, for health and shutdown.
#[derive(Debug)]
pub struct Shipper {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    stream: String,
    url: String,
    /// The last `seq` known to be in the stream.
    shipped: AtomicU64,
    redis: AtomicU8,
    stopping: AtomicBool,
    stop: Notify,
}

impl Shipper {
    /// Starts shipping the records of `dir` (as far as `durable` says) to `stream` on its own thread.
    pub fn start(redis: &RedisConfig, stream: String, dir: PathBuf, durable: Arc<Durable>) -> Result<Shipper, String> {
        let connector = penghubung_redis::Connector::of_config(redis)?;
        let state = Arc::new(State {
            stream,
            url: redacted_url(&redis.url),
            shipped: AtomicU64::new(0),
            redis: AtomicU8::new(DOWN),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
        });
        let settings = Settings {
            connector,
            connect_timeout: redis.timeout.0.max(Duration::from_secs(1)),
            max_backoff: redis.max_reconnect_backoff.0.max(Duration::from_millis(50)),
        };
        let running = Arc::clone(&state);
        std::thread::Builder::new()
            .name("penghubung-audit-ship".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!(target: "penghubung::audit", error = %e, "the audit shipper could not start");
                        return;
                    }
                };
                let mut reader = Reader::new(dir);
                runtime.block_on(running.run(&settings, &mut reader, &durable));
            })
            .map_err(|e| format!("audit shipper thread: {e}"))?;
        Ok(Shipper { state })
    }

    /// The stream's key.
    pub fn stream(&self) -> &str {
        &self.state.stream
    }

    /// The last `seq` known to be in the stream.
    pub fn shipped_seq(&self) -> u64 {
        self.state.shipped.load(Ordering::Acquire)
    }

    /// `up`, `down` or `conflict` (the stream holds another chain).
    pub fn redis_state(&self) -> &'static str {
        match self.state.redis.load(Ordering::Acquire) {
            UP => "up",
            CONFLICT => "conflict",
            _ => "down",
        }
    }

    /// Waits (at most `limit`) until everything durable up to `seq` is shipped, or Redis is not up.
    pub async fn wait_shipped(&self, seq: u64, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.shipped_seq() >= seq {
                return true;
            }
            if self.redis_state() != "up" || tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Shipper {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::Release);
        self.state.stop.notify_one();
    }
}

struct Settings {
    connector: penghubung_redis::Connector,
    connect_timeout: Duration,
    max_backoff: Duration,
}

/// Why a session with Redis ended.
enum Ended {
    Stopped,
    /// Unreachable, timed out or failed: reconnect with backoff.
    Lost(String),
    /// The stream is not ours to continue (another chain, not a stream, ahead of the files), or the local files
    /// cannot be read: reported, retried slowly.
    Conflict(String),
}

/// Where the stream stands: the `seq` of its last id (0 when there is none) and the `hash` of that entry (when
/// it is still there).
struct Top {
    seq: u64,
    hash: Option<String>,
}

impl State {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Sleeps `wait`; false when the shipper is stopping.
    async fn pause(&self, wait: Duration) -> bool {
        if self.stopping() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => !self.stopping(),
            _ = self.stop.notified() => false,
        }
    }

    async fn run(&self, settings: &Settings, reader: &mut Reader, durable: &Durable) {
        let mut backoff = Duration::from_millis(50);
        // The loss (or the conflict) was logged and the recovery is not yet.
        let mut reported: Option<u8> = None;
        let mut ever_up = false;
        while !self.stopping() {
            let ended = match self.connect(settings).await {
                Ok(mut connection) => {
                    self.session(&mut connection, reader, durable, &mut |shipper: &State, from: u64| {
                        if reported.take().is_some() {
                            tracing::info!(
                                target: "penghubung::audit",
                                redis = %shipper.url,
                                stream = %shipper.stream,
                                from_seq = from + 1,
                                "Redis is reachable again: shipping the audit records it is missing"
                            );
                        } else if !ever_up {
                            tracing::info!(
                                target: "penghubung::audit",
                                redis = %shipper.url,
                                stream = %shipper.stream,
                                from_seq = from + 1,
                                "shipping audit records to a Redis stream"
                            );
                        }
                        ever_up = true;
                    })
                    .await
                }
                Err(e) => Ended::Lost(e),
            };
            if self.stopping() {
                return;
            }
            match ended {
                Ended::Stopped => return,
                Ended::Lost(reason) => {
                    let was_up = self.redis.swap(DOWN, Ordering::AcqRel) == UP;
                    if reported != Some(DOWN) {
                        tracing::warn!(
                            target: "penghubung::audit",
                            redis = %self.url,
                            stream = %self.stream,
                            reason,
                            shipped_seq = self.shipped.load(Ordering::Acquire),
                            "Redis is unreachable: audit records are not shipped for now (nothing is lost: the local \
                             files keep them, and shipping resumes where it stopped once Redis is back)"
                        );
                        reported = Some(DOWN);
                    } else {
                        tracing::debug!(target: "penghubung::audit", reason, ?backoff, "Redis still unreachable");
                    }
                    if was_up {
                        backoff = Duration::from_millis(50);
                    }
                    if !self.pause(backoff).await {
                        return;
                    }
                    backoff = (backoff * 2).min(settings.max_backoff);
                }
                Ended::Conflict(reason) => {
                    self.redis.store(CONFLICT, Ordering::Release);
                    if reported != Some(CONFLICT) {
                        tracing::error!(
                            target: "penghubung::audit",
                            redis = %self.url,
                            stream = %self.stream,
                            reason,
                            "AUDIT RECORDS NOT SHIPPED: the Redis stream cannot be continued (give this replica its \
                             own stream with [audit] gateway_id or redis_stream, or move the stream away); the local \
                             files keep every record"
                        );
                        reported = Some(CONFLICT);
                    }
                    if !self.pause(settings.max_backoff.max(Duration::from_secs(1))).await {
                        return;
                    }
                }
            }
        }
    }

    async fn connect(&self, settings: &Settings) -> Result<MultiplexedConnection, String> {
        let attempt = settings.connector.connect(settings.connect_timeout, BATCH_TIMEOUT);
        tokio::select! {
            result = tokio::time::timeout(settings.connect_timeout * 2, attempt) => match result {
                Ok(Ok(connection)) => Ok(connection),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no connection within {:?}", settings.connect_timeout * 2)),
            },
            _ = self.stop.notified() => Err("stopping".into()),
        }
    }

    /// Where the stream stands (`XINFO STREAM`): its last id (also when entries at its end were deleted: Redis
    /// refuses ids up to it) and, when the last entry is still there, its `hash`.
    async fn top(&self, connection: &mut MultiplexedConnection) -> Result<Top, Ended> {
        let mut command = redis::cmd("XINFO");
        command.arg("STREAM").arg(&self.stream);
        let info = match tokio::time::timeout(BATCH_TIMEOUT, command.query_async::<redis::Value>(connection)).await {
            Ok(Ok(info)) => info,
            Ok(Err(e)) if e.to_string().contains("no such key") => return Ok(Top { seq: 0, hash: None }),
            Ok(Err(e)) if e.to_string().contains("WRONGTYPE") => {
                return Err(Ended::Conflict(format!("`{}` is not a stream: {e}", self.stream)))
            }
            Ok(Err(e)) => return Err(Ended::Lost(e.to_string())),
            Err(_) => return Err(Ended::Lost(format!("no answer within {BATCH_TIMEOUT:?}"))),
        };
        let members = members(info);
        let member = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| v);
        let text = |v: &redis::Value| redis::from_redis_value::<String>(v).ok();
        let generated = member("last-generated-id").and_then(text).unwrap_or_default();
        let seq = generated.strip_suffix("-0").and_then(|s| s.parse::<u64>().ok()).ok_or_else(|| {
            Ended::Conflict(format!("its last id `{generated}` is not `{{seq}}-0`: not written by a shipper"))
        })?;
        // `[id, [field, value, ...]]` or nil.
        let hash = match member("last-entry") {
            Some(redis::Value::Array(entry)) if entry.first().and_then(text).as_deref() == Some(&generated) => {
                match entry.get(1) {
                    Some(redis::Value::Array(fields)) => fields
                        .chunks(2)
                        .find(|pair| text(&pair[0]).as_deref() == Some("hash"))
                        .and_then(|pair| pair.get(1).and_then(text)),
                    _ => None,
                }
            }
            _ => None,
        };
        Ok(Top { seq, hash })
    }

    /// Ships until the connection fails or the shipper stops. `connected` is called once the stream's position
    /// is known (with the last `seq` in the stream).
    async fn session(
        &self,
        connection: &mut MultiplexedConnection,
        reader: &mut Reader,
        durable: &Durable,
        connected: &mut dyn FnMut(&State, u64),
    ) -> Ended {
        let mut announced = false;
        'sync: loop {
            let top = match self.top(connection).await {
                Ok(top) => top,
                Err(ended) => return ended,
            };
            if top.seq > durable.seq() {
                return Ended::Conflict(format!(
                    "the stream holds seq {} but the local files end at seq {}",
                    top.seq,
                    durable.seq()
                ));
            }
            if let Err(e) = reader.seek(top.seq, top.hash.as_deref()) {
                return Ended::Conflict(e);
            }
            self.shipped.store(top.seq, Ordering::Release);
            self.redis.store(UP, Ordering::Release);
            if !announced {
                connected(self, top.seq);
                announced = true;
            }
            loop {
                if self.stopping() {
                    return Ended::Stopped;
                }
                let batch = match reader.read_batch(durable.seq()) {
                    Ok(batch) => batch,
                    Err(e) => return Ended::Conflict(e),
                };
                let Some(last) = batch.last().map(|e| e.seq) else {
                    tokio::select! {
                        _ = durable.changed.notified() => {}
                        _ = tokio::time::sleep(POLL) => {}
                        _ = self.stop.notified() => return Ended::Stopped,
                    }
                    continue;
                };
                let mut pipe = redis::pipe();
                for entry in &batch {
                    pipe.cmd("XADD")
                        .arg(&self.stream)
                        .arg(format!("{}-0", entry.seq))
                        .arg("seq")
                        .arg(entry.seq)
                        .arg("hash")
                        .arg(&entry.hash)
                        .arg("line")
                        .arg(&entry.line)
                        .ignore();
                }
                match tokio::time::timeout(BATCH_TIMEOUT, pipe.query_async::<()>(connection)).await {
                    Ok(Ok(())) => {
                        reader.commit();
                        self.shipped.store(last, Ordering::Release);
                    }
                    // Some of these were in the stream already (a batch retried after a lost answer, a restored
                    // stream): Redis refused them, and stored the rest in order. Continue after its last entry.
                    Ok(Err(e)) if e.to_string().contains("equal or smaller") => {
                        tracing::debug!(target: "penghubung::audit", error = %e, "records already in the stream were skipped");
                        reader.rollback();
                        continue 'sync;
                    }
                    Ok(Err(e)) => {
                        reader.rollback();
                        return Ended::Lost(e.to_string());
                    }
                    Err(_) => {
                        reader.rollback();
                        return Ended::Lost(format!("no answer within {BATCH_TIMEOUT:?}"));
                    }
                }
            }
        }
    }
}

/// The members of a map reply (RESP2: a flat array of names and values; RESP3: a map).
fn members(value: redis::Value) -> Vec<(String, redis::Value)> {
    let pairs: Vec<(redis::Value, redis::Value)> = match value {
        redis::Value::Map(pairs) => pairs,
        redis::Value::Array(flat) => {
            let mut flat = flat.into_iter();
            std::iter::from_fn(|| Some((flat.next()?, flat.next()?))).collect()
        }
        _ => Vec::new(),
    };
    pairs.into_iter().filter_map(|(k, v)| Some((redis::from_redis_value::<String>(&k).ok()?, v))).collect()
}

/// One record line as read from a segment file.
#[derive(Debug)]
struct Entry {
    seq: u64,
    hash: String,
    /// Without its newline.
    line: String,
}

/// Reads record lines from the segment files in `seq` order, never past the durable end.
struct Reader {
    dir: PathBuf,
    /// The segment being read and where its next unshipped line starts.
    file: Option<File>,
    offset: u64,
    /// The `seq` of the next line to ship.
    next_seq: u64,
    /// The last line shipped (`seq`, `hash`), when known.
    last: Option<(u64, String)>,
    /// Where a batch read but not yet acknowledged ends: offset, next `seq`, last line.
    pending: Option<(u64, u64, (u64, String))>,
    buf: Vec<u8>,
}

/// The `seq` of a record line (`{"seq":N,…`).
fn line_seq(line: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The first `seq` of a segment file, from its name.
fn first_seq(path: &Path) -> Option<u64> {
    path.file_name()?.to_str()?.strip_prefix("seg-")?.strip_suffix(".jsonl")?.parse().ok()
}

impl Reader {
    fn new(dir: PathBuf) -> Reader {
        Reader { dir, file: None, offset: 0, next_seq: 1, last: None, pending: None, buf: Vec::new() }
    }

    fn fail(&self, path: &Path, e: &dyn std::fmt::Display) -> String {
        format!("{}: {e}", path.display())
    }

    /// Positions the reader after the record `top` (0: before the first record), checking that the local
    /// record `top` has the stream's `hash`.
    fn seek(&mut self, top: u64, hash: Option<&str>) -> Result<(), String> {
        self.pending = None;
        if self.file.is_some() && self.next_seq == top + 1 {
            match (&self.last, hash) {
                (Some((seq, mine)), Some(theirs)) if *seq == top && mine != theirs => {
                    return Err(format!("the stream's record {top} has hash {theirs}, the local one {mine}"));
                }
                _ => return Ok(()),
            }
        }
        let files = segment_files(&self.dir).map_err(|e| self.fail(&self.dir, &e))?;
        let numbered: Vec<(u64, PathBuf)> = files.into_iter().filter_map(|p| Some((first_seq(&p)?, p))).collect();
        if numbered.is_empty() {
            return Err(format!("{}: no segment files", self.dir.display()));
        }
        // The segment holding `top`, or (nothing shipped yet, or `top` ends the segment before the first one
        // kept) the first one.
        let (start, path) = match numbered.iter().rev().find(|(s, _)| *s <= top) {
            Some(found) => found.clone(),
            None => {
                let (start, path) = numbered[0].clone();
                if start > top + 1 {
                    tracing::warn!(
                        target: "penghubung::audit",
                        from = top + 1,
                        to = start - 1,
                        "audit records missing from the local files cannot be shipped (a gap in the stream)"
                    );
                }
                self.file = Some(File::open(&path).map_err(|e| self.fail(&path, &e))?);
                (self.offset, self.next_seq, self.last) = (0, start, None);
                return Ok(());
            }
        };
        let file = File::open(&path).map_err(|e| self.fail(&path, &e))?;
        let mut lines = BufReader::new(file.try_clone().map_err(|e| self.fail(&path, &e))?);
        let mut offset = 0u64;
        let mut line = Vec::new();
        let mut expected = start;
        loop {
            line.clear();
            let n = lines.read_until(b'\n', &mut line).map_err(|e| self.fail(&path, &e))?;
            if n == 0 || line.last() != Some(&b'\n') {
                return Err(format!("{}: record {top} is not in the file", path.display()));
            }
            let text = std::str::from_utf8(&line[..n - 1]).map_err(|e| self.fail(&path, &e))?;
            let seq = line_seq(text.as_bytes());
            if seq != Some(expected) {
                return Err(format!("{}: expected record {expected}, found {seq:?}", path.display()));
            }
            offset += n as u64;
            expected += 1;
            if seq == Some(top) {
                let mine = chain::split(text).map(|(_, h)| h.to_string()).unwrap_or_default();
                if let Some(theirs) = hash {
                    if theirs != mine {
                        return Err(format!("the stream's record {top} has hash {theirs}, the local one {mine}"));
                    }
                }
                self.file = Some(file);
                (self.offset, self.next_seq, self.last) = (offset, top + 1, Some((top, mine)));
                return Ok(());
            }
        }
    }

    /// The next lines up to `durable` (at most one batch, never across two files). Empty: nothing new yet.
    fn read_batch(&mut self, durable: u64) -> Result<Vec<Entry>, String> {
        self.pending = None;
        let mut entries = Vec::new();
        if self.next_seq > durable {
            return Ok(entries);
        }
        let Some(file) = &self.file else {
            return Err("the audit shipper has no segment open".into());
        };
        // Read whole lines: at least one, within the batch limits.
        let mut want = MAX_BATCH_BYTES;
        loop {
            self.buf.resize(want, 0);
            let mut filled = 0;
            while filled < want {
                match file.read_at(&mut self.buf[filled..], self.offset + filled as u64) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(format!("{}: {e}", self.dir.display())),
                }
            }
            self.buf.truncate(filled);
            if filled == want && !self.buf.contains(&b'\n') {
                want *= 2; // one long line
                continue;
            }
            break;
        }
        let (mut offset, mut seq) = (self.offset, self.next_seq);
        let mut last = None;
        let mut bytes = 0;
        for line in self.buf.split_inclusive(|b| *b == b'\n') {
            if line.last() != Some(&b'\n') || seq > durable || entries.len() >= MAX_BATCH {
                break;
            }
            if !entries.is_empty() && bytes + line.len() > MAX_BATCH_BYTES {
                break;
            }
            let text = std::str::from_utf8(&line[..line.len() - 1])
                .map_err(|e| format!("{}: record {seq}: {e}", self.dir.display()))?;
            if line_seq(line) != Some(seq) {
                return Err(format!("{}: expected record {seq}, found {:?}", self.dir.display(), line_seq(line)));
            }
            let hash = chain::split(text)
                .map(|(_, h)| h.to_string())
                .ok_or_else(|| format!("{}: record {seq} is not sealed", self.dir.display()))?;
            last = Some((seq, hash.clone()));
            entries.push(Entry { seq, hash, line: text.to_string() });
            offset += line.len() as u64;
            bytes += line.len();
            seq += 1;
        }
        if let Some(last) = last {
            self.pending = Some((offset, seq, last));
            return Ok(entries);
        }
        // Nothing more in this file: the writer may have moved on to the next segment.
        if self.buf.is_empty() {
            let next = self.dir.join(segment_name(self.next_seq));
            if let Ok(file) = File::open(&next) {
                self.file = Some(file);
                self.offset = 0;
                return self.read_batch(durable);
            }
        }
        Ok(entries)
    }

    /// The batch read last is in the stream.
    fn commit(&mut self) {
        if let Some((offset, next_seq, last)) = self.pending.take() {
            (self.offset, self.next_seq, self.last) = (offset, next_seq, Some(last));
        }
    }

    /// The batch read last is to be read again.
    fn rollback(&mut self) {
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::keys;
    use crate::record::{ChangeAction, ChangeRecord, Record};
    use crate::writer::{AuditWriter, Job, WriterSettings};

    fn change(i: u64) -> Record {
        Record::Change(Box::new(ChangeRecord {
            time: SystemTime::now(),
            who: "file".into(),
            document: format!("grants/g{i}.toml"),
            action: ChangeAction::Added,
            before: None,
            after: Some([7; 32]),
            reason: None,
            generation: i,
        }))
    }

    fn read_all(reader: &mut Reader, durable: u64) -> Vec<Entry> {
        let mut all = Vec::new();
        loop {
            let batch = reader.read_batch(durable).unwrap();
            if batch.is_empty() {
                return all;
            }
            reader.commit();
            all.extend(batch);
        }
    }

    #[tokio::test]
    async fn the_reader_follows_the_chain_across_segments_and_resumes_after_any_record() {
        let dir = tempfile::tempdir().unwrap();
        let key = keys::generate(&dir.path().join("k.key"), &dir.path().join("k.pub")).unwrap();
        let log = dir.path().join("audit");
        let settings = WriterSettings {
            dir: log.clone(),
            checkpoint_every: 5,
            checkpoint_interval: Duration::from_secs(3600),
            segment_max_size: 2000,
            segment_max_age: Duration::from_secs(3600),
            queue_capacity: 64,
            nik_key: crate::sanitise::process_key().clone(),
        };
        let writer = AuditWriter::start(settings, key).unwrap();
        for i in 0..40 {
            let (done, wait) = tokio::sync::oneshot::channel();
            writer.sender().send(Job::Record(change(i), Some(done))).await.unwrap();
            assert!(wait.await.unwrap());
        }
        assert!(writer.checkpoint().await);
        let durable = writer.durable().seq();
        let files = segment_files(&log).unwrap();
        assert!(files.len() >= 3, "rotated: {files:?}");
        let lines: Vec<String> = files
            .iter()
            .flat_map(|f| std::fs::read_to_string(f).unwrap().lines().map(str::to_string).collect::<Vec<_>>())
            .collect();
        assert_eq!(lines.len() as u64, durable);

        // From the start: every line, in order, across the segments.
        let mut reader = Reader::new(log.clone());
        reader.seek(0, None).unwrap();
        let all = read_all(&mut reader, durable);
        assert_eq!(all.iter().map(|e| e.line.clone()).collect::<Vec<_>>(), lines);
        assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
        assert_eq!(all[0].hash, chain::split(&lines[0]).unwrap().1);
        // Never past the durable end.
        let mut reader = Reader::new(log.clone());
        reader.seek(0, None).unwrap();
        assert_eq!(read_all(&mut reader, 10).len(), 10);
        // A batch not acknowledged is read again.
        let batch = reader.read_batch(durable).unwrap();
        reader.rollback();
        assert_eq!(reader.read_batch(durable).unwrap()[0].seq, batch[0].seq);

        // After any record, including the last of a segment, with its hash checked.
        for top in 1..durable {
            let hash = all[top as usize - 1].hash.clone();
            let mut reader = Reader::new(log.clone());
            reader.seek(top, Some(&hash)).unwrap();
            let rest = read_all(&mut reader, durable);
            assert_eq!(rest.len() as u64, durable - top, "after {top}");
            assert_eq!(rest[0].seq, top + 1);
        }
        let mut reader = Reader::new(log.clone());
        let wrong = "0".repeat(64);
        assert!(reader.seek(7, Some(&wrong)).unwrap_err().contains("hash"));
        // Positioned already: no rescan, still checked.
        let mut reader = Reader::new(log);
        reader.seek(0, None).unwrap();
        read_all(&mut reader, 12);
        assert!(reader.seek(12, Some(&all[11].hash)).is_ok());
        assert!(reader.seek(12, Some(&wrong)).is_err());
    }
}

//! `penghubung audit verify DIR --key PUBKEY`: checks a log with nothing but its segment files and the public
//! key. Every line must carry the hash of its own bytes; `seq` must go up by one and `prev` must be the hash of
//! the line before, across segment boundaries (each segment starts with a `segment` record continuing the
//! chain); every checkpoint's Ed25519 signature must verify. The first break is reported with its file, line
//! and sequence number, classified as modified, deleted, inserted, reordered, truncated or forged.
//!
//! What cannot be proven is said too: records after the last checkpoint are chained but not yet signed (a
//! truncation there is only visible against an outside copy), and a torn last line at the very end of the last
//! segment is reported as an incomplete tail (a crash in the middle of a write: the gateway never acknowledged
//! that record) without failing; anywhere else a torn line is a truncation.

use std::fmt;
use std::path::Path;

use super::chain::{self, GENESIS};
use super::keys::{checkpoint_message, PublicKey};
use super::writer::segment_files;

/// How the chain was broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tamper {
    /// A record's content no longer matches its hash.
    Modified,
    /// Records are missing.
    Deleted,
    /// A record that does not belong to the chain.
    Inserted,
    /// Records are out of order.
    Reordered,
    /// A segment ends early.
    Truncated,
    /// A checkpoint signature does not verify.
    Forged,
    /// A line that is not a record at all.
    Malformed,
}

impl fmt::Display for Tamper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Tamper::Modified => "modified",
            Tamper::Deleted => "deleted",
            Tamper::Inserted => "inserted",
            Tamper::Reordered => "reordered",
            Tamper::Truncated => "truncated",
            Tamper::Forged => "forged",
            Tamper::Malformed => "malformed",
        })
    }
}

/// The first problem found.
#[derive(Clone, Debug)]
pub struct Problem {
    pub kind: Tamper,
    /// `seg-….jsonl:LINE`.
    pub at: String,
    pub seq: Option<u64>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(seq) => write!(f, "{} (seq {seq}): {}: {}", self.at, self.kind, self.message),
            None => write!(f, "{}: {}: {}", self.at, self.kind, self.message),
        }
    }
}

/// What verification found.
#[derive(Debug, Default)]
pub struct Report {
    pub segments: usize,
    /// Lines checked (all kinds).
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoints: u64,
    pub last_checkpoint: Option<u64>,
    /// Findings that do not fail verification.
    pub warnings: Vec<String>,
    pub problem: Option<Problem>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }

    /// Records after the last checkpoint (chained, not yet signed).
    pub fn unsigned_tail(&self) -> u64 {
        match (self.last_seq, self.last_checkpoint) {
            (Some(last), Some(cp)) => last - cp,
            (Some(last), None) => last + 1 - self.first_seq.unwrap_or(1),
            _ => 0,
        }
    }
}

pub(crate) struct Line<'a> {
    pub(crate) at: String,
    pub(crate) seq: u64,
    pub(crate) prev: String,
    pub(crate) kind: String,
    pub(crate) hash: &'a str,
    pub(crate) value: serde_json::Value,
}

/// Verifies every segment of `dir` against `key`.
pub fn verify_dir(dir: &Path, key: &PublicKey) -> std::io::Result<Report> {
    let files = segment_files(dir)?;
    let mut report = Report { segments: files.len(), ..Report::default() };
    if files.is_empty() {
        report.warnings.push(format!("{}: no segment files (seg-*.jsonl)", dir.display()));
        return Ok(report);
    }
    let mut expected: Option<u64> = None;
    let mut prev_hash = String::new();
    for (index, path) in files.iter().enumerate() {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string();
        let bytes = std::fs::read(path)?;
        let text = String::from_utf8_lossy(&bytes);
        let last_segment = index + 1 == files.len();
        let mut lines: Vec<&str> = text.split('\n').collect();
        let tail = lines.pop().unwrap_or_default();
        if !tail.is_empty() {
            let at = format!("{name}:{}", lines.len() + 1);
            if last_segment {
                report.warnings.push(format!(
                    "{at}: incomplete last record ({} bytes without a newline): a crash while writing; the gateway \
                     never acknowledged it; ignored",
                    tail.len()
                ));
            } else {
                report.problem = Some(Problem {
                    kind: Tamper::Truncated,
                    at,
                    seq: None,
                    message: "the segment ends in the middle of a record, and later segments exist".into(),
                });
                return Ok(report);
            }
        }
        // Parse the segment first, so that a break can be classified by looking ahead.
        let parsed: Vec<Result<Line<'_>, Problem>> =
            lines.iter().enumerate().map(|(n, raw)| parse(raw, format!("{name}:{}", n + 1))).collect();
        if parsed.is_empty() && last_segment {
            report.warnings.push(format!(
                "{name}: empty last segment (a crash while it was being started; the next start removes it)"
            ));
            continue;
        }
        if parsed.is_empty() {
            report.problem = Some(Problem {
                kind: Tamper::Truncated,
                at: format!("{name}:1"),
                seq: None,
                message: "the segment is empty".into(),
            });
            return Ok(report);
        }
        for (n, line) in parsed.iter().enumerate() {
            let line = match line {
                Ok(line) => line,
                Err(problem) => {
                    report.problem = Some(problem.clone());
                    return Ok(report);
                }
            };
            if let Some(problem) = check_line(&parsed, n, expected, &prev_hash, key, &mut report) {
                report.problem = Some(problem);
                return Ok(report);
            }
            report.records += 1;
            report.first_seq.get_or_insert(line.seq);
            report.last_seq = Some(line.seq);
            expected = Some(line.seq + 1);
            prev_hash = line.hash.to_string();
        }
    }
    if report.checkpoints == 0 {
        report.warnings.push("no checkpoint yet: nothing in this log is signed".into());
    } else if report.unsigned_tail() > 0 {
        report.warnings.push(format!(
            "{} records after the last checkpoint (seq {}) are chained but not yet signed; a truncation after that \
             checkpoint can only be seen against another copy",
            report.unsigned_tail(),
            report.last_checkpoint.unwrap_or_default()
        ));
    }
    Ok(report)
}

pub(crate) fn parse(raw: &str, at: String) -> Result<Line<'_>, Problem> {
    let malformed =
        |at: String, message: &str| Problem { kind: Tamper::Malformed, at, seq: None, message: message.into() };
    let Some((sealed, hash)) = chain::split(raw) else {
        return Err(malformed(at, "not a sealed audit record (no trailing \"hash\" member)"));
    };
    let value: serde_json::Value = match serde_json::from_str(&format!("{sealed}}}")) {
        Ok(v) => v,
        Err(_) => {
            // Unparseable but sealed: a changed byte most likely.
            let kind = if chain::compute(sealed) != hash { Tamper::Modified } else { Tamper::Malformed };
            return Err(Problem { kind, at, seq: None, message: "the record is not valid JSON".into() });
        }
    };
    let seq = value["seq"].as_u64();
    if chain::compute(sealed) != hash {
        return Err(Problem {
            kind: Tamper::Modified,
            at,
            seq,
            message: "the record's content does not match its hash (it was changed after it was written)".into(),
        });
    }
    let (Some(seq), Some(prev), Some(kind)) = (seq, value["prev"].as_str(), value["kind"].as_str()) else {
        return Err(malformed(at, "the record lacks seq, prev or kind"));
    };
    Ok(Line { at, seq, prev: prev.to_string(), kind: kind.to_string(), hash, value })
}

fn check_line(
    lines: &[Result<Line<'_>, Problem>],
    n: usize,
    expected: Option<u64>,
    prev_hash: &str,
    key: &PublicKey,
    report: &mut Report,
) -> Option<Problem> {
    let Ok(line) = &lines[n] else { return None };
    let problem = |kind, message: String| Some(Problem { kind, at: line.at.clone(), seq: Some(line.seq), message });
    if n == 0 && line.kind != "segment" {
        return problem(
            Tamper::Truncated,
            format!(
                "the segment starts with a `{}` record instead of its `segment` record (cut at the front)",
                line.kind
            ),
        );
    }
    if n > 0 && line.kind == "segment" {
        return problem(Tamper::Inserted, "a `segment` record inside a segment".into());
    }
    match expected {
        None => {
            // The oldest file kept. Older segments may have been archived: the chain starts here.
            if line.prev != GENESIS {
                report.warnings.push(format!(
                    "{}: the log starts at seq {} (older segments are not in this directory)",
                    line.at, line.seq
                ));
            }
        }
        Some(expected) => {
            if line.seq != expected || line.prev != prev_hash {
                return Some(classify(lines, n, line, expected));
            }
        }
    }
    if line.kind == "checkpoint" {
        let signature = line.value["sig"].as_str().unwrap_or_default();
        if !key.verify(&checkpoint_message(line.seq, &line.prev), signature) {
            let other_key = line.value["key"].as_str().filter(|k| *k != key.key_id);
            let detail = match other_key {
                Some(k) => format!(" (it names key {k}, verifying with key {})", key.key_id),
                None => String::new(),
            };
            return problem(
                Tamper::Forged,
                format!(
                    "the checkpoint's signature does not verify{detail}: the checkpoint was forged, or records before \
                     it were rewritten with their hashes recomputed"
                ),
            );
        }
        report.checkpoints += 1;
        report.last_checkpoint = Some(line.seq);
    }
    None
}

/// Names what happened at a break in the chain at `lines[n]`.
fn classify(lines: &[Result<Line<'_>, Problem>], n: usize, line: &Line<'_>, expected: u64) -> Problem {
    let at = line.at.clone();
    let seq = Some(line.seq);
    let later = lines[n + 1..].iter().flatten().find(|l| l.seq == expected);
    if n == 0 && line.seq > expected {
        return Problem {
            kind: Tamper::Truncated,
            at,
            seq,
            message: format!(
                "the previous segment ends at seq {} but this segment continues from seq {}: records {}..={} were cut \
                 off the end of the previous segment",
                expected - 1,
                line.seq - 1,
                expected,
                line.seq - 1
            ),
        };
    }
    if let Some(later) = later.filter(|_| line.seq > expected) {
        return Problem {
            kind: Tamper::Reordered,
            at,
            seq,
            message: format!("seq {} comes here, but seq {expected} comes later ({})", line.seq, later.at),
        };
    }
    if line.seq > expected {
        return Problem {
            kind: Tamper::Deleted,
            at,
            seq,
            message: format!("records {expected}..={} are missing before this one", line.seq - 1),
        };
    }
    if line.seq < expected {
        return Problem {
            kind: Tamper::Inserted,
            at,
            seq,
            message: format!("seq {} again after seq {}: this record does not belong here", line.seq, expected - 1),
        };
    }
    // Right number, wrong link: a record with a recomputed hash was put in place of the real one.
    Problem {
        kind: Tamper::Inserted,
        at,
        seq,
        message: "its `prev` is not the hash of the record before it: this record or the one before was replaced"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::keys;
    use crate::record::{ChangeAction, ChangeRecord, Record};
    use crate::writer::{AuditWriter, Job, WriterSettings};

    /// A log of 60 change records, a checkpoint every 10 records, segments of about 4 KiB.
    async fn make_log() -> (tempfile::TempDir, PathBuf, PublicKey) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit");
        let key = keys::generate(&dir.path().join("k.key"), &dir.path().join("k.pub")).unwrap();
        let public = key.public();
        let settings = WriterSettings {
            dir: log.clone(),
            checkpoint_every: 10,
            checkpoint_interval: Duration::from_secs(3600),
            segment_max_size: 4096,
            segment_max_age: Duration::from_secs(3600),
            queue_capacity: 16,
            nik_key: crate::sanitise::process_key().clone(),
        };
        let writer = AuditWriter::start(settings, key).unwrap();
        for i in 0..60 {
            let record = ChangeRecord {
                time: SystemTime::now(),
                who: "file".into(),
                document: format!("services/dinkes/layanan-{i}.toml"),
                action: ChangeAction::Added,
                before: None,
                after: Some([i as u8; 32]),
                reason: Some("uji".into()),
                generation: i,
            };
            writer.sender().send(Job::Record(Record::Change(Box::new(record)), None)).await.unwrap();
        }
        assert!(writer.checkpoint().await);
        drop(writer);
        tokio::time::sleep(Duration::from_millis(50)).await;
        (dir, log, public)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
    }

    fn write_lines(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    }

    /// What an attacker without the private key can do: rewrite lines and recompute every hash after them.
    fn reseal_from(files: &[PathBuf], file: usize, line: usize, edit: impl Fn(&mut serde_json::Value)) {
        let mut prev: Option<String> = None;
        for (f, path) in files.iter().enumerate() {
            let mut out = Vec::new();
            for (n, raw) in lines(path).into_iter().enumerate() {
                if (f, n) < (file, line) {
                    prev = Some(chain::split(&raw).unwrap().1.to_string());
                    out.push(raw);
                    continue;
                }
                let mut value: serde_json::Value = serde_json::from_str(&raw).unwrap();
                let map = value.as_object_mut().unwrap();
                map.remove("hash");
                if let Some(p) = &prev {
                    map.insert("prev".into(), p.clone().into());
                }
                if (f, n) == (file, line) {
                    edit(&mut value);
                }
                let text = serde_json::to_string(&value).unwrap();
                let mut buf = text.as_bytes()[..text.len() - 1].to_vec();
                let hash = chain::seal(&mut buf, 0);
                prev = Some(chain::hex(&hash));
                out.push(String::from_utf8(buf).unwrap().trim_end().to_string());
            }
            write_lines(path, &out);
        }
    }

    fn problem(log: &Path, key: &PublicKey) -> Problem {
        let report = verify_dir(log, key).unwrap();
        report.problem.clone().unwrap_or_else(|| panic!("verification passed: {report:?}"))
    }

    #[tokio::test]
    async fn verify_names_the_first_tampered_record() {
        let (_dir, log, key) = make_log().await;
        let files = segment_files(&log).unwrap();
        assert!(files.len() >= 3, "{files:?}");
        let report = verify_dir(&log, &key).unwrap();
        assert!(report.ok(), "{report:?}");
        assert_eq!(report.last_seq, report.last_checkpoint, "closed with a checkpoint: {report:?}");
        assert!(report.checkpoints >= 6, "{report:?}");
        let name = |i: usize| files[i].file_name().unwrap().to_str().unwrap().to_string();
        let seq_of = |line: &str| serde_json::from_str::<serde_json::Value>(line).unwrap()["seq"].as_u64().unwrap();
        let pristine: Vec<Vec<String>> = files.iter().map(|f| lines(f)).collect();
        let restore = || {
            for (f, l) in files.iter().zip(&pristine) {
                write_lines(f, l);
            }
        };

        // One byte changed.
        let mut seg = pristine[1].clone();
        seg[2] = seg[2].replacen("layanan-", "layanan_", 1);
        write_lines(&files[1], &seg);
        let p = problem(&log, &key);
        assert_eq!((p.kind, p.at.clone(), p.seq), (Tamper::Modified, format!("{}:3", name(1)), Some(seq_of(&seg[2]))));
        restore();

        // A record deleted.
        let mut seg = pristine[0].clone();
        let removed = seg.remove(3);
        write_lines(&files[0], &seg);
        let p = problem(&log, &key);
        assert_eq!((p.kind, p.at.clone()), (Tamper::Deleted, format!("{}:4", name(0))), "{p}");
        assert!(p.message.contains(&format!("records {}..={}", seq_of(&removed), seq_of(&removed))), "{p}");
        restore();

        // A record inserted (a copy of another).
        let mut seg = pristine[0].clone();
        seg.insert(4, pristine[0][2].clone());
        write_lines(&files[0], &seg);
        let p = problem(&log, &key);
        assert_eq!((p.kind, p.at.clone()), (Tamper::Inserted, format!("{}:5", name(0))), "{p}");
        restore();

        // Two records swapped.
        let mut seg = pristine[1].clone();
        seg.swap(2, 3);
        write_lines(&files[1], &seg);
        let p = problem(&log, &key);
        assert_eq!((p.kind, p.at.clone()), (Tamper::Reordered, format!("{}:3", name(1))), "{p}");
        restore();

        // A segment truncated at a line boundary: the next segment names the gap.
        let seg = pristine[0][..pristine[0].len() - 2].to_vec();
        write_lines(&files[0], &seg);
        let p = problem(&log, &key);
        assert_eq!((p.kind, p.at.clone()), (Tamper::Truncated, format!("{}:1", name(1))), "{p}");
        restore();

        // A segment truncated in the middle of a line, with later segments: truncation.
        let text = std::fs::read(&files[1]).unwrap();
        std::fs::write(&files[1], &text[..text.len() - 30]).unwrap();
        let p = problem(&log, &key);
        assert_eq!(p.kind, Tamper::Truncated, "{p}");
        assert!(p.at.starts_with(&name(1)), "{p}");
        restore();

        // The last segment cut in the middle of its last line: an incomplete tail, reported, not a failure.
        let last = files.len() - 1;
        let text = std::fs::read(&files[last]).unwrap();
        std::fs::write(&files[last], &text[..text.len() - 30]).unwrap();
        let report = verify_dir(&log, &key).unwrap();
        assert!(report.ok(), "{report:?}");
        assert!(report.warnings.iter().any(|w| w.contains("incomplete last record")), "{report:?}");
        restore();

        // A checkpoint signature forged (hash chain recomputed so that only the signature can tell).
        let (f, n) = pristine
            .iter()
            .enumerate()
            .find_map(|(f, seg)| seg.iter().position(|l| l.contains("\"kind\":\"checkpoint\"")).map(|n| (f, n)))
            .unwrap();
        reseal_from(&files, f, n, |v| v["sig"] = "ab".repeat(64).into());
        let p = problem(&log, &key);
        assert_eq!((p.kind, p.at.clone()), (Tamper::Forged, format!("{}:{}", name(f), n + 1)), "{p}");
        restore();

        // A record rewritten by someone who recomputed every hash: the next checkpoint's signature fails.
        reseal_from(&files, 1, 2, |v| v["document"] = "services/dinkes/palsu.toml".into());
        let p = problem(&log, &key);
        assert_eq!(p.kind, Tamper::Forged, "{p}");
        restore();

        // Another key: every signature fails.
        let other = tempfile::tempdir().unwrap();
        let other_key = keys::generate(&other.path().join("o.key"), &other.path().join("o.pub")).unwrap().public();
        assert_eq!(problem(&log, &other_key).kind, Tamper::Forged);
        assert!(verify_dir(&log, &key).unwrap().ok());
    }
}

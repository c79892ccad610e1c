//! Streaming the audit trail's segments for one month: each segment that may hold records of the month is read
//! once, line by line, and verified while it is read (every line's hash, `seq` and `prev` linking it to the line
//! before, across segment boundaries, and every checkpoint's Ed25519 signature, as `audit verify` does). Its
//! exchanges are counted into a tally of the segment alone, which joins the month's counts only when the whole
//! segment verified; a segment that does not verify is flagged with its first problem and the number of the
//! month's exchanges it holds, which the report does not count.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use penghubung_audit::chain::GENESIS;
use penghubung_audit::keys::{checkpoint_message, PublicKey};
use penghubung_audit::record::format_time;
use penghubung_audit::verify::{Problem, Tamper};
use penghubung_audit::writer::segment_files;
use ring::digest::{Context, SHA256};

use crate::line::Fields;
use crate::month::{DayOf, Month, UtcOffset};
use crate::scan::members;
use crate::tally::{SegmentTally, Tally};

/// `,"hash":"` + 64 hex digits + `"}`.
const HASH_MEMBER: &[u8] = b",\"hash\":\"";
const SEAL_LEN: usize = HASH_MEMBER.len() + 64 + 2;
/// How long after its arrival a record may be written (the longest request): segments opened up to this long
/// after the month are read too.
const WRITTEN_WITHIN: std::time::Duration = std::time::Duration::from_secs(86_400);

/// A segment that did not verify.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Flagged {
    pub file: String,
    /// `modified`, `deleted`, `inserted`, `reordered`, `truncated`, `forged`, `malformed`.
    pub problem: String,
    /// `seg-….jsonl:LINE`.
    pub at: String,
    pub seq: Option<u64>,
    pub message: String,
    /// Exchange records of the month in this segment that the report does not count.
    pub exchanges_not_counted: u64,
}

/// What the verification found, as the report states it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Verification {
    /// Every segment read verified (chain and signatures).
    pub verified: bool,
    /// Segment files that may hold records of the month (read and verified).
    pub segments: usize,
    pub segments_verified: usize,
    /// Lines checked (all kinds).
    pub records_checked: u64,
    pub checkpoints_verified: u64,
    /// Records at the end of the trail after its last checkpoint: chained, not yet signed.
    pub unsigned_records: u64,
    pub flagged: Vec<Flagged>,
    pub warnings: Vec<String>,
}

/// The month's counts and how their source verified.
#[derive(Debug)]
pub struct Scanned {
    pub tally: Tally,
    pub verification: Verification,
}

/// Reads and verifies every segment of `dir` that may hold records of `month` (at `offset`) and counts the
/// exchanges of the month (those concerning `opd` only, when given).
pub fn scan(
    dir: &Path,
    key: &PublicKey,
    month: Month,
    offset: UtcOffset,
    opd: Option<&str>,
) -> std::io::Result<Scanned> {
    let files = segment_files(dir)?;
    let (start, end) = month.bounds(offset);
    // A record is written after it arrived (its `time`): up to a request's duration later.
    let (start, end) = (format_time(start), format_time(end + WRITTEN_WITHIN));
    let spans: Vec<Option<(String, String)>> = files.iter().map(|f| first_times(f)).collect();
    // Segment i holds records written from its start to the next segment's start.
    let included: Vec<usize> = (0..files.len())
        .filter(|&i| {
            let begins_before_end = spans[i].as_ref().is_none_or(|(early, _)| early.as_str() < end.as_str());
            let ends_after_start =
                i + 1 == files.len() || spans[i + 1].as_ref().is_none_or(|(_, late)| late.as_str() >= start.as_str());
            begins_before_end && ends_after_start
        })
        .collect();
    let mut verification = Verification { segments: included.len(), ..Verification::default() };
    let mut tally = Tally::new(month.days());
    let mut days = DayOf::new(month, offset);
    let mut link: Option<(u64, [u8; 64])> = None;
    if let Some(&first) = included.first() {
        if first > 0 {
            link = last_record(&files[first - 1]);
            if link.is_none() {
                verification.warnings.push(format!(
                    "{}: its last record is unreadable; the link to the first segment of the month is not checked",
                    name(&files[first - 1])
                ));
            }
        }
    }
    for (n, &i) in included.iter().enumerate() {
        let last_file = i + 1 == files.len();
        let mut reader = SegmentReader {
            name: name(&files[i]),
            key,
            days: &mut days,
            tally: SegmentTally::new(month.days(), opd),
            link: link.take(),
            first: n == 0,
            line_no: 0,
            problem: None,
            not_counted: 0,
            checkpoints: 0,
            since_checkpoint: 0,
            records: 0,
            warnings: Vec::new(),
        };
        reader.read(&files[i], last_file)?;
        verification.records_checked += reader.records;
        verification.checkpoints_verified += reader.checkpoints;
        verification.warnings.append(&mut reader.warnings);
        match reader.problem.take() {
            None => {
                verification.segments_verified += 1;
                reader.tally.merge_into(&mut tally);
                if last_file {
                    verification.unsigned_records = reader.since_checkpoint;
                } else if reader.since_checkpoint > 0 {
                    verification.warnings.push(format!(
                        "{}: {} records after its last checkpoint, and later segments exist (a rotation seals a \
                         segment with a checkpoint)",
                        reader.name, reader.since_checkpoint
                    ));
                }
            }
            Some(problem) => verification.flagged.push(Flagged {
                file: reader.name.clone(),
                problem: problem.kind.to_string(),
                at: problem.at,
                seq: problem.seq,
                message: problem.message,
                exchanges_not_counted: reader.not_counted,
            }),
        }
        link = reader.link;
    }
    if verification.unsigned_records > 0 {
        verification.warnings.push(format!(
            "the last {} records of the trail are chained but not yet signed by a checkpoint",
            verification.unsigned_records
        ));
    }
    verification.verified = verification.flagged.is_empty();
    Ok(Scanned { tally, verification })
}

fn name(path: &Path) -> String {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("?").to_string()
}

/// The earliest and the latest `time` of a segment's first two lines (its `segment` record, written when the
/// segment was opened, and the first record in it).
fn first_times(path: &Path) -> Option<(String, String)> {
    let mut reader = BufReader::new(File::open(path).ok()?).take(128 * 1024);
    let mut times = Vec::with_capacity(2);
    let mut line = Vec::new();
    for _ in 0..2 {
        line.clear();
        if reader.read_until(b'\n', &mut line).ok()? == 0 {
            break;
        }
        let time = members(&line).flatten().find(|(k, _)| *k == b"time").and_then(|(_, v)| v.text());
        times.extend(time.map(|t| t.into_owned()));
    }
    let early = times.iter().min()?.clone();
    let late = times.iter().max()?.clone();
    Some((early, late))
}

/// The `seq` and stored hash of a segment's last whole record.
fn last_record(path: &Path) -> Option<(u64, [u8; 64])> {
    let mut file = File::open(path).ok()?;
    let size = file.metadata().ok()?.len();
    let from = size.saturating_sub(256 * 1024);
    file.seek(SeekFrom::Start(from)).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let whole = tail.iter().rposition(|b| *b == b'\n')?;
    let line = &tail[..whole];
    let line = &line[line.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1)..];
    let (_, hash) = split(line)?;
    let seq = members(line).flatten().find(|(k, _)| *k == b"seq").and_then(|(_, v)| v.num())?;
    Some((seq, hash.try_into().ok()?))
}

/// The sealed part (without its closing brace) and the stored hash of a line.
fn split(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.len() < SEAL_LEN + 1 || !line.ends_with(b"\"}") {
        return None;
    }
    let at = line.len() - SEAL_LEN;
    let hash = &line[at + HASH_MEMBER.len()..line.len() - 2];
    (line[at..].starts_with(HASH_MEMBER) && lower_hex(hash)).then(|| (&line[..at], hash))
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether every byte is a lower-case hex digit: a word at a time (SWAR), without an early exit. In a word of
/// ASCII bytes, adding `0x80 - k` to each byte sets its high bit exactly when the byte is at least `k`.
fn lower_hex(text: &[u8]) -> bool {
    let at_least = |w: u64, k: u8| w.wrapping_add(ONES * u64::from(0x80 - k));
    let mut words = text.chunks_exact(8);
    let mut hex = true;
    for chunk in &mut words {
        let w = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let digit = at_least(w, b'0') & !at_least(w, b'9' + 1);
        let letter = at_least(w, b'a') & !at_least(w, b'f' + 1);
        hex &= (w & HIGHS == 0) & ((digit | letter) & HIGHS == HIGHS);
    }
    hex & words.remainder().iter().all(|c| c.is_ascii_digit() | (b'a'..=b'f').contains(c))
}

/// The lower-case hex digits of a digest, four bytes at a time (SWAR): each byte's nibbles are spread to a byte
/// each, then turned into digits (`0` + n, and 39 more from `a` on).
fn hex_of(digest: &[u8], out: &mut [u8; 64]) {
    for (bytes, digits) in digest.chunks_exact(4).zip(out.chunks_exact_mut(8)) {
        let x = u64::from(u32::from_le_bytes(bytes.try_into().unwrap_or_default()));
        let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
        let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
        let nibbles = (x >> 4) & 0x000f_000f_000f_000f | (x & 0x000f_000f_000f_000f) << 8;
        let letters = (nibbles + ONES * 6) >> 4 & ONES;
        digits.copy_from_slice(&(nibbles + ONES * u64::from(b'0') + letters * 39).to_le_bytes());
    }
}

struct SegmentReader<'k, 'd> {
    name: String,
    key: &'k PublicKey,
    days: &'d mut DayOf,
    /// The segment's exchanges of the month, counted apart until the segment verified.
    tally: SegmentTally,
    /// The `seq` and hash of the record before the next line.
    link: Option<(u64, [u8; 64])>,
    /// The first segment read (its chain may start here when older segments were archived).
    first: bool,
    line_no: u64,
    problem: Option<Problem>,
    not_counted: u64,
    checkpoints: u64,
    since_checkpoint: u64,
    records: u64,
    warnings: Vec<String>,
}

impl SegmentReader<'_, '_> {
    /// Reads the segment in large blocks and hands each whole line to [`Self::line`] where it lies in the
    /// block (a line is never copied, except the one a block cuts, moved to the front of the next read).
    fn read(&mut self, path: &Path, last_file: bool) -> std::io::Result<()> {
        let mut file = File::open(path)?;
        let mut block = vec![0u8; 1 << 20];
        // The bytes read and not yet handed over: `block[start..end]`.
        let (mut start, mut end) = (0, 0);
        loop {
            while let Some(at) = memchr::memchr(b'\n', &block[start..end]) {
                self.line_no += 1;
                self.line(&block[start..start + at]);
                start += at + 1;
            }
            block.copy_within(start..end, 0);
            (start, end) = (0, end - start);
            if end == block.len() {
                // One line longer than the block: the block grows.
                block.resize(block.len() * 2, 0);
            }
            let read = loop {
                match file.read(&mut block[end..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    result => break result?,
                }
            };
            if read == 0 {
                break;
            }
            end += read;
        }
        if end > start {
            self.line_no += 1;
            if last_file {
                self.warnings.push(format!(
                    "{}:{}: incomplete last record ({} bytes without a newline): a crash while writing; ignored",
                    self.name,
                    self.line_no,
                    end - start
                ));
            } else {
                self.fail(Tamper::Truncated, None, "the segment ends in the middle of a record".into());
            }
        }
        if self.line_no == 0 && !last_file {
            self.fail(Tamper::Truncated, None, "the segment is empty".into());
        }
        Ok(())
    }

    fn fail(&mut self, kind: Tamper, seq: Option<u64>, message: String) {
        if self.problem.is_none() {
            let at = format!("{}:{}", self.name, self.line_no);
            self.problem = Some(Problem { kind, at, seq, message });
        }
    }

    fn line(&mut self, line: &[u8]) {
        let Fields { seq, prev, kind, sig, exchange, readable } = Fields::read(line);
        let day = if kind == b"exchange" { self.days.day(exchange.time) } else { None };
        let in_month = day.is_some();
        if let Some((sealed, hash)) = split(line) {
            // The next segment links to this line's stored hash even when this segment failed.
            if let Some(seq) = seq {
                let check = self.problem.is_none();
                let stored: [u8; 64] = hash.try_into().unwrap_or([0; 64]);
                let link = self.link.replace((seq, stored));
                if check {
                    self.check((sealed, hash), seq, prev, kind, sig, link, readable);
                }
            }
        } else {
            self.fail(Tamper::Malformed, seq, "not a sealed audit record (no trailing \"hash\" member)".into());
        }
        // Every exchange of the month in this segment: none is counted if the segment fails.
        self.not_counted += u64::from(in_month);
        if self.problem.is_some() {
            return;
        }
        self.records += 1;
        if let Some(day) = day {
            self.tally.add(&exchange, day);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        &mut self,
        (sealed, stored): (&[u8], &[u8]),
        seq: u64,
        prev: &[u8],
        kind: &[u8],
        sig: &[u8],
        link: Option<(u64, [u8; 64])>,
        readable: bool,
    ) {
        let mut context = Context::new(&SHA256);
        context.update(sealed);
        context.update(b"}");
        let mut computed = [0u8; 64];
        hex_of(context.finish().as_ref(), &mut computed);
        if computed[..] != *stored {
            let message = "the record's content does not match its hash (it was changed after it was written)";
            return self.fail(Tamper::Modified, Some(seq), message.into());
        }
        if !readable || prev.len() != 64 || kind.is_empty() {
            return self.fail(Tamper::Malformed, Some(seq), "the record lacks seq, prev or kind".into());
        }
        if self.line_no == 1 && kind != b"segment" {
            let message = "the segment does not start with its `segment` record (cut at the front)";
            return self.fail(Tamper::Truncated, Some(seq), message.into());
        }
        if self.line_no > 1 && kind == b"segment" {
            return self.fail(Tamper::Inserted, Some(seq), "a `segment` record inside a segment".into());
        }
        match &link {
            Some((last, hash)) if seq != last + 1 || prev != &hash[..] => {
                let (kind, message) = if seq > last + 1 {
                    let tamper = if self.line_no == 1 { Tamper::Truncated } else { Tamper::Deleted };
                    (tamper, format!("records {}..={} are missing before this one", last + 1, seq - 1))
                } else if seq <= *last {
                    (Tamper::Inserted, format!("seq {seq} after seq {last}: this record does not belong here"))
                } else {
                    (Tamper::Inserted, "its `prev` is not the hash of the record before it".to_string())
                };
                return self.fail(kind, Some(seq), message);
            }
            None if self.first && self.line_no == 1 && prev != GENESIS.as_bytes() => {
                self.warnings.push(format!(
                    "{}:1: the trail starts at seq {seq} (older segments are not in this directory)",
                    self.name
                ));
            }
            _ => {}
        }
        self.since_checkpoint += 1;
        if kind == b"checkpoint" {
            let prev = String::from_utf8_lossy(prev);
            let sig = String::from_utf8_lossy(sig);
            if !self.key.verify(&checkpoint_message(seq, &prev), &sig) {
                let message = "the checkpoint's signature does not verify: the checkpoint was forged, or records \
                               before it were rewritten with their hashes recomputed";
                return self.fail(Tamper::Forged, Some(seq), message.into());
            }
            self.checkpoints += 1;
            self.since_checkpoint = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_written_and_checked_as_lower_case_hex() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..200 {
            let digest: Vec<u8> = (0..32).map(|i| if round == 0 { i * 8 } else { next() as u8 }).collect();
            let mut out = [0u8; 64];
            hex_of(&digest, &mut out);
            let expected: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
            assert!(lower_hex(&out));
        }
        for byte in 0..=255u8 {
            for at in [0, 7, 8, 31, 63] {
                let mut text = [b'0'; 64];
                text[at] = byte;
                assert_eq!(lower_hex(&text), byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte), "{byte} at {at}");
            }
        }
        assert!(lower_hex(b"0123456789abcdef0") && !lower_hex(b"0123456789abcdefA"));
    }

    #[test]
    fn a_line_splits_into_its_sealed_part_and_hash() {
        let hash = "0123456789abcdef".repeat(4);
        let line = format!("{{\"seq\":1,\"kind\":\"x\",\"hash\":\"{hash}\"}}");
        assert_eq!(split(line.as_bytes()), Some((&b"{\"seq\":1,\"kind\":\"x\""[..], hash.as_bytes())));
        for bad in [hash.replace('a', "A"), hash.replace('f', "g"), hash[1..].to_string()] {
            let line = format!("{{\"seq\":1,\"kind\":\"x\",\"hash\":\"{bad}\"}}");
            assert_eq!(split(line.as_bytes()), None, "{bad}");
        }
    }
}

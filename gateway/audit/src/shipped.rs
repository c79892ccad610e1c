//! What the replicas shipped ([`crate::ship`]), read back from Redis and verified: `penghubung audit verify
//! --redis URL` and the usage report over every replica's records.
//!
//! Every replica ships its own chain to its own stream, named by `[audit] redis_stream` with the replica's
//! `{gateway_id}` in it (`penghubung:audit:gw-1`). [`find_streams`] finds them all (`SCAN … TYPE stream` by the
//! pattern's fixed parts), [`read_stream`] reads one in batches (`XRANGE`, never the whole stream in memory), and
//! a [`StreamVerifier`] checks what it reads as `audit verify` checks a folder: every entry's id and `hash`
//! field are its line's `seq` and hash, every line's hash is that of its bytes, `seq` goes up by one and `prev` is
//! the hash of the record before, and every checkpoint's Ed25519 signature verifies with the public key it names
//! (each replica signs with its own key; the verifier is given all of them).
//!
//! Missing records are *gaps*. Records missing before the stream's first entry were trimmed (or archived by a
//! collector): said, not a failure, since the chain starts wherever the stream does. Records missing between two
//! entries were deleted from the stream (the shipper only appends, in order): a failure, with every gap listed.
//! Records after the last entry cannot be seen from Redis (shipping may be behind); the records after the last
//! checkpoint are reported as chained but not yet signed.

use std::fmt;

use redis::Connection;

use super::chain::GENESIS;
use super::keys::{checkpoint_message, PublicKey};
use super::verify::{parse, Problem, Tamper};

/// The default stream pattern (`[audit] redis_stream`).
pub const DEFAULT_PATTERN: &str = "penghubung:audit:{gateway_id}";
/// Entries per `XRANGE` round trip.
const BATCH: usize = 1000;

/// One stream entry as the shipper wrote it: id `{seq}-0`, fields `seq`, `hash`, `line`.
#[derive(Debug, Default)]
pub struct Entry {
    /// The entry's id.
    pub id: String,
    /// The `hash` field.
    pub hash: String,
    /// The `line` field: the record's exact line.
    pub line: String,
}

/// A replica's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shipped {
    /// The stream's key.
    pub stream: String,
    /// The replica's gateway id (what `{gateway_id}` stands for in the key).
    pub replica: String,
}

/// Missing records `first..=last`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    pub first: u64,
    pub last: u64,
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.first == self.last {
            write!(f, "seq {}", self.first)
        } else {
            write!(f, "seq {}..={}", self.first, self.last)
        }
    }
}

/// What the verification of one replica's stream found.
#[derive(Debug, Default)]
pub struct StreamReport {
    /// Entries read.
    pub records: u64,
    pub first_seq: Option<u64>,
    pub last_seq: Option<u64>,
    pub checkpoints: u64,
    pub last_checkpoint: Option<u64>,
    /// The ids of the keys the checkpoints were signed with, in the order first seen.
    pub key_ids: Vec<String>,
    /// Records before the stream's first entry that are not in it (trimmed or collected): `1..=first-1`.
    pub trimmed: Option<Gap>,
    /// Records missing between entries (deleted from the stream).
    pub gaps: Vec<Gap>,
    /// Findings that do not fail verification.
    pub warnings: Vec<String>,
    /// The first problem other than a gap; after it nothing more is checked.
    pub problem: Option<Problem>,
}

impl StreamReport {
    /// Verified: no problem and no gap between entries, and at least one record.
    pub fn ok(&self) -> bool {
        self.problem.is_none() && self.gaps.is_empty() && self.records > 0
    }

    /// Why it did not verify (`None` when it did).
    pub fn failure(&self) -> Option<String> {
        if let Some(problem) = &self.problem {
            return Some(problem.to_string());
        }
        if !self.gaps.is_empty() {
            let gaps: Vec<String> = self.gaps.iter().map(Gap::to_string).collect();
            return Some(format!(
                "records missing between entries ({}): deleted from the stream after they were shipped",
                gaps.join(", ")
            ));
        }
        (self.records == 0).then(|| "the stream holds no records".to_string())
    }

    /// Records after the last checkpoint (chained, not yet signed).
    pub fn unsigned_tail(&self) -> u64 {
        match (self.last_seq, self.last_checkpoint) {
            (Some(last), Some(cp)) => last.saturating_sub(cp),
            (Some(last), None) => last + 1 - self.first_seq.unwrap_or(1),
            _ => 0,
        }
    }
}

/// Checks one stream's entries, in the order read.
pub struct StreamVerifier<'k> {
    stream: String,
    keys: &'k [PublicKey],
    /// The `seq` and hash of the last record read.
    last: Option<(u64, String)>,
    report: StreamReport,
}

impl<'k> StreamVerifier<'k> {
    /// A verifier of `stream` whose checkpoints must verify with one of `keys` (the one each names).
    pub fn new(stream: &str, keys: &'k [PublicKey]) -> StreamVerifier<'k> {
        StreamVerifier { stream: stream.to_string(), keys, last: None, report: StreamReport::default() }
    }

    /// Whether everything so far verified (a caller counting records stops trusting them after the first
    /// problem).
    pub fn sound(&self) -> bool {
        self.report.problem.is_none() && self.report.gaps.is_empty()
    }

    /// Checks the next entry; true when it verified (so far) and may be counted.
    pub fn entry(&mut self, entry: &Entry) -> bool {
        if self.report.problem.is_some() {
            return false;
        }
        let at = format!("{} entry {}", self.stream, entry.id);
        let id_seq = entry.id.strip_suffix("-0").and_then(|s| s.parse::<u64>().ok());
        let line = match parse(&entry.line, at.clone()) {
            Ok(line) => line,
            Err(problem) => return self.fail(problem),
        };
        let problem = |kind, message: String| Problem { kind, at: at.clone(), seq: Some(line.seq), message };
        if id_seq != Some(line.seq) || entry.hash != line.hash {
            return self.fail(problem(
                Tamper::Inserted,
                "the entry's id or `hash` field is not its record's `seq` or hash: not written by a shipper".into(),
            ));
        }
        match self.last.take() {
            None => {
                if line.prev != GENESIS {
                    if line.seq > 1 {
                        self.report.trimmed = Some(Gap { first: 1, last: line.seq - 1 });
                    }
                    self.report.warnings.push(format!(
                        "the stream starts at seq {} (earlier records were trimmed or collected; the chain is checked \
                         from there)",
                        line.seq
                    ));
                }
            }
            Some((seq, hash)) => {
                if line.seq > seq + 1 {
                    // A gap: listed, and the chain is picked up again after it (its `prev` cannot be checked).
                    self.report.gaps.push(Gap { first: seq + 1, last: line.seq - 1 });
                } else if line.seq <= seq {
                    return self.fail(problem(
                        Tamper::Inserted,
                        format!("seq {} after seq {seq}: this record does not belong here", line.seq),
                    ));
                } else if line.prev != hash {
                    return self.fail(problem(
                        Tamper::Inserted,
                        "its `prev` is not the hash of the record before it: this record or the one before was \
                         replaced"
                            .into(),
                    ));
                }
            }
        }
        if line.kind == "checkpoint" {
            let named = line.value["key"].as_str().unwrap_or_default();
            let Some(key) = self.keys.iter().find(|k| k.key_id == named) else {
                let known: Vec<&str> = self.keys.iter().map(|k| k.key_id.as_str()).collect();
                return self.fail(problem(
                    Tamper::Forged,
                    format!(
                        "the checkpoint names key `{named}`, which is not among the public keys given ({}): pass that \
                         replica's audit public key with --key",
                        known.join(", ")
                    ),
                ));
            };
            let signature = line.value["sig"].as_str().unwrap_or_default();
            if !key.verify(&checkpoint_message(line.seq, &line.prev), signature) {
                return self.fail(problem(
                    Tamper::Forged,
                    "the checkpoint's signature does not verify: the checkpoint was forged, or records before it \
                     were rewritten with their hashes recomputed"
                        .into(),
                ));
            }
            self.report.checkpoints += 1;
            self.report.last_checkpoint = Some(line.seq);
            if !self.report.key_ids.iter().any(|k| k == named) {
                self.report.key_ids.push(named.to_string());
            }
        }
        self.report.records += 1;
        self.report.first_seq.get_or_insert(line.seq);
        self.report.last_seq = Some(line.seq);
        self.last = Some((line.seq, line.hash.to_string()));
        self.report.problem.is_none()
    }

    fn fail(&mut self, problem: Problem) -> bool {
        self.report.problem = Some(problem);
        false
    }

    /// The report, with the warnings about what cannot be proven.
    pub fn finish(mut self) -> StreamReport {
        let report = &mut self.report;
        if report.problem.is_none() && report.records > 0 {
            if report.checkpoints == 0 {
                report.warnings.push("no checkpoint yet: nothing in this stream is signed".into());
            } else if report.unsigned_tail() > 0 {
                report.warnings.push(format!(
                    "{} records after the last checkpoint (seq {}) are chained but not yet signed",
                    report.unsigned_tail(),
                    report.last_checkpoint.unwrap_or_default()
                ));
            }
        }
        self.report
    }
}

/// The `SCAN` glob of a stream pattern: `{gateway_id}` becomes `*`, glob characters elsewhere are escaped.
fn glob_of(pattern: &str) -> Result<(String, String, String), String> {
    let Some((prefix, suffix)) = pattern.split_once("{gateway_id}") else {
        return Err(format!("the stream pattern `{pattern}` has no `{{gateway_id}}`"));
    };
    let escape = |s: &str| {
        s.chars().fold(String::new(), |mut out, c| {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                out.push('\\');
            }
            out.push(c);
            out
        })
    };
    Ok((format!("{}*{}", escape(prefix), escape(suffix)), prefix.to_string(), suffix.to_string()))
}

/// Every replica's stream: the streams whose keys match `pattern` (`…{gateway_id}…`), sorted by key.
pub fn find_streams(connection: &mut Connection, pattern: &str) -> Result<Vec<Shipped>, String> {
    let (glob, prefix, suffix) = glob_of(pattern)?;
    let mut cursor = 0u64;
    let mut found = Vec::new();
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&glob)
            .arg("COUNT")
            .arg(1000)
            .arg("TYPE")
            .arg("stream")
            .query(connection)
            .map_err(|e| format!("SCAN: {e}"))?;
        for key in keys {
            let replica = key.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(&suffix));
            if let Some(replica) = replica.filter(|r| !r.is_empty()) {
                found.push(Shipped { replica: replica.to_string(), stream: key.clone() });
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    found.sort_by(|a, b| a.stream.cmp(&b.stream));
    found.dedup();
    Ok(found)
}

/// Reads every entry of `stream` in id order, 1,000 per round trip, handing each to `each`.
pub fn read_stream(connection: &mut Connection, stream: &str, each: &mut dyn FnMut(&Entry)) -> Result<(), String> {
    let mut start = "-".to_string();
    loop {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(stream)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(BATCH)
            .query(connection)
            .map_err(|e| format!("XRANGE {stream}: {e}"))?;
        let Some((last, _)) = entries.last() else { return Ok(()) };
        start = format!("({last}");
        let full = entries.len() == BATCH;
        for (id, fields) in entries {
            let mut entry = Entry { id, ..Entry::default() };
            for (name, value) in fields {
                match name.as_str() {
                    "hash" => entry.hash = value,
                    "line" => entry.line = value,
                    _ => {}
                }
            }
            each(&entry);
        }
        if !full {
            return Ok(());
        }
    }
}

/// A synchronous connection to the Redis at `url` (`redis://…` or a Sentinel URL), with timeouts.
pub fn connect(url: &str) -> Result<Connection, String> {
    let connector = penghubung_redis::Connector::new(url)?;
    let client = connector.blocking_client().map_err(|e| format!("{}: {e}", connector.describe()))?;
    let connection = client
        .get_connection_with_timeout(std::time::Duration::from_secs(5))
        .map_err(|e| format!("{}: {e}", connector.describe()))?;
    connection
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .map_err(|e| format!("{}: {e}", connector.describe()))?;
    Ok(connection)
}

/// Verifies one replica's stream.
pub fn verify_stream(connection: &mut Connection, stream: &str, keys: &[PublicKey]) -> Result<StreamReport, String> {
    let mut verifier = StreamVerifier::new(stream, keys);
    read_stream(connection, stream, &mut |entry| {
        verifier.entry(entry);
    })?;
    Ok(verifier.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_becomes_a_scan_glob_with_its_fixed_parts_escaped() {
        let (glob, prefix, suffix) = glob_of("penghubung:audit:{gateway_id}").unwrap();
        assert_eq!((glob.as_str(), prefix.as_str(), suffix.as_str()), ("penghubung:audit:*", "penghubung:audit:", ""));
        let (glob, _, suffix) = glob_of("a[1]*:{gateway_id}:log").unwrap();
        assert_eq!((glob.as_str(), suffix.as_str()), ("a\\[1\\]\\*:*:log", ":log"));
        assert!(glob_of("penghubung:audit").unwrap_err().contains("{gateway_id}"));
    }
}

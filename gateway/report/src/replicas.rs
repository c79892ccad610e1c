//! The monthly report over every replica's records: with several gateway replicas, each keeps its own chain
//! and ships it to its own Redis stream ([`penghubung_audit::ship`]). [`usage_of_replicas`] reads every
//! replica's stream in batches, verifying it as `audit verify --redis` does ([`StreamVerifier`]) and counting
//! its exchanges of the month into a tally of that replica alone, which joins the report's counts only when the
//! whole stream verified; a replica whose stream does not verify is flagged (as a segment of a folder trail
//! is) with its first problem and the month's exchanges the report does not count. The counting is the folder
//! report's ([`Tally`]): the sum over replicas is the report of their union.

use penghubung_audit::keys::PublicKey;
use penghubung_audit::shipped::{self, Entry, StreamVerifier};
use penghubung_types::documents::OpdDoc;

use crate::line::Fields;
use crate::month::DayOf;
use crate::tally::{SegmentTally, Tally};
use crate::trail::{Flagged, Verification};
use crate::{model, Query, UsageReport};

/// The usage report of `query.month` over every stream matching `pattern` in the Redis at `url`, each replica's
/// checkpoints verified with the key they name among `keys`.
pub fn usage_of_replicas(
    url: &str,
    pattern: &str,
    keys: &[PublicKey],
    query: Query<'_>,
    opds: &[OpdDoc],
) -> Result<UsageReport, String> {
    let mut connection = shipped::connect(url)?;
    let streams = shipped::find_streams(&mut connection, pattern)?;
    if streams.is_empty() {
        return Err(format!("no stream matches `{pattern}`: no replica has shipped records there"));
    }
    let mut verification = Verification { segments: streams.len(), ..Verification::default() };
    let mut tally = Tally::new(query.month.days());
    for stream in &streams {
        let mut counter = ReplicaCounter::new(&stream.stream, keys, query);
        shipped::read_stream(&mut connection, &stream.stream, &mut |entry| counter.entry(entry))?;
        let (replica_tally, not_counted, report) = counter.finish();
        verification.records_checked += report.records;
        verification.checkpoints_verified += report.checkpoints;
        verification.unsigned_records += if report.ok() { report.unsigned_tail() } else { 0 };
        verification.warnings.extend(report.warnings.iter().map(|w| format!("{}: {w}", stream.replica)));
        if let Some(trimmed) = report.trimmed {
            verification
                .warnings
                .push(format!("{}: {trimmed} not in the stream (trimmed or collected); not counted", stream.replica));
        }
        match report.failure() {
            None => {
                verification.segments_verified += 1;
                replica_tally.merge_into(&mut tally);
            }
            Some(message) => {
                let (problem, at, seq) = match &report.problem {
                    Some(p) => (p.kind.to_string(), p.at.clone(), p.seq),
                    None if !report.gaps.is_empty() => {
                        ("deleted".to_string(), stream.stream.clone(), report.gaps.first().map(|g| g.first))
                    }
                    None => ("truncated".to_string(), stream.stream.clone(), None),
                };
                verification.flagged.push(Flagged {
                    file: stream.stream.clone(),
                    problem,
                    at,
                    seq,
                    message,
                    exchanges_not_counted: not_counted,
                });
            }
        }
    }
    verification.verified = verification.flagged.is_empty();
    Ok(model::build(&tally, verification, query.month, query.offset, query.opd, opds))
}

/// Verifies one replica's entries and counts the month's exchanges among them.
struct ReplicaCounter<'k> {
    verifier: StreamVerifier<'k>,
    days: DayOf,
    tally: SegmentTally,
    /// The month's exchanges seen (counted or not).
    seen: u64,
}

impl<'k> ReplicaCounter<'k> {
    fn new(stream: &str, keys: &'k [PublicKey], query: Query<'_>) -> ReplicaCounter<'k> {
        ReplicaCounter {
            verifier: StreamVerifier::new(stream, keys),
            days: DayOf::new(query.month, query.offset),
            tally: SegmentTally::new(query.month.days(), query.opd),
            seen: 0,
        }
    }

    fn entry(&mut self, entry: &Entry) {
        let verified = self.verifier.entry(entry);
        let Fields { kind, exchange, readable, .. } = Fields::read(entry.line.as_bytes());
        if !readable || kind != b"exchange" {
            return;
        }
        let Some(day) = self.days.day(exchange.time) else { return };
        self.seen += 1;
        if verified {
            self.tally.add(&exchange, day);
        }
    }

    /// The replica's tally, the month's exchanges it saw, and its verification.
    fn finish(self) -> (SegmentTally, u64, shipped::StreamReport) {
        (self.tally, self.seen, self.verifier.finish())
    }
}

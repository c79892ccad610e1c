//! Counting exchanges: [`Exchange`] is what the report reads of one exchange record (its values borrowed from
//! the line, not yet decoded), [`SegmentTally`] counts a segment's exchanges into its caller OPD's and its
//! provider OPD's counts (the totals are their callers' sum), and [`Tally`] holds the month's [`Usage`] once each
//! verified segment's counts joined it. A segment's counts are kept by name id ([`Names`]: each OPD, service,
//! client and code text is looked up once per record, by one hash of its bytes, and stored once), so counting a record
//! allocates nothing; they become text only when the segment joins the month. Memory grows with the number of
//! OPDs, services, clients and error codes, never with the number of records.

use std::hash::{BuildHasherDefault, Hasher};

use penghubung_audit::record::{provider_opd, NO_OPD};

use crate::scan::{members, Malformed, Value};
use crate::sketch::Histogram;

/// FNV-1a: the month's maps are keyed by short ids (OPDs, services, clients, codes). The keys come from
/// verified records, not from a request.
#[derive(Default)]
pub struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for b in bytes {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

/// A word-at-a-time (FxHash-style) hash of a name's bytes, for [`Names`], looked up several times per record.
#[derive(Default)]
pub struct Words(u64);

impl Words {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for Words {
    fn finish(&self) -> u64 {
        self.0
    }

    /// Every byte is mixed in once or twice: the last word overlaps the one before it, and a text shorter than a
    /// word is read as its first and last half words (or bytes). The length is hashed before the bytes (as a
    /// slice is), so texts that read alike at different lengths still differ.
    fn write(&mut self, bytes: &[u8]) {
        let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
        let half = |at: usize| u64::from(u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap_or_default()));
        let len = bytes.len();
        if len >= 8 {
            let mut at = 0;
            while at + 8 < len {
                self.mix(word(at));
                at += 8;
            }
            self.mix(word(len - 8));
        } else if len >= 4 {
            self.mix(half(0) | half(len - 4) << 32);
        } else if len > 0 {
            self.mix(u64::from(bytes[0]) | u64::from(bytes[len / 2]) << 8 | u64::from(bytes[len - 1]) << 16);
        } else {
            self.mix(0);
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

/// The report's maps.
pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fnv>>;

/// The members of an exchange record the report uses, as they stand in the line.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exchange<'a> {
    pub time: &'a [u8],
    pub caller_opd: Option<Value<'a>>,
    pub provider_opd: Option<Value<'a>>,
    /// Older records' name for the caller OPD.
    pub opd: Option<Value<'a>>,
    pub client: Option<Value<'a>>,
    pub service: Option<Value<'a>>,
    pub decision: Option<Value<'a>>,
    pub code: Option<Value<'a>>,
    pub status: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency_us: u64,
}

impl<'a> Exchange<'a> {
    /// Reads the members of an exchange line (the sealed part or the whole line).
    pub fn read(line: &'a [u8]) -> Result<Exchange<'a>, Malformed> {
        let mut e = Exchange::default();
        for member in members(line) {
            let (key, value) = member?;
            e.set(key, value);
        }
        Ok(e)
    }

    /// Takes `key`'s value when it is one the report uses.
    pub fn set(&mut self, key: &[u8], value: Value<'a>) {
        let e = self;
        match key {
            b"time" => {
                if let Value::Str { raw, .. } = value {
                    e.time = raw;
                }
            }
            b"caller_opd" => e.caller_opd = Some(value),
            b"provider_opd" => e.provider_opd = Some(value),
            b"opd" => e.opd = Some(value),
            b"client" => e.client = Some(value),
            b"service" => e.service = Some(value),
            b"decision" => e.decision = Some(value),
            b"code" => e.code = Some(value),
            b"status" => e.status = value.num().unwrap_or_default(),
            b"bytes_in" => e.bytes_in = value.num().unwrap_or_default(),
            b"bytes_out" => e.bytes_out = value.num().unwrap_or_default(),
            b"latency_us" => e.latency_us = value.num().unwrap_or_default(),
            _ => {}
        }
    }
}

/// Whether two texts are equal, compared in line a word at a time (a name is short: a call to compare it would
/// cost more than the comparison), the last word overlapping the one before it.
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |t: &[u8], at: usize| u64::from_le_bytes(t[at..at + 8].try_into().unwrap_or_default());
    let half = |t: &[u8], at: usize| u32::from_le_bytes(t[at..at + 4].try_into().unwrap_or_default());
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if word(a, at) != word(b, at) {
                return false;
            }
            at += 8;
        }
        word(a, n - 8) == word(b, n - 8)
    } else if n >= 4 {
        half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
    } else {
        a == b
    }
}

/// A name's id in [`Names`].
pub type NameId = u32;

/// No provider known yet for a service id.
const UNKNOWN: NameId = NameId::MAX;

/// The names a segment's records use (OPDs, services, clients, decisions, codes), each stored once and known
/// by an id. A name is its decoded text: a string value with escapes is decoded first, so one text always has
/// one id; a value that is not a string or not UTF-8 has none (the record counts it as absent).
#[derive(Default)]
pub struct Names {
    /// An open-addressing table of the texts by their [`Words`] hash (linear probing, at most half full): each
    /// slot holds a text's id + 1, or 0 when free. Smaller than a general map and probed without a call.
    slots: Vec<NameId>,
    texts: Vec<Box<str>>,
    /// The provider OPD of a service key, by the service's id (found on its first use).
    providers: Vec<NameId>,
}

impl Names {
    /// The id of a member's value.
    pub fn of(&mut self, value: Option<Value<'_>>) -> Option<NameId> {
        match value? {
            Value::Str { raw, escaped: false } => self.of_text(raw),
            decoded @ Value::Str { escaped: true, .. } => self.of_text(decoded.text()?.as_bytes()),
            _ => None,
        }
    }

    /// The id of a text (`None` for bytes that are not UTF-8).
    pub fn of_text(&mut self, text: &[u8]) -> Option<NameId> {
        if self.slots.is_empty() {
            self.slots = vec![0; 64];
        }
        let mut at = self.slot(text);
        loop {
            match self.slots[at] {
                0 => break,
                id if same(self.texts[id as usize - 1].as_bytes(), text) => return Some(id - 1),
                _ => at = (at + 1) & (self.slots.len() - 1),
            }
        }
        let valid = std::str::from_utf8(text).ok()?;
        let id = self.texts.len() as NameId;
        self.texts.push(valid.into());
        self.slots[at] = id + 1;
        if self.texts.len() * 2 > self.slots.len() {
            self.grow();
        }
        Some(id)
    }

    /// Where the probe for `text` starts (the hash's high bits: the best mixed).
    fn slot(&self, text: &[u8]) -> usize {
        let mut hash = Words::default();
        hash.write_usize(text.len());
        hash.write(text);
        let bits = self.slots.len().trailing_zeros();
        (hash.finish() >> (64 - bits)) as usize
    }

    /// Doubles the table and places every text again.
    fn grow(&mut self) {
        let doubled = vec![0; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        for id in old.into_iter().filter(|id| *id != 0) {
            let mut at = self.slot(self.texts[id as usize - 1].as_bytes());
            while self.slots[at] != 0 {
                at = (at + 1) & (self.slots.len() - 1);
            }
            self.slots[at] = id;
        }
    }

    /// The text of `id`.
    pub fn text(&self, id: NameId) -> &str {
        self.texts.get(id as usize).map_or(NO_OPD, |t| t)
    }

    /// The provider OPD of the service key `service`: its first segment.
    fn provider_of(&mut self, service: NameId) -> NameId {
        let at = service as usize;
        if self.providers.len() <= at {
            self.providers.resize(at + 1, UNKNOWN);
        }
        if self.providers[at] == UNKNOWN {
            let opd = provider_opd(self.text(service)).to_string();
            self.providers[at] = self.of_text(opd.as_bytes()).unwrap_or(UNKNOWN);
        }
        self.providers[at]
    }
}

/// One day's counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Day {
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Requests not allowed (denied or failed).
    pub errors: u64,
}

/// What one OPD (or the whole gateway) used in the month.
#[derive(Clone, Debug, Default)]
pub struct Usage {
    pub requests: u64,
    pub allowed: u64,
    pub denied: u64,
    pub errors: u64,
    pub rate_limited: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// By status class: index 1 is 1xx … 5 is 5xx, 0 anything else.
    pub classes: [u64; 6],
    /// Denials by code (`policy.no_grant`).
    pub denials: HashMap<String, u64>,
    /// Errors by code (`upstream.timeout`).
    pub failures: HashMap<String, u64>,
    pub latency: Histogram,
    pub daily: Vec<Day>,
    /// Requests by service key.
    pub services: HashMap<String, u64>,
    /// Requests by client (the caller application, `opd/app`; `-` when unidentified).
    pub clients: HashMap<String, u64>,
}

/// The rate-limit refusal code.
pub const RATE_LIMITED: &str = "ratelimit.exceeded";

fn add_map(into: &mut HashMap<String, u64>, from: &HashMap<String, u64>) {
    for (key, n) in from {
        match into.get_mut(key.as_str()) {
            Some(m) => *m += n,
            None => {
                into.insert(key.clone(), *n);
            }
        }
    }
}

impl Usage {
    fn new(days: u32) -> Usage {
        Usage { daily: vec![Day::default(); days as usize], ..Usage::default() }
    }

    fn merge(&mut self, other: &Usage) {
        self.requests += other.requests;
        self.allowed += other.allowed;
        self.denied += other.denied;
        self.errors += other.errors;
        self.rate_limited += other.rate_limited;
        self.bytes_in += other.bytes_in;
        self.bytes_out += other.bytes_out;
        for (a, b) in self.classes.iter_mut().zip(other.classes) {
            *a += b;
        }
        add_map(&mut self.denials, &other.denials);
        add_map(&mut self.failures, &other.failures);
        self.latency.merge(&other.latency);
        for (a, b) in self.daily.iter_mut().zip(&other.daily) {
            a.requests += b.requests;
            a.bytes_in += b.bytes_in;
            a.bytes_out += b.bytes_out;
            a.errors += b.errors;
        }
        add_map(&mut self.services, &other.services);
        add_map(&mut self.clients, &other.clients);
    }
}

/// The month's counts: in total, by caller OPD and by provider OPD.
#[derive(Debug)]
pub struct Tally {
    pub total: Usage,
    pub callers: HashMap<String, Usage>,
    pub providers: HashMap<String, Usage>,
}

impl Tally {
    pub fn new(days: u32) -> Tally {
        Tally { total: Usage::new(days), callers: HashMap::default(), providers: HashMap::default() }
    }

    pub fn is_empty(&self) -> bool {
        self.total.requests == 0
    }

    /// Adds `other` (a verified segment's counts).
    pub fn merge(&mut self, other: &Tally) {
        self.total.merge(&other.total);
        for (into, from) in [(&mut self.callers, &other.callers), (&mut self.providers, &other.providers)] {
            for (key, usage) in from {
                match into.get_mut(key.as_str()) {
                    Some(u) => u.merge(usage),
                    None => {
                        into.insert(key.clone(), usage.clone());
                    }
                }
            }
        }
    }
}

/// How a record's `decision` counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
    /// `error`, or any other value, or none.
    Error,
}

impl Decision {
    /// The decision a `decision` member's text names (compared as text: a decision is not counted by name).
    fn of(value: Option<Value<'_>>) -> Decision {
        let named = |text: &[u8]| match text {
            b"allow" => Decision::Allow,
            b"deny" => Decision::Deny,
            _ => Decision::Error,
        };
        match value {
            Some(Value::Str { raw, escaped: false }) => named(raw),
            Some(decoded @ Value::Str { escaped: true, .. }) => {
                decoded.text().map_or(Decision::Error, |t| named(t.as_bytes()))
            }
            _ => Decision::Error,
        }
    }
}

/// One record's names and measures, resolved to ids.
struct Counted {
    service: NameId,
    client: NameId,
    /// The code (`-` when none).
    code: NameId,
    decision: Decision,
    rate_limited: bool,
    status: u64,
    bytes_in: u64,
    bytes_out: u64,
    latency_us: u64,
}

/// What one OPD (or the whole gateway) used in a segment: [`Usage`] with names by id.
#[derive(Clone)]
struct Counts {
    requests: u64,
    allowed: u64,
    denied: u64,
    errors: u64,
    rate_limited: u64,
    bytes_in: u64,
    bytes_out: u64,
    classes: [u64; 6],
    /// Requests by name id: denials and errors by code, requests by service and by client.
    denials: Vec<u64>,
    failures: Vec<u64>,
    services: Vec<u64>,
    clients: Vec<u64>,
    latency: Histogram,
    daily: Vec<Day>,
}

fn bump(counts: &mut Vec<u64>, id: NameId) {
    let at = id as usize;
    if counts.len() <= at {
        counts.resize(at + 1, 0);
    }
    counts[at] += 1;
}

impl Counts {
    fn new(days: u32) -> Counts {
        Counts {
            requests: 0,
            allowed: 0,
            denied: 0,
            errors: 0,
            rate_limited: 0,
            bytes_in: 0,
            bytes_out: 0,
            classes: [0; 6],
            denials: Vec::new(),
            failures: Vec::new(),
            services: Vec::new(),
            clients: Vec::new(),
            latency: Histogram::default(),
            daily: vec![Day::default(); days as usize],
        }
    }

    /// Kept out of line: inlined at its two calls (caller, provider), the scan loop measured about 5% slower.
    #[inline(never)]
    fn add(&mut self, r: &Counted, day: u32) {
        self.requests += 1;
        match r.decision {
            Decision::Allow => self.allowed += 1,
            Decision::Deny => {
                self.denied += 1;
                bump(&mut self.denials, r.code);
            }
            Decision::Error => {
                self.errors += 1;
                bump(&mut self.failures, r.code);
            }
        }
        self.rate_limited += u64::from(r.rate_limited);
        self.bytes_in += r.bytes_in;
        self.bytes_out += r.bytes_out;
        let class = (r.status / 100) as usize;
        self.classes[if (1..=5).contains(&class) { class } else { 0 }] += 1;
        self.latency.record(r.latency_us);
        if let Some(d) = self.daily.get_mut(day as usize) {
            d.requests += 1;
            d.bytes_in += r.bytes_in;
            d.bytes_out += r.bytes_out;
            d.errors += u64::from(r.decision != Decision::Allow);
        }
        bump(&mut self.services, r.service);
        bump(&mut self.clients, r.client);
    }

    /// The counts with their names as text.
    fn usage(&self, names: &Names) -> Usage {
        let map = |counts: &[u64]| -> HashMap<String, u64> {
            (0..).zip(counts).filter(|(_, n)| **n > 0).map(|(id, n)| (names.text(id).to_string(), *n)).collect()
        };
        Usage {
            requests: self.requests,
            allowed: self.allowed,
            denied: self.denied,
            errors: self.errors,
            rate_limited: self.rate_limited,
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            classes: self.classes,
            denials: map(&self.denials),
            failures: map(&self.failures),
            latency: self.latency.clone(),
            daily: self.daily.clone(),
            services: map(&self.services),
            clients: map(&self.clients),
        }
    }
}

/// The names the counting compares with, by id.
struct Known {
    none: NameId,
    rate_limited: NameId,
    /// The OPD the report is limited to.
    only: Option<NameId>,
}

/// One segment's counts (kept apart until the segment verified): by caller OPD and by provider OPD, with every
/// name by id. The total is not counted apart: it is the sum of the callers' counts, made when the segment
/// joins the month.
pub struct SegmentTally {
    days: u32,
    names: Names,
    known: Known,
    /// By the OPD's name id.
    callers: Vec<Option<Counts>>,
    providers: Vec<Option<Counts>>,
}

impl SegmentTally {
    /// Counts of a month of `days` days, of every record, or of those concerning `opd` (as caller or provider).
    pub fn new(days: u32, opd: Option<&str>) -> SegmentTally {
        let mut names = Names::default();
        let mut id = |text: &str| names.of_text(text.as_bytes()).unwrap_or(UNKNOWN);
        let known = Known { none: id(NO_OPD), rate_limited: id(RATE_LIMITED), only: opd.map(&mut id) };
        SegmentTally { days, names, known, callers: Vec::new(), providers: Vec::new() }
    }

    /// Counts `e` on local day `day` (0-based) when it concerns the OPD the counts are limited to, if any.
    pub fn add(&mut self, e: &Exchange<'_>, day: u32) {
        let names = &mut self.names;
        let known = &self.known;
        let caller = names.of(e.caller_opd).or_else(|| names.of(e.opd)).unwrap_or(known.none);
        let service = names.of(e.service);
        let provider = match (names.of(e.provider_opd), service) {
            (Some(provider), _) => provider,
            (None, Some(service)) => names.provider_of(service),
            (None, None) => known.none,
        };
        if known.only.is_some_and(|o| o != caller && o != provider) {
            return;
        }
        let code = names.of(e.code);
        let decision = Decision::of(e.decision);
        let counted = Counted {
            service: service.unwrap_or(known.none),
            client: names.of(e.client).unwrap_or(known.none),
            code: code.unwrap_or(known.none),
            decision,
            rate_limited: code == Some(known.rate_limited),
            status: e.status,
            bytes_in: e.bytes_in,
            bytes_out: e.bytes_out,
            latency_us: e.latency_us,
        };
        let days = self.days;
        for (by_opd, opd) in [(&mut self.callers, caller), (&mut self.providers, provider)] {
            let at = opd as usize;
            if by_opd.len() <= at {
                by_opd.resize(at + 1, None);
            }
            by_opd[at].get_or_insert_with(|| Counts::new(days)).add(&counted, day);
        }
    }

    /// Adds these counts (a verified segment's) to the month's.
    pub fn merge_into(&self, month: &mut Tally) {
        let mut segment = Tally::new(self.days);
        for (into, from) in [(&mut segment.callers, &self.callers), (&mut segment.providers, &self.providers)] {
            for (id, counts) in (0..).zip(from) {
                if let Some(counts) = counts {
                    into.insert(self.names.text(id).to_string(), counts.usage(&self.names));
                }
            }
        }
        // Every counted exchange has exactly one caller (`-` when none): the total is the sum of the callers'.
        for usage in segment.callers.values() {
            segment.total.merge(usage);
        }
        month.merge(&segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_name_their_opds_too() {
        let counted = |line: &[u8], opd: Option<&str>| {
            let mut segment = SegmentTally::new(30, opd);
            segment.add(&Exchange::read(line).unwrap(), 3);
            let mut month = Tally::new(30);
            segment.merge_into(&mut month);
            let mut callers: Vec<String> = month.callers.keys().cloned().collect();
            let mut providers: Vec<String> = month.providers.keys().cloned().collect();
            callers.sort();
            providers.sort();
            (month, callers, providers)
        };
        let new = br#"{"seq":5,"prev":"x","kind":"exchange","time":"2026-11-01T00:00:00.000000000Z","client":"dinsos/sikasos","caller_opd":"dinsos","provider_opd":"disdukcapil","service":"disdukcapil/kependudukan/v1","decision":"deny","code":"policy.no_grant","status":403,"bytes_in":1,"bytes_out":2,"latency_us":3,"nik":["ab"],"complete":true"#;
        let (month, callers, providers) = counted(&[&new[..], b"}"].concat(), None);
        assert_eq!((callers, providers), (vec!["dinsos".to_string()], vec!["disdukcapil".to_string()]));
        assert_eq!((month.total.denied, month.total.denials["policy.no_grant"]), (1, 1));
        let old = br#"{"kind":"exchange","opd":"dinkes","service":"disdukcapil/kependudukan/v1","status":200}"#;
        let (month, callers, providers) = counted(old, None);
        assert_eq!((callers, providers), (vec!["dinkes".to_string()], vec!["disdukcapil".to_string()]));
        assert_eq!((month.total.errors, month.total.failures["-"]), (1, 1), "no decision counts as an error");
        let health = br#"{"kind":"exchange","status":200}"#;
        let (month, _, _) = counted(health, Some("dinsos"));
        assert!(month.is_empty());
        let (month, callers, providers) = counted(health, None);
        assert_eq!((callers, providers), (vec![NO_OPD.to_string()], vec![NO_OPD.to_string()]));
        assert_eq!((month.total.requests, month.callers[NO_OPD].daily[3].requests), (1, 1));
        // An escaped name is its decoded text; a name that is not a string counts as absent.
        let escaped = br#"{"kind":"exchange","caller_opd":"din\u0073os","client":7,"decision":"allow","status":200}"#;
        let (month, callers, _) = counted(escaped, Some("dinsos"));
        assert_eq!((callers, month.total.allowed, month.total.clients[NO_OPD]), (vec!["dinsos".to_string()], 1, 1));
        // A decision is its decoded text too; anything but `allow` and `deny` counts as an error.
        for (decision, counts) in [(r#""\u0061llow""#, (1, 0, 0)), (r#""de\u006ey""#, (0, 1, 0)), ("1", (0, 0, 1))] {
            let line = format!(r#"{{"kind":"exchange","decision":{decision},"status":200}}"#);
            let (month, _, _) = counted(line.as_bytes(), None);
            assert_eq!((month.total.allowed, month.total.denied, month.total.errors), counts, "{decision}");
        }
    }

    #[test]
    fn every_name_keeps_its_one_id_as_the_table_grows() {
        let mut names = Names::default();
        let texts: Vec<String> =
            (0..5000).map(|i| if i % 7 == 0 { format!("s{i}") } else { format!("opd{i:04}/aplikasi-{i}") }).collect();
        let ids: Vec<NameId> = texts.iter().map(|t| names.of_text(t.as_bytes()).unwrap()).collect();
        assert_eq!(ids, (0..5000).collect::<Vec<NameId>>());
        for (text, id) in texts.iter().zip(&ids).rev() {
            assert_eq!((names.of_text(text.as_bytes()), names.text(*id)), (Some(*id), text.as_str()));
        }
        assert_eq!(names.of_text(b""), Some(5000));
        assert_eq!(names.of_text(b"\xff"), None, "not UTF-8");
        assert_eq!(names.of_text(b""), Some(5000));
    }
}

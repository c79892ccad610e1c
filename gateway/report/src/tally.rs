//! Counting exchanges: [`Exchange`] is what the report reads of one exchange record (borrowed from its line),
//! [`Tally`] adds it to the month's totals, to its caller OPD's and to its provider OPD's [`Usage`]. Memory grows
//! with the number of OPDs, services, clients and error codes, never with the number of records.

use std::borrow::Cow;
use std::hash::{BuildHasherDefault, Hasher};

use penghubung_audit::record::{provider_opd, NO_OPD};

use crate::scan::{members, Malformed, Value};
use crate::sketch::Histogram;

/// FNV-1a: the maps are keyed by short ids (OPDs, services, clients, codes) looked up several times per record,
/// where SipHash cost a tenth of the scan. The keys come from verified records, not from a request.
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

/// The report's maps.
pub type HashMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<Fnv>>;

/// The members of an exchange record the report uses.
#[derive(Debug, Default)]
pub struct Exchange<'a> {
    pub time: &'a [u8],
    pub caller_opd: Option<Cow<'a, str>>,
    pub provider_opd: Option<Cow<'a, str>>,
    /// Older records' name for the caller OPD.
    pub opd: Option<Cow<'a, str>>,
    pub client: Option<Cow<'a, str>>,
    pub service: Option<Cow<'a, str>>,
    pub decision: Option<Cow<'a, str>>,
    pub code: Option<Cow<'a, str>>,
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
        let text = |v: Value<'a>| v.text();
        {
            match key {
                b"time" => {
                    if let Value::Str { raw, .. } = value {
                        e.time = raw;
                    }
                }
                b"caller_opd" => e.caller_opd = text(value),
                b"provider_opd" => e.provider_opd = text(value),
                b"opd" => e.opd = text(value),
                b"client" => e.client = text(value),
                b"service" => e.service = text(value),
                b"decision" => e.decision = text(value),
                b"code" => e.code = text(value),
                b"status" => e.status = value.num().unwrap_or_default(),
                b"bytes_in" => e.bytes_in = value.num().unwrap_or_default(),
                b"bytes_out" => e.bytes_out = value.num().unwrap_or_default(),
                b"latency_us" => e.latency_us = value.num().unwrap_or_default(),
                _ => {}
            }
        }
    }

    /// The caller OPD: `caller_opd`, or an older record's `opd`, or the marker.
    pub fn caller(&self) -> &str {
        self.caller_opd.as_deref().or(self.opd.as_deref()).unwrap_or(NO_OPD)
    }

    /// The provider OPD: `provider_opd`, or an older record's service key's first segment, or the marker.
    pub fn provider(&self) -> &str {
        match (&self.provider_opd, &self.service) {
            (Some(p), _) => p,
            (None, Some(service)) => provider_opd(service),
            (None, None) => NO_OPD,
        }
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

fn bump(map: &mut HashMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_string(), 1);
        }
    }
}

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

    fn add(&mut self, e: &Exchange<'_>, day: u32) {
        self.requests += 1;
        let decision = e.decision.as_deref().unwrap_or("error");
        let code = e.code.as_deref();
        match decision {
            "allow" => self.allowed += 1,
            "deny" => {
                self.denied += 1;
                bump(&mut self.denials, code.unwrap_or("-"));
            }
            _ => {
                self.errors += 1;
                bump(&mut self.failures, code.unwrap_or("-"));
            }
        }
        if code == Some(RATE_LIMITED) {
            self.rate_limited += 1;
        }
        self.bytes_in += e.bytes_in;
        self.bytes_out += e.bytes_out;
        let class = (e.status / 100) as usize;
        self.classes[if (1..=5).contains(&class) { class } else { 0 }] += 1;
        self.latency.record(e.latency_us);
        if let Some(d) = self.daily.get_mut(day as usize) {
            d.requests += 1;
            d.bytes_in += e.bytes_in;
            d.bytes_out += e.bytes_out;
            d.errors += u64::from(decision != "allow");
        }
        bump(&mut self.services, e.service.as_deref().unwrap_or(NO_OPD));
        bump(&mut self.clients, e.client.as_deref().unwrap_or(NO_OPD));
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
    days: u32,
    pub total: Usage,
    pub callers: HashMap<String, Usage>,
    pub providers: HashMap<String, Usage>,
}

impl Tally {
    pub fn new(days: u32) -> Tally {
        Tally { days, total: Usage::new(days), callers: HashMap::default(), providers: HashMap::default() }
    }

    /// Counts `e` on local day `day` (0-based) when it concerns `opd` (as caller or provider; every record
    /// without a filter).
    pub fn add(&mut self, e: &Exchange<'_>, day: u32, opd: Option<&str>) {
        let (caller, provider) = (e.caller(), e.provider());
        if opd.is_some_and(|o| o != caller && o != provider) {
            return;
        }
        self.total.add(e, day);
        let days = self.days;
        for (map, key) in [(&mut self.callers, caller), (&mut self.providers, provider)] {
            match map.get_mut(key) {
                Some(usage) => usage.add(e, day),
                None => {
                    let mut usage = Usage::new(days);
                    usage.add(e, day);
                    map.insert(key.to_string(), usage);
                }
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_name_their_opds_too() {
        let new = br#"{"seq":5,"prev":"x","kind":"exchange","time":"2026-11-01T00:00:00.000000000Z","client":"dinsos/sikasos","caller_opd":"dinsos","provider_opd":"disdukcapil","service":"disdukcapil/kependudukan/v1","decision":"deny","code":"policy.no_grant","status":403,"bytes_in":1,"bytes_out":2,"latency_us":3,"nik":["ab"],"complete":true"#;
        let e = Exchange::read(&[&new[..], b"}"].concat()).unwrap().caller().to_string();
        assert_eq!(e, "dinsos");
        let old = br#"{"kind":"exchange","opd":"dinkes","service":"disdukcapil/kependudukan/v1","status":200}"#;
        let e = Exchange::read(old).unwrap();
        assert_eq!((e.caller(), e.provider()), ("dinkes", "disdukcapil"));
        let health = br#"{"kind":"exchange","status":200}"#;
        let e = Exchange::read(health).unwrap();
        assert_eq!((e.caller(), e.provider()), (NO_OPD, NO_OPD));
        let mut tally = Tally::new(30);
        tally.add(&e, 3, Some("dinsos"));
        assert!(tally.is_empty());
        tally.add(&e, 3, None);
        assert_eq!((tally.total.requests, tally.callers[NO_OPD].daily[3].requests), (1, 1));
    }
}

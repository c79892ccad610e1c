//! Differential fuzzing of the usage report's record-line readers ([`penghubung::reports::line`]): the fast
//! reader that expects the audit writer's layout ([`line::written`]), the general member-by-member reader
//! ([`line::general`]), and `serde_json` as the oracle.
//!
//! Each input seeds a generator that writes an exchange record with the real record writer
//! ([`Record::write_members`]): optional members present or not, codes, names and ids with characters the
//! writer escapes, NIK lists, numbers at the edges. Most lines are then changed a little: bytes replaced,
//! inserted or deleted (mostly JSON punctuation), a member repeated, dropped or moved, whitespace added, the
//! line cut short. For every line:
//!
//! - what the fast reader reads is exactly what the general reader reads, and [`Fields::read`] (the fast reader
//!   with the general one behind it) always gives the general reader's answer;
//! - a line the oracle reads as a JSON object is readable by the general reader, and every member the report
//!   uses has the value the oracle gives it (for repeated members, the last one of the type the report takes),
//!   strings compared after unescaping.
//!
//! Raw bytes are fed to both readers too (they must not panic, and must agree).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderValue, Method};
use penghubung::audit::record::{ExchangeRecord, Record};
use penghubung::audit::AuditDurability;
use penghubung::reports::line::{self, Fields};
use penghubung::reports::scan::Value;
use penghubung_fuzz::Rng;
use serde::de::{Deserializer, MapAccess, Visitor};

/// A header value, mostly a plain identifier, sometimes with characters the writer escapes or cleans.
fn text(rng: &mut Rng, plain: &[&str]) -> String {
    let mut value = rng.pick(plain).to_string();
    if rng.chance(4) {
        let odd: &[&str] = &["\"", "\\", "/", " ", "é", "\u{7f}", "3201234567890001", "\\u0041", "%22"];
        let odd = *rng.pick(odd);
        value.insert_str(rng.below(value.len() + 1), odd);
    }
    value
}

fn header(rng: &mut Rng, plain: &[&str]) -> Option<HeaderValue> {
    let value = text(rng, plain);
    HeaderValue::from_str(&value).ok().or_else(|| HeaderValue::from_str(plain[0]).ok())
}

/// A number at an edge now and then.
fn number(rng: &mut Rng) -> u64 {
    let any = rng.next() % 1_000_000;
    *rng.pick(&[0, 1, 9, 10, 200, 404, 65_535, u64::from(u32::MAX), u64::MAX, any])
}

/// One exchange record line as the audit writer writes it.
fn written_line(rng: &mut Rng) -> Vec<u8> {
    let opds = ["dinsos", "disdukcapil", "bapenda", "rsud-kota", "-"];
    let codes: [Option<&'static str>; 6] =
        [None, None, Some("policy.no_grant"), Some("ratelimit.exceeded"), Some("upstream.timeout"), Some("x")];
    let service: Option<Arc<str>> = (!rng.chance(8)).then(|| {
        let name = text(rng, &["disdukcapil/kependudukan/v1", "dinsos/bansos/v2", "a/b/v1"]);
        Arc::from(name.as_str())
    });
    let code = *rng.pick(&codes);
    let record = ExchangeRecord {
        time: SystemTime::UNIX_EPOCH + Duration::from_nanos(rng.next() % 4_000_000_000_000_000_000),
        request_id: header(rng, &["0192f1d2-7c3a-7b4e-9f10-2a3b4c5d6e7f", "abc"]).unwrap(),
        traceparent: (!rng.chance(4))
            .then(|| HeaderValue::from_static("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")),
        client: (!rng.chance(5)).then(|| header(rng, &["dinsos/sikasos", "bapenda/pbb"])).flatten(),
        caller_opd: (!rng.chance(5)).then(|| header(rng, &opds)).flatten(),
        service,
        operation: (!rng.chance(5)).then(|| Arc::from(text(rng, &["ambil-data", "cek"]).as_str())),
        method: rng.pick(&[Method::GET, Method::POST, Method::HEAD, Method::from_bytes(b"PURGE").unwrap()]).clone(),
        path: (!rng.chance(5)).then(|| Arc::from(text(rng, &["/data/{id}", "/status"]).as_str())),
        purpose: (!rng.chance(3)).then(|| header(rng, &["pelayanan-publik", "audit"])).flatten(),
        code,
        status: *rng.pick(&[200, 204, 403, 429, 502, 504, 999]),
        bytes_in: number(rng),
        bytes_out: number(rng),
        latency_us: number(rng),
        upstream: (!rng.chance(4)).then(|| Arc::from("http://10.0.0.1:8080")),
        request_sha256: (!rng.chance(3)).then(|| [rng.next() as u8; 32]),
        response_sha256: (!rng.chance(3)).then(|| [rng.next() as u8; 32]),
        withheld: rng.chance(6).then(|| HeaderValue::from_static("nik,alamat")),
        nik: (0..rng.below(3)).map(|i| format!("k{i}")).collect(),
        nik_overflow: rng.chance(10),
        complete: !rng.chance(6),
        durability: if rng.chance(3) { AuditDurability::Sync } else { AuditDurability::Async },
    };
    let mut out = format!(
        "{{\"seq\":{},\"prev\":\"{}\",\"kind\":\"exchange\"",
        number(rng),
        (0..64).map(|_| *rng.pick(&['0', '7', 'a', 'f'])).collect::<String>()
    )
    .into_bytes();
    Record::Exchange(Box::new(record)).write_members(&mut out, penghubung::audit::sanitise::process_key());
    out.extend_from_slice(format!(",\"hash\":\"{}\"}}", "e".repeat(64)).as_bytes());
    out
}

/// Where the members after the first start (the byte after each top-level `,` outside strings).
fn member_starts(line: &[u8]) -> Vec<usize> {
    let (mut starts, mut in_string, mut escaped, mut depth) = (Vec::new(), false, false, 0i32);
    for (i, &b) in line.iter().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b',' if depth == 1 => starts.push(i + 1),
            _ => {}
        }
    }
    starts
}

/// A few changes to a line.
fn mutate(rng: &mut Rng, line: &mut Vec<u8>) {
    let bytes: &[u8] = b"\"\\,:{}[] \t0123456789-.eE+abcfnrtu\x80\xff\x00";
    for _ in 0..1 + rng.below(3) {
        if line.is_empty() {
            return;
        }
        let at = rng.below(line.len());
        match rng.below(8) {
            0 => line[at] = *rng.pick(bytes),
            1 => line.insert(at, *rng.pick(bytes)),
            2 if line.len() > 1 => {
                line.remove(at);
            }
            3 => line.truncate(at),
            4 => line.insert(at, b' '),
            // A member repeated, dropped or moved to the end.
            _ => {
                let starts = member_starts(line);
                if starts.len() < 2 {
                    continue;
                }
                let k = rng.below(starts.len() - 1);
                let (from, to) = (starts[k], starts[k + 1]);
                let member = line[from..to].to_vec();
                match rng.below(3) {
                    0 => {
                        line.splice(to..to, member);
                    }
                    1 => {
                        line.drain(from..to);
                    }
                    _ => {
                        line.drain(from..to);
                        let end = line.len().saturating_sub(1);
                        let member = &member[..member.len() - 1]; // without its comma
                        line.splice(end..end, [&b","[..], member].concat());
                    }
                }
            }
        }
    }
}

/// The members of a JSON object in order, duplicates kept (the oracle's reading).
struct Members(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Members, D::Error> {
        struct Each;
        impl<'de> Visitor<'de> for Each {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, serde_json::Value>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Each)
    }
}

/// A raw string value as text (the readers keep the bytes between the quotes).
fn unescaped(raw: &[u8]) -> Option<String> {
    serde_json::from_slice(&[&b"\""[..], raw, b"\""].concat()).ok()
}

/// The reader's value of a member the report takes whatever its type, against the oracle's last one.
fn same_value(read: Option<Value<'_>>, oracle: Option<&serde_json::Value>) -> bool {
    match (read, oracle) {
        (None, None) => true,
        (Some(Value::Str { raw, .. }), Some(serde_json::Value::String(s))) => unescaped(raw).as_ref() == Some(s),
        (Some(Value::Num(n)), Some(serde_json::Value::Number(o))) => o.as_u64() == Some(n),
        (Some(Value::Other), Some(o)) => !o.is_string() && !o.is_u64(),
        _ => false,
    }
}

/// The oracle's check of what the general reader read from `line`.
fn agrees_with_oracle(line: &[u8], general: &Fields<'_>) {
    let Ok(Members(members)) = serde_json::from_slice::<Members>(line) else { return };
    assert!(general.readable, "the oracle reads it, the general reader does not: {}", String::from_utf8_lossy(line));
    if line.windows(2).any(|w| w == b"\\u") {
        return; // a key spelled with escapes is another key to the readers (never written so)
    }
    let last = |key: &str| members.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v);
    let last_where = |key: &str, take: fn(&serde_json::Value) -> bool| {
        members.iter().rev().find(|(k, v)| k == key && take(v)).map(|(_, v)| v)
    };
    let integer = |v: &serde_json::Value| v.is_u64();
    let string = |v: &serde_json::Value| v.is_string();
    let show = || String::from_utf8_lossy(line).into_owned();
    assert_eq!(general.seq, last_where("seq", integer).and_then(|v| v.as_u64()), "seq: {}", show());
    for (key, read) in [("prev", general.prev), ("kind", general.kind), ("sig", general.sig)] {
        let oracle = last_where(key, string).and_then(|v| v.as_str()).unwrap_or("");
        assert_eq!(unescaped(read).as_deref(), Some(oracle), "{key}: {}", show());
    }
    let e = &general.exchange;
    let time = last_where("time", string).and_then(|v| v.as_str()).unwrap_or("");
    assert_eq!(unescaped(e.time).as_deref(), Some(time), "time: {}", show());
    for (key, read) in
        [("status", e.status), ("bytes_in", e.bytes_in), ("bytes_out", e.bytes_out), ("latency_us", e.latency_us)]
    {
        assert_eq!(read, last(key).and_then(|v| v.as_u64()).unwrap_or(0), "{key}: {}", show());
    }
    for (key, read) in [
        ("caller_opd", e.caller_opd),
        ("provider_opd", e.provider_opd),
        ("opd", e.opd),
        ("client", e.client),
        ("service", e.service),
        ("decision", e.decision),
        ("code", e.code),
    ] {
        assert!(same_value(read, last(key)), "{key}: read {read:?}, oracle {:?}: {}", last(key), show());
    }
}

/// Both readers on one line: the fast one agrees with the general one, which agrees with the oracle.
fn check(line: &[u8]) {
    let general = line::general(line);
    if let Some(fast) = line::written(line) {
        assert_eq!(fast, general, "the fast reader differs: {}", String::from_utf8_lossy(line));
    }
    assert_eq!(Fields::read(line), general, "{}", String::from_utf8_lossy(line));
    agrees_with_oracle(line, &general);
}

#[test]
fn audit_line_reader() {
    let tried = penghubung_fuzz::Tried::new("audit_line_reader");
    let (fast, changed) = (std::sync::atomic::AtomicU64::new(0), std::sync::atomic::AtomicU64::new(0));
    bolero::check!().with_test_time(penghubung_fuzz::budget()).for_each(|input: &[u8]| {
        tried.one();
        let seed =
            input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3));
        let mut rng = Rng::new(seed);
        let mut line = written_line(&mut rng);
        if line::written(&line).is_some() {
            fast.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        check(&line);
        if !rng.chance(4) {
            mutate(&mut rng, &mut line);
            changed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            check(&line);
        }
    });
    // The generator must reach both readers: most written lines take the fast path.
    let (fast, changed) = (fast.into_inner(), changed.into_inner());
    assert!(fast > 0 && changed > 0, "fast-path lines {fast}, changed lines {changed}");
}

#[test]
fn audit_line_reader_bytes() {
    let tried = penghubung_fuzz::Tried::new("audit_line_reader_bytes");
    bolero::check!().with_test_time(penghubung_fuzz::budget()).for_each(|input: &[u8]| {
        tried.one();
        check(input);
    });
}

/// What this target found: a record with whitespace before its `{` is still a JSON object (the general reader
/// refused it), and a lone `}` is not one.
#[test]
fn audit_line_reader_regressions() {
    let written = written_line(&mut Rng::new(7));
    check(&written);
    let spaced = [&b" \t"[..], &written].concat();
    check(&spaced);
    assert!(line::general(&spaced).readable);
    assert_eq!(line::general(&spaced).seq, line::general(&written).seq);
    check(b"}");
    assert!(!line::general(b"}").readable);
}

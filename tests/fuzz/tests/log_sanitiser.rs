//! The sanitiser between caller values and the logs ([`penghubung::audit::sanitise`]): for any input, the
//! value it lets through holds no NIK-shaped run (checked by an oracle written independently here, on the value
//! as written and percent-decoded once and twice), stays within the length cap, is stable when cleaned again, and is the input
//! itself exactly when the input needed no change. Inputs are raw bytes and, so that NIK shapes are frequent,
//! sequences of digit runs, separators, percent-encodings (once and twice, either case) and other text.

use std::borrow::Cow;

use bolero::TypeGenerator;
use penghubung::audit::sanitise::{self as redact, MAX_LOGGED_BYTES, MAX_SEPARATORS, NIK_DIGITS};

const SEPARATORS: &[u8] = b" \t-._+/";

/// The oracle: whether `text` has, from some digit on, at least 16 digits with at most 3 separators between
/// consecutive ones (walked from every start; digits and separators are disjoint, so walking greedily is exact).
fn oracle_nik_shaped(text: &[u8]) -> bool {
    (0..text.len()).filter(|&i| text[i].is_ascii_digit()).any(|start| {
        let (mut digits, mut gap) = (0, 0);
        for &b in &text[start..] {
            if b.is_ascii_digit() {
                digits += 1;
                gap = 0;
                if digits >= NIK_DIGITS {
                    return true;
                }
            } else if SEPARATORS.contains(&b) && gap < MAX_SEPARATORS {
                gap += 1;
            } else {
                break;
            }
        }
        false
    })
}

/// Percent-decodes `%XY` once, left to right.
fn percent_decode(text: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' && i + 2 < text.len() {
            if let (Some(high), Some(low)) = (hex(text[i + 1]), hex(text[i + 2])) {
                out.push(high << 4 | low);
                i += 3;
                continue;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// Every property of one input.
fn check(input: &str) {
    let key = redact::process_key();
    let cleaned = redact::clean(key, input);
    let out = cleaned.as_bytes();
    assert!(out.len() <= MAX_LOGGED_BYTES, "{} bytes: {cleaned:?}", out.len());
    for reading in [out.to_vec(), percent_decode(out), percent_decode(&percent_decode(out))] {
        assert!(!oracle_nik_shaped(&reading), "{input:?} -> {cleaned:?} still holds a NIK shape");
    }
    assert!(!redact::holds_nik_shape(out), "{input:?} -> {cleaned:?}");
    assert_eq!(redact::clean(key, &cleaned), cleaned, "cleaning twice changes {input:?}");
    match &cleaned {
        Cow::Borrowed(same) => {
            assert_eq!(*same, input);
            assert!(!oracle_nik_shaped(input.as_bytes()) && !redact::holds_nik_shape(input.as_bytes()), "{input:?}");
        }
        Cow::Owned(_) => {
            let shaped = redact::holds_nik_shape(input.as_bytes());
            assert!(shaped || input.len() > MAX_LOGGED_BYTES, "changed without a reason: {input:?}");
        }
    }
    // The scanner sees at least what the oracle sees, as written and decoded once and twice.
    let bytes = input.as_bytes();
    let once = percent_decode(bytes);
    if oracle_nik_shaped(bytes) || oracle_nik_shaped(&once) || oracle_nik_shaped(&percent_decode(&once)) {
        assert!(redact::holds_nik_shape(bytes), "missed: {input:?}");
    }
}

#[derive(Debug, TypeGenerator)]
enum Fragment {
    /// A run of 1..=20 digits.
    Digits(u64, u8),
    Separator(u8),
    /// `%XY` of a digit or separator (or any byte), upper or lower case, or `%25XY`.
    Encoded {
        byte: u8,
        digit_or_separator: bool,
        upper: bool,
        twice: bool,
    },
    Percent,
    Letter(u8),
}

fn render(fragments: &[Fragment]) -> String {
    let mut out = String::new();
    for fragment in fragments {
        match fragment {
            Fragment::Digits(seed, len) => {
                let digits = format!("{:020}", seed);
                out.push_str(&digits[..usize::from(len % 20) + 1]);
            }
            Fragment::Separator(i) => out.push(SEPARATORS[usize::from(*i) % SEPARATORS.len()] as char),
            Fragment::Encoded { byte, digit_or_separator, upper, twice } => {
                let byte = if *digit_or_separator {
                    let pool = b"0123456789 \t-._+/";
                    pool[usize::from(*byte) % pool.len()]
                } else {
                    *byte
                };
                let prefix = if *twice { "%25" } else { "%" };
                let encoded = if *upper { format!("{prefix}{byte:02X}") } else { format!("{prefix}{byte:02x}") };
                out.push_str(&encoded);
            }
            Fragment::Percent => out.push('%'),
            Fragment::Letter(b) => out.push((b'a' + b % 26) as char),
        }
    }
    out
}

#[test]
fn log_sanitiser_bytes() {
    let tried = penghubung_fuzz::Tried::new("log_sanitiser_bytes");
    bolero::check!().with_test_time(penghubung_fuzz::budget()).for_each(|input: &[u8]| {
        tried.one();
        check(&String::from_utf8_lossy(input));
    });
}

#[test]
fn log_sanitiser_nik_shapes() {
    let tried = penghubung_fuzz::Tried::new("log_sanitiser_nik_shapes");
    let shaped = std::sync::atomic::AtomicU64::new(0);
    bolero::check!().with_type::<Vec<Fragment>>().with_test_time(penghubung_fuzz::budget()).for_each(|fragments| {
        tried.one();
        let input = render(fragments);
        if redact::holds_nik_shape(input.as_bytes()) {
            shaped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        check(&input);
    });
    eprintln!("fuzz log_sanitiser_nik_shapes: {} NIK-shaped inputs", shaped.into_inner());
}

/// Cases found while writing the target, kept as regressions.
#[test]
fn log_sanitiser_regressions() {
    for input in [
        "%3201010101010001",                    // decoded, `%32` hides a digit: 16 digits as written
        "%253201010101010001",                  // the same, twice encoded
        "%2590%370412305794110",                // 16 digits in a row only when decoded once (found by this target)
        "nik:0123456789ab    1234567890123456", // a tag next to a run
        "3201 0101 0101 000\u{e9}1",
    ] {
        check(input);
    }
}

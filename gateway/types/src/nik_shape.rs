//! NIK shapes: whether a value holds something that may be a NIK (Nomor Induk Kependudukan), in any spelling a
//! caller could use to slip one into a log. A *NIK-shaped run* is a run of at least [`NIK_DIGITS`] decimal
//! digits in which consecutive digits may be separated by up to [`MAX_SEPARATORS`] separators (space, tab, `-`,
//! `.`, `_`, `+`, `/`), where every digit and separator may also be percent-encoded (`%33`, `%2533`, `%20`,
//! `%2D`, hex digits in either case). A value is read three times: as written, percent-decoded once and
//! percent-decoded twice.
//!
//! Pure functions over bytes, shared by the identifiers the gateway accepts at the trust boundary (request ids,
//! `traceparent`) and by the sanitiser of logs and audit records (`audit::sanitise`), which replaces the runs.

/// Digits in a NIK: runs with at least this many digits are replaced.
pub const NIK_DIGITS: usize = 16;

/// Most separators (spaces, dashes, dots, ...) between two digits of one run.
pub const MAX_SEPARATORS: usize = 3;

/// The bytes that may separate the digits of one run.
const SEPARATORS: &[u8] = b" \t-._+/";

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One way of reading a value: its bytes, and for each the range of the value's bytes it stands for.
struct Reading {
    bytes: Vec<u8>,
    source: Vec<(usize, usize)>,
}

impl Reading {
    /// The value as written.
    fn raw(text: &[u8]) -> Reading {
        Reading { bytes: text.to_vec(), source: (0..text.len()).map(|i| (i, i + 1)).collect() }
    }

    /// This reading percent-decoded once, left to right (`%XY` with two hex digits becomes one byte).
    fn decoded(&self) -> Reading {
        let (bytes, source) = (&self.bytes, &self.source);
        let mut out = Reading { bytes: Vec::with_capacity(bytes.len()), source: Vec::with_capacity(bytes.len()) };
        let mut i = 0;
        while i < bytes.len() {
            let escape = (bytes[i] == b'%' && i + 2 < bytes.len())
                .then(|| Some(hex_value(bytes[i + 1])? << 4 | hex_value(bytes[i + 2])?))
                .flatten();
            match escape {
                Some(byte) => {
                    out.bytes.push(byte);
                    out.source.push((source[i].0, source[i + 2].1));
                    i += 3;
                }
                None => {
                    out.bytes.push(bytes[i]);
                    out.source.push(source[i]);
                    i += 1;
                }
            }
        }
        out
    }
}

/// A NIK-shaped run: the range of the value's bytes it covers, how many digits it has, and in which reading
/// (0: as written, 1: decoded once, 2: decoded twice) it was found.
pub struct Run {
    /// Where the run starts in the value (a byte index).
    pub start: usize,
    /// Where it ends (exclusive).
    pub end: usize,
    digits: usize,
    reading: u8,
}

impl Run {
    /// The run's digits (what its keyed hash is computed over), read again from `text`.
    pub fn digits_in(&self, text: &[u8]) -> Vec<u8> {
        let mut reading = Reading::raw(&text[self.start..self.end]);
        for _ in 0..self.reading {
            reading = reading.decoded();
        }
        reading.bytes.retain(u8::is_ascii_digit);
        reading.bytes
    }
}

/// Every NIK-shaped run of one reading (its bytes, each with the range of the value's bytes it stands for).
/// Allocates nothing unless a run is found.
fn scan(reading: impl Iterator<Item = (u8, (usize, usize))>, which: u8, runs: &mut Vec<Run>) {
    // The run being read, and the separators since its last digit.
    let mut current: Option<Run> = None;
    let mut separators = 0;
    for (b, (from, to)) in reading {
        if b.is_ascii_digit() {
            match current.as_mut() {
                Some(run) if separators <= MAX_SEPARATORS => {
                    run.digits += 1;
                    run.end = to;
                }
                _ => {
                    runs.extend(current.take().filter(|r| r.digits >= NIK_DIGITS));
                    current = Some(Run { start: from, end: to, digits: 1, reading: which });
                }
            }
            separators = 0;
        } else if SEPARATORS.contains(&b) {
            separators += 1;
        } else {
            runs.extend(current.take().filter(|r| r.digits >= NIK_DIGITS));
            separators = 0;
        }
    }
    runs.extend(current.filter(|r| r.digits >= NIK_DIGITS));
}

/// Every NIK-shaped run of `text`, in order, overlapping ones merged. The value is read three times: as
/// written, percent-decoded once and twice, because the readings disagree (`%3201010101010001` is 16 digits as
/// written and 15 decoded; `%2590%370412305794110` is 16 digits in a row only decoded once).
pub fn find_runs(text: &[u8]) -> Vec<Run> {
    let mut runs = Vec::new();
    scan(text.iter().enumerate().map(|(i, &b)| (b, (i, i + 1))), 0, &mut runs);
    if text.contains(&b'%') {
        let once = Reading::raw(text).decoded();
        scan(once.bytes.iter().copied().zip(once.source.iter().copied()), 1, &mut runs);
        let twice = once.decoded();
        scan(twice.bytes.iter().copied().zip(twice.source.iter().copied()), 2, &mut runs);
    }
    if runs.len() < 2 {
        return runs;
    }
    runs.sort_by_key(|run| run.start);
    let mut merged: Vec<Run> = Vec::with_capacity(runs.len());
    for run in runs {
        match merged.last_mut() {
            Some(last) if run.start < last.end => {
                last.end = last.end.max(run.end);
                if run.digits > last.digits {
                    (last.digits, last.reading) = (run.digits, run.reading);
                }
            }
            _ => merged.push(run),
        }
    }
    merged
}

/// Whether `value` holds a NIK-shaped run (see the module documentation).
pub fn holds_nik_shape(value: &[u8]) -> bool {
    // Fast path: every digit of any reading stands for value bytes with an ASCII digit (`3`, `%33`, `%2533`).
    if value.iter().filter(|b| b.is_ascii_digit()).count() < NIK_DIGITS {
        return false;
    }
    !find_runs(value).is_empty()
}

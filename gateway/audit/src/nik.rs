//! Personal identifiers (NIK, the 16-digit Indonesian national identity number) found while a body streams:
//! [`NikScanner`] finds every run of exactly 16 ASCII digits (not part of a longer number), also when the run is
//! split across chunks, and keeps at most [`MAX_PER_EXCHANGE`] distinct ones. Records never hold a NIK: only
//! its keyed hash ([`keyed`], HMAC-SHA256 with a secret the Dinas holds), so an auditor with the secret can ask
//! "which exchanges concerned this NIK" and anyone without it learns nothing.

use ring::hmac;

use super::chain::hex;

/// Length of a NIK.
pub const NIK_LEN: usize = 16;

/// Distinct identifiers kept per exchange (a bulk export would otherwise make a huge record).
pub const MAX_PER_EXCHANGE: usize = 32;

/// Finds 16-digit runs in a byte stream, chunk by chunk.
#[derive(Debug, Default)]
pub struct NikScanner {
    /// Digits of the current run (only the first 16 are kept).
    digits: [u8; NIK_LEN],
    /// Length of the current run of digits (saturates above 16).
    run: usize,
    found: Vec<[u8; NIK_LEN]>,
    /// More distinct identifiers than were kept.
    pub overflow: bool,
}

impl NikScanner {
    /// Feeds the next chunk.
    pub fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if b.is_ascii_digit() {
                if self.run < NIK_LEN {
                    self.digits[self.run] = b;
                }
                self.run = self.run.saturating_add(1).min(NIK_LEN + 1);
            } else {
                self.end_run();
            }
        }
    }

    /// The stream ended (a run at the very end counts).
    pub fn finish(&mut self) {
        self.end_run();
    }

    fn end_run(&mut self) {
        if self.run == NIK_LEN && !self.found.contains(&self.digits) {
            if self.found.len() < MAX_PER_EXCHANGE {
                self.found.push(self.digits);
            } else {
                self.overflow = true;
            }
        }
        self.run = 0;
    }

    /// Takes over what `other` found (`other` must be finished).
    pub fn absorb(&mut self, other: NikScanner) {
        for nik in other.found {
            if self.found.contains(&nik) {
                continue;
            }
            if self.found.len() < MAX_PER_EXCHANGE {
                self.found.push(nik);
            } else {
                self.overflow = true;
            }
        }
        self.overflow |= other.overflow;
    }

    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    /// The keyed hashes of what was found; the identifiers themselves are forgotten.
    pub fn into_keyed(self, key: &hmac::Key) -> Vec<String> {
        self.found.iter().map(|nik| keyed(key, nik)).collect()
    }
}

/// The keyed hash stored for an identifier: HMAC-SHA256 in hex.
pub fn keyed(key: &hmac::Key, identifier: &[u8]) -> String {
    hex(hmac::sign(key, identifier).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(chunks: &[&str]) -> Vec<String> {
        let mut s = NikScanner::default();
        for c in chunks {
            s.feed(c.as_bytes());
        }
        s.finish();
        s.found.iter().map(|d| String::from_utf8(d.to_vec()).unwrap()).collect()
    }

    #[test]
    fn finds_sixteen_digit_runs_across_chunks_and_nothing_else() {
        assert_eq!(scan(&["{\"nik\":\"1807015508900002\"}"]), ["1807015508900002"]);
        assert_eq!(scan(&["{\"nik\":\"18070155", "08900002\"}"]), ["1807015508900002"]);
        assert_eq!(scan(&["1", "8", "07015508900002"]), ["1807015508900002"], "split everywhere, at the start");
        assert_eq!(scan(&["x1807015508900002"]), ["1807015508900002"], "run at the very end");
        assert!(scan(&["18070155089000021"]).is_empty(), "17 digits is not a NIK");
        assert!(scan(&["180701550890000"]).is_empty(), "15 digits is not a NIK");
        assert!(scan(&["1807015508900002", "3"]).is_empty(), "a run continued in the next chunk");
        assert_eq!(scan(&["1807015508900002 1807015508900002/3201010101010001"]).len(), 2, "distinct only");
        let key = hmac::Key::new(hmac::HMAC_SHA256, b"0123456789abcdef");
        assert_eq!(keyed(&key, b"1807015508900002").len(), 64);
        assert_ne!(keyed(&key, b"1807015508900002"), keyed(&key, b"1807015508900003"));
    }
}

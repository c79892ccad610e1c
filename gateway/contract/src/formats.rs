//! Indonesian reference data as JSON Schema custom formats: `nik`, `nip`, `kode-wilayah`, `npwp`, `nib` and
//! `telepon`. A regex can say "16 digits"; these checks also say whether the province code exists, whether the
//! birth date in a NIK is a real day, and so on. Each check is a plain `fn(&str) -> bool` that allocates nothing,
//! so the table [`FORMATS`] can be registered as it is:
//!
//! ```
//! let mut options = jsonschema::options().should_validate_formats(true);
//! for (name, check) in penghubung_contract::formats::FORMATS {
//!     options = options.with_format(*name, *check);
//! }
//! let validator = options.build(&serde_json::json!({"type": "string", "format": "nik"})).unwrap();
//! assert!(validator.is_valid(&serde_json::json!("3201014509900001")));
//! assert!(!validator.is_valid(&serde_json::json!("3201014509900000")));
//! ```
//!
//! All checks take the canonical form only: no spaces, no `-` except where the format itself has one (the
//! formatted NPWP). Callers who accept human input normalise it before it reaches the gateway.
//!
//! The reference schemas in `schemas/ref/` (`https://schemas.penghubung.local/ref/<name>.schema.json`) combine a
//! `pattern` with these formats; JSON Schema ignores unknown formats unless they are registered, so a validator
//! built without [`FORMATS`] checks only the patterns.

/// The base of every schema URI the gateway knows (the reference types live under `ref/`, the store's schemas
/// under `store/`).
pub const BASE: &str = "https://schemas.penghubung.local/";

/// Custom `format` checks (`nik`, `nip`, ...); registered on every validator.
pub type FormatCheck = fn(&str) -> bool;

/// Every custom format: `(name used in "format", check)`. Fits `jsonschema::ValidationOptions::with_format`.
pub const FORMATS: &[(&str, FormatCheck)] = &[
    ("nik", is_nik),
    ("nip", is_nip),
    ("kode-wilayah", is_kode_wilayah),
    ("npwp", is_npwp),
    ("nib", is_nib),
    ("telepon", is_telepon),
];

/// The `pattern` each reference type (`schemas/ref/`) states beside its format, which the format check already
/// implies: a string the check accepts always matches it. The single pass skips such a pattern where the format
/// is checked too (`date` is the `tanggal` type's format). The full validator and discovery keep them.
pub const IMPLIED_PATTERNS: &[(&str, &str)] = &[
    ("nik", "^[0-9]{16}$"),
    ("nip", "^[0-9]{18}$"),
    ("kode-wilayah", "^[0-9]{2}(\\.[0-9]{2}(\\.[0-9]{2}(\\.[0-9]{4})?)?)?$"),
    ("npwp", "^([0-9]{15,16}|[0-9]{2}\\.[0-9]{3}\\.[0-9]{3}\\.[0-9]-[0-9]{3}\\.[0-9]{3})$"),
    ("nib", "^[0-9]{13}$"),
    ("telepon", "^(\\+62|62|0)[0-9]{6,13}$"),
    ("date", "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
];

/// Province codes of Kemendagri (Permendagri 72/2019 and the 2022 Papua provinces).
const PROVINCES: &[u8] = &[
    11, 12, 13, 14, 15, 16, 17, 18, 19, // Sumatera
    21, // Kepulauan Riau
    31, 32, 33, 34, 35, 36, // Jawa
    51, 52, 53, // Bali, Nusa Tenggara
    61, 62, 63, 64, 65, // Kalimantan
    71, 72, 73, 74, 75, 76, // Sulawesi
    81, 82, // Maluku
    91, 92, 93, 94, 95, 96, // Papua
];

/// NIK (*Nomor Induk Kependudukan*): 16 digits `PPKKCCDDMMYYSSSS`: province `PP` (Kemendagri code), regency or
/// city `KK` and district `CC` (not `00`), birth date `DDMMYY` (women add 40 to the day), serial `SSSS` (not
/// `0000`). The birth date must exist; 29 February is accepted when `YY` is a leap year in 19YY or 20YY.
pub fn is_nik(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 16 || !all_digits(b) {
        return false;
    }
    let raw_day = number(&b[6..8]);
    let day = if raw_day > 40 { raw_day - 40 } else { raw_day };
    let month = number(&b[8..10]);
    let yy = number(&b[10..12]);
    let leap = is_leap(1900 + yy) || is_leap(2000 + yy);
    is_province(number(&b[0..2]))
        && number(&b[2..4]) != 0
        && number(&b[4..6]) != 0
        && (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(month, leap)
        && number(&b[12..16]) != 0
}

/// NIP (*Nomor Induk Pegawai*, civil servant number): 18 digits `YYYYMMDD YYYYMM S NNN`: birth date (a real date,
/// year 1900–2099), appointment as CPNS (*TMT CPNS*, month 01–12, at least 15 years after the birth year and at
/// most 2099), sex `1` (male) or `2` (female), serial `NNN` (not `000`).
pub fn is_nip(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 18 || !all_digits(b) {
        return false;
    }
    let birth_year = number(&b[0..4]);
    let birth_month = number(&b[4..6]);
    let birth_day = number(&b[6..8]);
    let appointed_year = number(&b[8..12]);
    let appointed_month = number(&b[12..14]);
    (1900..=2099).contains(&birth_year)
        && (1..=12).contains(&birth_month)
        && birth_day >= 1
        && birth_day <= days_in_month(birth_month, is_leap(birth_year))
        && appointed_year >= birth_year + 15
        && appointed_year <= 2099
        && (1..=12).contains(&appointed_month)
        && matches!(b[14], b'1' | b'2')
        && number(&b[15..18]) != 0
}

/// *Kode wilayah* (Kemendagri area code): `PP` (province), `PP.KK` (regency or city), `PP.KK.CC` (district),
/// `PP.KK.CC.DDDD` (village: first digit `1` for a *kelurahan*, `2` for a *desa*; not `x000`). `KK` and `CC` are
/// two digits other than `00`; the province is a Kemendagri province code.
pub fn is_kode_wilayah(value: &str) -> bool {
    let mut parts = value.split('.');
    let mut count = 0;
    for part in parts.by_ref() {
        let b = part.as_bytes();
        let ok = match count {
            0 => b.len() == 2 && all_digits(b) && is_province(number(b)),
            1 | 2 => b.len() == 2 && all_digits(b) && number(b) != 0,
            3 => b.len() == 4 && all_digits(b) && matches!(b[0], b'1' | b'2') && number(&b[1..4]) != 0,
            _ => false,
        };
        if !ok {
            return false;
        }
        count += 1;
    }
    count >= 1
}

/// NPWP (*Nomor Pokok Wajib Pajak*, taxpayer number): 15 digits, raw (`012345678901000`) or formatted
/// (`01.234.567.8-901.000`), or 16 digits raw (the NIK-based NPWP in use since 2024).
pub fn is_npwp(value: &str) -> bool {
    let b = value.as_bytes();
    match b.len() {
        15 | 16 => all_digits(b),
        20 => b.iter().enumerate().all(|(i, &c)| match i {
            2 | 6 | 10 | 16 => c == b'.',
            12 => c == b'-',
            _ => c.is_ascii_digit(),
        }),
        _ => false,
    }
}

/// NIB (*Nomor Induk Berusaha*, business identification number issued by OSS): 13 digits.
pub fn is_nib(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 13 && all_digits(b)
}

/// Indonesian phone number (*telepon*), canonical form only (no spaces, no `-`, no parentheses):
/// - mobile: `08…` with 9–13 digits after the leading `0`, or `+628…` / `628…` with 9–13 digits after `62`;
/// - landline: `0` + area code (2–3 digits, not starting with `0` or `8`) + 5–8 digits, i.e. 7–11 digits after
///   the `0` starting with `1`–`7` or `9`; or the same after `+62` instead of the `0`.
pub fn is_telepon(value: &str) -> bool {
    let b = value.as_bytes();
    let (national, plus, country) = if let Some(rest) = b.strip_prefix(b"+62") {
        (rest, true, true)
    } else if let Some(rest) = b.strip_prefix(b"62") {
        (rest, false, true)
    } else if let Some(rest) = b.strip_prefix(b"0") {
        (rest, false, false)
    } else {
        return false;
    };
    if !all_digits(national) {
        return false;
    }
    match national.first() {
        Some(b'8') => (9..=13).contains(&national.len()),
        // Landlines: `0…` or `+62…`; a bare `62` prefix is accepted for mobile numbers only.
        Some(b'1'..=b'7' | b'9') if plus || !country => (7..=11).contains(&national.len()),
        _ => false,
    }
}

/// `date` of RFC 3339 (`full-date`): `YYYY-MM-DD`, ASCII digits, a day that exists. The single pass checks the
/// standard `date` format with it; it is at least as strict as `jsonschema`'s own.
pub fn is_date(value: &str) -> bool {
    let b = value.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (year, month, day) = (&b[0..4], &b[5..7], &b[8..10]);
    if !(all_digits(year) && all_digits(month) && all_digits(day)) {
        return false;
    }
    let (year, month, day) = (number(year), number(month), number(day));
    day >= 1 && day <= days_in_month(month, is_leap(year))
}

fn all_digits(b: &[u8]) -> bool {
    !b.is_empty() && b.iter().all(u8::is_ascii_digit)
}

/// The number written by `digits` (callers check they are ASCII digits; at most 4).
fn number(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

fn is_province(code: u32) -> bool {
    PROVINCES.iter().any(|&p| u32::from(p) == code)
}

fn is_leap(year: u32) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(month: u32, leap: bool) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts every valid sample passes and every invalid one fails, naming the sample and why.
    fn check(name: &str, f: fn(&str) -> bool, valid: &[&str], invalid: &[(&str, &str)]) {
        for v in valid {
            assert!(f(v), "{name}: `{v}` should be valid");
        }
        for (v, why) in invalid {
            assert!(!f(v), "{name}: `{v}` should be invalid ({why})");
        }
    }

    #[test]
    fn nik() {
        check(
            "nik",
            is_nik,
            &[
                "3201011203900001", // Kab. Bogor, man born 12 March 1990
                "3201015203900002", // woman born 12 March 1990 (12 + 40)
                "1101010101000001", // Aceh, 1 January 2000
                "9601017112990123", // Papua Barat Daya, woman born 31 December 1999 (31 + 40)
                "3578012902000001", // 29 Feb 2000 (leap)
                "3578016902960001", // woman, 29 Feb 1996
                "3174052902040009", // 29 Feb: 04 is a leap year in 2004
            ],
            &[
                ("320101120390000", "15 digits"),
                ("32010112039000012", "17 digits"),
                ("3201O11203900001", "a letter O instead of 0"),
                ("3201 01120390001", "a space"),
                ("2001011203900001", "province 20 does not exist"),
                ("9701011203900001", "province 97 does not exist"),
                ("3200011203900001", "regency 00"),
                ("3201001203900001", "district 00"),
                ("3201010003900001", "day 00"),
                ("3201013203900001", "day 32"),
                ("3201014003900001", "day 40 (women's days start at 41)"),
                ("3201017203900001", "day 72 (a woman's 32nd)"),
                ("3201013104900001", "31 April"),
                ("3201017104900001", "a woman born 31 April (71)"),
                ("3201013002900001", "30 February"),
                ("3201012902010001", "29 February 2001/1901 (not a leap year)"),
                ("3201011213900001", "month 13"),
                ("3201011200900001", "month 00"),
                ("3201011203900000", "serial 0000"),
                ("", "empty"),
            ],
        );
    }

    #[test]
    fn nip() {
        check(
            "nip",
            is_nip,
            &[
                "198507152010011001", // born 15 July 1985, CPNS January 2010, man
                "199212312019022005", // born 31 December 1992, CPNS February 2019, woman
                "200002292020121123", // born 29 February 2000 (leap), CPNS December 2020
                "197001011985011999", // CPNS exactly 15 years after the birth year
                "196808171990032001",
            ],
            &[
                ("19850715201001100", "17 digits"),
                ("1985071520100110011", "19 digits"),
                ("19850715201001100A", "a letter"),
                ("189912312010011001", "born 1899"),
                ("198513152010011001", "birth month 13"),
                ("198504312010011001", "born 31 April"),
                ("199002292015032002", "born 29 February 1990 (not a leap year)"),
                ("198507152010131001", "appointment month 13"),
                ("198507152010001001", "appointment month 00"),
                ("198507151999011001", "appointed at 14 (before the birth year + 15)"),
                ("198507152010013001", "sex digit 3"),
                ("198507152010010001", "sex digit 0"),
                ("198507152010011000", "serial 000"),
            ],
        );
    }

    #[test]
    fn kode_wilayah() {
        check(
            "kode-wilayah",
            is_kode_wilayah,
            &[
                "11",            // Aceh
                "18.07",         // Kab. Lampung Timur
                "32.01.01",      // a kecamatan in Kab. Bogor
                "11.01.01.2001", // a desa
                "16.72.01.1001", // a kelurahan in Kota Prabumulih
                "96.01",         // Papua Barat Daya
            ],
            &[
                ("1", "one digit"),
                ("110", "three digits without a dot"),
                ("20", "province 20 does not exist"),
                ("11.00", "regency 00"),
                ("11.01.00", "district 00"),
                ("11.1.01", "one-digit regency"),
                ("11.01.01.3001", "village starting with 3 (only 1 kelurahan or 2 desa)"),
                ("11.01.01.2000", "village x000"),
                ("11.01.01.201", "three-digit village"),
                ("11.01.01.2001.01", "five levels"),
                ("11.01.", "trailing dot"),
                ("11-01", "a dash instead of a dot"),
                ("1101", "no dots"),
                ("1a", "a letter"),
                ("", "empty"),
            ],
        );
    }

    #[test]
    fn npwp() {
        check(
            "npwp",
            is_npwp,
            &[
                "012345678901000",      // 15 digits raw
                "01.234.567.8-901.000", // 15 digits formatted
                "3201011203900001",     // 16 digits (NIK-based)
                "99.999.999.9-999.999",
                "000000000000000",
            ],
            &[
                ("01234567890100", "14 digits"),
                ("01234567890100012", "17 digits"),
                ("01.234.567.8.901.000", "a dot where the dash belongs"),
                ("01-234-567-8-901-000", "dashes instead of dots"),
                ("01.234.567.8-901.00", "formatted, one digit short"),
                ("0123456789010AB", "letters"),
                ("01 234 567 8 901 000", "spaces"),
                ("3201.0112.0390.0001", "a formatted 16-digit NPWP (16 digits are raw only)"),
            ],
        );
    }

    #[test]
    fn nib() {
        check(
            "nib",
            is_nib,
            &["9120001234567", "0220000000001", "1234567890123", "8120114171234"],
            &[
                ("912000123456", "12 digits"),
                ("91200012345678", "14 digits"),
                ("912000123456A", "a letter"),
                ("9120-001234567", "a dash"),
                (" 9120001234567", "a leading space"),
                ("", "empty"),
            ],
        );
    }

    #[test]
    fn telepon() {
        check(
            "telepon",
            is_telepon,
            &[
                "081234567890",   // mobile, 11 digits after 0
                "+6281234567890", // mobile, international
                "6281234567890",  // mobile without +
                "0812345678",     // mobile, 9 digits after 0
                "08123456789012", // mobile, 13 digits after 0
                "0215551234",     // Jakarta landline: 021 + 7
                "+62215551234",   // the same, international
                "072512345",      // Metro (0725) + 5 digits
                "0711812345",     // Palembang (0711)
            ],
            &[
                ("08123456", "mobile: 7 digits after 0"),
                ("081234567890123", "mobile: 14 digits after 0"),
                ("0812-3456-7890", "dashes (canonical form only)"),
                ("0812 3456 7890", "spaces (canonical form only)"),
                ("+62081234567890", "+62 followed by the trunk 0"),
                ("81234567890", "no 0 or country code"),
                ("+6181234567890", "another country code"),
                ("0012345678", "area code starting with 0"),
                ("021123", "landline: too short"),
                ("0211234567890", "landline: 12 digits after the 0 (area code + at most 8)"),
                ("62215551234", "landline with bare 62 (only +62 for landlines)"),
                ("0812345678a", "a letter"),
                ("+62", "nothing after the country code"),
                ("", "empty"),
            ],
        );
    }

    /// Compiles `schemas/ref/<name>.schema.json` with the formats registered.
    fn ref_validator(name: &str) -> jsonschema::Validator {
        let path = format!("ref/{name}.schema.json");
        let text = penghubung_types::embedded::schema(&path).unwrap_or_else(|| panic!("{path} is not embedded"));
        let schema: serde_json::Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(schema["$id"], format!("https://schemas.penghubung.local/{path}"));
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
        let mut options = jsonschema::options().should_validate_formats(true);
        for (format, check) in FORMATS {
            options = options.with_format(*format, *check);
        }
        options.build(&schema).unwrap_or_else(|e| panic!("{path} does not compile: {e}"))
    }

    #[test]
    fn reference_schemas_compile_and_check_formats() {
        let cases: &[(&str, &str, &str)] = &[
            // (schema, valid, invalid where only the format check (not the pattern) can tell)
            ("nik", "3201015203900002", "3201013104900001"),
            ("nip", "198507152010011001", "198504312010011001"),
            ("kode-wilayah", "11.01.01.2001", "20.01"),
            ("npwp", "01.234.567.8-901.000", "01.234.567.8.901.000"),
            ("nib", "9120001234567", "912000123456"),
            ("telepon", "+6281234567890", "+62081234567890"),
            ("tanggal", "2024-02-29", "2023-02-29"),
        ];
        for (name, valid, invalid) in cases {
            let validator = ref_validator(name);
            assert!(validator.is_valid(&serde_json::json!(valid)), "{name}: `{valid}` should be valid");
            assert!(!validator.is_valid(&serde_json::json!(invalid)), "{name}: `{invalid}` should be invalid");
            assert!(!validator.is_valid(&serde_json::json!(12345)), "{name}: a number is not a string");
            // Every example in the schema is valid.
            let text = penghubung_types::embedded::schema(&format!("ref/{name}.schema.json")).unwrap();
            let schema: serde_json::Value = serde_json::from_str(text).unwrap();
            let examples = schema["examples"].as_array().unwrap_or_else(|| panic!("{name}: no examples"));
            for example in examples {
                assert!(validator.is_valid(example), "{name}: example {example} is invalid");
            }
        }
    }

    /// Each implied pattern is the one its reference type states, and no string the format accepts escapes it:
    /// the examples, and many thousands of variations of them (digits changed, separators moved, cut, grown).
    #[test]
    fn formats_imply_the_patterns_beside_them() {
        fn reference(format: &str) -> &str {
            if format == "date" {
                "tanggal"
            } else {
                format
            }
        }
        let mut rng = 0x1807_2026_u64;
        let mut next = move |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            (rng % n as u64) as usize
        };
        let alphabet = b"0123456789012345678901234567890123456789.-+ a";
        for (format, pattern) in IMPLIED_PATTERNS {
            let text = penghubung_types::embedded::schema(&format!("ref/{}.schema.json", reference(format))).unwrap();
            let schema: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(schema["pattern"], *pattern, "{format}");
            let check: fn(&str) -> bool = match FORMATS.iter().find(|(n, _)| n == format) {
                Some((_, check)) => *check,
                None => is_date,
            };
            let regex = regex::Regex::new(pattern).unwrap();
            let (mut accepted, mut tried) = (0, 0);
            for example in schema["examples"].as_array().unwrap() {
                let example = example.as_str().unwrap().as_bytes();
                for _ in 0..20_000 {
                    let mut candidate = example.to_vec();
                    for _ in 0..1 + next(3) {
                        let at = next(candidate.len() + 1);
                        match next(4) {
                            0 if at < candidate.len() => candidate[at] = alphabet[next(alphabet.len())],
                            1 if at < candidate.len() => {
                                candidate.remove(at);
                            }
                            _ => candidate.insert(at, alphabet[next(alphabet.len())]),
                        }
                    }
                    let candidate = String::from_utf8(candidate).unwrap();
                    tried += 1;
                    if check(&candidate) {
                        accepted += 1;
                        assert!(regex.is_match(&candidate), "{format} accepts `{candidate}`, `{pattern}` does not");
                    }
                }
            }
            assert!(accepted > tried / 100, "{format}: only {accepted} of {tried} variations were valid");
        }
    }
}

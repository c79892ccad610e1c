//! The month a report covers, in the Dinas's local time: [`Month`] (`2026-11`) and [`UtcOffset`] (`+07:00`,
//! WIB by default). Record times are UTC; [`DayOf`] turns a record's time into the day of the month it falls on
//! locally, remembering the last hour it saw (records come in time order, so nearly every lookup is a hit).

use std::time::{Duration, SystemTime};

/// A calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Month {
    pub year: i32,
    /// 1 to 12.
    pub month: u32,
}

impl std::str::FromStr for Month {
    type Err = String;

    /// `YYYY-MM`.
    fn from_str(text: &str) -> Result<Month, String> {
        let bad = || format!("`{text}` is not a month (YYYY-MM, e.g. 2026-11)");
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        if year.len() != 4 || month.len() != 2 || !(year.bytes().chain(month.bytes()).all(|b| b.is_ascii_digit())) {
            return Err(bad());
        }
        let (year, month): (i32, u32) = (year.parse().map_err(|_| bad())?, month.parse().map_err(|_| bad())?);
        if !(1..=12).contains(&month) || year < 1970 {
            return Err(bad());
        }
        Ok(Month { year, month })
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl Month {
    /// The month `time` falls in at `offset`.
    pub fn of(time: SystemTime, offset: UtcOffset) -> Month {
        let secs = time.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let (year, month, _) = civil_from_days((secs + i64::from(offset.minutes) * 60).div_euclid(86_400));
        Month { year, month }
    }

    pub fn days(self) -> u32 {
        let next = self.next();
        (days_from_civil(next.year, next.month, 1) - days_from_civil(self.year, self.month, 1)) as u32
    }

    fn next(self) -> Month {
        if self.month == 12 {
            Month { year: self.year + 1, month: 1 }
        } else {
            Month { year: self.year, month: self.month + 1 }
        }
    }

    /// Seconds in the month (for allocations given per second).
    pub fn seconds(self) -> u64 {
        u64::from(self.days()) * 86_400
    }

    /// The first and the first-after instants of the month at `offset`.
    pub fn bounds(self, offset: UtcOffset) -> (SystemTime, SystemTime) {
        let at = |m: Month| {
            let secs = days_from_civil(m.year, m.month, 1) * 86_400 - i64::from(offset.minutes) * 60;
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
        };
        (at(self), at(self.next()))
    }

    /// `2026-11-05` for day index 0-based `day`.
    pub fn date(self, day: u32) -> String {
        format!("{self}-{:02}", day + 1)
    }
}

/// The local time's offset from UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcOffset {
    pub minutes: i32,
}

impl UtcOffset {
    /// Waktu Indonesia Barat (Lampung): UTC+7.
    pub const WIB: UtcOffset = UtcOffset { minutes: 7 * 60 };
}

impl Default for UtcOffset {
    fn default() -> Self {
        UtcOffset::WIB
    }
}

impl std::str::FromStr for UtcOffset {
    type Err = String;

    /// `+07:00`, `-03:30`, `Z`.
    fn from_str(text: &str) -> Result<UtcOffset, String> {
        if text == "Z" || text == "UTC" {
            return Ok(UtcOffset { minutes: 0 });
        }
        let bad = || format!("`{text}` is not a UTC offset (+07:00 for WIB, +08:00 WITA, +09:00 WIT)");
        let (sign, rest) = match text.as_bytes().first() {
            Some(b'+') => (1, &text[1..]),
            Some(b'-') => (-1, &text[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = rest.split_once(':').ok_or_else(bad)?;
        let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        if h > 14 || m >= 60 || h < 0 || m < 0 {
            return Err(bad());
        }
        Ok(UtcOffset { minutes: sign * (h * 60 + m) })
    }
}

impl std::fmt::Display for UtcOffset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.minutes < 0 { '-' } else { '+' };
        write!(f, "{sign}{:02}:{:02}", self.minutes.abs() / 60, self.minutes.abs() % 60)
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    ((yoe + era * 400 + i64::from(month <= 2)) as i32, month, day)
}

/// Maps a record's `time` (`2026-11-05T17:30:00.123456789Z`) to its local day in the month.
pub struct DayOf {
    month: Month,
    offset: UtcOffset,
    /// `YYYY-MM-DDTHH` (and `:MM` when the offset is not whole hours) of the last lookup, and its answer.
    last: Option<([u8; 16], Option<u32>)>,
}

impl DayOf {
    pub fn new(month: Month, offset: UtcOffset) -> DayOf {
        DayOf { month, offset, last: None }
    }

    /// The 0-based local day of the month, `None` when the time is outside the month or not a record time.
    pub fn day(&mut self, time: &[u8]) -> Option<u32> {
        let width = if self.offset.minutes % 60 == 0 { 13 } else { 16 };
        let mut key = [0u8; 16];
        key[..width].copy_from_slice(time.get(..width)?);
        if let Some((last, answer)) = self.last {
            if last == key {
                return answer;
            }
        }
        let answer = self.compute(time);
        self.last = Some((key, answer));
        answer
    }

    fn compute(&self, t: &[u8]) -> Option<u32> {
        let num = |range: std::ops::Range<usize>| -> Option<i64> {
            let digits = t.get(range)?;
            digits.iter().try_fold(0i64, |n, d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')))
        };
        if t.get(4) != Some(&b'-') || t.get(10) != Some(&b'T') {
            return None;
        }
        let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
        let (hour, minute) = (num(11..13)?, num(14..16)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return None;
        }
        let minutes = days_from_civil(year as i32, month as u32, day as u32) * 1440
            + hour * 60
            + minute
            + i64::from(self.offset.minutes);
        let (y, m, d) = civil_from_days(minutes.div_euclid(1440));
        (y == self.month.year && m == self.month.month).then_some(d - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_offsets_and_local_days() {
        let nov: Month = "2026-11".parse().unwrap();
        assert_eq!((nov.days(), nov.to_string()), (30, "2026-11".to_string()));
        assert_eq!("2028-02".parse::<Month>().unwrap().days(), 29);
        for bad in ["2026-13", "2026-1", "26-11", "2026/11", "abcd-ef", "1969-12"] {
            assert!(bad.parse::<Month>().is_err(), "{bad}");
        }
        assert_eq!("+07:00".parse::<UtcOffset>().unwrap(), UtcOffset::WIB);
        assert_eq!("-03:30".parse::<UtcOffset>().unwrap().to_string(), "-03:30");
        assert!("07:00".parse::<UtcOffset>().is_err());
        let mut wib = DayOf::new(nov, UtcOffset::WIB);
        assert_eq!(wib.day(b"2026-10-31T16:59:59.999999999Z"), None);
        assert_eq!(wib.day(b"2026-10-31T17:00:00.000000000Z"), Some(0));
        assert_eq!(wib.day(b"2026-11-05T18:00:00.000000000Z"), Some(5));
        assert_eq!(wib.day(b"2026-11-30T16:59:59.000000000Z"), Some(29));
        assert_eq!(wib.day(b"2026-11-30T17:00:00.000000000Z"), None);
        assert_eq!(wib.day(b"garbage"), None);
        let (start, end) = nov.bounds(UtcOffset::WIB);
        assert_eq!(penghubung_audit::record::format_time(start), "2026-10-31T17:00:00.000000000Z");
        assert_eq!(penghubung_audit::record::format_time(end), "2026-11-30T17:00:00.000000000Z");
        assert_eq!(Month::of(start, UtcOffset::WIB), nov);
        assert_eq!(civil_from_days(days_from_civil(2026, 11, 26)), (2026, 11, 26));
    }
}

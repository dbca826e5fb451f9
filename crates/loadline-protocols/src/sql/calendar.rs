//! Dates and times as text, for binding and capturing temporal columns without a
//! date library: ISO 8601 in (`2024-05-01`, `2024-05-01T12:30:00.25Z`,
//! `2024-05-01 12:30:00+02:00`), ISO 8601 out, days counted from 1970-01-01 in
//! the proleptic Gregorian calendar.

use std::fmt::Write as _;

pub(crate) const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A point in time read from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DateTime {
    /// Days since 1970-01-01.
    pub days: i64,
    /// Microseconds since midnight.
    pub micros: i64,
    /// The UTC offset written in the text, in seconds (`Z` is `Some(0)`).
    pub offset: Option<i64>,
}

impl DateTime {
    /// Microseconds since 1970-01-01T00:00:00 UTC, reading a time without an
    /// offset as UTC.
    pub fn utc_micros(&self) -> i64 {
        self.days * MICROS_PER_DAY + self.micros - self.offset.unwrap_or(0) * 1_000_000
    }

    /// Microseconds since 1970-01-01T00:00:00 of the wall-clock time written,
    /// ignoring any offset (what a column without time zone stores).
    pub fn local_micros(&self) -> i64 {
        self.days * MICROS_PER_DAY + self.micros
    }
}

/// Days since 1970-01-01 of a civil date.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// A small cursor over ASCII text.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn digits(&mut self, n: usize) -> Option<i64> {
        let s = self.b.get(self.i..self.i + n)?;
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        self.i += n;
        Some(s.iter().fold(0, |acc, c| acc * 10 + i64::from(c - b'0')))
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn done(&self) -> bool {
        self.i == self.b.len()
    }
}

fn date(c: &mut Cursor<'_>) -> Option<i64> {
    let y = c.digits(4)?;
    let m = c.eat(b'-').then(|| c.digits(2))?? as u32;
    let d = c.eat(b'-').then(|| c.digits(2))?? as u32;
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    Some(days_from_civil(y, m, d))
}

/// `HH:MM[:SS[.fraction]]` as microseconds since midnight.
fn time(c: &mut Cursor<'_>) -> Option<i64> {
    let h = c.digits(2)?;
    let mi = c.eat(b':').then(|| c.digits(2))??;
    let mut s = 0;
    let mut micros = 0;
    if c.eat(b':') {
        s = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.i;
            let mut scale = 100_000;
            while let Some(d) = c.peek().filter(u8::is_ascii_digit) {
                micros += i64::from(d - b'0') * scale;
                scale /= 10;
                c.i += 1;
            }
            if c.i == start {
                return None;
            }
        }
    }
    // 24:00:00 is the end of the day, as PostgreSQL allows.
    let end_of_day = h == 24 && mi == 0 && s == 0 && micros == 0;
    if (h > 23 && !end_of_day) || mi > 59 || s > 60 {
        return None;
    }
    Some(((h * 60 + mi) * 60 + s) * 1_000_000 + micros)
}

fn offset(c: &mut Cursor<'_>) -> Option<Option<i64>> {
    c.eat(b' ');
    if c.done() {
        return Some(None);
    }
    if c.eat(b'Z') || c.eat(b'z') {
        return c.done().then_some(Some(0));
    }
    let sign = match c.peek()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    c.i += 1;
    let h = c.digits(2)?;
    let m = if c.eat(b':') {
        c.digits(2)?
    } else {
        c.digits(2).unwrap_or(0)
    };
    (c.done() && h <= 15 && m <= 59).then_some(Some(sign * (h * 3600 + m * 60)))
}

/// Reads `YYYY-MM-DD`, optionally followed by `T` or a space, a time, and a UTC
/// offset.
pub(crate) fn parse_datetime(s: &str) -> Option<DateTime> {
    let mut c = Cursor {
        b: s.trim().as_bytes(),
        i: 0,
    };
    let days = date(&mut c)?;
    if c.done() {
        return Some(DateTime {
            days,
            micros: 0,
            offset: None,
        });
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let micros = time(&mut c)?;
    let offset = offset(&mut c)?;
    Some(DateTime {
        days,
        micros,
        offset,
    })
}

/// Reads `HH:MM[:SS[.fraction]]` as microseconds since midnight.
pub(crate) fn parse_time(s: &str) -> Option<i64> {
    let mut c = Cursor {
        b: s.trim().as_bytes(),
        i: 0,
    };
    let t = time(&mut c)?;
    c.done().then_some(t)
}

/// `YYYY-MM-DD`.
pub(crate) fn format_date(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// `HH:MM:SS`, with `.ffffff` when there is a fraction.
pub(crate) fn format_time(out: &mut String, micros: i64) {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    if frac != 0 {
        let _ = write!(out, ".{frac:06}");
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]` of microseconds since 1970-01-01T00:00:00, with
/// a `Z` when `utc`.
pub(crate) fn format_datetime(micros: i64, utc: bool) -> String {
    let mut out = String::with_capacity(28);
    format_date(&mut out, micros.div_euclid(MICROS_PER_DAY));
    out.push('T');
    format_time(&mut out, micros.rem_euclid(MICROS_PER_DAY));
    if utc {
        out.push('Z');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 1, 1), 10_957);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for z in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn parses_iso_dates_and_times() {
        let dt = parse_datetime("2024-02-29T12:30:05.25Z").expect("valid");
        assert_eq!(dt.days, days_from_civil(2024, 2, 29));
        assert_eq!(dt.micros, (12 * 3600 + 30 * 60 + 5) * 1_000_000 + 250_000);
        assert_eq!(dt.offset, Some(0));
        let pg = parse_datetime("2024-01-02 03:04:05+02").expect("valid");
        assert_eq!(pg.offset, Some(7200));
        assert_eq!(
            pg.utc_micros(),
            days_from_civil(2024, 1, 2) * MICROS_PER_DAY
                + (3 * 3600 + 4 * 60 + 5 - 7200) * 1_000_000
        );
        assert_eq!(
            parse_datetime("2024-01-02 03:04 -05:30").map(|d| d.offset),
            Some(Some(-19_800))
        );
        assert_eq!(parse_datetime("2024-05-01").map(|d| d.micros), Some(0));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "2024-01-01T25:00",
            "2024-01-01x",
            "now",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(parse_time("01:02:03.5"), Some(3_723_500_000));
        assert_eq!(parse_time("01:02:03 junk"), None);
    }

    #[test]
    fn formats_iso() {
        let micros = parse_datetime("1999-12-31T23:59:59.000001Z")
            .expect("valid")
            .utc_micros();
        assert_eq!(format_datetime(micros, true), "1999-12-31T23:59:59.000001Z");
        assert_eq!(format_datetime(-1_000_000, false), "1969-12-31T23:59:59");
        let mut s = String::new();
        format_time(&mut s, 3_723_000_000);
        assert_eq!(s, "01:02:03");
    }
}

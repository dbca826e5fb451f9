//! Dates and times as ISO 8601 text, read and written with the `time` crate:
//! the text a parameter may hold (`2024-05-01`, `2024-05-01T12:30:00.25Z`,
//! `2024-05-01 12:30:00+02:00`) and the text a captured value gets
//! (`2024-05-01T12:30:00.250000Z`). sqlx turns the `time` values into each
//! database's own form and back.

use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use time::parsing::Parsed;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

type Format = [BorrowedFormatItem<'static>];

/// `HH:MM[:SS[.fraction]]`; a comma may stand for the point.
const TIME: &Format = format_description!(
    version = 2,
    "[hour]:[minute][optional [:[second][optional [[first [.][,]][subsecond digits:1+]]]]]"
);

/// `YYYY-MM-DD`, then optionally `T` (or `t`, or a space) and a time, then
/// optionally a UTC offset (`Z`, `±HH`, `±HHMM` or `±HH:MM`, a space allowed
/// before it).
const DATETIME: &Format = &[
    BorrowedFormatItem::Compound(format_description!("[year]-[month]-[day]")),
    BorrowedFormatItem::Optional(&BorrowedFormatItem::Compound(&[
        BorrowedFormatItem::Compound(format_description!(version = 2, "[first [T][t][ ]]")),
        BorrowedFormatItem::Compound(TIME),
        BorrowedFormatItem::Optional(&BorrowedFormatItem::Compound(format_description!(
            version = 2,
            "[optional [ ]][first [Z][z][[offset_hour sign:mandatory]\
             [optional [[first [:[offset_minute]][[offset_minute]]]]]]]"
        ))),
    ])),
];

/// The widest UTC offset accepted, in hours (PostgreSQL's bound).
const MAX_OFFSET_HOURS: i8 = 15;

/// Parses all of `s` (surrounding whitespace ignored) with `format`.
fn parse(s: &str, format: &Format) -> Option<Parsed> {
    let mut parsed = Parsed::new();
    let rest = parsed.parse_items(s.trim().as_bytes(), format).ok()?;
    rest.is_empty().then_some(parsed)
}

/// Whole microseconds: the databases keep no more, and digits past the sixth
/// are dropped, not rounded.
fn to_micros(t: Time) -> Option<Time> {
    t.replace_microsecond(t.microsecond()).ok()
}

/// Reads `YYYY-MM-DD`, optionally followed by `T` or a space, a time, and a
/// UTC offset. A date alone is midnight; a time without an offset is UTC.
pub(crate) fn parse_datetime(s: &str) -> Option<OffsetDateTime> {
    let parsed = parse(s, DATETIME)?;
    let date = Date::try_from(parsed).ok()?;
    let time = match parsed.hour_24() {
        Some(_) => to_micros(Time::try_from(parsed).ok()?)?,
        None => Time::MIDNIGHT,
    };
    let offset = match parsed.offset_hour() {
        Some(_) => UtcOffset::try_from(parsed).ok()?,
        None => UtcOffset::UTC,
    };
    (offset.whole_hours().abs() <= MAX_OFFSET_HOURS)
        .then(|| PrimitiveDateTime::new(date, time).assume_offset(offset))
}

/// Reads `HH:MM[:SS[.fraction]]`.
pub(crate) fn parse_time(s: &str) -> Option<Time> {
    to_micros(Time::try_from(parse(s, TIME)?).ok()?)
}

/// `YYYY-MM-DD`.
pub(crate) fn format_date(date: Date) -> Option<String> {
    date.format(format_description!("[year]-[month]-[day]"))
        .ok()
}

/// `HH:MM:SS`, with `.ffffff` when there is a fraction.
pub(crate) fn format_time(time: Time) -> Option<String> {
    let format = if time.nanosecond() == 0 {
        format_description!("[hour]:[minute]:[second]")
    } else {
        format_description!("[hour]:[minute]:[second].[subsecond digits:6]")
    };
    time.format(format).ok()
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]`, with a `Z` when `utc`.
pub(crate) fn format_datetime(dt: PrimitiveDateTime, utc: bool) -> Option<String> {
    let mut out = format_date(dt.date())?;
    out.push('T');
    out.push_str(&format_time(dt.time())?);
    if utc {
        out.push('Z');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime, offset, time};

    #[test]
    fn parses_iso_dates_and_times() {
        assert_eq!(
            parse_datetime("2024-02-29T12:30:05.25Z"),
            Some(datetime!(2024-02-29 12:30:05.25 UTC))
        );
        assert_eq!(
            parse_datetime("2024-01-02 03:04:05+02"),
            Some(datetime!(2024-01-02 03:04:05 +2))
        );
        assert_eq!(
            parse_datetime("2024-01-02 03:04 -05:30").map(OffsetDateTime::offset),
            Some(offset!(-05:30))
        );
        assert_eq!(
            parse_datetime("2024-01-02T03:04:05,5 +0530"),
            Some(datetime!(2024-01-02 03:04:05.5 +05:30))
        );
        assert_eq!(
            parse_datetime(" 2024-05-01 "),
            Some(datetime!(2024-05-01 0:00 UTC))
        );
        // Microseconds, truncated.
        assert_eq!(
            parse_datetime("1999-12-31t23:59:59.9999999z"),
            Some(datetime!(1999-12-31 23:59:59.999999 UTC))
        );
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "2024-01-01T25:00",
            "2024-01-01T10",
            "2024-01-01T10:00:05.",
            "2024-01-01T10:00+05:",
            "2024-01-01T10:00+16",
            "2024-01-01x",
            "2024-01-01T",
            "now",
            "",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad}");
        }
        assert_eq!(parse_time("01:02:03.5"), Some(time!(01:02:03.5)));
        assert_eq!(parse_time("01:02"), Some(time!(01:02)));
        assert_eq!(parse_time("01:02:03 junk"), None);
        assert_eq!(parse_time("2024-01-01 01:02:03"), None);
    }

    #[test]
    fn formats_iso() {
        assert_eq!(
            format_datetime(datetime!(1999-12-31 23:59:59.000001), true).as_deref(),
            Some("1999-12-31T23:59:59.000001Z")
        );
        assert_eq!(
            format_datetime(datetime!(1969-12-31 23:59:59), false).as_deref(),
            Some("1969-12-31T23:59:59")
        );
        assert_eq!(
            format_datetime(datetime!(2024-05-01 13:04:05.25), false).as_deref(),
            Some("2024-05-01T13:04:05.250000")
        );
        assert_eq!(format_time(time!(01:02:03)).as_deref(), Some("01:02:03"));
        assert_eq!(
            format_date(date!(0001 - 01 - 01)).as_deref(),
            Some("0001-01-01")
        );
    }
}

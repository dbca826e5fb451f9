//! Parsers for the small value languages of scenario files: durations (`500ms`,
//! `1m30s`), duration ranges (`1s..3s`) and rates (`10/s`, `5%`).

use std::time::Duration;

/// Parses a duration such as `500ms`, `10s`, `1.5s`, `2m`, `1h30m`, `250us`.
/// A bare number is not accepted: a unit is always required.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err(
            "expected a duration such as 500ms, 10s or 1m30s, found an empty string".into(),
        );
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return Err(format!(
                "expected a duration such as 500ms, 10s or 1m30s, found `{s}`"
            ));
        }
        let number: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("`{}` is not a number in duration `{s}`", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor = match unit {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => {
                return Err(format!(
                    "duration `{s}` needs a unit: one of us, ms, s, m, h (e.g. {number}s)"
                ))
            }
            other => {
                return Err(format!(
                    "unknown unit `{other}` in duration `{s}`: expected one of us, ms, s, m, h"
                ))
            }
        };
        total += number * factor;
    }
    if !total.is_finite() || total > 366.0 * 24.0 * 3600.0 {
        return Err(format!("duration `{s}` is too long (at most one year)"));
    }
    Ok(Duration::from_secs_f64(total))
}

/// Renders a duration in the same language `parse_duration` reads.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{}us", d.as_micros())
    } else if ms < 1000.0 {
        format!("{}ms", trim_float(ms))
    } else {
        format!("{}s", trim_float(ms / 1000.0))
    }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A pause: fixed (`500ms`) or uniformly random between two bounds (`1s..3s`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

impl DurationRange {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once("..") {
            Some((a, b)) => {
                let min = parse_duration(a)?;
                let max = parse_duration(b)?;
                if max < min {
                    return Err(format!(
                        "range `{text}` ends before it starts: write the smaller bound first"
                    ));
                }
                Ok(Self { min, max })
            }
            None => {
                let d = parse_duration(text)?;
                Ok(Self { min: d, max: d })
            }
        }
    }

    /// Draws a pause from the range.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        if self.max == self.min {
            return self.min;
        }
        let span = (self.max - self.min).as_nanos() as u64;
        self.min + Duration::from_nanos(rng.u64(0..=span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("10x")
            .unwrap_err()
            .contains("unknown unit `x`"));
        assert!(parse_duration("10").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("1..2s").is_err());
        assert!(parse_duration("99999999h").is_err());
    }

    #[test]
    fn ranges() {
        let r = DurationRange::parse("1s..3s").unwrap();
        assert_eq!(r.min, Duration::from_secs(1));
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..100 {
            let d = r.sample(&mut rng);
            assert!(d >= r.min && d <= r.max);
        }
        assert!(DurationRange::parse("3s..1s").is_err());
        assert_eq!(
            DurationRange::parse("500ms").unwrap().sample(&mut rng),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5s");
    }
}

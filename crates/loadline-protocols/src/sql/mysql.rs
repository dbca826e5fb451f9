//! MySQL and MariaDB: statements prepared once per connection (binary protocol),
//! parameters bound by their JSON type (the server converts as it needs), result
//! values turned into JSON.

use std::fmt::Write as _;

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::mysql::{MySqlArguments, MySqlConnection, MySqlRow};
use sqlx::{Arguments, Either, Executor, Row, TypeInfo, ValueRef};

use super::conn::{Failure, Ran};
use super::pg::decimal_json;

/// Runs one statement whose `?` placeholders take the parameters listed in
/// `order`; keeps the columns named in `needs` of the first row.
pub(crate) async fn run(
    conn: &mut MySqlConnection,
    sql: &str,
    order: &[usize],
    params: &[Value],
    needs: &[String],
) -> Result<Ran, Failure> {
    let mut args = MySqlArguments::default();
    for (n, &i) in order.iter().enumerate() {
        let value = params.get(i).unwrap_or(&Value::Null);
        bind(&mut args, value).map_err(|e| {
            Failure::client(
                super::errors::ErrorKind::Sql,
                format!("parameter {}: {e}", n + 1),
            )
        })?;
    }
    let query = sqlx::query_with(sql, args).persistent(true);
    let mut stream = (&mut *conn).fetch_many(query);
    let mut ran = Ran::default();
    while let Some(item) = stream.try_next().await.map_err(Failure::from_sqlx)? {
        match item {
            Either::Left(done) => ran.affected += done.rows_affected(),
            Either::Right(row) => {
                if ran.returned == 0 && !needs.is_empty() {
                    ran.first = Some(needs.iter().map(|c| column(&row, c)).collect());
                }
                ran.returned += 1;
            }
        }
    }
    Ok(ran)
}

/// Null → NULL, booleans → TINYINT 0/1, integers → BIGINT (UNSIGNED above
/// i64), other numbers → DOUBLE, strings → text, arrays and objects → their
/// JSON text.
fn bind(args: &mut MySqlArguments, value: &Value) -> Result<(), BoxDynError> {
    match value {
        Value::Null => args.add(Option::<i64>::None),
        Value::Bool(b) => args.add(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => args.add(i),
            (None, Some(u)) => args.add(u),
            _ => args.add(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => args.add(s.as_str()),
        other => args.add(other.to_string()),
    }
}

/// The value of column `name` of `row`; `None` when there is no such column or
/// its type is one loadline cannot read.
fn column(row: &MySqlRow, name: &str) -> Option<Value> {
    let raw = row.try_get_raw(name).ok()?;
    if raw.is_null() {
        return Some(Value::Null);
    }
    let ty = raw.type_info().name().to_owned();
    let bytes = || row.try_get_unchecked::<&[u8], _>(name).ok();
    let text = || bytes().map(|b| String::from_utf8_lossy(b).into_owned());
    Some(match ty.as_str() {
        "BOOLEAN" => Value::Bool(row.try_get_unchecked::<i64, _>(name).ok()? != 0),
        t if t.ends_with("UNSIGNED") => Value::from(row.try_get_unchecked::<u64, _>(name).ok()?),
        "TINYINT" | "SMALLINT" | "INT" | "MEDIUMINT" | "BIGINT" | "YEAR" => {
            Value::from(row.try_get_unchecked::<i64, _>(name).ok()?)
        }
        "FLOAT" => float(f64::from(row.try_get_unchecked::<f32, _>(name).ok()?)),
        "DOUBLE" => float(row.try_get_unchecked::<f64, _>(name).ok()?),
        "DECIMAL" => decimal_json(&text()?),
        "BIT" => Value::from(
            bytes()?
                .iter()
                .fold(0u64, |acc, b| acc << 8 | u64::from(*b)),
        ),
        "JSON" => serde_json::from_slice(bytes()?).ok()?,
        "DATE" | "DATETIME" | "TIMESTAMP" => Value::String(datetime(bytes()?, ty == "TIMESTAMP")?),
        "TIME" => Value::String(time(bytes()?)?),
        "CHAR" | "VARCHAR" | "TINYTEXT" | "TEXT" | "MEDIUMTEXT" | "LONGTEXT" | "ENUM" | "SET"
        | "BINARY" | "VARBINARY" | "TINYBLOB" | "BLOB" | "MEDIUMBLOB" | "LONGBLOB" => {
            Value::String(text()?)
        }
        _ => return None,
    })
}

fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
}

/// A binary DATE / DATETIME / TIMESTAMP (length byte, year, month, day, and
/// optionally hour, minute, second, microseconds) as ISO 8601. TIMESTAMP values
/// are UTC (the connection's time zone is +00:00) and get a `Z`.
fn datetime(b: &[u8], utc: bool) -> Option<String> {
    let len = usize::from(*b.first()?);
    let b = b.get(1..=len)?;
    let mut out = String::with_capacity(27);
    if len < 4 {
        // The zero date.
        out.push_str("0000-00-00");
        return Some(out);
    }
    let year = u16::from_le_bytes([b[0], b[1]]);
    let _ = write!(out, "{year:04}-{:02}-{:02}", b[2], b[3]);
    if len >= 7 || utc {
        let (h, m, s) = if len >= 7 {
            (b[4], b[5], b[6])
        } else {
            (0, 0, 0)
        };
        let _ = write!(out, "T{h:02}:{m:02}:{s:02}");
        if len >= 11 {
            let micros = u32::from_le_bytes([b[7], b[8], b[9], b[10]]);
            if micros != 0 {
                let _ = write!(out, ".{micros:06}");
            }
        }
        if utc {
            out.push('Z');
        }
    }
    Some(out)
}

/// A binary TIME (length byte, sign, days, hour, minute, second, microseconds)
/// as `[-]HH:MM:SS[.ffffff]`, hours past 24 kept.
fn time(b: &[u8]) -> Option<String> {
    let len = usize::from(*b.first()?);
    let b = b.get(1..=len)?;
    if len < 8 {
        return Some("00:00:00".into());
    }
    let negative = b[0] == 1;
    let days = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
    let hours = u64::from(days) * 24 + u64::from(b[5]);
    let micros = if len >= 12 {
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    } else {
        0
    };
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    let _ = write!(out, "{hours:02}:{:02}:{:02}", b[6], b[7]);
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_temporals_read_as_iso() {
        assert_eq!(
            datetime(&[4, 0xE8, 0x07, 5, 1], false).as_deref(),
            Some("2024-05-01")
        );
        assert_eq!(
            datetime(&[7, 0xE8, 0x07, 5, 1, 13, 4, 5], true).as_deref(),
            Some("2024-05-01T13:04:05Z")
        );
        assert_eq!(
            datetime(
                &[11, 0xE8, 0x07, 5, 1, 13, 4, 5, 0x90, 0xD0, 0x03, 0],
                false
            )
            .as_deref(),
            Some("2024-05-01T13:04:05.250000")
        );
        assert_eq!(
            datetime(&[11, 0xE8, 0x07, 5, 1, 13, 4, 5, 1, 0, 0, 0], false).as_deref(),
            Some("2024-05-01T13:04:05.000001")
        );
        assert_eq!(
            time(&[8, 1, 1, 0, 0, 0, 2, 3, 4]).as_deref(),
            Some("-26:03:04")
        );
        assert_eq!(time(&[0]).as_deref(), Some("00:00:00"));
        assert_eq!(datetime(&[9, 1], false), None);
    }
}

//! MySQL and MariaDB: statements prepared once per connection (binary protocol),
//! parameters bound by their JSON type (the server converts as it needs), result
//! values turned into JSON.

use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::mysql::types::MySqlTime;
use sqlx::mysql::{MySqlArguments, MySqlConnection, MySqlRow};
use sqlx::{Arguments, Either, Executor, Row, TypeInfo, ValueRef};
use time::{Date, PrimitiveDateTime, Time};

use super::calendar;
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
        "DATE" => Value::String(calendar::format_date(
            row.try_get_unchecked::<Date, _>(name).ok()?,
        )?),
        "DATETIME" => {
            let dt = row.try_get_unchecked::<PrimitiveDateTime, _>(name).ok()?;
            // At midnight the server sends a DATETIME without its time part,
            // and loadline has always captured it as the date alone.
            if dt.time() == Time::MIDNIGHT {
                Value::String(calendar::format_date(dt.date())?)
            } else {
                Value::String(calendar::format_datetime(dt, false)?)
            }
        }
        // In UTC: the connection's time zone is +00:00.
        "TIMESTAMP" => Value::String(calendar::format_datetime(
            row.try_get_unchecked::<PrimitiveDateTime, _>(name).ok()?,
            true,
        )?),
        "TIME" => Value::String(time_text(
            &row.try_get_unchecked::<MySqlTime, _>(name).ok()?,
        )),
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

/// A TIME (a duration of up to ±838 hours) as `[-]HH:MM:SS[.ffffff]`.
fn time_text(t: &MySqlTime) -> String {
    // Through the sign: sqlx 0.8.6's `MySqlTime::is_negative` answers
    // `is_positive`.
    let sign = if t.sign().is_negative() { "-" } else { "" };
    let (h, m, s, us) = (t.hours(), t.minutes(), t.seconds(), t.microseconds());
    if us == 0 {
        format!("{sign}{h:02}:{m:02}:{s:02}")
    } else {
        format!("{sign}{h:02}:{m:02}:{s:02}.{us:06}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::mysql::types::MySqlTimeSign;

    #[test]
    fn times_read_as_text() {
        let time = |sign, h, m, s, us| MySqlTime::new(sign, h, m, s, us).expect("in range");
        assert_eq!(
            time_text(&time(MySqlTimeSign::Negative, 26, 3, 4, 0)),
            "-26:03:04"
        );
        assert_eq!(
            time_text(&time(MySqlTimeSign::Positive, 1, 2, 3, 250_000)),
            "01:02:03.250000"
        );
        assert_eq!(time_text(&MySqlTime::ZERO), "00:00:00");
    }
}

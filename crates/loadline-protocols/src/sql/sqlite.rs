//! SQLite: statements prepared once per connection, parameters bound by their
//! JSON type (SQLite's columns take any type), result values turned into JSON by
//! the type each value has.

use super::errors::ErrorKind;
use futures_util::TryStreamExt;
use serde_json::Value;
use sqlx::error::BoxDynError;
use sqlx::sqlite::{SqliteArguments, SqliteConnection, SqliteRow};
use sqlx::{Arguments, Either, Executor, Row, TypeInfo, ValueRef};

use super::conn::{Failure, Ran};

/// Runs one statement (SQLite numbers `$1`, `$2`, … itself); keeps the columns
/// named in `needs` of the first row.
pub(crate) async fn run(
    conn: &mut SqliteConnection,
    sql: &str,
    params: &[Value],
    needs: &[String],
) -> Result<Ran, Failure> {
    let mut args = SqliteArguments::default();
    for (i, value) in params.iter().enumerate() {
        bind(&mut args, value)
            .map_err(|e| Failure::client(ErrorKind::Sql, format!("parameter ${}: {e}", i + 1)))?;
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

/// Null → NULL, booleans → INTEGER 0/1, integers → INTEGER (REAL above i64),
/// other numbers → REAL, strings → TEXT, arrays and objects → their JSON text.
fn bind(args: &mut SqliteArguments<'_>, value: &Value) -> Result<(), BoxDynError> {
    match value {
        Value::Null => args.add(Option::<i64>::None),
        Value::Bool(b) => args.add(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => args.add(i),
            None => args.add(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => args.add(s.clone()),
        other => args.add(other.to_string()),
    }
}

/// The value of column `name` of `row`, by the type of the value itself.
fn column(row: &SqliteRow, name: &str) -> Option<Value> {
    let raw = row.try_get_raw(name).ok()?;
    if raw.is_null() {
        return Some(Value::Null);
    }
    let ty = raw.type_info().name().to_owned();
    Some(match ty.as_str() {
        "INTEGER" | "BOOLEAN" => Value::from(row.try_get_unchecked::<i64, _>(name).ok()?),
        "REAL" | "NUMERIC" => {
            let f = row.try_get_unchecked::<f64, _>(name).ok()?;
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        "BLOB" => {
            let b = row.try_get_unchecked::<Vec<u8>, _>(name).ok()?;
            Value::String(String::from_utf8_lossy(&b).into_owned())
        }
        _ => Value::String(row.try_get_unchecked::<String, _>(name).ok()?),
    })
}

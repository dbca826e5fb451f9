//! The SQL parts of the native format as plain serde data: the `databases:` a
//! scenario talks to, the `setup:` and `teardown:` statements, `sql:` statement
//! steps and `transaction:` steps. Shapes and types only; [`super::build`]
//! checks what the values mean.

use std::fmt;

use loadline_doc::de::{Entries, Items, Lenient, Raw, Spanned};
use loadline_doc::value::JsonDoc;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A database that `sql:` and `transaction:` steps name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatabaseDoc {
    /// `postgres://user:password@host:port/db` (or `postgresql://`),
    /// `mysql://…`, `mariadb://…`, or `sqlite://path` (relative to the scenario
    /// file; created when missing). `{{ $env.NAME }}` and `vars` may be used,
    /// e.g. for the password.
    pub url: Spanned<String>,
    /// Shared mode: the number of connections in the pool (default 10). Unused
    /// per VU.
    pub pool: Option<Spanned<i64>>,
    /// `shared` (default): one pool for every VU, the time waiting for a free
    /// connection measured apart; `per_vu`: each VU opens its own connection and
    /// keeps it.
    pub mode: Option<Spanned<PoolModeDoc>>,
}

/// How the VUs get their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PoolModeDoc {
    /// One pool of `pool` connections shared by every VU.
    Shared,
    /// A connection per VU, opened on its first statement.
    PerVu,
}

/// A statement run once, before (`setup:`) or after (`teardown:`) the load.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetupDoc {
    /// The database to run it on (a name from `databases:`).
    pub sql: Spanned<String>,
    /// The SQL text, sent as it is (no parameters; `vars` and `$env` may be
    /// used). Several statements separated by `;` are allowed.
    pub query: Spanned<String>,
}

/// The isolation level of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IsolationDoc {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

/// An SQL statement: `sql: DB` (a name from `databases:`) with its `query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SqlStepDoc {
    /// Run the SQL statement `query` on this database (a name from `databases:`).
    pub sql: Spanned<String>,
    /// The metric group (default: `SQL ` and the query's first words).
    pub name: Option<Spanned<String>>,
    /// The statement (a template), with placeholders `$1`, `$2`, … for every
    /// database.
    #[schemars(with = "String")]
    pub query: Option<Spanned<QueryDoc>>,
    /// The values bound to `$1`, `$2`, … (templates, or plain numbers, booleans
    /// and null).
    #[schemars(with = "Option<Vec<ParamValue>>")]
    pub params: Option<Spanned<Vec<Spanned<JsonDoc>>>>,
    /// Checks on the statement's result.
    pub check: Option<CheckDoc>,
    /// Values to capture from the first row, by name.
    pub capture: Option<Entries<Lenient<Spanned<CaptureDoc>>>>,
    /// How long the statement may take, including the wait for a connection
    /// (default 30s).
    pub timeout: Option<Spanned<String>>,
}

/// A transaction: `transaction: DB` with the `sql:` statements to run in it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransactionDoc {
    /// Run `steps` (`sql:` steps) as one transaction on this database: BEGIN,
    /// the statements, COMMIT; ROLLBACK when one fails.
    pub transaction: Spanned<String>,
    /// The metric group of the whole transaction (default `transaction DB`).
    pub name: Option<Spanned<String>>,
    /// The isolation level (default: the database's).
    pub isolation: Option<Spanned<IsolationDoc>>,
    /// How long the transaction may take (default 30s).
    pub timeout: Option<Spanned<String>>,
    /// The `sql:` statements, in order.
    #[schemars(with = "Vec<SqlStepDoc>")]
    pub steps: Option<Items<Raw>>,
}

/// Checks on a statement's result.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SqlCheckDoc")]
pub struct CheckDoc {
    /// Exactly this many rows returned (or, for a statement returning none,
    /// affected).
    pub rows: Option<Spanned<i64>>,
    /// At least this many rows.
    pub rows_at_least: Option<Spanned<i64>>,
    /// At most this many rows.
    pub rows_at_most: Option<Spanned<i64>>,
    /// A column of the first row, whose value must be `equals`.
    pub column: Option<Spanned<String>>,
    /// The value `column` must have (any YAML value).
    pub equals: Option<Spanned<JsonDoc>>,
}

/// Where a captured value comes from: a column of the first row.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "SqlCaptureDoc")]
pub struct CaptureDoc {
    /// A column of the statement's first row (by the name the result set gives
    /// it).
    pub column: Option<Spanned<String>>,
}

/// A statement's `query:`: its SQL text; a mapping is read too, to say that it
/// does not belong here.
#[derive(Debug)]
pub enum QueryDoc {
    Sql(String),
    Mapping,
}

impl<'de> Deserialize<'de> for QueryDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = QueryDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("SQL text")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(QueryDoc::Sql(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(QueryDoc::Mapping)
            }
        }
        d.deserialize_any(V)
    }
}

/// A parameter of an `sql:` step as the schema describes it: a template, or a
/// plain value bound with its type.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum ParamValue {
    /// A template: one placeholder alone keeps its value's type
    /// (`"{{ $randint(1, 9) }}"` is a number); anything else is text.
    Text(String),
    Number(f64),
    Bool(bool),
    Null(()),
}

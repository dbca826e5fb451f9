//! The SQL parts of the native format: the `databases:` a scenario talks to, the
//! `setup:` and `teardown:` statements, and the values of a step's `query:` and
//! `params:` (an `sql:` step's `query` is SQL text, an HTTP step's a mapping).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use super::QueryValue;
use crate::de::{Entries, Spanned};

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

/// A step's `query:`: the SQL text of an `sql:` step, or the query parameters
/// of an HTTP request.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum QueryDoc {
    /// `sql:` steps: the statement (a template; placeholders `$1`, `$2`, … for
    /// every database).
    Sql(String),
    /// HTTP steps: query parameters (templates), appended to the URL.
    Params(#[schemars(with = "BTreeMap<String, QueryValue>")] Entries<Spanned<String>>),
}

impl<'de> Deserialize<'de> for QueryDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = QueryDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "SQL text (an `sql:` step) or a mapping of query parameters (an HTTP step)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(QueryDoc::Sql(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                Entries::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(QueryDoc::Params)
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

//! SQL statements and transactions against PostgreSQL, MySQL/MariaDB and SQLite,
//! over sqlx, with statements prepared once per connection.
//!
//! [`SqlProtocol`] holds a plan's databases (connect options and, in shared
//! mode, one pool each); [`SqlProtocol::build_step`] and
//! [`SqlProtocol::build_transaction`] turn specs into executors. Before the
//! load: [`SqlProtocol::connect_all`] checks every database (and fills the
//! pools), [`SqlProtocol::run_setup`] runs the `setup:` statements, and
//! [`SqlProtocol::prepare_all`] prepares every step's statement once, so a
//! syntax error or a missing table is reported before the load; after it,
//! [`SqlProtocol::close`] and `run_setup` for `teardown:`. Each VU's state holds
//! its own connections (per-VU mode) and reused buffers.
//!
//! # Metrics
//!
//! Per statement, one sample in the step's group: latency from sending the
//! statement to its last row (after a connection was got; on a connection's
//! first use of a statement it includes preparing it), failed with an error kind
//! when it failed, plus the rows returned (or, when none, affected) and the
//! checks. The time waiting for a pooled connection (per-VU: opening the VU's
//! connection) goes to the step's `wait_group`, so pool starvation shows there
//! and not as slow queries. A transaction gives one outcome sample: latency from
//! BEGIN to the end of COMMIT or ROLLBACK, failed when rolled back.
//!
//! Errors are classified by SQLSTATE (PostgreSQL), error number (MySQL/MariaDB)
//! or extended result code (SQLite), never by message text: deadlock (40P01,
//! 1213), serialization (40001), unique_violation (23505, 1062, SQLite
//! UNIQUE/PRIMARYKEY), lock_timeout (55P03, 1205, SQLITE_BUSY/LOCKED),
//! constraint (any other class 23), timeout (the step's timeout, a pool wait
//! past it, 57014, MySQL 3024 / MariaDB 1969), reset (connection lost or closed,
//! class 08), connect (cannot connect), and `sql` for anything else the database
//! reports. A failed statement ends the iteration; inside a transaction, the
//! transaction is rolled back first.
//!
//! # Placeholders
//!
//! Write `$1`, `$2`, … for every driver. PostgreSQL and SQLite take them as they
//! are; for MySQL/MariaDB they are turned into `?` at load time (outside string
//! literals, quoted identifiers and comments), so `$2` before `$1` and a repeated
//! `$1` work. A query may use `?` instead on MySQL and SQLite (bound in order),
//! but not both styles at once. The number of parameters must match the
//! placeholders: checked at load time, or per execution for a query whose text
//! is a template.
//!
//! # Parameter types
//!
//! A parameter's template is evaluated to a JSON value (a template that is
//! exactly one placeholder keeps its type: `{{ $randint(1, 9) }}` is a number,
//! `{{ id }}` is whatever was captured).
//!
//! - **PostgreSQL** converts no parameter type on its own, so the statement is
//!   prepared first and each value is encoded as the type the server inferred
//!   for its `$n`: integers and floats from numbers or numeric strings,
//!   `numeric` exactly from the number's or string's decimal text, `bool` from
//!   booleans (or `true`/`false`/`t`/`f`/`1`/`0`), text types (text, varchar,
//!   char, name, citext, enums) from anything (non-strings as JSON), `json` and
//!   `jsonb` from a string holding JSON text or any other JSON value, `uuid`
//!   from its text, `bytea` from text (`\x…` as hex), `date`/`time`/`timestamp`/
//!   `timestamptz` from ISO 8601 text (timestamps also from epoch milliseconds,
//!   as `{{ $timestamp() }}` gives; a `timestamptz` without an offset is UTC;
//!   not `24:00:00` nor leap seconds, which `time::Time` cannot hold).
//!   Other types: cast in the query (`$1::text::inet`). Where the server cannot
//!   infer a type (`SELECT $1`), cast it (`$1::int`).
//! - **MySQL/MariaDB** convert on their own: null binds as NULL, booleans as
//!   TINYINT 0/1, integers as BIGINT (UNSIGNED above i64), other numbers as
//!   DOUBLE, strings as text, arrays and objects as their JSON text.
//! - **SQLite**: null as NULL, booleans as INTEGER 0/1, integers as INTEGER,
//!   other numbers as REAL, strings as TEXT, arrays and objects as JSON text.
//!
//! A null value binds as NULL everywhere.
//!
//! # Captured values
//!
//! A capture takes a column of the first row, as JSON: integers and floats as
//! numbers, `numeric`/`DECIMAL` as a number (an integer when it has no
//! fraction, else the nearest double), booleans as booleans (MySQL `BOOLEAN` =
//! `TINYINT(1)` included), text as strings, JSON columns as their JSON value,
//! `uuid` as its text, `bytea` as `\x…` hex, dates and times as ISO 8601 text
//! (`timestamptz` and MySQL `TIMESTAMP` in UTC with a `Z`), NULL as null. A
//! missing column, no row at all, a PostgreSQL type not listed above (cast it:
//! `created::text AS created`), or a date or timestamp outside the `time`
//! crate's years (±9999; PostgreSQL's `infinity`) is a failed capture.
//!
//! # Connections
//!
//! [`PoolMode::Shared`]: one pool per database of at most `pool` connections,
//! all opened by [`SqlProtocol::connect_all`] and kept for the run, never
//! pinged before use. [`PoolMode::PerVu`]: each VU opens its own connection on
//! its first statement and keeps it. A connection that broke (lost, or a
//! statement timed out on it) is closed, never reused. A transaction abandoned
//! half-way (the run ended) closes its connection, which rolls it back.

mod build;
mod calendar;
mod conn;
pub mod doc;
mod errors;
mod exec;
mod mysql;
mod pg;
// Public only to the fuzz target (`fuzz/fuzz_targets/sql_placeholders.rs`),
// which turns on the `fuzzing` feature.
#[cfg(feature = "fuzzing")]
pub mod placeholders;
#[cfg(not(feature = "fuzzing"))]
mod placeholders;
mod spec;
mod sqlite;

use std::any::Any;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use std::sync::atomic::Ordering;

use loadline_core::metrics::GroupId;
use loadline_core::plan::Plan;
use loadline_core::protocol::{BoxFuture, HookResult, Protocol, StepExec};
use serde_json::Value;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

pub use build::Sql;
pub use errors::{ErrorKind, SqlMetrics, DECLARED_CLASSES, ROWS_COUNTER};
pub use spec::*;

use conn::{DbConn, DbOptions, DbPool, Failure};
use placeholders::Dialect;

/// How long [`SqlProtocol::connect_all`] waits for one database.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one setup or teardown statement may run.
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);

/// What can go wrong before the load: a database that cannot be used, a step
/// that cannot run. Each names the database; URLs are shown with their password
/// replaced by `***`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    #[error("database `{database}`: `{url}` is not a usable database URL: {reason}")]
    InvalidUrl {
        database: String,
        url: String,
        reason: String,
    },
    #[error("database `{database}`: the pool needs at least one connection")]
    EmptyPool { database: String },
    #[error("there is no database number {index} (the plan has {count})")]
    UnknownDatabase { index: usize, count: usize },
    #[error("database `{database}` at {url} cannot be reached: {reason}")]
    Unreachable {
        database: String,
        url: String,
        reason: String,
    },
    #[error("database `{database}`, setup statement {}: {reason}", .index + 1)]
    Setup {
        database: String,
        /// The statement's index in the list given.
        index: usize,
        reason: String,
    },
    #[error("database `{database}`: {reason}")]
    Query { database: String, reason: String },
    #[error(
        "database `{database}`: the statement of metric group {group} does not prepare: {reason}"
    )]
    Prepare {
        database: String,
        /// The statement's metric group (its step).
        group: GroupId,
        reason: String,
    },
}

/// Replaces the password of a database URL with `***`
/// (`postgres://user:***@host/db`), and the value of a `password=` query
/// parameter likewise.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    let query_at = rest.find(['?', '#']).unwrap_or(rest.len());
    let mut out = String::with_capacity(url.len());
    out.push_str(&url[..rest_start]);
    // The userinfo ends at the last `@` before the query (a password may hold
    // an unencoded `/`).
    let body = match rest[..query_at].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.find(':') {
                Some(colon) => {
                    out.push_str(&userinfo[..colon]);
                    out.push_str(":***");
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            &rest[at + 1..]
        }
        None => rest,
    };
    let q = body.find('?').unwrap_or(body.len());
    out.push_str(&body[..q]);
    if q < body.len() {
        out.push('?');
        let pairs: Vec<String> = body[q + 1..]
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, _)) if k.to_ascii_lowercase().contains("password") => {
                    format!("{k}=***")
                }
                _ => pair.to_owned(),
            })
            .collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

/// The password written in a URL (as written and percent-decoded), to keep it
/// out of error messages.
fn url_passwords(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    if let Some(p) = parsed.password() {
        found.push(p.to_owned());
        found.push(percent_decode(p));
    }
    for (k, v) in parsed.query_pairs() {
        if k.to_ascii_lowercase().contains("password") {
            found.push(v.into_owned());
        }
    }
    found.dedup();
    found
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One database of the plan, as the steps use it.
pub(crate) struct Database {
    pub(crate) name: String,
    /// Its index in the protocol's list (and in each VU's connection slots).
    pub(crate) index: usize,
    pub(crate) redacted: String,
    /// The URL's password, to scrub from messages.
    passwords: Vec<String>,
    pub(crate) dialect: Dialect,
    pub(crate) options: DbOptions,
    size: u32,
    mode: PoolMode,
    pool: OnceLock<DbPool>,
    /// Where its figures go in the plan's metrics.
    pub(crate) metrics: SqlMetrics,
}

impl fmt::Debug for Database {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.name)
            .field("url", &self.redacted)
            .field("dialect", &self.dialect)
            .field("pool", &self.size)
            .field("mode", &self.mode)
            .finish()
    }
}

impl Database {
    fn new(index: usize, spec: &DatabaseSpec) -> Result<Self, SqlError> {
        let redacted = redact_url(&spec.url);
        let invalid = |reason: String| SqlError::InvalidUrl {
            database: spec.name.clone(),
            url: redacted.clone(),
            reason,
        };
        if spec.pool == 0 && spec.mode == PoolMode::Shared {
            return Err(SqlError::EmptyPool {
                database: spec.name.clone(),
            });
        }
        let scheme = spec
            .url
            .split_once(':')
            .map(|(s, _)| s.to_ascii_lowercase())
            .unwrap_or_default();
        let passwords = url_passwords(&spec.url);
        let scrub = |e: sqlx::Error| scrub_text(&e.to_string(), &passwords);
        let (dialect, options) = match scheme.as_str() {
            "postgres" | "postgresql" => {
                let o = PgConnectOptions::from_str(&spec.url).map_err(|e| invalid(scrub(e)))?;
                (
                    Dialect::Postgres,
                    DbOptions::Pg(o.disable_statement_logging()),
                )
            }
            "mysql" | "mariadb" => {
                let url = format!("mysql{}", &spec.url[scheme.len()..]);
                let o = MySqlConnectOptions::from_str(&url).map_err(|e| invalid(scrub(e)))?;
                // Keep `||` meaning what the server's own mode says.
                let o = o.pipes_as_concat(false).disable_statement_logging();
                (Dialect::MySql, DbOptions::My(o))
            }
            "sqlite" => {
                let o = SqliteConnectOptions::from_str(&spec.url).map_err(|e| invalid(scrub(e)))?;
                let o = o.create_if_missing(true).disable_statement_logging();
                (Dialect::Sqlite, DbOptions::Lite(o))
            }
            _ => {
                return Err(invalid(
                    "expected postgres://, mysql://, mariadb:// or sqlite://".into(),
                ))
            }
        };
        Ok(Self {
            name: spec.name.clone(),
            index,
            redacted,
            passwords,
            dialect,
            options,
            size: spec.pool,
            mode: spec.mode,
            pool: OnceLock::new(),
            metrics: SqlMetrics::default(),
        })
    }

    /// The shared pool (created on first use), or `None` in per-VU mode.
    pub(crate) fn pool(&self) -> Option<&DbPool> {
        match self.mode {
            PoolMode::Shared => Some(self.pool.get_or_init(|| self.options.pool(self.size))),
            PoolMode::PerVu => None,
        }
    }

    /// `text` without the database's password.
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub_text(text, &self.passwords)
    }

    fn unreachable(&self, reason: &str) -> SqlError {
        SqlError::Unreachable {
            database: self.name.clone(),
            url: self.redacted.clone(),
            reason: self.scrub(reason),
        }
    }

    /// A SQLite database file is created when missing, and so are the folders
    /// it is to be in.
    fn create_sqlite_folder(&self) -> Result<(), SqlError> {
        let DbOptions::Lite(options) = &self.options else {
            return Ok(());
        };
        let file = options.get_filename();
        let text = file.to_string_lossy();
        // In-memory databases have no file (sqlx names them `file:…`).
        if text == ":memory:" || text.starts_with("file:") {
            return Ok(());
        }
        match file.parent() {
            Some(folder) if !folder.as_os_str().is_empty() && !folder.exists() => {
                std::fs::create_dir_all(folder).map_err(|e| {
                    self.unreachable(&format!(
                        "cannot create the folder {} for the database file: {e}",
                        folder.display()
                    ))
                })?;
                tracing::debug!(database = %self.name, folder = %folder.display(), "created the SQLite database's folder");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Opens one connection (a refusal or bad credentials show plainly), then,
    /// in shared mode, fills the pool.
    async fn check(&self) -> Result<(), SqlError> {
        self.create_sqlite_folder()?;
        tracing::debug!(database = %self.name, url = %self.redacted, mode = ?self.mode, "connecting to the database");
        let work = async {
            let conn = self
                .options
                .connect()
                .await
                .map_err(|e| self.unreachable(&e.to_string()))?;
            conn.close().await;
            tracing::debug!(database = %self.name, "connected to the database");
            if let Some(pool) = self.pool() {
                let opening = (0..self.size).map(|_| pool.acquire());
                let opened = futures_util::future::join_all(opening).await;
                let ok = opened.iter().filter(|c| c.is_ok()).count();
                if let Some(Err(e)) = opened.into_iter().find(Result::is_err) {
                    return Err(self.unreachable(&format!(
                        "opened only {ok} of the pool's {} connections: {e}",
                        self.size
                    )));
                }
                tracing::debug!(database = %self.name, connections = ok, "the database's pool is filled");
            }
            Ok(())
        };
        tokio::time::timeout(CONNECT_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| {
                Err(self.unreachable(&format!("no connection within {CONNECT_TIMEOUT:?}")))
            })
    }
}

fn scrub_text(text: &str, passwords: &[String]) -> String {
    let mut out = text.to_owned();
    // A very short password would blot out ordinary words.
    for p in passwords.iter().filter(|p| p.len() >= 4) {
        out = out.replace(p.as_str(), "***");
    }
    out
}

/// The SQL protocol of one plan: its databases, and the statements run once
/// around the load.
pub struct SqlProtocol {
    databases: Vec<Arc<Database>>,
    /// `setup:`, run by [`Protocol::prepare`] before the load, in order.
    setup: Vec<SetupStatement>,
    /// `teardown:`, run by [`Protocol::finish`] after it, in order.
    teardown: Vec<SetupStatement>,
    /// Whether [`Protocol::prepare`] reached every database (teardown runs only then).
    connected: std::sync::atomic::AtomicBool,
    /// The statements of the steps built so far whose text does not vary:
    /// database index, metric group, SQL as sent.
    statements: Mutex<Vec<(usize, GroupId, String)>>,
}

impl fmt::Debug for SqlProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlProtocol")
            .field("databases", &self.databases)
            .field("setup", &self.setup)
            .field("teardown", &self.teardown)
            .finish()
    }
}

impl SqlProtocol {
    /// Reads the databases' URLs (no connection is opened yet). A `sqlite://`
    /// file is created when first connected to, if missing. Its figures go to the
    /// classes and counter of [`SqlMetrics::default`] (a plan whose error classes
    /// are the generic ones, then [`DECLARED_CLASSES`], and whose first counter is
    /// [`ROWS_COUNTER`]; a plan built from a scenario gets the layout declared to
    /// it through [`SqlProtocol::with`]); it has no setup or teardown.
    pub fn new(databases: Vec<DatabaseSpec>) -> Result<Arc<Self>, SqlError> {
        Self::with(databases, Vec::new(), Vec::new(), SqlMetrics::default())
    }

    /// [`SqlProtocol::new`] with the statements run around the load and the
    /// plan's metrics layout.
    pub fn with(
        databases: Vec<DatabaseSpec>,
        setup: Vec<SetupStatement>,
        teardown: Vec<SetupStatement>,
        metrics: SqlMetrics,
    ) -> Result<Arc<Self>, SqlError> {
        let databases = databases
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                Database::new(i, spec).map(|mut db| {
                    db.metrics = metrics;
                    Arc::new(db)
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Self {
            databases,
            setup,
            teardown,
            connected: std::sync::atomic::AtomicBool::new(false),
            statements: Mutex::new(Vec::new()),
        }))
    }

    /// The databases' names, in order.
    pub fn database_names(&self) -> Vec<String> {
        self.databases.iter().map(|d| d.name.clone()).collect()
    }

    /// The index of the database called `name`.
    pub fn database_index(&self, name: &str) -> Option<usize> {
        self.databases.iter().position(|d| d.name == name)
    }

    fn database(&self, index: usize) -> Result<&Arc<Database>, SqlError> {
        self.databases.get(index).ok_or(SqlError::UnknownDatabase {
            index,
            count: self.databases.len(),
        })
    }

    /// Checks, before the load, that every database can be reached (and logged
    /// into), and opens the shared pools' connections. The first database that
    /// fails is named in the error, with its URL redacted.
    pub async fn connect_all(&self) -> Result<(), SqlError> {
        let checks = self.databases.iter().map(|db| db.check());
        futures_util::future::join_all(checks)
            .await
            .into_iter()
            .collect()
    }

    /// Runs plain statements once, in order, each on its database (one
    /// connection per database, closed at the end), for `setup:` and
    /// `teardown:`. Stops at the first failure.
    pub async fn run_setup(&self, statements: &[SetupStatement]) -> Result<(), SqlError> {
        let mut conns: Vec<Option<DbConn>> = self.databases.iter().map(|_| None).collect();
        let result = self.setup_on(&mut conns, statements).await;
        for conn in conns.into_iter().flatten() {
            conn.close().await;
        }
        match &result {
            Ok(()) => tracing::debug!(statements = statements.len(), "statements run"),
            Err(e) => tracing::debug!(error = %e, "a statement failed"),
        }
        result
    }

    async fn setup_on(
        &self,
        conns: &mut [Option<DbConn>],
        statements: &[SetupStatement],
    ) -> Result<(), SqlError> {
        for (index, st) in statements.iter().enumerate() {
            let db = self.database(st.database)?;
            tracing::debug!(database = %db.name, index, "running a statement");
            let slot = &mut conns[st.database];
            let conn = match slot {
                Some(conn) => conn,
                None => {
                    let opened = tokio::time::timeout(CONNECT_TIMEOUT, db.options.connect())
                        .await
                        .map_err(|_| {
                            db.unreachable(&format!("no connection within {CONNECT_TIMEOUT:?}"))
                        })?
                        .map_err(|e| db.unreachable(&e.to_string()))?;
                    slot.insert(opened)
                }
            };
            let ran =
                tokio::time::timeout(SETUP_TIMEOUT, conn::run_plain(conn.as_mut(), &st.query))
                    .await
                    .unwrap_or_else(|_| Err(Failure::timeout("the statement", SETUP_TIMEOUT)));
            if let Err(f) = ran {
                return Err(SqlError::Setup {
                    database: db.name.clone(),
                    index,
                    reason: db.scrub(&f.message),
                });
            }
        }
        Ok(())
    }

    /// Prepares, without running them, the statements of every step built so
    /// far whose SQL text does not vary, on one connection per database: a
    /// syntax error, a missing table or a parameter whose type PostgreSQL cannot
    /// infer shows before the load. Run it after `setup:`. Returns every
    /// statement that failed.
    pub async fn prepare_all(&self) -> Result<(), Vec<SqlError>> {
        let statements = self
            .statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut errors = Vec::new();
        for db in &self.databases {
            let mine: Vec<_> = statements.iter().filter(|s| s.0 == db.index).collect();
            if mine.is_empty() {
                continue;
            }
            tracing::debug!(database = %db.name, statements = mine.len(), "preparing the steps' statements");
            let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, db.options.connect()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    errors.push(db.unreachable(&e.to_string()));
                    continue;
                }
                Err(_) => {
                    errors
                        .push(db.unreachable(&format!("no connection within {CONNECT_TIMEOUT:?}")));
                    continue;
                }
            };
            for (_, group, sql) in mine {
                let prepared =
                    tokio::time::timeout(CONNECT_TIMEOUT, conn::prepare(conn.as_mut(), sql))
                        .await
                        .unwrap_or_else(|_| Err(Failure::timeout("preparing", CONNECT_TIMEOUT)));
                if let Err(f) = prepared {
                    errors.push(SqlError::Prepare {
                        database: db.name.clone(),
                        group: *group,
                        reason: db.scrub(&f.message),
                    });
                }
            }
            conn.close().await;
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Closes the shared pools, at the end of the run (teardown statements use
    /// connections of their own).
    pub async fn close(&self) {
        for db in &self.databases {
            if let Some(pool) = db.pool.get() {
                pool.close().await;
                tracing::debug!(database = %db.name, "the database's pool is closed");
            }
        }
    }

    fn remember(&self, db: usize, step: &exec::SqlStep) {
        if let Some((group, sql)) = step.fixed_sql() {
            self.statements
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((db, group, sql.to_owned()));
        }
    }

    /// Builds the executor of one statement step. Fails when the database does
    /// not exist, or when the query's placeholders do not match its parameters
    /// (for a query whose text is not a template).
    pub fn build_step(&self, spec: SqlStepSpec) -> Result<Arc<dyn StepExec>, SqlError> {
        let db = self.database(spec.database)?.clone();
        let step = exec::SqlStep::new(spec, db.clone())?;
        self.remember(db.index, &step);
        Ok(Arc::new(step))
    }

    /// Builds the executor of a transaction step; its statements run on the
    /// transaction's database and connection.
    pub fn build_transaction(&self, spec: TransactionSpec) -> Result<Arc<dyn StepExec>, SqlError> {
        let db = self.database(spec.database)?.clone();
        let steps: Vec<exec::SqlStep> = spec
            .steps
            .iter()
            .map(|s| exec::SqlStep::new(s.clone(), db.clone()))
            .collect::<Result<_, _>>()?;
        for step in &steps {
            self.remember(db.index, step);
        }
        Ok(Arc::new(exec::TransactionStep::new(spec, db, steps)))
    }
}

impl Protocol for SqlProtocol {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn new_vu_state(&self) -> Box<dyn Any + Send> {
        Box::new(VuState {
            conns: self.databases.iter().map(|_| None).collect(),
            scratch: Scratch::default(),
        })
    }

    /// Connects every database (filling the shared pools), runs `setup:`, then
    /// prepares every statement: an unreachable database, wrong credentials or a
    /// syntax error stop the run before any load.
    fn prepare<'a>(&'a self, plan: &'a Plan) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            tracing::debug!(databases = self.databases.len(), "sql: preparing");
            if let Err(e) = self.connect_all().await {
                return Err(vec![
                    e.to_string(),
                    "a database is not available: nothing was run".into(),
                ]);
            }
            self.connected.store(true, Ordering::Relaxed);
            tracing::debug!(statements = self.setup.len(), "sql: setup");
            if let Err(e) = self.run_setup(&self.setup).await {
                return Err(vec![e.to_string(), NOT_READY.into()]);
            }
            if let Err(errors) = self.prepare_all().await {
                let mut lines: Vec<String> = errors.iter().map(|e| explain(e, plan)).collect();
                lines.push(NOT_READY.into());
                return Err(lines);
            }
            tracing::debug!("sql: ready");
            Ok(vec![self.ready_line(plan)])
        })
    }

    /// Runs `teardown:` (when the databases were reached) and closes the pools.
    fn finish(&self) -> BoxFuture<'_, HookResult> {
        Box::pin(async move {
            if !self.connected.load(Ordering::Relaxed) {
                tracing::debug!("sql: no teardown, the databases were not reached");
                return Ok(Vec::new());
            }
            tracing::debug!(statements = self.teardown.len(), "sql: teardown");
            let result = self.run_setup(&self.teardown).await;
            self.close().await;
            match result {
                Ok(()) => Ok(Vec::new()),
                Err(e) => Err(vec![format!("teardown: {e}")]),
            }
        })
    }

    /// Names only: validating never connects, and a URL may hold a password.
    fn describe(&self) -> Vec<String> {
        vec![format!(
            "databases ({}): {}; setup {} statement(s), teardown {} (not connected: `run` connects first)",
            self.databases.len(),
            self.database_names().join(", "),
            self.setup.len(),
            self.teardown.len()
        )]
    }
}

const NOT_READY: &str = "the databases are not ready for the load: nothing was run";

/// An error before the load, with a statement's metric group named as its step.
fn explain(e: &SqlError, plan: &Plan) -> String {
    match e {
        SqlError::Prepare {
            database,
            group,
            reason,
        } => match plan.groups.get(*group) {
            Some(g) => format!(
                "step `{}` (database `{database}`): the statement does not prepare: {reason}",
                g.name
            ),
            None => e.to_string(),
        },
        other => other.to_string(),
    }
}

impl SqlProtocol {
    /// `databases ready: main, replica; setup ran 3 statement(s); 2 statement step(s) checked`.
    fn ready_line(&self, plan: &Plan) -> String {
        let statements = plan
            .groups
            .iter()
            .filter(|g| g.kind == build::SQL_KIND)
            .count();
        let mut line = format!("databases ready: {}", self.database_names().join(", "));
        if !self.setup.is_empty() {
            line.push_str(&format!("; setup ran {} statement(s)", self.setup.len()));
        }
        if statements > 0 {
            line.push_str(&format!("; {statements} statement step(s) checked"));
        }
        line
    }
}

/// One VU's SQL state: its own connections (per-VU mode), one slot per
/// database, and buffers reused between statements (opaque).
pub struct VuState {
    conns: Vec<Option<DbConn>>,
    scratch: Scratch,
}

/// Buffers reused between statements.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The rendered SQL text of a templated query.
    text: String,
    /// MySQL: `text` with `$n` turned into `?`.
    rewritten: String,
    /// MySQL: the parameter of each `?` of `rewritten`.
    order: Vec<usize>,
    /// The rendered parameters.
    params: Vec<Value>,
}

impl Drop for VuState {
    fn drop(&mut self) {
        // Say goodbye to the server rather than vanish, when a runtime is there
        // to do it.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            for conn in self.conns.drain(..).flatten() {
                handle.spawn(conn.close());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://user:secret@host:5432/db"),
            "postgres://user:***@host:5432/db"
        );
        assert_eq!(
            redact_url("mysql://root@127.0.0.1/test"),
            "mysql://root@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("postgres://u:p/w@d@h/db?sslmode=disable&password=x"),
            "postgres://u:***@h/db?sslmode=disable&password=***"
        );
        assert_eq!(redact_url("sqlite://data/x.db"), "sqlite://data/x.db");
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
    }

    #[test]
    fn passwords_are_found_for_scrubbing() {
        assert_eq!(
            url_passwords("postgres://u:s%40cret@h/db"),
            vec!["s%40cret".to_string(), "s@cret".to_string()]
        );
        assert_eq!(
            url_passwords("postgres://u@h/db?password=hunter22"),
            vec!["hunter22".to_string()]
        );
        assert!(url_passwords("mysql://root@h/db").is_empty());
        assert_eq!(
            scrub_text("bad s@cret!", &url_passwords("postgres://u:s%40cret@h/db")),
            "bad ***!"
        );
    }

    #[test]
    fn bad_urls_and_pools_are_refused_with_the_database_named() {
        let spec = |url: &str, pool| DatabaseSpec {
            name: "main".into(),
            url: url.into(),
            pool,
            mode: PoolMode::Shared,
        };
        let err = SqlProtocol::new(vec![spec("redis://u:secret@h/0", 1)]).expect_err("not SQL");
        let text = err.to_string();
        assert!(
            text.contains("`main`") && text.contains("u:***@h"),
            "{text}"
        );
        assert!(!text.contains("secret"), "{text}");
        let err = SqlProtocol::new(vec![spec("postgres://h/db", 0)]).expect_err("no pool");
        assert_eq!(
            err,
            SqlError::EmptyPool {
                database: "main".into()
            }
        );
        let ok = SqlProtocol::new(vec![spec("mariadb://root@127.0.0.1:3306/test", 2)]);
        let ok = ok.expect("a MariaDB URL is a MySQL one");
        assert_eq!(ok.database_index("main"), Some(0));
        assert_eq!(ok.databases[0].dialect, Dialect::MySql);
        let debug = format!("{:?}", spec("postgres://u:secret@h/db", 1));
        assert!(!debug.contains("secret"), "{debug}");
    }
}

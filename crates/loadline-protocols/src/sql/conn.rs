//! Connections of the three drivers behind one face: connect options, shared
//! pools, a VU's own connection, the lease a statement runs on, and what a
//! failure was (its [`ErrorKind`], classified by SQLSTATE or error number, never
//! by message text).

use std::time::{Duration, Instant};

use super::errors::ErrorKind;
use futures_util::{FutureExt, TryFutureExt};
use loadline_core::protocol::BoxFuture;
use serde_json::Value;
use sqlx::error::DatabaseError;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError, MySqlPool};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgDatabaseError, PgPool};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteError, SqlitePool};
use sqlx::{ConnectOptions, Connection, Executor, MySql, Postgres, Sqlite};

use super::{mysql, pg, sqlite};

/// What one statement gave back.
#[derive(Debug, Default)]
pub(crate) struct Ran {
    /// Rows returned.
    pub returned: u64,
    /// Rows affected, as the server reports them.
    pub affected: u64,
    /// The asked-for columns of the first row (`None` per column when missing
    /// or unreadable); `None` when nothing was asked or no row came.
    pub first: Option<Vec<Option<Value>>>,
}

impl Ran {
    /// The row count of the statement: rows returned, or affected when it
    /// returned none.
    pub fn rows(&self) -> u64 {
        if self.returned > 0 {
            self.returned
        } else {
            self.affected
        }
    }
}

/// Why a statement (or getting its connection) failed.
#[derive(Debug)]
pub(crate) struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    /// The connection can no longer be trusted and must not be reused.
    pub broken: bool,
}

impl Failure {
    /// A failure found before anything was sent.
    pub fn client(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            broken: false,
        }
    }

    pub fn timeout(what: &str, after: Duration) -> Self {
        Self {
            kind: ErrorKind::Timeout,
            message: format!("{what} took longer than {after:?}"),
            broken: true,
        }
    }

    /// A failure while connecting: refusals are `connect` errors.
    pub fn connecting(e: sqlx::Error) -> Self {
        let mut f = Self::from_sqlx(e);
        if f.kind == ErrorKind::Reset {
            f.kind = ErrorKind::Connect;
        }
        f
    }

    pub fn from_sqlx(e: sqlx::Error) -> Self {
        let (kind, broken) = match &e {
            sqlx::Error::Database(db) => {
                let kind = database_error_kind(db.as_ref());
                (kind, kind == ErrorKind::Reset)
            }
            sqlx::Error::Io(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
                (ErrorKind::Reset, true)
            }
            sqlx::Error::Tls(_) => (ErrorKind::Tls, true),
            sqlx::Error::Protocol(_) => (ErrorKind::Protocol, true),
            sqlx::Error::PoolTimedOut => (ErrorKind::Timeout, false),
            sqlx::Error::Encode(_) => (ErrorKind::Sql, false),
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::RowNotFound
            | sqlx::Error::Configuration(_) => (ErrorKind::Other, false),
            _ => (ErrorKind::Other, true),
        };
        Self {
            kind,
            message: e.to_string(),
            broken,
        }
    }
}

/// The kind of an error the database reported.
fn database_error_kind(db: &dyn DatabaseError) -> ErrorKind {
    if let Some(e) = db.try_downcast_ref::<PgDatabaseError>() {
        return sqlstate_kind(e.code());
    }
    if let Some(e) = db.try_downcast_ref::<MySqlDatabaseError>() {
        return mysql_kind(e.number(), e.code());
    }
    if let Some(e) = db.try_downcast_ref::<SqliteError>() {
        return e
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .map_or(ErrorKind::Sql, sqlite_kind);
    }
    db.code().map_or(ErrorKind::Sql, |c| sqlstate_kind(&c))
}

/// By SQLSTATE (PostgreSQL's codes; the classes are the standard's).
pub(crate) fn sqlstate_kind(code: &str) -> ErrorKind {
    match code {
        "40P01" => ErrorKind::Deadlock,
        "40001" => ErrorKind::Serialization,
        "23505" => ErrorKind::UniqueViolation,
        "55P03" => ErrorKind::LockTimeout,
        // query_canceled: statement_timeout (or a cancel request).
        "57014" => ErrorKind::Timeout,
        // admin_shutdown, crash_shutdown, cannot_connect_now
        "57P01" | "57P02" | "57P03" => ErrorKind::Reset,
        c if c.starts_with("08") => ErrorKind::Reset,
        c if c.starts_with("23") => ErrorKind::Constraint,
        _ => ErrorKind::Sql,
    }
}

/// By MySQL / MariaDB error number, then SQLSTATE class.
pub(crate) fn mysql_kind(number: u16, sqlstate: Option<&str>) -> ErrorKind {
    match number {
        1213 => ErrorKind::Deadlock,
        1205 => ErrorKind::LockTimeout,
        // ER_DUP_ENTRY, ER_DUP_ENTRY_WITH_KEY_NAME
        1062 | 1586 => ErrorKind::UniqueViolation,
        // ER_QUERY_TIMEOUT (MySQL), ER_STATEMENT_TIMEOUT (MariaDB)
        3024 | 1969 => ErrorKind::Timeout,
        // ER_SERVER_SHUTDOWN, ER_CONNECTION_KILLED
        1053 | 1927 => ErrorKind::Reset,
        _ => match sqlstate {
            Some("40001") => ErrorKind::Serialization,
            Some(s) if s.starts_with("23") => ErrorKind::Constraint,
            Some(s) if s.starts_with("08") => ErrorKind::Reset,
            _ => ErrorKind::Sql,
        },
    }
}

/// By SQLite's extended result code.
pub(crate) fn sqlite_kind(code: i32) -> ErrorKind {
    match code {
        // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
        2067 | 1555 => ErrorKind::UniqueViolation,
        c => match c & 0xff {
            19 => ErrorKind::Constraint,
            // SQLITE_BUSY, SQLITE_LOCKED: the busy timeout passed.
            5 | 6 => ErrorKind::LockTimeout,
            // SQLITE_INTERRUPT
            9 => ErrorKind::Timeout,
            _ => ErrorKind::Sql,
        },
    }
}

/// How to reach one database.
#[derive(Clone)]
pub(crate) enum DbOptions {
    Pg(PgConnectOptions),
    My(MySqlConnectOptions),
    Lite(SqliteConnectOptions),
}

impl DbOptions {
    pub async fn connect(&self) -> Result<DbConn, sqlx::Error> {
        Ok(match self {
            DbOptions::Pg(o) => DbConn::Pg(o.connect().await?),
            DbOptions::My(o) => DbConn::My(o.connect().await?),
            DbOptions::Lite(o) => DbConn::Lite(o.connect().await?),
        })
    }

    /// A pool of at most `size` connections, opened as they are needed. Its own
    /// acquire timeout is long: each step bounds its wait with its own timeout.
    /// Connections are not tested before each use (that would add a round trip
    /// to every statement) and are kept for the run.
    pub fn pool(&self, size: u32) -> DbPool {
        fn options<DB: sqlx::Database>(size: u32) -> sqlx::pool::PoolOptions<DB> {
            sqlx::pool::PoolOptions::new()
                .max_connections(size)
                .min_connections(0)
                .acquire_timeout(Duration::from_secs(3600))
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
        }
        match self {
            DbOptions::Pg(o) => DbPool::Pg(options::<Postgres>(size).connect_lazy_with(o.clone())),
            DbOptions::My(o) => DbPool::My(options::<MySql>(size).connect_lazy_with(o.clone())),
            DbOptions::Lite(o) => {
                DbPool::Lite(options::<Sqlite>(size).connect_lazy_with(o.clone()))
            }
        }
    }
}

/// A shared pool.
#[derive(Debug, Clone)]
pub(crate) enum DbPool {
    Pg(PgPool),
    My(MySqlPool),
    Lite(SqlitePool),
}

impl DbPool {
    pub async fn acquire(&self) -> Result<Pooled, sqlx::Error> {
        Ok(match self {
            DbPool::Pg(p) => Pooled::Pg(p.acquire().await?),
            DbPool::My(p) => Pooled::My(p.acquire().await?),
            DbPool::Lite(p) => Pooled::Lite(p.acquire().await?),
        })
    }

    pub async fn close(&self) {
        match self {
            DbPool::Pg(p) => p.close().await,
            DbPool::My(p) => p.close().await,
            DbPool::Lite(p) => p.close().await,
        }
    }
}

/// A connection of its own (a VU's, or one for setup).
#[derive(Debug)]
pub(crate) enum DbConn {
    Pg(PgConnection),
    My(MySqlConnection),
    Lite(SqliteConnection),
}

impl DbConn {
    pub fn as_mut(&mut self) -> ConnMut<'_> {
        match self {
            DbConn::Pg(c) => ConnMut::Pg(c),
            DbConn::My(c) => ConnMut::My(c),
            DbConn::Lite(c) => ConnMut::Lite(c),
        }
    }

    /// Says goodbye to the server (errors do not matter any more).
    pub async fn close(self) {
        let _ = match self {
            DbConn::Pg(c) => c.close().await,
            DbConn::My(c) => c.close().await,
            DbConn::Lite(c) => c.close().await,
        };
    }
}

/// A connection borrowed from a pool.
#[derive(Debug)]
pub(crate) enum Pooled {
    Pg(PoolConnection<Postgres>),
    My(PoolConnection<MySql>),
    Lite(PoolConnection<Sqlite>),
}

/// A connection to run statements on, whichever driver.
pub(crate) enum ConnMut<'a> {
    Pg(&'a mut PgConnection),
    My(&'a mut MySqlConnection),
    Lite(&'a mut SqliteConnection),
}

/// The connection one statement or transaction runs on.
pub(crate) struct Lease<'a> {
    held: Held<'a>,
    discarded: bool,
}

enum Held<'a> {
    Pooled(Pooled),
    /// The VU's own connection, in its slot of the VU state.
    Own(&'a mut Option<DbConn>),
}

impl Lease<'_> {
    /// The connection, unless it was discarded.
    pub fn conn(&mut self) -> Option<ConnMut<'_>> {
        if self.discarded {
            return None;
        }
        match &mut self.held {
            Held::Pooled(Pooled::Pg(c)) => Some(ConnMut::Pg(c)),
            Held::Pooled(Pooled::My(c)) => Some(ConnMut::My(c)),
            Held::Pooled(Pooled::Lite(c)) => Some(ConnMut::Lite(c)),
            Held::Own(slot) => slot.as_mut().map(DbConn::as_mut),
        }
    }

    pub fn is_discarded(&self) -> bool {
        self.discarded
    }

    /// Makes sure the connection is never used again: a pooled one is closed
    /// instead of going back to the pool, a VU's own is dropped (the next
    /// statement opens a new one).
    pub fn discard(&mut self) {
        self.discarded = true;
        match &mut self.held {
            Held::Pooled(Pooled::Pg(c)) => c.close_on_drop(),
            Held::Pooled(Pooled::My(c)) => c.close_on_drop(),
            Held::Pooled(Pooled::Lite(c)) => c.close_on_drop(),
            Held::Own(slot) => drop(slot.take()),
        }
    }
}

/// Gets a connection: from the shared pool, or the VU's own (opened on first
/// use). Also returns how long that took, when it involved waiting for the pool
/// or opening a connection.
pub(crate) async fn acquire<'a>(
    pool: Option<&DbPool>,
    options: &DbOptions,
    slot: &'a mut Option<DbConn>,
    timeout: Duration,
) -> (Result<Lease<'a>, Failure>, Option<Duration>) {
    let start = Instant::now();
    let lease = |held| Lease {
        held,
        discarded: false,
    };
    match pool {
        Some(pool) => {
            let got = match tokio::time::timeout(timeout, pool.acquire()).await {
                Ok(Ok(c)) => Ok(lease(Held::Pooled(c))),
                Ok(Err(e)) => Err(Failure::connecting(e)),
                Err(_) => Err(Failure::timeout("waiting for a pooled connection", timeout)),
            };
            (got, Some(start.elapsed()))
        }
        None if slot.is_some() => (Ok(lease(Held::Own(slot))), None),
        None => {
            let got = match tokio::time::timeout(timeout, options.connect()).await {
                Ok(Ok(c)) => {
                    *slot = Some(c);
                    Ok(lease(Held::Own(slot)))
                }
                Ok(Err(e)) => Err(Failure::connecting(e)),
                Err(_) => Err(Failure::timeout("connecting", timeout)),
            };
            (got, Some(start.elapsed()))
        }
    }
}

/// Runs one statement with parameters. (Boxed here, at one concrete lifetime,
/// so the compiler can see the driver futures are `Send`.)
pub(crate) fn run<'a>(
    conn: ConnMut<'a>,
    sql: &'a str,
    order: &'a [usize],
    params: &'a [Value],
    needs: &'a [String],
) -> BoxFuture<'a, Result<Ran, Failure>> {
    match conn {
        ConnMut::Pg(c) => Box::pin(pg::run(c, sql, params, needs)),
        ConnMut::My(c) => Box::pin(mysql::run(c, sql, order, params, needs)),
        ConnMut::Lite(c) => Box::pin(sqlite::run(c, sql, params, needs)),
    }
}

/// Runs plain SQL without parameters or preparation (BEGIN, COMMIT, setup
/// statements; several statements separated by `;` are allowed).
pub(crate) fn run_plain<'a>(conn: ConnMut<'a>, sql: &'a str) -> BoxFuture<'a, Result<(), Failure>> {
    // A bare `&str` is neither prepared nor cached: PostgreSQL's simple query
    // protocol, MySQL's text protocol.
    let done = match conn {
        ConnMut::Pg(c) => c.execute(sql).map_ok(drop).boxed(),
        ConnMut::My(c) => c.execute(sql).map_ok(drop).boxed(),
        ConnMut::Lite(c) => c.execute(sql).map_ok(drop).boxed(),
    };
    Box::pin(done.map_err(Failure::from_sqlx))
}

/// Prepares a statement without running it (PostgreSQL also checks that the
/// server can tell each parameter's type).
pub(crate) fn prepare<'a>(conn: ConnMut<'a>, sql: &'a str) -> BoxFuture<'a, Result<(), Failure>> {
    let done = match conn {
        ConnMut::Pg(c) => c.prepare(sql).map_ok(drop).boxed(),
        ConnMut::My(c) => c.prepare(sql).map_ok(drop).boxed(),
        ConnMut::Lite(c) => c.prepare(sql).map_ok(drop).boxed(),
    };
    Box::pin(done.map_err(Failure::from_sqlx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_kinds() {
        assert_eq!(sqlstate_kind("40P01"), ErrorKind::Deadlock);
        assert_eq!(sqlstate_kind("40001"), ErrorKind::Serialization);
        assert_eq!(sqlstate_kind("23505"), ErrorKind::UniqueViolation);
        assert_eq!(sqlstate_kind("23503"), ErrorKind::Constraint);
        assert_eq!(sqlstate_kind("55P03"), ErrorKind::LockTimeout);
        assert_eq!(sqlstate_kind("08006"), ErrorKind::Reset);
        assert_eq!(sqlstate_kind("42601"), ErrorKind::Sql);
        assert_eq!(mysql_kind(1213, Some("40001")), ErrorKind::Deadlock);
        assert_eq!(mysql_kind(1062, Some("23000")), ErrorKind::UniqueViolation);
        assert_eq!(mysql_kind(1452, Some("23000")), ErrorKind::Constraint);
        assert_eq!(mysql_kind(1205, Some("HY000")), ErrorKind::LockTimeout);
        assert_eq!(mysql_kind(1064, Some("42000")), ErrorKind::Sql);
        assert_eq!(sqlite_kind(2067), ErrorKind::UniqueViolation);
        assert_eq!(sqlite_kind(1299), ErrorKind::Constraint);
        assert_eq!(sqlite_kind(5), ErrorKind::LockTimeout);
        assert_eq!(sqlite_kind(517), ErrorKind::LockTimeout);
        assert_eq!(sqlite_kind(1), ErrorKind::Sql);
    }
}

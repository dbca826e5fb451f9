//! What a SQL step is, as a scenario format describes it: the databases of a plan,
//! the statements and transactions of its flows, and the `setup:` / `teardown:`
//! lists. Plain data, filled by the scenario builder and checked by
//! [`SqlProtocol::new`](super::SqlProtocol::new) and
//! [`SqlProtocol::build_step`](super::SqlProtocol::build_step).

use std::fmt;
use std::time::Duration;

use loadline_core::metrics::{CheckId, GroupId};
use loadline_core::protocol::Slot;
use loadline_core::template::Template;
use serde_json::Value;

/// One database of a plan (`databases: { main: { url, pool } }`).
#[derive(Clone, PartialEq)]
pub struct DatabaseSpec {
    /// The name steps refer to it by, for messages.
    pub name: String,
    /// `postgres://` (or `postgresql://`), `mysql://`, `mariadb://` (the MySQL
    /// driver), or `sqlite://path` (the file is created when missing;
    /// `sqlite::memory:` for an in-memory database).
    pub url: String,
    /// Shared mode: the pool's maximum number of connections. Per-VU mode: unused
    /// (each VU opens one connection).
    pub pool: u32,
    pub mode: PoolMode,
}

impl fmt::Debug for DatabaseSpec {
    // The URL may hold a password: show it redacted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSpec")
            .field("name", &self.name)
            .field("url", &super::redact_url(&self.url))
            .field("pool", &self.pool)
            .field("mode", &self.mode)
            .finish()
    }
}

/// How the VUs get their connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PoolMode {
    /// One pool of `pool` connections shared by every VU, like an application's
    /// connection pool; the time a statement waits for a free connection is
    /// measured apart from the statement.
    #[default]
    Shared,
    /// Each VU opens its own connection on first use and keeps it, like a client
    /// holding a session.
    PerVu,
}

/// One plain statement of a `setup:` or `teardown:` list, run once.
#[derive(Debug, Clone, PartialEq)]
pub struct SetupStatement {
    /// The index of the database in the list given to
    /// [`SqlProtocol::new`](super::SqlProtocol::new).
    pub database: usize,
    /// The SQL text, sent as it is (no parameters; several statements separated
    /// by `;` are allowed).
    pub query: String,
}

/// A check on a statement's result; each is counted passed or failed and never
/// fails the statement itself.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlCheck {
    /// The statement returned (or, for a statement returning no rows, affected)
    /// exactly this many rows.
    Rows(u64),
    /// At least this many rows.
    RowsAtLeast(u64),
    /// At most this many rows.
    RowsAtMost(u64),
    /// The first row's column has this value (compared after the column is
    /// turned into JSON, see the module documentation).
    Column { column: String, equals: Value },
}

impl SqlCheck {
    /// The check for people: `rows 2`, `column name equals "b"`.
    pub fn label(&self) -> String {
        match self {
            SqlCheck::Rows(n) => format!("rows {n}"),
            SqlCheck::RowsAtLeast(n) => format!("rows >= {n}"),
            SqlCheck::RowsAtMost(n) => format!("rows <= {n}"),
            SqlCheck::Column { column, equals } => format!("column {column} equals {equals}"),
        }
    }
}

/// A check of a statement, with the plan's name for it.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCheckSpec {
    pub id: CheckId,
    pub check: SqlCheck,
}

impl SqlCheckSpec {
    /// Checks numbered in order, for a plan built by hand (the scenario format
    /// numbers them through the build context).
    pub fn numbered(checks: Vec<SqlCheck>) -> Vec<SqlCheckSpec> {
        checks
            .into_iter()
            .enumerate()
            .map(|(i, check)| SqlCheckSpec {
                id: CheckId::from_index(u16::try_from(i).unwrap_or(u16::MAX)),
                check,
            })
            .collect()
    }
}

/// A value to capture from the first row of a statement's result.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlCapture {
    pub slot: usize,
    /// The capture's name, for messages.
    pub name: String,
    /// The column (by name, as the result set labels it).
    pub column: String,
}

/// One SQL statement step.
#[derive(Debug, Clone)]
pub struct SqlStepSpec {
    /// Where each VU keeps its SQL state.
    pub slot: Slot<super::VuState>,
    /// The metric group of the statement (latency, rows, errors).
    pub group: GroupId,
    /// The index of the database in the protocol's list. Inside a transaction
    /// the statement runs on the transaction's connection, whatever this says.
    pub database: usize,
    /// The SQL text; placeholders are written `$1`, `$2`, … for every driver.
    pub query: Template,
    /// The parameters, bound to `$1`, `$2`, … in order.
    pub params: Vec<Template>,
    pub checks: Vec<SqlCheckSpec>,
    pub captures: Vec<SqlCapture>,
    /// Bounds the wait for a connection and, separately, the statement.
    pub timeout: Duration,
    /// An outcome group that gets the time each execution waited for a pooled
    /// connection (or, per-VU, took to open the VU's connection). Unused inside a
    /// transaction.
    pub wait_group: Option<GroupId>,
}

/// The isolation level of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    ReadUncommitted,
    ReadCommitted,
    RepeatableRead,
    Serializable,
}

impl Isolation {
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Isolation::ReadUncommitted => "READ UNCOMMITTED",
            Isolation::ReadCommitted => "READ COMMITTED",
            Isolation::RepeatableRead => "REPEATABLE READ",
            Isolation::Serializable => "SERIALIZABLE",
        }
    }
}

/// A transaction step: BEGIN, the statements in order on one connection, COMMIT;
/// ROLLBACK when a statement fails.
#[derive(Debug, Clone)]
pub struct TransactionSpec {
    /// Where each VU keeps its SQL state.
    pub slot: Slot<super::VuState>,
    /// The index of the database in the protocol's list.
    pub database: usize,
    /// An outcome group: one sample per transaction, its latency from BEGIN to
    /// the end of COMMIT (or ROLLBACK), failed when rolled back.
    pub group: GroupId,
    /// An outcome group that gets the time waited for the transaction's
    /// connection.
    pub wait_group: Option<GroupId>,
    /// Bounds the wait for a connection and each of BEGIN, COMMIT and ROLLBACK
    /// (each statement has its own timeout).
    pub timeout: Duration,
    pub steps: Vec<SqlStepSpec>,
    /// `None`: the database's default. Ignored by SQLite, whose transactions are
    /// always serializable.
    pub isolation: Option<Isolation>,
}

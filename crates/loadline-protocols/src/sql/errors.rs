//! SQL's error classes and counter. A failed statement is one of the generic
//! classes every protocol counts (connect, timeout, reset…) or one that SQL
//! declares to the plan (deadlock, serialization, unique_violation,
//! lock_timeout, constraint, sql); the rows a statement returned or affected go
//! to the `rows` counter SQL declares. [`SqlMetrics`] maps this module's
//! [`ErrorKind`] onto the plan's classes.

use loadline_core::build::BuildCtx;
use loadline_core::metrics::{self, CounterId, ErrorClass};

/// The error classes SQL declares, in [`ErrorKind`]'s order after the generic
/// ones.
pub const DECLARED_CLASSES: [&str; 6] = [
    "deadlock",
    "serialization",
    "unique_violation",
    "lock_timeout",
    "constraint",
    "sql",
];

/// The counter of rows returned or affected.
pub const ROWS_COUNTER: &str = "rows";

/// Why a statement failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Connect,
    Timeout,
    Reset,
    Tls,
    Protocol,
    Capture,
    Other,
    /// The database broke a deadlock by failing this statement (SQLSTATE 40P01,
    /// MySQL 1213).
    Deadlock,
    /// A serialization failure (SQLSTATE 40001).
    Serialization,
    /// A unique constraint was violated (SQLSTATE 23505, MySQL 1062).
    UniqueViolation,
    /// A lock wait timed out (SQLSTATE 55P03, MySQL 1205).
    LockTimeout,
    /// Another integrity constraint was violated (SQLSTATE class 23).
    Constraint,
    /// Any other error reported by the database (syntax, permissions, data).
    Sql,
}

impl ErrorKind {
    /// The class's name, as the plan counts it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Capture => "capture",
            ErrorKind::Other => "other",
            ErrorKind::Deadlock => DECLARED_CLASSES[0],
            ErrorKind::Serialization => DECLARED_CLASSES[1],
            ErrorKind::UniqueViolation => DECLARED_CLASSES[2],
            ErrorKind::LockTimeout => DECLARED_CLASSES[3],
            ErrorKind::Constraint => DECLARED_CLASSES[4],
            ErrorKind::Sql => DECLARED_CLASSES[5],
        }
    }
}

/// Where SQL's figures go in the plan's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlMetrics {
    /// The plan's classes of [`DECLARED_CLASSES`], in order.
    declared: [ErrorClass; 6],
    pub rows: CounterId,
}

impl Default for SqlMetrics {
    /// The classes right after the generic ones and the first counter: the
    /// layout of a plan whose only declarations are SQL's.
    fn default() -> Self {
        let base = metrics::ErrorKind::ALL.len() as u16;
        Self {
            declared: std::array::from_fn(|i| ErrorClass::from_index(base + i as u16)),
            rows: CounterId::from_index(0),
        }
    }
}

impl SqlMetrics {
    /// Declares SQL's classes and counter to the plan being built.
    pub fn declare(ctx: &mut dyn BuildCtx) -> Self {
        let classes = ctx.error_classes(&DECLARED_CLASSES);
        let mut out = Self {
            rows: ctx.counter(ROWS_COUNTER),
            ..Self::default()
        };
        for (slot, class) in out.declared.iter_mut().zip(classes) {
            *slot = class;
        }
        out
    }

    /// The plan's class of `kind`.
    pub fn class(&self, kind: ErrorKind) -> ErrorClass {
        use metrics::ErrorKind as G;
        match kind {
            ErrorKind::Connect => G::Connect.into(),
            ErrorKind::Timeout => G::Timeout.into(),
            ErrorKind::Reset => G::Reset.into(),
            ErrorKind::Tls => G::Tls.into(),
            ErrorKind::Protocol => G::Protocol.into(),
            ErrorKind::Capture => G::Capture.into(),
            ErrorKind::Other => G::Other.into(),
            ErrorKind::Deadlock => self.declared[0],
            ErrorKind::Serialization => self.declared[1],
            ErrorKind::UniqueViolation => self.declared[2],
            ErrorKind::LockTimeout => self.declared[3],
            ErrorKind::Constraint => self.declared[4],
            ErrorKind::Sql => self.declared[5],
        }
    }
}

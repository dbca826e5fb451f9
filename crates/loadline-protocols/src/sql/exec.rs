//! The executors: one statement ([`SqlStep`]) and one transaction
//! ([`TransactionStep`]).
//!
//! A statement renders its parameters (and its SQL text, when that has
//! placeholders), gets a connection (the pool wait measured apart), runs, and
//! reports one sample: latency from sending to the last row, failed with an error
//! kind when the database (or the connection) said no. Then rows, checks and
//! captures. A failed statement ends the iteration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadline_core::metrics::{GroupId, MetricsHub, RequestSample};

use super::errors::{ErrorKind, SqlMetrics};
use loadline_core::protocol::{BoxFuture, StepExec, StepOutcome};
use loadline_core::template::Vars;
use loadline_core::vu::Vu;
use serde_json::Value;

use super::conn::{self, Failure, Lease};
use super::placeholders::{self, Dialect};
use super::spec::{SqlCheck, SqlStepSpec, TransactionSpec};
use super::{Database, Scratch, SqlError, VuState};

/// The query text as sent, prepared at load time when it does not vary.
#[derive(Debug)]
struct Fixed {
    sql: String,
    /// MySQL: the parameter of each `?`.
    order: Vec<usize>,
}

/// One statement step, everything static prepared.
#[derive(Debug)]
pub(crate) struct SqlStep {
    spec: SqlStepSpec,
    db: Arc<Database>,
    fixed: Option<Fixed>,
    /// The columns the checks and captures read from the first row.
    needs: Vec<String>,
    /// Per capture, its column's index in `needs`.
    capture_cols: Vec<usize>,
    /// Per check, its column's index in `needs` (for column checks).
    check_cols: Vec<Option<usize>>,
    /// Whether a failure of this step was logged already (only the first is).
    logged: AtomicBool,
}

impl SqlStep {
    pub(crate) fn new(spec: SqlStepSpec, db: Arc<Database>) -> Result<Self, SqlError> {
        let fixed = match spec.query.static_text() {
            Some(text) => {
                let mut sql = String::new();
                let mut order = Vec::new();
                let used =
                    placeholders::rewrite(text, db.dialect, &mut sql, &mut order).map_err(|e| {
                        SqlError::Query {
                            database: db.name.clone(),
                            reason: e.to_string(),
                        }
                    })?;
                check_param_count(used, spec.params.len()).map_err(|reason| SqlError::Query {
                    database: db.name.clone(),
                    reason,
                })?;
                if db.dialect != Dialect::MySql {
                    sql = text.to_owned();
                }
                Some(Fixed { sql, order })
            }
            None => None,
        };
        let mut needs: Vec<String> = Vec::new();
        let mut need = |column: &str| match needs.iter().position(|c| c == column) {
            Some(i) => i,
            None => {
                needs.push(column.to_owned());
                needs.len() - 1
            }
        };
        let capture_cols = spec.captures.iter().map(|c| need(&c.column)).collect();
        let check_cols = spec
            .checks
            .iter()
            .map(|c| match &c.check {
                SqlCheck::Column { column, .. } => Some(need(column)),
                _ => None,
            })
            .collect();
        Ok(Self {
            spec,
            db,
            fixed,
            needs,
            capture_cols,
            check_cols,
            logged: AtomicBool::new(false),
        })
    }

    /// The metric group, and the SQL text as sent when it does not vary.
    pub(crate) fn fixed_sql(&self) -> Option<(GroupId, &str)> {
        self.fixed
            .as_ref()
            .map(|f| (self.spec.group, f.sql.as_str()))
    }

    async fn execute(&self, vu: &mut Vu) -> StepOutcome {
        let group = self.spec.group;
        let Some((vars, state, hub)) = vu.parts_for(self.spec.slot, group) else {
            return StepOutcome::AbortIteration;
        };
        let VuState { conns, scratch } = state;
        let Some(slot) = conns.get_mut(self.db.index) else {
            hub.record_request(&RequestSample::unsent(
                group,
                self.db.metrics.class(ErrorKind::Other),
            ));
            return StepOutcome::AbortIteration;
        };
        let (lease, waited) =
            conn::acquire(self.db.pool(), &self.db.options, slot, self.spec.timeout).await;
        record_wait(hub, &self.db.metrics, self.spec.wait_group, waited, &lease);
        let mut lease = match lease {
            Ok(lease) => lease,
            Err(f) => {
                hub.record_request(&RequestSample::unsent(group, self.db.metrics.class(f.kind)));
                self.log_once(&f);
                return StepOutcome::AbortIteration;
            }
        };
        match self.run_on(&mut lease, vars, scratch, hub).await {
            Ok(()) => StepOutcome::Continue,
            Err(_) => StepOutcome::AbortIteration,
        }
    }

    /// Renders and runs the statement on `lease`; records its sample, rows,
    /// checks and captures. `Err` with the error kind when the iteration must
    /// stop (a failed statement or capture).
    pub(crate) async fn run_on(
        &self,
        lease: &mut Lease<'_>,
        vars: &mut Vars,
        scratch: &mut Scratch,
        hub: &MetricsHub,
    ) -> Result<(), ErrorKind> {
        let group = self.spec.group;
        let Scratch {
            text,
            rewritten,
            order,
            params,
        } = scratch;
        params.clear();
        params.extend(self.spec.params.iter().map(|t| t.eval(vars)));
        let (sql, order): (&str, &[usize]) = match &self.fixed {
            Some(f) => (&f.sql, &f.order),
            None => {
                text.clear();
                self.spec.query.render_into(vars, text);
                let used = placeholders::rewrite(text, self.db.dialect, rewritten, order)
                    .map_err(|e| e.to_string())
                    .and_then(|used| check_param_count(used, params.len()));
                if let Err(reason) = used {
                    hub.record_request(&RequestSample::unsent(
                        group,
                        self.db.metrics.class(ErrorKind::Other),
                    ));
                    self.log_once(&Failure::client(ErrorKind::Other, reason));
                    return Err(ErrorKind::Other);
                }
                if self.db.dialect == Dialect::MySql {
                    (rewritten.as_str(), order.as_slice())
                } else {
                    (text.as_str(), &[])
                }
            }
        };
        let start = Instant::now();
        let in_flight = hub.in_flight(group, start, 0);
        let result = match lease.conn() {
            Some(c) => {
                let run = conn::run(c, sql, order, params, &self.needs);
                tokio::time::timeout(self.spec.timeout, run)
                    .await
                    .unwrap_or_else(|_| Err(Failure::timeout("the statement", self.spec.timeout)))
            }
            None => Err(Failure {
                kind: ErrorKind::Reset,
                message: "the connection was lost".into(),
                broken: true,
            }),
        };
        in_flight.done();
        let latency = start.elapsed();
        let ran = match result {
            Ok(ran) => ran,
            Err(f) => {
                if f.broken {
                    lease.discard();
                }
                hub.record_request(&RequestSample {
                    group,
                    latency,
                    status: None,
                    failed: true,
                    error: Some(self.db.metrics.class(f.kind)),
                    bytes_sent: 0,
                    bytes_received: 0,
                    cache: loadline_core::cache::CacheOutcome::None,
                });
                self.log_once(&f);
                return Err(f.kind);
            }
        };
        hub.record_request(&RequestSample {
            group,
            latency,
            status: None,
            failed: false,
            error: None,
            bytes_sent: 0,
            bytes_received: 0,
            cache: loadline_core::cache::CacheOutcome::None,
        });
        let rows = ran.rows();
        hub.record_count(group, self.db.metrics.rows, rows);
        let first = ran.first.as_deref();
        let cell = |i: usize| first.and_then(|r| r.get(i)).and_then(Option::as_ref);
        for (spec, col) in self.spec.checks.iter().zip(&self.check_cols) {
            let value = || col.and_then(cell);
            let passed = match &spec.check {
                SqlCheck::Rows(n) => rows == *n,
                SqlCheck::RowsAtLeast(n) => rows >= *n,
                SqlCheck::RowsAtMost(n) => rows <= *n,
                SqlCheck::Column { equals, .. } => value().is_some_and(|v| same_value(v, equals)),
            };
            if passed {
                hub.check_passed(group);
            } else {
                let actual = match &spec.check {
                    SqlCheck::Column { .. } => {
                        value().map_or_else(|| "missing".into(), |v| v.to_string())
                    }
                    _ => format!("{rows} rows"),
                };
                hub.check_failed(group, spec.id, &actual);
            }
        }
        for (capture, &col) in self.spec.captures.iter().zip(&self.capture_cols) {
            match (cell(col), vars.captures.get_mut(capture.slot)) {
                (Some(v), Some(slot)) => *slot = Some(v.clone()),
                _ => {
                    hub.record_error(group, self.db.metrics.class(ErrorKind::Capture));
                    return Err(ErrorKind::Capture);
                }
            }
        }
        Ok(())
    }

    /// Logs the first failure of this step, with the database's message; later
    /// ones are only counted.
    fn log_once(&self, f: &Failure) {
        if !self.logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                database = %self.db.name,
                kind = f.kind.as_str(),
                error = %self.db.scrub(&f.message),
                "SQL statement failed (later failures of this step are counted, not logged)"
            );
        }
    }
}

impl StepExec for SqlStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(self.execute(vu))
    }
}

/// Whether a column's value matches a check's expected value; numbers compare
/// by value (`12.0` matches `12`).
fn same_value(got: &Value, want: &Value) -> bool {
    match (got, want) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        _ => got == want,
    }
}

fn check_param_count(used: usize, given: usize) -> Result<(), String> {
    if used == given {
        return Ok(());
    }
    Err(match used {
        0 => format!("the query has no placeholders but the step gives {given} params"),
        1 => format!("the query uses 1 parameter but the step gives {given} params"),
        n => format!("the query uses {n} parameters ($1…${n}) but the step gives {given} params"),
    })
}

fn record_wait<T>(
    hub: &MetricsHub,
    metrics: &SqlMetrics,
    group: Option<GroupId>,
    waited: Option<Duration>,
    got: &Result<T, Failure>,
) {
    if let (Some(group), Some(latency)) = (group, waited) {
        hub.record_request(&RequestSample {
            group,
            latency,
            status: None,
            failed: got.is_err(),
            error: got.as_ref().err().map(|f| metrics.class(f.kind)),
            bytes_sent: 0,
            bytes_received: 0,
            cache: loadline_core::cache::CacheOutcome::None,
        });
    }
}

/// A transaction step.
#[derive(Debug)]
pub(crate) struct TransactionStep {
    spec: TransactionSpec,
    steps: Vec<SqlStep>,
    db: Arc<Database>,
    /// The statements that open the transaction.
    begin: Vec<String>,
    logged: AtomicBool,
}

/// A transaction's connection, rolled back by closing it if the transaction is
/// abandoned half-way (the iteration cancelled at the end of the run).
struct Open<'a> {
    lease: Lease<'a>,
    open: bool,
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        if self.open {
            self.lease.discard();
        }
    }
}

impl TransactionStep {
    pub(crate) fn new(mut spec: TransactionSpec, db: Arc<Database>, steps: Vec<SqlStep>) -> Self {
        spec.steps.clear();
        let begin = match (db.dialect, spec.isolation) {
            (Dialect::Postgres, Some(level)) => {
                vec![format!("BEGIN ISOLATION LEVEL {}", level.sql())]
            }
            (Dialect::MySql, Some(level)) => vec![
                format!("SET TRANSACTION ISOLATION LEVEL {}", level.sql()),
                "START TRANSACTION".into(),
            ],
            // SQLite's transactions are always serializable.
            (Dialect::Sqlite, _) | (_, None) => vec!["BEGIN".into()],
        };
        Self {
            spec,
            steps,
            db,
            begin,
            logged: AtomicBool::new(false),
        }
    }

    async fn execute(&self, vu: &mut Vu) -> StepOutcome {
        let group = self.spec.group;
        let Some((vars, state, hub)) = vu.parts_for(self.spec.slot, group) else {
            return StepOutcome::AbortIteration;
        };
        let VuState { conns, scratch } = state;
        let Some(slot) = conns.get_mut(self.db.index) else {
            hub.record_request(&RequestSample::unsent(
                group,
                self.db.metrics.class(ErrorKind::Other),
            ));
            return StepOutcome::AbortIteration;
        };
        let timeout = self.spec.timeout;
        let (lease, waited) = conn::acquire(self.db.pool(), &self.db.options, slot, timeout).await;
        record_wait(hub, &self.db.metrics, self.spec.wait_group, waited, &lease);
        let lease = match lease {
            Ok(lease) => lease,
            Err(f) => {
                hub.record_request(&RequestSample::unsent(group, self.db.metrics.class(f.kind)));
                self.log_once(&f);
                return StepOutcome::AbortIteration;
            }
        };
        let mut tx = Open { lease, open: false };
        let start = Instant::now();
        for sql in &self.begin {
            if let Err(f) = plain(&mut tx.lease, sql, timeout).await {
                self.outcome(hub, start, Some(f.kind));
                self.log_once(&f);
                return StepOutcome::AbortIteration;
            }
            tx.open = true;
        }
        for step in &self.steps {
            if let Err(kind) = step.run_on(&mut tx.lease, vars, scratch, hub).await {
                // A lost connection took its transaction with it.
                if !tx.lease.is_discarded() {
                    if let Err(f) = plain(&mut tx.lease, "ROLLBACK", timeout).await {
                        self.log_once(&f);
                        tx.lease.discard();
                    }
                }
                tx.open = false;
                self.outcome(hub, start, Some(kind));
                return StepOutcome::AbortIteration;
            }
        }
        let committed = plain(&mut tx.lease, "COMMIT", timeout).await;
        // Whatever COMMIT said, the transaction is over (a failed COMMIT rolls
        // back; a lost connection has been discarded).
        tx.open = false;
        match committed {
            Ok(()) => {
                self.outcome(hub, start, None);
                StepOutcome::Continue
            }
            Err(f) => {
                self.outcome(hub, start, Some(f.kind));
                self.log_once(&f);
                StepOutcome::AbortIteration
            }
        }
    }

    /// The transaction's sample: committed, or rolled back because of `error`.
    fn outcome(&self, hub: &MetricsHub, start: Instant, error: Option<ErrorKind>) {
        hub.record_request(&RequestSample {
            group: self.spec.group,
            latency: start.elapsed(),
            status: None,
            failed: error.is_some(),
            error: error.map(|k| self.db.metrics.class(k)),
            bytes_sent: 0,
            bytes_received: 0,
            cache: loadline_core::cache::CacheOutcome::None,
        });
    }

    fn log_once(&self, f: &Failure) {
        if !self.logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                database = %self.db.name,
                kind = f.kind.as_str(),
                error = %self.db.scrub(&f.message),
                "SQL transaction control failed (later failures are counted, not logged)"
            );
        }
    }
}

impl StepExec for TransactionStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(self.execute(vu))
    }
}

/// Runs BEGIN, COMMIT or ROLLBACK on `lease`, discarding the connection when it
/// broke.
async fn plain(lease: &mut Lease<'_>, sql: &str, timeout: Duration) -> Result<(), Failure> {
    let result = match lease.conn() {
        Some(c) => tokio::time::timeout(timeout, conn::run_plain(c, sql))
            .await
            .unwrap_or_else(|_| Err(Failure::timeout(sql, timeout))),
        None => Err(Failure {
            kind: ErrorKind::Reset,
            message: "the connection was lost".into(),
            broken: true,
        }),
    };
    if let Err(f) = &result {
        if f.broken {
            lease.discard();
        }
    }
    result
}

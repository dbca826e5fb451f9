//! SQL in the native format: the `databases:` (read into the plan's SQL
//! protocol, each URL checked where it is written), the `setup:` and
//! `teardown:` statements, `sql:` statement steps, `transaction:` steps, and the
//! databases a `monitor:` block watches.
//!
//! Metric groups: a statement's is its `name` (default `SQL ` and the first
//! words of its query, as written); the time it waited for a pooled connection
//! goes to the outcome group `NAME (pool wait)`. A transaction is an outcome
//! group of its own (`name`, default `transaction DB`), one sample per
//! transaction (failed when rolled back), with its own `(pool wait)` group; its
//! statements keep their groups.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use loadline_core::plan::OUTCOME_KIND;
use loadline_core::template::Template;
use loadline_monitor::{DatabaseMonitorSpec, MonitorConfig};
use loadline_protocols::sql::{
    DatabaseSpec, Isolation, PoolMode, SetupStatement, SqlCapture, SqlCheck, SqlProtocol,
    SqlStepSpec, TransactionSpec,
};
use serde_json::Value;

use super::scope::{NameScope, Names};
use super::steps::{first_key, kinds, FlowScope, Kind, StepDraft};
use super::{lenient, quoted_list, Builder};
use loadline_doc::de::{Entries, Lenient, Span, Spanned};
use crate::model::{
    CaptureDoc, CheckDoc, DatabaseDoc, IsolationDoc, Items, JsonDoc, PoolModeDoc, QueryDoc,
    ScenarioDoc, SetupDoc, StepDoc,
};
use loadline_doc::suggest::did_you_mean;

/// The kind of a statement's metric group.
pub(crate) const SQL_KIND: &str = "sql";
/// The suffix of the outcome group that gets a step's waits for a connection.
pub(crate) const POOL_WAIT_SUFFIX: &str = " (pool wait)";
const DEFAULT_POOL: i64 = 10;
const MAX_POOL: i64 = 10_000;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// A default statement name is at most this many characters (then `…`).
const NAME_CHARS: usize = 48;

/// The SQL side of a loaded scenario: its databases (the plan's SQL protocol,
/// also in [`loadline_core::plan::Plan::protocols`]) and what runs once around
/// the load. The caller connects, runs `setup`, prepares, runs the load, then
/// `teardown` and closes.
#[derive(Debug, Clone)]
pub struct SqlPlan {
    pub protocol: Arc<SqlProtocol>,
    /// The databases' names, in the protocol's order.
    pub databases: Vec<String>,
    /// `setup:`, run once before the load, in order.
    pub setup: Vec<SetupStatement>,
    /// `teardown:`, run once after the load (also after a failed or interrupted
    /// one), in order.
    pub teardown: Vec<SetupStatement>,
}

/// What the builder knows of the scenario's databases.
#[derive(Debug, Default)]
pub(crate) struct SqlBuild {
    /// Each database by name, with its spec when its settings are valid.
    databases: Vec<(String, Option<DatabaseSpec>)>,
    protocol: Option<Arc<SqlProtocol>>,
    /// Checks the statements of transactions one by one (the real protocol
    /// builds them with their transaction).
    checker: Option<Arc<SqlProtocol>>,
    /// The SQL protocol's index in the plan's protocol list.
    pub protocol_index: usize,
    setup: Vec<SetupStatement>,
    teardown: Vec<SetupStatement>,
}

impl SqlBuild {
    /// The SQL plan, when the scenario has databases.
    pub fn finish(&mut self) -> Option<SqlPlan> {
        Some(SqlPlan {
            protocol: self.protocol.take()?,
            databases: self.databases.iter().map(|(n, _)| n.clone()).collect(),
            setup: std::mem::take(&mut self.setup),
            teardown: std::mem::take(&mut self.teardown),
        })
    }
}

/// Whether any step of the scenario is an HTTP request (the HTTP protocol then
/// comes first in the plan's protocol list).
pub(crate) fn uses_http(doc: &ScenarioDoc) -> bool {
    fn any(steps: &Items<StepDoc>) -> bool {
        steps.value.iter().filter_map(Lenient::get).any(|s| {
            let d = &s.value;
            [&d.get, &d.post, &d.put, &d.patch, &d.delete, &d.head]
                .iter()
                .any(|u| u.is_some())
                || d.steps.as_ref().is_some_and(any)
        })
    }
    lenient(&doc.flows).is_some_and(|flows| {
        flows
            .value
            .iter()
            .filter_map(Lenient::get)
            .any(|f| f.value.steps.as_ref().is_some_and(any))
    })
}

fn span_of<T>(s: &Option<Spanned<T>>) -> Option<Span> {
    s.as_ref().map(|s| s.span.clone())
}

/// Whether `name` can name a database: letters, digits, `_` and `-`.
fn is_database_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// `sqlite://` URLs with a relative path are relative to the scenario's folder.
fn sqlite_relative_to(url: &str, base_dir: &Path) -> String {
    let lower = url.get(..7).unwrap_or(url).to_ascii_lowercase();
    if lower != "sqlite:" {
        return url.to_owned();
    }
    let rest = &url[7..];
    let path_start = if rest.starts_with("//") { 9 } else { 7 };
    let tail = &url[path_start..];
    let (path, query) = match tail.find('?') {
        Some(q) => (&tail[..q], &tail[q..]),
        None => (tail, ""),
    };
    if path.is_empty() || path == ":memory:" || Path::new(path).is_absolute() {
        return url.to_owned();
    }
    format!("sqlite://{}{query}", base_dir.join(path).display())
}

/// The default name of a statement: `SQL` and the query's first words.
fn default_name(query: &str) -> String {
    let words: Vec<&str> = query.split_whitespace().collect();
    let mut name = String::from("SQL");
    for word in words.iter() {
        if name.chars().count() + 1 + word.chars().count() > NAME_CHARS {
            name.push('…');
            return name;
        }
        name.push(' ');
        name.push_str(word);
    }
    name
}

impl Builder<'_> {
    /// Reads `databases:`, `setup:` and `teardown:`. Call before the flows.
    pub(super) fn sql_databases(&mut self, doc: &ScenarioDoc, names: &Names) {
        self.sql.protocol_index = usize::from(uses_http(doc));
        let scope = NameScope {
            names,
            captures: &[],
            flow_captures: &[],
        };
        let entries = lenient(&doc.databases)
            .map(|e| e.0.as_slice())
            .unwrap_or_default();
        for (key, entry) in entries {
            if !is_database_name(&key.value) {
                self.error(
                    &key.span,
                    format!(
                        "`{}` cannot name a database: use letters, digits, `_` and `-`, such as `main`",
                        key.value
                    ),
                );
            }
            let spec = entry
                .get()
                .and_then(|d| self.database(&key.value, d, &scope));
            self.sql.databases.push((key.value.clone(), spec));
        }
        let specs: Option<Vec<DatabaseSpec>> =
            self.sql.databases.iter().map(|(_, s)| s.clone()).collect();
        if let Some(specs) = specs.filter(|s| !s.is_empty()) {
            // Each URL was read already, where it is written.
            self.sql.protocol = SqlProtocol::new(specs).ok();
        }
        // The checker has every database, an invalid one standing in as an
        // in-memory SQLite one, so that steps are checked all the same.
        let stand_ins: Vec<DatabaseSpec> = self
            .sql
            .databases
            .iter()
            .map(|(name, spec)| {
                spec.clone().unwrap_or_else(|| DatabaseSpec {
                    name: name.clone(),
                    url: "sqlite::memory:".into(),
                    pool: 1,
                    mode: PoolMode::Shared,
                })
            })
            .collect();
        if !stand_ins.is_empty() {
            self.sql.checker = SqlProtocol::new(stand_ins).ok();
        }
        let setup = lenient(&doc.setup).map(|l| self.setup_list(l, "setup", &scope));
        self.sql.setup = setup.unwrap_or_default();
        let teardown = lenient(&doc.teardown).map(|l| self.setup_list(l, "teardown", &scope));
        self.sql.teardown = teardown.unwrap_or_default();
    }

    fn database(
        &mut self,
        name: &str,
        doc: &Spanned<DatabaseDoc>,
        scope: &NameScope<'_>,
    ) -> Option<DatabaseSpec> {
        let d = &doc.value;
        let url = self.fixed_text(&d.url, scope, "a database URL");
        let mode = match d.mode.as_ref().map(|m| m.value) {
            None | Some(PoolModeDoc::Shared) => PoolMode::Shared,
            Some(PoolModeDoc::PerVu) => PoolMode::PerVu,
        };
        let pool = match &d.pool {
            Some(p) => {
                if mode == PoolMode::PerVu {
                    self.warn(
                        &p.span,
                        "`pool` is unused with `mode: per_vu`: each VU opens one connection of its own",
                    );
                }
                self.int_in(p, 1, MAX_POOL)
            }
            None => Some(DEFAULT_POOL as u64),
        };
        let mut spec = DatabaseSpec {
            name: name.to_owned(),
            url: sqlite_relative_to(&url?, self.base_dir),
            pool: 1,
            mode,
        };
        // Read the URL now, so that its mistakes are shown where it is written
        // (with any password replaced by `***`).
        if let Err(e) = SqlProtocol::new(vec![spec.clone()]) {
            self.error(&d.url.span, e.to_string());
            return None;
        }
        spec.pool = u32::try_from(pool?).ok()?;
        Some(spec)
    }

    /// A template that may use vars and `$env` only, as its text.
    fn fixed_text(
        &mut self,
        text: &Spanned<String>,
        scope: &NameScope<'_>,
        what: &str,
    ) -> Option<String> {
        let t = self.template(&text.value, &text.span, scope)?;
        match t.static_text() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.error(
                    &text.span,
                    format!(
                        "{what} is read once, before the load: it can use vars and `{{{{ $env.NAME }}}}`, not values that change per iteration"
                    ),
                );
                None
            }
        }
    }

    fn setup_list(
        &mut self,
        list: &Items<SetupDoc>,
        what: &str,
        scope: &NameScope<'_>,
    ) -> Vec<SetupStatement> {
        let mut out = Vec::new();
        for item in list.value.iter().filter_map(Lenient::get) {
            let database = self.database_index(&item.value.sql);
            let query = self.fixed_text(&item.value.query, scope, &format!("a `{what}` query"));
            if let (Some(database), Some(query)) = (database, query) {
                out.push(SetupStatement { database, query });
            }
        }
        out
    }

    /// The index of the database a step or statement names.
    fn database_index(&mut self, name: &Spanned<String>) -> Option<usize> {
        if let Some(i) = self
            .sql
            .databases
            .iter()
            .position(|(n, _)| *n == name.value)
        {
            return Some(i);
        }
        let known: Vec<&str> = self.sql.databases.iter().map(|(n, _)| n.as_str()).collect();
        let mut msg = format!("no database is called `{}`", name.value);
        if known.is_empty() {
            msg.push_str(
                ": declare it under `databases:`, e.g. `databases: { main: { url: \"postgres://postgres@127.0.0.1/test\" } }`",
            );
        } else {
            msg.push_str(&format!(
                ": expected one of {} (from `databases:`)",
                quoted_list(&known)
            ));
        }
        if let Some(s) = did_you_mean(&name.value, known.iter().copied()) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        }
        self.error(&name.span, msg);
        None
    }

    /// The metric group of an SQL step; a name already used by another kind of
    /// step is an error.
    fn sql_group(&mut self, name: String, kind: &str, span: &Span) -> Option<usize> {
        let taken = self
            .groups
            .iter()
            .find(|g| g.name == name && g.kind != kind)
            .map(|g| g.kind.clone());
        if let Some(other) = taken {
            let what = |k: &str| match k {
                SQL_KIND => "an SQL statement",
                OUTCOME_KIND => "a transaction, a pool wait or a polling step",
                _ => "an HTTP request",
            };
            self.error(
                span,
                format!(
                    "the name `{name}` is used by {} and by {}: a metric group counts one kind of thing, so give one of them another `name`",
                    what(&other),
                    what(kind)
                ),
            );
            return None;
        }
        self.group(name, kind, span)
    }

    /// An `sql:` step (not in a transaction).
    pub(super) fn sql_step(
        &mut self,
        step: &Spanned<StepDoc>,
        db: &Spanned<String>,
        flow: &mut FlowScope<'_>,
    ) -> Option<StepDraft> {
        let (spec, at) = self.sql_statement(step, db, flow, None)?;
        // With an invalid database (reported), check the step all the same.
        let protocol = self.sql.protocol.clone().or(self.sql.checker.clone())?;
        match protocol.build_step(spec) {
            Ok(exec) => Some(StepDraft::Exec(exec)),
            Err(e) => {
                self.error(&at, e.to_string());
                None
            }
        }
    }

    /// A statement's spec, and where a problem with its placeholders is shown.
    /// `in_tx`: the transaction's database (index and name), when inside one.
    fn sql_statement(
        &mut self,
        step: &Spanned<StepDoc>,
        db: &Spanned<String>,
        flow: &mut FlowScope<'_>,
        in_tx: Option<(usize, &str)>,
    ) -> Option<(SqlStepSpec, Span)> {
        let d = &step.value;
        let before = self.problems.len();
        let database = self.database_index(db);
        if let (Some(index), Some((tx_db, tx_name))) = (database, in_tx) {
            if index != tx_db {
                self.error(
                    &db.span,
                    format!(
                        "the statements of a transaction run on its database `{tx_name}`: this one names `{}`",
                        db.value
                    ),
                );
            }
        }
        let (query, params) = {
            let scope = flow.scope();
            let query = match &d.query {
                None => {
                    self.missing(
                        &step.span,
                        &["query"],
                        "an `sql:` step needs `query:`, the SQL statement to run",
                    );
                    None
                }
                Some(q) => match &q.value {
                    QueryDoc::Sql(text) => self
                        .template(text, &q.span, &scope)
                        .map(|t| (t, text.as_str())),
                    QueryDoc::Params(_) => {
                        self.error(
                            &q.span,
                            "the `query` of an `sql:` step is its SQL text, found a mapping (query parameters belong to HTTP steps)",
                        );
                        None
                    }
                },
            };
            let params = match &d.params {
                Some(p) => self.sql_params(p, &scope),
                None => Some(Vec::new()),
            };
            (query, params)
        };
        let name = match (&d.name, &query) {
            (Some(n), _) => Some(n.value.clone()),
            (None, Some((_, text))) => Some(default_name(text)),
            (None, None) => None,
        };
        let name_span = d.name.as_ref().map_or(&db.span, |n| &n.span).clone();
        let group = name
            .clone()
            .and_then(|n| self.sql_group(n, SQL_KIND, &name_span));
        let wait_group = match (&name, in_tx) {
            (Some(n), None) => {
                self.sql_group(format!("{n}{POOL_WAIT_SUFFIX}"), OUTCOME_KIND, &name_span)
            }
            _ => None,
        };
        let checks = d
            .check
            .as_ref()
            .map(|c| self.sql_checks(c))
            .unwrap_or_default();
        let timeout = match &d.timeout {
            Some(t) => self.duration(t, false),
            None => Some(DEFAULT_TIMEOUT),
        };
        // Captures become known to the steps after this one, even when this one
        // has errors, so that one mistake does not cascade.
        let captures = d
            .capture
            .as_ref()
            .map(|c| self.sql_captures(c, flow))
            .unwrap_or_default();
        if self.problems.len() > before {
            return None;
        }
        let at = match (&d.params, &d.query) {
            (Some(p), _) => p.span.clone(),
            (None, Some(q)) => q.span.clone(),
            (None, None) => step.span.clone(),
        };
        let spec = SqlStepSpec {
            protocol_index: self.sql.protocol_index,
            group: group?,
            database: database?,
            query: query?.0,
            params: params?,
            checks,
            captures,
            timeout: timeout?,
            wait_group,
        };
        Some((spec, at))
    }

    /// Parameters: strings are templates, other scalars keep their type.
    fn sql_params(
        &mut self,
        list: &Spanned<Vec<Spanned<JsonDoc>>>,
        scope: &NameScope<'_>,
    ) -> Option<Vec<Template>> {
        let mut out = Vec::new();
        let mut ok = true;
        for p in &list.value {
            let value = match &p.value {
                JsonDoc::Str(s) => {
                    match self.template(s, &p.span, scope) {
                        Some(t) => out.push(t),
                        None => ok = false,
                    }
                    continue;
                }
                JsonDoc::Null => Value::Null,
                JsonDoc::Bool(b) => Value::Bool(*b),
                JsonDoc::Int(i) => Value::from(*i),
                JsonDoc::UInt(u) => Value::from(*u),
                JsonDoc::Float(f) => match serde_json::Number::from_f64(*f) {
                    Some(n) => Value::Number(n),
                    None => {
                        self.error(&p.span, format!("expected a finite number, found {f}"));
                        ok = false;
                        continue;
                    }
                },
                JsonDoc::Seq(_) | JsonDoc::Map(_) => {
                    self.error(
                        &p.span,
                        "a parameter is one value: to pass JSON, write it as a string (e.g. '{\"a\": 1}')",
                    );
                    ok = false;
                    continue;
                }
            };
            out.push(Template::constant(value));
        }
        ok.then_some(out)
    }

    fn sql_checks(&mut self, doc: &CheckDoc) -> Vec<SqlCheck> {
        self.any_check = true;
        for (key, span) in [
            ("status", doc.status.as_ref().map(|s| &s.span)),
            ("body_contains", doc.body_contains.as_ref().map(|s| &s.span)),
            ("header", doc.header.as_ref().map(|s| &s.span)),
        ] {
            if let Some(span) = span {
                self.error(
                    span,
                    format!(
                        "`{key}` checks an HTTP response; an `sql:` step checks `rows`, `rows_at_least`, `rows_at_most`, or `column` with `equals`"
                    ),
                );
            }
        }
        let mut checks = Vec::new();
        type Count<'d> = (&'d Option<Spanned<i64>>, fn(u64) -> SqlCheck);
        let counts: [Count<'_>; 3] = [
            (&doc.rows, SqlCheck::Rows),
            (&doc.rows_at_least, SqlCheck::RowsAtLeast),
            (&doc.rows_at_most, SqlCheck::RowsAtMost),
        ];
        for (given, check) in counts {
            if let Some(n) = given.as_ref().and_then(|n| self.int_in(n, 0, i64::MAX)) {
                checks.push(check(n));
            }
        }
        match (&doc.column, &doc.equals) {
            (Some(column), Some(equals)) => {
                if let Some(v) = self.plain_value(equals) {
                    checks.push(SqlCheck::Column {
                        column: column.value.clone(),
                        equals: v,
                    });
                }
            }
            (Some(column), None) => self.error(
                &column.span,
                "`column` needs `equals`: the value the first row's column must have",
            ),
            (None, Some(equals)) => self.error(
                &equals.span,
                "`equals` goes with `column`: name the column whose value it is",
            ),
            (None, None) => {}
        }
        checks
    }

    fn sql_captures(
        &mut self,
        entries: &Entries<Lenient<Spanned<CaptureDoc>>>,
        flow: &mut FlowScope<'_>,
    ) -> Vec<SqlCapture> {
        let mut out = Vec::new();
        for (name, doc) in &entries.0 {
            let slot = self.capture_name(name, flow);
            let column = doc.get().and_then(|d| self.capture_column(d));
            if let (Some(slot), Some(column)) = (slot, column) {
                out.push(SqlCapture {
                    slot,
                    name: name.value.clone(),
                    column,
                });
            }
        }
        out
    }

    fn capture_column(&mut self, doc: &Spanned<CaptureDoc>) -> Option<String> {
        let d = &doc.value;
        let mut ok = true;
        for (key, span) in [
            ("json", d.json.as_ref().map(|s| &s.span)),
            ("regex", d.regex.as_ref().map(|s| &s.span)),
            ("group", d.group.as_ref().map(|s| &s.span)),
            ("header", d.header.as_ref().map(|s| &s.span)),
        ] {
            if let Some(span) = span {
                self.error(
                    span,
                    format!(
                        "`{key}` captures from an HTTP response; an `sql:` step captures a `column` of its first row"
                    ),
                );
                ok = false;
            }
        }
        match &d.column {
            Some(c) => ok.then(|| c.value.clone()),
            None => {
                if ok {
                    self.missing(
                        &doc.span,
                        &["column"],
                        "a capture of an `sql:` step needs `column: NAME`, a column of its first row",
                    );
                }
                None
            }
        }
    }

    /// A `transaction:` step.
    pub(super) fn transaction_step(
        &mut self,
        step: &Spanned<StepDoc>,
        db: &Spanned<String>,
        flow: &mut FlowScope<'_>,
    ) -> Option<StepDraft> {
        let d = &step.value;
        let before = self.problems.len();
        let database = self.database_index(db);
        let name = d
            .name
            .as_ref()
            .map_or_else(|| format!("transaction {}", db.value), |n| n.value.clone());
        let name_span = d.name.as_ref().map_or(&db.span, |n| &n.span).clone();
        let group = self.sql_group(name.clone(), OUTCOME_KIND, &name_span);
        let wait_group = self.sql_group(
            format!("{name}{POOL_WAIT_SUFFIX}"),
            OUTCOME_KIND,
            &name_span,
        );
        let isolation = d.isolation.as_ref().map(|i| match i.value {
            IsolationDoc::ReadUncommitted => Isolation::ReadUncommitted,
            IsolationDoc::ReadCommitted => Isolation::ReadCommitted,
            IsolationDoc::RepeatableRead => Isolation::RepeatableRead,
            IsolationDoc::Serializable => Isolation::Serializable,
        });
        let timeout = match &d.timeout {
            Some(t) => self.duration(t, false),
            None => Some(DEFAULT_TIMEOUT),
        };
        let steps = match &d.steps {
            None => {
                self.missing(
                    &step.span,
                    &["steps"],
                    "a `transaction` needs `steps:`, the `sql:` statements to run in it",
                );
                None
            }
            Some(list) => {
                let in_tx = database.map(|i| (i, db.value.as_str()));
                Some(self.transaction_statements(list, flow, in_tx))
            }
        };
        if self.problems.len() > before {
            return None;
        }
        let spec = TransactionSpec {
            protocol_index: self.sql.protocol_index,
            database: database?,
            group: group?,
            wait_group,
            timeout: timeout?,
            steps: steps?,
            isolation,
        };
        let protocol = self.sql.protocol.clone().or(self.sql.checker.clone())?;
        match protocol.build_transaction(spec) {
            Ok(exec) => Some(StepDraft::Exec(exec)),
            Err(e) => {
                self.error(&db.span, e.to_string());
                None
            }
        }
    }

    fn transaction_statements(
        &mut self,
        list: &Items<StepDoc>,
        flow: &mut FlowScope<'_>,
        in_tx: Option<(usize, &str)>,
    ) -> Vec<SqlStepSpec> {
        if list.value.is_empty() {
            self.error(
                &list.span,
                "`steps` is empty: a transaction needs at least one `sql:` statement",
            );
        }
        let mut specs = Vec::new();
        for inner in list.value.iter().filter_map(Lenient::get) {
            let db = match kinds(&inner.value).as_slice() {
                [Kind::Sql(db)] => *db,
                [] => {
                    self.missing(
                        &inner.span,
                        &["sql"],
                        "the steps of a transaction are `sql:` statements, e.g. `- sql: main` with `query:`",
                    );
                    continue;
                }
                [first, second, ..] => {
                    self.error(
                        second.span(),
                        format!(
                            "a step does one thing: found both `{}` and `{}`; split them into two steps",
                            first.key(),
                            second.key()
                        ),
                    );
                    continue;
                }
                [other] => {
                    self.error(
                        other.span(),
                        format!(
                            "a transaction holds `sql:` statements only: a `{}` step cannot run inside one",
                            other.key()
                        ),
                    );
                    continue;
                }
            };
            self.check_keys_fit("sql", inner);
            let Some(in_tx) = in_tx else {
                // The transaction's database is unknown (reported); still check
                // the statement's own keys.
                let _ = self.sql_statement(inner, db, flow, None);
                continue;
            };
            let Some((spec, at)) = self.sql_statement(inner, db, flow, Some(in_tx)) else {
                continue;
            };
            // Check the statement on its own, so a problem is shown at it.
            if let Some(checker) = self.sql.checker.clone() {
                if let Err(e) = checker.build_step(spec.clone()) {
                    self.error(&at, e.to_string());
                    continue;
                }
            }
            specs.push(spec);
        }
        specs
    }

    /// Reports the keys that do not belong with an `sql:` step or a
    /// `transaction`.
    pub(super) fn check_sql_keys_fit(&mut self, kind: &str, step: &Spanned<StepDoc>) {
        let d = &step.value;
        let whole = || step.span.clone();
        let http = "an HTTP request step";
        // A key, where it is written, and where it belongs.
        type Misplaced<'k> = (&'k str, Option<Span>, &'k str);
        let mut misplaced: Vec<Misplaced<'_>> = vec![
            ("headers", first_key(&d.headers), http),
            ("json", d.json.as_ref().map(|s| s.span.clone()), http),
            ("body", span_of(&d.body), http),
            ("form", d.form.as_ref().map(|s| s.span.clone()), http),
            (
                "follow_redirects",
                d.follow_redirects.map(|_| whole()),
                http,
            ),
            ("until", d.until.as_ref().map(|s| s.span.clone()), http),
            ("poll", d.poll.as_ref().map(|s| s.span.clone()), http),
        ];
        let own = "its `sql:` statements";
        let (what, more): (&str, Vec<Misplaced<'_>>) = if kind == SQL_KIND {
            (
                "an `sql:` step",
                vec![
                    ("steps", span_of(&d.steps), "a `loop` or a `transaction`"),
                    ("isolation", span_of(&d.isolation), "a `transaction`"),
                ],
            )
        } else {
            (
                "a `transaction`",
                vec![
                    ("query", span_of(&d.query), own),
                    ("params", span_of(&d.params), own),
                    ("check", d.check.as_ref().map(|_| whole()), own),
                    ("capture", first_key(&d.capture), own),
                ],
            )
        };
        misplaced.extend(more);
        for (key, span, belongs) in misplaced {
            if let Some(span) = span {
                self.error(
                    &span,
                    format!("`{key}` does not fit {what}: it belongs to {belongs}"),
                );
            }
        }
    }

    /// Fills the databases a `monitor:` block names with their URLs; an unknown
    /// name is an error, an SQLite database (no server statistics) a warning.
    pub(super) fn monitor_databases(
        &mut self,
        mut monitor: MonitorConfig,
        span: &Span,
    ) -> Option<MonitorConfig> {
        let mut watched = Vec::new();
        let mut ok = true;
        for name in std::mem::take(&mut monitor.database) {
            let found = self
                .sql
                .databases
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, spec)| spec.clone());
            match found {
                None => {
                    let known: Vec<&str> =
                        self.sql.databases.iter().map(|(n, _)| n.as_str()).collect();
                    let mut msg = format!("monitor.database: no database is called `{name}`");
                    if known.is_empty() {
                        msg.push_str(": the scenario has no `databases:`");
                    } else {
                        msg.push_str(&format!(": expected one of {}", quoted_list(&known)));
                    }
                    if let Some(s) = did_you_mean(&name, known.iter().copied()) {
                        msg.push_str(&format!("; did you mean `{s}`?"));
                    }
                    self.error(span, msg);
                    ok = false;
                }
                // Its settings are invalid (reported).
                Some(None) => ok = false,
                Some(Some(spec)) if spec.url.to_ascii_lowercase().starts_with("sqlite:") => {
                    self.warn(
                        span,
                        format!(
                            "monitor.database: `{name}` is SQLite, which has no server statistics to watch; it is not monitored"
                        ),
                    );
                }
                Some(Some(spec)) => {
                    monitor.databases.push(DatabaseMonitorSpec {
                        name: name.clone(),
                        url: spec.url,
                    });
                    watched.push(name);
                }
            }
        }
        monitor.database = watched;
        ok.then_some(monitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::build::{build, Built, Problem};

    /// The example of docs/database_load.md, with HTTP steps alongside.
    const EXAMPLE: &str = r#"target: http://127.0.0.1:8080
vars: { prefix: ll_t }
databases:
  main: { url: "postgres://app:hunter22@127.0.0.1/test", pool: 20 }
  cache: { url: "sqlite://data/cache.db", mode: per_vu }
setup:
  - sql: main
    query: "CREATE TABLE IF NOT EXISTS {{ prefix }}_accounts (id bigint primary key, balance bigint not null)"
teardown:
  - { sql: main, query: "DROP TABLE {{ prefix }}_accounts" }
monitor: { database: [main, cache] }
phases: [ { duration: 1s, vus: 1 } ]
thresholds:
  "latency{step:debit}": ["p95 < 50ms"]
flows:
  - name: transfer
    steps:
      - get: /health
      - transaction: main
        isolation: repeatable_read
        steps:
          - sql: main
            name: debit
            query: "UPDATE {{ prefix }}_accounts SET balance = balance - $1 WHERE id = $2 RETURNING balance"
            params: ["{{ $randint(1, 10) }}", 7]
            capture: { balance: { column: balance } }
            check: { rows: 1 }
          - sql: main
            query: "SELECT $1::bigint AS b"
            params: ["{{ balance }}"]
            check: { column: b, equals: 5, rows_at_least: 1 }
      - sql: cache
        query: SELECT 1
"#;

    fn built(text: &str) -> (Built, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        (build(text, dir.path()), dir)
    }

    fn problems(text: &str) -> Vec<Problem> {
        let (b, _dir) = built(text);
        assert!(b.draft.is_none());
        b.problems
    }

    #[test]
    fn the_example_builds_groups_setup_and_monitored_databases() {
        let (b, dir) = built(EXAMPLE);
        assert!(b.problems.is_empty(), "{:#?}", b.problems);
        let d = b.draft.unwrap();
        let groups: Vec<(&str, &str)> = d
            .groups
            .iter()
            .map(|g| (g.name.as_str(), g.kind.as_str()))
            .collect();
        assert_eq!(
            groups,
            [
                ("GET /health", "http"),
                ("transaction main", OUTCOME_KIND),
                ("transaction main (pool wait)", OUTCOME_KIND),
                ("debit", SQL_KIND),
                ("SQL SELECT $1::bigint AS b", SQL_KIND),
                ("SQL SELECT 1", SQL_KIND),
                ("SQL SELECT 1 (pool wait)", OUTCOME_KIND),
            ]
        );
        assert_eq!(d.thresholds[0].group, Some(3));
        let sql = d.sql.clone().unwrap();
        assert_eq!(sql.protocol.database_index("cache"), Some(1));
        assert_eq!(
            sql.setup,
            [SetupStatement {
                database: 0,
                query: "CREATE TABLE IF NOT EXISTS ll_t_accounts (id bigint primary key, balance bigint not null)".into()
            }]
        );
        assert_eq!(sql.teardown[0].query, "DROP TABLE ll_t_accounts");
        // The statements are built on the SQL protocol, second after HTTP's;
        // the plain number stays a number.
        let shown = format!("{:?}", d.flows[0].steps[1]);
        assert!(shown.contains("protocol_index: 1"), "{shown}");
        assert!(shown.contains("Const(Number(7))"), "{shown}");
        assert!(shown.contains("isolation: Some(RepeatableRead)"), "{shown}");
        assert!(!shown.contains("hunter22"), "{shown}");
        // SQLite is not watched (a warning); PostgreSQL is, with its URL.
        let monitor = d.monitor.as_ref().unwrap();
        assert_eq!(monitor.database, ["main"]);
        assert_eq!(
            monitor.databases[0].url,
            "postgres://app:hunter22@127.0.0.1/test"
        );
        assert!(
            b.warnings[0].message.contains("`cache` is SQLite"),
            "{:?}",
            b.warnings
        );
        let plan = d.into_plan("x.yaml".into());
        assert_eq!(plan.protocols.len(), 2);
        assert_eq!(plan.protocols[1].name(), "sql");
        drop(dir);
    }

    #[test]
    fn sql_only_scenarios_put_sql_first_and_files_beside_the_scenario() {
        let (b, dir) = built(
            "databases: { lite: { url: \"sqlite://x.db\" } }\nphases: [ { vus: 1, iterations: 1 } ]\nflows: [ { steps: [ { sql: lite, query: \"SELECT 1\" } ] } ]\n",
        );
        assert!(b.problems.is_empty(), "{:#?}", b.problems);
        let d = b.draft.unwrap();
        let shown = format!("{:?}", d.flows[0].steps[0]);
        assert!(shown.contains("protocol_index: 0"), "{shown}");
        let plan = d.into_plan("x.yaml".into());
        assert_eq!(plan.protocols.len(), 1);
        let path = dir.path().join("x.db").display().to_string();
        assert!(format!("{plan:?}").contains(&path), "{plan:?}");
    }

    #[test]
    fn mistakes_are_located_and_passwords_never_shown() {
        let text = r#"databases:
  main: { url: "postgres://app:hunter22@127.0.0.1/test" }
  bad: { url: "redis://u:hunter22@h/0", pool: 0 }
setup:
  - { sql: mian, query: "CREATE TABLE t (id int)" }
phases: [ { duration: 1s, vus: 1 } ]
monitor: { database: nope }
flows:
  - steps:
      - sql: main
        query: "SELECT $1, $2"
        params: [1]
      - sql: main
        query: { a: b }
      - sql: main
        query: SELECT 1 AS a
        check: { status: 200, column: a }
        capture: { a: { json: "$.a" }, b: {} }
      - get: http://127.0.0.1/
        query: "SELECT 1"
        check: { rows: 1 }
      - think: 1s
        params: [1]
      - transaction: main
        steps:
          - get: http://127.0.0.1/
          - sql: other
            query: SELECT 1
        check: { rows: 1 }
      - sql: main
        params: [[1, 2]]
"#;
        let found: Vec<(usize, usize, String)> = problems(text)
            .into_iter()
            .map(|p| (p.mark.line, p.mark.column, p.message))
            .collect();
        let at = |line: usize, words: &str| {
            assert!(
                found
                    .iter()
                    .any(|(l, _, m)| *l == line && m.contains(words)),
                "line {line}: `{words}` not in {found:#?}"
            );
        };
        at(3, "expected an integer from 1 to 10000, found 0");
        at(3, "expected postgres://, mysql://, mariadb:// or sqlite://");
        at(
            5,
            "no database is called `mian`: expected one of `main`, `bad`",
        );
        at(5, "did you mean `main`?");
        at(7, "monitor.database: no database is called `nope`");
        at(
            12,
            "the query uses 2 parameters ($1…$2) but the step gives 1 params",
        );
        at(
            14,
            "the `query` of an `sql:` step is its SQL text, found a mapping",
        );
        at(17, "`status` checks an HTTP response");
        at(17, "`column` needs `equals`");
        at(18, "`json` captures from an HTTP response");
        at(18, "a capture of an `sql:` step needs `column: NAME`");
        at(
            20,
            "the `query` of an HTTP step is a mapping of query parameters",
        );
        at(21, "`rows` checks the result of an `sql:` step");
        at(
            23,
            "`params` does not fit a `think` step: it belongs to an `sql:` step",
        );
        at(
            26,
            "a transaction holds `sql:` statements only: a `get` step cannot run inside one",
        );
        at(27, "no database is called `other`");
        at(
            24,
            "`check` does not fit a `transaction`: it belongs to its `sql:` statements",
        );
        at(30, "an `sql:` step needs `query:`");
        at(31, "a parameter is one value");
        for (_, _, m) in &found {
            assert!(!m.contains("hunter22"), "{m}");
        }
    }

    #[test]
    fn urls_and_setup_are_read_once_and_names_keep_to_one_kind() {
        let text = r#"databases:
  main: { url: "postgres://{{ $uuid() }}@127.0.0.1/test" }
setup:
  - { sql: main, query: "SELECT {{ $vu }}" }
phases: [ { duration: 1s, vus: 1 } ]
flows:
  - steps:
      - get: http://127.0.0.1/
        name: same
      - sql: main
        name: same
        query: SELECT 1
      - transaction: main
        steps:
          - { sql: main, query: "SELECT 1", name: other }
          - { sql: main, query: "SELECT 2", name: other, timeout: soon }
"#;
        let found: Vec<(usize, String)> = problems(text)
            .into_iter()
            .map(|p| (p.mark.line, p.message))
            .collect();
        let at = |line: usize, words: &str| {
            assert!(
                found.iter().any(|(l, m)| *l == line && m.contains(words)),
                "line {line}: `{words}` not in {found:#?}"
            );
        };
        at(2, "a database URL is read once, before the load");
        at(4, "a `setup` query is read once, before the load");
        at(
            11,
            "the name `same` is used by an HTTP request and by an SQL statement",
        );
        at(16, "soon");
    }

    #[test]
    fn default_names_keep_the_first_words() {
        assert_eq!(
            default_name("SELECT balance\n  FROM accounts WHERE id = $1"),
            "SQL SELECT balance FROM accounts WHERE id = $1"
        );
        assert_eq!(
            default_name(
                "UPDATE accounts SET balance = balance - $1 WHERE id = $2 RETURNING balance"
            ),
            "SQL UPDATE accounts SET balance = balance - $1…"
        );
    }

    #[test]
    fn sqlite_paths_are_relative_to_the_scenario() {
        let base = Path::new("/tmp/sc");
        assert_eq!(
            sqlite_relative_to("sqlite://data/x.db", base),
            "sqlite:///tmp/sc/data/x.db"
        );
        assert_eq!(
            sqlite_relative_to("sqlite:x.db?mode=rwc", base),
            "sqlite:///tmp/sc/x.db?mode=rwc"
        );
        for kept in [
            "sqlite:///abs/x.db",
            "sqlite::memory:",
            "postgres://h/db",
            "sqlite://:memory:",
        ] {
            assert_eq!(sqlite_relative_to(kept, base), kept);
        }
    }
}

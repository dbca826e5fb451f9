//! SQL steps from their documents: the `databases:` (each URL checked where it
//! is written), the `setup:` and `teardown:` statements, `sql:` statement steps
//! and `transaction:` steps, and the databases a `monitor:` block may watch.
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

use loadline_core::build::{BuildCtx, Span};
use loadline_core::plan::OUTCOME_KIND;
use loadline_core::protocol::{Slot, StepExec};
use loadline_core::template::Template;
use loadline_doc::de::{self as doc_de, Entries, Items, Lenient, Raw, Spanned};
use loadline_doc::suggest::{did_you_mean, quoted_list};
use loadline_doc::value::{plain_value, JsonDoc};
use schemars::SchemaGenerator;

use super::doc::{
    CaptureDoc, CheckDoc, DatabaseDoc, IsolationDoc, PoolModeDoc, QueryDoc, SetupDoc, SqlStepDoc,
    TransactionDoc,
};
use super::{
    DatabaseSpec, Isolation, PoolMode, SetupStatement, SqlCapture, SqlCheck, SqlCheckSpec,
    SqlMetrics, SqlProtocol, SqlStepSpec, TransactionSpec, VuState,
};
use crate::registry::{
    NamedDatabase, ProtocolBuilder, ProtocolEntry, Scenario, Section, StepDocument, StepKind,
};

/// The kind of a statement's metric group.
pub const SQL_KIND: &str = "sql";
/// The suffix of the outcome group that gets a step's waits for a connection.
pub const POOL_WAIT_SUFFIX: &str = " (pool wait)";
const DEFAULT_POOL: i64 = 10;
const MAX_POOL: i64 = 10_000;
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// A default statement name is at most this many characters (then `…`).
const NAME_CHARS: usize = 48;

const SQL_STEP: StepKind = StepKind {
    key: "sql",
    described: "an `sql:` step",
};
const TRANSACTION_STEP: StepKind = StepKind {
    key: "transaction",
    described: "a `transaction`",
};

/// SQL on PostgreSQL, MySQL/MariaDB and SQLite: steps `sql` and `transaction`,
/// sections `databases`, `setup` and `teardown`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sql;

impl ProtocolEntry for Sql {
    fn name(&self) -> &'static str {
        "sql"
    }

    fn docs(&self) -> Option<&'static str> {
        Some("docs/database_load.md")
    }

    fn steps(&self, generator: &mut SchemaGenerator) -> Vec<StepDocument> {
        vec![
            StepDocument {
                kinds: vec![SQL_STEP],
                schema: generator.subschema_for::<SqlStepDoc>(),
            },
            StepDocument {
                kinds: vec![TRANSACTION_STEP],
                schema: generator.subschema_for::<TransactionDoc>(),
            },
        ]
    }

    fn sections(&self, generator: &mut SchemaGenerator) -> Vec<Section> {
        vec![
            Section {
                key: "databases",
                description: "SQL databases, by the name `sql:` and `transaction:` steps use.",
                schema: generator
                    .subschema_for::<std::collections::BTreeMap<String, DatabaseDoc>>(),
            },
            Section {
                key: "setup",
                description: "SQL statements run once, in order, before the load.",
                schema: generator.subschema_for::<Vec<SetupDoc>>(),
            },
            Section {
                key: "teardown",
                description: "SQL statements run once, in order, after the load (also after a failed or interrupted one).",
                schema: generator.subschema_for::<Vec<SetupDoc>>(),
            },
        ]
    }

    fn begin(&self, scenario: &Scenario, ctx: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder> {
        let mut b = SqlBuilder::default();
        b.databases_section(ctx, scenario);
        Box::new(b)
    }
}

/// One scenario's databases and SQL steps.
#[derive(Default)]
struct SqlBuilder {
    /// Each database by name, with its spec when its settings are valid.
    databases: Vec<(String, Option<DatabaseSpec>)>,
    /// The plan's SQL protocol, when every database is valid.
    protocol: Option<Arc<SqlProtocol>>,
    /// Checks steps: every database, an invalid one standing in as an
    /// in-memory SQLite one, so that steps are checked all the same.
    checker: Option<Arc<SqlProtocol>>,
    slot: Option<Slot<VuState>>,
}

impl ProtocolBuilder for SqlBuilder {
    fn step(
        &mut self,
        kind: &str,
        step: &Raw,
        ctx: &mut dyn BuildCtx,
    ) -> Option<Arc<dyn StepExec>> {
        match kind {
            "transaction" => {
                let doc = doc_de::read::<TransactionDoc>(step, ctx)?;
                self.transaction_step(ctx, step, &doc)
            }
            _ => {
                let doc = doc_de::read::<SqlStepDoc>(step, ctx)?;
                self.sql_step(ctx, step, &doc)
            }
        }
    }

    fn databases(&self) -> Vec<NamedDatabase> {
        self.databases
            .iter()
            .map(|(name, spec)| NamedDatabase {
                name: name.clone(),
                url: spec.as_ref().map(|s| s.url.clone()),
                monitor: "database",
                unwatchable: spec
                    .as_ref()
                    .filter(|s| s.url.to_ascii_lowercase().starts_with("sqlite:"))
                    .map(|_| "SQLite, which has no server statistics to watch".into()),
            })
            .collect()
    }
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

impl SqlBuilder {
    /// Reads `databases:`, `setup:` and `teardown:`, and joins the plan when
    /// there are databases.
    fn databases_section(&mut self, ctx: &mut dyn BuildCtx, scenario: &Scenario) {
        type DatabasesDoc = Entries<Lenient<Spanned<DatabaseDoc>>>;
        let entries = scenario
            .section("databases")
            .and_then(|raw| doc_de::read::<DatabasesDoc>(raw, ctx));
        for (key, entry) in entries.iter().flat_map(|e| e.0.iter()) {
            if !is_database_name(&key.value) {
                ctx.error(
                    &key.span,
                    format!(
                        "`{}` cannot name a database: use letters, digits, `_` and `-`, such as `main`",
                        key.value
                    ),
                );
            }
            let spec = entry.get().and_then(|d| self.database(ctx, &key.value, d));
            self.databases.push((key.value.clone(), spec));
        }
        // The checker has every database, an invalid one standing in as an
        // in-memory SQLite one, so that steps are checked all the same.
        let stand_ins: Vec<DatabaseSpec> = self
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
            self.checker = SqlProtocol::new(stand_ins).ok();
        }
        let setup = self.setup_list(ctx, scenario.section("setup"), "setup");
        let teardown = self.setup_list(ctx, scenario.section("teardown"), "teardown");
        let specs: Option<Vec<DatabaseSpec>> =
            self.databases.iter().map(|(_, s)| s.clone()).collect();
        if let Some(specs) = specs.filter(|s| !s.is_empty()) {
            let metrics = SqlMetrics::declare(ctx);
            // Each URL was read already, where it is written.
            if let Ok(protocol) = SqlProtocol::with(specs, setup, teardown, metrics) {
                self.slot = Some(ctx.add_typed_protocol(protocol.clone()));
                self.protocol = Some(protocol);
            }
        }
    }

    fn database(
        &mut self,
        ctx: &mut dyn BuildCtx,
        name: &str,
        doc: &Spanned<DatabaseDoc>,
    ) -> Option<DatabaseSpec> {
        let d = &doc.value;
        let url = fixed_text(ctx, &d.url, "a database URL");
        let mode = match d.mode.as_ref().map(|m| m.value) {
            None | Some(PoolModeDoc::Shared) => PoolMode::Shared,
            Some(PoolModeDoc::PerVu) => PoolMode::PerVu,
        };
        let pool = match &d.pool {
            Some(p) => {
                if mode == PoolMode::PerVu {
                    ctx.warn(
                        &p.span,
                        "`pool` is unused with `mode: per_vu`: each VU opens one connection of its own",
                    );
                }
                ctx.int_in(p.value, &p.span, 1, MAX_POOL)
            }
            None => Some(DEFAULT_POOL as u64),
        };
        let mut spec = DatabaseSpec {
            name: name.to_owned(),
            url: sqlite_relative_to(&url?, ctx.base_dir()),
            pool: 1,
            mode,
        };
        // Read the URL now, so that its mistakes are shown where it is written
        // (with any password replaced by `***`).
        if let Err(e) = SqlProtocol::new(vec![spec.clone()]) {
            ctx.error(&d.url.span, e.to_string());
            return None;
        }
        spec.pool = u32::try_from(pool?).ok()?;
        Some(spec)
    }

    fn setup_list(
        &mut self,
        ctx: &mut dyn BuildCtx,
        section: Option<&Raw>,
        what: &str,
    ) -> Vec<SetupStatement> {
        let Some(list) = section.and_then(|raw| doc_de::read::<Items<SetupDoc>>(raw, ctx)) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for item in list.value.iter().filter_map(Lenient::get) {
            let database = self.database_index(ctx, &item.value.sql);
            let query = fixed_text(ctx, &item.value.query, &format!("a `{what}` query"));
            if let (Some(database), Some(query)) = (database, query) {
                out.push(SetupStatement { database, query });
            }
        }
        out
    }

    /// The index of the database a step or statement names.
    fn database_index(&mut self, ctx: &mut dyn BuildCtx, name: &Spanned<String>) -> Option<usize> {
        if let Some(i) = self.databases.iter().position(|(n, _)| *n == name.value) {
            return Some(i);
        }
        let known: Vec<&str> = self.databases.iter().map(|(n, _)| n.as_str()).collect();
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
        ctx.error(&name.span, msg);
        None
    }

    /// The slot steps are built with: the protocol's, or (when a database is
    /// invalid, reported) a stand-in so that steps are still checked.
    fn slot(&self) -> Slot<VuState> {
        self.slot.unwrap_or(Slot::new(usize::MAX))
    }

    /// An `sql:` step (not in a transaction).
    fn sql_step(
        &mut self,
        ctx: &mut dyn BuildCtx,
        step: &Raw,
        doc: &SqlStepDoc,
    ) -> Option<Arc<dyn StepExec>> {
        let (spec, at) = self.sql_statement(ctx, step, doc, None)?;
        // With an invalid database (reported), check the step all the same.
        let protocol = self.protocol.clone().or(self.checker.clone())?;
        match protocol.build_step(spec) {
            Ok(exec) => Some(exec),
            Err(e) => {
                ctx.error(&at, e.to_string());
                None
            }
        }
    }

    /// A statement's spec, and where a problem with its placeholders is shown.
    /// `in_tx`: the transaction's database (index and name), when inside one.
    fn sql_statement(
        &mut self,
        ctx: &mut dyn BuildCtx,
        step: &Raw,
        d: &SqlStepDoc,
        in_tx: Option<(usize, &str)>,
    ) -> Option<(SqlStepSpec, Span)> {
        let before = ctx.error_count();
        let db = &d.sql;
        let database = self.database_index(ctx, db);
        if let (Some(index), Some((tx_db, tx_name))) = (database, in_tx) {
            if index != tx_db {
                ctx.error(
                    &db.span,
                    format!(
                        "the statements of a transaction run on its database `{tx_name}`: this one names `{}`",
                        db.value
                    ),
                );
            }
        }
        let query = match &d.query {
            None => {
                ctx.missing(
                    &step.span(),
                    &["query"],
                    "an `sql:` step needs `query:`, the SQL statement to run",
                );
                None
            }
            Some(q) => match &q.value {
                QueryDoc::Sql(text) => ctx.template(text, &q.span).map(|t| (t, text.as_str())),
                QueryDoc::Mapping => {
                    ctx.error(
                        &q.span,
                        "the `query` of an `sql:` step is its SQL text, found a mapping (query parameters belong to HTTP steps)",
                    );
                    None
                }
            },
        };
        let params = match &d.params {
            Some(p) => sql_params(ctx, p),
            None => Some(Vec::new()),
        };
        let name = match (&d.name, &query) {
            (Some(n), _) => Some(n.value.clone()),
            (None, Some((_, text))) => Some(default_name(text)),
            (None, None) => None,
        };
        let name_span = d.name.as_ref().map_or(&db.span, |n| &n.span).clone();
        let group = name
            .clone()
            .and_then(|n| ctx.group(n, SQL_KIND, &name_span));
        let wait_group = match (&name, in_tx) {
            (Some(n), None) => {
                ctx.group(format!("{n}{POOL_WAIT_SUFFIX}"), OUTCOME_KIND, &name_span)
            }
            _ => None,
        };
        let checks = d
            .check
            .as_ref()
            .map(|c| sql_checks(ctx, c))
            .unwrap_or_default();
        let timeout = match &d.timeout {
            Some(t) => ctx.duration(&t.value, &t.span, false),
            None => Some(DEFAULT_TIMEOUT),
        };
        // Captures become known to the steps after this one, even when this one
        // has errors, so that one mistake does not cascade.
        let captures = d
            .capture
            .as_ref()
            .map(|c| sql_captures(ctx, c))
            .unwrap_or_default();
        if ctx.error_count() > before {
            return None;
        }
        let at = match (&d.params, &d.query) {
            (Some(p), _) => p.span.clone(),
            (None, Some(q)) => q.span.clone(),
            (None, None) => step.span(),
        };
        let spec = SqlStepSpec {
            slot: self.slot(),
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

    /// A `transaction:` step.
    fn transaction_step(
        &mut self,
        ctx: &mut dyn BuildCtx,
        step: &Raw,
        d: &TransactionDoc,
    ) -> Option<Arc<dyn StepExec>> {
        let before = ctx.error_count();
        let db = &d.transaction;
        let database = self.database_index(ctx, db);
        let name = d
            .name
            .as_ref()
            .map_or_else(|| format!("transaction {}", db.value), |n| n.value.clone());
        let name_span = d.name.as_ref().map_or(&db.span, |n| &n.span).clone();
        let group = ctx.group(name.clone(), OUTCOME_KIND, &name_span);
        let wait_group = ctx.group(
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
            Some(t) => ctx.duration(&t.value, &t.span, false),
            None => Some(DEFAULT_TIMEOUT),
        };
        let steps = match &d.steps {
            None => {
                ctx.missing(
                    &step.span(),
                    &["steps"],
                    "a `transaction` needs `steps:`, the `sql:` statements to run in it",
                );
                None
            }
            Some(list) => {
                let in_tx = database.map(|i| (i, db.value.as_str()));
                Some(self.transaction_statements(ctx, list, in_tx))
            }
        };
        if ctx.error_count() > before {
            return None;
        }
        let spec = TransactionSpec {
            slot: self.slot(),
            database: database?,
            group: group?,
            wait_group,
            timeout: timeout?,
            steps: steps?,
            isolation,
        };
        let protocol = self.protocol.clone().or(self.checker.clone())?;
        match protocol.build_transaction(spec) {
            Ok(exec) => Some(exec),
            Err(e) => {
                ctx.error(&db.span, e.to_string());
                None
            }
        }
    }

    fn transaction_statements(
        &mut self,
        ctx: &mut dyn BuildCtx,
        list: &Items<Raw>,
        in_tx: Option<(usize, &str)>,
    ) -> Vec<SqlStepSpec> {
        if list.value.is_empty() {
            ctx.error(
                &list.span,
                "`steps` is empty: a transaction needs at least one `sql:` statement",
            );
        }
        let mut specs = Vec::new();
        for inner in list.value.iter().filter_map(Lenient::get) {
            let raw = &inner.value;
            if raw.get("sql").is_none() {
                // A misspelt `sql` is said as such; another kind of step is
                // named; anything else is told what a transaction holds.
                let mut misspelt = false;
                for (key, key_node, _) in raw.entries() {
                    if did_you_mean(key, ["sql"]).is_some() {
                        ctx.error_at(
                            key_node.mark,
                            &loadline_doc::de::child_key_path(&raw.path, key),
                            format!("unknown key `{key}`; did you mean `sql`?"),
                        );
                        misspelt = true;
                    }
                }
                if misspelt {
                    continue;
                }
                let other = raw
                    .entries()
                    .map(|(k, _, _)| k)
                    .find(|k| ctx.is_step_kind(k));
                match other {
                    Some(kind) => ctx.error(
                        &raw.get(kind).map_or_else(|| raw.span(), |r| r.span()),
                        format!(
                            "a transaction holds `sql:` statements only: a `{kind}` step cannot run inside one"
                        ),
                    ),
                    None => ctx.missing(
                        &raw.span(),
                        &["sql"],
                        "the steps of a transaction are `sql:` statements, e.g. `- sql: main` with `query:`",
                    ),
                }
                continue;
            }
            let Some(doc) = doc_de::read::<SqlStepDoc>(raw, ctx) else {
                continue;
            };
            let Some(in_tx) = in_tx else {
                // The transaction's database is unknown (reported); still check
                // the statement's own keys.
                let _ = self.sql_statement(ctx, raw, &doc, None);
                continue;
            };
            let Some((spec, at)) = self.sql_statement(ctx, raw, &doc, Some(in_tx)) else {
                continue;
            };
            // Check the statement on its own, so a problem is shown at it.
            if let Some(checker) = self.checker.clone() {
                if let Err(e) = checker.build_step(spec.clone()) {
                    ctx.error(&at, e.to_string());
                    continue;
                }
            }
            specs.push(spec);
        }
        specs
    }
}

/// A template that may use vars and `$env` only, as its text.
fn fixed_text(ctx: &mut dyn BuildCtx, text: &Spanned<String>, what: &str) -> Option<String> {
    let t = ctx.fixed_template(&text.value, &text.span)?;
    match t.static_text() {
        Some(s) => Some(s.to_owned()),
        None => {
            ctx.error(
                &text.span,
                format!(
                    "{what} is read once, before the load: it can use vars and `{{{{ $env.NAME }}}}`, not values that change per iteration"
                ),
            );
            None
        }
    }
}

/// Parameters: strings are templates, other scalars keep their type.
fn sql_params(
    ctx: &mut dyn BuildCtx,
    list: &Spanned<Vec<Spanned<JsonDoc>>>,
) -> Option<Vec<Template>> {
    let mut out = Vec::new();
    let mut ok = true;
    for p in &list.value {
        let value = match &p.value {
            JsonDoc::Str(s) => {
                match ctx.template(s, &p.span) {
                    Some(t) => out.push(t),
                    None => ok = false,
                }
                continue;
            }
            JsonDoc::Seq(_) | JsonDoc::Map(_) => {
                ctx.error(
                    &p.span,
                    "a parameter is one value: to pass JSON, write it as a string (e.g. '{\"a\": 1}')",
                );
                ok = false;
                continue;
            }
            _ => match plain_value(ctx, p) {
                Some(v) => v,
                None => {
                    ok = false;
                    continue;
                }
            },
        };
        out.push(Template::constant(value));
    }
    ok.then_some(out)
}

fn sql_checks(ctx: &mut dyn BuildCtx, doc: &CheckDoc) -> Vec<SqlCheckSpec> {
    let mut checks = Vec::new();
    type Count<'d> = (&'d Option<Spanned<i64>>, fn(u64) -> SqlCheck);
    let counts: [Count<'_>; 3] = [
        (&doc.rows, SqlCheck::Rows),
        (&doc.rows_at_least, SqlCheck::RowsAtLeast),
        (&doc.rows_at_most, SqlCheck::RowsAtMost),
    ];
    for (given, check) in counts {
        if let Some(n) = given
            .as_ref()
            .and_then(|n| ctx.int_in(n.value, &n.span, 0, i64::MAX))
        {
            checks.push(check(n));
        }
    }
    match (&doc.column, &doc.equals) {
        (Some(column), Some(equals)) => {
            if let Some(v) = plain_value(ctx, equals) {
                checks.push(SqlCheck::Column {
                    column: column.value.clone(),
                    equals: v,
                });
            }
        }
        (Some(column), None) => ctx.error(
            &column.span,
            "`column` needs `equals`: the value the first row's column must have",
        ),
        (None, Some(equals)) => ctx.error(
            &equals.span,
            "`equals` goes with `column`: name the column whose value it is",
        ),
        (None, None) => {}
    }
    checks
        .into_iter()
        .map(|check: SqlCheck| SqlCheckSpec {
            id: ctx.check(&check.label()),
            check,
        })
        .collect()
}

fn sql_captures(
    ctx: &mut dyn BuildCtx,
    entries: &Entries<Lenient<Spanned<CaptureDoc>>>,
) -> Vec<SqlCapture> {
    let column = |ctx: &mut dyn BuildCtx, d: &Spanned<CaptureDoc>| match &d.value.column {
        Some(c) => Some(c.value.clone()),
        None => {
            ctx.missing(
                &d.span,
                &["column"],
                "a capture of an `sql:` step needs `column: NAME`, a column of its first row",
            );
            None
        }
    };
    crate::capture::read(ctx, entries, column)
        .into_iter()
        .map(|(slot, name, column)| SqlCapture { slot, name, column })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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

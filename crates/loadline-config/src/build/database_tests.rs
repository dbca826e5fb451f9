//! Scenarios with databases, built: the SQL protocol's sections and steps read
//! through the registry, every mistake located where it was written.

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::any::Any;

    use loadline_core::plan::{Step, OUTCOME_KIND};
    use loadline_protocols::sql::SqlProtocol;

    use crate::build::{build, Built, Problem};

    const SQL_KIND: &str = "sql";

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
        // The SQL protocol joined the plan with its databases, before the first
        // HTTP step brought HTTP's; it runs setup and teardown itself.
        assert_eq!(d.protocols[0].name(), "sql");
        let any: &dyn Any = d.protocols[0].as_ref();
        let sql = any.downcast_ref::<SqlProtocol>().unwrap();
        assert_eq!(sql.database_index("cache"), Some(1));
        assert_eq!(
            d.protocols[0].describe(),
            ["databases (2): main, cache; setup 1 statement(s), teardown 1 (not connected: `run` connects first)"]
        );
        let debug = format!("{sql:?}");
        assert!(
            debug.contains("CREATE TABLE IF NOT EXISTS ll_t_accounts (id bigint primary key, balance bigint not null)"),
            "{debug}"
        );
        assert!(debug.contains("DROP TABLE ll_t_accounts"), "{debug}");
        // The statements are built on the SQL protocol's slot; the plain number
        // stays a number.
        let Step::Exec(tx) = &d.flows[0].steps[1] else {
            panic!("not a step")
        };
        let shown = format!("{tx:?}");
        assert!(shown.contains("slot: Slot(0)"), "{shown}");
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
        assert_eq!(plan.protocols[1].name(), "http");
        // SQL's error classes and its rows counter were declared to the plan.
        assert!(plan.error_classes.iter().any(|c| c == "deadlock"));
        assert_eq!(plan.counters, ["rows"]);
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
        assert!(shown.contains("slot: Slot(0)"), "{shown}");
        let plan = d.into_plan("x.yaml".into());
        assert_eq!(plan.protocols.len(), 1);
        let path = dir.path().join("x.db").display().to_string();
        assert!(format!("{plan:?}").contains(&path), "{plan:?}");
    }

    #[test]
    fn each_server_is_watched_by_the_monitor_its_protocol_names() {
        let (b, _dir) = built(
            "databases: { main: { url: \"postgres://127.0.0.1/test\" } }\nredis: { cache: { url: \"redis://127.0.0.1:6379\" } }\nmonitor: { database: [main, cache], redis: [cache, main] }\nphases: [ { vus: 1, iterations: 1 } ]\nflows: [ { steps: [ { sql: main, query: \"SELECT 1\" } ] } ]\n",
        );
        let says = |needle: &str| {
            b.warnings
                .iter()
                .chain(&b.problems)
                .any(|p| p.message.contains(needle))
        };
        assert!(
            says("`cache` is watched with `monitor: { redis: cache }`"),
            "{:#?} {:#?}",
            b.warnings,
            b.problems
        );
        assert!(
            says("`main` is not a Redis server: watch it with `monitor: { database: main }`"),
            "{:#?}",
            b.problems
        );
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
        at(
            17,
            "unknown key `status`, expected one of rows, rows_at_least",
        );
        at(17, "`column` needs `equals`");
        at(18, "unknown key `json`, expected one of column");
        at(18, "a capture of an `sql:` step needs `column: NAME`");
        at(
            20,
            "the `query` of an HTTP step is a mapping of query parameters",
        );
        at(
            21,
            "unknown key `rows`, expected one of status, body_contains, header",
        );
        at(
            23,
            "`params` does not fit a `think` step: it belongs to an `sql:` step",
        );
        at(
            26,
            "a transaction holds `sql:` statements only: a `get` step cannot run inside one",
        );
        at(27, "no database is called `other`");
        // At the key itself.
        at(
            29,
            "`check` does not fit a `transaction` step: it belongs to an HTTP request step or an `sql:` step",
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
            "the name `same` is used by `http` steps and by `sql` steps",
        );
        at(16, "soon");
    }
}

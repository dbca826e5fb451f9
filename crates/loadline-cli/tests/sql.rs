//! SQL scenarios end to end: the real binary against SQLite (a file in a
//! temporary folder), and the PostgreSQL and MariaDB on this machine (loopback).
//! A test whose server is not reachable says so and passes, unless
//! `LOADLINE_REQUIRE_SERVICES=1`, when it fails. Every test works on tables of
//! its own (random suffix) and drops them; every run is bounded in iterations
//! and seconds.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Connection;

use crate::util::*;

const PG_PORT: u16 = 5432;
const MY_PORT: u16 = 3306;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
    MariaDb,
}

impl Backend {
    /// Whether the database can be used; when it cannot, the test is skipped
    /// with a printed reason, or fails when `LOADLINE_REQUIRE_SERVICES=1`.
    fn available(self, test: &str) -> bool {
        let (name, port) = match self {
            Backend::Sqlite => return true,
            Backend::Postgres => ("PostgreSQL", PG_PORT),
            Backend::MariaDb => ("MariaDB", MY_PORT),
        };
        if reachable(port) {
            return true;
        }
        let reason = format!("{name} not reachable on 127.0.0.1:{port}");
        if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("LOADLINE_REQUIRE_SERVICES=1 but {reason}");
        }
        eprintln!("skipped {test}: {reason}");
        false
    }

    /// The database's URL as the scenario writes it (SQLite: relative to the
    /// scenario's folder).
    fn url(self) -> String {
        match self {
            Backend::Sqlite => "sqlite://test.db".into(),
            Backend::Postgres => std::env::var("LOADLINE_TEST_PG_URL")
                .unwrap_or_else(|_| format!("postgres://postgres@127.0.0.1:{PG_PORT}/test")),
            Backend::MariaDb => std::env::var("LOADLINE_TEST_MYSQL_URL")
                .unwrap_or_else(|_| format!("mariadb://root@127.0.0.1:{MY_PORT}/test")),
        }
    }

    /// Pauses a statement this many seconds.
    fn sleep(self, seconds: f64) -> String {
        match self {
            Backend::Postgres => format!("SELECT pg_sleep({seconds})"),
            Backend::MariaDb => format!("SELECT SLEEP({seconds})"),
            Backend::Sqlite => unreachable!("SQLite has no sleep"),
        }
    }

    /// One statement's result straight from the database, not through
    /// loadline (SQLite: the file in `sc`'s folder).
    fn scalar(self, sc: &Scenario, sql: &str) -> i64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            match self {
                Backend::Postgres => {
                    let mut c = sqlx::PgConnection::connect(&self.url()).await.unwrap();
                    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
                }
                Backend::MariaDb => {
                    let url = self.url().replacen("mariadb:", "mysql:", 1);
                    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
                    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
                }
                Backend::Sqlite => {
                    let url = format!("sqlite://{}", sc.out("test.db").display());
                    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
                    sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
                }
            }
        })
    }

    /// Runs plain statements on the server at `url` (a test's own set-up and
    /// clean-up).
    fn exec(self, url: &str, statements: &[&str]) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            match self {
                Backend::Postgres => {
                    let mut c = sqlx::PgConnection::connect(url).await.unwrap();
                    for s in statements {
                        sqlx::raw_sql(s).execute(&mut c).await.unwrap();
                    }
                }
                Backend::MariaDb => {
                    let url = url.replacen("mariadb:", "mysql:", 1);
                    let mut c = sqlx::MySqlConnection::connect(&url).await.unwrap();
                    for s in statements {
                        sqlx::raw_sql(s).execute(&mut c).await.unwrap();
                    }
                }
                Backend::Sqlite => unreachable!("SQLite tests read their file"),
            }
        })
    }
}

/// A table name of this test run.
fn table(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("ll_e2e_{what}_{:x}{:x}", std::process::id(), nanos)
}

/// Runs the scenario with `--summary-json` (and `extra` flags); returns the
/// output and the summary, failing the test when no summary was written.
fn run_ok(sc: &Scenario, extra: &[&str]) -> (std::process::Output, Value) {
    let (out, summary) = run_scenario(sc, extra);
    let summary = summary.unwrap_or_else(|| panic!("no summary: {}", text(&out)));
    (out, summary)
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// Inserts into a table from 8 VUs, a quarter of them refused as duplicates:
/// loadline's successful inserts are exactly the rows the table holds after.
fn inserts_match_the_table(db: Backend) {
    if !db.available(&format!("inserts_match_the_table ({db:?})")) {
        return;
    }
    let t = table("ins");
    let sc = Scenario::new(&format!(
        r#"
databases:
  main: {{ url: "{url}", pool: 4 }}
setup:
  - sql: main
    query: "CREATE TABLE {t} (id bigint primary key, note varchar(40) not null)"
phases: [ {{ vus: 8, iterations: 400, duration: 30s }} ]
thresholds:
  errors: ["rate < 50%"]
flows:
  - steps:
      - sql: main
        name: insert
        query: "INSERT INTO {t} (id, note) VALUES ($1, $2)"
        params: ["{{{{ $randint(1, 1000) }}}}", "vu {{{{ $vu }}}}"]
        check: {{ rows: 1 }}
"#,
        url = db.url()
    ));
    let (out, s) = run_ok(&sc, &[]);
    let count = db.scalar(&sc, &format!("SELECT count(*) FROM {t}"));
    if db != Backend::Sqlite {
        db.exec(&db.url(), &[&format!("DROP TABLE {t}")]);
    }
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let insert = step(&s, "insert");
    let ok = n(&insert["requests"]) - n(&insert["failed"]);
    assert_eq!(n(&insert["requests"]), 400, "{insert:#}");
    assert_eq!(ok, count as u64, "{db:?}: {insert:#}");
    // Random ids from 1..1000: some were taken already, each one counted as
    // a unique violation, never as anything else.
    assert!(n(&insert["failed"]) > 0, "{insert:#}");
    assert_eq!(
        n(&insert["errors"]["unique_violation"]),
        n(&insert["failed"]),
        "{insert:#}"
    );
    assert_eq!(n(&insert["checks"]["passed"]), ok);
    eprintln!(
        "{db:?}: {ok} inserts succeeded, {} refused as duplicates, {count} rows in the table",
        n(&insert["failed"])
    );
    assert_eq!(n(&insert["rows"]), ok);
    // The pool wait has a group of its own, one sample per statement.
    assert_eq!(n(&step(&s, "insert (pool wait)")["requests"]), 400);
}

#[test]
fn sqlite_inserts_match_the_table() {
    inserts_match_the_table(Backend::Sqlite);
}

#[test]
fn postgres_inserts_match_the_table() {
    inserts_match_the_table(Backend::Postgres);
}

#[test]
fn mariadb_inserts_match_the_table() {
    inserts_match_the_table(Backend::MariaDb);
}

/// Two flows lock the same two rows in opposite orders, holding the first
/// lock a moment: the database breaks deadlocks, and each is counted as a
/// `deadlock`, its transaction as rolled back.
fn deadlocks_are_counted(db: Backend) {
    if !db.available(&format!("deadlocks_are_counted ({db:?})")) {
        return;
    }
    let t = table("dl");
    // PostgreSQL looks for deadlocks after `deadlock_timeout` (1s by default).
    let url = match db {
        Backend::Postgres => format!("{}?options=-c%20deadlock_timeout%3D100ms", db.url()),
        _ => db.url(),
    };
    let flow = |name: &str, first: u32, second: u32| {
        format!(
            r#"
  - name: {name}
    steps:
      - transaction: main
        name: {name}
        steps:
          - {{ sql: main, name: "{name} first", query: "UPDATE {t} SET n = n + 1 WHERE id = {first}" }}
          - {{ sql: main, name: "{name} pause", query: "{sleep}" }}
          - {{ sql: main, name: "{name} second", query: "UPDATE {t} SET n = n + 1 WHERE id = {second}" }}"#,
            sleep = db.sleep(0.05)
        )
    };
    let sc = Scenario::new(&format!(
        r#"
databases:
  main: {{ url: "{url}", pool: 8 }}
setup:
  - {{ sql: main, query: "CREATE TABLE {t} (id int primary key, n int not null)" }}
  - {{ sql: main, query: "INSERT INTO {t} VALUES (1, 0), (2, 0)" }}
teardown:
  - {{ sql: main, query: "DROP TABLE {t}" }}
phases: [ {{ vus: 6, iterations: 60, duration: 20s }} ]
flows:{}{}
"#,
        flow("one then two", 1, 2),
        flow("two then one", 2, 1)
    ));
    let started = Instant::now();
    let (out, s) = run_ok(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let deadlocked = |group: &str| n(&step(&s, group)["errors"]["deadlock"]);
    let statements: u64 = ["one then two", "two then one"]
        .iter()
        .flat_map(|flow| ["first", "pause", "second"].map(|st| format!("{flow} {st}")))
        .map(|group| deadlocked(&group))
        .sum();
    let transactions = deadlocked("one then two") + deadlocked("two then one");
    assert!(
        deadlocked("one then two second") + deadlocked("two then one second") > 0,
        "{:#}",
        s["steps"]
    );
    // Each deadlocked statement (with several VUs, a first update can be in the
    // cycle too) rolled its transaction back, as a deadlock.
    assert_eq!(statements, transactions, "{:#}", s["steps"]);
    eprintln!("{db:?}: {transactions} transactions rolled back by deadlocks");
    let rolled_back =
        n(&step(&s, "one then two")["failed"]) + n(&step(&s, "two then one")["failed"]);
    assert_eq!(rolled_back, transactions);
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[test]
fn postgres_deadlocks_are_counted() {
    deadlocks_are_counted(Backend::Postgres);
}

#[test]
fn mariadb_deadlocks_are_counted() {
    deadlocks_are_counted(Backend::MariaDb);
}

/// A pool of 2 for 20 VUs: the time waiting for a connection shows in the
/// pool-wait group, not in the statement's latency.
#[test]
fn pool_starvation_shows_in_the_pool_wait_not_in_the_latency() {
    let db = Backend::Postgres;
    if !db.available("pool_starvation_shows_in_the_pool_wait_not_in_the_latency") {
        return;
    }
    let sc = Scenario::new(&format!(
        r#"
databases:
  main: {{ url: "{}", pool: 2 }}
phases: [ {{ vus: 20, iterations: 200, duration: 20s }} ]
flows:
  - steps:
      - sql: main
        name: work
        query: "{}"
"#,
        db.url(),
        db.sleep(0.02)
    ));
    let (out, s) = run_ok(&sc, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let work = &step(&s, "work")["latency_ms"];
    let wait = &step(&s, "work (pool wait)")["latency_ms"];
    let (work_p50, wait_p50) = (work["p50"].as_f64().unwrap(), wait["p50"].as_f64().unwrap());
    // 20 VUs share 2 connections each held 20 ms: a statement waits for about
    // 9 others, ~180 ms, and then runs in ~20 ms.
    assert!(
        (19.0..60.0).contains(&work_p50),
        "work {work:#} wait {wait:#}"
    );
    assert!(wait_p50 > 100.0, "work {work:#} wait {wait:#}");
    assert!(wait_p50 > 4.0 * work_p50, "work {work:#} wait {wait:#}");
    eprintln!("pool 2, 20 VUs: statement p50 {work_p50} ms, pool wait p50 {wait_p50} ms");
}

/// With `monitor: { database: main }`, PostgreSQL's own committed
/// transactions per second follow loadline's transaction rate. The run uses a
/// database of its own, so that other tests' work does not count.
#[test]
fn the_postgres_monitor_follows_the_transaction_rate() {
    let db = Backend::Postgres;
    if !db.available("the_postgres_monitor_follows_the_transaction_rate") {
        return;
    }
    let name = table("db");
    let admin = db.url();
    let url = match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("a PostgreSQL URL with a database: {admin}"),
    };
    db.exec(&admin, &[&format!("CREATE DATABASE {name}")]);
    let sc = Scenario::new(&format!(
        r#"
databases:
  main: {{ url: "{url}", pool: 8 }}
setup:
  - sql: main
    query: "CREATE TABLE acc (id int primary key, n bigint not null); INSERT INTO acc SELECT g, 0 FROM generate_series(1, 1000) g"
monitor: {{ database: main, host: false, self_monitor: false }}
phases:
  - {{ name: warm up, duration: 3s, arrival_rate: 150 }}
  - {{ name: steady, duration: 7s, arrival_rate: 150 }}
flows:
  - steps:
      - transaction: main
        name: tx
        steps:
          - sql: main
            query: "UPDATE acc SET n = n + 1 WHERE id = $1"
            params: ["{{{{ $randint(1, 1000) }}}}"]
"#
    ));
    let series = sc.out("run.jsonl");
    let series_arg = format!("jsonl={}", series.display());
    let (out, s) = run_ok(&sc, &["--out", &series_arg]);
    db.exec(&admin, &[&format!("DROP DATABASE {name} WITH (FORCE)")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(n(&step(&s, "tx")["failed"]), 0);
    let points: Vec<Value> = std::fs::read_to_string(&series)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The steady phase but its first and last seconds. (PostgreSQL's sessions
    // publish their counts about once a second, and take a few seconds to
    // settle into it after they start.)
    let steady: Vec<&Value> = points
        .iter()
        .filter(|p| p["phase"] == "steady" && (4.5..9.5).contains(&p["t"].as_f64().unwrap()))
        .collect();
    assert!(steady.len() >= 4, "{points:#?}");
    let mean = |f: &dyn Fn(&Value) -> Option<f64>| {
        let v: Vec<f64> = steady.iter().filter_map(|p| f(p)).collect();
        assert_eq!(
            v.len(),
            steady.len(),
            "a second without a value: {steady:#?}"
        );
        v.iter().sum::<f64>() / v.len() as f64
    };
    let loadline = mean(&|p| p["groups"]["tx"]["rate"].as_f64());
    let monitor = mean(&|p| p["monitors"]["db.xact_commit_per_s{db=main}"].as_f64());
    eprintln!("transactions per second: loadline {loadline:.1}, PostgreSQL {monitor:.1}");
    assert!(
        (monitor - loadline).abs() <= 0.1 * loadline,
        "loadline {loadline:.1}/s, monitor {monitor:.1}/s"
    );
    // The monitor's first sample is taken as the load starts, so a rate is in
    // the series from its first point, at the latest from its second (as
    // docs/database_load.md says).
    assert!(
        points
            .iter()
            .take(2)
            .any(|p| p["monitors"]["db.xact_commit_per_s{db=main}"].is_number()),
        "{:#?}",
        &points[..2.min(points.len())]
    );
    // The other series are there too.
    let last = &steady[steady.len() - 1]["monitors"];
    for key in [
        "db.cache_hit_ratio{db=main}",
        "db.connections{db=main,state=idle}",
        "db.deadlocks{db=main}",
    ] {
        assert!(last.get(key).is_some(), "{key}: {last:#}");
    }
}

/// With `monitor: { database: main }` on MariaDB: queries per second, threads
/// and the buffer pool's hit ratio join the time series. (MariaDB's figures are
/// server-wide, so other work on the server counts too: only their presence and
/// direction are checked.)
#[test]
fn the_mariadb_monitor_reports_queries_and_threads() {
    let db = Backend::MariaDb;
    if !db.available("the_mariadb_monitor_reports_queries_and_threads") {
        return;
    }
    let t = table("mon");
    let sc = Scenario::new(&format!(
        r#"
databases:
  main: {{ url: "{}", pool: 4 }}
setup:
  - {{ sql: main, query: "CREATE TABLE {t} (id int primary key, v int) ENGINE=InnoDB" }}
  - {{ sql: main, query: "INSERT INTO {t} WITH RECURSIVE s (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 1000) SELECT n, n FROM s" }}
teardown:
  - {{ sql: main, query: "DROP TABLE {t}" }}
monitor: {{ database: main, host: false, self_monitor: false }}
phases: [ {{ duration: 3s, arrival_rate: 100 }} ]
flows:
  - steps:
      - sql: main
        name: ping
        query: "SELECT v FROM {t} WHERE id = $1"
        params: ["{{{{ $randint(1, 1000) }}}}"]
"#,
        db.url()
    ));
    let series = sc.out("run.jsonl");
    let series_arg = format!("jsonl={}", series.display());
    let (out, s) = run_ok(&sc, &["--out", &series_arg]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(n(&step(&s, "ping")["failed"]), 0);
    let points: Vec<Value> = std::fs::read_to_string(&series)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let last = &points[points.len() - 1]["monitors"];
    let queries = last["db.queries_per_s{db=main}"].as_f64();
    assert!(queries.is_some_and(|q| q >= 50.0), "{last:#}");
    assert!(
        last["db.threads_connected{db=main}"].as_f64() >= Some(4.0),
        "{last:#}"
    );
    assert!(
        last.get("db.cache_hit_ratio{db=main}").is_some(),
        "{last:#}"
    );
    assert!(
        last.get("db.threads_running{db=main}").is_some(),
        "{last:#}"
    );
}

/// The bundled OLTP mix: it validates without connecting, and — with the local
/// PostgreSQL — runs (scaled to 4 s) and passes its SLAs, every step busy.
#[test]
fn the_bundled_oltp_mix_validates_and_runs() {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/load/db.yaml");
    let out = loadline().arg("validate").arg(file).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("databases (1): main; setup 2 statement(s), teardown 1"),
        "{shown}"
    );
    if !Backend::Postgres.available("the_bundled_oltp_mix_validates_and_runs (the run)") {
        return;
    }
    let _tables = OLTP_TABLES.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("db.json");
    let out = loadline()
        .arg("run")
        .arg(file)
        .args(["--scale-to", "4s", "--quiet", "--summary-json"])
        .arg(&summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = read_json(&summary).unwrap();
    for group in [
        "account by id",
        "recent orders",
        "insert order",
        "order by id",
        "transfer",
        "debit",
        "credit",
        "ledger",
    ] {
        let g = step(&s, group);
        assert!(n(&g["requests"]) > 0, "{group}: {g:#}");
        assert_eq!(n(&g["failed"]), 0, "{group}: {g:#}");
    }
}

/// Before any load: a closed port is a clear error naming the database (its
/// password never shown), exit 1, and `validate` does not connect at all.
#[test]
fn an_unreachable_database_stops_the_run_before_the_load() {
    let sc = Scenario::new(
        r#"
databases:
  main: { url: "postgres://app:Sup3rSecretPw@127.0.0.1:1/shop", pool: 2 }
  other: { url: "mariadb://root:An0therSecret@127.0.0.1:1/shop" }
phases: [ { vus: 1, iterations: 1 } ]
flows:
  - steps:
      - { sql: main, query: "SELECT 1" }
"#,
    );
    let (out, summary) = run_scenario(&sc, &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(summary.is_none(), "nothing ran: {shown}");
    assert!(shown.contains("database `main`"), "{shown}");
    assert!(
        shown.contains("postgres://app:***@127.0.0.1:1/shop"),
        "{shown}"
    );
    assert!(shown.contains("nothing was run"), "{shown}");
    assert!(
        !shown.contains("Sup3rSecretPw") && !shown.contains("An0therSecret"),
        "{shown}"
    );
    let out = loadline().arg("validate").arg(&sc.path).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = text(&out);
    assert!(!shown.contains("Sup3rSecretPw"), "{shown}");
}

/// Wrong credentials for the PostgreSQL on this machine: the same clear error.
#[test]
fn wrong_postgres_credentials_stop_the_run_before_the_load() {
    if !Backend::Postgres.available("wrong_postgres_credentials_stop_the_run_before_the_load") {
        return;
    }
    let sc = Scenario::new(&format!(
        r#"
databases:
  main: {{ url: "postgres://ll_no_such_role:Wr0ngPassw0rd@127.0.0.1:{PG_PORT}/test" }}
phases: [ {{ vus: 1, iterations: 1 }} ]
flows: [ {{ steps: [ {{ sql: main, query: "SELECT 1" }} ] }} ]
"#
    ));
    let (out, summary) = run_scenario(&sc, &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(summary.is_none(), "{shown}");
    assert!(shown.contains("database `main`"), "{shown}");
    assert!(shown.contains("ll_no_such_role"), "{shown}");
    assert!(!shown.contains("Wr0ngPassw0rd"), "{shown}");
}

/// A syntax error, or a table that does not exist, is an error naming the step
/// before any load; `teardown:` still runs.
fn a_broken_query_names_its_step(db: Backend) {
    if !db.available(&format!("a_broken_query_names_its_step ({db:?})")) {
        return;
    }
    let t = table("bq");
    let sc = Scenario::new(&format!(
        r#"
databases:
  main: {{ url: "{url}" }}
setup:
  - {{ sql: main, query: "CREATE TABLE {t} (id int)" }}
teardown:
  - {{ sql: main, query: "DROP TABLE {t}" }}
phases: [ {{ vus: 1, iterations: 5 }} ]
flows:
  - steps:
      - {{ sql: main, name: fine, query: "SELECT id FROM {t}" }}
      - {{ sql: main, name: typo, query: "SELEC id FROM {t}" }}
      - {{ sql: main, name: missing table, query: "SELECT id FROM {t}_nope" }}
"#,
        url = db.url()
    ));
    let (out, summary) = run_scenario(&sc, &[]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(summary.is_none(), "{shown}");
    assert!(shown.contains("step `typo` (database `main`)"), "{shown}");
    assert!(
        shown.contains("step `missing table` (database `main`)"),
        "{shown}"
    );
    assert!(!shown.contains("step `fine`"), "{shown}");
    // Teardown dropped the table that setup made.
    let left = db.scalar(
        &sc,
        &match db {
            Backend::Sqlite => format!("SELECT count(*) FROM sqlite_master WHERE name = '{t}'"),
            _ => format!("SELECT count(*) FROM information_schema.tables WHERE table_name = '{t}'"),
        },
    );
    assert_eq!(left, 0, "{shown}");
}

#[test]
fn sqlite_a_broken_query_names_its_step() {
    a_broken_query_names_its_step(Backend::Sqlite);
}

#[test]
fn postgres_a_broken_query_names_its_step() {
    a_broken_query_names_its_step(Backend::Postgres);
}

/// Ctrl-C in the middle of the load: the summary says interrupted, and
/// `teardown:` still runs.
#[test]
fn teardown_runs_after_an_interrupted_run() {
    let t = table("int");
    let sc = Scenario::new(&format!(
        r#"
databases:
  main: {{ url: "sqlite://test.db", pool: 2 }}
setup:
  - {{ sql: main, query: "CREATE TABLE {t} (id integer primary key autoincrement, at text)" }}
  - {{ sql: main, query: "CREATE TABLE {t}_kept (id integer)" }}
teardown:
  - {{ sql: main, query: "DROP TABLE {t}" }}
phases: [ {{ duration: 60s, arrival_rate: 50 }} ]
flows:
  - steps:
      - {{ sql: main, name: insert, query: "INSERT INTO {t} (at) VALUES ($1)", params: ["{{{{ $timestamp() }}}}"] }}
"#
    ));
    let out_path = sc.out("summary.json");
    let child = loadline()
        .arg("run")
        .arg(&sc.path)
        .arg("--summary-json")
        .arg(&out_path)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let s = read_json(&out_path).expect("a summary on interrupt");
    assert_eq!(s["status"], "interrupted");
    assert!(n(&step(&s, "insert")["requests"]) > 0, "{s:#}");
    let count = |name: &str| {
        Backend::Sqlite.scalar(
            &sc,
            &format!("SELECT count(*) FROM sqlite_master WHERE name = '{name}'"),
        )
    };
    assert_eq!(count(&t), 0, "the teardown dropped the table");
    assert_eq!(count(&format!("{t}_kept")), 1, "and only that");
}

/// A signal while `setup:` runs: setup is abandoned, teardown runs, a summary
/// with status `interrupted` is written and the exit code is 130; nothing was
/// sent. SIGHUP counts as SIGTERM.
#[test]
fn a_signal_during_setup_abandons_it_runs_teardown_and_exits_130() {
    let db = Backend::Postgres;
    if !db.available("a_signal_during_setup_abandons_it_runs_teardown_and_exits_130") {
        return;
    }
    let marker = table("signal_marker");
    for signal in ["-INT", "-HUP"] {
        let sc = Scenario::new(&format!(
            r#"
databases:
  main: {{ url: "{url}" }}
setup:
  - {{ sql: main, query: "{sleep}" }}
teardown:
  - {{ sql: main, query: "CREATE TABLE IF NOT EXISTS {marker} (id int)" }}
phases: [ {{ vus: 1, iterations: 1 }} ]
flows: [ {{ steps: [ {{ sql: main, query: "SELECT 1" }} ] }} ]
"#,
            url = db.url(),
            sleep = db.sleep(20.0),
        ));
        let out_path = sc.out("summary.json");
        let child = loadline()
            .arg("run")
            .arg(&sc.path)
            .arg("--quiet")
            .arg("--no-monitor")
            .arg("--summary-json")
            .arg(&out_path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1500));
        let sent = std::process::Command::new("kill")
            .arg(signal)
            .arg(child.id().to_string())
            .status()
            .unwrap();
        assert!(sent.success());
        let started = std::time::Instant::now();
        let out = child.wait_with_output().unwrap();
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(130), "{signal}: {shown}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(15),
            "{signal}: {shown}"
        );
        let summary =
            read_json(&out_path).unwrap_or_else(|| panic!("{signal}: no summary: {shown}"));
        assert_eq!(summary["status"], "interrupted", "{signal}");
        assert_eq!(summary["requests"]["total"], 0, "{signal}");
        // Teardown ran: it made the marker table.
        assert_eq!(
            db.scalar(
                &sc,
                &format!(
                    "SELECT count(*) FROM information_schema.tables WHERE table_name = '{marker}'"
                )
            ),
            1,
            "{signal}: {shown}"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut c = sqlx::PgConnection::connect(&db.url()).await.unwrap();
            sqlx::query(&format!("DROP TABLE {marker}"))
                .execute(&mut c)
                .await
                .unwrap();
        });
    }
}

/// `sqlite://data/local.db` (relative to the scenario) creates the file, and the
/// folder `data/` it is in, when they are missing.
#[test]
fn a_sqlite_file_and_its_folders_are_created_when_missing() {
    let sc = Scenario::new(
        r#"
databases:
  lite: { url: "sqlite://data/nested/local.db" }
setup:
  - { sql: lite, query: "CREATE TABLE IF NOT EXISTS t (n INTEGER)" }
phases: [ { vus: 2, iterations: 10 } ]
flows:
  - steps:
      - { sql: lite, name: insert, query: "INSERT INTO t (n) VALUES (1)" }
"#,
    );
    let (out, summary) = run_scenario(&sc, &["--no-monitor"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(step(&summary.unwrap(), "insert")["requests"], 10);
    let file = sc.dir.path().join("data/nested/local.db");
    assert!(file.is_file(), "{} missing", file.display());
}

//! SQL steps against the real PostgreSQL and MariaDB on this machine (loopback
//! only) and SQLite in a temporary directory. A test whose server is not
//! reachable says so and passes, unless `LOADLINE_REQUIRE_SERVICES=1`, when it
//! fails. Each test works on tables of its own (random suffix) and drops them.
//! Every test is bounded: a few hundred statements at most, short timeouts.

#![cfg(feature = "sql")]
// Test set-up failures are bugs in the test; unwrapping keeps them short.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use loadline_core::metrics::{generic_error_classes, GroupStats, MetricsHub, Stats};
use loadline_core::plan::{GroupInfo, Plan, OUTCOME_KIND};
use loadline_core::protocol::{Slot, StepExec, StepOutcome};
use loadline_core::template::{PathSeg, Scope, Template, VarRef};
use loadline_core::vu::Vu;
use loadline_protocols::sql::{
    DatabaseSpec, ErrorKind, Isolation, PoolMode, SetupStatement, SqlCapture, SqlCheck,
    SqlCheckSpec, SqlError, SqlMetrics, SqlProtocol, SqlStepSpec, TransactionSpec,
    DECLARED_CLASSES, ROWS_COUNTER,
};
use serde_json::{json, Value};
use sqlx::Connection;

const PG_ADDR: &str = "127.0.0.1:5432";
const MY_ADDR: &str = "127.0.0.1:3306";

/// Metric groups of the test plan.
const STMT: usize = 0;
const WAIT: usize = 1;
const TX: usize = 2;
const OTHER: usize = 3;
const SLEEP: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Postgres,
    MariaDb,
    Sqlite,
}

/// A database to test against: its URL, and what to drop at the end.
struct Db {
    backend: Backend,
    url: String,
    /// Keeps the SQLite file's directory alive.
    _dir: Option<tempfile::TempDir>,
}

/// Whether the service at `addr` answers; when it does not, the test is skipped
/// with a printed reason, or fails when `LOADLINE_REQUIRE_SERVICES=1`.
async fn reachable(service: &str, addr: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(addr);
    if matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    ) {
        return true;
    }
    let message = format!("skipped: {service} not reachable at {addr}");
    if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message} (LOADLINE_REQUIRE_SERVICES=1)");
    }
    println!("{message}");
    false
}

/// The database of `backend`, or `None` (test skipped) when its server is away.
async fn db(backend: Backend) -> Option<Db> {
    match backend {
        Backend::Postgres => reachable("PostgreSQL", PG_ADDR).await.then(|| Db {
            backend,
            url: std::env::var("LOADLINE_TEST_PG_URL")
                .unwrap_or_else(|_| format!("postgres://postgres@{PG_ADDR}/test")),
            _dir: None,
        }),
        Backend::MariaDb => reachable("MariaDB", MY_ADDR).await.then(|| Db {
            backend,
            url: std::env::var("LOADLINE_TEST_MYSQL_URL")
                .unwrap_or_else(|_| format!("mysql://root@{MY_ADDR}/test")),
            _dir: None,
        }),
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            // The file does not exist yet: the driver creates it.
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            Some(Db {
                backend,
                url,
                _dir: Some(dir),
            })
        }
    }
}

impl Db {
    /// A table name of this test run.
    fn table(&self, what: &str) -> String {
        format!("ll_{what}_{:08x}", fastrand::u32(..))
    }

    fn sleep(&self, seconds: f64) -> String {
        match self.backend {
            Backend::Postgres => format!("SELECT pg_sleep({seconds})"),
            Backend::MariaDb => format!("SELECT SLEEP({seconds})"),
            Backend::Sqlite => unreachable!("SQLite has no sleep"),
        }
    }

    /// `SELECT count(*)` through sqlx directly, not through loadline.
    async fn count(&self, table: &str) -> i64 {
        let sql = format!("SELECT count(*) FROM {table}");
        match self.backend {
            Backend::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
            }
            Backend::MariaDb => {
                let mut c = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
            }
            Backend::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar(&sql).fetch_one(&mut c).await.unwrap()
            }
        }
    }
}

/// Template names: none (the tests use built-ins only).
struct NoNames;

impl Scope for NoNames {
    fn resolve(&self, name: &str, _path: &[PathSeg]) -> Result<VarRef, String> {
        Err(format!("unknown name {name}"))
    }
}

fn template(text: &str) -> Template {
    Template::compile(text, &NoNames).unwrap()
}

/// A plan with one SQL protocol, and its metrics.
struct Harness {
    plan: Plan,
    hub: Arc<MetricsHub>,
    proto: Arc<SqlProtocol>,
}

impl Harness {
    fn new(url: &str, pool: u32, mode: PoolMode) -> Self {
        let proto = SqlProtocol::new(vec![DatabaseSpec {
            name: "main".into(),
            url: url.to_owned(),
            pool,
            mode,
        }])
        .unwrap();
        let group = |name: &str, kind: &str| GroupInfo {
            name: name.into(),
            kind: kind.into(),
        };
        let plan = Plan {
            name: None,
            source: "test".into(),
            phases: vec![],
            flows: vec![],
            scenarios: vec![],
            feeders: Arc::new(vec![]),
            thresholds: vec![],
            groups: vec![
                group("stmt", "sql"),
                group("wait", OUTCOME_KIND),
                group("tx", OUTCOME_KIND),
                group("other", "sql"),
                group("sleep", "sql"),
            ],
            protocols: vec![proto.clone()],
            capture_slots: 4,
            graceful_stop: Duration::from_secs(1),
            cache_warm_at: 0.9,
            // The layout `SqlProtocol::new` records into: SQL's classes and
            // counter right after the generic ones.
            error_classes: generic_error_classes()
                .into_iter()
                .chain(DECLARED_CLASSES.iter().map(|c| c.to_string()))
                .collect(),
            counters: vec![ROWS_COUNTER.into()],
            checks: vec![],
        };
        let hub = MetricsHub::new(plan.shape());
        Self { plan, hub, proto }
    }

    fn vu(&self, id: u64) -> Vu {
        Vu::new(&self.plan, id, self.hub.clone(), id)
    }

    async fn setup(&self, statements: &[&str]) {
        let list: Vec<SetupStatement> = statements
            .iter()
            .map(|q| SetupStatement {
                database: 0,
                query: (*q).to_owned(),
            })
            .collect();
        self.proto.run_setup(&list).await.unwrap();
    }

    fn step(&self, spec: SqlStepSpec) -> Arc<dyn StepExec> {
        self.proto.build_step(spec).unwrap()
    }

    /// Runs `steps` as one flow: `vus` VUs at once, each `iterations` times.
    async fn drive(&self, steps: &[Arc<dyn StepExec>], vus: u64, iterations: u64) {
        let mut tasks = tokio::task::JoinSet::new();
        for id in 1..=vus {
            let mut vu = self.vu(id);
            let steps = steps.to_vec();
            let proto = self.proto.clone();
            tasks.spawn(async move {
                for i in 0..iterations {
                    vu.vars.iteration = i;
                    vu.vars.reset_captures();
                    loadline_core::protocol::Protocol::start_iteration(
                        proto.as_ref(),
                        vu.states[0].as_mut(),
                    );
                    for step in &steps {
                        if step.run(&mut vu).await == StepOutcome::AbortIteration {
                            break;
                        }
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    }

    fn stats(&self) -> Stats {
        self.hub.collect()
    }
}

/// A statement step on the test database, in group [`STMT`], waits in [`WAIT`].
fn stmt(query: &str, params: &[&str]) -> SqlStepSpec {
    SqlStepSpec {
        slot: Slot::new(0),
        group: STMT,
        database: 0,
        query: template(query),
        params: params.iter().map(|p| template(p)).collect(),
        checks: vec![],
        captures: vec![],
        timeout: Duration::from_secs(10),
        wait_group: Some(WAIT),
    }
}

fn errors(g: &GroupStats, kind: ErrorKind) -> u64 {
    g.errors_of(SqlMetrics::default().class(kind))
}

/// Rows returned or affected, as counted.
fn rows(g: &GroupStats) -> u64 {
    g.counter(SqlMetrics::default().rows)
}

/// A latency quantile of a group, in milliseconds.
fn ms(g: &GroupStats, q: f64) -> f64 {
    g.latency.value_at_quantile(q) as f64 / 1000.0
}

// ---------------------------------------------------------------------------
// Inserts from many VUs: what loadline counts is what the table holds.

async fn inserts_match_count(backend: Backend, mode: PoolMode) {
    let Some(db) = db(backend).await else { return };
    let table = db.table("ins");
    let h = Harness::new(&db.url, 4, mode);
    let id = match backend {
        Backend::Postgres => "id bigserial PRIMARY KEY",
        Backend::MariaDb => "id bigint AUTO_INCREMENT PRIMARY KEY",
        Backend::Sqlite => "id INTEGER PRIMARY KEY AUTOINCREMENT",
    };
    h.setup(&[&format!(
        "CREATE TABLE {table} ({id}, vu bigint NOT NULL, n bigint NOT NULL, note varchar(40))"
    )])
    .await;
    let insert = h.step(stmt(
        &format!("INSERT INTO {table} (vu, n, note) VALUES ($1, $2, $3)"),
        &[
            "{{ $vu }}",
            "{{ $iteration }}",
            "note {{ $random_string(8) }}",
        ],
    ));
    let (vus, iterations) = (8, 25);
    h.drive(&[insert], vus, iterations).await;
    let st = h.stats();
    let g = &st.groups[STMT];
    let stored = db.count(&table).await;
    h.setup(&[&format!("DROP TABLE {table}")]).await;
    assert_eq!(g.requests, vus * iterations);
    assert_eq!(g.failed, 0, "{:?}", g.error_counts().collect::<Vec<_>>());
    assert_eq!((g.requests - g.failed) as i64, stored);
    assert_eq!(rows(g), vus * iterations);
    assert_eq!(g.latency.len(), vus * iterations);
    let waits = st.groups[WAIT].requests;
    match mode {
        // One pool wait per statement.
        PoolMode::Shared => assert_eq!(waits, vus * iterations),
        // One connection opened per VU.
        PoolMode::PerVu => assert_eq!(waits, vus),
    }
    // Outcome groups stay out of the request totals.
    assert_eq!(st.all_requests(&h.plan.groups).requests, vus * iterations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inserts_match_count() {
    inserts_match_count(Backend::Postgres, PoolMode::Shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_inserts_match_count_per_vu_connections() {
    inserts_match_count(Backend::Postgres, PoolMode::PerVu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_inserts_match_count() {
    inserts_match_count(Backend::MariaDb, PoolMode::Shared).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_inserts_match_count_per_vu_connections() {
    inserts_match_count(Backend::MariaDb, PoolMode::PerVu).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_inserts_match_count() {
    inserts_match_count(Backend::Sqlite, PoolMode::Shared).await;
}

// ---------------------------------------------------------------------------
// A deadlock built on purpose: two transactions update two rows in opposite
// order with a pause between.

async fn deadlock_is_counted_and_rolled_back(backend: Backend) {
    let Some(db) = db(backend).await else { return };
    let table = db.table("dl");
    let h = Harness::new(&db.url, 2, PoolMode::Shared);
    h.setup(&[
        &format!("CREATE TABLE {table} (id int PRIMARY KEY, b int NOT NULL)"),
        &format!("INSERT INTO {table} VALUES (1, 0), (2, 0)"),
    ])
    .await;
    // VU 1 locks row 1 then row 2; VU 2 locks row 2 then row 1.
    let update = |row: &str| {
        stmt(
            &format!("UPDATE {table} SET b = b + 1 WHERE id = {row}"),
            &[],
        )
    };
    let mut first = update("$1");
    first.params = vec![template("{{ $vu }}")];
    let mut second = update("3 - $1");
    second.params = vec![template("{{ $vu }}")];
    let mut pause = stmt(&db.sleep(0.3), &[]);
    pause.group = SLEEP;
    let tx = h
        .proto
        .build_transaction(TransactionSpec {
            slot: Slot::new(0),
            database: 0,
            group: TX,
            wait_group: Some(WAIT),
            timeout: Duration::from_secs(10),
            steps: vec![first, pause, second],
            isolation: Some(Isolation::ReadCommitted),
        })
        .unwrap();
    h.drive(&[tx], 2, 1).await;
    let st = h.stats();
    let sum = {
        let check = h.step({
            let mut s = stmt(&format!("SELECT sum(b) AS total FROM {table}"), &[]);
            s.group = OTHER;
            s.captures = vec![SqlCapture {
                slot: 0,
                name: "total".into(),
                column: "total".into(),
            }];
            s
        });
        let mut vu = h.vu(9);
        assert_eq!(check.run(&mut vu).await, StepOutcome::Continue);
        vu.vars.captures[0].clone().unwrap()
    };
    h.setup(&[&format!("DROP TABLE {table}")]).await;
    let (stmts, txs) = (&st.groups[STMT], &st.groups[TX]);
    assert_eq!(
        errors(stmts, ErrorKind::Deadlock),
        1,
        "{:?}",
        stmts.error_counts().collect::<Vec<_>>()
    );
    assert_eq!(stmts.failed, 1);
    assert_eq!((txs.requests, txs.failed), (2, 1));
    assert_eq!(errors(txs, ErrorKind::Deadlock), 1);
    // Only the committed transaction's two increments are left.
    assert_eq!(sum.as_f64(), Some(2.0), "{sum}");
    // Both waited well past the pause: the transaction latency covers BEGIN..COMMIT.
    assert!(ms(txs, 0.0) >= 300.0, "{}", ms(txs, 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deadlock_is_counted_and_rolled_back() {
    deadlock_is_counted_and_rolled_back(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_deadlock_is_counted_and_rolled_back() {
    deadlock_is_counted_and_rolled_back(Backend::MariaDb).await;
}

// ---------------------------------------------------------------------------
// Pool starvation shows in the pool-wait group, not in the statement latency.

async fn pool_starvation_shows_in_waits(backend: Backend) {
    let Some(db) = db(backend).await else { return };
    let h = Harness::new(&db.url, 2, PoolMode::Shared);
    h.proto.connect_all().await.unwrap();
    let sleep = h.step(stmt(&db.sleep(0.05), &[]));
    h.drive(&[sleep], 20, 2).await;
    let st = h.stats();
    let (g, wait) = (&st.groups[STMT], &st.groups[WAIT]);
    assert_eq!((g.requests, g.failed), (40, 0));
    assert_eq!(wait.requests, 40);
    let (wait_p50, stmt_p50, stmt_p95) = (ms(wait, 0.5), ms(g, 0.5), ms(g, 0.95));
    println!("{backend:?}: wait p50 {wait_p50} ms, statement p50 {stmt_p50} ms, p95 {stmt_p95} ms");
    assert!(wait_p50 > 100.0, "wait p50 {wait_p50} ms");
    assert!(
        (45.0..200.0).contains(&stmt_p50),
        "statement p50 {stmt_p50} ms"
    );
    assert!(stmt_p95 < 200.0, "statement p95 {stmt_p95} ms");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pool_starvation_shows_in_waits() {
    pool_starvation_shows_in_waits(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_pool_starvation_shows_in_waits() {
    pool_starvation_shows_in_waits(Backend::MariaDb).await;
}

// ---------------------------------------------------------------------------
// Errors by kind; checks and captures.

async fn errors_are_classified(backend: Backend) {
    let Some(db) = db(backend).await else { return };
    let table = db.table("err");
    let h = Harness::new(&db.url, 2, PoolMode::Shared);
    h.setup(&[&format!(
        "CREATE TABLE {table} (id int PRIMARY KEY, v int NOT NULL)"
    )])
    .await;
    let insert = h.step(stmt(
        &format!("INSERT INTO {table} (id, v) VALUES ($1, 1)"),
        &["7"],
    ));
    let null = h.step({
        let mut s = stmt(
            &format!("INSERT INTO {table} (id, v) VALUES (8, NULL)"),
            &[],
        );
        s.group = OTHER;
        s
    });
    let syntax = h.step({
        let mut s = stmt("SELEC 1", &[]);
        s.group = SLEEP;
        s
    });
    let mut vu = h.vu(1);
    assert_eq!(insert.run(&mut vu).await, StepOutcome::Continue);
    assert_eq!(insert.run(&mut vu).await, StepOutcome::AbortIteration);
    assert_eq!(null.run(&mut vu).await, StepOutcome::AbortIteration);
    assert_eq!(syntax.run(&mut vu).await, StepOutcome::AbortIteration);
    // The connection is still good after all that.
    assert_eq!(insert.run(&mut vu).await, StepOutcome::AbortIteration);
    let st = h.stats();
    h.setup(&[&format!("DROP TABLE {table}")]).await;
    let g = &st.groups[STMT];
    assert_eq!((g.requests, g.failed), (3, 2));
    assert_eq!(errors(g, ErrorKind::UniqueViolation), 2);
    assert_eq!(errors(&st.groups[OTHER], ErrorKind::Constraint), 1);
    assert_eq!(errors(&st.groups[SLEEP], ErrorKind::Sql), 1);
    assert_eq!(st.groups[SLEEP].failed, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_errors_are_classified() {
    errors_are_classified(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_errors_are_classified() {
    errors_are_classified(Backend::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_errors_are_classified() {
    errors_are_classified(Backend::Sqlite).await;
}

async fn checks_and_captures(backend: Backend) {
    let Some(db) = db(backend).await else { return };
    let table = db.table("cap");
    let h = Harness::new(&db.url, 1, PoolMode::PerVu);
    h.setup(&[
        &format!(
            "CREATE TABLE {table} (id int PRIMARY KEY, name varchar(20), amount decimal(10,2), \
             flag boolean)"
        ),
        &format!("INSERT INTO {table} VALUES (1, 'a', 1.25, true), (2, 'b', 2.50, false), (3, NULL, 3, true)"),
    ])
    .await;
    let capture = |slot, column: &str| SqlCapture {
        slot,
        name: column.into(),
        column: column.into(),
    };
    let select = h.step({
        let mut s = stmt(
            &format!("SELECT id, name, amount, flag FROM {table} WHERE id >= $1 ORDER BY id"),
            &["{{ $randint(2, 2) }}"],
        );
        s.checks = SqlCheckSpec::numbered(vec![
            SqlCheck::Rows(2),
            SqlCheck::RowsAtLeast(3),
            SqlCheck::RowsAtMost(2),
            SqlCheck::Column {
                column: "name".into(),
                equals: json!("b"),
            },
        ]);
        s.captures = vec![
            capture(0, "id"),
            capture(1, "name"),
            capture(2, "amount"),
            capture(3, "flag"),
        ];
        s
    });
    let update = h.step({
        let mut s = stmt(&format!("UPDATE {table} SET amount = amount + 1"), &[]);
        s.group = OTHER;
        s.checks = SqlCheckSpec::numbered(vec![SqlCheck::Rows(3)]);
        s
    });
    let missing = h.step({
        let mut s = stmt(&format!("SELECT id FROM {table} WHERE id = 1"), &[]);
        s.group = SLEEP;
        s.captures = vec![capture(0, "nope")];
        s
    });
    let mut vu = h.vu(1);
    assert_eq!(select.run(&mut vu).await, StepOutcome::Continue);
    let got: Vec<Value> = vu
        .vars
        .captures
        .iter()
        .map(|c| c.clone().unwrap())
        .collect();
    let flag = match backend {
        // MySQL's BOOLEAN is TINYINT(1), read as a boolean; SQLite has no booleans.
        Backend::Sqlite => json!(0),
        _ => json!(false),
    };
    assert_eq!(got, vec![json!(2), json!("b"), json!(2.5), flag]);
    assert_eq!(update.run(&mut vu).await, StepOutcome::Continue);
    assert_eq!(missing.run(&mut vu).await, StepOutcome::AbortIteration);
    let st = h.stats();
    h.setup(&[&format!("DROP TABLE {table}")]).await;
    let g = &st.groups[STMT];
    assert_eq!((g.requests, rows(g)), (1, 2));
    assert_eq!((g.checks_passed, g.checks_failed), (3, 1));
    let u = &st.groups[OTHER];
    assert_eq!((rows(u), u.checks_passed), (3, 1));
    let m = &st.groups[SLEEP];
    assert_eq!((m.requests, m.failed), (1, 0));
    assert_eq!(errors(m, ErrorKind::Capture), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_checks_and_captures() {
    checks_and_captures(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_checks_and_captures() {
    checks_and_captures(Backend::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_checks_and_captures() {
    checks_and_captures(Backend::Sqlite).await;
}

// ---------------------------------------------------------------------------
// Transactions: a failed statement rolls back what came before it.

async fn failed_transaction_rolls_back(backend: Backend) {
    let Some(db) = db(backend).await else { return };
    let table = db.table("tx");
    let h = Harness::new(&db.url, 2, PoolMode::Shared);
    h.setup(&[&format!("CREATE TABLE {table} (id int PRIMARY KEY)")])
        .await;
    let tx = |ids: &[&str]| {
        h.proto
            .build_transaction(TransactionSpec {
                slot: Slot::new(0),
                database: 0,
                group: TX,
                wait_group: Some(WAIT),
                timeout: Duration::from_secs(5),
                steps: ids
                    .iter()
                    .map(|id| stmt(&format!("INSERT INTO {table} (id) VALUES ($1)"), &[id]))
                    .collect(),
                isolation: None,
            })
            .unwrap()
    };
    let good = tx(&["1", "2"]);
    // 3 goes in, then 1 again fails: 3 must not stay.
    let bad = tx(&["3", "1"]);
    let mut vu = h.vu(1);
    assert_eq!(good.run(&mut vu).await, StepOutcome::Continue);
    assert_eq!(bad.run(&mut vu).await, StepOutcome::AbortIteration);
    // The connection went back clean: another transaction works.
    let after = tx(&["4"]);
    assert_eq!(after.run(&mut vu).await, StepOutcome::Continue);
    let stored = db.count(&table).await;
    let st = h.stats();
    h.setup(&[&format!("DROP TABLE {table}")]).await;
    assert_eq!(stored, 3);
    let t = &st.groups[TX];
    assert_eq!((t.requests, t.failed), (3, 1));
    assert_eq!(errors(t, ErrorKind::UniqueViolation), 1);
    let s = &st.groups[STMT];
    assert_eq!((s.requests, s.failed), (5, 1));
    assert_eq!(st.groups[WAIT].requests, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_failed_transaction_rolls_back() {
    failed_transaction_rolls_back(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_failed_transaction_rolls_back() {
    failed_transaction_rolls_back(Backend::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_failed_transaction_rolls_back() {
    failed_transaction_rolls_back(Backend::Sqlite).await;
}

// ---------------------------------------------------------------------------
// PostgreSQL: parameters bind in the types the server inferred.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_binds_parameters_by_inferred_type() {
    let Some(db) = db(Backend::Postgres).await else {
        return;
    };
    let table = db.table("types");
    let h = Harness::new(&db.url, 1, PoolMode::Shared);
    h.setup(&[&format!(
        "CREATE TABLE {table} (u uuid, ts timestamptz, d date, n numeric(12,3), j jsonb, \
         b boolean, i int4, s smallint, f float8, t text)"
    )])
    .await;
    let insert = h.step(stmt(
        &format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
        &[
            "{{ $uuid() }}",
            "2024-02-29T12:30:00.5+02:00",
            "2024-02-29",
            "-12.345",
            r#"{"a": [1, 2]}"#,
            "true",
            "42",
            "{{ $randint(7, 7) }}",
            "0.25",
            "{{ $randint(5, 5) }}",
        ],
    ));
    let columns = ["u", "ts", "d", "n", "j", "b", "i", "s", "f", "t"];
    let select = h.step({
        let mut s = stmt(&format!("SELECT * FROM {table}"), &[]);
        s.captures = columns
            .iter()
            .enumerate()
            .map(|(slot, c)| SqlCapture {
                slot,
                name: (*c).into(),
                column: (*c).into(),
            })
            .collect();
        s
    });
    let mut h = h;
    h.plan.capture_slots = columns.len();
    let mut vu = h.vu(1);
    assert_eq!(insert.run(&mut vu).await, StepOutcome::Continue);
    assert_eq!(select.run(&mut vu).await, StepOutcome::Continue);
    // A captured uuid binds back to a uuid parameter.
    let by_uuid = h.step({
        let mut s = stmt(
            &format!("SELECT count(*) AS n FROM {table} WHERE u = $1"),
            &[],
        );
        s.params = vec![Template::literal(
            vu.vars.captures[0].clone().unwrap().as_str().unwrap(),
        )];
        s.checks = SqlCheckSpec::numbered(vec![SqlCheck::Column {
            column: "n".into(),
            equals: json!(1),
        }]);
        s
    });
    assert_eq!(by_uuid.run(&mut vu).await, StepOutcome::Continue);
    let st = h.stats();
    h.setup(&[&format!("DROP TABLE {table}")]).await;
    let got: Vec<Value> = vu
        .vars
        .captures
        .iter()
        .map(|c| c.clone().unwrap())
        .collect();
    assert_eq!(got[0].as_str().unwrap().len(), 36);
    assert_eq!(got[1], json!("2024-02-29T10:30:00.500000Z"));
    assert_eq!(got[2], json!("2024-02-29"));
    assert_eq!(got[3], json!(-12.345));
    assert_eq!(got[4], json!({"a": [1, 2]}));
    assert_eq!(got[5], json!(true));
    assert_eq!(got[6], json!(42));
    assert_eq!(got[7], json!(7));
    assert_eq!(got[8], json!(0.25));
    assert_eq!(got[9], json!("5"));
    assert_eq!(st.groups[STMT].failed, 0);
    assert_eq!(st.groups[STMT].checks_passed, 1);
}

// ---------------------------------------------------------------------------
// Dates, times, timestamps, uuids and bytes: the text a capture gives, and the
// text forms a parameter takes.

/// Runs `query` once and captures `columns` of its first row, one step per
/// column (a failed capture stops a step's later captures); `None` where the
/// capture failed.
async fn capture_each(h: &mut Harness, query: &str, columns: &[&str]) -> Vec<Option<Value>> {
    h.plan.capture_slots = columns.len();
    let mut got = Vec::new();
    for (slot, column) in columns.iter().enumerate() {
        let step = h.step({
            let mut s = stmt(query, &[]);
            s.captures = vec![SqlCapture {
                slot,
                name: (*column).into(),
                column: (*column).into(),
            }];
            s
        });
        let mut vu = h.vu(1);
        let outcome = step.run(&mut vu).await;
        let value = vu.vars.captures[slot].clone();
        assert_eq!(
            outcome == StepOutcome::Continue,
            value.is_some(),
            "{column}: {outcome:?}"
        );
        got.push(value);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_temporal_uuid_and_bytea_values_as_text() {
    let Some(db) = db(Backend::Postgres).await else {
        return;
    };
    let table = db.table("temporal");
    let mut h = Harness::new(&db.url, 1, PoolMode::Shared);
    h.setup(&[&format!(
        "CREATE TABLE {table} (k int, d date, t time, ts timestamp, tz timestamptz, \
         u uuid, b bytea)"
    )])
    .await;
    // (key, date, time, timestamp, timestamptz, uuid, bytea) as parameters.
    let rows: [[&str; 7]; 4] = [
        [
            "1",
            "2024-02-29",
            "01:02:03",
            "2024-01-02 03:04:05.000001+02",
            "2024-02-29t12:30:00.1234567 +05:30",
            "{67E55044-10B1-426F-9247-BB680E5FE0C8}",
            "\\x00ff",
        ],
        [
            "2",
            " 2024-03-01T23:30-05:00 ",
            "23:59:59,5",
            "1999-12-31 23:59:59.9999995",
            "2024-05-01",
            "67e5-5044-10b1426f9247bb680e5fe0c8",
            "plain",
        ],
        [
            "3",
            "1970-01-01 00:00:00Z",
            "00:00",
            "{{ $randint(1700000000123, 1700000000123) }}",
            "{{ $randint(-1, -1) }}",
            "67e5504410b1426f9247bb680e5fe0c8",
            "\\x",
        ],
        [
            "4",
            "0001-01-01",
            "23:59:59.999999",
            "2024-01-01T10:00:59.5",
            "1969-12-31T23:59:59.999999-00:30",
            "{{ $uuid() }}",
            "",
        ],
    ];
    let mut vu = h.vu(1);
    for row in rows {
        let mut spec = stmt(
            &format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[],
        );
        spec.params = row.iter().map(|p| template(p)).collect();
        let step = h.step(spec);
        assert_eq!(step.run(&mut vu).await, StepOutcome::Continue, "{row:?}");
    }
    let mut got = Vec::new();
    for k in 1..=4 {
        let query = format!("SELECT d, t, ts, tz, u, b FROM {table} WHERE k = {k}");
        got.push(capture_each(&mut h, &query, &["d", "t", "ts", "tz", "u", "b"]).await);
    }
    // Values the parameters cannot give.
    let literals = capture_each(
        &mut h,
        "SELECT timestamp '1969-12-31 23:59:59.999999' AS before, \
         timestamptz 'infinity' AS inf, time '12:00:00.000001' AS micro, \
         date '9999-12-31' AS last, time '24:00:00' AS end_of_day, \
         date 'infinity' AS date_inf, timestamp '-infinity' AS ts_neg_inf, \
         date '10000-01-01' AS too_late",
        &[
            "before",
            "inf",
            "micro",
            "last",
            "end_of_day",
            "date_inf",
            "ts_neg_inf",
            "too_late",
        ],
    )
    .await;
    // Text no parameter accepts.
    let mut refused = Vec::new();
    for (ty, text) in [
        ("date", "2023-02-29"),
        ("date", "2024-1-01"),
        ("time", "01:02:03 junk"),
        ("timestamp", "2024-01-01T25:00"),
        ("timestamptz", "2024-01-01T10:00+16"),
        ("timestamptz", "now"),
        ("uuid", "67e55044"),
        ("bytea", "\\x0g"),
        // PostgreSQL reads these two itself; `time::Time` holds neither.
        ("time", "24:00:00"),
        ("timestamp", "2024-01-01T10:00:60"),
    ] {
        let mut spec = stmt(&format!("SELECT $1::{ty} AS v"), &[]);
        spec.group = OTHER;
        spec.params = vec![Template::literal(text)];
        let step = h.step(spec);
        refused.push((ty, text, step.run(&mut vu).await));
    }
    h.setup(&[&format!("DROP TABLE {table}")]).await;
    let text = |s: &str| Some(json!(s));
    assert_eq!(
        got[0],
        vec![
            text("2024-02-29"),
            text("01:02:03"),
            text("2024-01-02T03:04:05.000001"),
            text("2024-02-29T07:00:00.123456Z"),
            text("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            text("\\x00ff"),
        ]
    );
    assert_eq!(
        got[1],
        vec![
            text("2024-03-01"),
            text("23:59:59.500000"),
            text("1999-12-31T23:59:59.999999"),
            text("2024-05-01T00:00:00Z"),
            text("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            text("\\x706c61696e"),
        ]
    );
    assert_eq!(
        got[2],
        vec![
            text("1970-01-01"),
            text("00:00:00"),
            text("2023-11-14T22:13:20.123000"),
            text("1969-12-31T23:59:59.999000Z"),
            text("67e55044-10b1-426f-9247-bb680e5fe0c8"),
            text("\\x"),
        ]
    );
    assert_eq!(
        got[3][..4],
        [
            text("0001-01-01"),
            text("23:59:59.999999"),
            text("2024-01-01T10:00:59.500000"),
            text("1970-01-01T00:29:59.999999Z"),
        ]
    );
    assert_eq!(
        got[3][4].as_ref().and_then(Value::as_str).map(str::len),
        Some(36)
    );
    assert_eq!(got[3][5], text("\\x"));
    assert_eq!(
        literals,
        vec![
            text("1969-12-31T23:59:59.999999"),
            None,
            text("12:00:00.000001"),
            text("9999-12-31"),
            text("24:00:00"),
            // Past the years `time` holds (±9999): not readable.
            None,
            None,
            None,
        ]
    );
    for (ty, text, outcome) in refused {
        assert_eq!(outcome, StepOutcome::AbortIteration, "{text} as {ty}");
    }
    let st = h.stats();
    assert_eq!(
        (st.groups[OTHER].requests, st.groups[OTHER].failed),
        (10, 10)
    );
    assert_eq!(errors(&st.groups[OTHER], ErrorKind::Sql), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_temporal_values_as_text() {
    let Some(db) = db(Backend::MariaDb).await else {
        return;
    };
    let mut h = Harness::new(&db.url, 1, PoolMode::Shared);
    let got = capture_each(
        &mut h,
        "SELECT DATE '2024-05-01' AS d, \
         CAST('2024-05-01 13:04:05.25' AS DATETIME(6)) AS dt, \
         CAST('2024-05-01 13:04:05' AS DATETIME(6)) AS dt_whole, \
         CAST('2024-05-01 00:00:00' AS DATETIME) AS dt_midnight, \
         TIMESTAMP '2024-05-01 13:04:05.000001' AS ts, \
         CAST(TIMESTAMP '2024-05-01 00:00:00' AS DATETIME) + INTERVAL 0 SECOND AS dt_sum, \
         CAST('-26:03:04.5' AS TIME(6)) AS t, \
         CAST('838:59:59' AS TIME) AS t_max, \
         CAST('00:00:00' AS TIME) AS t_zero",
        &[
            "d",
            "dt",
            "dt_whole",
            "dt_midnight",
            "ts",
            "dt_sum",
            "t",
            "t_max",
            "t_zero",
        ],
    )
    .await;
    let table = db.table("ts");
    h.setup(&[
        &format!(
            "CREATE TABLE {table} (ts timestamp(6) NULL, at_midnight timestamp NULL, \
             zero_ts timestamp NULL, zero_d date, zero_dt datetime)"
        ),
        &format!(
            "INSERT INTO {table} VALUES ('2024-05-01 13:04:05.250000', '2024-05-01 00:00:00', \
             '0000-00-00 00:00:00', '0000-00-00', '0000-00-00 00:00:00')"
        ),
    ])
    .await;
    let stored = capture_each(
        &mut h,
        &format!("SELECT ts, at_midnight, zero_ts, zero_d, zero_dt FROM {table}"),
        &["ts", "at_midnight", "zero_ts", "zero_d", "zero_dt"],
    )
    .await;
    h.setup(&[&format!("DROP TABLE {table}")]).await;
    let text = |s: &str| Some(json!(s));
    assert_eq!(
        got,
        vec![
            text("2024-05-01"),
            text("2024-05-01T13:04:05.250000"),
            text("2024-05-01T13:04:05"),
            // A DATETIME at midnight comes as the date alone.
            text("2024-05-01"),
            text("2024-05-01T13:04:05.000001"),
            text("2024-05-01"),
            text("-26:03:04.500000"),
            text("838:59:59"),
            text("00:00:00"),
        ]
    );
    assert_eq!(
        stored,
        vec![
            text("2024-05-01T13:04:05.250000Z"),
            text("2024-05-01T00:00:00Z"),
            // sqlx reads MySQL's zero dates as NULL.
            Some(Value::Null),
            Some(Value::Null),
            Some(Value::Null),
        ]
    );
}

// ---------------------------------------------------------------------------
// Timeouts, templated SQL text, setup errors, unreachable databases.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_statement_timeout_discards_the_connection() {
    let Some(db) = db(Backend::Postgres).await else {
        return;
    };
    let h = Harness::new(&db.url, 1, PoolMode::Shared);
    let slow = h.step({
        let mut s = stmt(&db.sleep(5.0), &[]);
        s.timeout = Duration::from_millis(300);
        s
    });
    let quick = h.step({
        let mut s = stmt("SELECT 1 AS one", &[]);
        s.group = OTHER;
        s
    });
    let mut vu = h.vu(1);
    let start = std::time::Instant::now();
    assert_eq!(slow.run(&mut vu).await, StepOutcome::AbortIteration);
    assert!(start.elapsed() < Duration::from_secs(3));
    // The pool's only connection was closed, a new one answers.
    assert_eq!(quick.run(&mut vu).await, StepOutcome::Continue);
    let st = h.stats();
    assert_eq!(errors(&st.groups[STMT], ErrorKind::Timeout), 1);
    assert_eq!(st.groups[OTHER].failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templated_query_text_is_rendered_and_translated() {
    let Some(db) = db(Backend::MariaDb).await else {
        return;
    };
    let table = db.table("tpl");
    let h = Harness::new(&db.url, 1, PoolMode::Shared);
    h.setup(&[&format!("CREATE TABLE {table}_5 (a int, b varchar(10))")])
        .await;
    // The table name comes from a template; `$2` before `$1` binds by number.
    let insert = h.step(stmt(
        &format!("INSERT INTO {table}_{{{{ $randint(5, 5) }}}} (b, a) VALUES ($2, $1)"),
        &["{{ $randint(3, 3) }}", "x$1"],
    ));
    let check = h.step({
        let mut s = stmt(&format!("SELECT a, b FROM {table}_5 WHERE b = '$1'"), &[]);
        s.group = OTHER;
        s.checks = SqlCheckSpec::numbered(vec![SqlCheck::Rows(0)]);
        s
    });
    let mut vu = h.vu(1);
    assert_eq!(insert.run(&mut vu).await, StepOutcome::Continue);
    assert_eq!(check.run(&mut vu).await, StepOutcome::Continue);
    let stored = db
        .count(&format!("{table}_5 WHERE a = 3 AND b = 'x$1'"))
        .await;
    h.setup(&[&format!("DROP TABLE {table}_5")]).await;
    assert_eq!(stored, 1);
    assert_eq!(h.stats().groups[OTHER].checks_passed, 1);
}

#[tokio::test]
async fn placeholder_mismatch_is_refused_at_load_time() {
    let db = db(Backend::Sqlite).await.unwrap();
    let h = Harness::new(&db.url, 1, PoolMode::Shared);
    let err = h
        .proto
        .build_step(stmt("SELECT $1, $2", &["1"]))
        .expect_err("two placeholders, one param");
    assert!(err.to_string().contains("`main`"), "{err}");
    assert!(err.to_string().contains("2 parameters"), "{err}");
    let err = h
        .proto
        .build_step(SqlStepSpec {
            database: 3,
            ..stmt("SELECT 1", &[])
        })
        .expect_err("no such database");
    assert_eq!(err, SqlError::UnknownDatabase { index: 3, count: 1 });
}

#[tokio::test]
async fn setup_errors_name_the_database_and_statement() {
    let db = db(Backend::Sqlite).await.unwrap();
    let h = Harness::new(&db.url, 1, PoolMode::Shared);
    let err = h
        .proto
        .run_setup(&[
            SetupStatement {
                database: 0,
                query: "CREATE TABLE t (a int); INSERT INTO t VALUES (1)".into(),
            },
            SetupStatement {
                database: 0,
                query: "CREAT TABLE nope".into(),
            },
        ])
        .await
        .expect_err("a syntax error");
    let text = err.to_string();
    assert!(
        text.starts_with("database `main`, setup statement 2:"),
        "{text}"
    );
    // The file was created and the first statements ran.
    assert_eq!(db.count("t").await, 1);
}

/// A port on 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_database_is_named_with_its_password_redacted() {
    for scheme in ["postgres", "mysql", "mariadb"] {
        let port = closed_port();
        let proto = SqlProtocol::new(vec![
            DatabaseSpec {
                name: "fine".into(),
                url: "sqlite::memory:".into(),
                pool: 1,
                mode: PoolMode::Shared,
            },
            DatabaseSpec {
                name: "orders".into(),
                url: format!("{scheme}://app:hunter22@127.0.0.1:{port}/shop"),
                pool: 3,
                mode: PoolMode::Shared,
            },
        ])
        .unwrap();
        let start = std::time::Instant::now();
        let err = proto
            .connect_all()
            .await
            .expect_err("nothing listens there");
        assert!(start.elapsed() < Duration::from_secs(5));
        let text = err.to_string();
        assert!(text.contains("database `orders`"), "{text}");
        assert!(
            text.contains(&format!("app:***@127.0.0.1:{port}/shop")),
            "{text}"
        );
        assert!(!text.contains("hunter22"), "{text}");
        assert!(!format!("{err:?} {proto:?}").contains("hunter22"));
    }
}

#[tokio::test]
async fn unreachable_database_mid_run_counts_connect_errors() {
    let url = format!("postgres://postgres@127.0.0.1:{}/test", closed_port());
    let h = Harness::new(&url, 1, PoolMode::PerVu);
    let step = h.step(stmt("SELECT 1", &[]));
    let mut vu = h.vu(1);
    assert_eq!(step.run(&mut vu).await, StepOutcome::AbortIteration);
    let st = h.stats();
    assert_eq!(errors(&st.groups[STMT], ErrorKind::Connect), 1);
    assert_eq!(st.groups[WAIT].failed, 1);
}

// ---------------------------------------------------------------------------
// Statements that cannot work are found before the load.

async fn bad_statements_are_found_before_the_load(backend: Backend) {
    let Some(db) = db(backend).await else { return };
    let h = Harness::new(&db.url, 1, PoolMode::Shared);
    let missing = db.table("missing");
    h.step(stmt("SELECT 1 AS one", &[]));
    h.step({
        let mut s = stmt("SELEC 1", &[]);
        s.group = OTHER;
        s
    });
    // A templated query cannot be prepared in advance: left to run time.
    h.step(stmt("SELEC {{ $randint(1, 1) }}", &[]));
    h.proto
        .build_transaction(TransactionSpec {
            slot: Slot::new(0),
            database: 0,
            group: TX,
            wait_group: None,
            timeout: Duration::from_secs(5),
            steps: vec![{
                let mut s = stmt(&format!("SELECT a FROM {missing} WHERE a = $1"), &["1"]);
                s.group = SLEEP;
                s
            }],
            isolation: None,
        })
        .unwrap();
    let errors = h.proto.prepare_all().await.expect_err("two bad statements");
    let groups: Vec<usize> = errors
        .iter()
        .map(|e| match e {
            SqlError::Prepare {
                database, group, ..
            } => {
                assert_eq!(database, "main");
                *group
            }
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(groups, vec![OTHER, SLEEP], "{errors:?}");
    assert!(errors[1].to_string().contains(&missing), "{}", errors[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_bad_statements_are_found_before_the_load() {
    bad_statements_are_found_before_the_load(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_bad_statements_are_found_before_the_load() {
    bad_statements_are_found_before_the_load(Backend::MariaDb).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_bad_statements_are_found_before_the_load() {
    bad_statements_are_found_before_the_load(Backend::Sqlite).await;
}

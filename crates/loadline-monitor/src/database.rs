//! Databases under test: PostgreSQL's and MySQL/MariaDB's own statistics,
//! sampled each interval on one connection of the monitor's own (short connect
//! and query timeouts), counters turned into per-second rates between samples.
//!
//! | database | series (each labelled `{db=NAME}`) |
//! |---|---|
//! | PostgreSQL (`pg_stat_database`, `pg_stat_activity`) | `db.xact_commit_per_s`, `db.xact_rollback_per_s`, `db.cache_hit_ratio` (blks_hit / (blks_hit + blks_read) over the interval), `db.deadlocks_per_s`, `db.deadlocks` (since the monitor started), `db.temp_bytes_per_s`, `db.connections{state=active\|idle\|idle_in_transaction\|waiting_lock}` |
//! | MySQL / MariaDB (`SHOW GLOBAL STATUS`) | `db.queries_per_s` (Questions), `db.xact_commit_per_s` / `db.xact_rollback_per_s` (COMMIT / ROLLBACK statements), `db.threads_running`, `db.threads_connected`, `db.cache_hit_ratio` (InnoDB buffer pool: 1 − reads from disk / read requests, over the interval), `db.row_lock_waits_per_s`, `db.row_lock_current_waits`, `db.deadlocks_per_s` and `db.deadlocks` (MariaDB's Innodb_deadlocks) |
//!
//! The monitor's own work is left out where it can be: PostgreSQL's one
//! transaction per sample is subtracted from the commits, its session is not
//! counted in the connections; MySQL's one statement per sample is subtracted
//! from the queries, its thread from the threads running and connected.
//!
//! A database that cannot be reached (or a sample that fails) is a warning once
//! per failure streak, its series leave the snapshot, and the monitor keeps
//! trying each interval on a new connection. It never slows or stops the load.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use loadline_core::monitor::MonitorValue;
use loadline_core::protocol::BoxFuture;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use tokio_util::sync::CancellationToken;

use crate::board::{series_key, value, Slot};
use crate::connected::{self, ConnectedSampler};

/// How long connecting, and then one sample, may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// A database to watch (filled by the scenario loader from `monitor: { database:
/// NAME }` and the scenario's `databases:`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct DatabaseMonitorSpec {
    /// The name the scenario gives it: the `db` label of its series.
    pub name: String,
    /// A `postgres://`, `postgresql://`, `mysql://` or `mariadb://` URL.
    pub url: String,
}

impl fmt::Debug for DatabaseMonitorSpec {
    // The URL may hold a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseMonitorSpec")
            .field("name", &self.name)
            .field("url", &redact(&self.url))
            .finish()
    }
}

/// The URL with its password replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            let pairs: Vec<(String, String)> = parsed
                .query_pairs()
                .map(|(k, v)| {
                    let v = if k.to_ascii_lowercase().contains("password") {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect();
            if !pairs.is_empty() {
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        // Not a URL: say nothing of it rather than risk showing a password.
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// Which statistics a database has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavor {
    Postgres,
    MySql,
}

impl Flavor {
    /// The flavor of a URL, by its scheme; `None` for anything else.
    pub(crate) fn of(url: &str) -> Option<Flavor> {
        let scheme = url.split_once(':')?.0.to_ascii_lowercase();
        match scheme.as_str() {
            "postgres" | "postgresql" => Some(Flavor::Postgres),
            "mysql" | "mariadb" => Some(Flavor::MySql),
            _ => None,
        }
    }
}

/// A checked database to watch.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub name: String,
    pub flavor: Flavor,
    options: Options,
    redacted: String,
    /// The URL's password, kept out of warnings.
    password: Option<String>,
}

#[derive(Debug, Clone)]
enum Options {
    Pg(PgConnectOptions),
    My(MySqlConnectOptions),
}

impl Target {
    /// Reads a spec's URL; the error says why it is not usable.
    pub(crate) fn new(spec: &DatabaseMonitorSpec) -> Result<Target, String> {
        let redacted = redact(&spec.url);
        let flavor = Flavor::of(&spec.url).ok_or_else(|| {
            format!("`{redacted}`: expected a postgres://, mysql:// or mariadb:// URL")
        })?;
        let password = url::Url::parse(&spec.url)
            .ok()
            .and_then(|u| u.password().map(str::to_owned))
            .filter(|p| p.len() >= 4);
        let scrub = |e: sqlx::Error| {
            let text = e.to_string();
            match &password {
                Some(p) => text.replace(p.as_str(), "***"),
                None => text,
            }
        };
        let options = match flavor {
            Flavor::Postgres => Options::Pg(
                PgConnectOptions::from_str(&spec.url)
                    .map_err(|e| format!("`{redacted}`: {}", scrub(e)))?
                    .application_name("loadline-monitor")
                    .disable_statement_logging(),
            ),
            Flavor::MySql => {
                let scheme_len = spec.url.find(':').unwrap_or(0);
                let url = format!("mysql{}", &spec.url[scheme_len..]);
                Options::My(
                    MySqlConnectOptions::from_str(&url)
                        .map_err(|e| format!("`{redacted}`: {}", scrub(e)))?
                        .disable_statement_logging(),
                )
            }
        };
        Ok(Target {
            name: spec.name.clone(),
            flavor,
            options,
            redacted,
            password,
        })
    }

    fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(p) => text.replace(p.as_str(), "***"),
            None => text.to_owned(),
        }
    }

    async fn connect(&self) -> Result<Conn, sqlx::Error> {
        Ok(match &self.options {
            Options::Pg(o) => Conn::Pg(o.connect().await?),
            Options::My(o) => Conn::My(o.connect().await?),
        })
    }
}

enum Conn {
    Pg(PgConnection),
    My(MySqlConnection),
}

impl Conn {
    async fn close(self) {
        let _ = match self {
            Conn::Pg(c) => c.close().await,
            Conn::My(c) => c.close().await,
        };
    }
}

/// One sample's raw figures: counters (to turn into rates) and gauges.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Raw {
    counters: HashMap<&'static str, f64>,
    gauges: Vec<(String, f64)>,
}

/// PostgreSQL: the current database's counters and its sessions by state, in one
/// statement (so one transaction per sample), leaving out the monitor's own
/// session.
const PG_SAMPLE: &str = "SELECT d.xact_commit, d.xact_rollback, d.blks_read, d.blks_hit, \
       d.deadlocks, d.temp_bytes, a.active, a.idle, a.idle_in_transaction, a.waiting_lock \
FROM pg_stat_database d, \
  (SELECT count(*) FILTER (WHERE state = 'active' \
              AND wait_event_type IS DISTINCT FROM 'Lock') AS active, \
          count(*) FILTER (WHERE state = 'idle') AS idle, \
          count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction, \
          count(*) FILTER (WHERE wait_event_type = 'Lock') AS waiting_lock \
   FROM pg_stat_activity \
   WHERE datname = current_database() AND backend_type = 'client backend' \
     AND pid <> pg_backend_pid()) a \
WHERE d.datname = current_database()";

type PgRow = (i64, i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// MySQL/MariaDB: the global status variables read.
const MY_SAMPLE: &str = "SHOW GLOBAL STATUS WHERE Variable_name IN ('Questions', \
'Com_commit', 'Com_rollback', 'Threads_running', 'Threads_connected', \
'Innodb_buffer_pool_read_requests', 'Innodb_buffer_pool_reads', 'Innodb_row_lock_waits', \
'Innodb_row_lock_current_waits', 'Innodb_deadlocks')";

async fn sample(conn: &mut Conn) -> Result<Raw, sqlx::Error> {
    let mut raw = Raw::default();
    match conn {
        Conn::Pg(c) => {
            let row: PgRow = sqlx::query_as(PG_SAMPLE).fetch_one(&mut *c).await?;
            let (commit, rollback, read, hit, deadlocks, temp, active, idle, idle_tx, lock) = row;
            for (name, v) in [
                ("xact_commit", commit),
                ("xact_rollback", rollback),
                ("blks_read", read),
                ("blks_hit", hit),
                ("deadlocks", deadlocks),
                ("temp_bytes", temp),
            ] {
                raw.counters.insert(name, v as f64);
            }
            for (state, n) in [
                ("active", active),
                ("idle", idle),
                ("idle_in_transaction", idle_tx),
                ("waiting_lock", lock),
            ] {
                raw.gauges.push((state.to_owned(), n as f64));
            }
        }
        Conn::My(c) => {
            let rows: Vec<(String, String)> = sqlx::query_as(MY_SAMPLE).fetch_all(&mut *c).await?;
            raw = mysql_raw(&rows);
        }
    }
    Ok(raw)
}

/// The figures of `SHOW GLOBAL STATUS` rows.
fn mysql_raw(rows: &[(String, String)]) -> Raw {
    let mut raw = Raw::default();
    for (name, text) in rows {
        let Ok(v) = text.trim().parse::<f64>() else {
            continue;
        };
        let counter = match name.as_str() {
            "Questions" => "questions",
            "Com_commit" => "com_commit",
            "Com_rollback" => "com_rollback",
            "Innodb_buffer_pool_read_requests" => "read_requests",
            "Innodb_buffer_pool_reads" => "disk_reads",
            "Innodb_row_lock_waits" => "row_lock_waits",
            "Innodb_deadlocks" => "deadlocks",
            // The monitor's own thread is connected, and running its SHOW.
            "Threads_running" => {
                raw.gauges
                    .push(("threads_running".into(), (v - 1.0).max(0.0)));
                continue;
            }
            "Threads_connected" => {
                raw.gauges
                    .push(("threads_connected".into(), (v - 1.0).max(0.0)));
                continue;
            }
            "Innodb_row_lock_current_waits" => {
                raw.gauges.push(("row_lock_current_waits".into(), v));
                continue;
            }
            _ => continue,
        };
        raw.counters.insert(counter, v);
    }
    raw
}

/// Turns samples into series values: rates between two samples, ratios over the
/// interval, totals since the first sample.
#[derive(Debug)]
pub(crate) struct Rates {
    name: String,
    flavor: Flavor,
    last: Option<(Instant, Raw)>,
    first: Option<Raw>,
}

impl Rates {
    pub(crate) fn new(name: &str, flavor: Flavor) -> Self {
        Self {
            name: name.to_owned(),
            flavor,
            last: None,
            first: None,
        }
    }

    fn key(&self, series: &str) -> String {
        series_key(series, [("db", self.name.as_str())])
    }

    /// The values of a sample taken at `at`.
    pub(crate) fn values(&mut self, at: Instant, raw: Raw) -> Vec<MonitorValue> {
        let mut out = Vec::new();
        for (gauge, v) in &raw.gauges {
            let key = match self.flavor {
                Flavor::Postgres => series_key(
                    "db.connections",
                    [("db", self.name.as_str()), ("state", gauge)],
                ),
                Flavor::MySql => self.key(&format!("db.{gauge}")),
            };
            out.extend(value(key, *v));
        }
        let first = self.first.get_or_insert_with(|| raw.clone());
        let since_start = |name: &str| {
            let now = raw.counters.get(name)?;
            let then = first.counters.get(name)?;
            (now >= then).then_some(now - then)
        };
        if let Some(total) = since_start("deadlocks") {
            out.extend(value(self.key("db.deadlocks"), total));
        }
        if let Some((then, before)) = &self.last {
            let secs = at.duration_since(*then).as_secs_f64();
            let delta = |name: &str| {
                let now = raw.counters.get(name)?;
                let was = before.counters.get(name)?;
                // A counter that went back: the server restarted.
                (now >= was).then_some(now - was)
            };
            if secs > 0.0 {
                let rate = |d: Option<f64>| d.map(|d| d.max(0.0) / secs);
                let (commits, rollbacks, queries) = match self.flavor {
                    // The monitor's own sample is one committed transaction.
                    Flavor::Postgres => (
                        delta("xact_commit").map(|d| d - 1.0),
                        delta("xact_rollback"),
                        None,
                    ),
                    // …and one question.
                    Flavor::MySql => (
                        delta("com_commit"),
                        delta("com_rollback"),
                        delta("questions").map(|d| d - 1.0),
                    ),
                };
                for (series, v) in [
                    ("db.xact_commit_per_s", rate(commits)),
                    ("db.xact_rollback_per_s", rate(rollbacks)),
                    ("db.queries_per_s", rate(queries)),
                    ("db.deadlocks_per_s", rate(delta("deadlocks"))),
                    ("db.temp_bytes_per_s", rate(delta("temp_bytes"))),
                    ("db.row_lock_waits_per_s", rate(delta("row_lock_waits"))),
                ] {
                    if let Some(v) = v {
                        out.extend(value(self.key(series), v));
                    }
                }
            }
            let ratio = match self.flavor {
                Flavor::Postgres => delta("blks_hit")
                    .zip(delta("blks_read"))
                    .and_then(|(hit, read)| (hit + read > 0.0).then(|| hit / (hit + read))),
                Flavor::MySql => delta("read_requests")
                    .zip(delta("disk_reads"))
                    .and_then(|(req, disk)| (req > 0.0).then(|| (1.0 - disk / req).max(0.0))),
            };
            if let Some(r) = ratio {
                out.extend(value(self.key("db.cache_hit_ratio"), r));
            }
        }
        self.last = Some((at, raw));
        out
    }
}

/// Samples `target` every `every` until `stop`.
pub(crate) async fn run(target: Target, slot: Slot, every: Duration, stop: CancellationToken) {
    let rates = Rates::new(&target.name, target.flavor);
    let sampler = Sampler { target, rates };
    connected::drive_connected(sampler, slot, every, TIMEOUT, stop).await;
}

/// A database server's statistics, read over a connection of the monitor's own.
struct Sampler {
    target: Target,
    rates: Rates,
}

impl ConnectedSampler for Sampler {
    type Conn = Conn;

    fn what(&self) -> String {
        format!(
            "database monitor `{}` ({})",
            self.target.name, self.target.redacted
        )
    }

    fn answers_again(&self) -> &'static str {
        "the database answers again"
    }

    fn connect(&self) -> BoxFuture<'_, Result<Self::Conn, String>> {
        Box::pin(async {
            self.target
                .connect()
                .await
                .map_err(|e| self.target.scrub(&e.to_string()))
        })
    }

    fn sample<'a>(
        &'a mut self,
        conn: &'a mut Self::Conn,
    ) -> BoxFuture<'a, Result<Vec<MonitorValue>, String>> {
        Box::pin(async move {
            let raw = sample(conn)
                .await
                .map_err(|e| self.target.scrub(&e.to_string()))?;
            Ok(self.rates.values(Instant::now(), raw))
        })
    }

    fn reset(&mut self) {
        self.rates = Rates::new(&self.target.name, self.target.flavor);
    }

    fn close(conn: Self::Conn) -> BoxFuture<'static, ()> {
        Box::pin(conn.close())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: &[MonitorValue]) -> HashMap<String, f64> {
        values.iter().map(|v| (v.series.clone(), v.value)).collect()
    }

    fn pg(commit: f64, hit: f64, read: f64, deadlocks: f64) -> Raw {
        let mut raw = Raw::default();
        for (k, v) in [
            ("xact_commit", commit),
            ("xact_rollback", 0.0),
            ("blks_hit", hit),
            ("blks_read", read),
            ("deadlocks", deadlocks),
            ("temp_bytes", 0.0),
        ] {
            raw.counters.insert(k, v);
        }
        raw.gauges.push(("active".into(), 3.0));
        raw
    }

    #[test]
    fn postgres_counters_become_rates_and_ratios_over_the_interval() {
        let mut rates = Rates::new("main", Flavor::Postgres);
        let t0 = Instant::now();
        let first = series(&rates.values(t0, pg(100.0, 1000.0, 0.0, 2.0)));
        assert_eq!(
            first.get("db.connections{db=main,state=active}"),
            Some(&3.0)
        );
        assert_eq!(first.get("db.deadlocks{db=main}"), Some(&0.0));
        assert!(!first.contains_key("db.xact_commit_per_s{db=main}"));
        let second =
            series(&rates.values(t0 + Duration::from_secs(2), pg(301.0, 1900.0, 100.0, 3.0)));
        // 201 commits in 2 s, one of them the monitor's own sample.
        assert_eq!(second["db.xact_commit_per_s{db=main}"], 100.0);
        assert_eq!(second["db.cache_hit_ratio{db=main}"], 0.9);
        assert_eq!(second["db.deadlocks_per_s{db=main}"], 0.5);
        assert_eq!(second["db.deadlocks{db=main}"], 1.0);
        // A counter that went back (a restart) gives no rate.
        let third = series(&rates.values(t0 + Duration::from_secs(3), pg(5.0, 1900.0, 100.0, 3.0)));
        assert!(!third.contains_key("db.xact_commit_per_s{db=main}"));
        // No block was touched: no ratio rather than a made-up one.
        assert!(!third.contains_key("db.cache_hit_ratio{db=main}"));
    }

    #[test]
    fn mysql_status_becomes_queries_threads_and_hit_ratio() {
        let rows = |q: u64, reads: u64, req: u64| -> Vec<(String, String)> {
            [
                ("Questions", q),
                ("Threads_running", 4),
                ("Threads_connected", 11),
                ("Innodb_buffer_pool_read_requests", req),
                ("Innodb_buffer_pool_reads", reads),
                ("Innodb_row_lock_waits", 7),
                ("Innodb_deadlocks", 1),
                ("Uptime", 99),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
        };
        let mut rates = Rates::new("shop", Flavor::MySql);
        let t0 = Instant::now();
        let first = series(&rates.values(t0, mysql_raw(&rows(1000, 10, 5000))));
        assert_eq!(first["db.threads_running{db=shop}"], 3.0);
        assert_eq!(first["db.threads_connected{db=shop}"], 10.0);
        let second = series(&rates.values(
            t0 + Duration::from_secs(1),
            mysql_raw(&rows(1501, 20, 6000)),
        ));
        assert_eq!(second["db.queries_per_s{db=shop}"], 500.0);
        assert_eq!(second["db.cache_hit_ratio{db=shop}"], 0.99);
        assert_eq!(second["db.row_lock_waits_per_s{db=shop}"], 0.0);
        assert_eq!(second["db.deadlocks{db=shop}"], 0.0);
    }

    #[test]
    fn urls_are_checked_and_passwords_never_shown() {
        let spec = |url: &str| DatabaseMonitorSpec {
            name: "main".into(),
            url: url.into(),
        };
        let t = Target::new(&spec("postgres://app:hunter22@127.0.0.1:5432/shop")).unwrap();
        assert_eq!(t.flavor, Flavor::Postgres);
        assert_eq!(t.redacted, "postgres://app:***@127.0.0.1:5432/shop");
        assert_eq!(t.scrub("bad hunter22"), "bad ***");
        let t = Target::new(&spec("mariadb://root@127.0.0.1/test")).unwrap();
        assert_eq!(t.flavor, Flavor::MySql);
        let err = Target::new(&spec("sqlite://x:secret@h/db")).unwrap_err();
        assert!(err.contains("expected a postgres://"), "{err}");
        assert!(!err.contains("secret"), "{err}");
        let shown = format!("{:?}", spec("mysql://u:topsecret@h/db?password=again"));
        assert!(
            !shown.contains("topsecret") && !shown.contains("again"),
            "{shown}"
        );
    }
}

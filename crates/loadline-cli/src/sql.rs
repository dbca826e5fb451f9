//! The databases of a run, around its load: before it, every database is
//! connected (its pool filled), `setup:` runs and every statement is prepared, so
//! an unreachable database, wrong credentials or a syntax error stop the run
//! before any load (exit 1: the scenario is valid, its target is not there);
//! after it — also after a failed or interrupted run, or a failed preparation —
//! `teardown:` runs and the pools close. Messages name the database (its URL's
//! password replaced by `***`) or the step.

use std::future::Future;
use std::process::ExitCode;

use loadline_config::SqlPlan;
use loadline_core::plan::Plan;
use loadline_protocols::sql::SqlError;

use crate::EXIT_RUNTIME;

/// What came of the work around a load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Around {
    /// There are no databases, or teardown went well.
    Clean,
    /// `teardown:` failed (reported): the run's outcome stands, but a passing
    /// run exits 1.
    TeardownFailed,
}

/// Runs `load` between the preparation of `sql`'s databases and their
/// teardown; without databases, just runs it. `Err` (exit 1, reported) when the
/// databases could not be made ready, and the load never ran.
pub async fn around<T>(
    sql: Option<&SqlPlan>,
    plan: &Plan,
    quiet: bool,
    load: impl Future<Output = T>,
) -> Result<(T, Around), ExitCode> {
    let Some(sql) = sql else {
        return Ok((load.await, Around::Clean));
    };
    if let Err(e) = sql.protocol.connect_all().await {
        eprintln!("error: {e}");
        eprintln!("error: a database is not available: nothing was run");
        return Err(ExitCode::from(EXIT_RUNTIME));
    }
    let ready = prepare(sql, plan).await;
    if let Err(errors) = &ready {
        for e in errors {
            eprintln!("error: {e}");
        }
        eprintln!("error: the databases are not ready for the load: nothing was run");
    } else if !quiet {
        println!("{}", ready_line(sql, plan));
    }
    let outcome = match ready {
        Ok(()) => Some(load.await),
        Err(_) => None,
    };
    let torn_down = teardown(sql).await;
    match outcome {
        Some(done) => Ok((done, torn_down)),
        None => Err(ExitCode::from(EXIT_RUNTIME)),
    }
}

/// `setup:`, then every statement prepared; every problem, each naming its
/// database or step.
async fn prepare(sql: &SqlPlan, plan: &Plan) -> Result<(), Vec<String>> {
    if let Err(e) = sql.protocol.run_setup(&sql.setup).await {
        return Err(vec![e.to_string()]);
    }
    sql.protocol.prepare_all().await.map_err(|errors| {
        errors
            .into_iter()
            .map(|e| explain(&e, plan))
            .collect::<Vec<_>>()
    })
}

/// An error before the load, with a statement's metric group named as its step.
fn explain(e: &SqlError, plan: &Plan) -> String {
    match e {
        SqlError::Prepare {
            database,
            group,
            reason,
        } => match plan.groups.get(*group) {
            Some(g) => format!(
                "step `{}` (database `{database}`): the statement does not prepare: {reason}",
                g.name
            ),
            None => e.to_string(),
        },
        other => other.to_string(),
    }
}

/// Runs `teardown:` (reported when it fails) and closes the pools.
async fn teardown(sql: &SqlPlan) -> Around {
    let result = sql.protocol.run_setup(&sql.teardown).await;
    sql.protocol.close().await;
    match result {
        Ok(()) => Around::Clean,
        Err(e) => {
            eprintln!("error: teardown: {e}");
            Around::TeardownFailed
        }
    }
}

/// `databases ready: main, replica; setup ran 3 statements`.
fn ready_line(sql: &SqlPlan, plan: &Plan) -> String {
    let names = sql.databases.join(", ");
    let statements = plan.groups.iter().filter(|g| g.kind == "sql").count();
    let mut line = format!("databases ready: {names}");
    if !sql.setup.is_empty() {
        line.push_str(&format!("; setup ran {} statement(s)", sql.setup.len()));
    }
    if statements > 0 {
        line.push_str(&format!("; {statements} statement step(s) checked"));
    }
    line
}

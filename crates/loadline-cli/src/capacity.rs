//! `loadline capacity` (and `--profile capacity`): runs the capacity search of
//! [`loadline_core::capacity`] and renders its steps as a table, its verdict, and
//! the JSON report.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use loadline_config::{Loaded, Overrides};
use loadline_core::capacity::{
    self, CapacityReport, SearchEnd, SearchObserver, SearchOptions, SearchSpec, StepEnd, StepKind,
    StepReport,
};
use loadline_core::duration::format_duration;
use loadline_core::plan::Plan;
use loadline_core::runner::{NoObserver, Observer};
use loadline_core::summary::{Status, ThresholdResult};
use loadline_report::terminal::ms;
use serde::Serialize;

use crate::args::{OutputArgs, SearchArgs};
use crate::{output, run, scenario, EXIT_INVALID, EXIT_RUNTIME};

/// `loadline capacity`: `profile` (if any) gives the default start rate.
pub fn capacity(
    file: &Path,
    profile: Option<String>,
    target: Option<String>,
    search: &SearchArgs,
    out: &OutputArgs,
) -> ExitCode {
    let overrides = Overrides {
        profile: profile.filter(|p| p != loadline_config::CAPACITY_PROFILE),
        target,
        phases_optional: true,
        ..Overrides::default()
    };
    let loaded = match scenario::load(file, &overrides) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let (plan, opts) = match prepare(loaded, search) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if let Err(code) = run::check_output(out) {
        return code;
    }
    let rt = match run::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let done = rt.block_on(async {
        let interrupt = loadline_run::watch_signals(plan.graceful_stop, Arc::new(run::Stderr));
        let search = execute(&plan, &opts, out, &interrupt);
        run::around(&plan, &interrupt, out.quiet, search).await
    });
    drop(rt);
    match done {
        Ok((report, finished)) => finished.over(finish(&plan, &opts, &report, out, None)),
        Err(run::Refused::Code(code)) => code,
        // Interrupted before the first step: nothing was searched.
        Err(run::Refused::Interrupted) => ExitCode::from(run::exit_code(Status::Interrupted)),
    }
}

/// The plan to search with and the complete settings: the flags, else the
/// scenario's `capacity:`, else the defaults; the start rate falls back to the
/// highest arrival rate of the phases chosen. Errors are printed (exit 2).
pub fn prepare(
    loaded: Loaded,
    search: &SearchArgs,
) -> Result<(Arc<Plan>, SearchOptions), ExitCode> {
    let source = loaded.plan.source.clone();
    if !loaded.plan.scenarios.is_empty() {
        eprintln!(
            "error: {source}: the capacity search steps up one arrival rate, and this file has several `scenarios:` running at once: search a file with one scenario (its `phases` and `flows`)"
        );
        return Err(ExitCode::from(EXIT_INVALID));
    }
    if loaded.plan.thresholds.is_empty() {
        eprintln!(
            "error: {source}: the capacity search judges each step by the scenario's thresholds, and it has none: add e.g. `thresholds: {{ latency: [\"p95 < 500ms\"], errors: [\"rate < 1%\"] }}`"
        );
        return Err(ExitCode::from(EXIT_INVALID));
    }
    let from_phases = SearchSpec {
        start: scenario::peak_rate(&loaded.plan.phases),
        ..SearchSpec::default()
    };
    let opts = search
        .spec()
        .or(loaded.capacity.clone())
        .or(from_phases)
        .resolve()
        .map_err(|e| {
            eprintln!("error: capacity search: {e}");
            ExitCode::from(EXIT_INVALID)
        })?;
    Ok((Arc::new(loaded.plan), opts))
}

/// Runs the search, printing each step as it ends (unless quiet).
pub async fn execute(
    plan: &Plan,
    opts: &SearchOptions,
    out: &OutputArgs,
    interrupt: &loadline_run::Interrupt,
) -> CapacityReport {
    let run_opts = interrupt.run_options(out.seed);
    if !out.quiet {
        println!("{}", intro(plan, opts));
        println!("{}", header());
    }
    let mut observer = TableObserver {
        quiet: out.quiet,
        tty: std::io::stdout().is_terminal(),
        duration: opts.step_duration,
    };
    capacity::search(plan, opts, &run_opts, &mut observer).await
}

/// Prints the verdict, writes the JSON report, and picks the exit code.
pub fn finish(
    plan: &Plan,
    opts: &SearchOptions,
    report: &CapacityReport,
    out: &OutputArgs,
    extra: Option<serde_json::Value>,
) -> ExitCode {
    if out.quiet {
        println!("{}", intro(plan, opts));
        println!("{}", header());
        for s in &report.steps {
            println!("{}", row(s));
        }
    }
    print!("{}", verdict(report));
    let mut code = run::exit_code(report.status());
    if let Some(path) = &out.summary_json {
        let doc = CapacityDoc {
            name: plan.name.as_deref(),
            scenario: &plan.source,
            tags: run::tags(out),
            status: match code {
                0 => "passed",
                130 => "interrupted",
                _ => "failed",
            },
            capacity: report,
        };
        let written = match extra {
            None => output::write_json(path, &doc),
            Some(serde_json::Value::Object(more)) => serde_json::to_value(&doc)
                .map_err(|e| e.to_string())
                .and_then(|mut v| {
                    if let Some(obj) = v.as_object_mut() {
                        obj.extend(more);
                    }
                    output::write_json(path, &v)
                }),
            Some(_) => output::write_json(path, &doc),
        };
        match written {
            Ok(()) => println!("\n  report written to {}", path.display()),
            Err(e) => {
                eprintln!("error: {e}");
                if code == 0 {
                    code = EXIT_RUNTIME;
                }
            }
        }
    }
    ExitCode::from(code)
}

/// The JSON report (`--summary-json`).
#[derive(Serialize)]
struct CapacityDoc<'a> {
    name: Option<&'a str>,
    scenario: &'a str,
    /// The run's `--tag`s; left out when none.
    #[serde(skip_serializing_if = "loadline_run::Tags::is_empty")]
    tags: loadline_run::Tags,
    /// `passed` (a passing rate was found), `failed` (even the start rate
    /// failed) or `interrupted`.
    status: &'static str,
    capacity: &'a CapacityReport,
}

struct TableObserver {
    quiet: bool,
    tty: bool,
    duration: std::time::Duration,
}

impl SearchObserver for TableObserver {
    fn step_started(&mut self, index: usize, rate: f64, kind: StepKind) -> Box<dyn Observer> {
        if !self.quiet && self.tty {
            let kind = match kind {
                StepKind::Climb => "climb",
                StepKind::Refine => "refine",
            };
            print!(
                "  {index:>4}  {kind:<6}  {rate:>9.2}  … running for {}\r",
                format_duration(self.duration)
            );
            let _ = std::io::stdout().flush();
        }
        Box::new(NoObserver)
    }

    fn step_finished(&mut self, step: &StepReport) {
        if !self.quiet {
            // Wide enough to cover the "running" line on a terminal.
            println!("{:<60}", row(step));
        }
    }
}

fn intro(plan: &Plan, o: &SearchOptions) -> String {
    let growth = match o.growth {
        capacity::Growth::Factor(f) => format!("x{f} per step"),
        capacity::Growth::Add(a) => format!("+{a}/s per step"),
    };
    let title = plan.name.as_deref().unwrap_or(&plan.source);
    format!(
        "\nloadline · {title} · capacity search: from {}/s, {growth}, {} per step, at most {}/s, {} refining step{}\n  rates are iterations (arrivals) per second; each step is judged by the thresholds on its own figures\n",
        o.start,
        format_duration(o.step_duration),
        o.max_rate,
        o.refine,
        if o.refine == 1 { "" } else { "s" }
    )
}

fn header() -> String {
    format!(
        "  {:>4}  {:<6}  {:>9}  {:>9}  {:>8}  {:>8}  {:>8}  {:>7}  result",
        "step", "kind", "rate/s", "achieved", "req/s", "p95", "p99", "errors"
    )
}

fn row(s: &StepReport) -> String {
    let kind = match s.kind {
        StepKind::Climb => "climb",
        StepKind::Refine => "refine",
    };
    let has = s.requests > 0;
    let lat = |v: f64| if has { ms(v) } else { "-".into() };
    let result = if s.passed {
        "pass".to_string()
    } else {
        let failed: Vec<String> = s.failed().map(short).collect();
        if failed.is_empty() {
            match s.end {
                StepEnd::Interrupted => "interrupted".into(),
                StepEnd::DataExhausted => "FAIL (a unique data file ran out)".into(),
                StepEnd::Aborted => "FAIL (aborted)".into(),
                StepEnd::Completed => "FAIL".into(),
            }
        } else {
            format!("FAIL {}", failed.join("; "))
        }
    };
    format!(
        "  {:>4}  {:<6}  {:>9.2}  {:>9.2}  {:>8.1}  {:>8}  {:>8}  {:>6.2}%  {result}",
        s.index,
        kind,
        s.rate,
        s.achieved_rate,
        s.request_rate,
        lat(s.latency_ms.p95),
        lat(s.latency_ms.p99),
        s.error_rate * 100.0,
    )
}

/// `latency p95 < 200ms (was 312.00ms)`.
fn short(t: &ThresholdResult) -> String {
    format!("{} {} (was {})", t.metric, t.expr, t.display)
}

fn verdict(r: &CapacityReport) -> String {
    let mut o = String::new();
    let _ = writeln!(o);
    let passing_step = r
        .max_passing_rate
        .and_then(|rate| r.steps.iter().find(|s| s.passed && s.rate == rate));
    match (r.max_passing_rate, passing_step) {
        (Some(rate), Some(s)) => {
            let _ = writeln!(
                o,
                "  capacity        {rate:.2} iterations/s ({:.1} requests/s): the highest rate at which every threshold held",
                s.request_rate
            );
        }
        (Some(rate), None) => {
            let _ = writeln!(o, "  capacity        {rate:.2} iterations/s");
        }
        (None, _) => {
            let _ = writeln!(
                o,
                "  capacity        none found: even the first step failed its thresholds"
            );
        }
    }
    match r.first_failing_rate {
        Some(rate) => {
            let why: Vec<String> = r.failed_thresholds.iter().map(short).collect();
            let _ = writeln!(
                o,
                "  first failing   {rate:.2} iterations/s: {}",
                if why.is_empty() {
                    "the step did not complete".to_string()
                } else {
                    why.join("; ")
                }
            );
        }
        None => {
            let _ = writeln!(o, "  first failing   none");
        }
    }
    let total: f64 = r.steps.iter().map(|s| s.duration_s).sum();
    let how = match r.end {
        SearchEnd::Bracketed => "narrowed down between passing and failing",
        SearchEnd::MaxRate => "every step passed up to the maximum rate: the capacity is at least that (raise --max-rate)",
        SearchEnd::StartFailed => "the start rate failed: try a lower --start",
        SearchEnd::StepLimit => "the step limit was reached",
        SearchEnd::Interrupted => "interrupted",
        SearchEnd::DataExhausted => "a `unique` data file ran out of rows",
    };
    let _ = writeln!(
        o,
        "  search          {} step{} in {:.0}s; {how}",
        r.steps.len(),
        if r.steps.len() == 1 { "" } else { "s" },
        total
    );
    o
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use loadline_core::summary::LatencyMs;

    fn step(index: usize, rate: f64, passed: bool) -> StepReport {
        StepReport {
            index,
            kind: if index > 2 {
                StepKind::Refine
            } else {
                StepKind::Climb
            },
            rate,
            achieved_rate: rate - 0.5,
            request_rate: rate * 3.0,
            requests: 300,
            error_rate: 0.001,
            iterations: 100,
            dropped: 0,
            interrupted: 0,
            latency_ms: LatencyMs {
                p95: if passed { 52.5 } else { 412.0 },
                p99: if passed { 60.0 } else { 530.0 },
                ..LatencyMs::default()
            },
            duration_s: 3.0,
            passed,
            end: StepEnd::Completed,
            thresholds: vec![ThresholdResult {
                metric: "latency".into(),
                expr: "p95 < 200ms".into(),
                value: Some(412.0),
                display: "412.00ms".into(),
                passed,
                abort_on_fail: false,
            }],
        }
    }

    #[test]
    fn renders_rows_and_the_verdict() {
        let report = CapacityReport {
            max_passing_rate: Some(30.0),
            first_failing_rate: Some(45.0),
            failed_thresholds: step(2, 45.0, false).thresholds,
            end: SearchEnd::Bracketed,
            steps: vec![step(1, 30.0, true), step(2, 45.0, false)],
        };
        let table: Vec<String> = std::iter::once(header())
            .chain(report.steps.iter().map(row))
            .collect();
        let expected = [
            "  step  kind       rate/s   achieved     req/s       p95       p99   errors  result",
            "     1  climb       30.00      29.50      90.0   52.50ms   60.00ms    0.10%  pass",
            "     2  climb       45.00      44.50     135.0   412.0ms   530.0ms    0.10%  FAIL latency p95 < 200ms (was 412.00ms)",
        ];
        assert_eq!(table, expected);
        let expected = "
  capacity        30.00 iterations/s (90.0 requests/s): the highest rate at which every threshold held
  first failing   45.00 iterations/s: latency p95 < 200ms (was 412.00ms)
  search          2 steps in 6s; narrowed down between passing and failing
";
        assert_eq!(verdict(&report), expected);
    }
}

//! `loadline run`, and the parts of running a plan that `demo` shares: the
//! runtime, the signal handling, the live progress and the outputs.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use loadline_core::plan::Plan;
use loadline_core::runner::{self, NoObserver, Observer, RunOptions};
use loadline_core::summary::Summary;
use loadline_report::{json, live, terminal};
use tokio_util::sync::CancellationToken;

use crate::args::{OutputArgs, ScenarioArgs, SearchArgs};
use crate::{capacity, output, scenario, EXIT_INVALID, EXIT_RUNTIME};

/// `loadline run`.
pub fn run(file: &Path, args: &ScenarioArgs, out: &OutputArgs) -> ExitCode {
    if args.profile.as_deref() == Some(loadline_config::CAPACITY_PROFILE) {
        if args.duration.is_some() {
            eprintln!("error: --duration does not apply to the capacity search: its length follows from its step duration and the number of steps");
            return ExitCode::from(EXIT_INVALID);
        }
        return capacity::capacity(file, None, args.target.clone(), &SearchArgs::default(), out);
    }
    let loaded = match scenario::load(file, &args.overrides(false)) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Err(code) = check_output(out) {
        return code;
    }
    let plan = Arc::new(loaded.plan);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let summary = rt.block_on(execute(plan.clone(), out, progress(&plan, out.quiet)));
    drop(rt);
    finish(&summary, out, None)
}

/// Checks, before any load, that the output files can be written.
pub fn check_output(out: &OutputArgs) -> Result<(), ExitCode> {
    if let Some(path) = &out.summary_json {
        if let Err(e) = json::check_writable(path) {
            eprintln!("error: --summary-json: {e}");
            return Err(ExitCode::from(EXIT_INVALID));
        }
    }
    Ok(())
}

/// A multi-threaded runtime for the run.
pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            ExitCode::from(EXIT_RUNTIME)
        })
}

/// The live progress of a run of `plan` (nothing when `quiet`).
pub fn progress(plan: &Plan, quiet: bool) -> Box<dyn Observer> {
    if quiet {
        return Box::new(NoObserver);
    }
    let tty = std::io::stdout().is_terminal();
    let every = if tty { 1 } else { 5 };
    let phase_names = plan.phases.iter().map(|p| p.name.clone()).collect();
    Box::new(live::Progress::new(
        std::io::stdout(),
        tty,
        every,
        phase_names,
    ))
}

/// Run options whose tokens Ctrl-C (or SIGTERM) cancels: the first stops new
/// iterations, the second cuts in-flight ones off. Call inside the runtime.
pub fn interruptible(graceful: Duration, seed: Option<u64>) -> RunOptions {
    let stop = CancellationToken::new();
    let kill = CancellationToken::new();
    tokio::spawn(watch_signals(stop.clone(), kill.clone(), graceful));
    RunOptions {
        stop,
        kill,
        seed,
        ..RunOptions::default()
    }
}

/// Runs `plan`, interruptible, and summarizes it.
pub async fn execute(plan: Arc<Plan>, out: &OutputArgs, observer: Box<dyn Observer>) -> Summary {
    let opts = interruptible(plan.graceful_stop, out.seed);
    let result = runner::run(plan.clone(), opts, observer).await;
    if !out.quiet && std::io::stdout().is_terminal() {
        println!();
    }
    Summary::new(&plan, &result)
}

/// Prints the summary, writes the JSON (with `extra` fields merged in at the
/// top level), and turns the status into the exit code.
pub fn finish(summary: &Summary, out: &OutputArgs, extra: Option<serde_json::Value>) -> ExitCode {
    print!("{}", terminal::render(summary));
    let mut code = summary.status.exit_code();
    if let Some(path) = &out.summary_json {
        let written = match extra {
            None => json::write_summary(path, summary).map_err(|e| e.to_string()),
            Some(extra) => output::write_json_with(path, summary, extra),
        };
        match written {
            Ok(()) => println!("\n  summary written to {}", path.display()),
            Err(e) => {
                eprintln!("error: {e}");
                if code == 0 {
                    code = i32::from(EXIT_RUNTIME);
                }
            }
        }
    }
    ExitCode::from(u8::try_from(code).unwrap_or(EXIT_RUNTIME))
}

/// First SIGINT/SIGTERM: stop starting iterations and let in-flight ones finish;
/// a second one: cut them off.
async fn watch_signals(stop: CancellationToken, kill: CancellationToken, graceful: Duration) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::warn!("cannot listen for signals; Ctrl-C will end loadline without a summary");
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!(
        "\nstopping: no new iterations; in-flight ones get up to {} to finish (signal again to cut them off)",
        loadline_core::duration::format_duration(graceful)
    );
    stop.cancel();
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    eprintln!("\ncutting off in-flight iterations");
    kill.cancel();
}

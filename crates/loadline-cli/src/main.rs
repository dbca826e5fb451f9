//! The `loadline` command. It parses the command line, calls the library crates,
//! prints, and maps the outcome to the documented exit codes:
//! 0 passed, 1 runtime failure, 2 invalid input, 3 thresholds failed,
//! 4 aborted by an abort-on-fail threshold, 130 interrupted.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use loadline_core::plan::{Pacing, Plan, Stop};
use loadline_core::runner::{self, NoObserver, Observer, RunOptions};
use loadline_core::summary::Summary;
use loadline_report::{json, live, terminal};
use tokio_util::sync::CancellationToken;

/// Exit code for invalid input (command line or scenario file).
const EXIT_INVALID: u8 = 2;
/// Exit code for a failure of loadline itself while running.
const EXIT_RUNTIME: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "loadline",
    version,
    about = "Load testing for HTTP APIs: scenario files, exact metrics, SLAs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a scenario file and describe it, without sending anything.
    Validate {
        /// The scenario file (YAML).
        file: PathBuf,
    },
    /// Run a scenario file: live progress, then a summary and the thresholds.
    Run {
        /// The scenario file (YAML).
        file: PathBuf,
        /// Also write the summary as JSON to this file.
        #[arg(long, value_name = "PATH")]
        summary_json: Option<PathBuf>,
        /// No live progress, only the summary.
        #[arg(long, short)]
        quiet: bool,
        /// Seed for the random choices (flows, think times, $randint…), for repeatable runs.
        #[arg(long)]
        seed: Option<u64>,
    },
    /// Print the JSON Schema of the scenario format (for editor autocompletion).
    Schema,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_INVALID } else { 0 });
        }
    };
    init_logging();
    match cli.command {
        Command::Validate { file } => validate(&file),
        Command::Run {
            file,
            summary_json,
            quiet,
            seed,
        } => run(&file, summary_json.as_deref(), quiet, seed),
        Command::Schema => {
            println!("{}", loadline_config::json_schema());
            ExitCode::SUCCESS
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOADLINE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Loads a scenario, printing its errors (exit 2) or warnings.
fn load(file: &Path) -> Result<loadline_config::Loaded, ExitCode> {
    match loadline_config::load_file(file) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            Ok(loaded)
        }
        Err(errors) => {
            for e in &errors.errors {
                eprintln!("error: {e}");
            }
            let n = errors.errors.len();
            eprintln!(
                "{}: {n} error{} found; nothing was run",
                file.display(),
                if n == 1 { "" } else { "s" }
            );
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

fn validate(file: &Path) -> ExitCode {
    let loaded = match load(file) {
        Ok(l) => l,
        Err(code) => return code,
    };
    println!("{}: valid", file.display());
    print!("{}", describe(&loaded.plan));
    ExitCode::SUCCESS
}

/// A short description of what a plan will do.
fn describe(plan: &Plan) -> String {
    let mut o = String::new();
    o.push_str(&format!("  phases ({}):\n", plan.phases.len()));
    for p in &plan.phases {
        let pacing = match &p.pacing {
            Pacing::Open {
                rate,
                ramp_to,
                max_vus,
            } => match ramp_to {
                Some(to) => format!("{rate}/s rising to {to}/s, at most {max_vus} VUs"),
                None => format!("{rate}/s, at most {max_vus} VUs"),
            },
            Pacing::Closed { vus } => format!("{vus} looping VUs"),
        };
        let stop = match &p.stop {
            Stop::Duration(d) => format!("for {}", loadline_core::duration::format_duration(*d)),
            Stop::Iterations {
                total,
                max_duration,
            } => match max_duration {
                Some(d) => format!(
                    "{total} iterations (at most {})",
                    loadline_core::duration::format_duration(*d)
                ),
                None => format!("{total} iterations"),
            },
        };
        o.push_str(&format!("    {}: {pacing}, {stop}\n", p.name));
    }
    o.push_str(&format!("  flows ({}):\n", plan.flows.len()));
    for f in &plan.flows {
        o.push_str(&format!("    {} (weight {})\n", f.name, f.weight));
    }
    o.push_str(&format!("  metric groups ({}):\n", plan.groups.len()));
    for g in &plan.groups {
        o.push_str(&format!("    {}\n", g.name));
    }
    o.push_str(&format!("  thresholds: {}\n", plan.thresholds.len()));
    o
}

fn run(file: &Path, summary_json: Option<&Path>, quiet: bool, seed: Option<u64>) -> ExitCode {
    let loaded = match load(file) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Some(path) = summary_json {
        if let Err(e) = json::check_writable(path) {
            eprintln!("error: --summary-json: {e}");
            return ExitCode::from(EXIT_INVALID);
        }
    }
    let plan = Arc::new(loaded.plan);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let summary = rt.block_on(async {
        let stop = CancellationToken::new();
        let kill = CancellationToken::new();
        tokio::spawn(watch_signals(
            stop.clone(),
            kill.clone(),
            plan.graceful_stop,
        ));
        let stdout_tty = std::io::stdout().is_terminal();
        let phase_names = plan.phases.iter().map(|p| p.name.clone()).collect();
        let observer: Box<dyn Observer> = if quiet {
            Box::new(NoObserver)
        } else {
            let every = if stdout_tty { 1 } else { 5 };
            Box::new(live::Progress::new(
                std::io::stdout(),
                stdout_tty,
                every,
                phase_names,
            ))
        };
        let opts = RunOptions {
            stop,
            kill,
            seed,
            ..RunOptions::default()
        };
        let result = runner::run(plan.clone(), opts, observer).await;
        Summary::new(&plan, &result)
    });
    if !quiet && std::io::stdout().is_terminal() {
        println!();
    }
    print!("{}", terminal::render(&summary));
    let mut code = summary.status.exit_code();
    if let Some(path) = summary_json {
        match json::write_summary(path, &summary) {
            Ok(()) => println!("\n  summary written to {}", path.display()),
            Err(e) => {
                eprintln!("error: {e}");
                if code == 0 {
                    code = EXIT_RUNTIME as i32;
                }
            }
        }
    }
    drop(rt);
    ExitCode::from(u8::try_from(code).unwrap_or(EXIT_RUNTIME))
}

/// First SIGINT/SIGTERM: stop starting iterations and let in-flight ones finish;
/// a second one: cut them off.
async fn watch_signals(
    stop: CancellationToken,
    kill: CancellationToken,
    graceful: std::time::Duration,
) {
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

//! The `loadline` command. It parses the command line, calls the library crates,
//! prints, and maps the outcome to the documented exit codes:
//! 0 passed, 1 runtime failure, 2 invalid input, 3 thresholds failed (or, for a
//! capacity search, even the start rate failed), 4 aborted by an abort-on-fail
//! threshold, 130 interrupted.

mod args;
mod capacity;
#[cfg(feature = "demo")]
mod demo;
mod output;
mod run;
mod scenario;
mod url;

use std::process::ExitCode;

use clap::Parser;

use args::{Cli, Command};

/// Exit code for invalid input (command line or scenario file).
const EXIT_INVALID: u8 = 2;
/// Exit code for a failure of loadline itself while running.
const EXIT_RUNTIME: u8 = 1;

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
        Command::Validate { file, scenario } => scenario::validate(&file, &scenario),
        Command::Run {
            file,
            scenario,
            request,
            output,
        } => run::run(&file, &scenario, &request, &output),
        Command::Capacity {
            file,
            profile,
            target,
            search,
            output,
        } => capacity::capacity(&file, profile, target, &search, &output),
        #[cfg(feature = "demo")]
        Command::Demo(args) => demo::demo(&args),
        Command::Schema => {
            println!("{}", loadline_config::json_schema());
            ExitCode::SUCCESS
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LOADLINE_LOG")
        // Some protocols' client libraries log what loadline reports itself.
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                loadline_protocols::registry::Registry::builtin().default_log_filter(),
            )
        });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

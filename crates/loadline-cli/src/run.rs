//! `loadline run`, and the parts of running a plan that `capacity` and `demo`
//! share: the runtime, the live progress, the protocols' lifecycle around the
//! load, and the end-of-run outputs. The run itself is [`loadline_run`]'s; this
//! module turns flags into its settings and its results into text and exit codes.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use loadline_core::plan::Plan;
use loadline_core::runner::{NoObserver, Observer};
use loadline_core::summary::Status;
use loadline_report::html::ReportMeta;
use loadline_report::{html, json, junit, live, markdown, terminal};
pub use loadline_run::{Executed, RunEnv};
use loadline_run::{Notify, Outputs};

use crate::args::{OutputArgs, RequestArgs, ScenarioArgs, SearchArgs};
use crate::{capacity, output, scenario, url, EXIT_INVALID, EXIT_RUNTIME};

/// `loadline run`: a scenario file, or a URL.
pub fn run(file: &Path, args: &ScenarioArgs, request: &RequestArgs, out: &OutputArgs) -> ExitCode {
    if let Some(url) = url::as_url(file) {
        if args.profile.is_some() {
            eprintln!("error: --profile chooses among a scenario file's profiles; a URL has none");
            return ExitCode::from(EXIT_INVALID);
        }
        return match url::load(url, args, request) {
            Ok(loaded) => run_loaded(&loaded.plan.source.clone(), loaded, out),
            Err(code) => code,
        };
    }
    if request.any() {
        eprintln!("error: -m, -H and -b give the request of `loadline run URL`; a scenario file writes its requests in its steps");
        return ExitCode::from(EXIT_INVALID);
    }
    if args.profile.as_deref() == Some(loadline_config::CAPACITY_PROFILE) {
        if args.scale_to.is_some() || args.load().is_some() {
            eprintln!("error: --scale-to, --vus, --rate, --duration and --iterations do not apply to the capacity search: its length follows from its step duration and the number of steps");
            return ExitCode::from(EXIT_INVALID);
        }
        return capacity::capacity(file, None, args.target.clone(), &SearchArgs::default(), out);
    }
    match scenario::load(file, &args.overrides(false)) {
        Ok(loaded) => run_loaded(&file.display().to_string(), loaded, out),
        Err(code) => code,
    }
}

/// Runs a loaded scenario, read from `source`, with the outputs of `out`.
fn run_loaded(source: &str, loaded: loadline_config::Loaded, out: &OutputArgs) -> ExitCode {
    if let Err(code) = check_output(out) {
        return code;
    }
    let env = env_of(source, &loaded);
    let plan = Arc::new(loaded.plan);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let done = rt.block_on(async {
        // Signals are handled from the first moment: during setup too.
        let interrupt = loadline_run::watch_signals(plan.graceful_stop, Arc::new(Stderr));
        let load = execute(
            plan.clone(),
            out,
            progress(&plan, out.quiet),
            &env,
            &interrupt,
        );
        around(&plan, &interrupt, out.quiet, load).await
    });
    drop(rt);
    match done {
        Ok((Ok(done), finished)) => finished.over(finish(&done, out, None)),
        Ok((Err(code), _)) => code,
        Err(Refused::Interrupted) => {
            let mut summary = loadline_run::interrupted_before_the_load(&plan);
            summary.tags = tags(out);
            let done = Executed {
                summary,
                series: Vec::new(),
                errors: Default::default(),
                settings: env.settings.clone(),
            };
            finish(&done, out, None)
        }
        Err(Refused::Code(code)) => code,
    }
}

/// The run's tags, as the flags give them (a later one of the same key wins).
pub fn tags(out: &OutputArgs) -> loadline_run::Tags {
    out.tags.iter().cloned().collect()
}

/// Why a run did not load: the protocols were not ready (exit 1, reported), or a
/// signal came while they were being prepared.
#[derive(Debug)]
pub enum Refused {
    Code(ExitCode),
    Interrupted,
}

/// The exit code of a run's status (see the README).
pub fn exit_code(status: Status) -> u8 {
    match status {
        Status::Passed => 0,
        Status::Failed => 3,
        Status::Aborted => 4,
        Status::Interrupted => 130,
    }
}

/// Prints on stderr what the run has to say.
#[derive(Debug, Clone, Copy)]
pub struct Stderr;

impl Notify for Stderr {
    fn notice(&self, line: &str) {
        eprintln!("{line}");
    }
}

/// What the protocols' `finish` (teardown) left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Finished {
    failed: bool,
}

impl Finished {
    /// `code`, or 1 when a passing run's teardown failed.
    pub fn over(self, code: ExitCode) -> ExitCode {
        if self.failed && code == ExitCode::SUCCESS {
            ExitCode::from(EXIT_RUNTIME)
        } else {
            code
        }
    }
}

/// Runs `load` between the preparation of the plan's protocols (connections,
/// setup: their readiness printed unless `quiet`) and their finish (teardown).
/// `Err` when a protocol was not ready (exit 1, reported: nothing was sent) or a
/// signal interrupted the preparation.
pub async fn around<T>(
    plan: &Plan,
    interrupt: &loadline_run::Interrupt,
    quiet: bool,
    load: impl std::future::Future<Output = T>,
) -> Result<(T, Finished), Refused> {
    let on_ready = |lines: &[String]| {
        if !quiet {
            for line in lines {
                println!("{line}");
            }
        }
    };
    match loadline_run::around(plan, interrupt, on_ready, load).await {
        Ok(done) => {
            for e in &done.finish_errors {
                eprintln!("error: {e}");
            }
            let failed = !done.finish_errors.is_empty();
            Ok((done.outcome, Finished { failed }))
        }
        Err(not_ready) => {
            for e in &not_ready.lines {
                eprintln!("error: {e}");
            }
            if not_ready.interrupted {
                Err(Refused::Interrupted)
            } else {
                Err(Refused::Code(ExitCode::from(EXIT_RUNTIME)))
            }
        }
    }
}

/// The environment of a run of `loaded`, read from `source` (a file or a URL).
pub fn env_of(source: &str, loaded: &loadline_config::Loaded) -> RunEnv {
    let mut settings = vec![("scenario".to_string(), source.to_string())];
    if let Some(p) = &loaded.profile {
        settings.push(("profile".into(), p.clone()));
    }
    if let Some(t) = &loaded.target {
        settings.push(("target".into(), loadline_run::redacted(t)));
    }
    RunEnv {
        monitor: loaded.monitor.clone(),
        target: loaded.target.clone(),
        settings,
    }
}

/// Checks, before any load, that the output files can be written.
pub fn check_output(out: &OutputArgs) -> Result<(), ExitCode> {
    let files = [
        ("--summary-json", out.summary_json.as_ref()),
        ("--report", out.report.as_ref()),
        ("--junit", out.junit.as_ref()),
        ("--markdown", out.markdown.as_ref()),
    ];
    let streams = out.out.iter().map(|s| ("--out", Some(&s.path)));
    let mut seen: Vec<(&str, PathBuf)> = Vec::new();
    for (flag, path) in files.into_iter().chain(streams) {
        if let Some(path) = path {
            if let Err(e) = json::check_writable(path) {
                eprintln!("error: {flag}: {e}");
                return Err(ExitCode::from(EXIT_INVALID));
            }
            let same = same_file_key(path);
            if let Some((first, _)) = seen.iter().find(|(_, p)| *p == same) {
                eprintln!(
                    "error: {flag} {}: {first} writes that file already; give each output its own path",
                    path.display()
                );
                return Err(ExitCode::from(EXIT_INVALID));
            }
            seen.push((flag, same));
        }
    }
    Ok(())
}

/// What identifies an output path: the path with its folder resolved (and a
/// link followed), so `out.json` and `./out.json` are the same file.
fn same_file_key(path: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(path) {
        return real;
    }
    let name = path.file_name().map(PathBuf::from).unwrap_or_default();
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => {
            std::fs::canonicalize(dir).map_or_else(|_| path.to_path_buf(), |d| d.join(name))
        }
        None => std::env::current_dir().map_or_else(|_| path.to_path_buf(), |d| d.join(name)),
    }
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
    let phase_names = (0..plan.phases.len())
        .map(|i| plan.phase_label(i))
        .collect();
    Box::new(live::Progress::new(
        std::io::stdout(),
        tty,
        every,
        phase_names,
    ))
}

/// Runs `plan` with the outputs the flags ask for (see [`loadline_run::execute`]).
/// Fails (exit code 2, reported) only before the load.
pub async fn execute(
    plan: Arc<Plan>,
    out: &OutputArgs,
    observer: Box<dyn Observer>,
    env: &RunEnv,
    interrupt: &loadline_run::Interrupt,
) -> Result<Executed, ExitCode> {
    let outputs = Outputs {
        keep_series: out.report.is_some(),
        streams: out.out.iter().map(|s| (s.format, s.path.clone())).collect(),
        prometheus_listen: out.prometheus_listen,
        no_monitor: out.no_monitor,
        seed: out.seed,
        tags: tags(out),
    };
    let done =
        loadline_run::execute(plan, &outputs, observer, env, Arc::new(Stderr), interrupt).await;
    if !out.quiet && std::io::stdout().is_terminal() {
        println!();
    }
    done.map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_INVALID)
    })
}

/// Prints the summary, writes the JSON (with `extra` fields merged in at the
/// top level) and the other end-of-run files, and turns the status into the
/// exit code (1 when an output could not be written and the run had passed).
pub fn finish(done: &Executed, out: &OutputArgs, extra: Option<serde_json::Value>) -> ExitCode {
    let summary = &done.summary;
    print!("{}", terminal::render(summary));
    let mut code = exit_code(summary.status);
    let mut failures = done.errors.take();
    let meta = ReportMeta {
        settings: done.settings.clone(),
    };
    type Render<'a> = Box<dyn Fn() -> String + 'a>;
    let files: [(Option<&PathBuf>, &str, Render); 3] = [
        (
            out.report.as_ref(),
            "report",
            Box::new(|| html::render(summary, &done.series, &meta)),
        ),
        (
            out.junit.as_ref(),
            "JUnit results",
            Box::new(|| junit::render(summary)),
        ),
        (
            out.markdown.as_ref(),
            "Markdown summary",
            Box::new(|| markdown::render(summary)),
        ),
    ];
    for (path, what, render) in files {
        if let Some(path) = path {
            match output::write_text(path, &render()) {
                Ok(()) => println!("  {what} written to {}", path.display()),
                Err(e) => failures.push(e),
            }
        }
    }
    for e in &failures {
        eprintln!("error: {e}");
    }
    if !failures.is_empty() && code == 0 {
        code = EXIT_RUNTIME;
    }
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
                    code = EXIT_RUNTIME;
                }
            }
        }
    }
    ExitCode::from(code)
}

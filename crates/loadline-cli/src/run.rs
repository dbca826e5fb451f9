//! `loadline run`, and the parts of running a plan that `demo` shares: the
//! runtime, the signal handling, the live progress and the outputs.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use loadline_core::monitor::MonitorSource;
use loadline_core::plan::Plan;
use loadline_core::runner::{self, NoObserver, Observer, RunOptions};
use loadline_core::summary::Summary;
use loadline_monitor::{MonitorConfig, Monitors};
use loadline_report::html::ReportMeta;
use loadline_report::prometheus::PromSink;
use loadline_report::series::SeriesPoint;
use loadline_report::stream::{Collector, Fanout, OutputErrors, PointSink, StreamWriter};
use loadline_report::{html, json, junit, live, markdown, terminal};
use tokio_util::sync::CancellationToken;

use crate::args::{OutputArgs, ScenarioArgs, SearchArgs};
use crate::{capacity, output, scenario, sql, EXIT_INVALID, EXIT_RUNTIME};

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
    let env = RunEnv::of(file, &loaded);
    let databases = loaded.sql.clone();
    let plan = Arc::new(loaded.plan);
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let load = execute(plan.clone(), out, progress(&plan, out.quiet), &env);
    let done = rt.block_on(sql::around(databases.as_ref(), &plan, out.quiet, load));
    drop(rt);
    match done {
        Ok((Ok(done), around)) => {
            let code = finish(&done, out, None);
            if around == sql::Around::TeardownFailed && code == ExitCode::SUCCESS {
                ExitCode::from(EXIT_RUNTIME)
            } else {
                code
            }
        }
        Ok((Err(code), _)) | Err(code) => code,
    }
}

/// What a run needs besides its plan: what to monitor, and what the report says
/// about where the run came from.
#[derive(Debug, Clone, Default)]
pub struct RunEnv {
    /// The scenario's `monitor:` settings (defaults apply when absent).
    pub monitor: Option<MonitorConfig>,
    /// The base URL the load goes to, so the process serving it can be watched.
    pub target: Option<url::Url>,
    /// Rows for the report's settings table.
    pub settings: Vec<(String, String)>,
}

impl RunEnv {
    /// The environment of a run of `loaded`, read from `file`.
    pub fn of(file: &Path, loaded: &loadline_config::Loaded) -> Self {
        let mut settings = vec![("scenario".to_string(), file.display().to_string())];
        if let Some(p) = &loaded.profile {
            settings.push(("profile".into(), p.clone()));
        }
        if let Some(t) = &loaded.target {
            settings.push(("target".into(), redacted(t)));
        }
        Self {
            monitor: loaded.monitor.clone(),
            target: loaded.target.clone(),
            settings,
        }
    }
}

/// A URL for display: any password in it replaced by `***`.
pub fn redacted(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// A finished run: its summary, and what the end-of-run outputs need.
pub struct Executed {
    pub summary: Summary,
    series: Vec<SeriesPoint>,
    errors: OutputErrors,
    settings: Vec<(String, String)>,
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
    for (flag, path) in files.into_iter().chain(streams) {
        if let Some(path) = path {
            if let Err(e) = json::check_writable(path) {
                eprintln!("error: {flag}: {e}");
                return Err(ExitCode::from(EXIT_INVALID));
            }
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

/// Runs `plan`, interruptible, with its monitors and streamed outputs, and
/// summarizes it. Fails (exit code 2) only before the load: a streamed file that
/// cannot be created, a Prometheus address that cannot be bound.
pub async fn execute(
    plan: Arc<Plan>,
    out: &OutputArgs,
    observer: Box<dyn Observer>,
    env: &RunEnv,
) -> Result<Executed, ExitCode> {
    let errors = OutputErrors::default();
    // The report draws every second of the run; without one nothing is kept, so
    // memory stays flat however long the run.
    let collector = Collector::default();
    let mut sinks: Vec<Box<dyn PointSink>> = Vec::new();
    if out.report.is_some() {
        sinks.push(Box::new(collector.clone()));
    }
    for s in &out.out {
        match StreamWriter::create(&s.path, s.format, errors.clone()) {
            Ok(w) => sinks.push(Box::new(w)),
            Err(e) => {
                eprintln!("error: --out: {e}");
                return Err(ExitCode::from(EXIT_INVALID));
            }
        }
    }
    let stop_outputs = CancellationToken::new();
    let _stop_on_return = stop_outputs.clone().drop_guard();
    if let Some(addr) = out.prometheus_listen {
        let sink = PromSink::default();
        match sink.serve(addr, stop_outputs.clone()).await {
            Ok(bound) => {
                eprintln!("serving the run's live metrics at http://{bound}/metrics");
                sinks.push(Box::new(sink));
            }
            Err(e) => {
                eprintln!("error: --prometheus-listen {addr}: {e}");
                return Err(ExitCode::from(EXIT_INVALID));
            }
        }
    }
    let monitors = if out.no_monitor {
        None
    } else {
        let config = env.monitor.clone().unwrap_or_default();
        match Monitors::start(&config, env.target.as_ref(), stop_outputs.clone()) {
            Ok(m) => Some(m),
            Err(e) => {
                tracing::warn!("monitors not started: {e}");
                None
            }
        }
    };
    let mut opts = interruptible(plan.graceful_stop, out.seed);
    opts.monitors = monitors.clone().map(|m| m as Arc<dyn MonitorSource>);
    let observer = Box::new(Fanout::new(sinks, vec![observer]));
    let result = runner::run(plan.clone(), opts, observer).await;
    stop_outputs.cancel();
    if !out.quiet && std::io::stdout().is_terminal() {
        println!();
    }
    let mut summary = Summary::new(&plan, &result);
    if monitors.as_ref().is_some_and(|m| m.saturation_seen()) {
        summary.notes.push(
            "loadline itself was near CPU saturation during the run: its latencies include its own queueing (see the loadline.* monitor series)"
                .into(),
        );
    }
    let mut settings = env.settings.clone();
    settings.push(("phases".into(), crate::scenario::phases_line(&plan)));
    settings.push((
        "monitors".into(),
        if monitors.is_some() { "on" } else { "off" }.into(),
    ));
    if let Some(seed) = out.seed {
        settings.push(("seed".into(), seed.to_string()));
    }
    settings.push(("loadline".into(), env!("CARGO_PKG_VERSION").into()));
    Ok(Executed {
        summary,
        series: collector.points(),
        errors,
        settings,
    })
}

/// Prints the summary, writes the JSON (with `extra` fields merged in at the
/// top level) and the other end-of-run files, and turns the status into the
/// exit code (1 when an output could not be written and the run had passed).
pub fn finish(done: &Executed, out: &OutputArgs, extra: Option<serde_json::Value>) -> ExitCode {
    let summary = &done.summary;
    print!("{}", terminal::render(summary));
    let mut code = summary.status.exit_code();
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
        code = i32::from(EXIT_RUNTIME);
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

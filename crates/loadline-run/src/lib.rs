//! One run as a library: what `loadline run`, `capacity` and `demo` compose, and
//! what a distributed agent, a controller or a dashboard will compose the same
//! way. It never parses arguments and never prints: what a person should read
//! goes through a [`Notify`], and the caller decides how to show it and which
//! exit code a result means.
//!
//! A run of a plan goes:
//! 1. [`around`]: every protocol's [`prepare`](loadline_core::protocol::Protocol::prepare)
//!    (connect, setup, checks) before any load — nothing is sent when one fails;
//! 2. [`execute`]: the monitors, the streamed outputs and the live exporter are
//!    started, the executors run the plan (stopped by [`interruptible`]'s
//!    signals), and the summary is made;
//! 3. every protocol's [`finish`](loadline_core::protocol::Protocol::finish)
//!    (teardown), whatever happened.

mod lifecycle;
mod signals;

use std::path::PathBuf;
use std::sync::Arc;

use loadline_core::monitor::MonitorSource;
use loadline_core::plan::Plan;
use loadline_core::runner::{self, Observer};
use loadline_core::summary::Summary;
use loadline_monitor::{MonitorConfig, Monitors};
use loadline_report::prometheus::PromSink;
use loadline_report::series::SeriesPoint;
use loadline_report::stream::{
    Collector, Fanout, OutputErrors, PointSink, StreamFormat, StreamWriter,
};
pub use loadline_report::tags::Tags;
use tokio_util::sync::CancellationToken;

pub use lifecycle::{around, Around, NotReady};
pub use signals::{interruptible, watch_signals, Interrupt};

/// Where the run tells a person what happens (the CLI prints it on stderr).
pub trait Notify: Send + Sync {
    /// A line for the person running the load.
    fn notice(&self, line: &str);
}

/// A [`Notify`] that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Notify for Silent {
    fn notice(&self, _line: &str) {}
}

/// What the run writes and serves while it runs.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// Keep every second's point for a report drawn at the end.
    pub keep_series: bool,
    /// Time series streamed to files while running.
    pub streams: Vec<(StreamFormat, PathBuf)>,
    /// Serve the live metrics for Prometheus at this address.
    pub prometheus_listen: Option<std::net::SocketAddr>,
    /// Start no monitors at all.
    pub no_monitor: bool,
    /// Seed for the VUs' random choices.
    pub seed: Option<u64>,
    /// The run's tags: in the summary, on every streamed point, and as labels
    /// of the Prometheus exporter's series.
    pub tags: Tags,
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

/// A URL for display: any password in it replaced by `***`.
pub fn redacted(url: &url::Url) -> String {
    let mut u = url.clone();
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    u.to_string()
}

/// A finished run: its summary, and what the end-of-run outputs need.
#[derive(Debug)]
pub struct Executed {
    pub summary: Summary,
    /// Every second's point, when [`Outputs::keep_series`] asked for them.
    pub series: Vec<SeriesPoint>,
    /// Failures of the streamed outputs while running.
    pub errors: OutputErrors,
    /// Rows for the report's settings table.
    pub settings: Vec<(String, String)>,
}

/// Why a run could not start (nothing was sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartError {
    /// The option that asked for what failed, like `--out`.
    pub option: &'static str,
    pub message: String,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.option, self.message)
    }
}

impl std::error::Error for StartError {}

/// Runs `plan`, interruptible, with its monitors and streamed outputs, and
/// summarizes it. Fails only before the load: a streamed file that cannot be
/// created, a Prometheus address that cannot be bound.
pub async fn execute(
    plan: Arc<Plan>,
    outputs: &Outputs,
    observer: Box<dyn Observer>,
    env: &RunEnv,
    notify: Arc<dyn Notify>,
    interrupt: &Interrupt,
) -> Result<Executed, StartError> {
    let errors = OutputErrors::default();
    // The report draws every second of the run; without one nothing is kept, so
    // memory stays flat however long the run.
    let collector = Collector::default();
    let mut sinks: Vec<Box<dyn PointSink>> = Vec::new();
    if outputs.keep_series {
        sinks.push(Box::new(collector.clone()));
    }
    for (format, path) in &outputs.streams {
        match StreamWriter::create(path, *format, errors.clone(), &outputs.tags) {
            Ok(w) => sinks.push(Box::new(w)),
            Err(e) => {
                return Err(StartError {
                    option: "--out",
                    message: e.to_string(),
                })
            }
        }
    }
    let stop_outputs = CancellationToken::new();
    let _stop_on_return = stop_outputs.clone().drop_guard();
    if let Some(addr) = outputs.prometheus_listen {
        let sink = PromSink::with_tags(&outputs.tags);
        match sink.serve(addr, stop_outputs.clone()).await {
            Ok(bound) => {
                notify.notice(&format!(
                    "serving the run's live metrics at http://{bound}/metrics"
                ));
                sinks.push(Box::new(sink));
            }
            Err(e) => {
                return Err(StartError {
                    option: "--prometheus-listen",
                    message: format!("{addr}: {e}"),
                })
            }
        }
    }
    let monitors = if outputs.no_monitor {
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
    let mut opts = interrupt.run_options(outputs.seed);
    opts.monitors = monitors.clone().map(|m| m as Arc<dyn MonitorSource>);
    let observer = Box::new(Fanout::new(sinks, vec![observer]).tagged(outputs.tags.clone()));
    let result = runner::run(plan.clone(), opts, observer).await;
    stop_outputs.cancel();
    let mut summary = Summary::new(&plan, &result);
    summary.tags.clone_from(&outputs.tags);
    if monitors.as_ref().is_some_and(|m| m.saturation_seen()) {
        summary.notes.push(
            "loadline itself was near CPU saturation during the run: its latencies include its own queueing (see the loadline.* monitor series)"
                .into(),
        );
    }
    let mut settings = env.settings.clone();
    settings.push(("phases".into(), phases_line(&plan)));
    settings.push((
        "monitors".into(),
        if monitors.is_some() { "on" } else { "off" }.into(),
    ));
    if !outputs.tags.is_empty() {
        let tags: Vec<String> = outputs
            .tags
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        settings.push(("tags".into(), tags.join(", ")));
    }
    if let Some(seed) = outputs.seed {
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

/// The summary of a run that was interrupted before its load started (a signal
/// during the protocols' preparation): nothing counted, status `interrupted`.
pub fn interrupted_before_the_load(plan: &Plan) -> Summary {
    let result = loadline_core::runner::RunResult {
        total: loadline_core::metrics::Stats::new(&plan.shape()),
        elapsed: std::time::Duration::ZERO,
        phase_elapsed: Vec::new(),
        end: loadline_core::runner::EndReason::Interrupted,
        verdicts: plan
            .thresholds
            .iter()
            .map(|t| {
                t.evaluate(
                    &loadline_core::metrics::Stats::new(&plan.shape()),
                    std::time::Duration::ZERO,
                    &[],
                    &plan.groups,
                )
            })
            .collect(),
    };
    let mut summary = Summary::new(plan, &result);
    summary
        .notes
        .push("interrupted before the load started: nothing was sent".into());
    summary
}

/// Every phase of a plan on one line: `warm up: 5/s …; steady: …`.
pub fn phases_line(plan: &Plan) -> String {
    plan.phases
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}: {}", plan.phase_label(i), p.describe()))
        .collect::<Vec<_>>()
        .join("; ")
}

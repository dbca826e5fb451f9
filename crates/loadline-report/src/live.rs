//! The live view while a run goes: on a terminal a compact view (a progress bar
//! over the planned duration, the run's figures, a line per metric group),
//! plain periodic lines otherwise (CI logs).

use std::io::Write;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use loadline_core::runner::{Observer, Tick};

use crate::terminal::ms;

/// Shows progress: on a terminal, a live view drawn with indicatif (a bar over
/// the planned duration with the run's figures, and a line per metric group);
/// otherwise a plain line every `every` ticks, for CI logs.
pub struct Progress<W: Write + Send> {
    out: W,
    tty: Option<LiveView>,
    /// Plain mode prints a line every this many ticks.
    every: u64,
    ticks: u64,
    phase_names: Vec<String>,
    /// The graceful stop was running at the last tick (plain mode prints a line
    /// when it starts).
    stopping: bool,
}

/// At most this many metric groups get a line of their own in the live view.
const LIVE_GROUPS: usize = 8;

struct LiveView {
    multi: MultiProgress,
    main: ProgressBar,
    groups: Vec<ProgressBar>,
}

impl LiveView {
    fn new() -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout_with_hz(4));
        let main = multi.add(ProgressBar::new(0));
        main.set_style(
            ProgressStyle::with_template("{prefix:>11} [{bar:30.cyan/blue}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Self {
            multi,
            main,
            groups: Vec::new(),
        }
    }

    fn update(&mut self, tick: &Tick<'_>, phase_name: &str) {
        let planned = tick.planned.map(|p| p.as_secs().max(1));
        match planned {
            Some(p) => {
                self.main.set_length(p);
                let at = if tick.stopping {
                    p
                } else {
                    tick.elapsed.as_secs().min(p)
                };
                self.main.set_position(at);
            }
            None => {
                self.main.set_length(0);
            }
        }
        self.main.set_prefix(clocks(tick));
        self.main.set_message(figures(tick, phase_name));
        let secs = tick.interval_len.as_secs_f64().max(1e-9);
        let shown = tick.plan.groups.len().min(LIVE_GROUPS);
        while self.groups.len() < shown {
            let bar = self.multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template("  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            self.groups.push(bar);
        }
        let width = tick
            .plan
            .groups
            .iter()
            .take(shown)
            .map(|g| g.name.chars().count())
            .max()
            .unwrap_or(0)
            .min(40);
        for ((bar, info), g) in self
            .groups
            .iter()
            .zip(&tick.plan.groups)
            .zip(&tick.interval.groups)
        {
            let name: String = info.name.chars().take(40).collect();
            let p95 = if g.latency.is_empty() {
                "-".to_string()
            } else {
                ms(g.latency.value_at_quantile(0.95) as f64 / 1000.0)
            };
            bar.set_message(format!(
                "{name:<width$}  {:>9.1}/s  p95 {:>9}  failed {}",
                g.requests as f64 / secs,
                p95,
                g.failed
            ));
        }
    }

    fn finish(&self) {
        for b in &self.groups {
            b.finish();
        }
        self.main.finish();
    }
}

impl<W: Write + Send> Progress<W> {
    /// `tty`: the live view; otherwise a plain line every `every` ticks to `out`.
    pub fn new(out: W, tty: bool, every: u64, phase_names: Vec<String>) -> Self {
        Self {
            out,
            tty: tty.then(LiveView::new),
            every: every.max(1),
            ticks: 0,
            phase_names,
            stopping: false,
        }
    }

    /// Leaves the live view in place so the summary starts below it.
    pub fn finish(&mut self) {
        if let Some(v) = &self.tty {
            v.finish();
        }
    }
}

impl<W: Write + Send> Drop for Progress<W> {
    fn drop(&mut self) {
        self.finish();
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// The time so far, and the planned duration while the load runs (once the
/// graceful stop runs, the time can pass the plan: the plan is not shown).
fn clocks(tick: &Tick<'_>) -> String {
    match tick.planned {
        Some(p) if !tick.stopping => format!("{} / {}", clock(tick.elapsed), clock(p)),
        _ => clock(tick.elapsed),
    }
}

/// The progress text for one tick: the clock, then [`figures`].
pub fn line(tick: &Tick<'_>, phase_name: &str) -> String {
    format!("{} {}", clocks(tick), figures(tick, phase_name))
}

/// The phase (or the graceful stop) and the run's figures of one tick: VUs,
/// request rate and p95 over the last interval, the error rate and iterations
/// since the start.
pub fn figures(tick: &Tick<'_>, phase_name: &str) -> String {
    let stage = if tick.stopping {
        format!(
            "graceful stop (in-flight iterations get up to {})",
            loadline_core::duration::format_duration(tick.plan.graceful_stop)
        )
    } else {
        phase_name.to_string()
    };
    let iv = tick.interval.all_requests(&tick.plan.groups);
    let secs = tick.interval_len.as_secs_f64().max(1e-9);
    let total = tick.total.all_requests(&tick.plan.groups);
    let err = if total.requests == 0 {
        0.0
    } else {
        total.failed as f64 * 100.0 / total.requests as f64
    };
    let p95 = if iv.latency.is_empty() {
        "-".to_string()
    } else {
        ms(iv.latency.value_at_quantile(0.95) as f64 / 1000.0)
    };
    format!(
        "{} · VUs {} · {:.1} req/s · p95 {} · errors {:.2}% · iterations {}",
        stage,
        tick.active_vus,
        iv.requests as f64 / secs,
        p95,
        err,
        tick.total.iterations()
    )
}

impl<W: Write + Send> Observer for Progress<W> {
    fn on_tick(&mut self, tick: &Tick<'_>) {
        self.ticks += 1;
        let name = self
            .phase_names
            .get(tick.phase)
            .map(String::as_str)
            .unwrap_or("");
        if let Some(view) = &mut self.tty {
            view.update(tick, name);
        } else if self.ticks.is_multiple_of(self.every) || (tick.stopping && !self.stopping) {
            let _ = writeln!(self.out, "{}", line(tick, name));
            let _ = self.out.flush();
        }
        self.stopping = tick.stopping;
    }
}

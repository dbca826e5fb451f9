//! The live view while a run goes: one rewritten progress line on a terminal,
//! plain periodic lines otherwise (CI logs).

use std::io::Write;
use std::time::Duration;

use loadline_core::runner::{Observer, Tick};

use crate::terminal::ms;

/// Prints progress to a writer.
pub struct Progress<W: Write + Send> {
    out: W,
    tty: bool,
    /// Plain mode prints a line every this many ticks.
    every: u64,
    ticks: u64,
    phase_names: Vec<String>,
    wrote_line: bool,
}

impl<W: Write + Send> Progress<W> {
    /// `tty`: rewrite one line in place; otherwise print a line every `every` ticks.
    pub fn new(out: W, tty: bool, every: u64, phase_names: Vec<String>) -> Self {
        Self {
            out,
            tty,
            every: every.max(1),
            ticks: 0,
            phase_names,
            wrote_line: false,
        }
    }

    /// Ends the live line so the summary starts on a fresh one.
    pub fn finish(&mut self) {
        if self.tty && self.wrote_line {
            let _ = writeln!(self.out);
            let _ = self.out.flush();
        }
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// The progress text for one tick.
pub fn line(tick: &Tick<'_>, phase_name: &str) -> String {
    let iv = tick.interval.all_requests(&tick.plan.groups);
    let secs = tick.interval_len.as_secs_f64().max(1e-9);
    let total = tick.total.all_requests(&tick.plan.groups);
    let err = if total.requests == 0 {
        0.0
    } else {
        total.failed as f64 * 100.0 / total.requests as f64
    };
    let planned = tick
        .planned
        .map(|p| format!(" / {}", clock(p)))
        .unwrap_or_default();
    let p95 = if iv.latency.is_empty() {
        "-".to_string()
    } else {
        ms(iv.latency.value_at_quantile(0.95) as f64 / 1000.0)
    };
    format!(
        "{}{} {} · VUs {} · {:.1} req/s · p95 {} · errors {:.2}% · iterations {}",
        clock(tick.elapsed),
        planned,
        phase_name,
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
        if self.tty {
            let _ = write!(self.out, "\r\x1b[2K{}", line(tick, name));
            self.wrote_line = true;
        } else if self.ticks % self.every == 0 {
            let _ = writeln!(self.out, "{}", line(tick, name));
        }
        let _ = self.out.flush();
    }
}

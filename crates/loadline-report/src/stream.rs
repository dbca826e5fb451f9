//! Streamed outputs: the time series written while the run goes, one point per
//! tick, flushed to the file (and synced to disk) every tick, so a killed run
//! leaves every second up to the last one. Also the in-memory collection the HTML
//! report draws, and the fan-out that feeds every sink from one computed point.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use loadline_core::runner::{Observer, Tick};

use crate::json::OutputError;
use crate::series::SeriesPoint;
use crate::tags::Tags;

/// Receives each point of the time series.
pub trait PointSink: Send {
    fn point(&mut self, p: &SeriesPoint);
}

/// Errors that happened while writing outputs mid-run, for the end of the run
/// to report (and turn into a failing exit code): never a silent loss.
#[derive(Debug, Clone, Default)]
pub struct OutputErrors(Arc<Mutex<Vec<String>>>);

impl OutputErrors {
    pub fn push(&self, message: String) {
        tracing::error!("{message}");
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(message);
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Computes the series point of each tick once and hands it to every sink; also
/// passes the tick to any other observer (the live view).
pub struct Fanout {
    sinks: Vec<Box<dyn PointSink>>,
    others: Vec<Box<dyn Observer>>,
    tags: Tags,
}

impl Fanout {
    pub fn new(sinks: Vec<Box<dyn PointSink>>, others: Vec<Box<dyn Observer>>) -> Self {
        Self {
            sinks,
            others,
            tags: Tags::new(),
        }
    }

    /// Puts the run's tags on every point.
    pub fn tagged(mut self, tags: Tags) -> Self {
        self.tags = tags;
        self
    }
}

impl Observer for Fanout {
    fn on_tick(&mut self, tick: &Tick<'_>) {
        if !self.sinks.is_empty() {
            let mut p = SeriesPoint::from_tick(tick);
            p.tags.clone_from(&self.tags);
            for s in &mut self.sinks {
                s.point(&p);
            }
        }
        for o in &mut self.others {
            o.on_tick(tick);
        }
    }
}

/// Keeps every point in memory (one a second: an hour is 3,600 small points).
#[derive(Debug, Clone, Default)]
pub struct Collector(Arc<Mutex<Vec<SeriesPoint>>>);

impl Collector {
    pub fn points(&self) -> Vec<SeriesPoint> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl PointSink for Collector {
    fn point(&mut self, p: &SeriesPoint) {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(p.clone());
    }
}

/// The format of a streamed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFormat {
    /// One JSON object (a [`SeriesPoint`]) per line.
    Jsonl,
    /// Long format: `t,series,value` rows, many per tick (then one column per
    /// tag, the same on every row).
    Csv,
}

/// Writes the series to a file as it goes.
pub struct StreamWriter {
    path: PathBuf,
    out: BufWriter<File>,
    format: StreamFormat,
    errors: OutputErrors,
    broken: bool,
    /// The tags' values as the end of every CSV row (`,ci,eu`).
    csv_tags: String,
}

impl StreamWriter {
    /// Creates (truncates) the file before the run, so an unwritable path is an
    /// error before any load.
    pub fn create(
        path: &Path,
        format: StreamFormat,
        errors: OutputErrors,
        tags: &Tags,
    ) -> Result<Self, OutputError> {
        let io = |source| OutputError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(io)?;
        let mut out = BufWriter::new(file);
        let mut csv_tags = String::new();
        if format == StreamFormat::Csv {
            let mut header = String::from("t,series,value");
            for (k, v) in tags {
                header.push(',');
                header.push_str(&csv_field(k));
                csv_tags.push(',');
                csv_tags.push_str(&csv_field(v));
            }
            header.push('\n');
            out.write_all(header.as_bytes()).map_err(io)?;
            out.flush().map_err(io)?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            out,
            format,
            errors,
            broken: false,
            csv_tags,
        })
    }

    fn write(&mut self, p: &SeriesPoint) -> std::io::Result<()> {
        match self.format {
            StreamFormat::Jsonl => {
                serde_json::to_writer(&mut self.out, p)?;
                self.out.write_all(b"\n")?;
            }
            StreamFormat::Csv => {
                for (series, value) in p.flat() {
                    writeln!(
                        self.out,
                        "{},{},{}{}",
                        p.t,
                        csv_field(&series),
                        value,
                        self.csv_tags
                    )?;
                }
            }
        }
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

impl PointSink for StreamWriter {
    fn point(&mut self, p: &SeriesPoint) {
        if self.broken {
            return;
        }
        if let Err(e) = self.write(p) {
            self.broken = true;
            self.errors.push(format!(
                "writing {} failed at t={}s: {e}; the file holds the series up to the second before",
                self.path.display(),
                p.t
            ));
        }
    }
}

/// Quotes a CSV field when it holds a comma, a quote or a line break.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("requests"), "requests");
        assert_eq!(
            csv_field("group.requests{step=a,b}"),
            "\"group.requests{step=a,b}\""
        );
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
    }
}

//! loadline's regression statistics.
//!
//! The unit of replication is the run, not the request: requests of one run
//! share one machine state, and a test over pooled requests finds
//! "significant" differences between two runs of the same build. So a
//! comparison takes one value per run and metric (a run's p50, p99 or
//! throughput) on each side, and [`compare::compare`] tests them on the log
//! scale with Welch's t, gives the ratio's confidence interval, and calls a
//! change only when the interval excludes 1 *and* the ratio is at least a
//! minimum effect away from it; [`compare::holm`] corrects the p-values across
//! the metrics compared together. [`stats`] holds the distributions.
//!
//! This is the first part of the history and regression work: the store of
//! runs, `loadline compare`, `--repeat`, `calibrate` and change-point
//! detection build on it.

pub mod compare;
pub mod stats;

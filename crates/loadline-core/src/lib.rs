//! loadline's engine. It owns the validated [`plan::Plan`], the templates compiled
//! into it, the executors that turn phases into iterations on virtual users (VUs),
//! each running an execution segment of the plan ([`runner::run`] is the entry),
//! the per-thread metric shards and the aggregator that merges them, and the SLA
//! thresholds judged on the merged figures. It knows no concrete protocol, file
//! format or output: protocols plug in through [`protocol::Protocol`] and
//! [`protocol::StepExec`], scenario formats build a [`plan::Plan`], and outputs
//! read the [`summary::Summary`] and the live [`metrics::Snapshot`]s.

mod aggregator;
pub mod build;
pub mod cache;
pub mod capacity;
pub mod duration;
pub mod events;
pub mod executor;
pub mod metrics;
pub mod monitor;
pub mod plan;
pub mod protocol;
pub mod runner;
pub mod summary;
pub mod template;
pub mod threshold;
pub mod vu;

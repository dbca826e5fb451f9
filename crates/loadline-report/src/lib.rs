//! loadline's outputs. They render what the engine computed — the
//! [`loadline_core::summary::Summary`] at the end and the aggregator's ticks while
//! running — and never recompute statistics of their own.

pub mod json;
pub mod live;
pub mod terminal;

//! loadline's outputs. They render what the engine computed — the
//! [`loadline_core::summary::Summary`] at the end and the aggregator's ticks while
//! running — and never recompute statistics of their own.

#[cfg(test)]
mod fixtures;
pub mod html;
pub mod json;
pub mod junit;
pub mod live;
pub mod markdown;
mod markup;
pub mod prometheus;
pub mod series;
pub mod stream;
pub mod tags;
pub mod terminal;

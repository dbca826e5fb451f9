//! loadline's protocol implementations. Each protocol is a module that implements
//! [`loadline_core::protocol::Protocol`] (the per-VU state) and builds
//! [`loadline_core::protocol::StepExec`]s from its step specs; scenario formats
//! fill the specs, the engine runs the executors.

#[cfg(feature = "amqp")]
pub mod amqp;
mod capture;
pub mod check;
pub mod events;
pub mod http;
#[cfg(feature = "mqtt")]
pub mod mqtt;
#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "redis")]
pub mod redis;
pub mod registry;
#[cfg(feature = "sql")]
pub mod sql;

//! What every broker protocol shares for event-driven load: the envelope a
//! produced message carries ([`envelope`]), and a destination's bookkeeping
//! ([`track`]): which producers' messages arrived, twice or out of order,
//! which never did, and the waiters of `wait_for_event` steps.
//!
//! A broker protocol (NATS today; AMQP, MQTT and Kafka to come) only moves
//! bytes: it publishes with the envelope in a header (or, where a broker has
//! no headers, a property or a record header), and hands each consumed
//! message to its [`track::Destination`]. The figures land in core's
//! [`loadline_core::events`].

pub mod envelope;
pub mod track;

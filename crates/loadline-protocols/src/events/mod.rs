//! What every broker protocol shares for event-driven load: the envelope a
//! produced message carries ([`envelope`]), and a destination's bookkeeping
//! ([`track`]): which producers' messages arrived, twice or out of order,
//! which never did, and the waiters of `wait_for_event` steps.
//!
//! A broker protocol (NATS, AMQP, MQTT) only moves bytes: it publishes with
//! the envelope in a header (a message header, an AMQP header table entry,
//! an MQTT 5 user property), and hands each consumed message to its
//! [`track::Destination`] through its [`run::Consumers`]. A VU's producers
//! are a [`vu::VuEvents`]; what a publish sends is a [`payload::Message`];
//! the `wait_for_event` step is [`wait::WaitStep`], built by
//! [`build::wait_step`]. The figures land in core's [`loadline_core::events`].

pub mod build;
pub mod envelope;
pub mod payload;
pub mod run;
pub mod track;
pub mod vu;
pub mod wait;

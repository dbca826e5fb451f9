//! The AMQP parts of the native format as plain serde data: the `amqp:`
//! section (the broker, the exchanges to declare, and the consumers that read
//! queues for the whole run) and `amqp:` steps (publish, wait for an event).
//! Shapes and types only; [`super::build`] checks what the values mean.

use loadline_doc::de::{Entries, Lenient, Spanned};
use loadline_doc::value::JsonDoc;
use schemars::JsonSchema;
use serde::Deserialize;

pub use crate::events::build::MatchDoc;

/// The `amqp:` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpDoc {
    /// The broker, `amqp://user:password@host:5672/vhost` (or `amqps://`;
    /// `vars` and `{{ $env.NAME }}` may be used).
    pub url: Spanned<String>,
    /// How long a publisher confirm may take, for every step that does not
    /// say (default 5s).
    pub timeout: Option<Spanned<String>>,
    /// After the load, how long late messages may still arrive before what
    /// has not is counted as lost (default 2s; the wait ends early once
    /// everything sent has arrived).
    pub grace: Option<Spanned<String>>,
    /// Exchanges to declare before the load when they do not exist, name →
    /// type (`direct`, `fanout`, `topic`, `headers`).
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub exchanges: Option<Entries<Spanned<String>>>,
    /// The queues read for the whole run, by name (the name of `{dest:NAME}`
    /// in thresholds and of `wait_for_event:`).
    #[schemars(with = "Option<std::collections::BTreeMap<String, QueueConsumerDoc>>")]
    pub consumers: Option<Entries<Lenient<Spanned<QueueConsumerDoc>>>>,
}

/// A consumer: a queue read for the whole run, each message acknowledged
/// after it is counted.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueConsumerDoc {
    /// The queue (default: the destination's name).
    pub queue: Option<Spanned<String>>,
    /// Declare the queue before the load when it does not exist (default
    /// true; false: it must exist).
    pub declare: Option<Spanned<bool>>,
    /// The declared queue's arguments, e.g. `{ x-max-length: 1000 }`.
    #[schemars(with = "Option<std::collections::BTreeMap<String, serde_json::Value>>")]
    pub arguments: Option<Entries<Spanned<JsonDoc>>>,
    /// Bind the queue to an exchange before the load.
    pub bind: Option<Spanned<BindDoc>>,
    /// How many unacknowledged messages the broker may send ahead (default
    /// 500).
    pub prefetch: Option<Spanned<u16>>,
    /// The publishes that feed this destination (default: `bind`, or the
    /// default exchange with the queue's name): messages published there
    /// count as `sent` here.
    pub expects: Option<Spanned<BindDoc>>,
}

/// An exchange and a routing key pattern (`*` one word, `#` any words).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BindDoc {
    /// The exchange (`""`: the default exchange).
    pub exchange: Spanned<String>,
    /// The routing key, or for a topic exchange a pattern (default `#`).
    pub routing_key: Option<Spanned<String>>,
}

/// An `amqp:` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpStepDoc {
    /// One of `publish` or `wait_for_event`, with its settings.
    pub amqp: Spanned<AmqpActionDoc>,
}

/// What an `amqp:` step does: exactly one of `publish` and
/// `wait_for_event`; the other keys are its settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AmqpActionDoc {
    /// Publish to this exchange (`""`: the default exchange, which routes
    /// to the queue named by the routing key), with loadline's envelope in a
    /// header.
    pub publish: Option<Spanned<String>>,
    /// The routing key (a template; default `""`).
    pub routing_key: Option<Spanned<String>>,
    /// Wait on this destination (a consumer's name) for the message that
    /// `match` describes.
    pub wait_for_event: Option<Spanned<String>>,
    /// The message's body: a template, or a mapping or list sent as its JSON
    /// text (whose strings are templates).
    #[schemars(with = "Option<serde_json::Value>")]
    pub payload: Option<Spanned<JsonDoc>>,
    /// Headers, name → template (the message's header table).
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub headers: Option<Entries<Spanned<String>>>,
    /// Wait for the broker's publisher confirm (default true: the latency
    /// is to the confirm, and a nack fails the sample).
    pub confirm: Option<Spanned<bool>>,
    /// Mark the message persistent (delivery mode 2; default false).
    pub persistent: Option<Spanned<bool>>,
    /// Which message `wait_for_event` waits for.
    #[serde(rename = "match")]
    pub matching: Option<Spanned<MatchDoc>>,
    /// The metric group (default `publish EXCHANGE` or `event DEST`).
    pub name: Option<Spanned<String>>,
    /// How long the confirm or the event may take (default: the section's,
    /// 5s; for `wait_for_event`, 10s).
    pub timeout: Option<Spanned<String>>,
}

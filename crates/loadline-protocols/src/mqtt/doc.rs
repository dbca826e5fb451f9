//! The MQTT parts of the native format as plain serde data: the `mqtt:`
//! section (the broker, and the consumers that subscribe to topics for the
//! whole run) and `mqtt:` steps (publish, wait for an event). Shapes and
//! types only; [`super::build`] checks what the values mean.

use loadline_doc::de::{Entries, Lenient, Spanned};
use loadline_doc::value::JsonDoc;
use schemars::JsonSchema;
use serde::Deserialize;

pub use crate::events::build::MatchDoc;

/// The `mqtt:` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttDoc {
    /// The broker, `mqtt://host:1883` (`mqtt://user:password@host:1883`;
    /// `vars` and `{{ $env.NAME }}` may be used). MQTT 5.
    pub url: Spanned<String>,
    /// How long a QoS 1 or 2 acknowledgement may take, for every step that
    /// does not say (default 5s).
    pub timeout: Option<Spanned<String>>,
    /// After the load, how long late messages may still arrive before what
    /// has not is counted as lost (default 2s; the wait ends early once
    /// everything sent has arrived).
    pub grace: Option<Spanned<String>>,
    /// The topics read for the whole run, by name (the name of `{dest:NAME}`
    /// in thresholds and of `wait_for_event:`).
    #[schemars(with = "Option<std::collections::BTreeMap<String, TopicConsumerDoc>>")]
    pub consumers: Option<Entries<Lenient<Spanned<TopicConsumerDoc>>>>,
}

/// A consumer: a subscription of its own (one connection each) to a topic
/// filter.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicConsumerDoc {
    /// The topic filter (wildcards `+` one level, `#` the rest).
    pub topic: Spanned<String>,
    /// The subscription's QoS: 0, 1 or 2 (default 1).
    pub qos: Option<Spanned<u8>>,
    /// The topic filter whose publishes feed this destination (default:
    /// `topic`). For a pipeline, the input of the system under test.
    pub expects: Option<Spanned<String>>,
}

/// An `mqtt:` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttStepDoc {
    /// One of `publish` or `wait_for_event`, with its settings.
    pub mqtt: Spanned<MqttActionDoc>,
}

/// What an `mqtt:` step does: exactly one of `publish` and
/// `wait_for_event`; the other keys are its settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttActionDoc {
    /// Publish to this topic (a template), with loadline's envelope in a
    /// user property.
    pub publish: Option<Spanned<String>>,
    /// Wait on this destination (a consumer's name) for the message that
    /// `match` describes.
    pub wait_for_event: Option<Spanned<String>>,
    /// The QoS of the publish: 0 (no acknowledgement), 1 (PUBACK) or 2
    /// (PUBCOMP); default 1.
    pub qos: Option<Spanned<u8>>,
    /// Ask the broker to retain the message (default false).
    pub retain: Option<Spanned<bool>>,
    /// The message's payload: a template, or a mapping or list sent as its
    /// JSON text (whose strings are templates).
    #[schemars(with = "Option<serde_json::Value>")]
    pub payload: Option<Spanned<JsonDoc>>,
    /// User properties, name → template.
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub headers: Option<Entries<Spanned<String>>>,
    /// Which message `wait_for_event` waits for.
    #[serde(rename = "match")]
    pub matching: Option<Spanned<MatchDoc>>,
    /// The metric group (default `publish TOPIC` or `event DEST`, with the
    /// topic as written).
    pub name: Option<Spanned<String>>,
    /// How long the acknowledgement or the event may take (default: the
    /// section's, 5s; for `wait_for_event`, 10s).
    pub timeout: Option<Spanned<String>>,
}

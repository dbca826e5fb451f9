//! The NATS parts of the native format as plain serde data: the `nats:`
//! section (the server, and the consumers that read destinations for the
//! whole run) and `nats:` steps (publish, request, wait for an event).
//! Shapes and types only; [`super::build`] checks what the values mean.

use loadline_doc::de::{Entries, Lenient, Spanned};
use loadline_doc::value::JsonDoc;

pub use crate::events::build::MatchDoc;
use schemars::JsonSchema;
use serde::Deserialize;

/// The `nats:` section.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsDoc {
    /// The server, `nats://host:4222` (`vars` and `{{ $env.NAME }}` may be
    /// used, e.g. for a token: `nats://{{ $env.TOKEN }}@host:4222`).
    pub url: Spanned<String>,
    /// How long a publish's acknowledgement or a request's reply may take,
    /// for every step that does not say (default 5s).
    pub timeout: Option<Spanned<String>>,
    /// After the load, how long late messages may still arrive before what
    /// has not is counted as lost (default 2s; the wait ends early once
    /// everything sent has arrived).
    pub grace: Option<Spanned<String>>,
    /// The destinations read for the whole run, by name (the name of
    /// `{dest:NAME}` in thresholds and of `wait_for_event:`).
    #[schemars(with = "Option<std::collections::BTreeMap<String, ConsumerDoc>>")]
    pub consumers: Option<Entries<Lenient<Spanned<ConsumerDoc>>>>,
}

/// A consumer: a core subscription (`subject`) or a JetStream durable pull
/// consumer (`stream`, with `subject` as its filter).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsumerDoc {
    /// The subject to read (wildcards `*` and `>` allowed); with `stream`,
    /// the consumer's filter.
    pub subject: Option<Spanned<String>>,
    /// A JetStream stream (it must exist): read through a durable pull
    /// consumer, each message acknowledged.
    pub stream: Option<Spanned<String>>,
    /// The durable consumer's name (default `loadline_` and the
    /// destination's name); created when missing.
    pub durable: Option<Spanned<String>>,
    /// The subject the producers publish to that feeds this destination
    /// (default: `subject`). For a pipeline, the input of the system under
    /// test: messages published there count as `sent` here.
    pub expects: Option<Spanned<String>>,
}

/// A `nats:` step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsStepDoc {
    /// One of `publish`, `request` or `wait_for_event`, with its settings.
    pub nats: Spanned<NatsActionDoc>,
}

/// What a `nats:` step does: exactly one of `publish`, `request` and
/// `wait_for_event`; the other keys are its settings.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NatsActionDoc {
    /// Publish to this subject (a template), with loadline's envelope in a
    /// header.
    pub publish: Option<Spanned<String>>,
    /// Send a request to this subject (a template) and wait for its reply.
    pub request: Option<Spanned<String>>,
    /// Wait on this destination (a consumer's name) for the message that
    /// `match` describes.
    pub wait_for_event: Option<Spanned<String>>,
    /// The message's payload: a template, or a mapping or list sent as its
    /// JSON text (whose strings are templates).
    #[schemars(with = "Option<serde_json::Value>")]
    pub payload: Option<Spanned<JsonDoc>>,
    /// Headers, name → template.
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub headers: Option<Entries<Spanned<String>>>,
    /// Publish through JetStream and wait for the stream's acknowledgement
    /// (the latency is then to the ack; default false: core NATS).
    pub jetstream: Option<Spanned<bool>>,
    /// Which message `wait_for_event` waits for.
    #[serde(rename = "match")]
    pub matching: Option<Spanned<MatchDoc>>,
    /// The metric group (default `publish SUBJECT`, `request SUBJECT` or
    /// `event DEST`, with the subject as written).
    pub name: Option<Spanned<String>>,
    /// How long the ack, the reply or the event may take (default: the
    /// section's, 5s; for `wait_for_event`, 10s).
    pub timeout: Option<Spanned<String>>,
    /// Values to capture from a request's reply, name → a JSONPath into its
    /// JSON payload (e.g. `$.price`) or `payload` for the whole text.
    #[schemars(with = "Option<std::collections::BTreeMap<String, String>>")]
    pub capture: Option<Entries<Lenient<Spanned<String>>>>,
}

//! NATS steps from their documents: the `nats:` section (the server's URL,
//! the consumers, each checked where it is written) and `nats:` steps.
//!
//! Metric groups: a publish's is its `name` (default `publish ` and the
//! subject as written), a request's `request SUBJECT` (both of kind `nats`);
//! a wait's `event DEST` (kind `outcome`); each consumer's is its name (kind
//! `events`).

use std::sync::Arc;
use std::time::Duration;

use loadline_core::build::{BuildCtx, Span};
use loadline_core::protocol::{Slot, StepExec};
use loadline_doc::de::{self as doc_de, Spanned};
use schemars::SchemaGenerator;

use super::doc::{ConsumerDoc, NatsActionDoc, NatsDoc, NatsStepDoc};
use super::exec::{CaptureFrom, PublishStep, RequestStep};
use super::{ConsumerSource, ConsumerSpec, NatsProtocol};
use crate::events::build::{
    destination, duration_or, json_path, message, not_for, wait_step, Server, WaitDoc,
    DEFAULT_TIMEOUT,
};
use crate::events::payload::Message;
use crate::events::vu::VuEvents;
use crate::registry::{ProtocolBuilder, ProtocolEntry, Scenario, Section, StepDocument, StepKind};

/// The kind of NATS's request groups.
pub const NATS_KIND: &str = "nats";

const NATS_STEP: StepKind = StepKind {
    key: "nats",
    described: "a `nats:` step",
};

/// NATS: step `nats`, section `nats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nats;

impl ProtocolEntry for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }

    fn docs(&self) -> Option<&'static str> {
        Some("docs/event_driven.md")
    }

    fn steps(&self, generator: &mut SchemaGenerator) -> Vec<StepDocument> {
        vec![StepDocument {
            kinds: vec![NATS_STEP],
            schema: generator.subschema_for::<NatsStepDoc>(),
        }]
    }

    fn sections(&self, generator: &mut SchemaGenerator) -> Vec<Section> {
        vec![Section {
            key: "nats",
            description: "The NATS server `nats:` steps use, and the consumers that read destinations for the whole run.",
            schema: generator.subschema_for::<NatsDoc>(),
        }]
    }

    fn begin(&self, scenario: &Scenario, ctx: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder> {
        let mut b = NatsBuilder::default();
        if let Some(raw) = scenario.section("nats") {
            let doc = doc_de::read::<NatsDoc>(raw, ctx);
            b.section(ctx, doc);
        }
        Box::new(b)
    }
}

/// One scenario's NATS server and steps.
#[derive(Default)]
struct NatsBuilder {
    protocol: Option<Arc<NatsProtocol>>,
    slot: Option<Slot<VuEvents>>,
    /// Whether the scenario has a `nats:` section at all.
    declared: bool,
    publishes: usize,
    /// The consumers' names, valid or not.
    dest_names: Vec<String>,
    no_responders: Option<loadline_core::metrics::ErrorClass>,
}

impl ProtocolBuilder for NatsBuilder {
    fn step(
        &mut self,
        _kind: &str,
        step: &doc_de::Raw,
        ctx: &mut dyn BuildCtx,
    ) -> Option<Arc<dyn StepExec>> {
        let doc = doc_de::read::<NatsStepDoc>(step, ctx)?;
        let at = &doc.nats.span;
        let d = &doc.nats.value;
        let actions = [
            d.publish.is_some(),
            d.request.is_some(),
            d.wait_for_event.is_some(),
        ];
        let count = actions.iter().filter(|a| **a).count();
        if count != 1 {
            ctx.missing(
                at,
                &["publish", "request", "wait_for_event"],
                "a `nats:` step needs exactly one of `publish`, `request` and `wait_for_event`",
            );
            return None;
        }
        if !self.declared {
            ctx.error(
                at,
                "a `nats:` step needs a server: declare it in the `nats:` section, e.g. `nats: { url: \"nats://127.0.0.1:4222\" }`",
            );
            return None;
        }
        if let Some(subject) = &d.publish {
            self.publish(ctx, d, subject)
        } else if let Some(subject) = &d.request {
            self.request(ctx, d, subject)
        } else {
            let dest = d.wait_for_event.as_ref()?;
            self.wait(ctx, d, dest, at)
        }
    }
}

impl NatsBuilder {
    fn section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<NatsDoc>) {
        self.declared = true;
        let Some(doc) = doc else {
            return;
        };
        let before = ctx.error_count();
        let server = Server::read(
            ctx,
            "NATS",
            &["nats", "tls"],
            &doc.url,
            doc.timeout.as_ref(),
            doc.grace.as_ref(),
            super::redact_url,
        );
        let run = fastrand::u64(1..);
        let mut specs = Vec::new();
        let mut dests = Vec::new();
        for (name, entry) in doc.consumers.iter().flat_map(|c| c.0.iter()) {
            self.dest_names.push(name.value.clone());
            let Some(c) = entry.get() else {
                continue;
            };
            let Some(spec) = consumer(ctx, &name.value, &c.value, &c.span) else {
                continue;
            };
            let Some(dest) = destination(ctx, name, specs.len(), run) else {
                continue;
            };
            dests.push(dest);
            specs.push(spec);
        }
        self.no_responders = ctx.error_classes(&["no_responders"]).first().copied();
        if ctx.error_count() > before {
            return;
        }
        if let (Some(url), Some(timeout), Some(grace)) = (server.url, server.timeout, server.grace)
        {
            let protocol = Arc::new(NatsProtocol::new(url, timeout, grace, specs, dests, run));
            self.slot = Some(ctx.add_typed_protocol(protocol.clone()));
            self.protocol = Some(protocol);
        }
    }

    fn slot(&self) -> Slot<VuEvents> {
        self.slot.unwrap_or(Slot::new(usize::MAX))
    }

    fn message(
        &self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        subject: &Spanned<String>,
    ) -> Option<Message> {
        message(ctx, subject, d.payload.as_ref(), d.headers.as_ref())
    }

    fn not_for(&self, ctx: &mut dyn BuildCtx, d: &NatsActionDoc, action: &str, keys: &[&str]) {
        let unplaced = Span::default();
        let given = [
            ("jetstream", d.jetstream.as_ref().map(|s| &s.span)),
            ("match", d.matching.as_ref().map(|s| &s.span)),
            ("capture", d.capture.as_ref().map(|_| &unplaced)),
            ("payload", d.payload.as_ref().map(|s| &s.span)),
        ];
        let given: Vec<(&str, Option<&Span>)> = given
            .into_iter()
            .filter(|(k, _)| keys.contains(k))
            .collect();
        not_for(ctx, action, &given);
    }

    /// What a step that sends to `subject` needs, whichever it is: the
    /// protocol, the message, the timeout (the section's by default) and the
    /// metric group (`name`, or `VERB SUBJECT`).
    fn sending(
        &self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        subject: &Spanned<String>,
        verb: &str,
    ) -> (
        Option<Arc<NatsProtocol>>,
        Option<Message>,
        Option<Duration>,
        Option<usize>,
    ) {
        let message = self.message(ctx, d, subject);
        let protocol = self.protocol.clone();
        let timeout = duration_or(
            ctx,
            d.timeout.as_ref(),
            protocol.as_ref().map_or(DEFAULT_TIMEOUT, |p| p.timeout),
        );
        let (name, name_span) = match &d.name {
            Some(n) => (n.value.clone(), n.span.clone()),
            None => (format!("{verb} {}", subject.value), subject.span.clone()),
        };
        let group = ctx.group(name, NATS_KIND, &name_span);
        (protocol, message, timeout, group)
    }

    fn publish(
        &mut self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        subject: &Spanned<String>,
    ) -> Option<Arc<dyn StepExec>> {
        self.not_for(ctx, d, "publish", &["match", "capture"]);
        let (protocol, message, timeout, group) = self.sending(ctx, d, subject, "publish");
        let index = self.publishes;
        self.publishes += 1;
        Some(Arc::new(PublishStep {
            protocol: protocol?,
            slot: self.slot(),
            group: group?,
            index,
            message: message?,
            jetstream: d.jetstream.as_ref().is_some_and(|j| j.value),
            timeout: timeout?,
        }))
    }

    fn request(
        &mut self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        subject: &Spanned<String>,
    ) -> Option<Arc<dyn StepExec>> {
        self.not_for(ctx, d, "request", &["match", "jetstream"]);
        let (protocol, message, timeout, group) = self.sending(ctx, d, subject, "request");
        let captures = match &d.capture {
            None => Vec::new(),
            Some(entries) => crate::capture::read(ctx, entries, |ctx, src| {
                if src.value == "payload" {
                    Some(CaptureFrom::Payload)
                } else {
                    json_path(ctx, &src.value, &src.span).map(CaptureFrom::Json)
                }
            })
            .into_iter()
            .map(|(slot, _, from)| (slot, from))
            .collect(),
        };
        Some(Arc::new(RequestStep {
            protocol: protocol?,
            slot: self.slot(),
            group: group?,
            message: message?,
            timeout: timeout?,
            no_responders: self.no_responders?,
            captures,
        }))
    }

    fn wait(
        &mut self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        dest: &Spanned<String>,
        at: &Span,
    ) -> Option<Arc<dyn StepExec>> {
        self.not_for(
            ctx,
            d,
            "wait_for_event",
            &["jetstream", "capture", "payload"],
        );
        wait_step(
            ctx,
            self.protocol.as_ref().map(|p| &p.consumers),
            &self.dest_names,
            ("NATS", "nats"),
            self.slot(),
            WaitDoc {
                dest,
                matching: d.matching.as_ref(),
                timeout: d.timeout.as_ref(),
                name: d.name.as_ref(),
                at,
            },
        )
    }
}

/// A consumer's spec from its document.
fn consumer(
    ctx: &mut dyn BuildCtx,
    name: &str,
    c: &ConsumerDoc,
    at: &Span,
) -> Option<ConsumerSpec> {
    let text = |s: &Option<Spanned<String>>| s.as_ref().map(|s| s.value.clone());
    let source = match (&c.subject, &c.stream) {
        (_, Some(stream)) => ConsumerSource::JetStream {
            stream: stream.value.clone(),
            durable: text(&c.durable).unwrap_or_else(|| format!("loadline_{}", durable_safe(name))),
            filter: text(&c.subject),
        },
        (Some(subject), None) => {
            if let Some(d) = &c.durable {
                ctx.error(
                    &d.span,
                    "`durable` is for a JetStream consumer: give `stream` too",
                );
            }
            ConsumerSource::Core {
                subject: subject.value.clone(),
            }
        }
        (None, None) => {
            ctx.missing(
                at,
                &["subject", "stream"],
                format!("consumer `{name}` needs `subject` (core NATS) or `stream` (JetStream)"),
            );
            return None;
        }
    };
    Some(ConsumerSpec {
        name: name.to_owned(),
        source,
        expects: text(&c.expects).or_else(|| text(&c.subject)),
    })
}

/// `name` with what a durable's name cannot hold (`.`, `*`, `>`, spaces)
/// replaced by `_`.
fn durable_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

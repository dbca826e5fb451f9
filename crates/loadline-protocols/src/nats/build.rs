//! NATS steps from their documents: the `nats:` section (the server's URL,
//! the consumers, each checked where it is written) and `nats:` steps.
//!
//! Metric groups: a publish's is its `name` (default `publish ` and the
//! subject as written), a request's `request SUBJECT` (both of kind `nats`);
//! a wait's `event DEST` (kind `outcome`); each consumer's is its name (kind
//! `events`).

use std::sync::Arc;

use loadline_core::build::{BuildCtx, Span};
use loadline_core::protocol::StepExec;
use loadline_doc::de::{self as doc_de, Spanned};

use super::doc::{ConsumerDoc, NatsActionDoc, NatsDoc, NatsStepDoc};
use super::exec::{CaptureFrom, PublishStep, RequestStep};
use super::{ConsumerSource, ConsumerSpec, NatsProtocol};
use crate::events::build::{
    json_path, not_for, Broker, BrokerBuilder, Common, SendDoc, Sending, Server, WaitDoc,
};
use crate::registry::ProtocolBuilder;

/// The kind of NATS's request groups.
pub const NATS_KIND: &str = "nats";

/// NATS: step `nats`, section `nats`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Nats;

impl Broker for Nats {
    const KEY: &'static str = "nats";
    const DESCRIBED: &'static str = "a `nats:` step";
    const SECTION: &'static str = "The NATS server `nats:` steps use, and the consumers that read destinations for the whole run.";
    type StepDoc = NatsStepDoc;
    type SectionDoc = NatsDoc;
    type Builder = NatsBuilder;
}

/// One scenario's NATS server and steps.
#[derive(Default)]
pub struct NatsBuilder {
    protocol: Option<Arc<NatsProtocol>>,
    common: Common,
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
            ("publish", d.publish.is_some()),
            ("request", d.request.is_some()),
            ("wait_for_event", d.wait_for_event.is_some()),
        ];
        if !self.common.check_step(
            ctx,
            at,
            "nats",
            &actions,
            ("server", "nats://127.0.0.1:4222"),
        ) {
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

impl BrokerBuilder for NatsBuilder {
    type Section = NatsDoc;

    fn section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<NatsDoc>) {
        self.read_section(ctx, doc);
    }
}

impl NatsBuilder {
    fn read_section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<NatsDoc>) {
        self.common.declared = true;
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
        let (specs, dests) =
            self.common
                .consumers(ctx, doc.consumers.as_ref(), run, |ctx, name, c, at| {
                    consumer(ctx, name, c, at)
                });
        self.no_responders = ctx.error_classes(&["no_responders"]).first().copied();
        if ctx.error_count() > before {
            return;
        }
        if let (Some(url), Some(timeout), Some(grace)) = (server.url, server.timeout, server.grace)
        {
            let protocol = Arc::new(NatsProtocol::new(url, timeout, grace, specs, dests, run));
            self.common.slot = Some(ctx.add_typed_protocol(protocol.clone()));
            self.protocol = Some(protocol);
        }
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
    /// message, the timeout (the section's by default) and the metric group
    /// (`name`, or `VERB SUBJECT`).
    fn sending(
        &self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        subject: &Spanned<String>,
        verb: &str,
    ) -> Sending {
        SendDoc {
            to: subject,
            payload: d.payload.as_ref(),
            headers: d.headers.as_ref(),
            timeout: d.timeout.as_ref(),
            name: d.name.as_ref(),
        }
        .read(
            ctx,
            self.protocol.as_ref().map(|p| p.timeout),
            format!("{verb} {}", subject.value),
            NATS_KIND,
        )
    }

    fn publish(
        &mut self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        subject: &Spanned<String>,
    ) -> Option<Arc<dyn StepExec>> {
        self.not_for(ctx, d, "publish", &["match", "capture"]);
        let sent = self.sending(ctx, d, subject, "publish");
        let index = self.common.next_publish();
        Some(Arc::new(PublishStep {
            protocol: self.protocol.clone()?,
            slot: self.common.slot(),
            group: sent.group?,
            index,
            message: sent.message?,
            jetstream: d.jetstream.as_ref().is_some_and(|j| j.value),
            timeout: sent.timeout?,
        }))
    }

    fn request(
        &mut self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        subject: &Spanned<String>,
    ) -> Option<Arc<dyn StepExec>> {
        self.not_for(ctx, d, "request", &["match", "jetstream"]);
        let sent = self.sending(ctx, d, subject, "request");
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
            protocol: self.protocol.clone()?,
            slot: self.common.slot(),
            group: sent.group?,
            message: sent.message?,
            timeout: sent.timeout?,
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
        self.common.wait(
            ctx,
            self.protocol.as_ref().map(|p| &p.consumers),
            ("NATS", "nats"),
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

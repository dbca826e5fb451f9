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
use loadline_core::plan::{EVENTS_KIND, OUTCOME_KIND};
use loadline_core::protocol::{Slot, StepExec};
use loadline_core::template::Template;
use loadline_doc::de::{self as doc_de, Spanned};
use loadline_doc::suggest::{did_you_mean, quoted_list};
use loadline_doc::value::{json_value, JsonDoc};
use schemars::SchemaGenerator;

use super::doc::{ConsumerDoc, MatchDoc, NatsActionDoc, NatsDoc, NatsStepDoc};
use super::exec::{CaptureFrom, Message, Payload, PublishStep, RequestStep, WaitStep, Wanted};
use super::{ConsumerSource, ConsumerSpec, NatsProtocol, VuState};
use crate::events::track::Destination;
use crate::registry::{ProtocolBuilder, ProtocolEntry, Scenario, Section, StepDocument, StepKind};

/// The kind of NATS's request groups.
pub const NATS_KIND: &str = "nats";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_WAIT: Duration = Duration::from_secs(10);
const DEFAULT_GRACE: Duration = Duration::from_secs(2);

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
    slot: Option<Slot<VuState>>,
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

/// A positive duration written at `t`, or `default`.
fn duration_or(
    ctx: &mut dyn BuildCtx,
    t: Option<&Spanned<String>>,
    default: Duration,
) -> Option<Duration> {
    match t {
        Some(t) => ctx.duration(&t.value, &t.span, false),
        None => Some(default),
    }
}

fn json_path(ctx: &mut dyn BuildCtx, text: &str, at: &Span) -> Option<serde_json_path::JsonPath> {
    match serde_json_path::JsonPath::parse(text) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.error(at, format!("`{text}` is not a JSONPath: {e}"));
            None
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
        let url = ctx
            .fixed_template(&doc.url.value, &doc.url.span)
            .and_then(|t| t.static_text().map(str::to_owned));
        match &url {
            Some(u) if !(u.starts_with("nats://") || u.starts_with("tls://")) => ctx.error(
                &doc.url.span,
                format!("expected a nats:// or tls:// URL, found `{}`", super::redact_url(u)),
            ),
            Some(_) => {}
            None => ctx.error(
                &doc.url.span,
                "the NATS URL is read once, before the load: it can use vars and `{{ $env.NAME }}`, not values that change per iteration",
            ),
        }
        let timeout = duration_or(ctx, doc.timeout.as_ref(), DEFAULT_TIMEOUT);
        let grace = match &doc.grace {
            Some(g) => ctx.duration(&g.value, &g.span, true),
            None => Some(DEFAULT_GRACE),
        };
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
            let Some(group) = ctx.group(name.value.clone(), EVENTS_KIND, &name.span) else {
                continue;
            };
            dests.push(Arc::new(Destination::new(
                name.value.clone(),
                group,
                specs.len(),
                run,
            )));
            specs.push(spec);
        }
        self.no_responders = ctx.error_classes(&["no_responders"]).first().copied();
        if ctx.error_count() > before {
            return;
        }
        if let (Some(url), Some(timeout), Some(grace)) = (url, timeout, grace) {
            let protocol = Arc::new(NatsProtocol::new(url, timeout, grace, specs, dests, run));
            self.slot = Some(ctx.add_typed_protocol(protocol.clone()));
            self.protocol = Some(protocol);
        }
    }

    fn slot(&self) -> Slot<VuState> {
        self.slot.unwrap_or(Slot::new(usize::MAX))
    }

    fn message(
        &self,
        ctx: &mut dyn BuildCtx,
        d: &NatsActionDoc,
        subject: &Spanned<String>,
    ) -> Option<Message> {
        let before = ctx.error_count();
        let subject_t = ctx.template(&subject.value, &subject.span);
        let payload = match &d.payload {
            None => Some(Payload::None),
            Some(p) => match &p.value {
                JsonDoc::Str(s) => ctx.template(s, &p.span).map(Payload::Text),
                _ => {
                    let v = json_value(ctx, p);
                    ctx.json_template(&v, &p.span).map(Payload::Json)
                }
            },
        };
        let mut headers = Vec::new();
        for (name, value) in d.headers.iter().flat_map(|h| h.0.iter()) {
            if name
                .value
                .eq_ignore_ascii_case(crate::events::envelope::HEADER)
            {
                ctx.error(&name.span, "`Loadline-Envelope` is loadline's own header");
            }
            if let Some(t) = ctx.template(&value.value, &value.span) {
                headers.push((name.value.clone(), t));
            }
        }
        if ctx.error_count() > before {
            return None;
        }
        Some(Message {
            subject: subject_t?,
            payload: payload?,
            headers,
        })
    }

    fn not_for(&self, ctx: &mut dyn BuildCtx, d: &NatsActionDoc, action: &str, keys: &[&str]) {
        let given: [(&str, bool, Option<&Span>); 4] = [
            (
                "jetstream",
                d.jetstream.is_some(),
                d.jetstream.as_ref().map(|s| &s.span),
            ),
            (
                "match",
                d.matching.is_some(),
                d.matching.as_ref().map(|s| &s.span),
            ),
            ("capture", d.capture.is_some(), None),
            (
                "payload",
                d.payload.is_some(),
                d.payload.as_ref().map(|s| &s.span),
            ),
        ];
        for (key, present, span) in given {
            if present && keys.contains(&key) {
                let at = span.cloned().unwrap_or_default();
                ctx.error(&at, format!("`{key}` is not a setting of `{action}`"));
            }
        }
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
        dest_name: &Spanned<String>,
        at: &Span,
    ) -> Option<Arc<dyn StepExec>> {
        self.not_for(
            ctx,
            d,
            "wait_for_event",
            &["jetstream", "capture", "payload"],
        );
        let protocol = self.protocol.clone();
        let dest = protocol.as_ref().and_then(|p| {
            p.dests
                .iter()
                .find(|dest| dest.name == dest_name.value)
                .cloned()
        });
        if dest.is_none() && !self.dest_names.contains(&dest_name.value) {
            let known: Vec<&str> = self.dest_names.iter().map(String::as_str).collect();
            let mut msg = format!("no NATS consumer is called `{}`", dest_name.value);
            if known.is_empty() {
                msg.push_str(": declare one under `nats: { consumers: … }`");
            } else {
                msg.push_str(&format!(": expected one of {}", quoted_list(&known)));
            }
            if let Some(s) = did_you_mean(&dest_name.value, known.iter().copied()) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            ctx.error(&dest_name.span, msg);
        }
        let wanted = match &d.matching {
            None => {
                ctx.missing(at, &["match"], "`wait_for_event` needs `match`: `{ json: \"$.id\", equals: \"{{ id }}\" }` or `{ envelope: true }`");
                None
            }
            Some(m) => wanted(ctx, &m.value, &m.span, dest.as_deref()),
        };
        let timeout = duration_or(ctx, d.timeout.as_ref(), DEFAULT_WAIT);
        let (name, name_span) = match &d.name {
            Some(n) => (n.value.clone(), n.span.clone()),
            None => (format!("event {}", dest_name.value), dest_name.span.clone()),
        };
        let group = ctx.group(name, OUTCOME_KIND, &name_span);
        Some(Arc::new(WaitStep {
            slot: self.slot(),
            group: group?,
            dest: dest?,
            wanted: wanted?,
            timeout: timeout?,
        }))
    }
}

/// What a `match:` waits for; declares its JSONPath on the destination.
fn wanted(
    ctx: &mut dyn BuildCtx,
    m: &MatchDoc,
    at: &Span,
    dest: Option<&Destination>,
) -> Option<Wanted> {
    match (&m.json, &m.equals, &m.envelope) {
        (None, None, Some(e)) if e.value => {
            if let Some(dest) = dest {
                dest.match_envelopes();
            }
            Some(Wanted::Envelope)
        }
        (Some(json), Some(equals), None) => {
            let path = json_path(ctx, &json.value, &json.span);
            let equals: Option<Template> = ctx.template(&equals.value, &equals.span);
            let matcher = match (dest, path) {
                (Some(dest), Some(path)) => dest.matcher(path),
                _ => return None,
            };
            Some(Wanted::Value {
                matcher,
                equals: equals?,
            })
        }
        _ => {
            ctx.error(
                at,
                "`match` takes `json` and `equals` together, or `envelope: true`",
            );
            None
        }
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

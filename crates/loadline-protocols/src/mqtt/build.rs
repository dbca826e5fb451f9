//! MQTT steps from their documents: the `mqtt:` section (the broker's URL
//! and the consumers, each checked where it is written) and `mqtt:` steps.
//!
//! Metric groups: a publish's is its `name` (default `publish ` and the
//! topic as written), of kind `mqtt`; a wait's `event DEST` (kind
//! `outcome`); each consumer's is its name (kind `events`).

use std::sync::Arc;

use loadline_core::build::BuildCtx;
use loadline_core::metrics::ErrorClass;
use loadline_core::protocol::{Slot, StepExec};
use loadline_doc::de::{self as doc_de, Spanned};
use schemars::SchemaGenerator;

use super::doc::{MqttActionDoc, MqttDoc, MqttStepDoc, TopicConsumerDoc};
use super::exec::PublishStep;
use super::{MqttProtocol, TopicSpec};
use crate::events::build::{
    destination, duration_or, message, not_for, wait_step, Server, WaitDoc, DEFAULT_TIMEOUT,
};
use crate::events::vu::VuEvents;
use crate::registry::{ProtocolBuilder, ProtocolEntry, Scenario, Section, StepDocument, StepKind};

/// The kind of MQTT's publish groups.
pub const MQTT_KIND: &str = "mqtt";

const MQTT_STEP: StepKind = StepKind {
    key: "mqtt",
    described: "an `mqtt:` step",
};

/// MQTT 5: step `mqtt`, section `mqtt`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mqtt;

impl ProtocolEntry for Mqtt {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn docs(&self) -> Option<&'static str> {
        Some("docs/event_driven.md")
    }

    fn steps(&self, generator: &mut SchemaGenerator) -> Vec<StepDocument> {
        vec![StepDocument {
            kinds: vec![MQTT_STEP],
            schema: generator.subschema_for::<MqttStepDoc>(),
        }]
    }

    fn sections(&self, generator: &mut SchemaGenerator) -> Vec<Section> {
        vec![Section {
            key: "mqtt",
            description: "The MQTT broker `mqtt:` steps use, and the consumers that subscribe to topics for the whole run.",
            schema: generator.subschema_for::<MqttDoc>(),
        }]
    }

    fn begin(&self, scenario: &Scenario, ctx: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder> {
        let mut b = MqttBuilder::default();
        if let Some(raw) = scenario.section("mqtt") {
            let doc = doc_de::read::<MqttDoc>(raw, ctx);
            b.section(ctx, doc);
        }
        Box::new(b)
    }
}

/// One scenario's MQTT broker and steps.
#[derive(Default)]
struct MqttBuilder {
    protocol: Option<Arc<MqttProtocol>>,
    slot: Option<Slot<VuEvents>>,
    declared: bool,
    publishes: usize,
    dest_names: Vec<String>,
    refused: Option<ErrorClass>,
}

/// A QoS written at `q` (0, 1 or 2), or 1.
fn qos_of(ctx: &mut dyn BuildCtx, q: Option<&Spanned<u8>>) -> Option<u8> {
    match q {
        None => Some(1),
        Some(q) if q.value <= 2 => Some(q.value),
        Some(q) => {
            ctx.error(
                &q.span,
                format!("QoS {} does not exist: expected 0, 1 or 2", q.value),
            );
            None
        }
    }
}

fn consumer(ctx: &mut dyn BuildCtx, name: &str, c: &TopicConsumerDoc) -> Option<TopicSpec> {
    if c.topic.value.is_empty() {
        ctx.error(&c.topic.span, "a topic filter cannot be empty");
    }
    Some(TopicSpec {
        name: name.to_owned(),
        topic: c.topic.value.clone(),
        qos: qos_of(ctx, c.qos.as_ref())?,
        expects: c
            .expects
            .as_ref()
            .map_or_else(|| c.topic.value.clone(), |e| e.value.clone()),
    })
}

impl ProtocolBuilder for MqttBuilder {
    fn step(
        &mut self,
        _kind: &str,
        step: &doc_de::Raw,
        ctx: &mut dyn BuildCtx,
    ) -> Option<Arc<dyn StepExec>> {
        let doc = doc_de::read::<MqttStepDoc>(step, ctx)?;
        let at = &doc.mqtt.span;
        let d = &doc.mqtt.value;
        if d.publish.is_some() == d.wait_for_event.is_some() {
            ctx.missing(
                at,
                &["publish", "wait_for_event"],
                "an `mqtt:` step needs exactly one of `publish` and `wait_for_event`",
            );
            return None;
        }
        if !self.declared {
            ctx.error(
                at,
                "an `mqtt:` step needs a broker: declare it in the `mqtt:` section, e.g. `mqtt: { url: \"mqtt://127.0.0.1:1883\" }`",
            );
            return None;
        }
        match (&d.publish, &d.wait_for_event) {
            (Some(topic), _) => self.publish(ctx, d, topic),
            (None, Some(dest)) => {
                let only_publish = [
                    ("qos", d.qos.as_ref().map(|s| &s.span)),
                    ("retain", d.retain.as_ref().map(|s| &s.span)),
                    ("payload", d.payload.as_ref().map(|s| &s.span)),
                ];
                not_for(ctx, "wait_for_event", &only_publish);
                wait_step(
                    ctx,
                    self.protocol.as_ref().map(|p| &p.consumers),
                    &self.dest_names,
                    ("MQTT", "mqtt"),
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
            (None, None) => None,
        }
    }
}

impl MqttBuilder {
    fn section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<MqttDoc>) {
        self.declared = true;
        let Some(doc) = doc else {
            return;
        };
        let before = ctx.error_count();
        let server = Server::read(
            ctx,
            "MQTT",
            &["mqtt"],
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
            let Some(spec) = consumer(ctx, &name.value, &c.value) else {
                continue;
            };
            let Some(dest) = destination(ctx, name, specs.len(), run) else {
                continue;
            };
            dests.push(dest);
            specs.push(spec);
        }
        self.refused = ctx.error_classes(&["refused"]).first().copied();
        if ctx.error_count() > before {
            return;
        }
        if let (Some(url), Some(timeout), Some(grace)) = (server.url, server.timeout, server.grace)
        {
            let protocol = Arc::new(MqttProtocol::new(url, timeout, grace, specs, dests, run));
            self.slot = Some(ctx.add_typed_protocol(protocol.clone()));
            self.protocol = Some(protocol);
        }
    }

    fn slot(&self) -> Slot<VuEvents> {
        self.slot.unwrap_or(Slot::new(usize::MAX))
    }

    fn publish(
        &mut self,
        ctx: &mut dyn BuildCtx,
        d: &MqttActionDoc,
        topic: &Spanned<String>,
    ) -> Option<Arc<dyn StepExec>> {
        not_for(
            ctx,
            "publish",
            &[("match", d.matching.as_ref().map(|s| &s.span))],
        );
        let message = message(ctx, topic, d.payload.as_ref(), d.headers.as_ref());
        let qos = qos_of(ctx, d.qos.as_ref());
        let protocol = self.protocol.clone();
        let timeout = duration_or(
            ctx,
            d.timeout.as_ref(),
            protocol.as_ref().map_or(DEFAULT_TIMEOUT, |p| p.timeout),
        );
        let (name, name_span) = match &d.name {
            Some(n) => (n.value.clone(), n.span.clone()),
            None => (format!("publish {}", topic.value), topic.span.clone()),
        };
        let group = ctx.group(name, MQTT_KIND, &name_span);
        let index = self.publishes;
        self.publishes += 1;
        Some(Arc::new(PublishStep {
            protocol: protocol?,
            slot: self.slot(),
            group: group?,
            index,
            message: message?,
            qos: qos?,
            retain: d.retain.as_ref().is_some_and(|r| r.value),
            timeout: timeout?,
            refused: self.refused?,
        }))
    }
}

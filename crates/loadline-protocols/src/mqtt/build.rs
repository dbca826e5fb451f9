//! MQTT steps from their documents: the `mqtt:` section (the broker's URL
//! and the consumers, each checked where it is written) and `mqtt:` steps.
//!
//! Metric groups: a publish's is its `name` (default `publish ` and the
//! topic as written), of kind `mqtt`; a wait's `event DEST` (kind
//! `outcome`); each consumer's is its name (kind `events`).

use std::sync::Arc;

use loadline_core::build::BuildCtx;
use loadline_core::metrics::ErrorClass;
use loadline_core::protocol::StepExec;
use loadline_doc::de::{self as doc_de, Spanned};

use super::doc::{MqttActionDoc, MqttDoc, MqttStepDoc, TopicConsumerDoc};
use super::exec::PublishStep;
use super::{MqttProtocol, TopicSpec};
use crate::events::build::{not_for, Broker, BrokerBuilder, Common, SendDoc, Server, WaitDoc};
use crate::registry::ProtocolBuilder;

/// The kind of MQTT's publish groups.
pub const MQTT_KIND: &str = "mqtt";

/// MQTT 5: step `mqtt`, section `mqtt`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mqtt;

impl Broker for Mqtt {
    const KEY: &'static str = "mqtt";
    const DESCRIBED: &'static str = "an `mqtt:` step";
    const SECTION: &'static str = "The MQTT broker `mqtt:` steps use, and the consumers that subscribe to topics for the whole run.";
    type StepDoc = MqttStepDoc;
    type SectionDoc = MqttDoc;
    type Builder = MqttBuilder;
}

/// One scenario's MQTT broker and steps.
#[derive(Default)]
pub struct MqttBuilder {
    protocol: Option<Arc<MqttProtocol>>,
    common: Common,
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
        let actions = [
            ("publish", d.publish.is_some()),
            ("wait_for_event", d.wait_for_event.is_some()),
        ];
        let needs = ("broker", "mqtt://127.0.0.1:1883");
        if !self.common.check_step(ctx, at, "mqtt", &actions, needs) {
            return None;
        }
        if let Some(topic) = &d.publish {
            return self.publish(ctx, d, topic);
        }
        let only_publish = [
            ("qos", d.qos.as_ref().map(|s| &s.span)),
            ("retain", d.retain.as_ref().map(|s| &s.span)),
            ("payload", d.payload.as_ref().map(|s| &s.span)),
        ];
        not_for(ctx, "wait_for_event", &only_publish);
        self.common.wait(
            ctx,
            self.protocol.as_ref().map(|p| &p.consumers),
            ("MQTT", "mqtt"),
            WaitDoc {
                dest: d.wait_for_event.as_ref()?,
                matching: d.matching.as_ref(),
                timeout: d.timeout.as_ref(),
                name: d.name.as_ref(),
                at,
            },
        )
    }
}

impl BrokerBuilder for MqttBuilder {
    type Section = MqttDoc;

    fn section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<MqttDoc>) {
        self.read_section(ctx, doc);
    }
}

impl MqttBuilder {
    fn read_section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<MqttDoc>) {
        self.common.declared = true;
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
        let (specs, dests) =
            self.common
                .consumers(ctx, doc.consumers.as_ref(), run, |ctx, name, c, _| {
                    consumer(ctx, name, c)
                });
        self.refused = ctx.error_classes(&["refused"]).first().copied();
        if ctx.error_count() > before {
            return;
        }
        if let (Some(url), Some(timeout), Some(grace)) = (server.url, server.timeout, server.grace)
        {
            let protocol = Arc::new(MqttProtocol::new(url, timeout, grace, specs, dests, run));
            self.common.slot = Some(ctx.add_typed_protocol(protocol.clone()));
            self.protocol = Some(protocol);
        }
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
        let qos = qos_of(ctx, d.qos.as_ref());
        let sent = SendDoc {
            to: topic,
            payload: d.payload.as_ref(),
            headers: d.headers.as_ref(),
            timeout: d.timeout.as_ref(),
            name: d.name.as_ref(),
        }
        .read(
            ctx,
            self.protocol.as_ref().map(|p| p.timeout),
            format!("publish {}", topic.value),
            MQTT_KIND,
        );
        Some(Arc::new(PublishStep {
            protocol: self.protocol.clone()?,
            slot: self.common.slot(),
            group: sent.group?,
            index: self.common.next_publish(),
            message: sent.message?,
            qos: qos?,
            retain: d.retain.as_ref().is_some_and(|r| r.value),
            timeout: sent.timeout?,
            refused: self.refused?,
        }))
    }
}

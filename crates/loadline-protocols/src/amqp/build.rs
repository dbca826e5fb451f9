//! AMQP steps from their documents: the `amqp:` section (the broker's URL,
//! the exchanges to declare, the consumers, each checked where it is
//! written) and `amqp:` steps.
//!
//! Metric groups: a publish's is its `name` (default `publish ` and the
//! exchange as written, `publish (default exchange)` for `""`), of kind
//! `amqp`; a wait's `event DEST` (kind `outcome`); each consumer's is its
//! name (kind `events`).

use std::sync::Arc;

use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::ExchangeKind;
use loadline_core::build::{BuildCtx, Span};
use loadline_core::metrics::ErrorClass;
use loadline_core::protocol::StepExec;
use loadline_doc::de::{self as doc_de, Entries, Spanned};
use loadline_doc::value::JsonDoc;

use super::doc::{AmqpActionDoc, AmqpDoc, AmqpStepDoc, BindDoc, QueueConsumerDoc};
use super::exec::PublishStep;
use super::{AmqpProtocol, QueueSpec};
use crate::events::build::{not_for, Broker, BrokerBuilder, Common, SendDoc, Server, WaitDoc};
use crate::registry::ProtocolBuilder;

/// The kind of AMQP's publish groups.
pub const AMQP_KIND: &str = "amqp";
/// How many messages a consumer may hold unacknowledged, by default.
const DEFAULT_PREFETCH: u16 = 500;

/// RabbitMQ (AMQP 0-9-1): step `amqp`, section `amqp`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Amqp;

impl Broker for Amqp {
    const KEY: &'static str = "amqp";
    const DESCRIBED: &'static str = "an `amqp:` step";
    const SECTION: &'static str = "The AMQP broker (RabbitMQ) `amqp:` steps use, the exchanges to declare, and the consumers that read queues for the whole run.";
    /// lapin logs as an error the channel that a passive declare of a
    /// missing queue or exchange closes (expected: loadline then declares
    /// it); what really fails, loadline reports itself.
    const QUIET_LOGS: &'static [&'static str] = &["lapin=off"];
    type StepDoc = AmqpStepDoc;
    type SectionDoc = AmqpDoc;
    type Builder = AmqpBuilder;
}

/// One scenario's AMQP broker and steps.
#[derive(Default)]
pub struct AmqpBuilder {
    protocol: Option<Arc<AmqpProtocol>>,
    common: Common,
    nacked: Option<ErrorClass>,
}

impl ProtocolBuilder for AmqpBuilder {
    fn step(
        &mut self,
        _kind: &str,
        step: &doc_de::Raw,
        ctx: &mut dyn BuildCtx,
    ) -> Option<Arc<dyn StepExec>> {
        let doc = doc_de::read::<AmqpStepDoc>(step, ctx)?;
        let at = &doc.amqp.span;
        let d = &doc.amqp.value;
        let actions = [
            ("publish", d.publish.is_some()),
            ("wait_for_event", d.wait_for_event.is_some()),
        ];
        let needs = ("broker", "amqp://guest:guest@127.0.0.1:5672/%2f");
        if !self.common.check_step(ctx, at, "amqp", &actions, needs) {
            return None;
        }
        if let Some(exchange) = &d.publish {
            return self.publish(ctx, d, exchange);
        }
        let only_publish = [
            ("routing_key", d.routing_key.as_ref().map(|s| &s.span)),
            ("payload", d.payload.as_ref().map(|s| &s.span)),
            ("confirm", d.confirm.as_ref().map(|s| &s.span)),
            ("persistent", d.persistent.as_ref().map(|s| &s.span)),
        ];
        not_for(ctx, "wait_for_event", &only_publish);
        self.common.wait(
            ctx,
            self.protocol.as_ref().map(|p| &p.consumers),
            ("AMQP", "amqp"),
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

impl BrokerBuilder for AmqpBuilder {
    type Section = AmqpDoc;

    fn section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<AmqpDoc>) {
        self.read_section(ctx, doc);
    }
}

fn exchange_kind(ctx: &mut dyn BuildCtx, t: &Spanned<String>) -> Option<ExchangeKind> {
    match t.value.as_str() {
        "direct" => Some(ExchangeKind::Direct),
        "fanout" => Some(ExchangeKind::Fanout),
        "topic" => Some(ExchangeKind::Topic),
        "headers" => Some(ExchangeKind::Headers),
        other => {
            ctx.error(
                &t.span,
                format!("`{other}` is not an exchange type: expected `direct`, `fanout`, `topic` or `headers`"),
            );
            None
        }
    }
}

/// A queue argument's value as AMQP writes it.
fn argument(ctx: &mut dyn BuildCtx, v: &Spanned<JsonDoc>) -> Option<AMQPValue> {
    match &v.value {
        JsonDoc::Bool(b) => Some(AMQPValue::Boolean(*b)),
        JsonDoc::Int(i) => Some(AMQPValue::LongLongInt(*i)),
        JsonDoc::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Some(AMQPValue::LongLongInt(i)),
            Err(_) => {
                ctx.error(&v.span, "too large for a queue argument");
                None
            }
        },
        JsonDoc::Float(f) => Some(AMQPValue::Double(*f)),
        JsonDoc::Str(s) => Some(AMQPValue::LongString(LongString::from(s.as_str()))),
        _ => {
            ctx.error(
                &v.span,
                "a queue argument is a number, a string or a boolean",
            );
            None
        }
    }
}

fn arguments(ctx: &mut dyn BuildCtx, args: Option<&Entries<Spanned<JsonDoc>>>) -> FieldTable {
    let mut table = FieldTable::default();
    for (name, value) in args.iter().flat_map(|a| a.0.iter()) {
        if let Some(v) = argument(ctx, value) {
            table.insert(name.value.as_str().into(), v);
        }
    }
    table
}

fn binding(b: &BindDoc) -> (String, String) {
    (
        b.exchange.value.clone(),
        b.routing_key
            .as_ref()
            .map_or_else(|| "#".to_owned(), |k| k.value.clone()),
    )
}

/// A consumer's spec from its document.
fn consumer(ctx: &mut dyn BuildCtx, name: &str, c: &QueueConsumerDoc) -> QueueSpec {
    let queue = c
        .queue
        .as_ref()
        .map_or_else(|| name.to_owned(), |q| q.value.clone());
    let bind = c.bind.as_ref().map(|b| binding(&b.value));
    let expects = match (&c.expects, &bind) {
        (Some(e), _) => binding(&e.value),
        (None, Some(b)) => b.clone(),
        (None, None) => (String::new(), queue.clone()),
    };
    QueueSpec {
        name: name.to_owned(),
        queue,
        declare: c.declare.as_ref().is_none_or(|d| d.value),
        arguments: arguments(ctx, c.arguments.as_ref()),
        bind,
        prefetch: c
            .prefetch
            .as_ref()
            .map_or(DEFAULT_PREFETCH, |p| p.value.max(1)),
        expects,
    }
}

impl AmqpBuilder {
    fn read_section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<AmqpDoc>) {
        self.common.declared = true;
        let Some(doc) = doc else {
            return;
        };
        let before = ctx.error_count();
        let server = Server::read(
            ctx,
            "AMQP",
            &["amqp", "amqps"],
            &doc.url,
            doc.timeout.as_ref(),
            doc.grace.as_ref(),
            super::redact_url,
        );
        let mut exchanges = Vec::new();
        for (name, kind) in doc.exchanges.iter().flat_map(|e| e.0.iter()) {
            if let Some(kind) = exchange_kind(ctx, kind) {
                exchanges.push((name.value.clone(), kind));
            }
        }
        let run = fastrand::u64(1..);
        let (specs, dests) =
            self.common
                .consumers(ctx, doc.consumers.as_ref(), run, |ctx, name, c, _| {
                    Some(consumer(ctx, name, c))
                });
        self.nacked = ctx.error_classes(&["nacked"]).first().copied();
        if ctx.error_count() > before {
            return;
        }
        if let (Some(url), Some(timeout), Some(grace)) = (server.url, server.timeout, server.grace)
        {
            let protocol = Arc::new(AmqpProtocol::new(
                url, timeout, grace, exchanges, specs, dests, run,
            ));
            self.common.slot = Some(ctx.add_typed_protocol(protocol.clone()));
            self.protocol = Some(protocol);
        }
    }

    fn publish(
        &mut self,
        ctx: &mut dyn BuildCtx,
        d: &AmqpActionDoc,
        exchange: &Spanned<String>,
    ) -> Option<Arc<dyn StepExec>> {
        not_for(
            ctx,
            "publish",
            &[("match", d.matching.as_ref().map(|s| &s.span))],
        );
        let default_name = if exchange.value.is_empty() {
            "publish (default exchange)".to_owned()
        } else {
            format!("publish {}", exchange.value)
        };
        let sent = SendDoc {
            to: exchange,
            payload: d.payload.as_ref(),
            headers: d.headers.as_ref(),
            timeout: d.timeout.as_ref(),
            name: d.name.as_ref(),
        }
        .read(
            ctx,
            self.protocol.as_ref().map(|p| p.timeout),
            default_name,
            AMQP_KIND,
        );
        let routing_key = match &d.routing_key {
            Some(k) => ctx.template(&k.value, &k.span),
            None => ctx.template("", &Span::default()),
        };
        Some(Arc::new(PublishStep {
            protocol: self.protocol.clone()?,
            slot: self.common.slot(),
            group: sent.group?,
            index: self.common.next_publish(),
            message: sent.message?,
            routing_key: routing_key?,
            confirm: d.confirm.as_ref().is_none_or(|c| c.value),
            persistent: d.persistent.as_ref().is_some_and(|p| p.value),
            timeout: sent.timeout?,
            nacked: self.nacked?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::registry::Registry;

    #[test]
    fn lapins_expected_channel_closes_stay_out_of_the_default_log() {
        let filter = Registry::builtin().default_log_filter();
        assert!(filter.starts_with("warn,"), "{filter}");
        assert!(filter.split(',').any(|d| d == "lapin=off"), "{filter}");
    }
}

//! The executor of `amqp: { publish: … }` steps (the wait for an event is
//! [`crate::events::wait`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lapin::options::BasicPublishOptions;
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Confirmation};
use loadline_core::metrics::{ErrorClass, ErrorKind, GroupId};
use loadline_core::protocol::{BoxFuture, Slot, StepExec, StepOutcome};
use loadline_core::template::Template;
use loadline_core::vu::Vu;

use super::{route, AmqpProtocol};
use crate::events::envelope::HEADER;
use crate::events::payload::{sample, Message, Payload};
use crate::events::vu::VuEvents;

/// An `amqp: { publish: … }` step.
#[derive(Debug)]
pub(crate) struct PublishStep {
    pub(crate) protocol: Arc<AmqpProtocol>,
    pub(crate) slot: Slot<VuEvents>,
    pub(crate) group: GroupId,
    /// Its index among the plan's publish steps (a VU's producers).
    pub(crate) index: usize,
    /// `to` is the exchange.
    pub(crate) message: Message,
    pub(crate) routing_key: Template,
    pub(crate) confirm: bool,
    pub(crate) persistent: bool,
    pub(crate) timeout: Duration,
    /// The error class of a nacked publish.
    pub(crate) nacked: ErrorClass,
}

impl StepExec for PublishStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move {
            let vu_id = vu.id;
            let Some((vars, state, hub)) = vu.parts_for(self.slot, self.group) else {
                return StepOutcome::AbortIteration;
            };
            let exchange = self.message.to.render(vars);
            let routing_key = self.routing_key.render(vars);
            let mut headers = FieldTable::default();
            for (name, value) in &self.message.headers {
                headers.insert(
                    name.as_str().into(),
                    AMQPValue::LongString(LongString::from(value.render(vars))),
                );
            }
            let mut text = std::mem::take(&mut state.text);
            self.message.payload.render(vars, &mut text);
            let consumers = &self.protocol.consumers;
            let producer = state.next_message(
                self.index,
                consumers.run,
                &consumers.producers,
                consumers.dests.len(),
            );
            headers.insert(
                HEADER.into(),
                AMQPValue::LongString(LongString::from(state.envelope.as_str())),
            );
            let mut properties = BasicProperties::default().with_headers(headers);
            if matches!(self.message.payload, Payload::Json(_)) {
                properties = properties.with_content_type("application/json".into());
            }
            if self.persistent {
                properties = properties.with_delivery_mode(2);
            }
            let size = text.len() as u64;
            let started = Instant::now();
            let sent = async {
                let channel = self
                    .protocol
                    .channel(vu_id, self.confirm)
                    .await
                    .map_err(|_| ErrorClass::from(ErrorKind::Connect))?;
                let confirm = channel
                    .basic_publish(
                        exchange.as_str().into(),
                        routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        text.as_bytes(),
                        properties,
                    )
                    .await
                    .map_err(|_| ErrorClass::from(ErrorKind::Reset))?;
                if !self.confirm {
                    return Ok(());
                }
                match confirm.await {
                    Ok(Confirmation::Ack(_) | Confirmation::NotRequested) => Ok(()),
                    Ok(Confirmation::Nack(_)) => Err(self.nacked),
                    // The broker closed the channel: e.g. no such exchange.
                    Err(_) => Err(ErrorKind::Protocol.into()),
                }
            };
            let result = match tokio::time::timeout(self.timeout, sent).await {
                Ok(r) => r,
                Err(_) => Err(ErrorKind::Timeout.into()),
            };
            state.text = text;
            hub.record_request(&sample(self.group, started, result.err(), size, 0));
            if result.is_err() {
                return StepOutcome::AbortIteration;
            }
            consumers.sent(hub, &producer, &route(&exchange, &routing_key));
            StepOutcome::Continue
        })
    }
}

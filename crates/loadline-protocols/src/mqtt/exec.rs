//! The executor of `mqtt: { publish: … }` steps (the wait for an event is
//! [`crate::events::wait`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use loadline_core::metrics::{ErrorClass, ErrorKind, GroupId, RequestSample};
use loadline_core::protocol::{BoxFuture, Slot, StepExec, StepOutcome};
use loadline_core::vu::Vu;
use rumqttc::v5::mqttbytes::v5::PublishProperties;
use tokio::sync::oneshot;

use super::{lock, qos, Failure, MqttProtocol};
use crate::events::envelope::HEADER;
use crate::events::payload::{sample, Message, Payload};
use crate::events::vu::VuEvents;

/// An `mqtt: { publish: … }` step.
#[derive(Debug)]
pub(crate) struct PublishStep {
    pub(crate) protocol: Arc<MqttProtocol>,
    pub(crate) slot: Slot<VuEvents>,
    pub(crate) group: GroupId,
    /// Its index among the plan's publish steps (a VU's producers).
    pub(crate) index: usize,
    /// `to` is the topic.
    pub(crate) message: Message,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    pub(crate) timeout: Duration,
    /// The error class of a publish the broker refused.
    pub(crate) refused: ErrorClass,
}

impl StepExec for PublishStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move {
            let Some((vars, state, hub)) = vu.parts_for(self.slot, self.group) else {
                return StepOutcome::AbortIteration;
            };
            let Some(publisher) = self.protocol.publisher.get() else {
                hub.record_request(&RequestSample::unsent(self.group, ErrorKind::Connect));
                return StepOutcome::AbortIteration;
            };
            let topic = self.message.to.render(vars);
            let mut properties = PublishProperties::default();
            for (name, value) in &self.message.headers {
                properties
                    .user_properties
                    .push((name.clone(), value.render(vars)));
            }
            let mut text = std::mem::take(&mut state.text);
            self.message.payload.render(vars, &mut text);
            if matches!(self.message.payload, Payload::Json(_)) {
                properties.content_type = Some("application/json".into());
            }
            let consumers = &self.protocol.consumers;
            let producer = state.next_message(
                self.index,
                consumers.run,
                &consumers.producers,
                consumers.dests.len(),
            );
            properties
                .user_properties
                .push((HEADER.to_owned(), state.envelope.clone()));
            let payload = Bytes::copy_from_slice(text.as_bytes());
            state.text = text;
            let size = payload.len() as u64;
            let started = Instant::now();
            let sent = async {
                // Queued and given its place in one step (no await between):
                // the event loop's n-th written publish is the n-th queued.
                let rx = loop {
                    let (tx, rx) = oneshot::channel();
                    let queued = {
                        let mut in_flight = lock(&publisher.in_flight);
                        in_flight.queued.push_back(tx);
                        let r = publisher.client.try_publish_with_properties(
                            topic.clone(),
                            qos(self.qos),
                            self.retain,
                            payload.clone(),
                            properties.clone(),
                        );
                        if r.is_err() {
                            in_flight.queued.pop_back();
                        }
                        r.is_ok()
                    };
                    if queued {
                        break rx;
                    }
                    // The queue is full (or the connection is gone): retry
                    // until the step's timeout.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                };
                match rx.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(Failure::Refused)) => Err(self.refused),
                    Ok(Err(Failure::Lost)) | Err(_) => Err(ErrorKind::Reset.into()),
                }
            };
            let result = match tokio::time::timeout(self.timeout, sent).await {
                Ok(r) => r,
                Err(_) => Err(ErrorKind::Timeout.into()),
            };
            hub.record_request(&sample(self.group, started, result.err(), size, 0));
            if result.is_err() {
                return StepOutcome::AbortIteration;
            }
            consumers.sent(hub, &producer, &topic);
            StepOutcome::Continue
        })
    }
}

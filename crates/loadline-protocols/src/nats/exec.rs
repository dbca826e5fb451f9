//! The executors of `nats:` steps: publish (core, or JetStream to its ack),
//! and request-reply (the wait for an event is [`crate::events::wait`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use loadline_core::metrics::{ErrorClass, ErrorKind, GroupId, MetricsHub, RequestSample};
use loadline_core::protocol::{BoxFuture, Slot, StepExec, StepOutcome};
use loadline_core::template::Vars;
use loadline_core::vu::Vu;
use serde_json_path::JsonPath;

use super::NatsProtocol;
use crate::events::envelope::HEADER;
use crate::events::payload::{sample, Message};
use crate::events::vu::VuEvents;

/// Renders a message's subject, headers and payload (into `text`).
fn render(
    message: &Message,
    vars: &mut Vars,
    text: &mut String,
) -> (String, async_nats::HeaderMap, Bytes) {
    let subject = message.to.render(vars);
    let mut headers = async_nats::HeaderMap::new();
    for (name, value) in &message.headers {
        headers.insert(name.as_str(), value.render(vars).as_str());
    }
    message.payload.render(vars, text);
    (subject, headers, Bytes::from(text.clone()))
}

/// A `nats: { publish: … }` step.
#[derive(Debug)]
pub(crate) struct PublishStep {
    pub(crate) protocol: Arc<NatsProtocol>,
    pub(crate) slot: Slot<VuEvents>,
    pub(crate) group: GroupId,
    /// Its index among the plan's publish steps (a VU's producers).
    pub(crate) index: usize,
    pub(crate) message: Message,
    pub(crate) jetstream: bool,
    pub(crate) timeout: Duration,
}

impl StepExec for PublishStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move {
            let Some((vars, state, hub)) = vu.parts_for(self.slot, self.group) else {
                return StepOutcome::AbortIteration;
            };
            let Some(client) = self.protocol.client() else {
                hub.record_request(&RequestSample::unsent(self.group, ErrorKind::Connect));
                return StepOutcome::AbortIteration;
            };
            let mut text = std::mem::take(&mut state.text);
            let (subject, mut headers, payload) = render(&self.message, vars, &mut text);
            state.text = text;
            let consumers = &self.protocol.consumers;
            let producer = state.next_message(
                self.index,
                consumers.run,
                &consumers.producers,
                consumers.dests.len(),
            );
            headers.insert(HEADER, state.envelope.as_str());
            let size = payload.len() as u64;
            let started = Instant::now();
            let result: Result<(), ErrorClass> = if self.jetstream {
                match self.protocol.jetstream() {
                    None => Err(ErrorKind::Connect.into()),
                    Some(js) => {
                        let acked = async {
                            js.publish_with_headers(subject.clone(), headers, payload)
                                .await
                                .map_err(|_| ErrorClass::from(ErrorKind::Reset))?
                                .await
                                .map_err(|_| ErrorClass::from(ErrorKind::Protocol))
                        };
                        match tokio::time::timeout(self.timeout, acked).await {
                            Ok(r) => r.map(|_| ()),
                            Err(_) => Err(ErrorKind::Timeout.into()),
                        }
                    }
                }
            } else {
                client
                    .publish_with_headers(subject.clone(), headers, payload)
                    .await
                    .map_err(|_| ErrorKind::Reset.into())
            };
            hub.record_request(&sample(self.group, started, result.err(), size, 0));
            if result.is_err() {
                return StepOutcome::AbortIteration;
            }
            self.protocol.consumers.sent(hub, &producer, &subject);
            StepOutcome::Continue
        })
    }
}

/// Where a capture of a reply reads.
#[derive(Debug)]
pub(crate) enum CaptureFrom {
    /// The whole payload (JSON when it parses, else its text).
    Payload,
    Json(JsonPath),
}

/// A `nats: { request: … }` step.
#[derive(Debug)]
pub(crate) struct RequestStep {
    pub(crate) protocol: Arc<NatsProtocol>,
    pub(crate) slot: Slot<VuEvents>,
    pub(crate) group: GroupId,
    pub(crate) message: Message,
    pub(crate) timeout: Duration,
    pub(crate) no_responders: ErrorClass,
    pub(crate) captures: Vec<(usize, CaptureFrom)>,
}

impl StepExec for RequestStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move {
            let Some((vars, state, hub)) = vu.parts_for(self.slot, self.group) else {
                return StepOutcome::AbortIteration;
            };
            let Some(client) = self.protocol.client() else {
                hub.record_request(&RequestSample::unsent(self.group, ErrorKind::Connect));
                return StepOutcome::AbortIteration;
            };
            let mut text = std::mem::take(&mut state.text);
            let (subject, headers, payload) = render(&self.message, vars, &mut text);
            state.text = text;
            let size = payload.len() as u64;
            let started = Instant::now();
            let asked = client.request_with_headers(subject, headers, payload);
            let reply = match tokio::time::timeout(self.timeout, asked).await {
                Err(_) => Err(ErrorKind::Timeout.into()),
                Ok(Err(e)) => Err(match e.kind() {
                    async_nats::RequestErrorKind::NoResponders => self.no_responders,
                    async_nats::RequestErrorKind::TimedOut => ErrorKind::Timeout.into(),
                    async_nats::RequestErrorKind::Other => ErrorKind::Reset.into(),
                }),
                Ok(Ok(m)) => Ok(m),
            };
            let reply = match reply {
                Ok(m) => m,
                Err(class) => {
                    hub.record_request(&sample(self.group, started, Some(class), size, 0));
                    return StepOutcome::AbortIteration;
                }
            };
            hub.record_request(&sample(
                self.group,
                started,
                None,
                size,
                reply.payload.len() as u64,
            ));
            capture(hub, self.group, vars, &self.captures, &reply.payload)
        })
    }
}

/// Captures values from a reply; a capture that finds nothing ends the
/// iteration (error `capture`).
fn capture(
    hub: &MetricsHub,
    group: GroupId,
    vars: &mut Vars,
    captures: &[(usize, CaptureFrom)],
    payload: &[u8],
) -> StepOutcome {
    if captures.is_empty() {
        return StepOutcome::Continue;
    }
    let doc = serde_json::from_slice::<serde_json::Value>(payload).ok();
    for (slot, from) in captures {
        let value = match from {
            CaptureFrom::Payload => Some(doc.clone().unwrap_or_else(|| {
                serde_json::Value::String(String::from_utf8_lossy(payload).into_owned())
            })),
            CaptureFrom::Json(path) => doc.as_ref().and_then(|d| path.query(d).first().cloned()),
        };
        match (value, vars.captures.get_mut(*slot)) {
            (Some(v), Some(c)) => *c = Some(v),
            _ => {
                hub.record_error(group, ErrorKind::Capture);
                return StepOutcome::AbortIteration;
            }
        }
    }
    StepOutcome::Continue
}

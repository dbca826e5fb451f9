//! The executors of `nats:` steps: publish (core, or JetStream to its ack),
//! request-reply, and the wait for a matching event on a destination.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use loadline_core::cache::CacheOutcome;
use loadline_core::events::EventCount;
use loadline_core::metrics::{ErrorClass, ErrorKind, GroupId, MetricsHub, RequestSample};
use loadline_core::protocol::{BoxFuture, Slot, StepExec, StepOutcome};
use loadline_core::template::{JsonTemplate, Template, Vars};
use loadline_core::vu::Vu;
use serde_json_path::JsonPath;

use super::{NatsProtocol, VuState};
use crate::events::envelope::{now_micros, Envelope, HEADER};
use crate::events::track::{value_text, Destination, Waiting};

/// A message's payload.
#[derive(Debug)]
pub(crate) enum Payload {
    None,
    Text(Template),
    Json(JsonTemplate),
}

impl Payload {
    fn render(&self, vars: &mut Vars, out: &mut String) {
        out.clear();
        match self {
            Payload::None => {}
            Payload::Text(t) => t.render_into(vars, out),
            Payload::Json(t) => t.render_into(vars, out),
        }
    }
}

/// What a publish or a request sends.
#[derive(Debug)]
pub(crate) struct Message {
    pub(crate) subject: Template,
    pub(crate) payload: Payload,
    pub(crate) headers: Vec<(String, Template)>,
}

impl Message {
    /// Renders the subject, the headers and the payload (into `text`).
    fn render(&self, vars: &mut Vars, text: &mut String) -> (String, async_nats::HeaderMap, Bytes) {
        let subject = self.subject.render(vars);
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in &self.headers {
            headers.insert(name.as_str(), value.render(vars).as_str());
        }
        self.payload.render(vars, text);
        (subject, headers, Bytes::from(text.clone()))
    }
}

fn sample(
    group: GroupId,
    started: Instant,
    error: Option<ErrorClass>,
    sent: u64,
    got: u64,
) -> RequestSample {
    RequestSample {
        group,
        latency: started.elapsed(),
        status: None,
        failed: error.is_some(),
        error,
        bytes_sent: sent,
        bytes_received: got,
        cache: CacheOutcome::None,
    }
}

/// A `nats: { publish: … }` step.
#[derive(Debug)]
pub(crate) struct PublishStep {
    pub(crate) protocol: Arc<NatsProtocol>,
    pub(crate) slot: Slot<VuState>,
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
            let (subject, mut headers, payload) = self.message.render(vars, &mut text);
            state.text = text;
            if state.producers.len() <= self.index {
                state.producers.resize_with(self.index + 1, || None);
            }
            let dests = self.protocol.dests.len();
            let (producer, seq) = state.producers[self.index]
                .get_or_insert_with(|| (self.protocol.producers.add(dests), 0));
            *seq += 1;
            let (producer, seq) = (producer.clone(), *seq);
            Envelope {
                run: self.protocol.run,
                producer: producer.id,
                seq,
                sent_micros: now_micros(),
            }
            .write(&mut state.envelope);
            headers.insert(HEADER, state.envelope.as_str());
            state.last_sent = Some((producer.id, seq));
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
            for d in self.protocol.feeds(&subject) {
                producer.sent(d);
                if let Some(dest) = self.protocol.dests.get(d) {
                    hub.record_event(dest.group, EventCount::Sent, 1);
                }
            }
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
    pub(crate) slot: Slot<VuState>,
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
            let (subject, headers, payload) = self.message.render(vars, &mut text);
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

/// Which message a wait is for.
#[derive(Debug)]
pub(crate) enum Wanted {
    /// The value at a matcher's JSONPath, rendered.
    Value { matcher: u32, equals: Template },
    /// The envelope of the VU's last publish.
    Envelope,
}

/// A `nats: { wait_for_event: … }` step.
#[derive(Debug)]
pub(crate) struct WaitStep {
    pub(crate) slot: Slot<VuState>,
    pub(crate) group: GroupId,
    pub(crate) dest: Arc<Destination>,
    pub(crate) wanted: Wanted,
    pub(crate) timeout: Duration,
}

impl StepExec for WaitStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move {
            let started = Instant::now();
            let Some((vars, state, hub)) = vu.parts_for(self.slot, self.group) else {
                return StepOutcome::AbortIteration;
            };
            let key = match &self.wanted {
                Wanted::Value { matcher, equals } => {
                    let v = equals.eval(vars);
                    Destination::key(*matcher, value_text(&v))
                }
                Wanted::Envelope => match state.last_sent {
                    Some((producer, seq)) => Destination::envelope_key(producer, seq),
                    None => {
                        hub.record_request(&RequestSample::unsent(self.group, ErrorKind::Other));
                        return StepOutcome::AbortIteration;
                    }
                },
            };
            let arrived = match self.dest.wait(key.clone()) {
                Waiting::Arrived(_) => Some(started),
                Waiting::Pending(rx) => match tokio::time::timeout(self.timeout, rx).await {
                    Ok(Ok(at)) => Some(at),
                    _ => None,
                },
            };
            let Some(at) = arrived else {
                self.dest.gave_up(&key);
                hub.record_request(&sample(
                    self.group,
                    started,
                    Some(ErrorKind::Timeout.into()),
                    0,
                    0,
                ));
                return StepOutcome::AbortIteration;
            };
            hub.record_request(&RequestSample {
                latency: at.saturating_duration_since(started),
                ..sample(self.group, started, None, 0, 0)
            });
            StepOutcome::Continue
        })
    }
}

//! What a produced message carries besides its envelope: a payload (a
//! template, or JSON whose strings are templates) and headers.

use std::time::Instant;

use loadline_core::cache::CacheOutcome;
use loadline_core::metrics::{ErrorClass, GroupId, RequestSample};
use loadline_core::template::{JsonTemplate, Template, Vars};

/// A message's payload.
#[derive(Debug)]
pub enum Payload {
    None,
    Text(Template),
    Json(JsonTemplate),
}

impl Payload {
    /// Renders the payload into `out` (cleared first).
    pub fn render(&self, vars: &mut Vars, out: &mut String) {
        out.clear();
        match self {
            Payload::None => {}
            Payload::Text(t) => t.render_into(vars, out),
            Payload::Json(t) => t.render_into(vars, out),
        }
    }
}

/// What a publish sends: its destination (a subject, a topic, a routing
/// key), payload and headers, all templates.
#[derive(Debug)]
pub struct Message {
    pub to: Template,
    pub payload: Payload,
    pub headers: Vec<(String, Template)>,
}

/// The sample of a message sent at `started` (now done): `sent` bytes out,
/// `got` in (a reply), failed when `error` says why.
pub fn sample(
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

//! What a produced message carries besides its envelope: a payload (a
//! template, or JSON whose strings are templates) and headers.

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

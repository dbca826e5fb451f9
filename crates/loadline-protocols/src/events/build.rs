//! What every broker's builder shares: the section's server URL, timeout and
//! grace period; a published message (its destination, payload and headers);
//! the destinations consumers read; and the `wait_for_event` step.

use std::sync::Arc;
use std::time::Duration;

use loadline_core::build::{BuildCtx, Span};
use loadline_core::plan::{EVENTS_KIND, OUTCOME_KIND};
use loadline_core::protocol::{Slot, StepExec};
use loadline_core::template::Template;
use loadline_doc::de::{Entries, Spanned};
use loadline_doc::suggest::{did_you_mean, quoted_list};
use loadline_doc::value::{json_value, JsonDoc};
use schemars::JsonSchema;
use serde::Deserialize;

use super::envelope::HEADER;
use super::payload::{Message, Payload};
use super::run::Consumers;
use super::track::Destination;
use super::vu::VuEvents;
use super::wait::{WaitStep, Wanted};

/// How long a publish's acknowledgement may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a `wait_for_event` waits by default.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);
/// How long late messages may still arrive after the load by default.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(2);

/// Which message a wait matches: the one whose JSON payload holds `equals`
/// at `json`, or (`envelope: true`) the one carrying the envelope of this
/// VU's last publish.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatchDoc {
    /// A JSONPath into the message's payload, e.g. `$.order_id`.
    pub json: Option<Spanned<String>>,
    /// The value it must hold (a template, e.g. `"{{ order_id }}"`;
    /// compared as text).
    pub equals: Option<Spanned<String>>,
    /// Match the envelope of this VU's last publish (a system that passes
    /// headers on).
    pub envelope: Option<Spanned<bool>>,
}

/// A positive duration written at `t`, or `default`.
pub fn duration_or(
    ctx: &mut dyn BuildCtx,
    t: Option<&Spanned<String>>,
    default: Duration,
) -> Option<Duration> {
    match t {
        Some(t) => ctx.duration(&t.value, &t.span, false),
        None => Some(default),
    }
}

/// A JSONPath written at `at`.
pub fn json_path(
    ctx: &mut dyn BuildCtx,
    text: &str,
    at: &Span,
) -> Option<serde_json_path::JsonPath> {
    match serde_json_path::JsonPath::parse(text) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.error(at, format!("`{text}` is not a JSONPath: {e}"));
            None
        }
    }
}

/// A section's server: its URL (fixed before the load, one of `schemes`),
/// the default timeout of acknowledgements and the grace period.
pub struct Server {
    pub url: Option<String>,
    pub timeout: Option<Duration>,
    pub grace: Option<Duration>,
}

impl Server {
    /// Reads the section's `url`, `timeout` and `grace`; `broker` names it in
    /// messages (`NATS`), `redact` hides a URL's secrets.
    pub fn read(
        ctx: &mut dyn BuildCtx,
        broker: &str,
        schemes: &[&str],
        url: &Spanned<String>,
        timeout: Option<&Spanned<String>>,
        grace: Option<&Spanned<String>>,
        redact: fn(&str) -> String,
    ) -> Self {
        let text = ctx
            .fixed_template(&url.value, &url.span)
            .and_then(|t| t.static_text().map(str::to_owned));
        match &text {
            Some(u) if !schemes.iter().any(|s| u.starts_with(&format!("{s}://"))) => {
                let schemes: Vec<String> = schemes.iter().map(|s| format!("{s}://")).collect();
                let article = if schemes[0].starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                ctx.error(
                    &url.span,
                    format!(
                        "expected {article} {} URL, found `{}`",
                        schemes.join(" or "),
                        redact(u)
                    ),
                )
            }
            Some(_) => {}
            None => ctx.error(
                &url.span,
                format!("the {broker} URL is read once, before the load: it can use vars and `{{{{ $env.NAME }}}}`, not values that change per iteration"),
            ),
        }
        let timeout = duration_or(ctx, timeout, DEFAULT_TIMEOUT);
        let grace = match grace {
            Some(g) => ctx.duration(&g.value, &g.span, true),
            None => Some(DEFAULT_GRACE),
        };
        Self {
            url: text,
            timeout,
            grace,
        }
    }
}

/// A new destination called `name` (its metric group of kind `events`), the
/// `index`-th of its protocol.
pub fn destination(
    ctx: &mut dyn BuildCtx,
    name: &Spanned<String>,
    index: usize,
    run: u64,
) -> Option<Arc<Destination>> {
    let group = ctx.group(name.value.clone(), EVENTS_KIND, &name.span)?;
    Some(Arc::new(Destination::new(
        name.value.clone(),
        group,
        index,
        run,
    )))
}

/// A message to `to` with `payload` and `headers` (loadline's envelope
/// header refused among them).
pub fn message(
    ctx: &mut dyn BuildCtx,
    to: &Spanned<String>,
    payload: Option<&Spanned<JsonDoc>>,
    headers: Option<&Entries<Spanned<String>>>,
) -> Option<Message> {
    let before = ctx.error_count();
    let to_t = ctx.template(&to.value, &to.span);
    let payload = match payload {
        None => Some(Payload::None),
        Some(p) => match &p.value {
            JsonDoc::Str(s) => ctx.template(s, &p.span).map(Payload::Text),
            _ => {
                let v = json_value(ctx, p);
                ctx.json_template(&v, &p.span).map(Payload::Json)
            }
        },
    };
    let mut list = Vec::new();
    for (name, value) in headers.iter().flat_map(|h| h.0.iter()) {
        if name.value.eq_ignore_ascii_case(HEADER) {
            ctx.error(&name.span, "`Loadline-Envelope` is loadline's own header");
        }
        if let Some(t) = ctx.template(&value.value, &value.span) {
            list.push((name.value.clone(), t));
        }
    }
    if ctx.error_count() > before {
        return None;
    }
    Some(Message {
        to: to_t?,
        payload: payload?,
        headers: list,
    })
}

/// Refuses, for `action`, the settings among `given` (key, whether it was
/// written, where) that it does not take.
pub fn not_for(ctx: &mut dyn BuildCtx, action: &str, given: &[(&str, Option<&Span>)]) {
    for (key, at) in given {
        if let Some(at) = at {
            ctx.error(at, format!("`{key}` is not a setting of `{action}`"));
        }
    }
}

/// A `wait_for_event` step's settings, as any broker's step writes them.
pub struct WaitDoc<'a> {
    /// The destination's name.
    pub dest: &'a Spanned<String>,
    pub matching: Option<&'a Spanned<MatchDoc>>,
    pub timeout: Option<&'a Spanned<String>>,
    pub name: Option<&'a Spanned<String>>,
    /// The step's key, for messages.
    pub at: &'a Span,
}

/// Builds a `wait_for_event` step on one of `consumers`' destinations.
/// `declared` are the names of every consumer the section declares (valid or
/// not); `broker` (`NATS`) and `section` (`nats`) name them in messages.
pub fn wait_step(
    ctx: &mut dyn BuildCtx,
    consumers: Option<&Consumers>,
    declared: &[String],
    (broker, section): (&str, &str),
    slot: Slot<VuEvents>,
    w: WaitDoc<'_>,
) -> Option<Arc<dyn StepExec>> {
    let dest = consumers.and_then(|c| c.dest(&w.dest.value)).cloned();
    if dest.is_none() && !declared.contains(&w.dest.value) {
        let known: Vec<&str> = declared.iter().map(String::as_str).collect();
        let mut msg = format!("no {broker} consumer is called `{}`", w.dest.value);
        if known.is_empty() {
            msg.push_str(&format!(
                ": declare one under `{section}: {{ consumers: … }}`"
            ));
        } else {
            msg.push_str(&format!(": expected one of {}", quoted_list(&known)));
        }
        if let Some(s) = did_you_mean(&w.dest.value, known.iter().copied()) {
            msg.push_str(&format!("; did you mean `{s}`?"));
        }
        ctx.error(&w.dest.span, msg);
    }
    let wanted = match w.matching {
        None => {
            ctx.missing(w.at, &["match"], "`wait_for_event` needs `match`: `{ json: \"$.id\", equals: \"{{ id }}\" }` or `{ envelope: true }`");
            None
        }
        Some(m) => wanted(ctx, &m.value, &m.span, dest.as_deref()),
    };
    let timeout = duration_or(ctx, w.timeout, DEFAULT_WAIT);
    let (name, name_span) = match w.name {
        Some(n) => (n.value.clone(), n.span.clone()),
        None => (format!("event {}", w.dest.value), w.dest.span.clone()),
    };
    let group = ctx.group(name, OUTCOME_KIND, &name_span);
    Some(Arc::new(WaitStep {
        slot,
        group: group?,
        dest: dest?,
        wanted: wanted?,
        timeout: timeout?,
    }))
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

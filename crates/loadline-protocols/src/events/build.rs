//! What every broker's builder shares: its entry in the registry
//! ([`Broker`]), the section's server URL, timeout and grace period; a
//! published message (its destination, payload and headers) and its metric
//! group; the destinations consumers read; and the `wait_for_event` step.

use std::sync::Arc;
use std::time::Duration;

use loadline_core::build::{BuildCtx, Span};
use loadline_core::plan::{EVENTS_KIND, OUTCOME_KIND};
use loadline_core::protocol::{Slot, StepExec};
use loadline_core::template::Template;
use loadline_doc::de::{self as doc_de, Entries, Lenient, Spanned};
use loadline_doc::suggest::{did_you_mean, quoted_list};
use loadline_doc::value::{json_value, JsonDoc};
use schemars::{JsonSchema, SchemaGenerator};
use serde::Deserialize;

use super::envelope::HEADER;
use super::payload::{Message, Payload};
use super::run::Consumers;
use super::track::Destination;
use super::vu::VuEvents;
use super::wait::{WaitStep, Wanted};
use crate::registry::{ProtocolBuilder, ProtocolEntry, Scenario, Section, StepDocument, StepKind};

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

/// `a` or `an`, before `word`.
fn article(word: &str) -> &'static str {
    if word.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
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
                ctx.error(
                    &url.span,
                    format!(
                        "expected {} {} URL, found `{}`",
                        article(&schemes[0]),
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

/// A broker protocol as the scenario format sees it: one step key and one
/// section, both called [`Broker::KEY`], documented in
/// docs/event_driven.md. Every broker is a [`ProtocolEntry`] through this.
pub trait Broker: Send + Sync + 'static {
    /// The step key and the section key (`nats`).
    const KEY: &'static str;
    /// How messages name such a step ("a `nats:` step").
    const DESCRIBED: &'static str;
    /// What the section is for, for the schema.
    const SECTION: &'static str;
    /// A step's document.
    type StepDoc: JsonSchema;
    /// The section's document.
    type SectionDoc: JsonSchema + for<'de> Deserialize<'de>;
    /// Log directives the command line's default filter adds (see
    /// [`ProtocolEntry::quiet_logs`]).
    const QUIET_LOGS: &'static [&'static str] = &[];
    /// What builds one scenario's steps, from the section.
    type Builder: BrokerBuilder<Section = Self::SectionDoc> + Default + 'static;
}

/// Builds one scenario's steps of a [`Broker`].
pub trait BrokerBuilder: ProtocolBuilder {
    type Section;
    /// Reads the section (`None`: it is there but could not be read, its
    /// problems reported).
    fn section(&mut self, ctx: &mut dyn BuildCtx, doc: Option<Self::Section>);
}

impl<B: Broker> ProtocolEntry for B {
    fn name(&self) -> &'static str {
        B::KEY
    }

    fn docs(&self) -> Option<&'static str> {
        Some("docs/event_driven.md")
    }

    fn quiet_logs(&self) -> &'static [&'static str] {
        B::QUIET_LOGS
    }

    fn steps(&self, generator: &mut SchemaGenerator) -> Vec<StepDocument> {
        vec![StepDocument {
            kinds: vec![StepKind {
                key: B::KEY,
                described: B::DESCRIBED,
            }],
            schema: generator.subschema_for::<B::StepDoc>(),
        }]
    }

    fn sections(&self, generator: &mut SchemaGenerator) -> Vec<Section> {
        vec![Section {
            key: B::KEY,
            description: B::SECTION,
            schema: generator.subschema_for::<B::SectionDoc>(),
        }]
    }

    fn begin(&self, scenario: &Scenario, ctx: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder> {
        let mut b = B::Builder::default();
        if let Some(raw) = scenario.section(B::KEY) {
            let doc = doc_de::read::<B::SectionDoc>(raw, ctx);
            b.section(ctx, doc);
        }
        Box::new(b)
    }
}

/// What every broker's builder keeps: whether the scenario has its section,
/// the protocol's slot, how many publish steps there are (each VU's
/// producers), and the names of the consumers declared (valid or not).
#[derive(Debug, Default)]
pub struct Common {
    pub declared: bool,
    pub slot: Option<Slot<VuEvents>>,
    pub publishes: usize,
    pub dest_names: Vec<String>,
}

impl Common {
    /// The protocol's slot (an unused one when its section is invalid: no
    /// plan is built then).
    pub fn slot(&self) -> Slot<VuEvents> {
        self.slot.unwrap_or(Slot::new(usize::MAX))
    }

    /// The index of a new publish step among the plan's.
    pub fn next_publish(&mut self) -> usize {
        self.publishes += 1;
        self.publishes - 1
    }

    /// Checks a step of section `key` that names `actions` (each key, and
    /// whether it is written): exactly one is, and the section exists
    /// (`needs`: what it declares, `server` or `broker`, and an example URL).
    pub fn check_step(
        &self,
        ctx: &mut dyn BuildCtx,
        at: &Span,
        key: &str,
        actions: &[(&'static str, bool)],
        (what, example): (&str, &str),
    ) -> bool {
        let step = format!("{} `{key}:` step", article(key));
        if actions.iter().filter(|(_, given)| *given).count() != 1 {
            let keys: Vec<&str> = actions.iter().map(|(k, _)| *k).collect();
            let list: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
            let one_of = match list.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
                _ => list.concat(),
            };
            ctx.missing(at, &keys, format!("{step} needs exactly one of {one_of}"));
            return false;
        }
        if !self.declared {
            ctx.error(
                at,
                format!("{step} needs a {what}: declare it in the `{key}:` section, e.g. `{key}: {{ url: \"{example}\" }}`"),
            );
            return false;
        }
        true
    }

    /// Reads the section's consumers: each one's spec (by `spec`, which
    /// reports its problems) and its destination, the `index`-th of the
    /// protocol's.
    pub fn consumers<C, S>(
        &mut self,
        ctx: &mut dyn BuildCtx,
        entries: Option<&Entries<Lenient<Spanned<C>>>>,
        run: u64,
        mut spec: impl FnMut(&mut dyn BuildCtx, &str, &C, &Span) -> Option<S>,
    ) -> (Vec<S>, Vec<Arc<Destination>>) {
        let (mut specs, mut dests) = (Vec::new(), Vec::new());
        for (name, entry) in entries.iter().flat_map(|c| c.0.iter()) {
            self.dest_names.push(name.value.clone());
            let Some(c) = entry.get() else {
                continue;
            };
            let Some(s) = spec(ctx, &name.value, &c.value, &c.span) else {
                continue;
            };
            let Some(dest) = destination(ctx, name, specs.len(), run) else {
                continue;
            };
            dests.push(dest);
            specs.push(s);
        }
        (specs, dests)
    }

    /// A `wait_for_event` step on one of `consumers`' destinations.
    pub fn wait(
        &self,
        ctx: &mut dyn BuildCtx,
        consumers: Option<&Consumers>,
        broker: (&str, &str),
        w: WaitDoc<'_>,
    ) -> Option<Arc<dyn StepExec>> {
        wait_step(ctx, consumers, &self.dest_names, broker, self.slot(), w)
    }
}

/// What a step that sends a message has: the message, its timeout and its
/// metric group (each `None` when it has problems, reported).
pub struct Sending {
    pub message: Option<Message>,
    pub timeout: Option<Duration>,
    pub group: Option<loadline_core::metrics::GroupId>,
}

/// A sending step's settings, as any broker's step writes them.
pub struct SendDoc<'a> {
    /// Where it sends (a subject, an exchange, a topic), a template.
    pub to: &'a Spanned<String>,
    pub payload: Option<&'a Spanned<JsonDoc>>,
    pub headers: Option<&'a Entries<Spanned<String>>>,
    pub timeout: Option<&'a Spanned<String>>,
    pub name: Option<&'a Spanned<String>>,
}

impl SendDoc<'_> {
    /// The message, the timeout (`timeout`, or the section's) and the metric
    /// group (`name`, or `default_name`) of kind `kind`.
    pub fn read(
        &self,
        ctx: &mut dyn BuildCtx,
        section_timeout: Option<Duration>,
        default_name: String,
        kind: &str,
    ) -> Sending {
        let message = message(ctx, self.to, self.payload, self.headers);
        let timeout = duration_or(
            ctx,
            self.timeout,
            section_timeout.unwrap_or(DEFAULT_TIMEOUT),
        );
        let group = match self.name {
            Some(n) => ctx.group(n.value.clone(), kind, &n.span),
            None => ctx.group(default_name, kind, &self.to.span),
        };
        Sending {
            message,
            timeout,
            group,
        }
    }
}

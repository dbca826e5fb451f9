//! Redis steps from their documents: the `redis:` section (each server's URL
//! checked where it is written), `redis:` command steps and `cache_aside:`
//! steps, whose `on_miss:` steps the scenario format builds
//! ([`StepCtx::nested_steps`]).
//!
//! Metric groups (kind `redis`): a command step's is its `name` (default
//! `redis ` and the command as written, e.g. `redis GET product:{{ id }}`); a
//! cache-aside's commands are `NAME (get)` and `NAME (set)`, where `name`
//! defaults to `cache ` and the key as written. `NAME` itself is the lookup as
//! its caller waits for it (kind `outcome`): a hit's GET, or a miss's GET, the
//! origin's steps and the SET; it carries the hit or the miss.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use loadline_core::build::{BuildCtx, Span};
use loadline_core::protocol::{Slot, StepExec};
use loadline_core::template::Template;
use loadline_doc::de::{self as doc_de, Entries, Lenient, Raw, Spanned};
use loadline_doc::suggest::{did_you_mean, quoted_list};
use loadline_doc::value::{plain_value, JsonDoc};
use schemars::SchemaGenerator;

use super::doc::{
    CacheAsideDoc, CacheAsideStepDoc, CheckDoc, CommandDoc, ConnectionDoc, RedisStepDoc, ServerDoc,
};
use super::exec::{
    Arg, CacheAsideStep, CaptureSpec, CheckSpec, CommandSpec, CommandStep, Exchange,
};
use super::{ConnectionMode, RedisMetrics, RedisProtocol, Server, ServerSpec, VuState};
use crate::registry::{
    NamedDatabase, ProtocolBuilder, ProtocolEntry, Scenario, Section, StepCtx, StepDocument,
    StepKind,
};

/// The kind of Redis's metric groups.
pub const REDIS_KIND: &str = "redis";
/// The suffix of a cache-aside's SET group.
pub const SET_SUFFIX: &str = " (set)";
/// The suffix of a cache-aside's GET group.
pub const GET_SUFFIX: &str = " (get)";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// A default group name is at most this many characters (then `…`).
const NAME_CHARS: usize = 60;

const REDIS_STEP: StepKind = StepKind {
    key: "redis",
    described: "a `redis:` step",
};
const CACHE_ASIDE_STEP: StepKind = StepKind {
    key: "cache_aside",
    described: "a `cache_aside:` step",
};

/// The command keys of a [`CommandDoc`], in the order messages list them.
const COMMANDS: [&str; 10] = [
    "get", "set", "mget", "hget", "hset", "incr", "expire", "del", "command", "pipeline",
];

/// Redis: steps `redis` and `cache_aside`, section `redis`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Redis;

impl ProtocolEntry for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn docs(&self) -> Option<&'static str> {
        Some("docs/redis.md")
    }

    fn steps(&self, generator: &mut SchemaGenerator) -> Vec<StepDocument> {
        vec![
            StepDocument {
                kinds: vec![REDIS_STEP],
                schema: generator.subschema_for::<RedisStepDoc>(),
            },
            StepDocument {
                kinds: vec![CACHE_ASIDE_STEP],
                schema: generator.subschema_for::<CacheAsideStepDoc>(),
            },
        ]
    }

    fn sections(&self, generator: &mut SchemaGenerator) -> Vec<Section> {
        vec![Section {
            key: "redis",
            description:
                "Redis servers, by the name `redis:` and `cache_aside:` steps give as `server:`.",
            schema: generator.subschema_for::<std::collections::BTreeMap<String, ServerDoc>>(),
        }]
    }

    fn begin(&self, scenario: &Scenario, ctx: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder> {
        let mut b = RedisBuilder::default();
        b.servers_section(ctx, scenario);
        Box::new(b)
    }
}

/// One scenario's Redis servers and steps.
#[derive(Default)]
struct RedisBuilder {
    /// Each server by name, with its spec when its settings are valid.
    servers: Vec<(String, Option<ServerSpec>)>,
    /// The plan's Redis protocol, when every server is valid.
    protocol: Option<Arc<RedisProtocol>>,
    /// Checks steps when a server is invalid (reported): every server, an
    /// invalid one standing in as a local one.
    checker: Option<Arc<RedisProtocol>>,
    slot: Option<Slot<VuState>>,
}

impl ProtocolBuilder for RedisBuilder {
    fn step(
        &mut self,
        kind: &str,
        step: &Raw,
        ctx: &mut dyn BuildCtx,
    ) -> Option<Arc<dyn StepExec>> {
        match kind {
            "cache_aside" => {
                ctx.error(
                    &step.span(),
                    "a `cache_aside:` step cannot be built here: its `on_miss:` steps need the scenario's steps",
                );
                None
            }
            _ => {
                let doc = doc_de::read::<RedisStepDoc>(step, ctx)?;
                self.command_step(ctx, &doc.redis)
            }
        }
    }

    fn step_in(
        &mut self,
        kind: &str,
        step: &Raw,
        ctx: &mut dyn StepCtx,
    ) -> Option<Arc<dyn StepExec>> {
        match kind {
            "cache_aside" => {
                let doc = doc_de::read::<CacheAsideStepDoc>(step, ctx)?;
                self.cache_aside_step(ctx, &doc.cache_aside)
            }
            _ => self.step(kind, step, ctx),
        }
    }

    fn databases(&self) -> Vec<NamedDatabase> {
        self.servers
            .iter()
            .map(|(name, spec)| NamedDatabase {
                name: name.clone(),
                url: spec.as_ref().map(|s| s.url.clone()),
                monitor: "redis",
                unwatchable: None,
            })
            .collect()
    }
}

/// The build context of a step that holds steps, as a plain one.
fn up(ctx: &mut dyn StepCtx) -> &mut dyn BuildCtx {
    ctx
}

/// Whether `name` can name a server: letters, digits, `_` and `-`.
fn is_server_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

/// `text` cut to [`NAME_CHARS`] characters.
fn short(text: String) -> String {
    if text.chars().count() <= NAME_CHARS {
        return text;
    }
    let mut out: String = text.chars().take(NAME_CHARS - 1).collect();
    out.push('…');
    out
}

impl RedisBuilder {
    /// Reads `redis:` and joins the plan when it has servers.
    fn servers_section(&mut self, ctx: &mut dyn BuildCtx, scenario: &Scenario) {
        type ServersDoc = Entries<Lenient<Spanned<ServerDoc>>>;
        let entries = scenario
            .section("redis")
            .and_then(|raw| doc_de::read::<ServersDoc>(raw, ctx));
        for (key, entry) in entries.iter().flat_map(|e| e.0.iter()) {
            if !is_server_name(&key.value) {
                ctx.error(
                    &key.span,
                    format!(
                        "`{}` cannot name a Redis server: use letters, digits, `_` and `-`, such as `cache`",
                        key.value
                    ),
                );
            }
            let spec = entry.get().and_then(|d| server(ctx, &key.value, d));
            self.servers.push((key.value.clone(), spec));
        }
        if self.servers.is_empty() {
            return;
        }
        let metrics = RedisMetrics::declare(ctx);
        let stand_ins: Vec<ServerSpec> = self
            .servers
            .iter()
            .map(|(name, spec)| {
                spec.clone().unwrap_or_else(|| ServerSpec {
                    name: name.clone(),
                    url: "redis://127.0.0.1:6379".into(),
                    mode: ConnectionMode::PerVu,
                    cluster: false,
                    timeout: DEFAULT_TIMEOUT,
                })
            })
            .collect();
        self.checker = RedisProtocol::new(&stand_ins, metrics).ok();
        let specs: Option<Vec<ServerSpec>> = self.servers.iter().map(|(_, s)| s.clone()).collect();
        // Each URL was read already, where it is written.
        if let Some(Ok(protocol)) = specs.map(|s| RedisProtocol::new(&s, metrics)) {
            self.slot = Some(ctx.add_typed_protocol(protocol.clone()));
            self.protocol = Some(protocol);
        }
    }

    /// The server a step names (`None`: the only one).
    fn server(
        &self,
        ctx: &mut dyn BuildCtx,
        name: Option<&Spanned<String>>,
        step: &Span,
        what: &str,
    ) -> Option<Arc<Server>> {
        let known: Vec<&str> = self.servers.iter().map(|(n, _)| n.as_str()).collect();
        let index = match name {
            Some(name) => match known.iter().position(|n| *n == name.value) {
                Some(i) => i,
                None => {
                    let mut msg = format!("no Redis server is called `{}`", name.value);
                    if known.is_empty() {
                        msg.push_str(": declare it under `redis:`, e.g. `redis: { cache: { url: \"redis://127.0.0.1:6379/0\" } }`");
                    } else {
                        msg.push_str(&format!(
                            ": expected one of {} (from `redis:`)",
                            quoted_list(&known)
                        ));
                    }
                    if let Some(s) = did_you_mean(&name.value, known.iter().copied()) {
                        msg.push_str(&format!("; did you mean `{s}`?"));
                    }
                    ctx.error(&name.span, msg);
                    return None;
                }
            },
            None => match known.as_slice() {
                [_] => 0,
                [] => {
                    ctx.error(
                        step,
                        format!("{what} needs a Redis server: declare one under `redis:`, e.g. `redis: {{ cache: {{ url: \"redis://127.0.0.1:6379/0\" }} }}`"),
                    );
                    return None;
                }
                _ => {
                    ctx.error(
                        step,
                        format!(
                            "{what} needs `server:`, the scenario has several Redis servers: one of {}",
                            quoted_list(&known)
                        ),
                    );
                    return None;
                }
            },
        };
        let protocol = self.protocol.as_ref().or(self.checker.as_ref())?;
        protocol.server(index).cloned()
    }

    fn slot(&self) -> Slot<VuState> {
        self.slot.unwrap_or(Slot::new(usize::MAX))
    }

    /// A `redis:` step.
    fn command_step(
        &mut self,
        ctx: &mut dyn BuildCtx,
        doc: &Spanned<CommandDoc>,
    ) -> Option<Arc<dyn StepExec>> {
        let before = ctx.error_count();
        let d = &doc.value;
        let server = self.server(ctx, d.server.as_ref(), &doc.span, "a `redis:` step");
        let built = command(ctx, doc, false);
        let name = match (&d.name, &built) {
            (Some(n), _) => Some(n.value.clone()),
            (None, Some((_, label))) => Some(short(format!("redis {label}"))),
            (None, None) => None,
        };
        let name_span = d.name.as_ref().map_or(&doc.span, |n| &n.span);
        let group = name.and_then(|n| ctx.group(n, REDIS_KIND, name_span));
        let timeout = step_timeout(ctx, d.timeout.as_ref(), server.as_deref());
        let checks = d.check.as_ref().map(|c| checks(ctx, c)).unwrap_or_default();
        // Captures become known to the steps after this one even when this
        // one has errors, so that one mistake does not cascade.
        let captures = d
            .capture
            .as_ref()
            .map(|c| captures(ctx, c))
            .unwrap_or_default();
        if ctx.error_count() > before {
            return None;
        }
        Some(Arc::new(CommandStep {
            slot: self.slot(),
            server: server?,
            group: group?,
            exchange: built?.0,
            timeout: timeout?,
            captures,
            checks,
            logged: AtomicBool::new(false),
        }))
    }

    /// A `cache_aside:` step.
    fn cache_aside_step(
        &mut self,
        ctx: &mut dyn StepCtx,
        doc: &Spanned<CacheAsideDoc>,
    ) -> Option<Arc<dyn StepExec>> {
        let before = ctx.error_count();
        let d = &doc.value;
        let server = self.server(ctx, d.server.as_ref(), &doc.span, "a `cache_aside:` step");
        let key = match &d.key {
            Some(k) => up(ctx).template(&k.value, &k.span),
            None => {
                up(ctx).missing(
                    &doc.span,
                    &["key"],
                    "a `cache_aside:` step needs `key:`, the cache key, e.g. `key: \"product:{{ id }}\"`",
                );
                None
            }
        };
        let name = match (&d.name, &d.key) {
            (Some(n), _) => Some(n.value.clone()),
            (None, Some(k)) => Some(short(format!("cache {}", k.value))),
            (None, None) => None,
        };
        let name_span = d.name.as_ref().map_or(&doc.span, |n| &n.span).clone();
        let group = name
            .clone()
            .and_then(|n| ctx.group(n, loadline_core::plan::OUTCOME_KIND, &name_span));
        let get_group = name
            .clone()
            .and_then(|n| ctx.group(format!("{n}{GET_SUFFIX}"), REDIS_KIND, &name_span));
        let set_group =
            name.and_then(|n| ctx.group(format!("{n}{SET_SUFFIX}"), REDIS_KIND, &name_span));
        let timeout = step_timeout(ctx, d.timeout.as_ref(), server.as_deref());
        let ttl = d
            .ttl
            .as_ref()
            .and_then(|t| up(ctx).duration(&t.value, &t.span, false));
        let on_miss = match &d.on_miss {
            Some(list) => {
                if list.value.is_empty() {
                    up(ctx).error(
                        &list.span,
                        "`on_miss` is empty: expected the steps that fetch the value from the origin, e.g. `- get: /products/{{ id }}`",
                    );
                }
                Some(ctx.nested_steps(list, self))
            }
            None => {
                up(ctx).missing(
                    &doc.span,
                    &["on_miss"],
                    "a `cache_aside:` step needs `on_miss:`, the steps that fetch the value on a miss",
                );
                None
            }
        };
        // The value may use what `on_miss` captured.
        let value = match &d.value {
            Some(v) => value_arg(ctx, v),
            None => {
                up(ctx).missing(
                    &doc.span,
                    &["value"],
                    "a `cache_aside:` step needs `value:`, what to SET on a miss, e.g. `value: \"{{ product }}\"`",
                );
                None
            }
        };
        let capture = d.capture.as_ref().map(|c| ctx.capture(&c.value, &c.span));
        if ctx.error_count() > before {
            return None;
        }
        Some(Arc::new(CacheAsideStep {
            slot: self.slot(),
            server: server?,
            group: group?,
            get_group: get_group?,
            set_group: set_group?,
            key: key?,
            value: value?,
            ttl,
            on_miss: on_miss?,
            capture: match capture {
                Some(slot) => Some(slot?),
                None => None,
            },
            timeout: timeout?,
            logged: AtomicBool::new(false),
        }))
    }
}

/// A server's settings; `None` when they are wrong (reported).
fn server(ctx: &mut dyn BuildCtx, name: &str, doc: &Spanned<ServerDoc>) -> Option<ServerSpec> {
    let d = &doc.value;
    let before = ctx.error_count();
    let t = ctx.fixed_template(&d.url.value, &d.url.span)?;
    let Some(url) = t.static_text().map(str::to_owned) else {
        ctx.error(
            &d.url.span,
            "a Redis URL is read once, before the load: it can use vars and `{{ $env.NAME }}`, not values that change per iteration",
        );
        return None;
    };
    let mode = match d.connection.as_ref().map(|c| c.value) {
        None | Some(ConnectionDoc::PerVu) => ConnectionMode::PerVu,
        Some(ConnectionDoc::Shared) => ConnectionMode::Shared,
    };
    let timeout = match &d.timeout {
        Some(t) => ctx.duration(&t.value, &t.span, false),
        None => Some(DEFAULT_TIMEOUT),
    };
    let spec = ServerSpec {
        name: name.to_owned(),
        url,
        mode,
        cluster: d.cluster.as_ref().is_some_and(|c| c.value),
        timeout: timeout?,
    };
    // Read the URL now, so that its mistakes show where it is written.
    if let Err(e) = Server::new(0, &spec, RedisMetrics::default()) {
        ctx.error(&d.url.span, e);
        return None;
    }
    (ctx.error_count() == before).then_some(spec)
}

fn step_timeout(
    ctx: &mut dyn BuildCtx,
    given: Option<&Spanned<String>>,
    server: Option<&Server>,
) -> Option<Duration> {
    match given {
        Some(t) => ctx.duration(&t.value, &t.span, false),
        None => Some(server.map_or(DEFAULT_TIMEOUT, |s| s.timeout)),
    }
}

/// The command (or pipeline) of a document, and its label for a default
/// name (`GET product:{{ id }}`). `in_pipeline`: an item of a pipeline, which
/// holds a command only.
fn command(
    ctx: &mut dyn BuildCtx,
    doc: &Spanned<CommandDoc>,
    in_pipeline: bool,
) -> Option<(Exchange, String)> {
    let d = &doc.value;
    let present: Vec<&str> = COMMANDS
        .iter()
        .copied()
        .filter(|k| match *k {
            "get" => d.get.is_some(),
            "set" => d.set.is_some(),
            "mget" => d.mget.is_some(),
            "hget" => d.hget.is_some(),
            "hset" => d.hset.is_some(),
            "incr" => d.incr.is_some(),
            "expire" => d.expire.is_some(),
            "del" => d.del.is_some(),
            "command" => d.command.is_some(),
            _ => d.pipeline.is_some(),
        })
        .collect();
    if in_pipeline {
        let step_keys = [
            ("server", d.server.as_ref().map(|s| &s.span)),
            ("name", d.name.as_ref().map(|s| &s.span)),
            ("timeout", d.timeout.as_ref().map(|s| &s.span)),
            ("check", d.check.as_ref().map(|s| &s.span)),
            ("pipeline", d.pipeline.as_ref().map(|s| &s.span)),
        ];
        for (key, span) in step_keys {
            if let Some(span) = span {
                ctx.error(
                    span,
                    format!(
                        "`{key}` belongs to the `redis:` step, not to a command of its pipeline"
                    ),
                );
            }
        }
        if d.capture.is_some() {
            ctx.error(
                &doc.span,
                "`capture` belongs to the `redis:` step, not to a command of its pipeline: capture from the step's reply with `{ index: N }`",
            );
        }
    }
    let kind = match present.as_slice() {
        [] => {
            ctx.missing(
                &doc.span,
                &COMMANDS,
                format!(
                    "{} needs a command: one of {}",
                    if in_pipeline {
                        "a pipeline's item"
                    } else {
                        "a `redis:` step"
                    },
                    quoted_list(&COMMANDS)
                ),
            );
            return None;
        }
        [one] => *one,
        [first, second, ..] => {
            ctx.error(
                &doc.span,
                format!(
                    "one command per step: found both `{first}` and `{second}` (send several at once with `pipeline:`)"
                ),
            );
            return None;
        }
    };
    args_fit(ctx, doc, kind);
    let key = |ctx: &mut dyn BuildCtx, k: &Option<Spanned<String>>| {
        k.as_ref()
            .and_then(|k| ctx.template(&k.value, &k.span).map(Arg::Text))
    };
    let written =
        |k: &Option<Spanned<String>>| k.as_ref().map(|k| k.value.clone()).unwrap_or_default();
    let one = |name: &str, args: Vec<Arg>| {
        Exchange::One(CommandSpec {
            name: name.to_owned(),
            args,
        })
    };
    match kind {
        "get" => {
            let k = key(ctx, &d.get)?;
            Some((one("GET", vec![k]), format!("GET {}", written(&d.get))))
        }
        "set" => {
            let k = key(ctx, &d.set);
            let v = required_value(ctx, doc, d.value.as_ref(), "set");
            let mut args = vec![k?, v?];
            if let Some(ttl) = &d.ttl {
                let ttl = ctx.duration(&ttl.value, &ttl.span, false)?;
                args.extend(expiry_args(ttl, "PX", "EX"));
            }
            Some((one("SET", args), format!("SET {}", written(&d.set))))
        }
        "mget" | "del" => {
            let keys = d.mget.as_ref().or(d.del.as_ref())?;
            let (args, label) = key_list(ctx, keys)?;
            let name = if kind == "mget" { "MGET" } else { "DEL" };
            Some((one(name, args), format!("{name} {label}")))
        }
        "hget" => {
            let k = key(ctx, &d.hget);
            let f = match &d.field {
                Some(f) => ctx.template(&f.value, &f.span).map(Arg::Text),
                None => {
                    ctx.missing(
                        &doc.span,
                        &["field"],
                        "`hget` needs `field:`, the hash field to read",
                    );
                    None
                }
            };
            Some((
                one("HGET", vec![k?, f?]),
                format!("HGET {} {}", written(&d.hget), written(&d.field)),
            ))
        }
        "hset" => {
            let k = key(ctx, &d.hset);
            let mut args = vec![];
            match (&d.field, &d.fields) {
                (Some(f), None) => {
                    let f = ctx.template(&f.value, &f.span).map(Arg::Text);
                    let v = required_value(ctx, doc, d.value.as_ref(), "hset");
                    args.push(f?);
                    args.push(v?);
                }
                (None, Some(fields)) => {
                    if fields.0.is_empty() {
                        ctx.error(
                            &doc.span,
                            "`fields` is empty: expected `field: value` pairs",
                        );
                    }
                    for (name, v) in &fields.0 {
                        let f = ctx.template(&name.value, &name.span).map(Arg::Text);
                        let v = value_arg(ctx, v);
                        args.push(f?);
                        args.push(v?);
                    }
                }
                (Some(f), Some(_)) => {
                    ctx.error(
                        &f.span,
                        "`hset` takes `field` with `value`, or `fields`, not both",
                    );
                    return None;
                }
                (None, None) => {
                    ctx.missing(
                        &doc.span,
                        &["field", "fields"],
                        "`hset` needs `field:` with `value:`, or `fields:` (a mapping of fields to values)",
                    );
                    return None;
                }
            }
            let mut all = vec![k?];
            all.extend(args);
            Some((one("HSET", all), format!("HSET {}", written(&d.hset))))
        }
        "incr" => {
            let k = key(ctx, &d.incr)?;
            match &d.by {
                Some(by) => Some((
                    one(
                        "INCRBY",
                        vec![k, Arg::Text(Template::literal(by.value.to_string()))],
                    ),
                    format!("INCRBY {}", written(&d.incr)),
                )),
                None => Some((one("INCR", vec![k]), format!("INCR {}", written(&d.incr)))),
            }
        }
        "expire" => {
            let k = key(ctx, &d.expire);
            let ttl = match &d.ttl {
                Some(t) => ctx.duration(&t.value, &t.span, false),
                None => {
                    ctx.missing(
                        &doc.span,
                        &["ttl"],
                        "`expire` needs `ttl:`, e.g. `ttl: 60s`",
                    );
                    None
                }
            };
            let ttl = ttl?;
            let name = if ttl.subsec_millis() != 0 {
                "PEXPIRE"
            } else {
                "EXPIRE"
            };
            let mut args = vec![k?];
            args.extend(expiry_args(ttl, "", "").into_iter().skip(1));
            Some((one(name, args), format!("{name} {}", written(&d.expire))))
        }
        "command" => {
            let list = d.command.as_ref()?;
            generic(ctx, list).map(|(spec, label)| (Exchange::One(spec), label))
        }
        _ => {
            let items = d.pipeline.as_ref()?;
            if items.value.is_empty() {
                ctx.error(
                    &items.span,
                    "`pipeline` is empty: expected commands, e.g. `- get: \"product:1\"`",
                );
                return None;
            }
            let mut specs = Vec::new();
            let mut names = Vec::new();
            let mut ok = true;
            for item in items.value.iter().filter_map(Lenient::get) {
                match command(ctx, item, true) {
                    Some((Exchange::One(spec), _)) => {
                        names.push(spec.name.clone());
                        specs.push(spec);
                    }
                    _ => ok = false,
                }
            }
            ok.then(|| {
                (
                    Exchange::Pipeline(specs),
                    format!("pipeline {}", names.join(", ")),
                )
            })
        }
    }
}

/// Reports the argument keys that do not go with `kind`.
fn args_fit(ctx: &mut dyn BuildCtx, doc: &Spanned<CommandDoc>, kind: &str) {
    let d = &doc.value;
    let allowed: &[&str] = match kind {
        "set" => &["value", "ttl"],
        "hget" => &["field"],
        "hset" => &["field", "fields", "value"],
        "incr" => &["by"],
        "expire" => &["ttl"],
        _ => &[],
    };
    let given = [
        ("value", d.value.as_ref().map(|v| &v.span)),
        ("ttl", d.ttl.as_ref().map(|v| &v.span)),
        ("field", d.field.as_ref().map(|v| &v.span)),
        ("by", d.by.as_ref().map(|v| &v.span)),
    ];
    for (key, span) in given {
        if let Some(span) = span {
            if !allowed.contains(&key) {
                ctx.error(span, format!("`{key}` does not go with `{kind}`"));
            }
        }
    }
    if d.fields.is_some() && !allowed.contains(&"fields") {
        ctx.error(&doc.span, format!("`fields` does not go with `{kind}`"));
    }
}

/// The arguments of an expiry: `[PX, ms]` or `[EX, s]` (whole seconds).
fn expiry_args(ttl: Duration, ms: &str, s: &str) -> Vec<Arg> {
    let (unit, n) = if ttl.subsec_millis() != 0 {
        (ms, ttl.as_millis() as u64)
    } else {
        (s, ttl.as_secs())
    };
    vec![
        Arg::Text(Template::literal(unit)),
        Arg::Text(Template::literal(n.to_string())),
    ]
}

/// `value:` of a command that needs one.
fn required_value(
    ctx: &mut dyn BuildCtx,
    doc: &Spanned<CommandDoc>,
    value: Option<&Spanned<JsonDoc>>,
    kind: &str,
) -> Option<Arg> {
    match value {
        Some(v) => value_arg(ctx, v),
        None => {
            ctx.missing(
                &doc.span,
                &["value"],
                format!("`{kind}` needs `value:`, e.g. `value: \"{{{{ product }}}}\"`"),
            );
            None
        }
    }
}

/// A value: a string is a template, a number or boolean its text, a mapping
/// or list its JSON text (its strings templates).
fn value_arg(ctx: &mut dyn BuildCtx, v: &Spanned<JsonDoc>) -> Option<Arg> {
    match &v.value {
        JsonDoc::Str(s) => ctx.template(s, &v.span).map(Arg::Text),
        JsonDoc::Null => {
            ctx.error(&v.span, "expected a value to store, found null");
            None
        }
        JsonDoc::Seq(_) | JsonDoc::Map(_) => {
            let plain = plain_value(ctx, v)?;
            ctx.json_template(&plain, &v.span).map(Arg::Json)
        }
        _ => {
            let plain = plain_value(ctx, v)?;
            Some(Arg::Text(Template::literal(plain.to_string())))
        }
    }
}

/// One key or a list of them: the arguments and their label.
fn key_list(ctx: &mut dyn BuildCtx, keys: &Spanned<JsonDoc>) -> Option<(Vec<Arg>, String)> {
    let texts: Vec<(&str, &Span)> = match &keys.value {
        JsonDoc::Str(s) => vec![(s.as_str(), &keys.span)],
        JsonDoc::Seq(items) if !items.is_empty() => {
            let mut out = Vec::new();
            for item in items {
                match &item.value {
                    JsonDoc::Str(s) => out.push((s.as_str(), &item.span)),
                    _ => {
                        ctx.error(&item.span, "expected a key (a string)");
                        return None;
                    }
                }
            }
            out
        }
        _ => {
            ctx.error(&keys.span, "expected a key or a list of keys");
            return None;
        }
    };
    let label = texts.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(" ");
    let args: Option<Vec<Arg>> = texts
        .into_iter()
        .map(|(t, at)| ctx.template(t, at).map(Arg::Text))
        .collect();
    Some((args?, label))
}

/// `command: [NAME, args…]`.
fn generic(
    ctx: &mut dyn BuildCtx,
    list: &Spanned<Vec<Spanned<JsonDoc>>>,
) -> Option<(CommandSpec, String)> {
    let Some((first, rest)) = list.value.split_first() else {
        ctx.error(&list.span, "`command` is empty: expected the command's name and arguments, e.g. `[ZADD, scores, 1, alice]`");
        return None;
    };
    let name = match &first.value {
        JsonDoc::Str(s)
            if !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '|') =>
        {
            s.to_ascii_uppercase()
        }
        _ => {
            ctx.error(
                &first.span,
                "expected the command's name first, e.g. `ZADD`",
            );
            return None;
        }
    };
    let mut label = name.clone();
    let mut args = Vec::new();
    let mut ok = true;
    for arg in rest {
        match &arg.value {
            JsonDoc::Str(s) => {
                label.push(' ');
                label.push_str(s);
                match ctx.template(s, &arg.span) {
                    Some(t) => args.push(Arg::Text(t)),
                    None => ok = false,
                }
            }
            JsonDoc::Seq(_) | JsonDoc::Map(_) | JsonDoc::Null => {
                ctx.error(&arg.span, "an argument is one value: a string or a number");
                ok = false;
            }
            _ => match plain_value(ctx, arg) {
                Some(v) => {
                    let text = v.to_string();
                    label.push(' ');
                    label.push_str(&text);
                    args.push(Arg::Text(Template::literal(text)));
                }
                None => ok = false,
            },
        }
    }
    ok.then_some((CommandSpec { name, args }, label))
}

/// A JSONPath as written, or an error where it was written.
fn json_path(ctx: &mut dyn BuildCtx, text: &str, at: &Span) -> Option<serde_json_path::JsonPath> {
    match serde_json_path::JsonPath::parse(text) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.error(
                at,
                format!("invalid JSONPath `{text}`: {e}; expected e.g. `$.price`"),
            );
            None
        }
    }
}

fn checks(ctx: &mut dyn BuildCtx, doc: &Spanned<CheckDoc>) -> Vec<CheckSpec> {
    let Some(reply) = &doc.value.reply else {
        ctx.missing(
            &doc.span,
            &["reply"],
            "a Redis check is on the reply: `check: { reply: { equals: \"OK\" } }`",
        );
        return Vec::new();
    };
    let path = match &reply.value.path {
        Some(p) => match json_path(ctx, &p.value, &p.span) {
            Some(path) => Some((path, p.value.clone())),
            None => return Vec::new(),
        },
        None => None,
    };
    let Some(tests) = crate::check::read_tests(ctx, &reply.value, &reply.span, "the reply check")
    else {
        return Vec::new();
    };
    let subject = match &path {
        Some((_, text)) => format!("reply {text}"),
        None => "reply".into(),
    };
    let label = crate::check::label(&subject, &tests);
    vec![CheckSpec {
        id: ctx.check(&label),
        path: path.map(|(p, _)| p),
        tests,
    }]
}

fn captures(
    ctx: &mut dyn BuildCtx,
    entries: &Entries<Lenient<Spanned<JsonDoc>>>,
) -> Vec<CaptureSpec> {
    let source = |ctx: &mut dyn BuildCtx,
                  d: &Spanned<JsonDoc>|
     -> Option<(Option<usize>, Option<serde_json_path::JsonPath>)> {
        const EXPECTED: &str =
            "expected `reply` (the whole reply) or `{ index: N, json: \"$.path\" }`";
        match &d.value {
            JsonDoc::Str(s) if s == "reply" => Some((None, None)),
            JsonDoc::Map(entries) if !entries.is_empty() => {
                let mut index = None;
                let mut json = None;
                let mut ok = true;
                for (key, v) in entries {
                    match (key.as_str(), &v.value) {
                        ("index", JsonDoc::Int(i)) if *i >= 0 => index = usize::try_from(*i).ok(),
                        ("index", JsonDoc::UInt(i)) => index = usize::try_from(*i).ok(),
                        ("index", _) => {
                            ctx.error(&v.span, "expected an index from 0");
                            ok = false;
                        }
                        ("json", JsonDoc::Str(p)) => match json_path(ctx, p, &v.span) {
                            Some(p) => json = Some(p),
                            None => ok = false,
                        },
                        ("json", _) => {
                            ctx.error(&v.span, "expected a JSONPath, e.g. `$.price`");
                            ok = false;
                        }
                        (other, _) => {
                            let mut msg = format!("unknown key `{other}` in a capture: {EXPECTED}");
                            if let Some(s) = did_you_mean(other, ["index", "json"]) {
                                msg.push_str(&format!("; did you mean `{s}`?"));
                            }
                            ctx.error(&v.span, msg);
                            ok = false;
                        }
                    }
                }
                ok.then_some((index, json))
            }
            _ => {
                ctx.error(&d.span, EXPECTED);
                None
            }
        }
    };
    crate::capture::read(ctx, entries, source)
        .into_iter()
        .map(|(slot, name, (index, json))| CaptureSpec {
            slot,
            name,
            index,
            json,
        })
        .collect()
}

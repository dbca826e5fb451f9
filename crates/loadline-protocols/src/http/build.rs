//! HTTP steps from their documents: the URL joined to the target, headers over
//! the `defaults:` ones, query, body, checks, captures and polling, every
//! template compiled and every problem reported where it was written.

use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue, Method};
use loadline_core::build::{BuildCtx, Span};
use loadline_core::cache::CacheOutcome;
use loadline_core::plan::{default_group_name, OUTCOME_KIND};
use loadline_core::protocol::{Slot, StepExec};
use loadline_core::template::Template;
use loadline_doc::de::{self as doc_de, Entries, Lenient, Raw, Spanned};
use loadline_doc::value::{json_value, plain_value, JsonDoc, StatusDoc};
use schemars::SchemaGenerator;

use super::cache::CacheRule;
use super::doc::{
    CacheRuleDoc, CaptureDoc, CheckDoc, DefaultsDoc, HttpDoc, HttpStepDoc, PollDoc, QueryDoc,
    RedirectsDoc, UntilDoc,
};
use super::spec::{
    BodySpec, CaptureSource, CaptureSpec, Check, CheckSpec, HttpSettings, HttpStepSpec,
    HttpVersion, PollSpec, Redirects, Until, UrlSpec,
};
use super::{HttpProtocol, VuState};
use crate::check::{label, read_tests};
use crate::registry::{
    ProtocolBuilder, ProtocolEntry, Scenario, Section, StepDocument, StepKind, Target,
};

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_REDIRECTS: i64 = 10;
const MAX_REDIRECTS: i64 = 100;
const MAX_BODY: i64 = 1 << 30;
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(200);
const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(30);
/// The suffix of the metric group that gets a polling step's every request.
pub const REQUESTS_SUFFIX: &str = " (requests)";

const METHODS: [(&str, Method); 6] = [
    ("get", Method::GET),
    ("post", Method::POST),
    ("put", Method::PUT),
    ("patch", Method::PATCH),
    ("delete", Method::DELETE),
    ("head", Method::HEAD),
];

/// HTTP/1.1 requests: steps `get`, `post`, `put`, `patch`, `delete`, `head`, and
/// the `defaults:` section.
#[derive(Debug, Clone, Copy, Default)]
pub struct Http;

impl ProtocolEntry for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn docs(&self) -> Option<&'static str> {
        Some("docs/scenario-format.md")
    }

    fn steps(&self, generator: &mut SchemaGenerator) -> Vec<StepDocument> {
        vec![StepDocument {
            kinds: METHODS
                .iter()
                .map(|(key, _)| StepKind {
                    key,
                    described: "an HTTP request step",
                })
                .collect(),
            schema: generator.subschema_for::<HttpStepDoc>(),
        }]
    }

    fn sections(&self, generator: &mut SchemaGenerator) -> Vec<Section> {
        vec![
            Section {
                key: "defaults",
                description: "Settings for every HTTP step.",
                schema: generator.subschema_for::<DefaultsDoc>(),
            },
            Section {
                key: "http",
                description: "The HTTP version of every HTTP step (`version: 2`), and how many VUs share an HTTP/2 connection.",
                schema: generator.subschema_for::<HttpDoc>(),
            },
        ]
    }

    fn begin(&self, scenario: &Scenario, ctx: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder> {
        let doc = scenario
            .section("defaults")
            .and_then(|raw| doc_de::read::<DefaultsDoc>(raw, ctx));
        let mut defaults = read_defaults(ctx, scenario.target.clone(), doc.as_ref());
        if let Some(http) = scenario
            .section("http")
            .and_then(|raw| doc_de::read::<HttpDoc>(raw, ctx))
        {
            if let Some(v) = &http.version {
                if let Some(v) = read_version(ctx, v) {
                    defaults.settings.version = v;
                }
            }
            if let Some(m) = &http.max_streams {
                if let Some(n) = ctx.int_in(m.value, &m.span, 1, 1000) {
                    defaults.settings.max_streams = n as usize;
                }
            }
        }
        // The command line's --insecure wins over `defaults: { insecure }`.
        defaults.settings.insecure |= scenario.insecure;
        defaults.settings.dump = scenario.dump;
        Box::new(HttpBuilder {
            defaults,
            slot: None,
        })
    }
}

/// What every HTTP step starts from.
struct HttpDefaults {
    target: Target,
    headers: Vec<(HeaderName, Template)>,
    timeout: Duration,
    follow_redirects: bool,
    max_redirects: u32,
    settings: HttpSettings,
}

/// One scenario's HTTP steps; the protocol joins the plan with the first one.
struct HttpBuilder {
    defaults: HttpDefaults,
    slot: Option<Slot<VuState>>,
}

impl ProtocolBuilder for HttpBuilder {
    fn step(
        &mut self,
        kind: &str,
        step: &Raw,
        ctx: &mut dyn BuildCtx,
    ) -> Option<Arc<dyn StepExec>> {
        let slot = *self.slot.get_or_insert_with(|| {
            ctx.add_typed_protocol(HttpProtocol::new(self.defaults.settings.clone()))
        });
        let doc = doc_de::read::<HttpStepDoc>(step, ctx)?;
        let (_, method) = METHODS.iter().find(|(k, _)| *k == kind)?;
        let url = [
            &doc.get,
            &doc.post,
            &doc.put,
            &doc.patch,
            &doc.delete,
            &doc.head,
        ]
        .into_iter()
        .zip(METHODS.iter())
        .find(|(_, (k, _))| *k == kind)
        .and_then(|(url, _)| url.as_ref());
        let Some(url) = url else {
            ctx.error(
                &step.span(),
                format!(
                    "`{kind}` needs a URL: a path starting with / or an absolute http(s) URL, e.g. `{kind}: /health`"
                ),
            );
            return None;
        };
        let spec = http_step(ctx, slot, method.clone(), url, &doc, &self.defaults)?;
        Some(super::build_step(spec))
    }
}

/// `1.1`, `2` or `auto` (numbers or strings).
fn read_version(ctx: &mut dyn BuildCtx, doc: &Spanned<JsonDoc>) -> Option<HttpVersion> {
    let v = match &doc.value {
        JsonDoc::Int(2) | JsonDoc::UInt(2) => HttpVersion::Http2,
        JsonDoc::Float(f) if (*f - 1.1).abs() < 1e-9 => HttpVersion::Http1,
        JsonDoc::Float(f) if (*f - 2.0).abs() < 1e-9 => HttpVersion::Http2,
        JsonDoc::Str(s) => match s.trim() {
            "1.1" => HttpVersion::Http1,
            "2" | "2.0" | "h2" => HttpVersion::Http2,
            "auto" => HttpVersion::Auto,
            _ => {
                ctx.error(
                    &doc.span,
                    format!("unknown HTTP version `{s}`: expected 1.1, 2 or auto"),
                );
                return None;
            }
        },
        _ => {
            ctx.error(&doc.span, "expected an HTTP version: 1.1, 2 or auto");
            return None;
        }
    };
    Some(v)
}

fn read_defaults(
    ctx: &mut dyn BuildCtx,
    target: Target,
    doc: Option<&DefaultsDoc>,
) -> HttpDefaults {
    let mut defaults = HttpDefaults {
        target,
        headers: Vec::new(),
        timeout: DEFAULT_TIMEOUT,
        follow_redirects: true,
        max_redirects: DEFAULT_MAX_REDIRECTS as u32,
        settings: HttpSettings::default(),
    };
    let Some(doc) = doc else {
        return defaults;
    };
    if let Some(headers) = &doc.headers {
        defaults.headers = read_headers(ctx, Vec::new(), headers, true);
    }
    if let Some(t) = &doc.timeout {
        defaults.timeout = ctx
            .duration(&t.value, &t.span, false)
            .unwrap_or(DEFAULT_TIMEOUT);
    }
    defaults.follow_redirects = doc.follow_redirects.unwrap_or(true);
    if let Some(m) = &doc.max_redirects {
        defaults.max_redirects = ctx.int_in(m.value, &m.span, 0, MAX_REDIRECTS).unwrap_or(0) as u32;
    }
    if let Some(r) = &doc.redirects {
        defaults.settings.redirects = match r.value {
            RedirectsDoc::SameHost => Redirects::SameHost,
            RedirectsDoc::Any => Redirects::Any,
        };
    }
    if let Some(names) = &doc.forward_headers {
        for name in names {
            match HeaderName::from_bytes(name.value.trim().as_bytes()) {
                Ok(h) => defaults.settings.forward_headers.push(h),
                Err(_) => ctx.error(
                    &name.span,
                    format!("`{}` is not a valid header name", name.value),
                ),
            }
        }
        if defaults.settings.redirects == Redirects::SameHost {
            if let Some(first) = names.first() {
                ctx.warn(
                    &first.span,
                    "`forward_headers` only matters with `redirects: any`: with `same_host` (the default) no redirect leaves the host",
                );
            }
        }
    }
    if let Some(rule) = &doc.cache {
        defaults.settings.cache_rule = read_cache_rule(ctx, rule).map(Arc::new);
    }
    defaults.settings.insecure = doc.insecure.unwrap_or(false);
    defaults.settings.cookies = doc.cookies.unwrap_or(true);
    if let Some(m) = &doc.max_body {
        if let Some(bytes) = ctx.int_in(m.value, &m.span, 0, MAX_BODY) {
            defaults.settings.max_body = bytes as usize;
        }
    }
    defaults
}

/// `defaults: cache:`: the header and the patterns, each compiled
/// case-insensitively.
fn read_cache_rule(ctx: &mut dyn BuildCtx, doc: &Spanned<CacheRuleDoc>) -> Option<CacheRule> {
    let rule = &doc.value;
    let header = rule.header.value.trim().to_ascii_lowercase();
    if HeaderName::from_bytes(header.as_bytes()).is_err() {
        ctx.error(
            &rule.header.span,
            format!("`{}` is not a valid header name", rule.header.value),
        );
        return None;
    }
    let mut patterns = Vec::new();
    let before = ctx.error_count();
    for (outcome, list) in [
        (CacheOutcome::Hit, &rule.hit),
        (CacheOutcome::Miss, &rule.miss),
        (CacheOutcome::Stale, &rule.stale),
        (CacheOutcome::Bypass, &rule.bypass),
    ] {
        for p in list {
            match regex::RegexBuilder::new(&p.value)
                .case_insensitive(true)
                .build()
            {
                Ok(re) => patterns.push((outcome, re)),
                Err(e) => ctx.error(
                    &p.span,
                    format!("`{}` is not a valid pattern: {e}", p.value),
                ),
            }
        }
    }
    if patterns.is_empty() && ctx.error_count() == before {
        ctx.error(
            &doc.span,
            "a cache rule needs patterns: at least one of `hit`, `miss`, `stale` or `bypass`, e.g. `hit: [\"^HIT\"]`",
        );
    }
    (ctx.error_count() == before).then_some(CacheRule { header, patterns })
}

fn http_step(
    ctx: &mut dyn BuildCtx,
    slot: Slot<VuState>,
    method: Method,
    url: &Spanned<String>,
    doc: &HttpStepDoc,
    defaults: &HttpDefaults,
) -> Option<HttpStepSpec> {
    let before = ctx.error_count();
    let url_spec = read_url(ctx, url, defaults);
    let group_name = match &doc.name {
        Some(n) => n.value.clone(),
        None => default_group_name(method.as_str(), &url.value),
    };
    let name_span = doc.name.as_ref().map_or(&url.span, |n| &n.span).clone();
    let (group, poll) = match read_poll(ctx, doc) {
        None => (ctx.group(group_name, "http", &name_span), None),
        // A polling step: its name measures the outcome, its requests go to
        // a group of their own.
        Some(pace) => {
            let outcome = ctx.group(group_name.clone(), OUTCOME_KIND, &name_span);
            let requests = ctx.group(format!("{group_name}{REQUESTS_SUFFIX}"), "http", &name_span);
            let poll = match (pace, outcome) {
                (Some((until, interval, timeout)), Some(outcome_group)) => Some(PollSpec {
                    until,
                    interval,
                    timeout,
                    outcome_group,
                }),
                _ => None,
            };
            (requests, poll)
        }
    };
    let query = match doc.query.as_ref() {
        None => Vec::new(),
        Some(Spanned {
            value: QueryDoc::Params(q),
            ..
        }) => read_pairs(ctx, q),
        Some(q) => {
            ctx.error(
                &q.span,
                "the `query` of an HTTP step is a mapping of query parameters, e.g. `query: { page: 2 }` (query text belongs to database steps)",
            );
            Vec::new()
        }
    };
    let headers = match &doc.headers {
        Some(h) => read_headers(ctx, defaults.headers.clone(), h, false),
        None => defaults.headers.clone(),
    };
    let body = read_body(ctx, doc);
    let checks = doc
        .check
        .as_ref()
        .map(|c| read_checks(ctx, c))
        .unwrap_or_default();
    let timeout = match &doc.timeout {
        Some(t) => ctx.duration(&t.value, &t.span, false),
        None => Some(defaults.timeout),
    };
    let follow = doc.follow_redirects.unwrap_or(defaults.follow_redirects);
    let mut version = Some(defaults.settings.version);
    if let Some(http) = &doc.http {
        if let Some(m) = &http.value.max_streams {
            ctx.error(
                &m.span,
                "`max_streams` is set for the whole scenario, in the top-level `http:` section",
            );
        }
        if let Some(v) = &http.value.version {
            version = read_version(ctx, v);
        }
    }
    // Captures become known to the steps after this one, even when this one
    // has errors, so that one mistake does not cascade.
    let captures = doc
        .capture
        .as_ref()
        .map(|c| read_captures(ctx, c))
        .unwrap_or_default();
    if ctx.error_count() > before {
        return None;
    }
    Some(HttpStepSpec {
        slot,
        group: group?,
        method,
        url: url_spec?,
        query,
        headers,
        body: body?,
        timeout: timeout?,
        checks,
        captures,
        max_redirects: if follow { defaults.max_redirects } else { 0 },
        version: version?,
        poll,
    })
}

/// A polling step's condition, interval and timeout: `None` when the step does
/// not poll, `Some(None)` when it does but something is wrong (reported).
#[allow(clippy::type_complexity)]
fn read_poll(
    ctx: &mut dyn BuildCtx,
    doc: &HttpStepDoc,
) -> Option<Option<(Until, Duration, Duration)>> {
    let Some(until) = &doc.until else {
        if let Some(p) = &doc.poll {
            ctx.error(
                &p.span,
                "`poll` goes with `until`: add the condition to wait for, e.g. `until: { json: \"$.state\", equals: confirmed }`",
            );
        }
        return None;
    };
    let condition = read_until(ctx, until);
    let pace = doc.poll.as_ref().map(|p| read_pace(ctx, p));
    let (interval, timeout) = match pace {
        None => (Some(DEFAULT_POLL_INTERVAL), Some(DEFAULT_POLL_TIMEOUT)),
        Some(pace) => pace,
    };
    Some(
        condition
            .zip(interval)
            .zip(timeout)
            .map(|((c, i), t)| (c, i, t)),
    )
}

fn read_pace(
    ctx: &mut dyn BuildCtx,
    doc: &Spanned<PollDoc>,
) -> (Option<Duration>, Option<Duration>) {
    let interval = match &doc.value.interval {
        Some(i) => ctx.duration(&i.value, &i.span, false),
        None => Some(DEFAULT_POLL_INTERVAL),
    };
    let timeout = match &doc.value.timeout {
        Some(t) => ctx.duration(&t.value, &t.span, false),
        None => Some(DEFAULT_POLL_TIMEOUT),
    };
    if let (Some(i), Some(t)) = (interval, timeout) {
        if t <= i {
            ctx.warn(
                &doc.span,
                "the poll `timeout` is not longer than its `interval`: the step sends one request and gives up",
            );
        }
    }
    (interval, timeout)
}

fn read_until(ctx: &mut dyn BuildCtx, doc: &Spanned<UntilDoc>) -> Option<Until> {
    let d = &doc.value;
    let mut given: Vec<(&str, &loadline_core::build::Span)> = [
        ("status", d.status.as_ref().map(|s| &s.span)),
        ("body_contains", d.body_contains.as_ref().map(|s| &s.span)),
        ("json", d.json.as_ref().map(|s| &s.span)),
    ]
    .into_iter()
    .filter_map(|(k, s)| s.map(|s| (k, s)))
    .collect();
    given.sort_by_key(|(_, s)| s.mark);
    match given.as_slice() {
        [] => {
            ctx.missing(
                &doc.span,
                &["status", "body_contains", "json"],
                "`until` needs a condition: `status: 200`, `body_contains: \"text\"` or `json: \"$.path\"` (with `equals: VALUE`)",
            );
            return None;
        }
        [first, second, ..] => {
            ctx.error(
                second.1,
                format!(
                    "`until` waits for one condition: found both `{}` and `{}`",
                    first.0, second.0
                ),
            );
            return None;
        }
        [_] => {}
    }
    if let (Some(e), None) = (&d.equals, &d.json) {
        ctx.error(
            &e.span,
            "`equals` goes with `json`: the value a JSONPath must have",
        );
        return None;
    }
    if let Some(status) = &d.status {
        return read_status_codes(ctx, status).map(Until::Status);
    }
    if let Some(text) = &d.body_contains {
        return Some(Until::BodyContains(text.value.clone()));
    }
    let path = d.json.as_ref()?;
    let parsed = json_path(ctx, path);
    let equals = match &d.equals {
        Some(e) => Some(plain_value(ctx, e)?),
        None => None,
    };
    Some(Until::Json {
        path: parsed?,
        equals,
    })
}

/// Status codes from 100 to 599, at least one.
fn read_status_codes(ctx: &mut dyn BuildCtx, status: &Spanned<StatusDoc>) -> Option<Vec<u16>> {
    let codes = status.value.codes();
    if codes.is_empty() {
        ctx.error(&status.span, "expected at least one status code");
        return None;
    }
    match codes.iter().find(|c| !(100..=599).contains(*c)) {
        Some(bad) => {
            ctx.error(
                &status.span,
                format!("expected HTTP status codes from 100 to 599, found {bad}"),
            );
            None
        }
        None => Some(codes.iter().map(|c| *c as u16).collect()),
    }
}

fn read_url(
    ctx: &mut dyn BuildCtx,
    url: &Spanned<String>,
    defaults: &HttpDefaults,
) -> Option<UrlSpec> {
    let text = url.value.as_str();
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if text.starts_with('/') {
        let path = ctx.template(text, &url.span);
        match &defaults.target {
            Target::Base(base) => Some(UrlSpec::Relative {
                base: base.clone(),
                path: path?,
            }),
            Target::Invalid => None,
            Target::Missing => {
                ctx.error(
                    &url.span,
                    format!(
                        "`{text}` is a path but the scenario has no `target:`: add e.g. `target: http://127.0.0.1:8080` at the top, or write an absolute URL"
                    ),
                );
                None
            }
        }
    } else if lower.starts_with("http://") || lower.starts_with("https://") {
        let t = ctx.template(text, &url.span)?;
        if let Some(fixed) = t.static_text() {
            if let Err(e) = url::Url::parse(fixed) {
                ctx.error(&url.span, format!("invalid URL `{fixed}`: {e}"));
                return None;
            }
        }
        Some(UrlSpec::Absolute(t))
    } else {
        ctx.error(
            &url.span,
            format!("expected a path starting with / or an absolute http(s) URL, found `{text}`"),
        );
        None
    }
}

fn read_pairs(
    ctx: &mut dyn BuildCtx,
    entries: &Entries<Spanned<String>>,
) -> Vec<(String, Template)> {
    entries
        .0
        .iter()
        .filter_map(|(k, v)| {
            let t = ctx.template(&v.value, &v.span)?;
            Some((k.value.clone(), t))
        })
        .collect()
}

/// Merges `entries` over `base`; a header named again (in any case) replaces
/// the earlier one.
fn read_headers(
    ctx: &mut dyn BuildCtx,
    mut base: Vec<(HeaderName, Template)>,
    entries: &Entries<Spanned<String>>,
    fixed: bool,
) -> Vec<(HeaderName, Template)> {
    for (k, v) in &entries.0 {
        let name = match HeaderName::from_bytes(k.value.as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => {
                ctx.error(
                    &k.span,
                    format!(
                        "invalid header name `{}`: expected letters, digits and `-`, such as `x-request-id`",
                        k.value
                    ),
                );
                None
            }
        };
        let value = if fixed {
            ctx.fixed_template(&v.value, &v.span)
        } else {
            ctx.template(&v.value, &v.span)
        };
        if let Some(fixed) = value.as_ref().and_then(Template::static_text) {
            if HeaderValue::from_str(fixed).is_err() {
                ctx.error(
                    &v.span,
                    "invalid header value: expected visible text without line breaks",
                );
            }
        }
        if let (Some(name), Some(value)) = (name, value) {
            match base.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = value,
                None => base.push((name, value)),
            }
        }
    }
    base
}

fn read_body(ctx: &mut dyn BuildCtx, doc: &HttpStepDoc) -> Option<BodySpec> {
    let mut given: Vec<(&str, &loadline_core::build::Span)> = Vec::new();
    if let Some(j) = &doc.json {
        given.push(("json", &j.span));
    }
    if let Some(b) = &doc.body {
        given.push(("body", &b.span));
    }
    if let Some(f) = &doc.form {
        given.push(("form", &f.span));
    }
    given.sort_by_key(|(_, s)| s.mark);
    if let [first, second, ..] = given.as_slice() {
        ctx.error(
            second.1,
            format!(
                "a request has one body: found both `{}` and `{}`; keep one of json, body and form",
                first.0, second.0
            ),
        );
        return None;
    }
    if let Some(j) = &doc.json {
        let before = ctx.error_count();
        let value = json_value(ctx, j);
        if ctx.error_count() > before {
            return None;
        }
        return ctx.json_template(&value, &j.span).map(BodySpec::Json);
    }
    if let Some(b) = &doc.body {
        return ctx.template(&b.value, &b.span).map(BodySpec::Raw);
    }
    if let Some(f) = &doc.form {
        let before = ctx.error_count();
        let pairs = read_pairs(ctx, &f.value);
        return (ctx.error_count() == before).then_some(BodySpec::Form(pairs));
    }
    Some(BodySpec::None)
}

fn read_checks(ctx: &mut dyn BuildCtx, doc: &CheckDoc) -> Vec<CheckSpec> {
    let mut checks = Vec::new();
    let mut add = |ctx: &mut dyn BuildCtx, label: String, check: Check| {
        checks.push(CheckSpec {
            id: ctx.check(&label),
            check,
        });
    };
    if let Some(status) = &doc.status {
        if let Some(codes) = read_status_codes(ctx, status) {
            let label = match codes.as_slice() {
                [one] => format!("status {one}"),
                many => format!(
                    "status one of [{}]",
                    many.iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            add(ctx, label, Check::Status(codes));
        }
    }
    if let Some(text) = &doc.body_contains {
        add(
            ctx,
            format!("body contains {:?}", text.value),
            Check::BodyContains(text.value.clone()),
        );
    }
    if let Some(h) = &doc.header {
        if let Some(name) = header_name(ctx, &h.value, &h.span) {
            add(
                ctx,
                format!("header {name} exists"),
                Check::Header {
                    name,
                    tests: Vec::new(),
                },
            );
        }
    }
    for (name, test) in doc.headers.iter().flat_map(|h| &h.0) {
        let Some(header) = header_name(ctx, &name.value, &name.span) else {
            continue;
        };
        if test.value.path.is_some() {
            ctx.error(
                &test.span,
                "a header check has no `path`: the header's value is what is tested",
            );
            continue;
        }
        let what = format!("the check of header `{header}`");
        if let Some(tests) = read_tests(ctx, &test.value, &test.span, &what) {
            add(
                ctx,
                label(&format!("header {header}"), &tests),
                Check::Header {
                    name: header,
                    tests,
                },
            );
        }
    }
    for test in doc.json.iter().flatten() {
        let Some(path) = &test.value.path else {
            ctx.missing(
                &test.span,
                &["path"],
                "a JSON check needs the `path` of the value it tests, e.g. `{ path: $.state, equals: confirmed }`",
            );
            continue;
        };
        let parsed = json_path(ctx, path);
        let tests = read_tests(ctx, &test.value, &test.span, "a JSON check");
        if let (Some(parsed), Some(tests)) = (parsed, tests) {
            add(
                ctx,
                label(&format!("json {}", path.value), &tests),
                Check::Json {
                    path: parsed,
                    tests,
                },
            );
        }
    }
    if let Some(bound) = &doc.latency_below {
        if let Some(d) = ctx.duration(&bound.value, &bound.span, false) {
            add(
                ctx,
                format!("latency < {}", bound.value.trim()),
                Check::LatencyBelow(d),
            );
        }
    }
    checks
}

/// A JSONPath as written (`$.items[0].id`), or an error where it was written.
fn json_path(ctx: &mut dyn BuildCtx, path: &Spanned<String>) -> Option<serde_json_path::JsonPath> {
    match serde_json_path::JsonPath::parse(&path.value) {
        Ok(p) => Some(p),
        Err(e) => {
            ctx.error(
                &path.span,
                format!(
                    "invalid JSONPath `{}`: {e}; expected e.g. `$.items[0].id`",
                    path.value
                ),
            );
            None
        }
    }
}

fn header_name(ctx: &mut dyn BuildCtx, name: &str, at: &Span) -> Option<HeaderName> {
    match HeaderName::from_bytes(name.as_bytes()) {
        Ok(h) => Some(h),
        Err(_) => {
            ctx.error(
                at,
                format!("invalid header name `{name}`: expected letters, digits and `-`"),
            );
            None
        }
    }
}

fn read_captures(
    ctx: &mut dyn BuildCtx,
    entries: &Entries<Lenient<Spanned<CaptureDoc>>>,
) -> Vec<CaptureSpec> {
    crate::capture::read(ctx, entries, read_capture_source)
        .into_iter()
        .map(|(slot, name, source)| CaptureSpec { slot, name, source })
        .collect()
}

fn read_capture_source(ctx: &mut dyn BuildCtx, doc: &Spanned<CaptureDoc>) -> Option<CaptureSource> {
    let d = &doc.value;
    let mut sources: Vec<(&str, &loadline_core::build::Span)> = [
        ("json", &d.json),
        ("regex", &d.regex),
        ("header", &d.header),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, &v.span)))
    .collect();
    sources.sort_by_key(|(_, s)| s.mark);
    match sources.as_slice() {
        [] => {
            ctx.missing(
                &doc.span,
                &["json", "regex", "header"],
                "a capture needs one of `json: <JSONPath>`, `regex: <pattern>` or `header: <name>`",
            );
            return None;
        }
        [first, second, ..] => {
            ctx.error(
                second.1,
                format!(
                    "a capture has one source: found both `{}` and `{}`",
                    first.0, second.0
                ),
            );
            return None;
        }
        [_] => {}
    }
    if let (Some(g), None) = (&d.group, &d.regex) {
        ctx.error(&g.span, "`group` goes with `regex`");
        return None;
    }
    if let Some(path) = &d.json {
        return json_path(ctx, path).map(CaptureSource::Json);
    }
    if let Some(pattern) = &d.regex {
        let re = match regex::Regex::new(&pattern.value) {
            Ok(re) => re,
            Err(e) => {
                // The syntax error's text draws a caret over several lines;
                // its last line says what is wrong.
                let text = e.to_string();
                let what = text.lines().last().unwrap_or_default();
                let what = what.trim().trim_start_matches("error: ");
                ctx.error(
                    &pattern.span,
                    format!("invalid regex `{}`: {what}", pattern.value),
                );
                return None;
            }
        };
        let groups = re.captures_len();
        let group = match &d.group {
            None => usize::from(groups > 1),
            Some(g) => {
                let max = groups as i64 - 1;
                usize::try_from(ctx.int_in(g.value, &g.span, 0, max)?).ok()?
            }
        };
        return Some(CaptureSource::Regex { re, group });
    }
    let name = d.header.as_ref()?;
    match HeaderName::from_bytes(name.value.as_bytes()) {
        Ok(h) => Some(CaptureSource::Header(h)),
        Err(_) => {
            ctx.error(
                &name.span,
                format!(
                    "invalid header name `{}`: expected letters, digits and `-`",
                    name.value
                ),
            );
            None
        }
    }
}

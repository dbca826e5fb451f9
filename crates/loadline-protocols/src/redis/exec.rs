//! The executors: a command or a pipeline ([`CommandStep`]) and a cache-aside
//! read ([`CacheAsideStep`]).
//!
//! A step renders its keys and values, gets the VU's connection, sends, waits
//! for the reply within its timeout, and records one sample (a pipeline too).
//! Then its checks and captures read the reply. A failure ends the iteration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadline_core::cache::CacheOutcome;
use loadline_core::executor::run_steps;
use loadline_core::metrics::{CheckId, GroupId, MetricsHub, RequestSample};
use loadline_core::plan::Step;
use loadline_core::protocol::{BoxFuture, Slot, StepExec, StepOutcome};
use loadline_core::template::{JsonTemplate, Template, Vars};
use loadline_core::vu::Vu;
use redis::{Cmd, Pipeline, Value as Reply};
use serde_json::Value;
use serde_json_path::JsonPath;

use super::errors::ErrorKind;
use super::{Server, VuState};
use crate::check::{describe_actual, ValueTest};

/// An argument of a command.
#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// A template (a key, a field, a value).
    Text(Template),
    /// A mapping or list value, sent as its JSON text.
    Json(JsonTemplate),
}

impl Arg {
    fn render(&self, vars: &mut Vars, out: &mut String) {
        out.clear();
        match self {
            Arg::Text(t) => t.render_into(vars, out),
            Arg::Json(t) => t.render_into(vars, out),
        }
    }
}

/// One command: its name (upper case) and arguments.
#[derive(Debug, Clone)]
pub(crate) struct CommandSpec {
    pub(crate) name: String,
    pub(crate) args: Vec<Arg>,
}

impl CommandSpec {
    /// The command ready to send, and the bytes of its arguments.
    fn render(&self, vars: &mut Vars, text: &mut String) -> (Cmd, u64) {
        let mut cmd = redis::cmd(&self.name);
        let mut bytes = self.name.len() as u64;
        for arg in &self.args {
            arg.render(vars, text);
            bytes += text.len() as u64;
            cmd.arg(text.as_bytes());
        }
        (cmd, bytes)
    }
}

/// A value a capture takes from the reply.
#[derive(Debug, Clone)]
pub(crate) struct CaptureSpec {
    pub(crate) slot: usize,
    pub(crate) name: String,
    /// The item of a list reply.
    pub(crate) index: Option<usize>,
    /// A JSONPath into the reply (its JSON text when it is a string).
    pub(crate) json: Option<JsonPath>,
}

/// A check on the reply.
#[derive(Debug, Clone)]
pub(crate) struct CheckSpec {
    pub(crate) id: CheckId,
    pub(crate) path: Option<JsonPath>,
    pub(crate) tests: Vec<ValueTest>,
}

/// What a command step sends.
#[derive(Debug, Clone)]
pub(crate) enum Exchange {
    One(CommandSpec),
    Pipeline(Vec<CommandSpec>),
}

/// A `redis:` step, everything static prepared.
#[derive(Debug)]
pub(crate) struct CommandStep {
    pub(crate) slot: Slot<VuState>,
    pub(crate) server: Arc<Server>,
    pub(crate) group: GroupId,
    pub(crate) exchange: Exchange,
    pub(crate) timeout: Duration,
    pub(crate) captures: Vec<CaptureSpec>,
    pub(crate) checks: Vec<CheckSpec>,
    /// Whether a failure of this step was logged already (only the first is).
    pub(crate) logged: AtomicBool,
}

/// A `cache_aside:` step.
#[derive(Debug)]
pub(crate) struct CacheAsideStep {
    pub(crate) slot: Slot<VuState>,
    pub(crate) server: Arc<Server>,
    /// The lookup as its caller waits for it (an outcome group): a hit's GET,
    /// or a miss's GET, origin steps and SET; it carries the hit or the miss.
    pub(crate) group: GroupId,
    /// The GET's group.
    pub(crate) get_group: GroupId,
    /// The SET's group.
    pub(crate) set_group: GroupId,
    pub(crate) key: Template,
    pub(crate) value: Arg,
    /// SET's expiry, when it has one.
    pub(crate) ttl: Option<Duration>,
    pub(crate) on_miss: Vec<Step>,
    /// Where the value (from the cache or fresh) is captured.
    pub(crate) capture: Option<usize>,
    pub(crate) timeout: Duration,
    pub(crate) logged: AtomicBool,
}

/// What came of one exchange.
struct Outcome {
    reply: Result<Reply, (ErrorKind, String)>,
    latency: Duration,
    sent: u64,
}

/// Sends `what` on the VU's connection to `server` (opening it when needed),
/// within `timeout`. `Err` when no connection could be had: nothing was sent.
async fn exchange(
    server: &Server,
    slot: &mut Option<super::conn::Held>,
    hub: &MetricsHub,
    group: GroupId,
    what: Sending,
    timeout: Duration,
) -> Result<Outcome, (ErrorKind, String)> {
    let held = server.connection(slot).await?;
    let start = Instant::now();
    let in_flight = hub.in_flight(group, start, what.bytes());
    let sent = what.bytes();
    let replied = match &what {
        Sending::One(cmd, _) => tokio::time::timeout(timeout, held.conn.send(cmd)).await,
        Sending::Pipeline(pipe, count, _) => {
            tokio::time::timeout(timeout, held.conn.send_pipeline(pipe, *count))
                .await
                .map(|r| r.map(Reply::Array))
        }
    };
    in_flight.done();
    let latency = start.elapsed();
    let reply = match replied {
        Err(_) => Err((ErrorKind::Timeout, format!("no reply within {timeout:?}"))),
        Ok(Err(e)) => Err((ErrorKind::of_error(&e), e.to_string())),
        Ok(Ok(reply)) => match first_error(&reply) {
            Some(e) => Err(e),
            None => Ok(reply),
        },
    };
    if let Err((kind, _)) = &reply {
        if kind.breaks_connection() {
            server.broken(slot).await;
        }
    }
    Ok(Outcome {
        reply,
        latency,
        sent,
    })
}

/// A command or a pipeline, rendered.
enum Sending {
    One(Cmd, u64),
    Pipeline(Pipeline, usize, u64),
}

impl Sending {
    fn bytes(&self) -> u64 {
        match self {
            Sending::One(_, b) | Sending::Pipeline(_, _, b) => *b,
        }
    }
}

/// The first error reply in a reply (a pipeline's replies included).
fn first_error(reply: &Reply) -> Option<(ErrorKind, String)> {
    match reply {
        Reply::ServerError(e) => Some((
            ErrorKind::of_code(e.code()),
            match e.details() {
                Some(d) => format!("{} {d}", e.code()),
                None => e.code().to_owned(),
            },
        )),
        Reply::Array(items) => items.iter().find_map(first_error),
        _ => None,
    }
}

/// The payload bytes of a reply: its strings and numbers.
fn reply_bytes(reply: &Reply) -> u64 {
    match reply {
        Reply::BulkString(b) => b.len() as u64,
        Reply::SimpleString(s) => s.len() as u64,
        Reply::Okay => 2,
        Reply::Int(_) | Reply::Double(_) | Reply::Boolean(_) => 8,
        Reply::Array(items) | Reply::Set(items) => items.iter().map(reply_bytes).sum(),
        Reply::Map(pairs) => pairs
            .iter()
            .map(|(k, v)| reply_bytes(k) + reply_bytes(v))
            .sum(),
        Reply::VerbatimString { text, .. } => text.len() as u64,
        _ => 0,
    }
}

/// A reply as JSON (see the module's documentation of [`super`]).
pub(crate) fn reply_json(reply: &Reply) -> Value {
    match reply {
        Reply::Nil => Value::Null,
        Reply::Int(i) => Value::from(*i),
        Reply::BulkString(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        Reply::SimpleString(s) => Value::String(s.clone()),
        Reply::Okay => Value::String("OK".into()),
        Reply::Array(items) | Reply::Set(items) => {
            Value::Array(items.iter().map(reply_json).collect())
        }
        Reply::Map(pairs) => Value::Object(
            pairs
                .iter()
                .map(|(k, v)| {
                    let key = match reply_json(k) {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    (key, reply_json(v))
                })
                .collect(),
        ),
        Reply::Attribute { data, .. } => reply_json(data),
        Reply::Double(d) => serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number),
        Reply::Boolean(b) => Value::Bool(*b),
        Reply::VerbatimString { text, .. } => Value::String(text.clone()),
        Reply::BigNumber(n) => Value::String(n.to_string()),
        Reply::Push { data, .. } => Value::Array(data.iter().map(reply_json).collect()),
        Reply::ServerError(e) => Value::String(e.code().to_owned()),
    }
}

/// The value at `path` in `value`, reading a string as JSON text.
fn at_path(value: &Value, path: &JsonPath) -> Option<Value> {
    let parsed;
    let doc = match value {
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            &parsed
        }
        other => other,
    };
    path.query(doc).first().cloned()
}

/// The value a capture takes from a reply; `None` when there is none.
fn captured(reply: &Value, spec: &CaptureSpec) -> Option<Value> {
    let item = match spec.index {
        Some(i) => reply.as_array()?.get(i)?,
        None => reply,
    };
    match &spec.json {
        Some(path) => at_path(item, path),
        None => Some(item.clone()),
    }
}

/// A cached value as captured: the JSON value of an object's or a list's text,
/// else the text.
fn cached_value(text: &str) -> Value {
    let t = text.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<Value>(text) {
            return v;
        }
    }
    Value::String(text.to_owned())
}

fn sample(group: GroupId, outcome: &Outcome, cache: CacheOutcome) -> RequestSample {
    let (failed, received) = match &outcome.reply {
        Ok(reply) => (false, reply_bytes(reply)),
        Err(_) => (true, 0),
    };
    RequestSample {
        group,
        latency: outcome.latency,
        status: None,
        failed,
        // A failure's class is filled by the caller, which knows the plan's.
        error: None,
        bytes_sent: outcome.sent,
        bytes_received: received,
        cache,
    }
}

/// Logs the first failure of a step; later ones are only counted.
fn log_once(logged: &AtomicBool, server: &Server, kind: ErrorKind, message: &str) {
    if !logged.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            server = %server.name,
            kind = kind.as_str(),
            error = %message,
            "Redis command failed (later failures of this step are counted, not logged)"
        );
    }
}

/// Records the sample of `outcome`; `Err` with the failure's kind when it
/// failed.
fn record(
    hub: &MetricsHub,
    server: &Server,
    logged: &AtomicBool,
    group: GroupId,
    outcome: &Outcome,
    cache: CacheOutcome,
) -> Result<(), ErrorKind> {
    let mut s = sample(group, outcome, cache);
    match &outcome.reply {
        Ok(_) => {
            hub.record_request(&s);
            Ok(())
        }
        Err((kind, message)) => {
            s.error = Some(server.metrics.class(*kind));
            s.cache = CacheOutcome::None;
            hub.record_request(&s);
            log_once(logged, server, *kind, message);
            Err(*kind)
        }
    }
}

/// Records a command that could not be sent (no connection).
fn unsent(
    hub: &MetricsHub,
    server: &Server,
    logged: &AtomicBool,
    group: GroupId,
    (kind, message): (ErrorKind, String),
) {
    hub.record_request(&RequestSample::unsent(group, server.metrics.class(kind)));
    log_once(logged, server, kind, &message);
}

impl CommandStep {
    async fn execute(&self, vu: &mut Vu) -> StepOutcome {
        let group = self.group;
        let Some((vars, state, hub)) = vu.parts_for(self.slot, group) else {
            return StepOutcome::AbortIteration;
        };
        let VuState { conns, text } = state;
        let Some(slot) = conns.get_mut(self.server.index) else {
            hub.record_request(&RequestSample::unsent(
                group,
                self.server.metrics.class(ErrorKind::Other),
            ));
            return StepOutcome::AbortIteration;
        };
        let sending = match &self.exchange {
            Exchange::One(spec) => {
                let (cmd, bytes) = spec.render(vars, text);
                Sending::One(cmd, bytes)
            }
            Exchange::Pipeline(specs) => {
                let mut pipe = redis::pipe();
                let mut bytes = 0;
                for spec in specs {
                    let (cmd, b) = spec.render(vars, text);
                    pipe.add_command(cmd);
                    bytes += b;
                }
                Sending::Pipeline(pipe, specs.len(), bytes)
            }
        };
        let outcome = match exchange(&self.server, slot, hub, group, sending, self.timeout).await {
            Ok(o) => o,
            Err(failure) => {
                unsent(hub, &self.server, &self.logged, group, failure);
                return StepOutcome::AbortIteration;
            }
        };
        if record(
            hub,
            &self.server,
            &self.logged,
            group,
            &outcome,
            CacheOutcome::None,
        )
        .is_err()
        {
            return StepOutcome::AbortIteration;
        }
        let Ok(reply) = &outcome.reply else {
            return StepOutcome::AbortIteration;
        };
        if self.checks.is_empty() && self.captures.is_empty() {
            return StepOutcome::Continue;
        }
        let reply = reply_json(reply);
        for check in &self.checks {
            let actual = match &check.path {
                Some(path) => at_path(&reply, path),
                None => Some(reply.clone()),
            };
            if check.tests.iter().all(|t| t.passes(actual.as_ref(), vars)) {
                hub.check_passed(group);
            } else {
                hub.check_failed(group, check.id, &describe_actual(actual.as_ref()));
            }
        }
        for capture in &self.captures {
            match (
                captured(&reply, capture),
                vars.captures.get_mut(capture.slot),
            ) {
                (Some(v), Some(slot)) => *slot = Some(v),
                _ => {
                    hub.record_error(group, self.server.metrics.class(ErrorKind::Capture));
                    log_once(
                        &self.logged,
                        &self.server,
                        ErrorKind::Capture,
                        &format!("capture `{}` found nothing in the reply", capture.name),
                    );
                    return StepOutcome::AbortIteration;
                }
            }
        }
        StepOutcome::Continue
    }
}

impl StepExec for CommandStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(self.execute(vu))
    }
}

impl CacheAsideStep {
    /// The lookup: GET; on a miss the origin's steps, then SET. Its outcome
    /// sample times the whole of it. A GET that fails (the cache is down) goes
    /// to the origin without a SET, and counts as a bypass.
    async fn execute(&self, vu: &mut Vu) -> StepOutcome {
        let started = Instant::now();
        let (key, got) = match self.get(vu).await {
            Ok(Got::Hit) => {
                self.outcome(vu, started, CacheOutcome::Hit, false);
                return StepOutcome::Continue;
            }
            Ok(Got::Miss(key)) => (key, true),
            Err(Some(key)) => (key, false),
            Err(None) => return StepOutcome::AbortIteration,
        };
        if run_steps(&self.on_miss, vu).await == StepOutcome::AbortIteration {
            let cache = if got {
                CacheOutcome::Miss
            } else {
                CacheOutcome::Bypass
            };
            self.outcome(vu, started, cache, true);
            return StepOutcome::AbortIteration;
        }
        if !got {
            self.outcome(vu, started, CacheOutcome::Bypass, false);
            return self.capture_fresh(vu);
        }
        let stored = self.set(vu, &key).await;
        self.outcome(vu, started, CacheOutcome::Miss, !stored);
        if stored {
            self.capture_fresh(vu)
        } else {
            StepOutcome::AbortIteration
        }
    }

    /// GETs the key: a hit captures the value. `Err(Some(key))`: the GET
    /// failed; `Err(None)`: not even the key could be had.
    async fn get(&self, vu: &mut Vu) -> Result<Got, Option<String>> {
        let Some((vars, state, hub)) = vu.parts_for(self.slot, self.get_group) else {
            return Err(None);
        };
        let key = self.key.render(vars);
        let Some(slot) = state.conns.get_mut(self.server.index) else {
            hub.record_request(&RequestSample::unsent(
                self.get_group,
                self.server.metrics.class(ErrorKind::Other),
            ));
            return Err(Some(key));
        };
        let mut cmd = redis::cmd("GET");
        cmd.arg(key.as_bytes());
        let sending = Sending::One(cmd, 3 + key.len() as u64);
        let outcome = match exchange(
            &self.server,
            slot,
            hub,
            self.get_group,
            sending,
            self.timeout,
        )
        .await
        {
            Ok(o) => o,
            Err(failure) => {
                unsent(hub, &self.server, &self.logged, self.get_group, failure);
                return Err(Some(key));
            }
        };
        let recorded = record(
            hub,
            &self.server,
            &self.logged,
            self.get_group,
            &outcome,
            CacheOutcome::None,
        );
        match outcome.reply {
            Ok(Reply::Nil) => Ok(Got::Miss(key)),
            Ok(reply) if recorded.is_ok() => {
                let value = reply_json(&reply);
                if let Some(slot) = self.capture.and_then(|c| vars.captures.get_mut(c)) {
                    *slot = Some(match &value {
                        Value::String(s) => cached_value(s),
                        other => other.clone(),
                    });
                }
                Ok(Got::Hit)
            }
            _ => Err(Some(key)),
        }
    }

    /// SETs the value the origin's steps gave; true when it was stored.
    async fn set(&self, vu: &mut Vu, key: &str) -> bool {
        let Some((vars, state, hub)) = vu.parts_for(self.slot, self.set_group) else {
            return false;
        };
        let VuState { conns, text } = state;
        self.value.render(vars, text);
        let mut cmd = redis::cmd("SET");
        cmd.arg(key.as_bytes()).arg(text.as_bytes());
        match self.ttl {
            Some(ttl) if ttl.subsec_millis() != 0 => {
                cmd.arg("PX").arg(ttl.as_millis() as u64);
            }
            Some(ttl) => {
                cmd.arg("EX").arg(ttl.as_secs());
            }
            None => {}
        }
        let bytes = 3 + key.len() as u64 + text.len() as u64;
        let Some(slot) = conns.get_mut(self.server.index) else {
            return false;
        };
        let outcome = match exchange(
            &self.server,
            slot,
            hub,
            self.set_group,
            Sending::One(cmd, bytes),
            self.timeout,
        )
        .await
        {
            Ok(o) => o,
            Err(failure) => {
                unsent(hub, &self.server, &self.logged, self.set_group, failure);
                return false;
            }
        };
        record(
            hub,
            &self.server,
            &self.logged,
            self.set_group,
            &outcome,
            CacheOutcome::None,
        )
        .is_ok()
    }

    /// Captures the value just rendered for the SET (or for the caller, when
    /// the cache was bypassed).
    fn capture_fresh(&self, vu: &mut Vu) -> StepOutcome {
        let Some((vars, state, _)) = vu.parts_for(self.slot, self.group) else {
            return StepOutcome::AbortIteration;
        };
        if let Some(c) = self.capture {
            self.value.render(vars, &mut state.text);
            if let Some(slot) = vars.captures.get_mut(c) {
                *slot = Some(cached_value(&state.text));
            }
        }
        StepOutcome::Continue
    }

    /// Records the lookup as its caller waited for it.
    fn outcome(&self, vu: &mut Vu, started: Instant, cache: CacheOutcome, failed: bool) {
        if let Some((_, _, hub)) = vu.parts_for(self.slot, self.group) {
            hub.record_request(&RequestSample {
                group: self.group,
                latency: started.elapsed(),
                status: None,
                failed,
                error: None,
                bytes_sent: 0,
                bytes_received: 0,
                cache,
            });
        }
    }
}

/// What a cache-aside's GET found.
enum Got {
    Hit,
    /// Nothing under the key (rendered).
    Miss(String),
}

impl StepExec for CacheAsideStep {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(self.execute(vu))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_read_as_json() {
        let reply = Reply::Array(vec![
            Reply::BulkString(br#"{"price": 12}"#.to_vec()),
            Reply::Nil,
            Reply::Int(3),
            Reply::Okay,
        ]);
        let json = reply_json(&reply);
        assert_eq!(json, serde_json::json!([r#"{"price": 12}"#, null, 3, "OK"]));
        let Ok(path) = JsonPath::parse("$.price") else {
            panic!("a valid path")
        };
        let spec = CaptureSpec {
            slot: 0,
            name: "p".into(),
            index: Some(0),
            json: Some(path),
        };
        assert_eq!(captured(&json, &spec), Some(Value::from(12)));
        let whole = CaptureSpec {
            index: Some(1),
            json: None,
            ..spec.clone()
        };
        assert_eq!(captured(&json, &whole), Some(Value::Null));
        let past = CaptureSpec {
            index: Some(9),
            ..spec
        };
        assert_eq!(captured(&json, &past), None);
        assert_eq!(reply_bytes(&reply), 13 + 8 + 2);
    }

    #[test]
    fn cached_json_is_captured_as_json() {
        assert_eq!(cached_value(r#"{"a": 1}"#), serde_json::json!({"a": 1}));
        assert_eq!(cached_value("plain"), Value::String("plain".into()));
        assert_eq!(cached_value("{broken"), Value::String("{broken".into()));
    }
}

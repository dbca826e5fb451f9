//! A protocol from outside loadline's own crates, added in one line
//! (`Registry::builtin().with(Toy)`), used by a scenario and run through the
//! run library: its step document is read with located errors, its steps record
//! samples, its declared error class and counter are counted, and its lifecycle
//! hooks run around the load. Nothing leaves the process.

#![allow(clippy::unwrap_used)]

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use loadline_config::{load_str_in, Overrides, Registry};
use loadline_core::build::BuildCtx;
use loadline_core::metrics::{CounterId, ErrorClass, GroupId, RequestSample};
use loadline_core::plan::Plan;
use loadline_core::protocol::{BoxFuture, HookResult, Protocol, Slot, StepExec, StepOutcome};
use loadline_core::runner::NoObserver;
use loadline_core::template::Template;
use loadline_core::vu::Vu;
use loadline_doc::de::{read, Raw, Spanned};
use loadline_protocols::registry::{
    ProtocolBuilder, ProtocolEntry, Scenario, Section, StepDocument, StepKind,
};
use loadline_run::{around, execute, Interrupt, Outputs, RunEnv, Silent};
use schemars::{JsonSchema, SchemaGenerator};
use serde::Deserialize;

/// `ping: TEXT` steps; a `toy:` section whose `ready: false` makes the target
/// unavailable.
struct Toy;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct PingDoc {
    ping: Spanned<String>,
    /// Count this ping as failed, with the toy's own error class.
    fail: Option<bool>,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ToySection {
    ready: Option<bool>,
}

/// The toy's per-plan protocol: counts its lifecycle calls.
#[derive(Debug, Default)]
struct ToyProtocol {
    ready: bool,
    prepared: AtomicU64,
    finished: AtomicU64,
}

/// A VU's toy state: how many pings it sent.
struct Pings(u64);

impl Protocol for ToyProtocol {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn new_vu_state(&self) -> Box<dyn Any + Send> {
        Box::new(Pings(0))
    }
    fn prepare<'a>(&'a self, _plan: &'a Plan) -> BoxFuture<'a, HookResult> {
        Box::pin(async move {
            self.prepared.fetch_add(1, Ordering::Relaxed);
            if self.ready {
                Ok(vec!["toy ready".into()])
            } else {
                Err(vec!["the toy is not there".into()])
            }
        })
    }
    fn finish(&self) -> BoxFuture<'_, HookResult> {
        Box::pin(async move {
            self.finished.fetch_add(1, Ordering::Relaxed);
            Ok(Vec::new())
        })
    }
}

#[derive(Debug)]
struct Ping {
    slot: Slot<Pings>,
    group: GroupId,
    text: Template,
    fail: Option<ErrorClass>,
    bytes: CounterId,
}

impl StepExec for Ping {
    fn run<'a>(&'a self, vu: &'a mut Vu) -> BoxFuture<'a, StepOutcome> {
        Box::pin(async move {
            let Some((vars, pings, hub)) = vu.parts(self.slot) else {
                return StepOutcome::AbortIteration;
            };
            pings.0 += 1;
            let text = self.text.render(vars);
            hub.record_request(&RequestSample {
                group: self.group,
                latency: Duration::from_micros(100),
                status: None,
                failed: self.fail.is_some(),
                error: self.fail,
                bytes_sent: text.len() as u64,
                bytes_received: 0,
                cache: loadline_core::cache::CacheOutcome::None,
            });
            hub.record_count(self.group, self.bytes, text.len() as u64);
            StepOutcome::Continue
        })
    }
}

struct ToyBuilder {
    protocol: Arc<ToyProtocol>,
    slot: Option<Slot<Pings>>,
}

impl ProtocolEntry for Toy {
    fn name(&self) -> &'static str {
        "toy"
    }
    fn steps(&self, generator: &mut SchemaGenerator) -> Vec<StepDocument> {
        vec![StepDocument {
            kinds: vec![StepKind {
                key: "ping",
                described: "a `ping` step",
            }],
            schema: generator.subschema_for::<PingDoc>(),
        }]
    }
    fn sections(&self, generator: &mut SchemaGenerator) -> Vec<Section> {
        vec![Section {
            key: "toy",
            description: "Whether the toy is there.",
            schema: generator.subschema_for::<ToySection>(),
        }]
    }
    fn begin(&self, scenario: &Scenario, ctx: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder> {
        let section = scenario
            .section("toy")
            .and_then(|raw| read::<ToySection>(raw, ctx));
        Box::new(ToyBuilder {
            protocol: Arc::new(ToyProtocol {
                ready: section.and_then(|s| s.ready).unwrap_or(true),
                ..ToyProtocol::default()
            }),
            slot: None,
        })
    }
}

impl ProtocolBuilder for ToyBuilder {
    fn step(
        &mut self,
        _kind: &str,
        step: &Raw,
        ctx: &mut dyn BuildCtx,
    ) -> Option<Arc<dyn StepExec>> {
        let protocol = self.protocol.clone();
        let slot = *self
            .slot
            .get_or_insert_with(|| ctx.add_typed_protocol(protocol));
        let doc = read::<PingDoc>(step, ctx)?;
        let group = ctx.group(format!("ping {}", doc.ping.value), "toy", &doc.ping.span)?;
        let text = ctx.template(&doc.ping.value, &doc.ping.span)?;
        let refused = ctx.error_classes(&["refused"])[0];
        Some(Arc::new(Ping {
            slot,
            group,
            text,
            fail: doc.fail.unwrap_or(false).then_some(refused),
            bytes: ctx.counter("ping_bytes"),
        }))
    }
}

const SCENARIO: &str = "phases: [ { vus: 2, iterations: 10 } ]
vars: { who: world }
flows:
  - steps:
      - ping: hello {{ who }}
      - think: 1ms
      - ping: bye
        fail: true
";

fn toy_protocol(plan: &Plan) -> &ToyProtocol {
    let any: &dyn Any = plan.protocols[0].as_ref();
    any.downcast_ref::<ToyProtocol>().unwrap()
}

#[tokio::test]
async fn a_registered_protocol_runs_a_scenario_with_its_lifecycle() {
    let registry = Registry::builtin().with(Toy);
    let dir = tempfile::tempdir().unwrap();
    let loaded = load_str_in(
        &registry,
        "toy.yaml",
        SCENARIO,
        dir.path(),
        &Overrides::default(),
    )
    .unwrap();
    let plan = Arc::new(loaded.plan);
    assert_eq!(plan.protocols.len(), 1);
    assert_eq!(plan.counters, ["ping_bytes"]);
    let mut ready_seen = Vec::new();
    let interrupt = Interrupt::never();
    let done = around(
        &plan,
        &interrupt,
        |ready| ready_seen.extend_from_slice(ready),
        execute(
            plan.clone(),
            &Outputs {
                no_monitor: true,
                ..Outputs::default()
            },
            Box::new(NoObserver),
            &RunEnv::default(),
            Arc::new(Silent),
            &interrupt,
        ),
    )
    .await
    .unwrap();
    assert_eq!(ready_seen, ["toy ready"]);
    assert!(done.finish_errors.is_empty());
    let summary = done.outcome.unwrap().summary;
    assert_eq!(summary.iterations.total, 10);
    let hello = &summary.steps[0];
    assert_eq!(
        (hello.name.as_str(), hello.requests, hello.failed),
        ("ping hello {{ who }}", 10, 0)
    );
    // "hello world": 11 bytes a ping, counted by the toy's own counter.
    assert_eq!(hello.counters.get("ping_bytes"), Some(&110));
    let bye = &summary.steps[1];
    assert_eq!((bye.requests, bye.failed), (10, 10));
    assert_eq!(bye.errors.get("refused"), Some(&10));
    let toy = toy_protocol(&plan);
    assert_eq!(toy.prepared.load(Ordering::Relaxed), 1);
    assert_eq!(toy.finished.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn an_unready_protocol_stops_the_run_before_any_load() {
    let registry = Registry::builtin().with(Toy);
    let dir = tempfile::tempdir().unwrap();
    let text = format!("toy: {{ ready: false }}\n{SCENARIO}");
    let loaded = load_str_in(
        &registry,
        "toy.yaml",
        &text,
        dir.path(),
        &Overrides::default(),
    )
    .unwrap();
    let plan = Arc::new(loaded.plan);
    let ran = AtomicU64::new(0);
    let result = around(&plan, &Interrupt::never(), |_| {}, async {
        ran.fetch_add(1, Ordering::Relaxed)
    })
    .await;
    let not_ready = result.unwrap_err();
    assert_eq!(not_ready.lines, ["the toy is not there"]);
    assert!(!not_ready.interrupted);
    assert_eq!(ran.load(Ordering::Relaxed), 0);
    let toy = toy_protocol(&plan);
    assert_eq!(toy.finished.load(Ordering::Relaxed), 1);
}

#[test]
fn its_step_document_reports_mistakes_where_they_are_written() {
    let registry = Registry::builtin().with(Toy);
    let dir = tempfile::tempdir().unwrap();
    let text = "phases: [ { vus: 1, iterations: 1 } ]\ntoy: { redy: true }\nflows:\n  - steps:\n      - ping: x\n        fial: true\n      - ping: \"{{ nobody }}\"\n        params: [1]\n";
    let errors = load_str_in(
        &registry,
        "toy.yaml",
        text,
        dir.path(),
        &Overrides::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(errors.contains("toy.yaml:2:8: toy.redy: unknown key `redy`, expected one of ready; did you mean `ready`?"), "{errors}");
    assert!(
        errors.contains("toy.yaml:6:9: flows[0].steps[0].fial: unknown key `fial`"),
        "{errors}"
    );
    assert!(errors.contains("did you mean `fail`?"), "{errors}");
    assert!(
        errors.contains("toy.yaml:7:18: flows[0].steps[1].ping: unknown name `nobody`"),
        "{errors}"
    );
    assert!(errors.contains("toy.yaml:8:9: flows[0].steps[1].params: `params` does not fit a `ping` step: it belongs to an `sql:` step"), "{errors}");
    // The schema has the toy's step and section.
    let schema = loadline_config::json_schema_in(&registry);
    assert!(
        schema.contains("\"toy\"") && schema.contains("PingDoc"),
        "{schema}"
    );
}

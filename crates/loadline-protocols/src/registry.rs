//! The protocols a scenario can use, as the scenario format sees them. Each
//! protocol has an entry here that names the step keys it owns (`get`, `sql`…),
//! the top-level scenario sections it reads (`defaults`, `databases`…), the JSON
//! Schema of both, and a builder that turns its step documents into executors
//! through core's [`BuildCtx`]. Adding a protocol is one folder and one line in
//! [`Registry::builtin`].

use std::fmt;
use std::sync::Arc;

use loadline_core::build::BuildCtx;
use loadline_core::plan::Step;
use loadline_core::protocol::StepExec;
use loadline_doc::de::{Items, Raw};
use schemars::{Schema, SchemaGenerator};

/// One kind of step: the key that makes a step this kind, and how messages name
/// such a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepKind {
    /// Like `get` or `sql`.
    pub key: &'static str,
    /// Like "an HTTP request step" or "an `sql:` step".
    pub described: &'static str,
}

/// A step document: the kinds of step it covers and its JSON Schema (whose
/// properties are the keys such a step accepts).
#[derive(Debug, Clone)]
pub struct StepDocument {
    pub kinds: Vec<StepKind>,
    pub schema: Schema,
}

/// A top-level section of the scenario that a protocol owns.
#[derive(Debug, Clone)]
pub struct Section {
    pub key: &'static str,
    /// What the section is for, for the schema.
    pub description: &'static str,
    pub schema: Schema,
}

/// The base URL the scenario's relative paths are joined to.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// The scenario has no `target:`.
    Missing,
    /// It has one that is not valid (reported already).
    Invalid,
    Base(url::Url),
}

/// What a protocol's builder starts from: its own top-level sections, as
/// written, and the scenario's target.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The sections of [`ProtocolEntry::sections`] the scenario has.
    pub sections: Vec<(&'static str, Raw)>,
    pub target: Target,
    /// Accept any TLS certificate, whatever the protocol's own settings say
    /// (the command line's `--insecure`).
    pub insecure: bool,
    /// What to print of each exchange on stderr (the command line's
    /// `--http-debug`).
    pub dump: Dump,
}

/// How much of each exchange a protocol prints on stderr while running, for
/// seeing what is sent: nothing (the default), the request and response
/// heads, or the heads and the bodies (cut at a bound). Secrets in headers are
/// shown as `***`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dump {
    #[default]
    Off,
    Heads,
    Full,
}

impl Scenario {
    /// The section called `key`, when the scenario has it.
    pub fn section(&self, key: &str) -> Option<&Raw> {
        self.sections
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, r)| r)
    }
}

/// A database a protocol connects to, by the name the scenario gives it, for
/// the `monitor:` block to watch.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedDatabase {
    pub name: String,
    /// Its URL; `None` when its settings are invalid (reported already).
    pub url: Option<String>,
    /// The key of the `monitor:` block that watches it (`database`, `redis`).
    pub monitor: &'static str,
    /// Why its server has no statistics to watch (an embedded database).
    pub unwatchable: Option<String>,
}

/// A protocol as the scenario format sees it.
pub trait ProtocolEntry: Send + Sync {
    // Keys are claimed once: a kind of step or a section another protocol (or
    // the format itself) has already is refused when a scenario is built.
    /// A short name such as `http`.
    fn name(&self) -> &'static str;
    /// The step documents it reads, with the kinds of step each covers.
    fn steps(&self, generator: &mut SchemaGenerator) -> Vec<StepDocument>;
    /// The page that documents its steps, relative to the repository (e.g.
    /// `docs/database_load.md`): the schema names it, and the README must link
    /// it.
    fn docs(&self) -> Option<&'static str> {
        None
    }
    /// Log filter directives (`target=level`) that the command line adds to
    /// its default filter: a client library's logs that only repeat what
    /// the protocol reports itself. `LOADLINE_LOG` replaces them.
    fn quiet_logs(&self) -> &'static [&'static str] {
        &[]
    }
    /// The top-level scenario sections it reads.
    fn sections(&self, _generator: &mut SchemaGenerator) -> Vec<Section> {
        Vec::new()
    }
    /// Starts building one scenario's part of this protocol: reads its sections
    /// (every problem reported to `ctx`). Called for every scenario, whether or
    /// not any step uses the protocol, before any step is built.
    fn begin(&self, scenario: &Scenario, ctx: &mut dyn BuildCtx) -> Box<dyn ProtocolBuilder>;
}

/// The build context of a step that may hold steps of its own (a cache-aside
/// step's `on_miss:`): the scenario format builds them, whatever their
/// protocol, as it builds a flow's.
pub trait StepCtx: BuildCtx {
    /// Builds `steps`, nested in the step being built, as a flow's steps are
    /// built (every problem reported, captures known to the steps after them).
    /// `own` is the builder of the step they are nested in, which builds the
    /// nested steps of its own protocol.
    fn nested_steps(&mut self, steps: &Items<Raw>, own: &mut dyn ProtocolBuilder) -> Vec<Step>;
}

/// Builds one scenario's steps of a protocol.
pub trait ProtocolBuilder {
    /// Builds a step whose kind key is `kind` (one of the entry's). `None` when
    /// the step has problems, each reported to `ctx` (a `None` with nothing
    /// reported is reported by the format as a step that could not be built).
    fn step(&mut self, kind: &str, step: &Raw, ctx: &mut dyn BuildCtx)
        -> Option<Arc<dyn StepExec>>;
    /// [`ProtocolBuilder::step`] for a protocol whose steps hold steps: the
    /// context can build those too. The format calls this one; by default it
    /// is `step`.
    fn step_in(
        &mut self,
        kind: &str,
        step: &Raw,
        ctx: &mut dyn StepCtx,
    ) -> Option<Arc<dyn StepExec>> {
        self.step(kind, step, ctx)
    }
    /// The databases this protocol connects to, for `monitor:` to refer to.
    fn databases(&self) -> Vec<NamedDatabase> {
        Vec::new()
    }
}

/// The protocols a scenario can use.
#[derive(Clone, Default)]
pub struct Registry {
    entries: Vec<Arc<dyn ProtocolEntry>>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.name()))
            .finish()
    }
}

impl Registry {
    /// loadline's own protocols: one line each.
    pub fn builtin() -> Self {
        let registry = Registry::default().with(crate::http::Http);
        #[cfg(feature = "sql")]
        let registry = registry.with(crate::sql::Sql);
        #[cfg(feature = "redis")]
        let registry = registry.with(crate::redis::Redis);
        #[cfg(feature = "nats")]
        let registry = registry.with(crate::nats::Nats);
        #[cfg(feature = "amqp")]
        let registry = registry.with(crate::amqp::Amqp);
        #[cfg(feature = "mqtt")]
        let registry = registry.with(crate::mqtt::Mqtt);
        registry
    }

    /// This registry with `entry` added.
    pub fn with(mut self, entry: impl ProtocolEntry + 'static) -> Self {
        self.entries.push(Arc::new(entry));
        self
    }

    pub fn entries(&self) -> &[Arc<dyn ProtocolEntry>] {
        &self.entries
    }

    /// The default log filter: `warn`, with every protocol's quiet logs.
    pub fn default_log_filter(&self) -> String {
        let mut filter = String::from("warn");
        for d in self.entries.iter().flat_map(|e| e.quiet_logs()) {
            filter.push(',');
            filter.push_str(d);
        }
        filter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_protocol_is_documented_and_linked_from_the_readme() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
        let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap_or_default();
        for entry in Registry::builtin().entries() {
            let Some(page) = entry.docs() else {
                panic!("protocol `{}` names no docs page", entry.name());
            };
            assert!(
                std::path::Path::new(&format!("{root}/{page}")).is_file(),
                "{page} is missing"
            );
            assert!(
                readme.contains(&format!("]({page})")),
                "README does not link {page}"
            );
        }
    }
}

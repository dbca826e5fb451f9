//! The build context: what a protocol's builder may ask of the scenario being
//! built while it turns its step documents into executors. The scenario format
//! implements [`BuildCtx`]; protocols only call it. Through it a builder reports
//! a problem where it was written, compiles templates against the names in
//! scope, registers metric groups, error classes and counters, defines captures,
//! and joins the plan as a protocol with a typed per-VU [`Slot`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::duration::parse_duration;
use crate::metrics::{CheckId, CounterId, ErrorClass, GroupId};
use crate::protocol::{Protocol, Slot};
use crate::template::{JsonTemplate, Scope, Template, TemplateError};

/// A position in a scenario text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct Mark {
    pub line: usize,
    pub column: usize,
}

/// Where a value was written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Span {
    pub mark: Mark,
    /// Like `flows[0].steps[2].capture`.
    pub path: String,
    /// The column of the value's first character when its text is written on one
    /// line exactly as it reads, so that an offset into the text maps to a column.
    pub content_column: Option<usize>,
}

impl Span {
    /// The position of the character at byte `offset` of the value's text, when
    /// it can be known; else the value's own position.
    pub fn at_offset(&self, text: &str, offset: usize) -> Mark {
        let column = self
            .content_column
            .and_then(|c| text.get(..offset).map(|p| c + p.chars().count()))
            .unwrap_or(self.mark.column);
        Mark {
            line: self.mark.line,
            column,
        }
    }
}

/// How much a reported problem weighs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The scenario will not run.
    Error,
    /// Allowed, but probably unintended.
    Warning,
}

/// The scenario being built, as a protocol's builder sees it. Builders call it
/// as `&mut dyn BuildCtx`, mostly through the helpers on `dyn BuildCtx`
/// ([`error`](#method.error), [`template`](#method.template), …).
pub trait BuildCtx {
    /// Reports a problem at a position.
    fn report(&mut self, severity: Severity, mark: Mark, path: &str, message: String);
    /// How many errors were reported so far (a builder compares the count
    /// before and after a part to know whether the part was sound).
    fn error_count(&self) -> usize;
    /// Notes that the deserializer took a misspelt key of the mapping at
    /// `mapping` for `key` (and reported it).
    fn suggested(&mut self, mapping: Mark, key: String);
    /// Whether a misspelt key of the mapping at `mapping` was taken for one of
    /// `keys`.
    fn was_suggested(&self, mapping: Mark, keys: &[&str]) -> bool;

    /// What a template in the current step may use: the `vars`, the data files'
    /// columns, `$env`, and the values captured by the steps before it.
    fn scope(&self) -> &dyn Scope;
    /// What a template outside any iteration (a setup statement, a connection
    /// URL) may use: the same, without captures.
    fn fixed_scope(&self) -> &dyn Scope;
    /// Defines a capture of the current step: checks its name and gives its slot
    /// (`None` when the name is refused, reported). The name is known to the
    /// steps after this one either way.
    fn capture(&mut self, name: &str, at: &Span) -> Option<usize>;
    /// Whether `key` makes a step one kind or another (`think`, `get`, `sql`…),
    /// for a protocol that holds steps of its own kinds only.
    fn is_step_kind(&self, key: &str) -> bool;
    /// Declares a check of a step, described for people (`status 200`,
    /// `json $.state equals "confirmed"`); a `checks` threshold then has
    /// something to judge. The same description gives the same check.
    fn check(&mut self, label: &str) -> CheckId;

    /// The metric group of this name and kind, created on first use; a name
    /// already used by a group of another kind is reported at `at`.
    fn group(&mut self, name: String, kind: &str, at: &Span) -> Option<GroupId>;
    /// Declares error classes of the protocol's own (e.g. `deadlock`) and gives
    /// their classes, in order. A name declared before gives the same class.
    fn error_classes(&mut self, names: &[&str]) -> Vec<ErrorClass>;
    /// Declares an extra per-group counter (e.g. `rows`); the same name gives the
    /// same counter.
    fn counter(&mut self, name: &str) -> CounterId;

    /// Adds a protocol to the plan and gives the index of its per-VU state; call
    /// it through `add_typed_protocol`, which types the slot.
    fn add_protocol(&mut self, protocol: Arc<dyn Protocol>) -> usize;
    /// The folder relative paths are read from (the scenario file's).
    fn base_dir(&self) -> &Path;
}

impl dyn BuildCtx + '_ {
    /// Reports an error where a value was written.
    pub fn error(&mut self, at: &Span, message: impl Into<String>) {
        self.report(Severity::Error, at.mark, &at.path, message.into());
    }

    /// Reports an error at a position inside a value (a template's column).
    pub fn error_at(&mut self, mark: Mark, path: &str, message: impl Into<String>) {
        self.report(Severity::Error, mark, path, message.into());
    }

    /// Reports something allowed but probably unintended.
    pub fn warn(&mut self, at: &Span, message: impl Into<String>) {
        self.report(Severity::Warning, at.mark, &at.path, message.into());
    }

    /// Reports a missing key, unless the mapping at `at` has a misspelt key that
    /// was taken for one of `keys` (reported already, with a did-you-mean).
    pub fn missing(&mut self, at: &Span, keys: &[&str], message: impl Into<String>) {
        if !self.was_suggested(at.mark, keys) {
            self.error(at, message);
        }
    }

    /// Compiles a template against [`BuildCtx::scope`]; an error points at its
    /// column when the text is on one line as written.
    pub fn template(&mut self, text: &str, at: &Span) -> Option<Template> {
        let compiled = Template::compile(text, self.scope());
        self.reported(compiled, text, at)
    }

    /// Compiles a template against [`BuildCtx::fixed_scope`].
    pub fn fixed_template(&mut self, text: &str, at: &Span) -> Option<Template> {
        let compiled = Template::compile(text, self.fixed_scope());
        self.reported(compiled, text, at)
    }

    /// Compiles a JSON value whose strings may hold templates.
    pub fn json_template(&mut self, value: &serde_json::Value, at: &Span) -> Option<JsonTemplate> {
        match JsonTemplate::compile(value, self.scope()) {
            Ok(t) => Some(t),
            Err((path, e)) => {
                self.error(at, format!("{path}: {}", e.message));
                None
            }
        }
    }

    fn reported(
        &mut self,
        compiled: Result<Template, TemplateError>,
        text: &str,
        at: &Span,
    ) -> Option<Template> {
        match compiled {
            Ok(t) => Some(t),
            Err(e) => {
                let mark = at.at_offset(text, e.offset);
                self.error_at(mark, &at.path, e.message);
                None
            }
        }
    }

    /// A duration (`250ms`, `2s`, `1m30s`) written at `at`; zero only when
    /// `allow_zero`.
    pub fn duration(&mut self, text: &str, at: &Span, allow_zero: bool) -> Option<Duration> {
        match parse_duration(text) {
            Ok(d) if d.is_zero() && !allow_zero => {
                self.error(
                    at,
                    format!("expected a duration above zero, found `{text}`"),
                );
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                self.error(at, message);
                None
            }
        }
    }

    /// An integer within `min..=max` written at `at`.
    pub fn int_in(&mut self, value: i64, at: &Span, min: i64, max: i64) -> Option<u64> {
        if (min..=max).contains(&value) {
            u64::try_from(value).ok()
        } else {
            self.error(
                at,
                format!("expected an integer from {min} to {max}, found {value}"),
            );
            None
        }
    }

    /// Adds `protocol` to the plan and types its slot: `S` is the type its
    /// [`Protocol::new_vu_state`] returns. Call once per protocol and plan.
    pub fn add_typed_protocol<S: 'static>(&mut self, protocol: Arc<dyn Protocol>) -> Slot<S> {
        Slot::new(self.add_protocol(protocol))
    }
}

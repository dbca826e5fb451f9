//! Flows' steps: which kind each step is (by its kind key), pauses and loops
//! read here, every other kind handed to the protocol that owns its key (see
//! [`loadline_protocols::registry`]). A key that belongs to another kind of step
//! is reported as such, with where it belongs.

use loadline_core::build::BuildCtx;
use loadline_core::duration::DurationRange;
use loadline_core::plan::Step;
use loadline_core::protocol::StepExec;
use loadline_doc::de::{self as doc_de, Items, Lenient, Raw, Spanned};
use loadline_doc::suggest::did_you_mean;
use loadline_doc::yaml::NodeValue;
use loadline_protocols::registry::{ProtocolBuilder, StepCtx};
use schemars::JsonSchema;
use serde::Deserialize;

use super::Builder;

const MAX_LOOP: i64 = 1_000_000;

/// A pause.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ThinkDoc {
    /// Pause: a duration (`1s`) or a range (`1s..3s`).
    pub think: Spanned<String>,
}

/// A loop over steps.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoopDoc {
    /// Repeat `steps` this many times.
    #[serde(rename = "loop")]
    pub repeat: Spanned<i64>,
    /// The steps to repeat.
    #[schemars(with = "Vec<super::super::model::StepSchema>")]
    pub steps: Option<Items<Raw>>,
}

/// The kinds of step the format reads itself.
pub(crate) const THINK: &str = "think";
pub(crate) const LOOP: &str = "loop";

/// Every kind of step: its key, how messages name it, the keys it accepts, and
/// who builds it (`None`: the format itself).
#[derive(Debug, Clone)]
pub(crate) struct KindInfo {
    pub key: &'static str,
    pub described: &'static str,
    pub keys: Vec<String>,
    /// The index of the owning protocol's builder.
    pub builder: Option<usize>,
}

impl Builder<'_> {
    pub(super) fn flow_steps(&mut self, steps: &Items<Raw>) -> Vec<Step> {
        let mut all = Vec::new();
        collect_captures(&steps.value, &mut all);
        self.scope.captures.clear();
        self.scope.flow_captures = all;
        self.steps(steps, None)
    }

    /// Builds a list of steps; `own` is the builder of the step they are
    /// nested in, if any (see [`StepCtx::nested_steps`]).
    fn steps<'b>(
        &mut self,
        steps: &Items<Raw>,
        mut own: Option<&mut (dyn ProtocolBuilder + 'b)>,
    ) -> Vec<Step> {
        if steps.value.is_empty() {
            self.error_at(
                steps.span.mark,
                &steps.span.path,
                "`steps` is empty: expected at least one step, e.g. `- get: /`",
            );
        }
        let mut built = Vec::new();
        for s in steps.value.iter().filter_map(Lenient::get) {
            built.extend(self.step(&s.value, own.as_deref_mut()));
        }
        built
    }

    fn step<'b>(
        &mut self,
        raw: &Raw,
        own: Option<&mut (dyn ProtocolBuilder + 'b)>,
    ) -> Option<Step> {
        if !matches!(raw.node.value, NodeValue::Map(_)) {
            let found = raw.node.describe();
            self.ctx().error(
                &raw.span(),
                format!("expected a step (a mapping such as `get: /`), found {found}"),
            );
            return None;
        }
        let mut present: Vec<(usize, Raw)> = Vec::new();
        for (key, _, _) in raw.entries() {
            if let Some(i) = self.kinds.iter().position(|k| k.key == key) {
                if let Some(r) = raw.get(key) {
                    present.push((i, r));
                }
            }
        }
        present.sort_by_key(|(_, r)| r.node.mark);
        let kind = match present.as_slice() {
            [] => {
                self.no_kind(raw);
                return None;
            }
            [(first, _), (second, at), ..] => {
                let msg = format!(
                    "a step does one thing: found both `{}` and `{}`; split them into two steps",
                    self.kinds[*first].key, self.kinds[*second].key
                );
                self.ctx().error(&at.span(), msg);
                return None;
            }
            [(i, _)] => self.kinds[*i].clone(),
        };
        let raw = self.keys_fit(&kind, raw);
        match kind.builder {
            Some(b) => {
                let before = self.problems.len();
                let built = self.build_by(b, kind.key, &raw, own).map(Step::Exec);
                if built.is_none() && self.problems.len() == before {
                    self.ctx().error(
                        &raw.span(),
                        format!("this `{}` step could not be built", kind.key),
                    );
                }
                built
            }
            None if kind.key == THINK => {
                let doc = doc_de::read::<ThinkDoc>(&raw, self.ctx())?;
                match DurationRange::parse(&doc.think.value) {
                    Ok(range) => Some(Step::Think(range)),
                    Err(message) => {
                        self.ctx().error(&doc.think.span, message);
                        None
                    }
                }
            }
            None => {
                let doc = doc_de::read::<LoopDoc>(&raw, self.ctx())?;
                let count = self
                    .ctx()
                    .int_in(doc.repeat.value, &doc.repeat.span, 1, MAX_LOOP);
                let steps = match &doc.steps {
                    Some(steps) => self.steps(steps, own),
                    None => {
                        self.ctx().missing(
                            &raw.span(),
                            &["steps"],
                            "a `loop` needs `steps:`, the list of steps to repeat",
                        );
                        return None;
                    }
                };
                Some(Step::Loop {
                    count: count?,
                    steps,
                })
            }
        }
    }

    /// Has builder `b` build a step. The builder of the step this one is
    /// nested in is `own`; any other is lent out of the list while it builds,
    /// so that it can have the steps nested in its step built.
    fn build_by<'b>(
        &mut self,
        b: usize,
        kind: &str,
        raw: &Raw,
        own: Option<&mut (dyn ProtocolBuilder + 'b)>,
    ) -> Option<std::sync::Arc<dyn StepExec>> {
        if self.running.last() == Some(&b) {
            return own?.step_in(kind, raw, self);
        }
        let slot = self.builders.get_mut(b)?;
        let mut builder = std::mem::replace(slot, Box::new(Lent));
        self.running.push(b);
        let built = builder.step_in(kind, raw, self);
        self.running.pop();
        self.builders[b] = builder;
        built
    }

    /// A step with no kind key: its unknown keys, with what they may be a
    /// misspelling of, and (unless one was taken for a kind) what a step needs.
    fn no_kind(&mut self, raw: &Raw) {
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.key).collect();
        let mut misspelt_kind = false;
        for (key, key_node, _) in raw.entries() {
            let known = self.kinds.iter().any(|k| k.keys.iter().any(|x| x == key));
            if known {
                continue;
            }
            let mut msg = format!("unknown key `{key}`, expected one of {}", kinds.join(", "));
            if let Some(s) = did_you_mean(key, kinds.iter().copied()) {
                msg.push_str(&format!("; did you mean `{s}`?"));
                misspelt_kind = true;
            } else {
                let all = self
                    .kinds
                    .iter()
                    .flat_map(|k| k.keys.iter().map(String::as_str));
                if let Some(s) = did_you_mean(key, all) {
                    msg.push_str(&format!("; did you mean `{s}`?"));
                }
            }
            let path = loadline_doc::de::child_key_path(&raw.path, key);
            self.error_at(key_node.mark, &path, msg);
        }
        if !misspelt_kind {
            let list = match kinds.split_last() {
                Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
                _ => kinds.join(", "),
            };
            self.ctx()
                .error(&raw.span(), format!("a step needs one of {list}"));
        }
    }

    /// Reports the keys of a step that belong to another kind of step, saying
    /// where they belong, and leaves them out of what the step's owner reads.
    fn keys_fit(&mut self, kind: &KindInfo, raw: &Raw) -> Raw {
        let mut misfits: Vec<String> = Vec::new();
        for (key, key_node, _) in raw.entries() {
            if kind.keys.iter().any(|k| k == key) {
                continue;
            }
            let mut owners: Vec<&str> = Vec::new();
            for k in self
                .kinds
                .iter()
                .filter(|k| k.keys.iter().any(|x| x == key))
            {
                if !owners.contains(&k.described) {
                    owners.push(k.described);
                }
            }
            if owners.is_empty() {
                // Unknown everywhere: the owner's reader reports it, with a
                // did-you-mean from its own keys.
                continue;
            }
            let belongs = match owners.split_last() {
                Some((last, rest)) if !rest.is_empty() => {
                    format!("{} or {last}", rest.join(", "))
                }
                _ => owners.join(""),
            };
            let path = loadline_doc::de::child_key_path(&raw.path, key);
            self.error_at(
                key_node.mark,
                &path,
                format!(
                    "`{key}` does not fit a `{}` step: it belongs to {belongs}",
                    kind.key
                ),
            );
            misfits.push(key.to_string());
        }
        raw.without(|k| misfits.iter().any(|m| m == k))
    }

    fn ctx(&mut self) -> &mut dyn BuildCtx {
        self
    }
}

impl StepCtx for Builder<'_> {
    fn nested_steps(&mut self, steps: &Items<Raw>, own: &mut dyn ProtocolBuilder) -> Vec<Step> {
        self.steps(steps, Some(own))
    }
}

/// Stands in for a builder while it builds a step. Only a step nested two
/// protocols deep in one of its own kind reaches it (then it builds nothing,
/// and the step is reported as one that could not be built).
struct Lent;

impl ProtocolBuilder for Lent {
    fn step(
        &mut self,
        _kind: &str,
        _step: &Raw,
        _ctx: &mut dyn BuildCtx,
    ) -> Option<std::sync::Arc<dyn StepExec>> {
        None
    }
}

/// Every capture name the steps (and the steps inside them) assign, for a
/// better message when a template uses one too early: a step's captures are the
/// keys of its `capture:` mapping.
fn collect_captures(steps: &[Lenient<Spanned<Raw>>], out: &mut Vec<String>) {
    for step in steps.iter().filter_map(Lenient::get) {
        if let Some(capture) = step.value.get("capture") {
            out.extend(capture.entries().map(|(k, _, _)| k.to_string()));
        }
        if let Some(inner) = step.value.get("steps") {
            if let NodeValue::Seq(items) = &inner.node.value {
                let nested: Vec<Lenient<Spanned<Raw>>> = items
                    .iter()
                    .map(|n| {
                        Lenient(Some(Spanned {
                            span: Default::default(),
                            value: Raw {
                                node: n.clone(),
                                path: String::new(),
                            },
                        }))
                    })
                    .collect();
                collect_captures(&nested, out);
            }
        }
    }
}

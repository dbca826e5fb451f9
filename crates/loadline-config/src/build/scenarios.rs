//! Concurrent scenarios: the top-level `scenarios:` map of named scenarios,
//! each with its own `phases`, `flows` and `start_after`, all running at once
//! (as k6's `scenarios` do). Their phases and flows are laid one scenario after
//! the other into the plan's flat lists, and each [`ScenarioPlan`] says which
//! slices are its. Also how `--scale-to` scales them, and how a threshold's
//! `{scenario:…}` and `{phase:…}` resolve against them.

use std::time::Duration;

use loadline_core::plan::{Flow, Phase, ScenarioPlan, Stop};
use loadline_core::threshold::{ScenarioScope, Selector};
use loadline_doc::de::{Lenient, Span, Spanned};
use loadline_doc::suggest::{did_you_mean, quoted_list};
use loadline_doc::yaml::Mark;

use super::{is_identifier, lenient, Builder};
use crate::model::{NamedScenarios, ScenarioDoc};

/// The scenarios' phases and flows, laid out one scenario after the other.
#[derive(Debug, Default)]
pub(super) struct Laid {
    pub phases: Vec<Phase>,
    pub flows: Vec<Flow>,
    pub scenarios: Vec<ScenarioPlan>,
}

/// What a threshold's selector resolves to in the phases: a phase's index, a
/// scenario, both or neither.
pub(super) type Scope = (Option<usize>, Option<ScenarioScope>);

impl Builder<'_> {
    /// Reads `scenarios:`: refuses the top-level keys it replaces and the
    /// command-line flags that cannot apply, then builds each scenario.
    pub(super) fn named_scenarios(&mut self, doc: &ScenarioDoc, entries: &NamedScenarios) -> Laid {
        let replaced = [
            (
                "phases",
                doc.phases.as_ref().map(|p| p.get().map(|p| p.span.clone())),
            ),
            (
                "profiles",
                doc.profiles
                    .as_ref()
                    .map(|p| p.get().map(|p| p.span.clone())),
            ),
            (
                "default_profile",
                doc.default_profile
                    .as_ref()
                    .map(|p| p.get().map(|p| p.span.clone())),
            ),
            (
                "flows",
                doc.flows.as_ref().map(|p| p.get().map(|p| p.span.clone())),
            ),
        ];
        for (key, span) in replaced {
            if let Some(span) = span {
                let span = span.unwrap_or_else(|| entries.span.clone());
                self.error(
                    &span,
                    format!(
                        "top-level `{key}` cannot be used with `scenarios:`: each scenario has its own `phases` and `flows`; move them under a scenario"
                    ),
                );
            }
        }
        if self.overrides.load.is_some() {
            self.error_at(
                Mark::default(),
                "--vus",
                "the command line's --vus, --rate, --duration or --iterations replace a scenario's phases, and this file has several `scenarios:`: drop the flags (use --scale-to to shorten every scenario)",
            );
        }
        if let Some(name) = &self.overrides.profile {
            self.error_at(
                Mark::default(),
                "--profile",
                format!(
                    "--profile {name}: a file with `scenarios:` has no profiles; each scenario has its own `phases`"
                ),
            );
        }
        if entries.value.0.is_empty() {
            self.error(
                &entries.span,
                "`scenarios` is empty: expected named scenarios, e.g. `scenarios: { browse: { phases: [ { duration: 1m, arrival_rate: 20 } ], flows: [ … ] } }`",
            );
        }
        let mut laid = Laid::default();
        let mut seen: Vec<(String, Mark)> = Vec::new();
        let mut starts = Vec::new();
        for (name, entry) in &entries.value.0 {
            if !is_identifier(&name.value) {
                self.error(
                    &name.span,
                    format!(
                        "`{}` is not a scenario name: expected letters, digits and `_`, not starting with a digit",
                        name.value
                    ),
                );
            }
            if let Some((_, first)) = seen.iter().find(|(s, _)| *s == name.value) {
                let message = format!(
                    "scenario name `{}` is already used at line {}: scenario names are unique",
                    name.value, first.line
                );
                self.error(&name.span, message);
            }
            seen.push((name.value.clone(), name.span.mark));
            let Some(sc) = entry.get() else { continue };
            let what = format!("scenario `{}`", name.value);
            let phases = match &sc.value.phases {
                None => {
                    self.missing(
                        &sc.span,
                        &["phases"],
                        format!("{what} needs `phases:`, a list of phases, e.g. `phases: [ {{ duration: 30s, arrival_rate: 10 }} ]`"),
                    );
                    Vec::new()
                }
                Some(list) => list
                    .get()
                    .map(|l| self.phases(l, &format!("{what}'s `phases`")))
                    .unwrap_or_default(),
            };
            self.unique_phase_names(
                &phases,
                sc.value
                    .phases
                    .as_ref()
                    .and_then(Lenient::get)
                    .map(|l| &l.span),
                &what,
            );
            let flows = match &sc.value.flows {
                None => {
                    self.missing(
                        &sc.span,
                        &["flows"],
                        format!("{what} needs `flows:`, a list of flows, each with `steps`"),
                    );
                    Vec::new()
                }
                Some(list) => list.get().map(|l| self.flows(l)).unwrap_or_default(),
            };
            let start_after = match &sc.value.start_after {
                Some(d) => self.duration(d, true).unwrap_or_default(),
                None => Duration::ZERO,
            };
            starts.push(sc.span.mark);
            laid.scenarios.push(ScenarioPlan {
                name: name.value.clone(),
                phases: laid.phases.len()..laid.phases.len() + phases.len(),
                flows: laid.flows.len()..laid.flows.len() + flows.len(),
                start_after,
            });
            laid.phases.extend(phases);
            laid.flows.extend(flows);
        }
        if let Some(total) = self.overrides.scale_to {
            if let Err(message) = scale_scenarios(&mut laid, total) {
                self.error_at(entries.span.mark, "--scale-to", message);
            }
        }
        laid
    }

    /// Reports a phase name used twice in one scenario (thresholds name phases).
    fn unique_phase_names(&mut self, phases: &[Phase], at: Option<&Span>, what: &str) {
        for (i, p) in phases.iter().enumerate() {
            if phases[..i].iter().any(|q| q.name == p.name) {
                let span = at.cloned().unwrap_or_default();
                self.error(
                    &span,
                    format!(
                        "{what} has two phases named `{}`: phase names are unique within a scenario",
                        p.name
                    ),
                );
            }
        }
    }

    /// Resolves a threshold's `{scenario:…}` and `{phase:…}` against the
    /// scenarios; `None` when it was reported as an error.
    pub(super) fn scenario_scope(
        &mut self,
        key: &Spanned<String>,
        selector: &Selector,
        phases: &[Phase],
        scenarios: &[ScenarioPlan],
    ) -> Option<Scope> {
        let names: Vec<&str> = scenarios.iter().map(|s| s.name.as_str()).collect();
        let Some(wanted) = &selector.scenario else {
            // `{phase:X}` alone must name one scenario's phase.
            let Some(name) = &selector.phase else {
                return Some((None, None));
            };
            let having: Vec<&ScenarioPlan> = scenarios
                .iter()
                .filter(|s| phases[s.phases.clone()].iter().any(|p| p.name == *name))
                .collect();
            return match having.as_slice() {
                [one] => {
                    let at = phases[one.phases.clone()]
                        .iter()
                        .position(|p| p.name == *name)
                        .map(|i| one.phases.start + i);
                    Some((at, None))
                }
                [] => {
                    let known: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
                    let mut msg = format!(
                        "no scenario has a phase named `{name}`: expected one of {}",
                        quoted_list(&known)
                    );
                    if let Some(s) = did_you_mean(name, known.iter().copied()) {
                        msg.push_str(&format!("; did you mean `{s}`?"));
                    }
                    self.error(&key.span, msg);
                    None
                }
                many => {
                    let which: Vec<&str> = many.iter().map(|s| s.name.as_str()).collect();
                    self.error(
                        &key.span,
                        format!(
                            "`{{phase:{name}}}` is ambiguous: scenarios {} each have a phase `{name}`; say which, e.g. `{{scenario:{}, phase:{name}}}`",
                            quoted_list(&which),
                            which[0]
                        ),
                    );
                    None
                }
            };
        };
        if scenarios.is_empty() {
            self.error(
                &key.span,
                format!(
                    "`{{scenario:{wanted}}}`: the file has no `scenarios:`; drop the `{{scenario:…}}` or define the scenario"
                ),
            );
            return None;
        }
        let Some(sc) = scenarios.iter().find(|s| s.name == *wanted) else {
            let mut msg = format!(
                "no scenario has the name `{wanted}`: expected one of {}",
                quoted_list(&names)
            );
            if let Some(s) = did_you_mean(wanted, names.iter().copied()) {
                msg.push_str(&format!("; did you mean `{s}`?"));
            }
            self.error(&key.span, msg);
            return None;
        };
        let scope = ScenarioScope {
            name: sc.name.clone(),
            phases: sc.phases.clone(),
        };
        let Some(name) = &selector.phase else {
            return Some((None, Some(scope)));
        };
        let own = &phases[sc.phases.clone()];
        match own.iter().position(|p| p.name == *name) {
            Some(i) => Some((Some(sc.phases.start + i), Some(scope))),
            None => {
                let known: Vec<&str> = own.iter().map(|p| p.name.as_str()).collect();
                let mut msg = format!(
                    "scenario `{wanted}` has no phase named `{name}`: expected one of {}",
                    quoted_list(&known)
                );
                if let Some(s) = did_you_mean(name, known.iter().copied()) {
                    msg.push_str(&format!("; did you mean `{s}`?"));
                }
                self.error(&key.span, msg);
                None
            }
        }
    }
}

/// Scales every scenario by one factor so that the longest one (its
/// `start_after` and timed phases) lasts `total`: the scenarios keep their
/// proportions and their overlap. Phases ended by `iterations` are left as
/// they are.
pub(super) fn scale_scenarios(laid: &mut Laid, total: Duration) -> Result<(), String> {
    let timed = |phases: &[Phase]| -> Duration {
        phases
            .iter()
            .filter_map(|p| match p.stop {
                Stop::Duration(d) => Some(d),
                Stop::Iterations { .. } => None,
            })
            .sum()
    };
    let longest = laid
        .scenarios
        .iter()
        .map(|s| s.start_after + timed(laid.phases.get(s.phases.clone()).unwrap_or_default()))
        .max()
        .unwrap_or_default();
    let any_timed = laid
        .phases
        .iter()
        .any(|p| matches!(p.stop, Stop::Duration(_)));
    if !any_timed || longest.is_zero() {
        return Err(
            "no phase has a duration to scale (phases that run a number of `iterations` are left as they are)"
                .into(),
        );
    }
    if total.is_zero() {
        return Err("expected a duration above zero".into());
    }
    let factor = total.as_secs_f64() / longest.as_secs_f64();
    let scale = |d: Duration, min: f64| {
        Duration::from_millis((d.as_secs_f64() * factor * 1000.0).round().max(min) as u64)
    };
    for p in &mut laid.phases {
        if let Stop::Duration(d) = &mut p.stop {
            *d = scale(*d, 1.0);
        }
    }
    for s in &mut laid.scenarios {
        s.start_after = scale(s.start_after, 0.0);
    }
    Ok(())
}

/// Whether the document uses `scenarios:` (even one that failed to read).
pub(super) fn has_scenarios(doc: &ScenarioDoc) -> bool {
    doc.scenarios.is_some()
}

/// The `scenarios:` entries, when they read.
pub(super) fn entries(doc: &ScenarioDoc) -> Option<&NamedScenarios> {
    lenient(&doc.scenarios)
}

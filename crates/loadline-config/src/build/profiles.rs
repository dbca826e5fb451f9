//! Load profiles — named lists of phases (`normal`, `peak`, `stress`…) that take
//! the place of `phases` — and the choice of which phases a run gets: `--profile`,
//! else `phases`, else `default_profile`, unless the command line gives the load
//! itself (`--vus`/`--rate` with `--duration`/`--iterations`: one phase instead).
//! Also `--scale-to` scaling and the `capacity:` settings of the capacity search.

use std::time::Duration;

use loadline_core::capacity::{Growth, SearchSpec};
use loadline_core::plan::{Arrivals, Pacing, Phase, Stop, DEFAULT_MAX_VUS};

use super::{lenient, quoted_list, Builder, MAX_ITERATIONS, MAX_MAX_VUS, MAX_RATE, MAX_VUS};
use crate::model::{CapacityDoc, ScenarioDoc};
use crate::LoadOverride;
use crate::{Profile, CAPACITY_PROFILE};
use loadline_doc::de::{Span, Spanned};
use loadline_doc::suggest::did_you_mean;
use loadline_doc::yaml::Mark;

/// The most bisection steps a capacity search may ask for.
const MAX_REFINE: i64 = 20;

impl Builder<'_> {
    /// Every profile the scenario defines (those with errors are reported and left out).
    pub(super) fn profiles(&mut self, doc: &ScenarioDoc) -> Vec<Profile> {
        let Some(entries) = lenient(&doc.profiles) else {
            return Vec::new();
        };
        if entries.value.0.is_empty() {
            self.error(
                &entries.span,
                "`profiles` is empty: expected named lists of phases, e.g. `profiles: { peak: [ { duration: 1m, arrival_rate: 30 } ] }`",
            );
        }
        let mut out = Vec::new();
        for (name, list) in &entries.value.0 {
            if name.value == CAPACITY_PROFILE {
                self.error(
                    &name.span,
                    "`capacity` is the built-in capacity search (`--profile capacity` or `loadline capacity`), not a list of phases: set its options under the top-level `capacity:` key and choose another name here",
                );
                continue;
            }
            let Some(list) = list.get() else { continue };
            let phases = self.phases(list, &format!("profile `{}`", name.value));
            out.push(Profile {
                name: name.value.clone(),
                phases,
            });
        }
        out
    }

    /// Which phases run, and from which profile: the command line's one phase,
    /// else `--profile`, else `phases`, else `default_profile`. Scales them to
    /// `--scale-to` when asked.
    pub(super) fn choose_phases(
        &mut self,
        doc: &ScenarioDoc,
        root: &Span,
        phases: Option<Vec<Phase>>,
        profiles: &[Profile],
    ) -> (Option<String>, Vec<Phase>) {
        let written: Vec<String> = lenient(&doc.profiles)
            .map(|e| e.value.0.iter().map(|(k, _)| k.value.clone()).collect())
            .unwrap_or_default();
        let default = lenient(&doc.default_profile);
        if let Some(d) = default {
            if doc.phases.is_some() {
                self.error(
                    &d.span,
                    "`default_profile` and `phases` both say what runs without --profile: keep one",
                );
            } else if !written.contains(&d.value) {
                let message = self.unknown_profile(&d.value, &written, "");
                self.error(&d.span, message);
            }
        }
        let phases_of = |name: &str| {
            profiles
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.phases.clone())
                .unwrap_or_default()
        };
        // Where the chosen phases are written, for messages about them.
        let span_of = |name: &str| {
            lenient(&doc.profiles)
                .and_then(|e| e.value.0.iter().find(|(k, _)| k.value == name))
                .map(|(k, _)| k.span.clone())
        };
        if let Some(load) = &self.overrides.load {
            for (flag, given) in [
                ("--profile", self.overrides.profile.is_some()),
                ("--scale-to", self.overrides.scale_to.is_some()),
            ] {
                if given {
                    self.error_at(
                        Mark::default(),
                        flag,
                        "the command line's --vus, --rate, --duration or --iterations replace the scenario's phases: there are none to choose or scale; drop one or the other",
                    );
                }
            }
            let phase = command_line_phase(load, self.overrides.arrivals);
            return match phase {
                Ok(phase) => (None, vec![phase]),
                Err((flag, message)) => {
                    self.error_at(Mark::default(), flag, message);
                    (None, Vec::new())
                }
            };
        }
        let mut at = lenient(&doc.phases).map(|p| p.span.clone());
        let (profile, mut chosen) = match &self.overrides.profile {
            Some(name) if written.contains(name) => {
                at = span_of(name);
                (Some(name.clone()), phases_of(name))
            }
            Some(name) => {
                match lenient(&doc.profiles) {
                    None => self.error(
                        root,
                        format!(
                            "--profile {name}: the scenario defines no `profiles`; add named lists of phases, e.g. `profiles: {{ {name}: [ {{ duration: 1m, arrival_rate: 30 }} ] }}`"
                        ),
                    ),
                    Some(entries) => {
                        let message = self.unknown_profile(name, &written, " (--profile)");
                        self.error(&entries.span, message);
                    }
                }
                (None, Vec::new())
            }
            None => match (phases, default) {
                (Some(phases), _) => (None, phases),
                (None, Some(d)) => {
                    at = span_of(&d.value);
                    (Some(d.value.clone()), phases_of(&d.value))
                }
                (None, None) => {
                    if !self.overrides.phases_optional && !written.is_empty() {
                        self.error(
                            root,
                            format!(
                                "no phases to run: the scenario has `profiles` but no `phases`; choose one with --profile ({}), or name one in `default_profile:`",
                                written.join(", ")
                            ),
                        );
                    }
                    (None, Vec::new())
                }
            },
        };
        if let Some(total) = self.overrides.scale_to {
            if !chosen.is_empty() {
                if let Err(message) = scale_phases(&mut chosen, total) {
                    let mark = at.map_or(root.mark, |s| s.mark);
                    self.error_at(mark, "--scale-to", message);
                }
            }
        }
        (profile, chosen)
    }

    fn unknown_profile(&self, name: &str, written: &[String], source: &str) -> String {
        let mut known: Vec<&str> = written.iter().map(String::as_str).collect();
        let mut m = format!(
            "unknown profile `{name}`{source}: expected one of {}, or `{CAPACITY_PROFILE}` (the capacity search)",
            quoted_list(&known)
        );
        known.push(CAPACITY_PROFILE);
        if let Some(s) = did_you_mean(name, known.iter().copied()) {
            m.push_str(&format!("; did you mean `{s}`?"));
        }
        m
    }

    /// The `capacity:` settings, each checked.
    pub(super) fn capacity(&mut self, doc: &Spanned<CapacityDoc>) -> SearchSpec {
        let d = &doc.value;
        let above_zero = |b: &mut Self, v: &Spanned<f64>, what: &str| {
            if v.value.is_finite() && v.value > 0.0 {
                Some(v.value)
            } else {
                b.error(
                    &v.span,
                    format!("expected {what} above 0, found {}", v.value),
                );
                None
            }
        };
        let start = d.start.as_ref().and_then(|v| self.rate(v));
        let start = start.filter(|r| *r > 0.0).or_else(|| {
            if let Some(v) = d.start.as_ref().filter(|v| v.value == 0.0) {
                self.error(
                    &v.span,
                    "the search cannot start at 0: expected a rate above 0",
                );
            }
            None
        });
        let growth = match (&d.factor, &d.step) {
            (Some(f), Some(s)) => {
                let later = if f.span.mark > s.span.mark {
                    &f.span
                } else {
                    &s.span
                };
                self.error(
                    later,
                    "the rate climbs either by a `factor` or by a `step`, not both: remove one",
                );
                None
            }
            (Some(f), None) => {
                if f.value.is_finite() && f.value > 1.0 {
                    Some(Growth::Factor(f.value))
                } else {
                    self.error(
                        &f.span,
                        format!(
                            "expected a factor above 1 (e.g. 1.5: each step 50% above the last), found {}",
                            f.value
                        ),
                    );
                    None
                }
            }
            (None, Some(s)) => above_zero(self, s, "a rate step").map(Growth::Add),
            (None, None) => None,
        };
        let step_duration = d
            .step_duration
            .as_ref()
            .and_then(|s| self.duration(s, false));
        let max_rate = d
            .max_rate
            .as_ref()
            .and_then(|v| self.rate(v))
            .filter(|r| *r > 0.0);
        let refine = d
            .refine
            .as_ref()
            .and_then(|r| self.int_in(r, 0, MAX_REFINE))
            .map(|r| r as u32);
        let max_vus = d
            .max_vus
            .as_ref()
            .and_then(|m| self.int_in(m, 1, MAX_MAX_VUS));
        let pause = d.pause.as_ref().and_then(|p| self.duration(p, true));
        if let (Some(s), Some(m)) = (start, max_rate) {
            if m < s {
                if let Some(v) = &d.max_rate {
                    self.error(
                        &v.span,
                        format!("`max_rate` ({m}) is below `start` ({s}): the search would have nowhere to climb"),
                    );
                }
            }
        }
        SearchSpec {
            start,
            growth,
            step_duration,
            max_rate,
            refine,
            max_vus,
            pause,
        }
    }
}

/// The name of the phase the command line gives (k6 calls its one scenario
/// `default` too).
pub const COMMAND_LINE_PHASE: &str = "default";

/// The one phase of `--vus`/`--rate` with `--duration`/`--iterations`, or the
/// flag at fault and why.
pub(crate) fn command_line_phase(
    load: &LoadOverride,
    arrivals: Option<Arrivals>,
) -> Result<Phase, (&'static str, String)> {
    if let Some(vus) = load.vus {
        if !(1..=MAX_VUS as u64).contains(&vus) {
            return Err((
                "--vus",
                format!("expected from 1 to {MAX_VUS} VUs, found {vus}"),
            ));
        }
    }
    if let Some(n) = load.iterations {
        if !(1..=MAX_ITERATIONS as u64).contains(&n) {
            return Err((
                "--iterations",
                format!("expected from 1 to {MAX_ITERATIONS} iterations, found {n}"),
            ));
        }
    }
    if let Some(d) = load.duration {
        if d.is_zero() {
            return Err(("--duration", "expected a duration above zero".into()));
        }
    }
    let pacing = match (load.vus, load.rate) {
        (Some(_), Some(_)) => {
            return Err((
                "--rate",
                "give --vus (closed model: VUs looping) or --rate (open model: iterations started per second), not both".into(),
            ))
        }
        (None, Some(rate)) => {
            if !(rate.is_finite() && rate > 0.0 && rate <= MAX_RATE) {
                return Err((
                    "--rate",
                    format!("expected a rate above 0 and at most {MAX_RATE} iterations per second, found {rate}"),
                ));
            }
            Pacing::Open {
                rate,
                ramp_to: None,
                max_vus: DEFAULT_MAX_VUS,
                arrivals: arrivals.unwrap_or_default(),
            }
        }
        (vus, None) => {
            if vus.is_none() && load.iterations.is_none() {
                return Err((
                    "--duration",
                    "--duration gives the one phase that replaces the scenario's: say its load too with --vus N or --rate R (to stretch or shrink the scenario's own phases, use --scale-to)".into(),
                ));
            }
            Pacing::Closed {
                vus: vus.unwrap_or(1),
            }
        }
    };
    let stop = match (&pacing, load.duration, load.iterations) {
        (Pacing::Open { .. }, _, Some(_)) => {
            return Err((
                "--iterations",
                "--iterations goes with --vus (closed model); an open-model run (--rate) lasts its --duration".into(),
            ))
        }
        (Pacing::Open { .. }, Some(d), None) => Stop::Duration(d),
        (pacing, None, None) => {
            let flag = match pacing {
                Pacing::Open { .. } => "--rate",
                Pacing::Closed { .. } => "--vus",
            };
            return Err((
                flag,
                "say how long the load lasts: --duration D and/or --iterations N".into(),
            ))
        }
        (_, Some(d), None) => Stop::Duration(d),
        (_, d, Some(total)) => Stop::Iterations {
            total,
            max_duration: d,
        },
    };
    Ok(Phase {
        name: COMMAND_LINE_PHASE.into(),
        pacing,
        stop,
    })
}

/// Scales the phases that have a duration so that together they last `total`;
/// phases ended by a number of iterations keep their count and their cap.
pub(crate) fn scale_phases(phases: &mut [Phase], total: Duration) -> Result<(), String> {
    let timed: Duration = phases
        .iter()
        .filter_map(|p| match p.stop {
            Stop::Duration(d) => Some(d),
            Stop::Iterations { .. } => None,
        })
        .sum();
    if timed.is_zero() {
        return Err(
            "no phase has a duration to scale (phases that run a number of `iterations` are left as they are)"
                .into(),
        );
    }
    if total.is_zero() {
        return Err("expected a duration above zero".into());
    }
    let factor = total.as_secs_f64() / timed.as_secs_f64();
    for p in phases {
        if let Stop::Duration(d) = &mut p.stop {
            let ms = (d.as_secs_f64() * factor * 1000.0).round().max(1.0);
            *d = Duration::from_millis(ms as u64);
        }
    }
    Ok(())
}

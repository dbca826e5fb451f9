//! Loading a scenario for a subcommand (errors printed, exit code 2) and
//! `loadline validate`'s description of what it would run.

use std::path::Path;
use std::process::ExitCode;

use loadline_config::{ConfigErrors, LoadOverride, Loaded, Overrides};
use loadline_core::duration::format_duration;
use loadline_core::plan::{Pacing, Phase, Plan};

use crate::args::ScenarioArgs;
use crate::EXIT_INVALID;

impl ScenarioArgs {
    /// The overrides these flags ask for: everything the command line changes
    /// in a scenario, in one place (the config crate applies them over the file).
    pub fn overrides(&self, phases_optional: bool) -> Overrides {
        Overrides {
            profile: self.profile.clone(),
            scale_to: self.scale_to,
            load: self.load(),
            target: self.target.clone(),
            env: self.env.clone(),
            arrivals: self.arrivals,
            thresholds: self.thresholds.clone(),
            insecure: self.insecure,
            dump: self.http_debug.unwrap_or_default(),
            phases_optional,
        }
    }

    /// The one phase of `--vus`, `--rate`, `--duration` and `--iterations`,
    /// when any is given.
    pub fn load(&self) -> Option<LoadOverride> {
        let load = LoadOverride {
            vus: self.vus,
            rate: self.rate,
            duration: self.duration,
            iterations: self.iterations,
        };
        (load != LoadOverride::default()).then_some(load)
    }
}

/// Loads a scenario file, printing its errors (exit 2) or warnings.
pub fn load(file: &Path, overrides: &Overrides) -> Result<Loaded, ExitCode> {
    let result = loadline_config::load_file_with(file, overrides);
    report(&file.display().to_string(), result)
}

/// Prints the errors of a load (exit 2) or its warnings.
pub fn report(source: &str, result: Result<Loaded, ConfigErrors>) -> Result<Loaded, ExitCode> {
    match result {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("warning: {w}");
            }
            Ok(loaded)
        }
        Err(errors) => {
            for e in &errors.errors {
                eprintln!("error: {e}");
            }
            let n = errors.errors.len();
            eprintln!(
                "{source}: {n} error{} found; nothing was run",
                if n == 1 { "" } else { "s" }
            );
            Err(ExitCode::from(EXIT_INVALID))
        }
    }
}

/// `loadline validate`.
pub fn validate(file: &Path, args: &ScenarioArgs) -> ExitCode {
    if args.profile.as_deref() == Some(loadline_config::CAPACITY_PROFILE) {
        let args = ScenarioArgs {
            profile: None,
            ..args.clone()
        };
        return validate(file, &args);
    }
    let loaded = match load(file, &args.overrides(args.profile.is_none())) {
        Ok(l) => l,
        Err(code) => return code,
    };
    println!("{}: valid", file.display());
    print!("{}", describe(&loaded));
    ExitCode::SUCCESS
}

/// A short description of what a loaded scenario will do.
pub fn describe(loaded: &Loaded) -> String {
    let plan = &loaded.plan;
    let mut o = String::new();
    let from = match &loaded.profile {
        Some(p) => format!(" (profile {p})"),
        None => String::new(),
    };
    if !plan.scenarios.is_empty() {
        o.push_str(&format!(
            "  scenarios ({}), at once:\n",
            plan.scenarios.len()
        ));
        for sc in &plan.scenarios {
            let after = if sc.start_after.is_zero() {
                String::new()
            } else {
                format!(", after {}", human(sc.start_after))
            };
            let flows: Vec<&str> = plan.flows[sc.flows.clone()]
                .iter()
                .map(|f| f.name.as_str())
                .collect();
            o.push_str(&format!(
                "    {}{after} (flows: {}):\n",
                sc.name,
                flows.join(", ")
            ));
            for p in &plan.phases[sc.phases.clone()] {
                o.push_str(&format!("      {}: {}\n", p.name, phase_text(p)));
            }
        }
    } else if plan.phases.is_empty() {
        o.push_str("  phases: none without --profile\n");
    } else {
        o.push_str(&format!("  phases{from} ({}):\n", plan.phases.len()));
        for p in &plan.phases {
            o.push_str(&format!("    {}: {}\n", p.name, phase_text(p)));
        }
    }
    if !loaded.profiles.is_empty() {
        o.push_str(&format!("  profiles ({}):\n", loaded.profiles.len()));
        for p in &loaded.profiles {
            let length = p
                .planned_duration()
                .map(human)
                .unwrap_or_else(|| "until its iterations are done".into());
            let peak = peak_rate(&p.phases)
                .map(|r| format!(", up to {r}/s"))
                .unwrap_or_default();
            o.push_str(&format!(
                "    {}: {} phase{}, {length}{peak}\n",
                p.name,
                p.phases.len(),
                if p.phases.len() == 1 { "" } else { "s" }
            ));
        }
    }
    o.push_str(&plan_parts(plan));
    for protocol in &plan.protocols {
        for line in protocol.describe() {
            o.push_str(&format!("  {line}\n"));
        }
    }
    o
}

fn plan_parts(plan: &Plan) -> String {
    let mut o = String::new();
    o.push_str(&format!("  flows ({}):\n", plan.flows.len()));
    for f in &plan.flows {
        o.push_str(&format!("    {} (weight {})\n", f.name, f.weight));
    }
    o.push_str(&format!("  metric groups ({}):\n", plan.groups.len()));
    for g in &plan.groups {
        if g.is_request() {
            o.push_str(&format!("    {}\n", g.name));
        } else {
            o.push_str(&format!("    {} ({})\n", g.name, g.kind));
        }
    }
    o.push_str(&format!("  thresholds: {}\n", plan.thresholds.len()));
    o
}

/// How a phase paces and ends, for people.
pub fn phase_text(p: &Phase) -> String {
    p.describe()
}

/// A duration in the largest units that fit: `25s`, `1m35s`, `2h1m`.
fn human(d: std::time::Duration) -> String {
    let s = d.as_secs();
    if s < 60 || d.subsec_millis() != 0 && s < 600 {
        return format_duration(d);
    }
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    match (h, m, s) {
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, _) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// The highest open-model arrival rate of some phases.
pub fn peak_rate(phases: &[Phase]) -> Option<f64> {
    phases
        .iter()
        .filter_map(|p| match p.pacing {
            Pacing::Open { rate, ramp_to, .. } => Some(ramp_to.map_or(rate, |r| r.max(rate))),
            Pacing::Closed { .. } => None,
        })
        .filter(|r| *r > 0.0)
        .reduce(f64::max)
}

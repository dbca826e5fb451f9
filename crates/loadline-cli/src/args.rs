//! The command line as clap parses it. Turning these raw flags into the library's
//! typed options ([`loadline_config::Overrides`], [`SearchSpec`]) happens here too,
//! so every subcommand reads them the same way.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use loadline_core::capacity::{Growth, SearchSpec};

#[derive(Parser, Debug)]
#[command(
    name = "loadline",
    version,
    about = "Load testing for HTTP APIs: scenario files, exact metrics, SLAs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Check a scenario file and describe it, without sending anything.
    Validate {
        /// The scenario file (YAML).
        file: PathBuf,
        #[command(flatten)]
        scenario: ScenarioArgs,
    },
    /// Run a scenario file, or load one URL: live progress, then a summary and
    /// the thresholds.
    ///
    /// `loadline run shop.yaml` runs the scenario's phases; `--vus`/`--rate` with
    /// `--duration`/`--iterations` replace them with one phase. `loadline run
    /// http://127.0.0.1:8080/health --rate 50 --duration 10s` loads one URL with
    /// no scenario file (one VU and one request when no load is given).
    Run {
        /// The scenario file (YAML), or an http:// or https:// URL.
        #[arg(value_name = "FILE|URL")]
        file: PathBuf,
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[command(flatten)]
        request: RequestArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Search for the highest arrival rate at which every threshold holds.
    ///
    /// Runs the scenario's flows in steps of rising open-model arrival rate, each
    /// judged on its own figures, stops at the first step that fails, then narrows
    /// down between the last passing and the first failing rate. Exit code 0 when
    /// a passing rate was found, 3 when even the start rate fails.
    Capacity {
        /// The scenario file (YAML); it needs thresholds.
        file: PathBuf,
        /// Start the search at this profile's highest arrival rate (its phases
        /// are not run).
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Send the load to this base URL instead of the scenario's `target`.
        #[arg(long, value_name = "URL")]
        target: Option<String>,
        #[command(flatten)]
        search: SearchArgs,
        #[command(flatten)]
        output: OutputArgs,
    },
    /// Start the embedded demo shop and run the bundled load-testing strategy
    /// (tests/load/shop.yaml) against it.
    #[cfg(feature = "demo")]
    Demo(DemoArgs),
    /// Print the JSON Schema of the scenario format (for editor autocompletion).
    Schema,
}

/// What changes the scenario's load. Every flag wins over the file.
#[derive(Args, Debug, Clone, Default)]
pub struct ScenarioArgs {
    /// Run this profile of the scenario's `profiles:` instead of `phases`
    /// (`capacity`: the capacity search).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Scale the phases so that together they last this long (e.g. 30s, 2m),
    /// keeping their shape and rates.
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub scale_to: Option<Duration>,
    /// Send the load to this base URL instead of the scenario's `target`.
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,
    /// Closed model: this many VUs, each looping; replaces the phases with one.
    #[arg(long, value_name = "N", help_heading = "Load (replaces the phases)")]
    pub vus: Option<u64>,
    /// Open model: this many iterations started per second; replaces the
    /// phases with one.
    #[arg(
        long,
        value_name = "R",
        conflicts_with = "vus",
        help_heading = "Load (replaces the phases)"
    )]
    pub rate: Option<f64>,
    /// How long the one phase lasts (with --vus or --rate).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration, help_heading = "Load (replaces the phases)")]
    pub duration: Option<Duration>,
    /// The iterations the VUs share out (one VU without --vus); with
    /// --duration too, at most that long.
    #[arg(long, value_name = "N", help_heading = "Load (replaces the phases)")]
    pub iterations: Option<u64>,
    /// How open-model phases space their arrivals: uniform (evenly) or poisson
    /// (exponential gaps at the planned mean rate; reproducible with --seed).
    #[arg(long, value_name = "KIND", value_parser = parse_arrivals)]
    pub arrivals: Option<loadline_config::Arrivals>,
    /// A value for `{{ $env.KEY }}`, over the process environment; may be
    /// given more than once.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// A threshold added to the scenario's, as a scenario writes it:
    /// 'latency: p95 < 200ms', 'errors: rate < 1%'; may be given more than once.
    #[arg(long = "threshold", value_name = "METRIC: CONDITION")]
    pub thresholds: Vec<String>,
    /// Accept any TLS certificate (self-signed, expired, another name), over
    /// the scenario's `defaults: { insecure }`.
    #[arg(long)]
    pub insecure: bool,
    /// Print each HTTP request and response head on stderr (credentials as
    /// ***); --http-debug=full adds the bodies, cut at 8 KiB.
    #[arg(
        long,
        value_name = "full",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "heads",
        value_parser = parse_dump
    )]
    pub http_debug: Option<loadline_config::Dump>,
}

/// The request of `loadline run URL`.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Request (with a URL)")]
pub struct RequestArgs {
    /// The method: GET (the default), POST, PUT, PATCH, DELETE or HEAD.
    #[arg(short = 'm', long, value_name = "METHOD")]
    pub method: Option<String>,
    /// A request header, 'Name: value'; may be given more than once.
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// The request body, or @FILE to send a file's contents.
    #[arg(short = 'b', long, value_name = "BODY|@FILE")]
    pub body: Option<String>,
}

impl RequestArgs {
    /// Whether any of these flags was given.
    pub fn any(&self) -> bool {
        self.method.is_some() || !self.headers.is_empty() || self.body.is_some()
    }
}

fn parse_arrivals(s: &str) -> Result<loadline_config::Arrivals, String> {
    use loadline_config::Arrivals;
    match s {
        "uniform" => Ok(Arrivals::Uniform),
        "poisson" => Ok(Arrivals::Poisson),
        other => Err(format!("expected uniform or poisson, found `{other}`")),
    }
}

fn parse_dump(s: &str) -> Result<loadline_config::Dump, String> {
    use loadline_config::Dump;
    match s {
        "heads" => Ok(Dump::Heads),
        "full" => Ok(Dump::Full),
        other => Err(format!(
            "expected --http-debug (heads) or --http-debug=full, found `{other}`"
        )),
    }
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, found `{s}`"))?;
    let valid = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{key}` is not a variable name: expected letters, digits and `_`, not starting with a digit"
        ));
    }
    Ok((key.to_string(), value.to_string()))
}

fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("expected 'Name: value', found `{s}`"))?;
    let name = name.trim();
    // A header name is an RFC 9110 token.
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    if name.is_empty() || !name.chars().all(token) {
        return Err(format!(
            "`{name}` is not a header name: expected letters, digits and -!#$%&'*+.^_`|~"
        ));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// `--tag key=value`: a name Prometheus accepts as a label, and any value.
fn parse_tag(s: &str) -> Result<(String, String), String> {
    let (key, value) = s
        .split_once('=')
        .ok_or_else(|| format!("expected KEY=VALUE, found `{s}`"))?;
    loadline_report::tags::check_name(key)?;
    Ok((key.to_string(), value.to_string()))
}

/// Where the results go and how much is shown.
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Also write the summary as JSON to this file.
    #[arg(long, value_name = "PATH")]
    pub summary_json: Option<PathBuf>,
    /// No live progress, only the summary.
    #[arg(long, short)]
    pub quiet: bool,
    /// Seed for the random choices (flows, think times, $randint…, Poisson
    /// arrivals), for repeatable runs.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Stream the time series (one point a second) while running: `jsonl=PATH`
    /// or `csv=PATH`; may be given more than once.
    #[arg(long = "out", value_name = "FORMAT=PATH", value_parser = parse_stream_out)]
    pub out: Vec<StreamOut>,
    /// Write a self-contained HTML report (charts and tables) to this file.
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Write the thresholds as JUnit XML (one test case each) to this file.
    #[arg(long, value_name = "PATH")]
    pub junit: Option<PathBuf>,
    /// Write a compact Markdown summary (for a CI job's page) to this file.
    #[arg(long, value_name = "PATH")]
    pub markdown: Option<PathBuf>,
    /// Serve the run's live metrics for Prometheus at this address, e.g.
    /// 127.0.0.1:9464 (GET /metrics).
    #[arg(long, value_name = "ADDR")]
    pub prometheus_listen: Option<std::net::SocketAddr>,
    /// Start no monitors (neither the scenario's `monitor:` nor the default host,
    /// target-process and loadline ones).
    #[arg(long)]
    pub no_monitor: bool,
    /// A tag for this run, in the JSON summary, every streamed point and the
    /// Prometheus labels (e.g. env=staging); may be given more than once.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    pub tags: Vec<(String, String)>,
}

/// A streamed output: its format and file.
#[derive(Debug, Clone)]
pub struct StreamOut {
    pub format: loadline_report::stream::StreamFormat,
    pub path: PathBuf,
}

fn parse_stream_out(s: &str) -> Result<StreamOut, String> {
    use loadline_report::stream::StreamFormat;
    let (kind, path) = s.split_once('=').ok_or_else(|| {
        format!("expected FORMAT=PATH (jsonl=run.jsonl or csv=run.csv), found `{s}`")
    })?;
    let format = match kind {
        "jsonl" | "json" => StreamFormat::Jsonl,
        "csv" => StreamFormat::Csv,
        other => return Err(format!("unknown format `{other}`: expected jsonl or csv")),
    };
    if path.is_empty() {
        return Err("expected a file after `=`".into());
    }
    Ok(StreamOut {
        format,
        path: PathBuf::from(path),
    })
}

/// How the capacity search steps the rate; each flag overrides the scenario's
/// `capacity:` setting of the same name.
#[derive(Args, Debug, Clone, Default)]
pub struct SearchArgs {
    /// The first step's arrival rate, iterations per second (default: the highest
    /// arrival_rate of the phases or profile chosen).
    #[arg(long, value_name = "RATE")]
    pub start: Option<f64>,
    /// Each step's rate is the last one's times this (default 1.5).
    #[arg(long, value_name = "FACTOR", conflicts_with = "step")]
    pub step_factor: Option<f64>,
    /// Each step's rate is the last one's plus this, instead of a factor.
    #[arg(long, value_name = "RATE")]
    pub step: Option<f64>,
    /// How long each step is held (default 10s).
    #[arg(long, value_name = "DURATION", value_parser = positive_duration)]
    pub step_duration: Option<Duration>,
    /// Never step above this rate (default 10000).
    #[arg(long, value_name = "RATE")]
    pub max_rate: Option<f64>,
    /// Bisection steps between the last passing and the first failing rate
    /// (default 3; 0 to skip).
    #[arg(long, value_name = "N")]
    pub refine: Option<u32>,
    /// At most this many iterations at once in a step (default 10000).
    #[arg(long, value_name = "N")]
    pub max_vus: Option<u64>,
    /// A pause between steps (default 0s).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub pause: Option<Duration>,
}

impl SearchArgs {
    /// The settings the flags give (`None` where not given).
    pub fn spec(&self) -> SearchSpec {
        SearchSpec {
            start: self.start,
            growth: match (self.step_factor, self.step) {
                (Some(f), _) => Some(Growth::Factor(f)),
                (None, Some(s)) => Some(Growth::Add(s)),
                (None, None) => None,
            },
            step_duration: self.step_duration,
            max_rate: self.max_rate,
            refine: self.refine,
            max_vus: self.max_vus,
            pause: self.pause,
        }
    }
}

/// `loadline demo`.
#[cfg(feature = "demo")]
#[derive(Args, Debug, Clone, Default)]
pub struct DemoArgs {
    /// Only start the shop and print its URL, until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// With --serve: listen on this port of 127.0.0.1 (default: a free one).
    #[arg(long, requires = "serve")]
    pub port: Option<u16>,
    /// The shop's database: PostgreSQL (postgres://…) instead of SQLite in a temporary folder.
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// The shop's cache: Redis (redis://…) instead of in-process.
    #[arg(long, value_name = "URL")]
    pub redis_url: Option<String>,
    /// The shop's event queue: NATS (nats://…) instead of in-process.
    #[arg(long, value_name = "URL")]
    pub nats_url: Option<String>,
    /// How long the shop caches a product (default 30s; Redis keeps whole
    /// seconds).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub cache_ttl: Option<Duration>,
    /// Fault knob: the shop sleeps this long before every API request (e.g. 20ms).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub added_latency: Option<Duration>,
    /// Fault knob: this fraction (0 to 1) of API requests answer 500.
    #[arg(long, value_name = "FRACTION")]
    pub error_rate: Option<f64>,
    /// Fault knob: catalog queries take this much longer (e.g. 50ms).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub slow_query: Option<Duration>,
    /// Capacity knob: at most this many API requests are served at once…
    #[arg(long, value_name = "N")]
    pub capacity_permits: Option<u32>,
    /// …each holding its permit this long (default 50ms): the shop then serves at
    /// most permits / service time requests per second.
    #[arg(long, value_name = "DURATION", value_parser = duration, requires = "capacity_permits")]
    pub capacity_service_time: Option<Duration>,
    /// With --profile capacity: search the shop's own limits instead of a
    /// capacity limiter of known capacity (the default there: 8 permits x 20ms =
    /// 400 requests/s, so the answer can be checked).
    #[arg(long, conflicts_with = "capacity_permits")]
    pub no_capacity_limit: bool,
    #[command(flatten)]
    pub scenario: DemoScenarioArgs,
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// The scenario flags that make sense for the bundled strategy.
#[cfg(feature = "demo")]
#[derive(Args, Debug, Clone, Default)]
pub struct DemoScenarioArgs {
    /// The strategy's profile to run: normal (the default), peak, stress, spike,
    /// soak, or capacity (the capacity search).
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Scale the profile's phases so that together they last this long
    /// (`--duration` is another name for it here).
    #[arg(long, visible_alias = "duration", value_name = "DURATION", value_parser = positive_duration)]
    pub scale_to: Option<Duration>,
}

fn duration(s: &str) -> Result<Duration, String> {
    loadline_core::duration::parse_duration(s)
}

fn positive_duration(s: &str) -> Result<Duration, String> {
    match duration(s)? {
        d if d.is_zero() => Err("expected a duration above zero".into()),
        d => Ok(d),
    }
}

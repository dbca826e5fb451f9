//! Metrics: HDR histograms and counters per metric group, recorded into per-thread
//! shards and merged once a second.
//!
//! A recording takes the calling thread's own shard. The shard sits behind a mutex
//! that only the aggregator's once-a-second [`MetricsHub::collect`] ever contends
//! for, so recording costs an uncontended lock, a histogram increment and a few
//! counter additions — no allocation, no shared cache line between threads.

use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::cache::{CacheCounts, CacheOutcome, Warmup};
use crate::events::{EventCount, EventCounts};

/// Index of a metric group in [`crate::plan::Plan::groups`].
pub type GroupId = usize;

/// Highest recordable latency, in microseconds (one hour); longer values saturate.
const MAX_MICROS: u64 = 3_600_000_000;

/// Why a request got no usable response, for the failures every protocol can
/// meet. Protocols declare classes of their own (a database's deadlock) at build
/// time; both are recorded as an [`ErrorClass`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// Connection refused or unreachable.
    Connect,
    /// Name resolution failed.
    Dns,
    /// No complete response within the step's timeout.
    Timeout,
    /// The peer reset or closed the connection mid-exchange.
    Reset,
    /// The TLS handshake or session failed.
    Tls,
    /// The response was not valid for the protocol.
    Protocol,
    /// A capture found nothing to capture.
    Capture,
    /// Anything else.
    Other,
    /// In flight when the graceful stop ended and its iteration was cut off.
    Interrupted,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::Connect,
        ErrorKind::Dns,
        ErrorKind::Timeout,
        ErrorKind::Reset,
        ErrorKind::Tls,
        ErrorKind::Protocol,
        ErrorKind::Capture,
        ErrorKind::Other,
        ErrorKind::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Dns => "dns",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Reset => "reset",
            ErrorKind::Tls => "tls",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Capture => "capture",
            ErrorKind::Other => "other",
            ErrorKind::Interrupted => "interrupted",
        }
    }
}

/// An error class as counted: an index into the plan's error classes
/// ([`crate::plan::Plan::error_classes`]), whose first entries are the
/// [`ErrorKind`]s in their order, followed by the classes protocols declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorClass(u16);

impl ErrorClass {
    /// The class at `index` of the plan's list.
    pub const fn from_index(index: u16) -> Self {
        Self(index)
    }

    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

impl From<ErrorKind> for ErrorClass {
    fn from(kind: ErrorKind) -> Self {
        Self(kind as u16)
    }
}

/// The names of the generic error classes, in [`ErrorKind::ALL`]'s order: the
/// start of every plan's list of error classes.
pub fn generic_error_classes() -> Vec<String> {
    ErrorKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect()
}

/// An extra per-group counter a protocol declared (such as `rows`): an index into
/// [`crate::plan::Plan::counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CounterId(u16);

impl CounterId {
    pub const fn from_index(index: u16) -> Self {
        Self(index)
    }

    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// A check a protocol declared (such as `json $.state equals "confirmed"`): an
/// index into [`crate::plan::Plan::checks`], which names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckId(u16);

impl CheckId {
    pub const fn from_index(index: u16) -> Self {
        Self(index)
    }

    pub const fn index(self) -> usize {
        self.0 as usize
    }
}

/// How often one check failed in a metric group, and a value it failed on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckTally {
    pub failed: u64,
    /// The actual value of one failure (the first one recorded), cut at
    /// [`MAX_ACTUAL`] bytes.
    pub actual: Option<Box<str>>,
}

/// At most this many bytes of a failing check's actual value are kept.
pub const MAX_ACTUAL: usize = 120;

/// How many of each thing a run's figures hold: sizes every [`Stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    pub groups: usize,
    pub phases: usize,
    /// Error classes, generic and declared.
    pub error_classes: usize,
    /// Extra counters per group.
    pub counters: usize,
    /// Scenarios running at once, each with its own current phase (at least one).
    pub scenarios: usize,
}

impl Shape {
    /// Groups and phases with the generic error classes and no extra counters.
    pub fn new(groups: usize, phases: usize) -> Self {
        Self {
            groups,
            phases,
            error_classes: ErrorKind::ALL.len(),
            counters: 0,
            scenarios: 1,
        }
    }
}

/// One finished request (or query, or publish), as a protocol reports it.
#[derive(Debug, Clone, Copy)]
pub struct RequestSample {
    pub group: GroupId,
    /// From sending the request to the end of the response.
    pub latency: Duration,
    /// The response status, when a response came.
    pub status: Option<u16>,
    /// Whether it counts as failed (no response, or a failure status).
    pub failed: bool,
    pub error: Option<ErrorClass>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// How a cache answered it, where the protocol classifies that.
    pub cache: CacheOutcome,
}

impl RequestSample {
    /// The sample of a request that was never sent (no connection, a URL that
    /// could not be rendered): failed, with no latency and no bytes.
    pub fn unsent(group: GroupId, error: impl Into<ErrorClass>) -> Self {
        Self {
            group,
            latency: Duration::ZERO,
            status: None,
            failed: true,
            error: Some(error.into()),
            bytes_sent: 0,
            bytes_received: 0,
            cache: CacheOutcome::None,
        }
    }
}

/// A request on its way. Dropped before [`InFlight::done`] — its iteration was
/// cut off at the end of the graceful stop, or by a second Ctrl-C — it is
/// recorded as a failed request of its group with error `interrupted` and the
/// time it had taken, so that loadline's request count still equals the
/// target's.
#[derive(Debug)]
#[must_use = "call `done` once the request's own sample is recorded"]
pub struct InFlight<'h> {
    hub: &'h MetricsHub,
    group: GroupId,
    started: std::time::Instant,
    bytes_sent: u64,
    armed: bool,
}

impl InFlight<'_> {
    /// The request ended and recorded its own sample.
    pub fn done(mut self) {
        self.armed = false;
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.hub.record_request(&RequestSample {
                group: self.group,
                latency: self.started.elapsed(),
                status: None,
                failed: true,
                error: Some(ErrorKind::Interrupted.into()),
                bytes_sent: self.bytes_sent,
                bytes_received: 0,
                cache: CacheOutcome::None,
            });
        }
    }
}

pub(crate) fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; a failure here would be a
    // programming error caught by every test.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds")
}

/// `text` cut at a character boundary at most `max` bytes in, with `…` when cut.
fn cut_at(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, MAX_MICROS)
}

/// The figures of one metric group.
#[derive(Debug, Clone)]
pub struct GroupStats {
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    pub requests: u64,
    pub failed: u64,
    /// Response status counts, in first-seen order.
    pub status: Vec<(u16, u64)>,
    /// Error counts, indexed by [`ErrorClass`].
    pub errors: Vec<u64>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub checks_passed: u64,
    pub checks_failed: u64,
    /// Failures per check, indexed by [`CheckId`] (grown on first failure).
    pub check_failures: Vec<CheckTally>,
    /// The protocols' extra counters, indexed by [`CounterId`].
    pub counters: Vec<u64>,
    /// How caches answered (see [`crate::cache`]).
    pub cache: CacheCounts,
    /// The counts of an event destination (see [`crate::events`]).
    pub events: EventCounts,
}

impl GroupStats {
    pub(crate) fn new(shape: &Shape) -> Self {
        Self {
            latency: new_histogram(),
            requests: 0,
            failed: 0,
            status: Vec::new(),
            errors: vec![0; shape.error_classes],
            bytes_sent: 0,
            bytes_received: 0,
            checks_passed: 0,
            checks_failed: 0,
            check_failures: Vec::new(),
            counters: vec![0; shape.counters],
            cache: CacheCounts::default(),
            events: EventCounts::default(),
        }
    }

    fn record(&mut self, s: &RequestSample) {
        self.requests += 1;
        if s.failed {
            self.failed += 1;
        }
        let micros = micros(s.latency);
        self.latency.saturating_record(micros);
        if s.cache != CacheOutcome::None {
            self.cache.record(s.cache, micros);
        }
        if let Some(code) = s.status {
            self.add_status(code, 1);
        }
        if let Some(e) = s.error {
            self.add_error(e, 1);
        }
        self.bytes_sent += s.bytes_sent;
        self.bytes_received += s.bytes_received;
    }

    fn add_error(&mut self, class: ErrorClass, n: u64) {
        let i = class.index();
        if i >= self.errors.len() {
            self.errors.resize(i + 1, 0);
        }
        self.errors[i] += n;
    }

    fn add_counter(&mut self, counter: CounterId, n: u64) {
        let i = counter.index();
        if i >= self.counters.len() {
            self.counters.resize(i + 1, 0);
        }
        self.counters[i] += n;
    }

    fn add_check_failure(&mut self, check: CheckId, n: u64, actual: Option<&str>) {
        let i = check.index();
        if i >= self.check_failures.len() {
            self.check_failures.resize(i + 1, CheckTally::default());
        }
        let tally = &mut self.check_failures[i];
        tally.failed += n;
        if tally.actual.is_none() {
            tally.actual = actual.map(|a| cut_at(a, MAX_ACTUAL).into());
        }
    }

    /// The checks that failed, with their tallies.
    pub fn failed_checks(&self) -> impl Iterator<Item = (CheckId, &CheckTally)> + '_ {
        self.check_failures
            .iter()
            .enumerate()
            .filter(|(_, t)| t.failed > 0)
            .map(|(i, t)| (CheckId::from_index(i as u16), t))
    }

    fn add_status(&mut self, code: u16, n: u64) {
        match self.status.iter_mut().find(|(c, _)| *c == code) {
            Some((_, count)) => *count += n,
            None => self.status.push((code, n)),
        }
    }

    /// Adds another group's figures to these.
    pub fn merge(&mut self, o: &GroupStats) {
        // Both histograms share the same bounds, so adding cannot fail.
        let _ = self.latency.add(&o.latency);
        self.requests += o.requests;
        self.failed += o.failed;
        for &(code, n) in &o.status {
            self.add_status(code, n);
        }
        for (i, n) in o.errors.iter().enumerate() {
            if *n > 0 {
                self.add_error(ErrorClass::from_index(i as u16), *n);
            }
        }
        self.bytes_sent += o.bytes_sent;
        self.bytes_received += o.bytes_received;
        self.checks_passed += o.checks_passed;
        self.checks_failed += o.checks_failed;
        for (check, tally) in o.failed_checks() {
            self.add_check_failure(check, tally.failed, tally.actual.as_deref());
        }
        for (i, n) in o.counters.iter().enumerate() {
            if *n > 0 {
                self.add_counter(CounterId::from_index(i as u16), *n);
            }
        }
        self.cache.merge(&o.cache);
        self.events.merge(&o.events);
    }

    /// Error counts by class, leaving out zeros.
    pub fn error_counts(&self) -> impl Iterator<Item = (ErrorClass, u64)> + '_ {
        self.errors
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (ErrorClass::from_index(i as u16), *n))
    }

    /// The count of one error class.
    pub fn errors_of(&self, class: impl Into<ErrorClass>) -> u64 {
        self.errors.get(class.into().index()).copied().unwrap_or(0)
    }

    /// The value of one extra counter.
    pub fn counter(&self, counter: CounterId) -> u64 {
        self.counters.get(counter.index()).copied().unwrap_or(0)
    }
}

/// The iteration counts of one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseStats {
    /// Iterations that ran to their end (or gave up on an error).
    pub iterations: u64,
    /// Open-model arrivals not started because `max_vus` iterations were running.
    pub dropped: u64,
    /// Of `dropped`, the arrivals the generator could not start within
    /// [`crate::plan::MAX_LATENESS`] of their planned time.
    pub late: u64,
    /// Iterations cut off at the end of the graceful stop.
    pub interrupted: u64,
}

/// Everything recorded over some span of time: a shard, a second, or the run.
#[derive(Debug, Clone)]
pub struct Stats {
    pub groups: Vec<GroupStats>,
    /// The same figures per phase: `by_phase[phase * groups + group]`, made on
    /// a group's first record in the phase. A request counts in the phase during
    /// which it ended.
    pub by_phase: Vec<Option<Box<GroupStats>>>,
    pub phases: Vec<PhaseStats>,
    /// Open-model schedule lag (actual minus intended start), microseconds.
    pub schedule_lag: Histogram<u64>,
    /// Whole-iteration duration, microseconds.
    pub iteration_duration: Histogram<u64>,
    /// The monitor series read during the span (by series key), a value a tick.
    pub monitors: std::collections::BTreeMap<String, crate::monitor::SeriesStats>,
    /// When the caches' hit ratio first reached the plan's warm level (kept
    /// by the aggregator on the run's total).
    pub cache_warm: Warmup,
}

impl Stats {
    pub fn new(shape: &Shape) -> Self {
        Self {
            groups: (0..shape.groups).map(|_| GroupStats::new(shape)).collect(),
            // A plan built without phases still records (as in one phase).
            by_phase: vec![None; shape.groups * shape.phases.max(1)],
            phases: vec![PhaseStats::default(); shape.phases],
            schedule_lag: new_histogram(),
            iteration_duration: new_histogram(),
            monitors: Default::default(),
            cache_warm: Warmup::default(),
        }
    }

    pub fn merge(&mut self, o: &Stats) {
        for (a, b) in self.groups.iter_mut().zip(o.groups.iter()) {
            a.merge(b);
        }
        let shape = self.shape();
        for (a, b) in self.by_phase.iter_mut().zip(o.by_phase.iter()) {
            if let Some(b) = b {
                a.get_or_insert_with(|| Box::new(GroupStats::new(&shape)))
                    .merge(b);
            }
        }
        for (a, b) in self.phases.iter_mut().zip(o.phases.iter()) {
            a.iterations += b.iterations;
            a.dropped += b.dropped;
            a.late += b.late;
            a.interrupted += b.interrupted;
        }
        let _ = self.schedule_lag.add(&o.schedule_lag);
        let _ = self.iteration_duration.add(&o.iteration_duration);
        for (key, later) in &o.monitors {
            match self.monitors.get_mut(key) {
                Some(m) => m.merge(later),
                None => {
                    self.monitors.insert(key.clone(), *later);
                }
            }
        }
    }

    /// The shape of these figures.
    pub fn shape(&self) -> Shape {
        let first = self.groups.first();
        Shape {
            groups: self.groups.len(),
            phases: self.phases.len(),
            error_classes: first.map_or(ErrorKind::ALL.len(), |g| g.errors.len()),
            counters: first.map_or(0, |g| g.counters.len()),
            scenarios: 1,
        }
    }

    /// All groups merged into one.
    pub fn all_groups(&self) -> GroupStats {
        let mut all = GroupStats::new(&self.shape());
        for g in &self.groups {
            all.merge(g);
        }
        all
    }

    /// The groups of single requests merged into one, leaving out outcome groups
    /// (see [`crate::plan::GroupInfo::is_request`]): the run's request totals.
    pub fn all_requests(&self, infos: &[crate::plan::GroupInfo]) -> GroupStats {
        let mut all = GroupStats::new(&self.shape());
        for (i, g) in self.groups.iter().enumerate() {
            if infos.get(i).is_none_or(|info| info.is_request()) {
                all.merge(g);
            }
        }
        all
    }

    /// The event destinations' groups (see [`crate::events`]) merged into
    /// one, in `phase` or over the whole span.
    pub fn all_events(&self, phase: Option<usize>, infos: &[crate::plan::GroupInfo]) -> GroupStats {
        let mut all = GroupStats::new(&self.shape());
        for (i, _) in infos.iter().enumerate().filter(|(_, g)| g.is_events()) {
            let g = match phase {
                Some(p) => self.in_phase(p, i),
                None => self.groups.get(i),
            };
            if let Some(g) = g {
                all.merge(g);
            }
        }
        all
    }

    /// The cache figures of the groups that met a cache, together (in
    /// `phase`, or over the whole span): groups that never did leave their
    /// unclassified responses out. Outcome groups count too (a cache-aside
    /// lookup is one); no group classifies a lookup twice.
    pub fn caches(&self, phase: Option<usize>) -> CacheCounts {
        let mut all = CacheCounts::default();
        for group in 0..self.groups.len() {
            let g = match phase {
                Some(p) => self.in_phase(p, group),
                None => self.groups.get(group),
            };
            if let Some(g) = g.filter(|g| g.cache.seen()) {
                all.merge(&g.cache);
            }
        }
        all
    }

    /// Adds one tick's monitor values (non-finite ones are left out).
    pub fn add_monitor_values(&mut self, values: &[crate::monitor::MonitorValue]) {
        for v in values.iter().filter(|v| v.value.is_finite()) {
            match self.monitors.get_mut(&v.series) {
                Some(m) => m.add(v.value),
                None => {
                    self.monitors
                        .insert(v.series.clone(), crate::monitor::SeriesStats::new(v.value));
                }
            }
        }
    }

    /// One group's figures in one phase (`None`: it recorded nothing there).
    pub fn in_phase(&self, phase: usize, group: GroupId) -> Option<&GroupStats> {
        self.by_phase
            .get(phase * self.groups.len() + group)
            .and_then(|g| g.as_deref())
    }

    /// Every request of one phase, over the request groups (as
    /// [`Stats::all_requests`]).
    pub fn phase_requests(&self, phase: usize, infos: &[crate::plan::GroupInfo]) -> GroupStats {
        let mut all = GroupStats::new(&self.shape());
        for group in 0..self.groups.len() {
            if infos.get(group).is_none_or(|info| info.is_request()) {
                if let Some(g) = self.in_phase(phase, group) {
                    all.merge(g);
                }
            }
        }
        all
    }

    /// The figures of `group` in the phase now running, made on first use.
    fn phase_group(&mut self, phase: usize, group: GroupId) -> Option<&mut GroupStats> {
        let groups = self.groups.len();
        if group >= groups {
            return None;
        }
        let index = phase * groups + group;
        if self.by_phase.get(index)?.is_none() {
            let fresh = Box::new(GroupStats::new(&self.shape()));
            self.by_phase[index] = Some(fresh);
        }
        self.by_phase.get_mut(index)?.as_deref_mut()
    }

    /// What a shard recorded since the last call, leaving it empty: the
    /// per-phase figures, iterations and the two trends. A shard's own per-group
    /// figures stay as they are (it records per phase only), so a tick allocates
    /// no histogram for a group that recorded nothing.
    fn take_recorded(&mut self) -> Stats {
        let phases = self.phases.len();
        let slots = self.by_phase.len();
        Stats {
            groups: Vec::new(),
            by_phase: std::mem::replace(&mut self.by_phase, vec![None; slots]),
            phases: std::mem::replace(&mut self.phases, vec![PhaseStats::default(); phases]),
            schedule_lag: std::mem::replace(&mut self.schedule_lag, new_histogram()),
            iteration_duration: std::mem::replace(&mut self.iteration_duration, new_histogram()),
            monitors: std::mem::take(&mut self.monitors),
            cache_warm: Warmup::default(),
        }
    }

    /// Adds the per-phase figures into the per-group ones: a shard records a
    /// request once, in its phase, and the run's figures per group are their sum.
    fn fold_phases(&mut self) {
        let groups = self.groups.len();
        if groups == 0 {
            return;
        }
        for (i, g) in self.by_phase.iter().enumerate() {
            if let (Some(g), Some(total)) = (g, self.groups.get_mut(i % groups)) {
                total.merge(g);
            }
        }
    }

    pub fn iterations(&self) -> u64 {
        self.phases.iter().map(|p| p.iterations).sum()
    }

    pub fn dropped(&self) -> u64 {
        self.phases.iter().map(|p| p.dropped).sum()
    }

    /// Of [`Stats::dropped`], the arrivals dropped for lateness.
    pub fn late(&self) -> u64 {
        self.phases.iter().map(|p| p.late).sum()
    }

    pub fn interrupted(&self) -> u64 {
        self.phases.iter().map(|p| p.interrupted).sum()
    }
}

/// How an iteration ended, for the per-phase counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IterationEnd {
    Completed,
    Interrupted,
}

type ShardCell = Arc<Mutex<Stats>>;

thread_local! {
    static SHARD: RefCell<Option<(u64, ShardCell)>> = const { RefCell::new(None) };
}

tokio::task_local! {
    /// The scenario (an index into [`crate::plan::Plan::scenario_list`]) the
    /// current task runs iterations for, when the plan has several: the
    /// executors spawn each iteration's task inside it, and a record counts in
    /// that scenario's current phase.
    pub static SCENARIO: usize;
}

static NEXT_HUB_ID: AtomicU64 = AtomicU64::new(1);

/// The run's metric registry: the shards of every thread that recorded, and the
/// live gauges.
#[derive(Debug)]
pub struct MetricsHub {
    id: u64,
    shape: Shape,
    /// The phase now running in each scenario: what a record of a task of
    /// that scenario (see [`SCENARIO`]) counts in.
    phase: Box<[AtomicUsize]>,
    shards: Mutex<Vec<ShardCell>>,
    /// VUs alive now (closed model) or iterations running now (open model).
    pub active_vus: AtomicI64,
}

fn lock(m: &Mutex<Stats>) -> MutexGuard<'_, Stats> {
    // A panic while holding a shard cannot leave counters half-written in a way
    // that matters more than losing them; keep going with what is there.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MetricsHub {
    pub fn new(shape: Shape) -> Arc<Self> {
        Arc::new(Self {
            id: NEXT_HUB_ID.fetch_add(1, Ordering::Relaxed),
            shape,
            phase: (0..shape.scenarios.max(1))
                .map(|_| AtomicUsize::new(0))
                .collect(),
            shards: Mutex::new(Vec::new()),
            active_vus: AtomicI64::new(0),
        })
    }

    fn with_shard<R>(&self, f: impl FnOnce(&mut Stats) -> R) -> R {
        SHARD.with(|cell| {
            let mut slot = cell.borrow_mut();
            let shard = match slot.as_ref() {
                Some((id, shard)) if *id == self.id => shard.clone(),
                _ => {
                    let shard = Arc::new(Mutex::new(Stats::new(&self.shape)));
                    self.shards
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(shard.clone());
                    *slot = Some((self.id, shard.clone()));
                    shard
                }
            };
            drop(slot);
            let mut guard = lock(&shard);
            f(&mut guard)
        })
    }

    /// Sets the phase that records of `scenario`'s tasks count in from now on.
    pub fn set_phase(&self, scenario: usize, phase: usize) {
        if let Some(slot) = self.phase.get(scenario) {
            slot.store(phase, Ordering::Relaxed);
        }
    }

    /// The phase a record made now, on this task, counts in. With one scenario
    /// that is its phase, read without looking at the task; with several, the
    /// phase of the scenario the task runs for ([`SCENARIO`], the first one
    /// outside any).
    #[inline]
    fn current_phase(&self) -> usize {
        let scenario = match self.phase.len() {
            1 => 0,
            _ => SCENARIO.try_with(|s| *s).unwrap_or(0),
        };
        self.phase
            .get(scenario)
            .map_or(0, |p| p.load(Ordering::Relaxed))
    }

    /// Runs `f` on `group`'s figures in the current phase (once per record:
    /// [`MetricsHub::collect`] adds the phases up into the groups).
    fn on_group(&self, group: GroupId, f: impl FnOnce(&mut GroupStats)) {
        let phase = self.current_phase();
        self.with_shard(|st| {
            if let Some(g) = st.phase_group(phase, group) {
                f(g);
            }
        });
    }

    pub fn record_request(&self, s: &RequestSample) {
        self.on_group(s.group, |g| g.record(s));
    }

    /// Counts a check that passed.
    pub fn check_passed(&self, group: GroupId) {
        self.on_group(group, |g| g.checks_passed += 1);
    }

    /// Counts a failed check, with the actual value it failed on (cut at
    /// [`MAX_ACTUAL`] bytes; the first one recorded is kept).
    pub fn check_failed(&self, group: GroupId, check: CheckId, actual: &str) {
        self.on_group(group, |g| {
            g.checks_failed += 1;
            g.add_check_failure(check, 1, Some(actual));
        });
    }

    /// Counts each cache of a chain's own verdict on one response of `group`
    /// (the response's overall outcome goes in its [`RequestSample`]).
    pub fn record_cache_layers(&self, group: GroupId, layers: &[(&str, CacheOutcome)]) {
        self.on_group(group, |g| {
            for (name, outcome) in layers {
                g.cache.record_layer(name, *outcome);
            }
        });
    }

    /// Adds `n` to a protocol's extra counter of `group` (rows returned by a query).
    pub fn record_count(&self, group: GroupId, counter: CounterId, n: u64) {
        self.on_group(group, |g| g.add_counter(counter, n));
    }

    /// Counts a received message of an event destination's `group`: its size,
    /// and its latency end to end when it carried an envelope (see
    /// [`crate::events`]).
    pub fn record_received(&self, group: GroupId, latency: Option<Duration>, bytes: u64) {
        self.on_group(group, |g| {
            g.events.received += 1;
            g.bytes_received += bytes;
            if let Some(latency) = latency {
                g.latency.saturating_record(micros(latency));
            }
        });
    }

    /// Adds `n` to one of an event destination's counts (`lag` keeps the
    /// highest value instead).
    pub fn record_event(&self, group: GroupId, count: EventCount, n: u64) {
        self.on_group(group, |g| g.events.add(count, n));
    }

    /// Marks a request of `group` started at `started` as on its way (see
    /// [`InFlight`]).
    pub fn in_flight(
        &self,
        group: GroupId,
        started: std::time::Instant,
        bytes_sent: u64,
    ) -> InFlight<'_> {
        InFlight {
            hub: self,
            group,
            started,
            bytes_sent,
            armed: true,
        }
    }

    /// Counts an error that is not tied to one request's response (a failed capture).
    pub fn record_error(&self, group: GroupId, class: impl Into<ErrorClass>) {
        let class = class.into();
        self.on_group(group, |g| g.add_error(class, 1));
    }

    pub fn record_iteration(&self, phase: usize, end: IterationEnd, took: Duration) {
        self.with_shard(|st| {
            if let Some(p) = st.phases.get_mut(phase) {
                match end {
                    IterationEnd::Completed => p.iterations += 1,
                    IterationEnd::Interrupted => p.interrupted += 1,
                }
            }
            if end == IterationEnd::Completed {
                st.iteration_duration.saturating_record(micros(took));
            }
        });
    }

    /// Counts an open-model arrival dropped because it could not start within
    /// [`crate::plan::MAX_LATENESS`] of its planned time (also a drop).
    pub fn record_late(&self, phase: usize) {
        self.with_shard(|st| {
            if let Some(p) = st.phases.get_mut(phase) {
                p.dropped += 1;
                p.late += 1;
            }
        });
    }

    pub fn record_dropped(&self, phase: usize) {
        self.with_shard(|st| {
            if let Some(p) = st.phases.get_mut(phase) {
                p.dropped += 1;
            }
        });
    }

    pub fn record_schedule_lag(&self, lag: Duration) {
        self.with_shard(|st| st.schedule_lag.saturating_record(micros(lag)));
    }

    /// Takes everything recorded since the last call, merged across threads.
    pub fn collect(&self) -> Stats {
        let shards: Vec<ShardCell> = self
            .shards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut out = Stats::new(&self.shape);
        for shard in shards {
            let mut taken = lock(&shard).take_recorded();
            // A phase's figures that only one shard has move over as they are.
            for (a, b) in out.by_phase.iter_mut().zip(taken.by_phase.iter_mut()) {
                if a.is_none() {
                    *a = b.take();
                }
            }
            out.merge(&taken);
        }
        out.fold_phases();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(group: GroupId, ms: u64, status: u16) -> RequestSample {
        RequestSample {
            group,
            latency: Duration::from_millis(ms),
            status: Some(status),
            failed: status >= 400,
            error: None,
            bytes_sent: 10,
            bytes_received: 100,
            cache: crate::cache::CacheOutcome::None,
        }
    }

    #[test]
    fn shards_from_many_threads_merge_exactly() {
        let hub = MetricsHub::new(Shape::new(2, 1));
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let hub = &hub;
                s.spawn(move || {
                    for i in 1..=1000u64 {
                        hub.record_request(&sample(
                            (i % 2) as usize,
                            i,
                            if i % 10 == 0 { 500 } else { 200 },
                        ));
                    }
                    hub.record_iteration(0, IterationEnd::Completed, Duration::from_millis(t + 1));
                });
            }
        });
        let st = hub.collect();
        let all = st.all_groups();
        assert_eq!(all.requests, 4000);
        assert_eq!(all.failed, 400);
        assert_eq!(
            all.status.iter().find(|(c, _)| *c == 500).map(|x| x.1),
            Some(400)
        );
        assert_eq!(st.groups[0].requests, 2000);
        assert_eq!(all.latency.len(), 4000);
        // p50 of 1..=1000 ms, four times over, at 3 significant digits.
        let p50 = all.latency.value_at_quantile(0.5) as f64 / 1000.0;
        assert!((499.0..=501.0).contains(&p50), "{p50}");
        assert_eq!(all.bytes_received, 400_000);
        assert_eq!(st.iterations(), 4);
        // Collecting again starts from zero.
        assert_eq!(hub.collect().all_groups().requests, 0);
    }
}

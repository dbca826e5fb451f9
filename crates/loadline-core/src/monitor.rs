//! The seam between the run and the monitors of the system under test (and of
//! loadline itself). Monitors sample on their own tasks; the aggregator reads
//! their latest values once a tick, so they share the load's timeline and can
//! never slow or stop it.

/// One monitored value, e.g. `process.cpu_percent{name=nginx}` = 37.5.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MonitorValue {
    /// The series key: a dotted name, then `{label=value,...}` when it has labels.
    pub series: String,
    pub value: f64,
}

/// Where the aggregator reads monitor values.
pub trait MonitorSource: Send + Sync {
    /// The latest value of every series.
    fn snapshot(&self) -> Vec<MonitorValue>;
    /// Problems to tell the user (a monitor that cannot connect, loadline itself
    /// near saturation); each is reported once.
    fn take_warnings(&self) -> Vec<String> {
        Vec::new()
    }
}

/// One monitor series over a run: a value a tick, summed up.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct SeriesStats {
    pub min: f64,
    pub max: f64,
    /// The first and the last value read.
    pub first: f64,
    pub last: f64,
    #[serde(skip)]
    sum: f64,
    /// How many values were read (one a tick).
    #[serde(skip)]
    pub count: u64,
}

impl SeriesStats {
    pub fn new(value: f64) -> Self {
        Self {
            min: value,
            max: value,
            first: value,
            last: value,
            sum: value,
            count: 1,
        }
    }

    /// Adds a later value.
    pub fn add(&mut self, value: f64) {
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.last = value;
        self.sum += value;
        self.count += 1;
    }

    /// Adds the values of a later span.
    pub fn merge(&mut self, later: &SeriesStats) {
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        self.last = later.last;
        self.sum += later.sum;
        self.count += later.count;
    }

    pub fn mean(&self) -> f64 {
        self.sum / self.count.max(1) as f64
    }

    /// The last value minus the first (the growth of a memory series).
    pub fn growth(&self) -> f64 {
        self.last - self.first
    }
}

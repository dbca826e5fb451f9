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

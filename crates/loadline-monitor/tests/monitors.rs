//! The monitors against real things on this machine: a TCP listener and a busy
//! thread of the test's own process, the host's /proc, Prometheus endpoints
//! served by the test on 127.0.0.1, a private `nats-server` (with its
//! monitoring port) the test starts on free loopback ports, and this machine's
//! Mosquitto (:1883) and RabbitMQ (:5672), which a test skips with a printed
//! reason when they are absent (and fails for, with
//! `LOADLINE_REQUIRE_SERVICES=1`). Every wait is bounded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loadline_core::monitor::{MonitorSource, MonitorValue};
use loadline_monitor::{MonitorConfig, MonitorError, Monitors, ProcessSpec, PrometheusSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// Only the monitors a test names: no host, no self.
fn quiet() -> MonitorConfig {
    MonitorConfig {
        interval: Some("200ms".into()),
        host: Some(false),
        self_monitor: Some(false),
        ..MonitorConfig::default()
    }
}

fn get(values: &[MonitorValue], series: &str) -> Option<f64> {
    values.iter().find(|v| v.series == series).map(|v| v.value)
}

/// Polls the snapshot until `done` holds for it, for at most `limit`.
async fn wait_until(
    monitors: &Monitors,
    limit: Duration,
    mut done: impl FnMut(&[MonitorValue]) -> bool,
) -> Vec<MonitorValue> {
    let deadline = Instant::now() + limit;
    loop {
        let values = monitors.snapshot();
        if done(&values) || Instant::now() > deadline {
            return values;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Collects warnings for `long`.
async fn warnings_during(monitors: &Monitors, long: Duration) -> Vec<String> {
    let deadline = Instant::now() + long;
    let mut all = Vec::new();
    while Instant::now() < deadline {
        all.extend(monitors.take_warnings());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_the_listener_by_port_and_sees_it_burn_cpu() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let config = MonitorConfig {
        processes: vec![ProcessSpec::Port(port)],
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();

    let burner = std::thread::spawn(|| {
        let end = Instant::now() + Duration::from_millis(1500);
        let mut x = 1u64;
        while Instant::now() < end {
            x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
        }
    });
    let me = format!("pid={}", std::process::id());
    let cpu_key =
        |v: &MonitorValue| v.series.starts_with("process.cpu_percent{") && v.series.contains(&me);
    let mut busiest = 0f64;
    let values = wait_until(&monitors, Duration::from_secs(5), |values| {
        busiest = values
            .iter()
            .filter(|v| cpu_key(v))
            .fold(busiest, |m, v| m.max(v.value));
        busiest > 30.0
    })
    .await;
    burner.join().unwrap();
    assert!(
        busiest > 30.0,
        "the busy thread's CPU was not seen: {values:?}"
    );

    let name = values
        .iter()
        .find(|v| cpu_key(v))
        .map(|v| v.series.clone())
        .unwrap();
    let labels = name.trim_start_matches("process.cpu_percent");
    assert!(get(&values, &format!("process.rss_bytes{labels}")).unwrap() > 0.0);
    assert!(get(&values, &format!("process.threads{labels}")).unwrap() >= 2.0);
    assert!(get(&values, &format!("process.fds{labels}")).unwrap() >= 1.0);
    assert!(monitors.take_warnings().is_empty());
    cancel.cancel();
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loopback_target_brings_its_listening_process() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let target = url::Url::parse(&format!("http://localhost:{port}/api")).unwrap();
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&quiet(), Some(&target), cancel.clone()).unwrap();
    let rss = format!("process.rss_bytes{{pid={},", std::process::id());
    let values = wait_until(&monitors, Duration::from_secs(3), |values| {
        values.iter().any(|v| v.series.starts_with(&rss))
    })
    .await;
    assert!(
        values.iter().any(|v| v.series.starts_with(&rss)),
        "{values:?}"
    );
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_values_are_present_and_sane() {
    let config = MonitorConfig {
        host: Some(true),
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();
    let values = wait_until(&monitors, Duration::from_secs(5), |values| {
        get(values, "host.cpu_user_percent").is_some()
            && get(values, "host.net_rx_bytes_per_s{iface=lo}").is_some()
    })
    .await;
    for series in [
        "host.cpu_user_percent",
        "host.cpu_system_percent",
        "host.cpu_iowait_percent",
    ] {
        let percent = get(&values, series).unwrap_or_else(|| panic!("no {series} in {values:?}"));
        assert!((0.0..=100.0).contains(&percent), "{series} = {percent}");
    }
    assert!(get(&values, "host.mem_available_bytes").unwrap() > 0.0);
    assert!(get(&values, "host.mem_used_bytes").unwrap() > 0.0);
    assert!(get(&values, "host.load1").unwrap() >= 0.0);
    assert!(get(&values, "host.net_rx_bytes_per_s{iface=lo}").unwrap() >= 0.0);
    assert!(get(&values, "host.net_tx_bytes_per_s{iface=lo}").unwrap() >= 0.0);
    assert!(
        !values
            .iter()
            .any(|v| v.series.contains("iface=") && !v.series.contains("iface=lo}")),
        "only the loopback without a remote target: {values:?}"
    );
    assert!(monitors.take_warnings().is_empty());
    cancel.cancel();
}

/// Serves a metrics page whose counter grows by 50 a second, on 127.0.0.1.
async fn serve_metrics() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let port = listener.local_addr().expect("bound address").port();
    let started = Instant::now();
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let count = 50.0 * started.elapsed().as_secs_f64();
                let body = format!(
                    "# HELP demo_shop_requests_total Requests served.\n\
                     # TYPE demo_shop_requests_total counter\n\
                     demo_shop_requests_total{{route=\"/orders\"}} {count}\n\
                     # TYPE demo_shop_queue_depth gauge\n\
                     demo_shop_queue_depth{{route=\"/orders\"}} 3\n\
                     demo_shop_queue_depth{{route=\"/items\"}} 9\n"
                );
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_endpoint_is_scraped_with_counter_rates() {
    let (port, server) = serve_metrics().await;
    let config = MonitorConfig {
        prometheus: vec![PrometheusSpec {
            url: format!("http://127.0.0.1:{port}/metrics"),
            series: vec![
                "demo_shop_requests_total".into(),
                r#"demo_shop_queue_depth{route="/orders"}"#.into(),
            ],
            rate: None,
            timeout: Some("1s".into()),
        }],
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();
    let rate_key = "prom.demo_shop_requests_total:rate{route=/orders}";
    let mut rates = Vec::new();
    let values = wait_until(&monitors, Duration::from_secs(6), |values| {
        if let Some(rate) = get(values, rate_key) {
            if rates.last() != Some(&rate) {
                rates.push(rate);
            }
        }
        rates.len() >= 4
    })
    .await;
    assert!(rates.len() >= 4, "too few rates: {rates:?} in {values:?}");
    let mean = rates.iter().sum::<f64>() / rates.len() as f64;
    assert!(
        (40.0..=60.0).contains(&mean),
        "rates {rates:?}, expected about 50/s"
    );
    assert_eq!(
        get(&values, "prom.demo_shop_queue_depth{route=/orders}"),
        Some(3.0)
    );
    assert_eq!(
        get(&values, "prom.demo_shop_queue_depth{route=/items}"),
        None
    );
    assert!(!values
        .iter()
        .any(|v| v.series.starts_with("prom.demo_shop_requests_total{")));
    assert!(monitors.take_warnings().is_empty());
    cancel.cancel();
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoints_and_missing_pids_are_warnings() {
    // A port that nothing listens on any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = MonitorConfig {
        processes: vec![ProcessSpec::Pid(4_000_000_000)],
        prometheus: vec![PrometheusSpec {
            url: format!("http://127.0.0.1:{port}/metrics"),
            series: vec![],
            rate: None,
            timeout: Some("300ms".into()),
        }],
        self_monitor: Some(true),
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();
    let warnings = warnings_during(&monitors, Duration::from_millis(1500)).await;
    let scrape: Vec<_> = warnings
        .iter()
        .filter(|w| w.contains("scrape failed"))
        .collect();
    assert_eq!(
        scrape.len(),
        1,
        "told once per failure streak: {warnings:?}"
    );
    assert!(scrape[0].contains(&format!("127.0.0.1:{port}")));
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("no process has PID 4000000000")),
        "{warnings:?}"
    );
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    // The other monitors go on.
    let values = wait_until(&monitors, Duration::from_secs(3), |values| {
        get(values, "loadline.rss_bytes").is_some()
    })
    .await;
    assert!(get(&values, "loadline.rss_bytes").is_some());
    assert!(!values
        .iter()
        .any(|v| v.series.starts_with("prom.") || v.series.starts_with("process.")));
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loadline_watches_itself() {
    let config = MonitorConfig {
        self_monitor: Some(true),
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();
    let values = wait_until(&monitors, Duration::from_secs(3), |values| {
        get(values, "loadline.cpu_percent").is_some()
    })
    .await;
    let cores = std::thread::available_parallelism().unwrap().get() as f64;
    assert_eq!(get(&values, "loadline.cores"), Some(cores));
    assert!(get(&values, "loadline.cpu_percent").unwrap() >= 0.0);
    assert!(get(&values, "loadline.rss_bytes").unwrap() > 1024.0 * 1024.0);
    let saturated = get(&values, "loadline.saturated").unwrap();
    assert!(saturated == 0.0 || saturated == 1.0);
    cancel.cancel();
}

#[tokio::test]
async fn stopping_freezes_the_values_and_dropping_stops_the_samplers() {
    let config = MonitorConfig {
        self_monitor: Some(true),
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors: Arc<Monitors> = Monitors::start(&config, None, cancel.clone()).unwrap();
    wait_until(&monitors, Duration::from_secs(3), |v| !v.is_empty()).await;
    cancel.cancel();
    assert!(
        !monitors.snapshot().is_empty(),
        "the last values stay readable"
    );
    drop(monitors);
}

#[test]
fn invalid_config_and_no_runtime_are_errors() {
    let bad = MonitorConfig {
        interval: Some("fast".into()),
        ..MonitorConfig::default()
    };
    let error = Monitors::start(&bad, None, CancellationToken::new()).unwrap_err();
    assert!(
        matches!(error, MonitorError::Invalid(ref p) if p[0].path == "interval"),
        "{error}"
    );
    let error =
        Monitors::start(&MonitorConfig::default(), None, CancellationToken::new()).unwrap_err();
    assert!(matches!(error, MonitorError::NoRuntime), "{error}");
}

/// A copy of `sleep` under a name no other process has, so the test can start,
/// kill and restart "the system under test" and find it by name.
struct Sleeper {
    path: std::path::PathBuf,
    name: String,
}

impl Sleeper {
    fn new() -> Option<Sleeper> {
        let original = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())?;
        let name = format!("llmon{}", std::process::id());
        let path = std::env::temp_dir().join(&name);
        std::fs::copy(original, &path).ok()?;
        Some(Sleeper { path, name })
    }

    fn start(&self) -> std::process::Child {
        std::process::Command::new(&self.path)
            .arg("30")
            .spawn()
            .expect("start the sleeper")
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_found_by_name_is_found_again_after_a_restart() {
    let Some(sleeper) = Sleeper::new() else {
        eprintln!("skipped: no sleep binary to copy");
        return;
    };
    let config = MonitorConfig {
        interval: Some("100ms".into()),
        processes: vec![ProcessSpec::Name(sleeper.name.clone())],
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();
    let rss_of = |pid: u32| format!("process.rss_bytes{{pid={pid},name={}}}", sleeper.name);

    let mut first = sleeper.start();
    let key = rss_of(first.id());
    let values = wait_until(&monitors, Duration::from_secs(3), |v| {
        get(v, &key).is_some()
    })
    .await;
    assert!(get(&values, &key).is_some(), "{key} not in {values:?}");

    first.kill().unwrap();
    first.wait().unwrap();
    let mut warnings = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while !warnings.iter().any(|w: &String| w.contains("has gone")) && Instant::now() < deadline {
        warnings.extend(monitors.take_warnings());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        warnings.iter().any(|w| w.contains("has gone")),
        "{warnings:?}"
    );
    assert!(!monitors.snapshot().iter().any(|v| v.series == key));

    let mut second = sleeper.start();
    let key = rss_of(second.id());
    let values = wait_until(&monitors, Duration::from_secs(3), |v| {
        get(v, &key).is_some()
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();
    assert!(
        get(&values, &key).is_some(),
        "the restarted process: {key} not in {values:?}"
    );
    cancel.cancel();
}

/// A free port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A private `nats-server` with its monitoring port and JetStream on (this
/// machine's shared server has no monitoring port); stopped when dropped.
struct PrivateNats {
    child: std::process::Child,
    _store: tempfile::TempDir,
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_a_nats_servers_varz_and_jsz() {
    let (port, http) = (free_port(), free_port());
    let store = tempfile::tempdir().unwrap();
    let spawned = std::process::Command::new("nats-server")
        .args([
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &http.to_string(),
            "-js",
            "-sd",
        ])
        .arg(store.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(child) = spawned else {
        let message = "skipped: no nats-server binary to start a server with its monitoring port";
        if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{message} (LOADLINE_REQUIRE_SERVICES=1)");
        }
        println!("{message}");
        return;
    };
    let _server = PrivateNats {
        child,
        _store: store,
    };
    // A client that publishes 200 messages a second over the plain protocol.
    let mut client = None;
    for _ in 0..50 {
        if let Ok(c) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            client = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut client = client.expect("the private nats-server did not start");
    client
        .write_all(b"CONNECT {\"verbose\":false}\r\n")
        .await
        .unwrap();
    let publisher = tokio::spawn(async move {
        for _ in 0..400 {
            if client
                .write_all(b"PUB ll.monitor 2\r\nhi\r\n")
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        client
    });
    let config = MonitorConfig {
        nats: vec![format!("http://127.0.0.1:{http}")],
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();
    let key = |s: &str| format!("{s}{{server=127.0.0.1:{http}}}");
    let values = wait_until(&monitors, Duration::from_secs(5), |values| {
        get(values, &key("nats.in_msgs_per_s")).is_some_and(|r| r > 20.0)
    })
    .await;
    let _client = publisher.await.unwrap();
    cancel.cancel();
    let rate = get(&values, &key("nats.in_msgs_per_s"));
    assert!(rate.is_some_and(|r| r > 20.0), "{values:?}");
    assert_eq!(
        get(&values, &key("nats.connections")),
        Some(1.0),
        "{values:?}"
    );
    assert_eq!(get(&values, &key("nats.slow_consumers")), Some(0.0));
    assert_eq!(
        get(&values, &key("nats.jetstream_messages")),
        Some(0.0),
        "{values:?}"
    );
}

/// Whether `service` answers at `addr` (else the test is skipped, or fails
/// with `LOADLINE_REQUIRE_SERVICES=1`).
async fn reachable(service: &str, addr: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(addr);
    if matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    ) {
        return true;
    }
    let message = format!("skipped: {service} not reachable at {addr}");
    if std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{message} (LOADLINE_REQUIRE_SERVICES=1)");
    }
    println!("{message}");
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_mosquittos_sys_topics() {
    if !reachable("Mosquitto", "127.0.0.1:1883").await {
        return;
    }
    let config = MonitorConfig {
        mosquitto: vec!["mqtt://127.0.0.1:1883".into()],
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();
    let key = "mosquitto.clients_connected{broker=127.0.0.1:1883}";
    // Mosquitto publishes $SYS every sys_interval (10s by default).
    let values = wait_until(&monitors, Duration::from_secs(12), |values| {
        get(values, key).is_some()
    })
    .await;
    cancel.cancel();
    // The monitor's own connection is one of them.
    assert!(get(&values, key).is_some_and(|c| c >= 1.0), "{values:?}");
    assert!(
        get(&values, "mosquitto.heap_bytes{broker=127.0.0.1:1883}").is_some_and(|h| h > 0.0),
        "{values:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_rabbitmq_queue_depths() {
    use lapin::options::{
        BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
    };
    use lapin::types::FieldTable;
    use lapin::{BasicProperties, Connection, ConnectionProperties};

    if !reachable("RabbitMQ", "127.0.0.1:5672").await {
        return;
    }
    let url = "amqp://guest:guest@127.0.0.1:5672/%2f";
    let queue = format!(
        "lltest_{}_{:06x}_monitor",
        std::process::id(),
        fastrand::u32(..0xff_ffff)
    );
    let conn = Connection::connect(url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        queue.as_str().into(),
        QueueDeclareOptions::default(),
        FieldTable::default(),
    )
    .await
    .unwrap();
    for _ in 0..7 {
        ch.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            b"x",
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let config = MonitorConfig {
        rabbitmq: Some(loadline_monitor::RabbitMqSpec {
            url: url.into(),
            queues: vec![queue.clone()],
        }),
        ..quiet()
    };
    let cancel = CancellationToken::new();
    let monitors = Monitors::start(&config, None, cancel.clone()).unwrap();
    let depth = format!("rabbitmq.queue_messages{{broker=127.0.0.1:5672,queue={queue}}}");
    let values = wait_until(&monitors, Duration::from_secs(5), |values| {
        get(values, &depth).is_some()
    })
    .await;
    cancel.cancel();
    let _ = ch
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await;
    let _ = conn.close(200, "OK".into()).await;
    assert_eq!(get(&values, &depth), Some(7.0), "{values:?}");
    let consumers = format!("rabbitmq.queue_consumers{{broker=127.0.0.1:5672,queue={queue}}}");
    assert_eq!(get(&values, &consumers), Some(0.0), "{values:?}");
}

//! `/metrics` is valid Prometheus text and its counters move with the traffic.

use std::collections::HashMap;

use hyper::StatusCode;
use serde_json::json;

use crate::support::{small_shop, Client};

/// Samples of a Prometheus text exposition, keyed by `name{labels}` as written.
/// Fails the test on any line that is neither a comment nor `name{labels} value`.
fn parse(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    for line in text.lines().filter(|line| !line.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(
                comment.starts_with("HELP ") || comment.starts_with("TYPE "),
                "{line}"
            );
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        let name_end = series.find('{').unwrap_or(series.len());
        let name = &series[..name_end];
        assert!(!name.is_empty(), "{line}");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "{line}"
        );
        let labels = &series[name_end..];
        if !labels.is_empty() {
            let inner = labels
                .strip_prefix('{')
                .and_then(|l| l.strip_suffix('}'))
                .unwrap_or_else(|| panic!("{line}"));
            for pair in inner.split("\",") {
                let (key, value) = pair.split_once("=\"").unwrap_or_else(|| panic!("{line}"));
                assert!(
                    key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                    "{line}"
                );
                assert!(!value.trim_end_matches('"').contains('"'), "{line}");
            }
            assert!(inner.ends_with('"'), "{line}");
        }
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("{line}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}

#[tokio::test]
async fn metrics_parse_and_count_the_traffic() {
    let shop = small_shop().await;
    let client = Client::new(&shop);
    client.get("/health").await;
    client.get("/products/4").await;
    client.get("/products/4").await;
    client.get("/products/5").await;
    let user = client.login(2).await;
    let order = user.post("/orders", json!({ "product": 4 })).await.json();
    user.wait_confirmed(
        order["id"].as_i64().expect("an id"),
        std::time::Duration::from_secs(2),
    )
    .await;

    let reply = client.get("/metrics").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/plain")));
    let first = parse(&reply.text());
    let detail = "route=\"/products/{id}\"";
    assert_eq!(
        first[&format!("demo_shop_requests_total{{{detail},status=\"200\"}}")],
        3.0
    );
    assert_eq!(
        first[&format!("demo_shop_request_duration_seconds_count{{{detail}}}")],
        3.0
    );
    assert_eq!(
        first[&format!("demo_shop_request_duration_seconds_bucket{{{detail},le=\"+Inf\"}}")],
        3.0
    );
    assert!(first[&format!("demo_shop_request_duration_seconds_sum{{{detail}}}")] > 0.0);
    let mut previous = 0.0;
    for le in ["0.001", "0.005", "0.05", "0.5", "1", "10", "+Inf"] {
        let bucket =
            first[&format!("demo_shop_request_duration_seconds_bucket{{{detail},le=\"{le}\"}}")];
        assert!(bucket >= previous, "bucket {le} is not cumulative");
        previous = bucket;
    }
    assert_eq!(first["demo_shop_cache_hits_total"], 1.0);
    assert_eq!(first["demo_shop_cache_misses_total"], 2.0);
    assert_eq!(first["demo_shop_orders_total{state=\"pending\"}"], 1.0);
    assert_eq!(first["demo_shop_orders_total{state=\"confirmed\"}"], 1.0);
    assert_eq!(first["demo_shop_queue_depth"], 0.0);
    assert!(first.contains_key("demo_shop_db_pool_in_use"));
    assert_eq!(
        first["demo_shop_requests_total{route=\"/login\",status=\"200\"}"],
        1.0
    );

    client.get("/health").await;
    let second = parse(&client.get("/metrics").await.text());
    let health = "demo_shop_requests_total{route=\"/health\",status=\"200\"}";
    assert_eq!(first[health], 1.0);
    assert_eq!(second[health], 2.0);
    // The first scrape is counted by the time of the second.
    assert_eq!(
        second["demo_shop_requests_total{route=\"/metrics\",status=\"200\"}"],
        1.0
    );
    shop.shutdown().await;
}

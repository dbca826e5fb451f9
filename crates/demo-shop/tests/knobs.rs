//! Fault and capacity knobs, set at start and at run time. Latency assertions are
//! lower bounds only: a slow machine must never fail them.

use std::time::{Duration, Instant};

use demo_shop::{Capacity, Knobs, ShopConfig};
use hyper::StatusCode;
use serde_json::json;

use crate::support::{shop_with, small_shop, Client};

#[tokio::test]
async fn error_rate_injects_500s_on_api_routes_only() {
    let shop = small_shop().await;
    let client = Client::new(&shop);

    let set = client
        .put("/admin/knobs", json!({ "error_rate": 1.0 }))
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(set.json()["error_rate"], 1.0);
    assert_eq!(client.get("/admin/knobs").await.json()["error_rate"], 1.0);
    for path in ["/products", "/products/1", "/products/search?q=mug"] {
        let reply = client.get(path).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(reply.json(), json!({ "error": "injected" }));
    }
    assert_eq!(client.get("/health").await.status, StatusCode::OK);
    assert_eq!(client.get("/metrics").await.status, StatusCode::OK);

    let reset = client.put("/admin/knobs", json!({})).await;
    assert_eq!(reset.json()["error_rate"], 0.0);
    for _ in 0..5 {
        assert_eq!(client.get("/products").await.status, StatusCode::OK);
    }
    shop.shutdown().await;
}

#[tokio::test]
async fn knobs_given_at_start_apply_at_once() {
    let shop = shop_with(ShopConfig {
        knobs: Knobs {
            error_rate: 1.0,
            ..Knobs::default()
        },
        ..ShopConfig::default()
    })
    .await;
    let client = Client::new(&shop);
    assert_eq!(
        client.get("/products").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    shop.set_knobs(Knobs::default()).expect("valid knobs");
    assert_eq!(client.get("/products").await.status, StatusCode::OK);
    shop.shutdown().await;
}

#[tokio::test]
async fn added_latency_delays_every_api_request() {
    let shop = small_shop().await;
    let client = Client::new(&shop);
    client
        .put("/admin/knobs", json!({ "added_latency_ms": 200 }))
        .await;
    let started = Instant::now();
    assert_eq!(client.get("/products/1").await.status, StatusCode::OK);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    shop.shutdown().await;
}

#[tokio::test]
async fn slow_queries_delay_catalog_reads() {
    let shop = small_shop().await;
    let client = Client::new(&shop);
    client
        .put("/admin/knobs", json!({ "slow_query_ms": 150 }))
        .await;
    for path in ["/products", "/products/search?q=lamp", "/products/2"] {
        let started = Instant::now();
        assert_eq!(client.get(path).await.status, StatusCode::OK, "{path}");
        assert!(
            started.elapsed() >= Duration::from_millis(150),
            "{path}: {:?}",
            started.elapsed()
        );
    }
    shop.shutdown().await;
}

#[tokio::test]
async fn the_capacity_limiter_queues_requests() {
    let shop = small_shop().await;
    let client = Client::new(&shop);
    let capacity = Capacity {
        permits: 2,
        service_time_ms: 100,
    };
    let set = client
        .put("/admin/knobs", json!({ "capacity": capacity }))
        .await;
    assert_eq!(set.status, StatusCode::OK);
    assert_eq!(capacity.requests_per_second(), Some(20.0));

    let started = Instant::now();
    let replies = futures_util::future::join_all((0..6).map(|_| client.get("/products/1"))).await;
    let took = started.elapsed();
    assert!(replies.iter().all(|r| r.status == StatusCode::OK));
    // 6 requests through 2 permits of 100 ms: at least 3 rounds.
    assert!(took >= Duration::from_millis(300), "{took:?}");
    shop.shutdown().await;
}

#[tokio::test]
async fn invalid_knobs_are_refused() {
    let shop = small_shop().await;
    let client = Client::new(&shop);
    for body in [
        json!({ "error_rate": 2.0 }),
        json!({ "capacity": { "permits": 0, "service_time_ms": 10 } }),
        json!({ "latency": 5 }),
        json!("fast"),
    ] {
        let reply = client.put("/admin/knobs", body.clone()).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(reply.json()["error"].is_string());
    }
    assert_eq!(
        client.get("/admin/knobs").await.json(),
        json!(Knobs::default())
    );
    assert!(shop
        .set_knobs(Knobs {
            error_rate: -0.5,
            ..Knobs::default()
        })
        .is_err());
    shop.shutdown().await;
}

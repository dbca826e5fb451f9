//! The shop on the real services of this machine: PostgreSQL, Redis and NATS on
//! 127.0.0.1. Each test first checks its services are reachable (see
//! [`service_reachable`]).

use std::time::Duration;

use demo_shop::{Shop, ShopConfig};
use hyper::StatusCode;
use serde_json::json;

use crate::support::{reachable_or_skip, service_reachable, shop_with, Client};

const POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL: &str = "redis://127.0.0.1:6379";
const NATS_URL: &str = "nats://127.0.0.1:4222";

/// Logs in, fills a cart, orders it and waits for the confirmation.
async fn login_order_confirmed(shop: &Shop) {
    let user = Client::new(shop).login(5).await;
    assert_eq!(
        user.post("/cart", json!({ "product": 11, "qty": 2 }))
            .await
            .status,
        StatusCode::CREATED
    );
    let placed = user.post("/orders", json!({})).await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text());
    let id = placed.json()["id"].as_i64().expect("an order id");
    user.wait_confirmed(id, Duration::from_secs(2)).await;
    let stats = shop.stats();
    assert_eq!(stats.orders_confirmed, stats.orders_placed);
}

/// Reads product 9 twice: a miss, then a hit.
async fn miss_then_hit(shop: &Shop) {
    let client = Client::new(shop);
    let first = client.get("/products/9").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.header("cache-status"), Some("demo-shop; fwd=miss"));
    let second = client.get("/products/9").await;
    assert_eq!(second.header("cache-status"), Some("demo-shop; hit"));
    assert_eq!(second.json(), first.json());
}

async fn schema_exists(schema: &str) -> bool {
    let pool = sqlx::PgPool::connect(POSTGRES_URL)
        .await
        .expect("connect to PostgreSQL");
    let found: Option<String> = sqlx::query_scalar(
        "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = $1",
    )
    .bind(schema)
    .fetch_optional(&pool)
    .await
    .expect("query the schemas");
    pool.close().await;
    found.is_some()
}

#[tokio::test]
async fn postgres_backend_orders_and_cleans_up() {
    if !service_reachable("PostgreSQL", 5432).await {
        return;
    }
    let shop = shop_with(ShopConfig {
        database_url: Some(POSTGRES_URL.to_owned()),
        ..ShopConfig::default()
    })
    .await;
    let schema = shop
        .database_schema()
        .expect("a schema of its own")
        .to_owned();
    assert!(schema.starts_with("demo_shop_"), "{schema}");
    assert!(schema_exists(&schema).await);

    let client = Client::new(&shop);
    assert_eq!(client.get("/products").await.json()["total"], 300);
    let search = client.get("/products/search?q=KETTLE").await.json();
    assert!(!search["items"].as_array().expect("items").is_empty());
    miss_then_hit(&shop).await;
    login_order_confirmed(&shop).await;

    shop.shutdown().await;
    assert!(!schema_exists(&schema).await, "{schema} was not dropped");
}

#[tokio::test]
async fn redis_cache_misses_then_hits_per_instance() {
    if !service_reachable("Redis", 6379).await {
        return;
    }
    let config = ShopConfig {
        redis_url: Some(REDIS_URL.to_owned()),
        ..ShopConfig::default()
    };
    let shop = shop_with(config.clone()).await;
    miss_then_hit(&shop).await;
    let stats = shop.stats();
    assert_eq!((stats.cache_misses, stats.cache_hits), (1, 1));

    // A second shop on the same Redis has keys of its own.
    let other = shop_with(config).await;
    miss_then_hit(&other).await;
    login_order_confirmed(&shop).await;
    other.shutdown().await;
    shop.shutdown().await;
}

#[tokio::test]
async fn nats_pipeline_confirms_orders() {
    if !service_reachable("NATS", 4222).await {
        return;
    }
    let shop = shop_with(ShopConfig {
        nats_url: Some(NATS_URL.to_owned()),
        ..ShopConfig::default()
    })
    .await;
    login_order_confirmed(&shop).await;
    let user = Client::new(&shop).login(6).await;
    for product in 1..=5 {
        let placed = user.post("/orders", json!({ "product": product })).await;
        let id = placed.json()["id"].as_i64().expect("an order id");
        user.wait_confirmed(id, Duration::from_secs(2)).await;
    }
    assert_eq!(shop.stats().orders_confirmed, 6);
    shop.shutdown().await;
}

#[tokio::test]
async fn all_services_together() {
    for (service, port) in [("PostgreSQL", 5432), ("Redis", 6379), ("NATS", 4222)] {
        if !service_reachable(service, port).await {
            return;
        }
    }
    let shop = shop_with(ShopConfig {
        database_url: Some(POSTGRES_URL.to_owned()),
        redis_url: Some(REDIS_URL.to_owned()),
        nats_url: Some(NATS_URL.to_owned()),
        ..ShopConfig::default()
    })
    .await;
    miss_then_hit(&shop).await;
    login_order_confirmed(&shop).await;
    shop.shutdown().await;
}

#[tokio::test]
async fn unreachable_services_fail_start_with_an_error() {
    // Port 1 on loopback: nothing listens there, so each connect is refused at once.
    for config in [
        ShopConfig {
            database_url: Some("postgres://postgres@127.0.0.1:1/test".to_owned()),
            ..ShopConfig::default()
        },
        ShopConfig {
            redis_url: Some("redis://127.0.0.1:1".to_owned()),
            products: 10,
            ..ShopConfig::default()
        },
        ShopConfig {
            nats_url: Some("nats://127.0.0.1:1".to_owned()),
            products: 10,
            ..ShopConfig::default()
        },
    ] {
        let described = format!("{config:?}");
        let result = tokio::time::timeout(Duration::from_secs(20), demo_shop::start(config)).await;
        match result {
            Ok(Err(error)) => println!("refused as expected: {error}"),
            Ok(Ok(shop)) => {
                shop.shutdown().await;
                panic!("started against a closed port: {described}");
            }
            Err(_) => panic!("start did not fail within 20 s: {described}"),
        }
    }
}

/// Port 1 on loopback, where nothing listens.
const CLOSED: ([u8; 4], u16) = ([127, 0, 0, 1], 1);

#[tokio::test]
async fn an_absent_service_is_skipped_by_default() {
    assert!(!reachable_or_skip("nothing", CLOSED.into(), false).await);
}

#[tokio::test]
#[should_panic(expected = "nothing not reachable at 127.0.0.1:1")]
async fn an_absent_service_fails_when_services_are_required() {
    reachable_or_skip("nothing", CLOSED.into(), true).await;
}

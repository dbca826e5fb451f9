//! Health, catalog pages, search, and product details behind the cache.

use std::time::{Duration, Instant};

use demo_shop::ShopConfig;
use hyper::StatusCode;

use crate::support::{shop_with, small_shop, Client};

fn ids(items: &serde_json::Value) -> Vec<i64> {
    items
        .as_array()
        .expect("an items array")
        .iter()
        .map(|item| item["id"].as_i64().expect("an id"))
        .collect()
}

#[tokio::test]
async fn health_answers_ok() {
    let shop = small_shop().await;
    let reply = Client::new(&shop).get("/health").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), serde_json::json!({ "status": "ok" }));
    assert_eq!(shop.stats().requests.get("/health"), Some(&1));
    shop.shutdown().await;
}

#[tokio::test]
async fn default_shop_seeds_ten_thousand_products() {
    let started = Instant::now();
    let shop = demo_shop::start(ShopConfig::default())
        .await
        .expect("the shop starts");
    let took = started.elapsed();
    println!("start() with 10,000 products and 1,000 users took {took:?}");
    let client = Client::new(&shop);
    assert_eq!(client.get("/products").await.json()["total"], 10_000);
    assert_eq!(client.get("/products/10000").await.status, StatusCode::OK);
    assert_eq!(
        client.get("/products/10001").await.status,
        StatusCode::NOT_FOUND
    );
    client.login(1000).await;
    shop.shutdown().await;
}

#[tokio::test]
async fn catalog_pages() {
    let shop = small_shop().await;
    let client = Client::new(&shop);

    let first = client.get("/products").await;
    assert_eq!(first.status, StatusCode::OK);
    let first = first.json();
    assert_eq!(first["page"], 1);
    assert_eq!(first["total"], 300);
    assert_eq!(ids(&first["items"]), (1..=20).collect::<Vec<_>>());
    let item = &first["items"][0];
    assert!(item["name"]
        .as_str()
        .expect("a name")
        .starts_with("Product 1 "));
    assert!(item["price_cents"].as_i64().expect("a price") > 0);
    assert!(item["category"].is_string());

    let second = client.get("/products?page=2&size=5").await.json();
    assert_eq!(second["page"], 2);
    assert_eq!(ids(&second["items"]), vec![6, 7, 8, 9, 10]);

    let capped = client.get("/products?size=1000").await.json();
    assert_eq!(ids(&capped["items"]).len(), 100);

    let beyond = client.get("/products?page=99").await.json();
    assert_eq!(ids(&beyond["items"]), Vec::<i64>::new());

    let bad = client.get("/products?page=abc").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.json()["error"].is_string());
    shop.shutdown().await;
}

#[tokio::test]
async fn search_matches_names_case_insensitively() {
    let shop = small_shop().await;
    let client = Client::new(&shop);

    let widgets = client.get("/products/search?q=WIDGET").await;
    assert_eq!(widgets.status, StatusCode::OK);
    let widgets = widgets.json();
    assert_eq!(widgets["q"], "WIDGET");
    let items = widgets["items"].as_array().expect("items");
    assert!(!items.is_empty() && items.len() <= 20, "{}", items.len());
    for item in items {
        let name = item["name"].as_str().expect("a name").to_lowercase();
        assert!(name.contains("widget"), "{name}");
    }

    let exact = client
        .get("/products/search?q=pRoDuCt%2042%20")
        .await
        .json();
    assert_eq!(ids(&exact["items"]), vec![42]);

    // LIKE wildcards in the text are matched literally.
    let percent = client.get("/products/search?q=%25").await.json();
    assert_eq!(ids(&percent["items"]), Vec::<i64>::new());

    let missing = client.get("/products/search").await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    shop.shutdown().await;
}

#[tokio::test]
async fn product_detail_misses_then_hits_the_cache() {
    let shop = small_shop().await;
    let client = Client::new(&shop);

    let miss = client.get("/products/7").await;
    assert_eq!(miss.status, StatusCode::OK);
    assert_eq!(miss.header("cache-status"), Some("demo-shop; fwd=miss"));
    assert_eq!(miss.header("content-type"), Some("application/json"));
    let product = miss.json();
    assert_eq!(product["id"], 7);
    assert!(product["name"]
        .as_str()
        .expect("a name")
        .starts_with("Product 7 "));
    assert!(product["description"].is_string());

    let hit = client.get("/products/7").await;
    assert_eq!(hit.header("cache-status"), Some("demo-shop; hit"));
    assert_eq!(hit.json(), product);

    let stats = shop.stats();
    assert_eq!((stats.cache_misses, stats.cache_hits), (1, 1));
    assert_eq!(stats.requests.get("/products/{id}"), Some(&2));

    let absent = client.get("/products/99999").await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    assert!(absent.json()["error"].is_string());
    assert_eq!(
        client.get("/products/seven").await.status,
        StatusCode::BAD_REQUEST
    );
    shop.shutdown().await;
}

#[tokio::test]
async fn cached_products_expire_after_the_ttl() {
    let shop = shop_with(ShopConfig {
        cache_ttl: Duration::from_millis(100),
        ..ShopConfig::default()
    })
    .await;
    let client = Client::new(&shop);
    let status = |reply: crate::support::Reply| reply.header("cache-status").map(str::to_owned);
    assert_eq!(
        status(client.get("/products/3").await).as_deref(),
        Some("demo-shop; fwd=miss")
    );
    assert_eq!(
        status(client.get("/products/3").await).as_deref(),
        Some("demo-shop; hit")
    );
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(
        status(client.get("/products/3").await).as_deref(),
        Some("demo-shop; fwd=miss")
    );
    shop.shutdown().await;
}

#[tokio::test]
async fn unknown_routes_answer_json_404() {
    let shop = small_shop().await;
    let reply = Client::new(&shop).get("/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert!(reply.json()["error"].is_string());
    assert_eq!(shop.stats().requests.get("unmatched"), Some(&1));
    shop.shutdown().await;
}

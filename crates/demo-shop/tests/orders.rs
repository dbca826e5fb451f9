//! Login, cart and orders: the transaction and the event pipeline that confirms them.

use std::time::Duration;

use demo_shop::ShopConfig;
use hyper::StatusCode;
use serde_json::json;

use crate::support::{shop_with, small_shop, Client};

#[tokio::test]
async fn login_accepts_seeded_users_only() {
    let shop = small_shop().await;
    let client = Client::new(&shop);
    let good = client
        .post("/login", json!({ "user": "user3", "password": "pw3" }))
        .await;
    assert_eq!(good.status, StatusCode::OK);
    assert!(!good.json()["token"].as_str().expect("a token").is_empty());

    let wrong = client
        .post("/login", json!({ "user": "user3", "password": "pw4" }))
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.json()["error"].is_string());
    let unknown = client
        .post("/login", json!({ "user": "user999", "password": "pw999" }))
        .await;
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    let malformed = client.post("/login", json!({ "user": "user3" })).await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    shop.shutdown().await;
}

#[tokio::test]
async fn cart_and_orders_need_a_valid_token() {
    let shop = small_shop().await;
    let anonymous = Client::new(&shop);
    let line = json!({ "product": 1, "qty": 1 });
    assert_eq!(
        anonymous.post("/cart", line.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anonymous.post("/orders", line.clone()).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        anonymous.get("/orders/1").await.status,
        StatusCode::UNAUTHORIZED
    );
    let forged = anonymous.with_token("forged").post("/cart", line).await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    shop.shutdown().await;
}

#[tokio::test]
async fn an_ordered_cart_goes_from_pending_to_confirmed() {
    let shop = shop_with(ShopConfig {
        confirm_delay: Duration::from_millis(300),
        ..ShopConfig::default()
    })
    .await;
    let user = Client::new(&shop).login(3).await;

    let added = user.post("/cart", json!({ "product": 5, "qty": 2 })).await;
    assert_eq!(added.status, StatusCode::CREATED);
    assert_eq!(added.json(), json!({ "items": 1 }));
    let added = user.post("/cart", json!({ "product": 6 })).await;
    assert_eq!(added.json(), json!({ "items": 2 }));
    let again = user.post("/cart", json!({ "product": 5, "qty": 1 })).await;
    assert_eq!(again.json(), json!({ "items": 2 }));
    let absent = user.post("/cart", json!({ "product": 99999 })).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    let too_many = user.post("/cart", json!({ "product": 5, "qty": 0 })).await;
    assert_eq!(too_many.status, StatusCode::BAD_REQUEST);

    let placed = user.post("/orders", json!({})).await;
    assert_eq!(placed.status, StatusCode::CREATED);
    let placed = placed.json();
    assert_eq!(placed["state"], "pending");
    let id = placed["id"].as_i64().expect("an order id");

    let pending = user.get(&format!("/orders/{id}")).await.json();
    assert_eq!(pending["state"], "pending");
    assert!(pending["confirmed_at"].is_null());
    assert!(pending["created_at"]
        .as_str()
        .expect("created_at")
        .ends_with('Z'));

    let confirmed = user.wait_confirmed(id, Duration::from_secs(2)).await;
    assert!(confirmed["confirmed_at"].is_string(), "{confirmed}");
    assert!(confirmed["confirmed_at"].as_str() >= confirmed["created_at"].as_str());

    // The order emptied the cart.
    let empty = user.post("/orders", json!({})).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);

    // Orders are private to their user.
    let other = Client::new(&shop).login(4).await;
    assert_eq!(
        other.get(&format!("/orders/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        user.get("/orders/424242").await.status,
        StatusCode::NOT_FOUND
    );
    shop.shutdown().await;
}

#[tokio::test]
async fn a_direct_order_is_confirmed() {
    let shop = small_shop().await;
    let user = Client::new(&shop).login(1).await;
    let placed = user
        .post("/orders", json!({ "product": 8, "qty": 3 }))
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{}", placed.text());
    let id = placed.json()["id"].as_i64().expect("an order id");
    user.wait_confirmed(id, Duration::from_secs(2)).await;
    let absent = user.post("/orders", json!({ "product": 99999 })).await;
    assert_eq!(absent.status, StatusCode::NOT_FOUND);
    shop.shutdown().await;
}

#[tokio::test]
async fn every_order_placed_is_confirmed() {
    // Placed all at once, so SQLite's writers contend for the lock.
    const ORDERS: usize = 60;
    let shop = small_shop().await;
    let mut buyers = Vec::new();
    for n in 1..=6 {
        buyers.push(Client::new(&shop).login(n).await);
    }
    let orders = futures_util::future::join_all((0..ORDERS).map(|i| {
        let buyer = buyers[i % buyers.len()].clone();
        async move {
            let reply = buyer
                .post("/orders", json!({ "product": i + 1, "qty": 1 }))
                .await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.text());
            reply.json()["id"].as_i64().expect("an order id")
        }
    }))
    .await;
    let mut unique = orders.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ORDERS);

    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while shop.stats().orders_confirmed < ORDERS as u64 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = shop.stats();
    assert_eq!(stats.orders_placed, ORDERS as u64);
    assert_eq!(stats.orders_confirmed, stats.orders_placed);
    for (i, id) in orders.iter().enumerate() {
        let order = buyers[i % buyers.len()]
            .get(&format!("/orders/{id}"))
            .await
            .json();
        assert_eq!(order["state"], "confirmed");
    }
    shop.shutdown().await;
}

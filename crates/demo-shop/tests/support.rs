//! What the tests share: a small HTTP client over hyper, shop fixtures and the check
//! that an external service is reachable.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use demo_shop::{Shop, ShopConfig};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpStream;

/// The longest any single request of a test may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A shop small enough to start in a blink.
pub async fn small_shop() -> Shop {
    shop_with(ShopConfig::default()).await
}

/// A small shop with some settings changed (products and users are overridden to 300
/// and 20 unless the config sets them away from the defaults).
pub async fn shop_with(mut config: ShopConfig) -> Shop {
    let defaults = ShopConfig::default();
    if config.products == defaults.products {
        config.products = 300;
    }
    if config.users == defaults.users {
        config.users = 20;
    }
    demo_shop::start(config).await.expect("the shop starts")
}

/// One answer, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// An HTTP/1.1 client for one shop, optionally logged in. Each request uses a new
/// connection.
#[derive(Clone)]
pub struct Client {
    addr: SocketAddr,
    token: Option<String>,
}

impl Client {
    pub fn new(shop: &Shop) -> Self {
        Client {
            addr: shop.addr(),
            token: None,
        }
    }

    /// The same client presenting this bearer token.
    pub fn with_token(&self, token: &str) -> Client {
        Client {
            addr: self.addr,
            token: Some(token.to_owned()),
        }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(method.clone(), path, body))
            .await
            .unwrap_or_else(|_| panic!("{method} {path} took longer than {REQUEST_TIMEOUT:?}"))
    }

    async fn exchange(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let stream = TcpStream::connect(self.addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(value) => {
                request = request.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(value).expect("serializable"))
            }
            None => Bytes::new(),
        };
        let response = sender
            .send_request(request.body(Full::new(body)).expect("a valid request"))
            .await
            .expect("a response");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("the body").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(&body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(&body)).await
    }

    /// A client logged in as `user{n}`.
    pub async fn login(&self, n: u32) -> Client {
        let reply = self
            .post(
                "/login",
                json!({ "user": format!("user{n}"), "password": format!("pw{n}") }),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login: {}", reply.text());
        let token = reply.json()["token"].as_str().expect("a token").to_owned();
        Client {
            addr: self.addr,
            token: Some(token),
        }
    }

    /// Polls `GET /orders/{id}` until the order is confirmed; its last answer.
    pub async fn wait_confirmed(&self, id: i64, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let reply = self.get(&format!("/orders/{id}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            let order = reply.json();
            if order["state"] == "confirmed" {
                return order;
            }
            assert!(
                Instant::now() < deadline,
                "order {id} not confirmed within {within:?}: {order}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Whether a service listens on 127.0.0.1:`port`. When it does not, prints
/// `skipped: <service> not reachable at <addr>` and answers false, or fails the test
/// when `LOADLINE_REQUIRE_SERVICES=1`.
pub async fn service_reachable(service: &str, port: u16) -> bool {
    let required = std::env::var("LOADLINE_REQUIRE_SERVICES").as_deref() == Ok("1");
    reachable_or_skip(service, SocketAddr::from(([127, 0, 0, 1], port)), required).await
}

/// [`service_reachable`] with the requirement given (so it can be tested).
pub async fn reachable_or_skip(service: &str, addr: SocketAddr, required: bool) -> bool {
    let connect = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await;
    if matches!(connect, Ok(Ok(_))) {
        return true;
    }
    if required {
        panic!("{service} not reachable at {addr} (LOADLINE_REQUIRE_SERVICES=1)");
    }
    println!("skipped: {service} not reachable at {addr}");
    false
}

//! Micro-benchmarks of the per-request hot path: rendering a template, recording a
//! request into the metric shards, parsing a response head and decoding a chunked
//! body. Run with `cargo bench -p loadline-protocols`.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use divan::{black_box, Bencher};
use loadline_core::metrics::{MetricsHub, RequestSample};
use loadline_core::template::{JsonTemplate, PathSeg, Scope, Template, VarRef, Vars};
use loadline_protocols::http::wire::{Chunked, Head};
use serde_json::{json, Value};

fn main() {
    divan::main();
}

struct BenchScope;

impl Scope for BenchScope {
    fn resolve(&self, name: &str, path: &[PathSeg]) -> Result<VarRef, String> {
        match name {
            "page_size" => Ok(VarRef::Const(Value::from(20))),
            "id" => Ok(VarRef::Capture {
                slot: 0,
                path: path.to_vec(),
            }),
            _ => Err(format!("unknown {name}")),
        }
    }
}

fn vars() -> Vars {
    let mut v = Vars::new(1, Arc::new(Vec::new()), 1, 7);
    v.captures[0] = Some(json!(12345));
    v
}

#[divan::bench]
fn render_url_template(b: Bencher) {
    let t = Template::compile(
        "/products/{{ id }}?size={{ page_size }}&r={{ $randint(1, 5) }}",
        &BenchScope,
    )
    .unwrap();
    let mut v = vars();
    let mut out = String::with_capacity(128);
    b.bench_local(|| {
        out.clear();
        t.render_into(&mut v, &mut out);
        black_box(out.len())
    });
}

#[divan::bench]
fn render_json_body(b: Bencher) {
    let body =
        json!({"product": "{{ id }}", "qty": 1, "note": "item {{ id }}", "tags": ["a", "b"]});
    let t = JsonTemplate::compile(&body, &BenchScope).unwrap();
    let mut v = vars();
    let mut out = String::with_capacity(128);
    b.bench_local(|| {
        out.clear();
        t.render_into(&mut v, &mut out);
        black_box(out.len())
    });
}

#[divan::bench]
fn record_request(b: Bencher) {
    let hub = MetricsHub::new(loadline_core::metrics::Shape::new(4, 1));
    let mut n = 0u64;
    b.bench_local(|| {
        n = n.wrapping_add(7919);
        hub.record_request(black_box(&RequestSample {
            group: (n % 4) as usize,
            latency: Duration::from_micros(100 + n % 50_000),
            status: Some(200),
            failed: false,
            error: None,
            bytes_sent: 120,
            bytes_received: 512,
            cache: loadline_core::cache::CacheOutcome::None,
        }));
    });
}

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Tue, 01 Dec 2026 05:00:00 GMT\r\nContent-Type: application/json\r\nContent-Length: 52\r\nConnection: keep-alive\r\nCache-Status: demo-shop; hit\r\n\r\n";

#[divan::bench]
fn parse_response_head(b: Bencher) {
    let mut head = Head::default();
    b.bench_local(|| {
        let n = head.parse(black_box(RESPONSE)).unwrap();
        black_box((n, head.framing(false).unwrap(), head.keep_alive()))
    });
}

#[divan::bench]
fn decode_chunked_body(b: Bencher) {
    let mut wire = Vec::new();
    for _ in 0..16 {
        wire.extend_from_slice(b"100\r\n");
        wire.extend_from_slice(&[b'x'; 256]);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    b.bench_local(|| {
        let mut dec = Chunked::default();
        let mut total = 0usize;
        dec.feed(black_box(&wire), |d| total += d.len()).unwrap();
        black_box(total)
    });
}

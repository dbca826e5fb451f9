//! Any bytes as an HTTP/1.1 response: the head parsed and the body decoded, or a
//! protocol error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadline_protocols::http::wire::{Chunked, Framing, Head};

fuzz_target!(|data: &[u8]| {
    let mut head = Head::default();
    if let Ok(Some(len)) = head.parse(data) {
        let _ = head.keep_alive();
        let _ = head.get_all("set-cookie").count();
        if let Ok(Framing::Chunked) = head.framing(false) {
            let mut dec = Chunked::default();
            let mut total = 0usize;
            let rest = &data[len..];
            // Feed in two pieces to exercise state carried across reads.
            let mid = rest.len() / 2;
            if let Ok(used) = dec.feed(&rest[..mid], |b| total += b.len()) {
                if !dec.done() {
                    let _ = dec.feed(&rest[mid..], |b| total += b.len());
                }
                assert!(used <= mid);
            }
            assert!(total <= rest.len());
        }
    }
    // The chunked decoder on raw bytes as well.
    let mut dec = Chunked::default();
    let _ = dec.feed(data, |_| {});
});

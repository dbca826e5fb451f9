//! How a cache answered an HTTP response, read from its headers. The sources,
//! in order: the scenario's own rule (a header and patterns), `Cache-Status`
//! (RFC 9211; of a chain of caches, the one nearest loadline decides, and every
//! cache's own verdict is kept), `X-Cache`, `X-Cache-Status`, `CF-Cache-Status`,
//! then `Age`. The first source that classifies decides; a response none of
//! them classifies is unknown, never guessed.

use loadline_core::cache::CacheOutcome;
use regex::Regex;

use super::wire::Head;

/// A scenario's own classification: the header to read and, per outcome, the
/// patterns (case-insensitive regular expressions) its value is matched
/// against, tried hit, miss, stale, bypass.
#[derive(Debug, Clone)]
pub struct CacheRule {
    /// Lower case.
    pub header: String,
    pub patterns: Vec<(CacheOutcome, Regex)>,
}

impl CacheRule {
    fn classify(&self, value: &[u8]) -> CacheOutcome {
        let Ok(text) = std::str::from_utf8(value) else {
            return CacheOutcome::Unknown;
        };
        let text = text.trim();
        self.patterns
            .iter()
            .find(|(_, re)| re.is_match(text))
            .map_or(CacheOutcome::Unknown, |(outcome, _)| *outcome)
    }
}

/// At most this many caches of one `Cache-Status` chain are looked at.
pub const MAX_CHAIN: usize = 8;

/// One cache's entry of a `Cache-Status` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The cache's name, unquoted.
    pub name: &'a str,
    pub outcome: CacheOutcome,
}

/// Classifies a response head: the outcome, and whether `Cache-Status`
/// decided it naming two caches or more (then [`chain`] gives each one's own).
pub fn classify(head: &Head, rule: Option<&CacheRule>) -> (CacheOutcome, bool) {
    if let Some(rule) = rule {
        if let Some(value) = head.get(&rule.header) {
            let outcome = rule.classify(value);
            if outcome != CacheOutcome::Unknown {
                return (outcome, false);
            }
        }
    }
    if !head.has_cache_headers() {
        return (CacheOutcome::Unknown, false);
    }
    // One pass over the headers finds the standard ones.
    let mut found: [Option<&[u8]>; 4] = [None; 4];
    let mut has_status = false;
    for (name, value) in head.fields() {
        let slot = match name.len() {
            12 if name.eq_ignore_ascii_case(b"cache-status") => {
                has_status = true;
                None
            }
            7 if name.eq_ignore_ascii_case(b"x-cache") => Some(0),
            14 if name.eq_ignore_ascii_case(b"x-cache-status") => Some(1),
            15 if name.eq_ignore_ascii_case(b"cf-cache-status") => Some(2),
            3 if name.eq_ignore_ascii_case(b"age") => Some(3),
            _ => None,
        };
        if let Some(i) = slot {
            // The last of repeated lines: the nearest cache's.
            found[i] = Some(value);
        }
    }
    if has_status {
        let mut last = CacheOutcome::Unknown;
        let mut count = 0;
        let mut sound = true;
        // Several lines of one field are one list, in order.
        for value in head.get_all("cache-status") {
            sound &= parse_cache_status(value, count, &mut |e| {
                last = e.outcome;
                count += 1;
            });
        }
        if sound && count > 0 && last != CacheOutcome::Unknown {
            return (last, count > 1);
        }
    }
    for value in found[..3].iter().flatten() {
        let outcome = classify_token(value);
        if outcome != CacheOutcome::Unknown {
            return (outcome, false);
        }
    }
    (found[3].map_or(CacheOutcome::Unknown, classify_age), false)
}

/// Whether `name` is one of the standard headers a cache answers in (any
/// case): checked for every response header as it is parsed, so cheap — the
/// length first, then the name.
#[inline]
pub fn is_cache_header(name: &[u8]) -> bool {
    match name.len() {
        3 => name.eq_ignore_ascii_case(b"age"),
        7 => name.eq_ignore_ascii_case(b"x-cache"),
        12 => name.eq_ignore_ascii_case(b"cache-status"),
        14 => name.eq_ignore_ascii_case(b"x-cache-status"),
        15 => name.eq_ignore_ascii_case(b"cf-cache-status"),
        _ => false,
    }
}

/// Every cache of the response's `Cache-Status` chain with its own verdict,
/// origin side first (empty when the field does not parse).
pub fn chain(head: &Head) -> Vec<Entry<'_>> {
    let mut out = Vec::new();
    for value in head.get_all("cache-status") {
        if !parse_cache_status(value, out.len(), &mut |e| out.push(e)) {
            return Vec::new();
        }
    }
    out
}

/// Parses one `Cache-Status` field value (a list of `cache; param; param=value`
/// members, RFC 9211 over RFC 8941's structured fields), giving each entry to
/// `each`. False when it does not parse, or when with the `before` entries of
/// earlier lines it names more than [`MAX_CHAIN`] caches.
pub fn parse_cache_status<'a>(
    value: &'a [u8],
    before: usize,
    each: &mut dyn FnMut(Entry<'a>),
) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let mut rest = text.trim_matches([' ', '\t']);
    if rest.is_empty() {
        return true;
    }
    let mut count = before;
    loop {
        if count >= MAX_CHAIN {
            return false;
        }
        count += 1;
        let Some((name, after)) = bare_item(rest) else {
            return false;
        };
        rest = after;
        let mut hit = false;
        let mut fwd: Option<&str> = None;
        let mut ttl_negative = false;
        loop {
            rest = rest.trim_start_matches([' ', '\t']);
            let Some(after) = rest.strip_prefix(';') else {
                break;
            };
            let after = after.trim_start_matches(' ');
            let key_len = after
                .find(|c: char| {
                    !(c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.*".contains(c))
                })
                .unwrap_or(after.len());
            if key_len == 0 {
                return false;
            }
            let key = &after[..key_len];
            rest = &after[key_len..];
            let value = match rest.strip_prefix('=') {
                Some(v) => {
                    let Some((item, after)) = bare_item(v) else {
                        return false;
                    };
                    rest = after;
                    Some(item)
                }
                None => None,
            };
            match key {
                // A boolean: `hit` alone is true, `hit=?0` false.
                "hit" => hit = value.is_none_or(|v| v == "?1"),
                "fwd" => fwd = value,
                "ttl" => ttl_negative = value.is_some_and(|v| v.starts_with('-')),
                _ => {}
            }
        }
        let outcome = match (hit, fwd) {
            (true, _) if ttl_negative => CacheOutcome::Stale,
            (true, _) => CacheOutcome::Hit,
            (false, Some("uri-miss" | "vary-miss" | "miss" | "partial")) => CacheOutcome::Miss,
            (false, Some("stale")) => CacheOutcome::Stale,
            (false, Some("bypass" | "method" | "request")) => CacheOutcome::Bypass,
            _ => CacheOutcome::Unknown,
        };
        each(Entry { name, outcome });
        rest = rest.trim_start_matches([' ', '\t']);
        match rest.strip_prefix(',') {
            Some(after) => rest = after.trim_start_matches([' ', '\t']),
            None if rest.is_empty() => return true,
            None => return false,
        }
        if rest.is_empty() {
            // A trailing comma.
            return false;
        }
    }
}

/// A structured-field bare item at the start of `text` (a token, a quoted
/// string without its quotes, a number or a boolean), and what follows it.
fn bare_item(text: &str) -> Option<(&str, &str)> {
    if let Some(quoted) = text.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return Some((&quoted[..i], &quoted[i + 1..])),
                _ => {}
            }
        }
        return None;
    }
    let len = text
        .find([';', ',', ' ', '\t', '=', '"'])
        .unwrap_or(text.len());
    (len > 0).then(|| (&text[..len], &text[len..]))
}

/// The verdict of an `X-Cache`-like header: its last member (`MISS, HIT` names
/// the nearest cache last), first word: `HIT`, `TCP_MEM_HIT`, `Hit from
/// cloudfront`, `RefreshHit`, `MISS`, `EXPIRED`, `BYPASS`, `DYNAMIC`…
pub fn classify_token(value: &[u8]) -> CacheOutcome {
    let Ok(text) = std::str::from_utf8(value) else {
        return CacheOutcome::Unknown;
    };
    let last = text.rsplit(',').next().unwrap_or(text).trim();
    let word = last.split([' ', '\t', '/', ':']).next().unwrap_or("");
    let word = word.to_ascii_uppercase();
    let word = word.strip_prefix("TCP_").unwrap_or(&word);
    match word {
        "HIT" | "MEM_HIT" | "IMS_HIT" | "NEGATIVE_HIT" | "OFFLINE_HIT" | "HIT_FRESH" => {
            CacheOutcome::Hit
        }
        "MISS" | "CLIENT_REFRESH_MISS" | "SWAPFAIL_MISS" => CacheOutcome::Miss,
        "STALE" | "UPDATING" | "REVALIDATED" | "EXPIRED" | "REFRESHHIT" | "REFRESH_HIT"
        | "REFRESH_UNMODIFIED" | "REFRESH_MODIFIED" | "HIT_STALE" => CacheOutcome::Stale,
        "BYPASS" | "PASS" | "DYNAMIC" | "DENIED" => CacheOutcome::Bypass,
        _ => CacheOutcome::Unknown,
    }
}

/// `Age: N`: a response that sat in a cache for a second or more is a hit; an
/// age of zero cannot tell a miss from a hit within its first second, so it is
/// unknown.
pub fn classify_age(value: &[u8]) -> CacheOutcome {
    match std::str::from_utf8(value)
        .ok()
        .map(str::trim)
        .and_then(|v| v.parse::<u64>().ok())
    {
        Some(age) if age > 0 => CacheOutcome::Hit,
        _ => CacheOutcome::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CacheOutcome::{Bypass, Hit, Miss, Stale, Unknown};

    fn head(lines: &[&str]) -> Head {
        let mut raw = String::from("HTTP/1.1 200 OK\r\n");
        for l in lines {
            raw.push_str(l);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        let mut h = Head::default();
        assert!(matches!(h.parse(raw.as_bytes()), Ok(Some(_))));
        h
    }

    fn verdict(lines: &[&str]) -> (CacheOutcome, Vec<(String, CacheOutcome)>) {
        let h = head(lines);
        let (outcome, chained) = classify(&h, None);
        let chain = if chained {
            chain(&h)
                .iter()
                .map(|e| (e.name.to_string(), e.outcome))
                .collect()
        } else {
            Vec::new()
        };
        (outcome, chain)
    }

    fn entries(value: &str) -> Option<Vec<(String, CacheOutcome)>> {
        let mut out = Vec::new();
        parse_cache_status(value.as_bytes(), 0, &mut |e| {
            out.push((e.name.to_string(), e.outcome))
        })
        .then_some(out)
    }

    #[test]
    fn cache_status_single_entries() {
        assert_eq!(verdict(&["Cache-Status: demo-shop; hit"]).0, Hit);
        assert_eq!(verdict(&["Cache-Status: demo-shop; fwd=miss"]).0, Miss);
        assert_eq!(
            verdict(&["Cache-Status: ExampleCache; hit; ttl=376"]).0,
            Hit
        );
        assert_eq!(
            verdict(&["Cache-Status: ExampleCache; hit; ttl=-412"]).0,
            Stale
        );
        assert_eq!(verdict(&["Cache-Status: c; hit=?1"]).0, Hit);
        assert_eq!(verdict(&["Cache-Status: c; hit=?0; fwd=uri-miss"]).0, Miss);
        assert_eq!(verdict(&["Cache-Status: c; fwd=vary-miss; stored"]).0, Miss);
        assert_eq!(
            verdict(&["Cache-Status: c; fwd=stale; fwd-status=304"]).0,
            Stale
        );
        assert_eq!(verdict(&["Cache-Status: c; fwd=bypass"]).0, Bypass);
        assert_eq!(verdict(&["Cache-Status: c; fwd=method"]).0, Bypass);
        assert_eq!(verdict(&["Cache-Status: c; fwd=request"]).0, Bypass);
        assert_eq!(verdict(&["Cache-Status: c; fwd=partial"]).0, Miss);
        assert_eq!(
            verdict(&["Cache-Status: \"Example; Cache\"; hit; key=\"a,b\"; detail=MEMORY"]).0,
            Hit
        );
        // A cache that says neither hit nor fwd is not guessed at.
        assert_eq!(verdict(&["Cache-Status: c; stored"]).0, Unknown);
        assert_eq!(verdict(&["Cache-Status: c; fwd=teleported"]).0, Unknown);
    }

    #[test]
    fn cache_status_chains_take_the_nearest_cache_and_keep_every_entry() {
        // The origin-side cache first, the one nearest the client last.
        let (outcome, chain) = verdict(&[
            "Cache-Status: OriginCache; hit; ttl=1100, \"CDN Company Here\"; fwd=uri-miss; stored",
        ]);
        assert_eq!(outcome, Miss);
        assert_eq!(
            chain,
            vec![
                ("OriginCache".into(), Hit),
                ("CDN Company Here".into(), Miss)
            ]
        );
        let (outcome, chain) = verdict(&["Cache-Status: shield; fwd=miss, edge; hit"]);
        assert_eq!(outcome, Hit);
        assert_eq!(chain.len(), 2);
        // Two lines of the field are one list, in order.
        let (outcome, chain) =
            verdict(&["Cache-Status: inner; hit", "Cache-Status: outer; fwd=miss"]);
        assert_eq!(outcome, Miss);
        assert_eq!(chain, vec![("inner".into(), Hit), ("outer".into(), Miss)]);
        // One cache: no chain kept.
        assert!(verdict(&["Cache-Status: only; hit"]).1.is_empty());
    }

    #[test]
    fn malformed_cache_status_falls_through_to_the_other_sources() {
        assert_eq!(entries("c; hit,"), None);
        assert_eq!(entries("c;; hit"), None);
        assert_eq!(entries("\"unterminated; hit"), None);
        assert_eq!(entries("c; fwd=\"x"), None);
        assert_eq!(entries("a b; hit"), None);
        let nine: Vec<String> = (0..9).map(|i| format!("c{i}; hit")).collect();
        assert_eq!(entries(&nine.join(", ")), None);
        assert_eq!(entries(&nine[..8].join(", ")).map(|e| e.len()), Some(8));
        assert_eq!(entries(""), Some(vec![]));
        assert_eq!(verdict(&["Cache-Status: c;; hit"]).0, Unknown);
        assert_eq!(verdict(&["Cache-Status: c;; hit", "X-Cache: HIT"]).0, Hit);
        assert_eq!(verdict(&["Cache-Status: c; stored", "Age: 30"]).0, Hit);
        assert_eq!(verdict(&["Cache-Status: , c; hit"]).0, Unknown);
    }

    #[test]
    fn x_cache_family_and_mixed_case_names() {
        assert_eq!(verdict(&["X-Cache: HIT"]).0, Hit);
        assert_eq!(verdict(&["x-cache: Miss from cloudfront"]).0, Miss);
        assert_eq!(verdict(&["X-CACHE: RefreshHit from cloudfront"]).0, Stale);
        assert_eq!(verdict(&["X-Cache: TCP_MEM_HIT"]).0, Hit);
        assert_eq!(verdict(&["X-Cache: TCP_MISS/200"]).0, Miss);
        assert_eq!(verdict(&["X-Cache: HIT from squid.example:3128"]).0, Hit);
        // Fastly: shield, then edge; the edge is the nearest.
        assert_eq!(verdict(&["X-Cache: MISS, HIT"]).0, Hit);
        assert_eq!(verdict(&["X-Cache: HIT, MISS"]).0, Miss);
        assert_eq!(verdict(&["X-Cache: Error from cloudfront"]).0, Unknown);
        assert_eq!(verdict(&["X-Cache-Status: EXPIRED"]).0, Stale);
        assert_eq!(verdict(&["X-Cache-Status: UPDATING"]).0, Stale);
        assert_eq!(verdict(&["X-Cache-Status: BYPASS"]).0, Bypass);
        assert_eq!(verdict(&["x-CACHE-status: hit"]).0, Hit);
        assert_eq!(verdict(&["CF-Cache-Status: DYNAMIC"]).0, Bypass);
        assert_eq!(verdict(&["cf-cache-status: REVALIDATED"]).0, Stale);
        assert_eq!(verdict(&["CF-Cache-Status: NONE"]).0, Unknown);
        // Cache-Status comes first.
        assert_eq!(verdict(&["X-Cache: MISS", "Cache-Status: c; hit"]).0, Hit);
    }

    #[test]
    fn age_and_nothing() {
        assert_eq!(verdict(&["Age: 12"]).0, Hit);
        assert_eq!(verdict(&["age:  3 "]).0, Hit);
        assert_eq!(verdict(&["Age: 0"]).0, Unknown);
        assert_eq!(verdict(&["Age: soon"]).0, Unknown);
        assert_eq!(verdict(&["Content-Type: text/plain"]).0, Unknown);
        assert_eq!(verdict(&[]).0, Unknown);
    }

    #[test]
    fn a_scenario_rule_comes_first_and_falls_through_when_nothing_matches() {
        let rule = CacheRule {
            header: "x-edge-result".into(),
            patterns: vec![
                (
                    Hit,
                    Regex::new("(?i)^served-from-cache").unwrap_or_else(|e| panic!("{e}")),
                ),
                (
                    Miss,
                    Regex::new("(?i)^origin").unwrap_or_else(|e| panic!("{e}")),
                ),
            ],
        };
        let classify_with = |lines: &[&str]| {
            let h = head(lines);
            classify(&h, Some(&rule)).0
        };
        assert_eq!(classify_with(&["X-Edge-Result: Served-From-Cache"]), Hit);
        assert_eq!(
            classify_with(&["x-edge-result: origin (cold)", "X-Cache: HIT"]),
            Miss
        );
        assert_eq!(classify_with(&["x-edge-result: ???", "X-Cache: HIT"]), Hit);
        assert_eq!(classify_with(&["x-edge-result: ???"]), Unknown);
    }
}

//! Execution segments: the slice [a, b) of a plan that one load generator runs.
//!
//! A distributed run cuts the plan into segments, one per agent (agent i of n runs
//! [i/n, (i+1)/n)), and each agent runs its slice of every phase: its share of the
//! open-model arrivals, and of the closed-model VUs and iterations. Bounds are exact
//! fractions and every share is computed from the segment's own bounds alone, so the
//! segments of any partition of [0, 1) add up to exactly the whole plan — nothing is
//! lost or run twice — without an agent knowing the others.
//!
//! Counts (VUs, iterations, `max_vus`) are cut at `floor(total · x)`: the segment
//! [a, b) gets `floor(total · b) − floor(total · a)`, a sum that telescopes to
//! `total` over any partition. Arrivals are dealt out as they come, so that every
//! agent's arrivals interleave over the whole phase: arrival k lands on the point
//! `frac(k / φ)` of [0, 1) (φ the golden ratio, in 64-bit fixed point) and the one
//! segment holding that point runs it. Among the first m arrivals any segment then
//! has (b − a)·m of them give or take 1 + 0.4·ln m (measured over every interval:
//! 3.7 at m = 1000, 6.7 at m = 2.4 million); of the sequences `frac(k·α)` the golden
//! ratio's spreads best. A rule that each segment applies on its own and that is
//! exact for every partition amounts to placing each arrival at a point, and no
//! sequence of points keeps every interval within a constant of its share (Schmidt:
//! the error must grow like log m), so ±1 for every partition is out of reach
//! without agents knowing each other; this rule is within that order.

use std::cmp::Ordering;
use std::fmt;
use std::ops::Range;
use std::str::FromStr;

/// Why a fraction or a segment is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("a fraction's denominator cannot be 0")]
    ZeroDenominator,
    #[error("{num}/{den} is beyond 1: segment bounds lie in [0, 1]")]
    AboveOne { num: u64, den: u64 },
    #[error("segment {start}:{end} is empty: its start must be below its end")]
    Empty { start: Fraction, end: Fraction },
    #[error("agent {index} of {count} does not exist: the index counts from 0 and must be below the count")]
    NoSuchAgent { index: u64, count: u64 },
    #[error("`{0}` is not a segment: expected `a:b` with a < b, each 0, 1, a fraction such as 1/3 or a decimal such as 0.25")]
    Syntax(String),
}

/// A point of [0, 1], as an exact fraction in lowest terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fraction {
    num: u64,
    den: u64,
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Fraction {
    pub const ZERO: Fraction = Fraction { num: 0, den: 1 };
    pub const ONE: Fraction = Fraction { num: 1, den: 1 };

    /// `num / den`, which must lie in [0, 1].
    pub fn new(num: u64, den: u64) -> Result<Self, SegmentError> {
        if den == 0 {
            return Err(SegmentError::ZeroDenominator);
        }
        if num > den {
            return Err(SegmentError::AboveOne { num, den });
        }
        let g = gcd(num, den);
        Ok(Self {
            num: num / g,
            den: den / g,
        })
    }

    pub fn numerator(self) -> u64 {
        self.num
    }

    pub fn denominator(self) -> u64 {
        self.den
    }

    /// `floor(total · self)`: how many of `total` items lie below this point.
    pub fn of(self, total: u64) -> u64 {
        // num <= den, so the quotient is at most `total` and fits.
        (u128::from(total) * u128::from(self.num) / u128::from(self.den)) as u64
    }

    /// `floor(self · 2^64)`, from 0 for 0 up to 2^64 for 1: the point on the
    /// circle that arrivals are dealt on. Monotone, and a function of the value
    /// alone, so neighbouring segments meet exactly.
    fn fixed_point(self) -> u128 {
        (u128::from(self.num) << 64) / u128::from(self.den)
    }
}

impl Ord for Fraction {
    fn cmp(&self, other: &Self) -> Ordering {
        (u128::from(self.num) * u128::from(other.den))
            .cmp(&(u128::from(other.num) * u128::from(self.den)))
    }
}

impl PartialOrd for Fraction {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Fraction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

fn digits(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl FromStr for Fraction {
    type Err = SegmentError;

    /// Reads `0`, `1`, `p/q` or a decimal such as `0.25` (up to 18 decimals).
    fn from_str(text: &str) -> Result<Self, SegmentError> {
        let s = text.trim();
        let syntax = || SegmentError::Syntax(s.to_string());
        if let Some((num, den)) = s.split_once('/') {
            let num = digits(num.trim()).ok_or_else(syntax)?;
            let den = digits(den.trim()).ok_or_else(syntax)?;
            return Fraction::new(num, den);
        }
        if let Some((int, frac)) = s.split_once('.') {
            if frac.len() > 18 {
                return Err(syntax());
            }
            let int = if int.is_empty() {
                0
            } else {
                digits(int).ok_or_else(syntax)?
            };
            let frac_val = digits(frac).ok_or_else(syntax)?;
            let den = 10u64.pow(frac.len() as u32);
            let num = int
                .checked_mul(den)
                .and_then(|n| n.checked_add(frac_val))
                .ok_or(SegmentError::AboveOne { num: int, den: 1 })?;
            return Fraction::new(num, den);
        }
        Fraction::new(digits(s).ok_or_else(syntax)?, 1)
    }
}

/// The slice [start, end) of every phase that one load generator runs.
///
/// ```
/// use loadline_core::executor::segment::Segment;
///
/// let second: Segment = "1/3:2/3".parse().unwrap();
/// assert_eq!(second, Segment::nth(1, 3).unwrap());
/// // Of 10 VUs, agents 0, 1 and 2 of 3 run 3, 3 and 4.
/// assert_eq!(second.share(10), 3);
/// assert_eq!(Segment::nth(2, 3).unwrap().share(10), 4);
/// assert!("2/3:1/3".parse::<Segment>().is_err());
/// ```
///
/// On the wire (serde) a segment is its text form, `"1/3:2/3"`, checked on the way in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Segment {
    start: Fraction,
    end: Fraction,
}

impl Default for Segment {
    fn default() -> Self {
        Self::WHOLE
    }
}

impl Segment {
    /// The whole plan, [0, 1): what a run on one machine executes.
    pub const WHOLE: Segment = Segment {
        start: Fraction::ZERO,
        end: Fraction::ONE,
    };

    /// [start, end); `start` must be below `end`.
    pub fn new(start: Fraction, end: Fraction) -> Result<Self, SegmentError> {
        if start >= end {
            return Err(SegmentError::Empty { start, end });
        }
        Ok(Self { start, end })
    }

    /// The slice of agent `index` (from 0) of `count`: [index/count, (index+1)/count).
    pub fn nth(index: u64, count: u64) -> Result<Self, SegmentError> {
        if index >= count {
            return Err(SegmentError::NoSuchAgent { index, count });
        }
        // index < count, so index + 1 <= count cannot overflow.
        Self::new(
            Fraction::new(index, count)?,
            Fraction::new(index + 1, count)?,
        )
    }

    pub fn start(&self) -> Fraction {
        self.start
    }

    pub fn end(&self) -> Fraction {
        self.end
    }

    pub fn is_whole(&self) -> bool {
        *self == Self::WHOLE
    }

    /// Which of `total` numbered items (from 0) fall to this segment:
    /// `floor(total · start) .. floor(total · end)`. The slices of any partition
    /// of [0, 1) are disjoint and cover `0..total`.
    pub fn slice(&self, total: u64) -> Range<u64> {
        self.start.of(total)..self.end.of(total)
    }

    /// How many of `total` items fall to this segment (the length of [`Self::slice`]).
    pub fn share(&self, total: u64) -> u64 {
        self.end.of(total) - self.start.of(total)
    }

    /// Whether this segment runs arrival `k` (from 0) of an open-model phase.
    /// Exactly one segment of any partition of [0, 1) does.
    pub fn takes_arrival(&self, k: u64) -> bool {
        self.arrivals().takes(k)
    }

    /// The precomputed arrival test, for the scheduler's loop.
    pub(crate) fn arrivals(&self) -> ArrivalPick {
        ArrivalPick {
            lo: self.start.fixed_point(),
            hi: self.end.fixed_point(),
        }
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.start, self.end)
    }
}

impl FromStr for Segment {
    type Err = SegmentError;

    /// Reads `a:b`, each bound `0`, `1`, `p/q` or a decimal.
    fn from_str(text: &str) -> Result<Self, SegmentError> {
        let (a, b) = text
            .split_once(':')
            .ok_or_else(|| SegmentError::Syntax(text.trim().to_string()))?;
        Segment::new(a.parse()?, b.parse()?)
    }
}

impl TryFrom<String> for Segment {
    type Error = SegmentError;

    fn try_from(text: String) -> Result<Self, SegmentError> {
        text.parse()
    }
}

impl From<Segment> for String {
    fn from(s: Segment) -> String {
        s.to_string()
    }
}

/// 2^64 / φ, odd: successive multiples wrap around the 2^64 circle in the golden
/// ratio's low-discrepancy order.
const GOLDEN_STEP: u64 = 0x9E37_79B9_7F4A_7C15;

/// A segment as a half-open arc of the 2^64 circle: arrival k is taken when
/// `k · GOLDEN_STEP mod 2^64` falls in `[lo, hi)`. One multiplication and two
/// comparisons per arrival.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArrivalPick {
    lo: u128,
    hi: u128,
}

impl ArrivalPick {
    #[inline]
    pub(crate) fn takes(self, k: u64) -> bool {
        let point = u128::from(k.wrapping_mul(GOLDEN_STEP));
        self.lo <= point && point < self.hi
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    fn frac(num: u64, den: u64) -> Fraction {
        Fraction::new(num, den).unwrap()
    }

    #[test]
    fn fractions_parse_in_lowest_terms() {
        assert_eq!("2/6".parse::<Fraction>().unwrap(), frac(1, 3));
        assert_eq!("0.25".parse::<Fraction>().unwrap(), frac(1, 4));
        assert_eq!(".5".parse::<Fraction>().unwrap(), frac(1, 2));
        assert_eq!("1.0".parse::<Fraction>().unwrap(), Fraction::ONE);
        assert_eq!(" 0 ".parse::<Fraction>().unwrap(), Fraction::ZERO);
        assert_eq!("0/7".parse::<Fraction>().unwrap(), Fraction::ZERO);
        assert_eq!(frac(3, 9).to_string(), "1/3");
        assert_eq!(Fraction::ONE.to_string(), "1");
        assert!(frac(1, 3) < frac(1, 2));
        assert_eq!(frac(2, 3).of(10), 6);
        assert_eq!(Fraction::ONE.of(u64::MAX), u64::MAX);
        for bad in [
            "",
            "x",
            "1/",
            "/2",
            "-1/2",
            "+1",
            "1.2.3",
            "0.",
            "1e3",
            "0.1234567890123456789",
        ] {
            assert!(
                matches!(bad.parse::<Fraction>(), Err(SegmentError::Syntax(_))),
                "{bad}"
            );
        }
        assert_eq!(Fraction::new(1, 0), Err(SegmentError::ZeroDenominator));
        assert_eq!(
            "3/2".parse::<Fraction>(),
            Err(SegmentError::AboveOne { num: 3, den: 2 })
        );
        assert!("1.5".parse::<Fraction>().is_err());
        assert!("18446744073709551615.5".parse::<Fraction>().is_err());
    }

    #[test]
    fn segments_are_checked_and_read_back() {
        assert_eq!(Segment::default(), Segment::WHOLE);
        assert!(Segment::WHOLE.is_whole());
        assert_eq!(Segment::WHOLE.to_string(), "0:1");
        let s = Segment::nth(1, 3).unwrap();
        assert_eq!(s.to_string(), "1/3:2/3");
        assert_eq!("1/3:0.5".parse::<Segment>().unwrap().end(), frac(1, 2));
        assert_eq!(s.to_string().parse::<Segment>().unwrap(), s);
        assert!(matches!(
            "1/2:1/2".parse::<Segment>(),
            Err(SegmentError::Empty { .. })
        ));
        assert!(matches!(
            "1/2".parse::<Segment>(),
            Err(SegmentError::Syntax(_))
        ));
        assert_eq!(
            Segment::nth(3, 3),
            Err(SegmentError::NoSuchAgent { index: 3, count: 3 })
        );
        assert!(Segment::nth(0, 0).is_err());
        assert_eq!(
            Segment::nth(u64::MAX - 1, u64::MAX).unwrap().end(),
            Fraction::ONE
        );
        assert_eq!(Segment::nth(0, 1).unwrap(), Segment::WHOLE);
        assert_eq!(s.slice(10), 3..6);
        assert_eq!(Segment::WHOLE.slice(7), 0..7);
    }

    #[test]
    fn segments_travel_as_their_text() {
        let s = Segment::nth(2, 5).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(json, r#""2/5:3/5""#);
        assert_eq!(serde_json::from_str::<Segment>(&json).unwrap(), s);
        assert!(serde_json::from_str::<Segment>(r#""3/5:2/5""#).is_err());
        assert!(serde_json::from_str::<Segment>(r#""0:2""#).is_err());
    }

    #[test]
    fn the_whole_plan_takes_every_arrival() {
        let pick = Segment::WHOLE.arrivals();
        assert!((0..10_000).all(|k| pick.takes(k)));
        assert!(pick.takes(u64::MAX));
    }

    /// Random partitions of [0, 1) into 1..=8 segments: cut points with random
    /// denominators, or `n` equal parts.
    pub(crate) fn partition() -> impl Strategy<Value = Vec<Segment>> {
        let cuts = (1u64..=1_000_000)
            .prop_flat_map(|den| {
                proptest::collection::vec(0..=den, 0..=7).prop_map(move |n| (n, den))
            })
            .prop_map(|(nums, den)| {
                let mut points: Vec<Fraction> = nums
                    .into_iter()
                    .map(|n| Fraction::new(n, den).unwrap())
                    .collect();
                points.push(Fraction::ZERO);
                points.push(Fraction::ONE);
                points.sort();
                points.dedup();
                points
                    .windows(2)
                    .map(|w| Segment::new(w[0], w[1]).unwrap())
                    .collect::<Vec<_>>()
            });
        let equal = (1u64..=8).prop_map(|n| {
            (0..n)
                .map(|i| Segment::nth(i, n).unwrap())
                .collect::<Vec<_>>()
        });
        prop_oneof![cuts, equal]
    }

    proptest! {
        #[test]
        fn counts_are_shared_out_exactly(parts in partition(), total in 0u64..=u64::MAX) {
            let mut next = 0;
            for s in &parts {
                let slice = s.slice(total);
                prop_assert_eq!(slice.start, next);
                prop_assert!(slice.end >= slice.start);
                prop_assert_eq!(s.share(total), slice.end - slice.start);
                next = slice.end;
            }
            prop_assert_eq!(next, total);
        }

        #[test]
        fn each_arrival_falls_to_one_segment(parts in partition(), ks in proptest::collection::vec(any::<u64>(), 64)) {
            for k in ks {
                prop_assert_eq!(parts.iter().filter(|s| s.takes_arrival(k)).count(), 1);
            }
        }

        #[test]
        fn text_form_reads_back(parts in partition()) {
            for s in parts {
                prop_assert_eq!(s.to_string().parse::<Segment>().unwrap(), s);
            }
        }
    }
}

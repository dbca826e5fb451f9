//! Any text as a SQL statement: its placeholders read for each dialect. For
//! MySQL the rewritten text is the input with each `$n` placeholder turned into
//! one `?` and nothing else changed, the binding order names those `$n` in turn
//! (or, for a query written with `?`, counts them), and the rewritten text reads
//! back as that many `?`, unchanged. No dialect counts more parameters than the
//! text could hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use loadline_protocols::sql::placeholders::{rewrite, Dialect, PlaceholderError};

/// The decimal number at the start of `b` (saturated, as the lexer reads it)
/// and how many digits it has.
fn number(b: &[u8]) -> (usize, usize) {
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    let n = b[..digits].iter().fold(0usize, |n, d| {
        n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
    });
    (n, digits)
}

/// The largest number written right after a `$` (or, with `question`, a `?`)
/// anywhere in the text, quotes and comments included.
fn largest_number_after(sql: &[u8], question: bool) -> usize {
    (0..sql.len())
        .filter(|&i| sql[i] == b'$' || (question && sql[i] == b'?'))
        .map(|i| number(&sql[i + 1..]).0)
        .max()
        .unwrap_or(0)
}

/// Walks the input and MySQL's rewrite together: they may differ only where a
/// `$n` of the input is one `?` of the output. Returns those `n`, in order.
fn numbers_replaced(sql: &[u8], out: &[u8]) -> Vec<usize> {
    let (mut i, mut j) = (0, 0);
    let mut replaced = Vec::new();
    while i < sql.len() || j < out.len() {
        if i < sql.len() && j < out.len() && sql[i] == out[j] {
            i += 1;
            j += 1;
            continue;
        }
        assert_eq!(sql.get(i), Some(&b'$'), "input changed at byte {i}");
        assert_eq!(out.get(j), Some(&b'?'), "output changed at byte {j}");
        let (n, digits) = number(&sql[i + 1..]);
        assert!(digits > 0, "a `$` without digits replaced at byte {i}");
        replaced.push(n);
        i += 1 + digits;
        j += 1;
    }
    replaced
}

fuzz_target!(|sql: &str| {
    let (mut out, mut order) = (String::new(), Vec::new());
    let bytes = sql.as_bytes();
    let question_marks = bytes.iter().filter(|&&c| c == b'?').count();

    for dialect in [Dialect::Postgres, Dialect::Sqlite] {
        let counted = rewrite(sql, dialect, &mut out, &mut order);
        assert!(out.is_empty() && order.is_empty());
        if let Ok(n) = counted {
            // The highest `$n` (SQLite: or `?n`, or the number of `?`) written
            // anywhere, quotes and comments included.
            let most = match dialect {
                Dialect::Sqlite => largest_number_after(bytes, true).max(question_marks),
                _ => largest_number_after(bytes, false),
            };
            assert!(
                n <= most,
                "{dialect:?} counts {n}, the text holds at most {most}"
            );
        }
    }

    match rewrite(sql, Dialect::MySql, &mut out, &mut order) {
        Ok(n) => {
            let replaced = numbers_replaced(bytes, out.as_bytes());
            if replaced.is_empty() {
                // Written with `?`: kept, bound in order.
                assert_eq!(out, sql);
                assert!(n <= question_marks);
                assert!(order.iter().copied().eq(0..n));
            } else {
                let from_numbers: Vec<usize> = replaced.iter().map(|n| n - 1).collect();
                assert_eq!(order, from_numbers);
                assert_eq!(Some(&n), replaced.iter().max());
            }
            // The rewrite read again: only `?`, in order, nothing to change.
            let (mut again, mut again_order) = (String::new(), Vec::new());
            assert_eq!(
                rewrite(&out, Dialect::MySql, &mut again, &mut again_order),
                Ok(order.len()),
                "{out:?}"
            );
            assert_eq!(again, out);
            assert!(again_order.iter().copied().eq(0..order.len()));
        }
        Err(PlaceholderError::Zero) => assert!(sql.contains("$0")),
        Err(PlaceholderError::Mixed) => assert!(sql.contains('?') && sql.contains('$')),
    }
});

//! Placeholders. Scenarios write `$1`, `$2`, … for every driver:
//!
//! - PostgreSQL takes them as they are;
//! - SQLite takes them as they are too (it numbers `$NNN` and `?NNN` itself);
//! - MySQL/MariaDB only knows `?`, so each `$n` becomes a `?` and the parameter
//!   it stands for is remembered: `b = $2 AND a = $1` binds the second parameter
//!   first, and a repeated `$1` binds the first parameter twice.
//!
//! A query may use the driver's own `?` instead (MySQL, SQLite), bound in order;
//! mixing `?` and `$n` in one query is an error. Text inside string literals,
//! quoted identifiers and comments is left alone (`'costs $1'` has no
//! placeholder), as are PostgreSQL's dollar-quoted bodies and its `?` operators.

use std::fmt;

/// The SQL dialect, as far as placeholders and quoting go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

/// A query whose placeholders make no sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlaceholderError {
    /// `$0`.
    Zero,
    /// `?` and `$n` in one query.
    Mixed,
}

impl fmt::Display for PlaceholderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlaceholderError::Zero => f.write_str("`$0` is not a placeholder: they start at `$1`"),
            PlaceholderError::Mixed => {
                f.write_str("the query mixes `?` and `$n` placeholders: write `$1`, `$2`, …")
            }
        }
    }
}

/// Scans `sql`. Returns how many parameters it uses (the highest `$n`, or the
/// number of `?`). For MySQL, writes the query with `$n` turned into `?` to
/// `out` and, for each `?` in order, the 0-based index of its parameter to
/// `order`; for the other dialects `out` and `order` are left empty.
pub fn rewrite(
    sql: &str,
    dialect: Dialect,
    out: &mut String,
    order: &mut Vec<usize>,
) -> Result<usize, PlaceholderError> {
    out.clear();
    order.clear();
    let b = sql.as_bytes();
    let mysql = dialect == Dialect::MySql;
    let pg = dialect == Dialect::Postgres;
    let mut highest = 0usize;
    let mut numbered = false;
    let mut positional = 0usize;
    let mut copied = 0usize;
    let mut i = 0usize;
    // Where the last numbered placeholder ended: a `$` there starts another
    // one (`$1$2`), though after a digit of a name it would not (`a1$2`).
    let mut placeholder_end = 0usize;
    while i < b.len() {
        match b[i] {
            b'\'' => {
                // MySQL escapes with backslashes by default; PostgreSQL only in E'…'.
                let backslash = mysql || (pg && is_escape_string_prefix(b, i));
                i = skip_quoted(b, i, b'\'', backslash);
            }
            b'"' => i = skip_quoted(b, i, b'"', mysql),
            b'`' if !pg => i = skip_quoted(b, i, b'`', false),
            b'-' if b.get(i + 1) == Some(&b'-')
                && (!mysql || b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace())) =>
            {
                i = skip_line(b, i);
            }
            b'#' if mysql => i = skip_line(b, i),
            b'/' if b.get(i + 1) == Some(&b'*') => i = skip_block_comment(b, i, pg),
            b'$' if i > 0 && i != placeholder_end && is_ident(b[i - 1]) => i += 1,
            b'$' if b.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let (n, end) = number(b, i + 1);
                if n == 0 {
                    return Err(PlaceholderError::Zero);
                }
                numbered = true;
                highest = highest.max(n);
                if mysql {
                    out.push_str(&sql[copied..i]);
                    out.push('?');
                    order.push(n - 1);
                    copied = end;
                }
                i = end;
                placeholder_end = end;
            }
            b'$' if pg => i = skip_dollar_quoted(b, i),
            b'?' if !pg => {
                if dialect == Dialect::Sqlite && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                    let (n, end) = number(b, i + 1);
                    numbered = true;
                    highest = highest.max(n);
                    i = end;
                    placeholder_end = end;
                } else {
                    if mysql {
                        order.push(positional);
                    }
                    positional += 1;
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    if numbered && positional > 0 {
        return Err(PlaceholderError::Mixed);
    }
    if mysql {
        out.push_str(&sql[copied..]);
    }
    Ok(if numbered { highest } else { positional })
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$' || c >= 0x80
}

/// Whether the quote at `i` opens a PostgreSQL `E'…'` string.
fn is_escape_string_prefix(b: &[u8], i: usize) -> bool {
    i > 0 && matches!(b[i - 1], b'E' | b'e') && (i < 2 || !is_ident(b[i - 2]))
}

/// Skips a quoted run starting at `i` (doubled quotes and, when `backslash`,
/// backslash escapes stay inside). Returns the index after the closing quote, or
/// the end of the text when it is never closed (the server will say so).
fn skip_quoted(b: &[u8], i: usize, quote: u8, backslash: bool) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        let c = b[j];
        if backslash && c == b'\\' {
            j += 2;
        } else if c == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2;
            } else {
                return j + 1;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

fn skip_line(b: &[u8], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(b.len(), |p| i + p + 1)
}

/// Skips `/* … */` (nested in PostgreSQL).
fn skip_block_comment(b: &[u8], i: usize, nested: bool) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j + 1 < b.len() {
        if b[j] == b'/' && b[j + 1] == b'*' {
            depth += 1;
            j += 2;
            if !nested && depth > 1 {
                depth = 1;
            }
        } else if b[j] == b'*' && b[j + 1] == b'/' {
            depth -= 1;
            j += 2;
            if depth == 0 {
                return j;
            }
        } else {
            j += 1;
        }
    }
    b.len()
}

/// Skips a PostgreSQL dollar-quoted body (`$$ … $$`, `$tag$ … $tag$`) starting at
/// `i`; a `$` that opens none is stepped over.
fn skip_dollar_quoted(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_' || b[j] >= 0x80) {
        j += 1;
    }
    if j >= b.len() || b[j] != b'$' {
        return i + 1;
    }
    let tag = &b[i..=j];
    let body = j + 1;
    b[body..]
        .windows(tag.len())
        .position(|w| w == tag)
        .map_or(b.len(), |p| body + p + tag.len())
}

/// Reads the decimal number starting at `i`; returns it (saturated) and the index
/// after it.
fn number(b: &[u8], i: usize) -> (usize, usize) {
    let mut n = 0usize;
    let mut j = i;
    while j < b.len() && b[j].is_ascii_digit() {
        n = n
            .saturating_mul(10)
            .saturating_add(usize::from(b[j] - b'0'));
        j += 1;
    }
    (n, j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mysql(sql: &str) -> (String, Vec<usize>, usize) {
        let (mut out, mut order) = (String::new(), Vec::new());
        let n = rewrite(sql, Dialect::MySql, &mut out, &mut order).expect("valid placeholders");
        (out, order, n)
    }

    fn count(sql: &str, dialect: Dialect) -> Result<usize, PlaceholderError> {
        rewrite(sql, dialect, &mut String::new(), &mut Vec::new())
    }

    #[test]
    fn mysql_numbers_become_question_marks_in_order() {
        let (sql, order, n) = mysql("UPDATE a SET x = $2 WHERE id = $1 AND y = $2");
        assert_eq!(sql, "UPDATE a SET x = ? WHERE id = ? AND y = ?");
        assert_eq!(order, vec![1, 0, 1]);
        assert_eq!(n, 2);
    }

    #[test]
    fn literals_identifiers_and_comments_are_left_alone() {
        let src = "SELECT '$1', 'it''s $2', \"col$3\", `t$4`, a$5, x -- $6\n\
                   , /* $7 */ y # $8\n, $1";
        let (sql, order, n) = mysql(src);
        assert_eq!(sql, src.replace(", $1", ", ?"));
        assert_eq!(order, vec![0]);
        assert_eq!(n, 1);
    }

    #[test]
    fn mysql_backslash_escapes_stay_inside_strings() {
        let (sql, order, _) = mysql(r"SELECT 'a\'$1', $1");
        assert_eq!(sql, r"SELECT 'a\'$1', ?");
        assert_eq!(order, vec![0]);
        // In MySQL `--` only starts a comment when followed by a space.
        let (sql, _, n) = mysql("SELECT 5--$1");
        assert_eq!((sql.as_str(), n), ("SELECT 5--?", 1));
    }

    #[test]
    fn question_marks_are_kept_and_counted() {
        let (sql, order, n) = mysql("INSERT INTO t VALUES (?, '?', ?)");
        assert_eq!(sql, "INSERT INTO t VALUES (?, '?', ?)");
        assert_eq!((order, n), (vec![0, 1], 2));
        assert_eq!(
            count("SELECT ? , $1", Dialect::MySql),
            Err(PlaceholderError::Mixed)
        );
        assert_eq!(count("SELECT ?, ?", Dialect::Sqlite), Ok(2));
        assert_eq!(count("SELECT ?2, ?1", Dialect::Sqlite), Ok(2));
    }

    #[test]
    fn postgres_keeps_the_text_and_skips_its_own_quoting() {
        let mut out = String::new();
        let mut order = Vec::new();
        let sql = "SELECT $$ $9 $$, $f$ $8 $f$, E'\\' $7', data ? 'k', $2::int /* $6 /* $5 */ */";
        assert_eq!(rewrite(sql, Dialect::Postgres, &mut out, &mut order), Ok(2));
        assert!(out.is_empty() && order.is_empty());
        assert_eq!(count("SELECT $1 + $12", Dialect::Postgres), Ok(12));
        assert_eq!(count("SELECT 1", Dialect::Postgres), Ok(0));
        assert_eq!(
            count("SELECT $0", Dialect::Postgres),
            Err(PlaceholderError::Zero)
        );
    }

    #[test]
    fn adjacent_placeholders_are_each_read() {
        let (sql, order, n) = mysql("SELECT $2$1, a1$3");
        assert_eq!((sql.as_str(), order, n), ("SELECT ??, a1$3", vec![1, 0], 2));
        assert_eq!(count("SELECT $1$2", Dialect::Postgres), Ok(2));
        assert_eq!(count("SELECT ?1$2", Dialect::Sqlite), Ok(2));
    }

    #[test]
    fn unterminated_quotes_do_not_panic() {
        assert_eq!(count("SELECT '$1", Dialect::MySql), Ok(0));
        assert_eq!(count("SELECT $tag$ $1", Dialect::Postgres), Ok(0));
        assert_eq!(count("SELECT /* $1", Dialect::Sqlite), Ok(0));
        assert_eq!(count("SELECT $", Dialect::Postgres), Ok(0));
    }
}

//! YAML text to a tree of [`Node`]s that remember where they were written.
//!
//! yaml-rust2's event parser does the scanning; this module assembles its events
//! into a tree where every scalar, list and mapping (and every mapping key) keeps
//! its 1-based line and column, so that later errors can point at the exact spot.
//! Aliases are expanded by copying the anchored node; duplicate keys are errors.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

pub use loadline_core::build::Mark;

/// The 1-based position of a parser marker.
fn mark_of(m: &Marker) -> Mark {
    Mark {
        line: m.line(),
        column: m.col() + 1,
    }
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub mark: Mark,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Scalar(Scalar),
    Seq(Vec<Node>),
    /// Keys in the order written; keys are scalars.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub text: String,
    /// A plain (unquoted) scalar may be a number, a boolean or null; any other
    /// style is always a string.
    pub plain: bool,
    /// The column of the first character of `text` when the text is written on
    /// one line exactly as it reads (no escapes, no folding), so a byte offset in
    /// the text maps to a column.
    pub content_column: Option<usize>,
    /// A local tag written before the scalar (`!name` in `!name postgres`),
    /// without its `!`: it names the variant of an enum (`{ name: postgres }`).
    pub tag: Option<String>,
}

/// What a plain scalar means under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    /// Resolves the scalar's type: quoted and block scalars are strings.
    pub fn resolve(&self) -> Resolved<'_> {
        if !self.plain {
            return Resolved::Str(&self.text);
        }
        let t = self.text.as_str();
        match t {
            "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
            "true" | "True" | "TRUE" => return Resolved::Bool(true),
            "false" | "False" | "FALSE" => return Resolved::Bool(false),
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
                return Resolved::Float(f64::INFINITY)
            }
            "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
            _ => {}
        }
        if let Some(i) = parse_int(t) {
            return Resolved::Int(i);
        }
        if looks_like_float(t) {
            if let Ok(f) = t.parse::<f64>() {
                return Resolved::Float(f);
            }
        }
        Resolved::Str(t)
    }
}

fn parse_int(t: &str) -> Option<i128> {
    let (neg, digits) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, t),
    };
    let (radix, digits) = if let Some(h) = digits.strip_prefix("0x") {
        (16, h)
    } else if let Some(o) = digits.strip_prefix("0o") {
        (8, o)
    } else {
        (10, digits)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    // Absurdly long numbers saturate: range checks then report them as too large.
    let v = i128::from_str_radix(digits, radix).unwrap_or(i128::MAX);
    Some(if neg { -v } else { v })
}

fn looks_like_float(t: &str) -> bool {
    let body = t.strip_prefix(['-', '+']).unwrap_or(t);
    body.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && body.chars().any(|c| c.is_ascii_digit())
        && body
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
}

impl Node {
    /// A short description of what the node is, for "found …" in messages.
    pub fn describe(&self) -> String {
        match &self.value {
            NodeValue::Seq(_) => "a list".into(),
            NodeValue::Map(_) => "a mapping".into(),
            NodeValue::Scalar(s) => match s.resolve() {
                Resolved::Null => "nothing (null)".into(),
                Resolved::Bool(b) => format!("the boolean {b}"),
                Resolved::Int(_) | Resolved::Float(_) => format!("the number {}", s.text),
                Resolved::Str(t) => format!("the string {}", quote_short(t)),
            },
        }
    }
}

/// Quotes a text for a message, shortened when long.
pub fn quote_short(t: &str) -> String {
    const MAX: usize = 40;
    if t.chars().count() > MAX {
        let head: String = t.chars().take(MAX).collect();
        format!("\"{head}…\"")
    } else {
        format!("\"{t}\"")
    }
}

/// A problem found while reading the YAML text.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    pub mark: Mark,
    pub message: String,
}

/// The most nodes alias expansion may create, so a few nested aliases cannot
/// blow up memory.
const ALIAS_NODE_BUDGET: usize = 100_000;

/// Parses one YAML document. A syntax error stops everything and is returned
/// alone; duplicate keys and similar problems are collected and the tree is still
/// returned (the first of two duplicate keys wins).
pub fn parse(text: &str) -> Result<(Option<Node>, Vec<YamlError>), YamlError> {
    let mut parser = Parser::new_from_str(text);
    let lines: Vec<&str> = text.split('\n').collect();
    let mut builder = Builder {
        lines,
        stack: Vec::new(),
        anchors: HashMap::new(),
        problems: Vec::new(),
        root: None,
        documents: 0,
        alias_nodes: 0,
    };
    loop {
        let (event, marker) = parser.next_token().map_err(|e| YamlError {
            mark: mark_of(e.marker()),
            message: format!("invalid YAML: {}", e.info()),
        })?;
        let mark = mark_of(&marker);
        match event {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                builder.documents += 1;
                if builder.documents > 1 {
                    return Err(YamlError {
                        mark,
                        message: "a scenario file holds one YAML document: remove the second `---`"
                            .into(),
                    });
                }
            }
            other => builder.event(other, mark, &marker)?,
        }
    }
    Ok((builder.root, builder.problems))
}

enum Frame {
    Seq {
        mark: Mark,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        mark: Mark,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
    },
}

struct Builder<'t> {
    lines: Vec<&'t str>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    problems: Vec<YamlError>,
    root: Option<Node>,
    documents: usize,
    alias_nodes: usize,
}

impl Builder<'_> {
    fn event(&mut self, event: Event, mark: Mark, marker: &Marker) -> Result<(), YamlError> {
        match event {
            Event::Scalar(text, style, anchor, tag) => {
                let content_column = self.content_column(&text, style, marker);
                let tag = tag
                    .filter(|t| t.handle == "!" && !t.suffix.is_empty())
                    .map(|t| t.suffix);
                let node = Node {
                    mark,
                    value: NodeValue::Scalar(Scalar {
                        plain: style == TScalarStyle::Plain,
                        text,
                        content_column,
                        tag,
                    }),
                };
                self.finish(node, anchor)
            }
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::Seq {
                    mark,
                    anchor,
                    items: Vec::new(),
                });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map {
                    mark,
                    anchor,
                    entries: Vec::new(),
                    pending_key: None,
                });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                // A block collection's start event comes after its first key or
                // item; the node starts where its first entry does.
                Some(Frame::Seq {
                    mark,
                    anchor,
                    items,
                    ..
                }) => {
                    let mark = items.first().map_or(mark, |i| mark.min(i.mark));
                    let value = NodeValue::Seq(items);
                    self.finish(Node { mark, value }, anchor)
                }
                Some(Frame::Map {
                    mark,
                    anchor,
                    entries,
                    ..
                }) => {
                    let mark = entries.first().map_or(mark, |(k, _)| mark.min(k.mark));
                    let value = NodeValue::Map(entries);
                    self.finish(Node { mark, value }, anchor)
                }
                None => Ok(()),
            },
            Event::Alias(id) => {
                let Some(node) = self.anchors.get(&id).cloned() else {
                    return Err(YamlError {
                        mark,
                        message: "this alias refers to no anchor".into(),
                    });
                };
                self.alias_nodes += count_nodes(&node);
                if self.alias_nodes > ALIAS_NODE_BUDGET {
                    return Err(YamlError {
                        mark,
                        message: format!(
                            "aliases expand to more than {ALIAS_NODE_BUDGET} values: write the values out"
                        ),
                    });
                }
                // The copy points at the alias, where it is used.
                let node = Node { mark, ..node };
                self.finish(node, 0)
            }
            Event::Nothing | Event::StreamStart | Event::DocumentEnd => Ok(()),
            Event::StreamEnd | Event::DocumentStart => Ok(()),
        }
    }

    /// Places a completed node into its parent (or as the root).
    fn finish(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries,
                pending_key,
                ..
            }) => match pending_key.take() {
                None => {
                    if !matches!(node.value, NodeValue::Scalar(_)) {
                        return Err(YamlError {
                            mark: node.mark,
                            message: "a mapping key must be a plain name, not a list or mapping"
                                .into(),
                        });
                    }
                    *pending_key = Some(node);
                }
                Some(key) => {
                    let key_text = scalar_text(&key);
                    let first = entries
                        .iter()
                        .find(|(k, _)| scalar_text(k) == key_text)
                        .map(|(k, _)| k.mark);
                    match first {
                        Some(first) => self.problems.push(YamlError {
                            mark: key.mark,
                            message: format!(
                                "duplicate key `{key_text}` (first written at line {}): remove one",
                                first.line
                            ),
                        }),
                        None => entries.push((key, node)),
                    }
                }
            },
        }
        Ok(())
    }

    /// Where a scalar's text starts, when its text appears verbatim on one line.
    fn content_column(&self, text: &str, style: TScalarStyle, marker: &Marker) -> Option<usize> {
        if text.contains('\n') {
            return None;
        }
        let line = self.lines.get(marker.line().checked_sub(1)?)?;
        let start_col = marker.col();
        let (skip, quote) = match style {
            TScalarStyle::Plain => (0, None),
            TScalarStyle::SingleQuoted => (1, Some('\'')),
            TScalarStyle::DoubleQuoted => (1, Some('"')),
            TScalarStyle::Literal | TScalarStyle::Folded => return None,
        };
        let written: String = line
            .chars()
            .skip(start_col + skip)
            .take(text.chars().count())
            .collect();
        // An escaped character is written longer than it reads.
        let has_escapes = match quote {
            Some('"') => text.contains(['"', '\\']),
            Some(q) => text.contains(q),
            None => false,
        };
        (written == text && !has_escapes).then_some(start_col + 1 + skip)
    }
}

fn scalar_text(node: &Node) -> &str {
    match &node.value {
        NodeValue::Scalar(s) => &s.text,
        _ => "",
    }
}

fn count_nodes(node: &Node) -> usize {
    1 + match &node.value {
        NodeValue::Scalar(_) => 0,
        NodeValue::Seq(items) => items.iter().map(count_nodes).sum(),
        NodeValue::Map(entries) => entries
            .iter()
            .map(|(k, v)| count_nodes(k) + count_nodes(v))
            .sum(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        let (node, problems) = parse(text).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        node.unwrap()
    }

    #[test]
    fn marks_are_one_based_and_point_at_keys_and_values() {
        let n = root("a: 1\nb:\n  - x\n  - 'y z'\n");
        let NodeValue::Map(entries) = &n.value else {
            panic!("not a map")
        };
        assert_eq!(entries[0].0.mark, Mark { line: 1, column: 1 });
        assert_eq!(entries[0].1.mark, Mark { line: 1, column: 4 });
        let NodeValue::Seq(items) = &entries[1].1.value else {
            panic!("not a seq")
        };
        assert_eq!(items[1].mark, Mark { line: 4, column: 5 });
        let NodeValue::Scalar(s) = &items[1].value else {
            panic!()
        };
        assert_eq!(s.content_column, Some(6));
        assert!(!s.plain);
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        let s = |t: &str| Scalar {
            text: t.into(),
            plain: true,
            content_column: None,
            tag: None,
        };
        assert_eq!(s("20").resolve(), Resolved::Int(20));
        assert_eq!(s("-3").resolve(), Resolved::Int(-3));
        assert_eq!(s("0x10").resolve(), Resolved::Int(16));
        assert_eq!(s("2.5").resolve(), Resolved::Float(2.5));
        assert_eq!(s("1e3").resolve(), Resolved::Float(1000.0));
        assert_eq!(s("~").resolve(), Resolved::Null);
        assert_eq!(s("true").resolve(), Resolved::Bool(true));
        assert_eq!(s("10s").resolve(), Resolved::Str("10s"));
        assert_eq!(s("1.2.3").resolve(), Resolved::Str("1.2.3"));
        let quoted = Scalar {
            plain: false,
            ..s("20")
        };
        assert_eq!(quoted.resolve(), Resolved::Str("20"));
    }

    #[test]
    fn duplicate_keys_and_aliases() {
        let (_, problems) = parse("a: 1\nb: 2\na: 3\n").unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].mark.line, 3);
        assert!(problems[0].message.contains("duplicate key `a`"));
        let n = root("h: &h { x: 1 }\nk: *h\n");
        let NodeValue::Map(entries) = &n.value else {
            panic!()
        };
        assert!(matches!(&entries[1].1.value, NodeValue::Map(m) if m.len() == 1));
        assert_eq!(entries[1].1.mark.line, 2);
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.message.starts_with("invalid YAML"), "{e:?}");
        assert!(e.mark.line >= 1);
        assert!(parse("a: 1\n---\nb: 2\n").is_err());
    }
}

//! A serde `Deserializer` over the [`Node`] tree, so the scenario model can be
//! plain `#[derive(Deserialize)]` structs while every error still knows its line.
//!
//! Three wrapper types cooperate with it:
//! - [`Spanned<T>`] keeps where a value was written (line, column, path), for the
//!   checks that run after deserialization (durations, templates, URLs…);
//! - [`Lenient<T>`] records a failure to deserialize its value and carries on, so
//!   one file reports every broken phase, flow, step or section, not only the first;
//! - [`Entries<T>`] is a mapping kept in written order, with spanned keys.
//!
//! Unknown keys are reported by the deserializer itself (it knows each struct's
//! fields), with a did-you-mean, and skipped, so they never hide other errors.
//! These wrappers only work with this deserializer.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::Deserialize;

use crate::suggest::{did_you_mean, one_of};
use crate::yaml::{Mark, Node, NodeValue, Resolved, Scalar};

/// A deserialization error; it gets the mark of the innermost node it passes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub mark: Option<Mark>,
    pub path: String,
    pub message: String,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            mark: None,
            path: String::new(),
            message: msg.to_string(),
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("expected {exp}, found {unexp}"))
    }

    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::custom(format_args!("expected {exp}, found {unexp}"))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(unknown_key_message(field, expected))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let mut m = format!("unknown value `{variant}`, expected {}", one_of(expected));
        if let Some(s) = did_you_mean(variant, expected.iter().copied()) {
            m.push_str(&format!("; did you mean `{s}`?"));
        }
        Self::custom(m)
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing key `{field}`"))
    }
}

fn unknown_key_message(key: &str, expected: &[&str]) -> String {
    let mut m = if expected.is_empty() {
        format!("unknown key `{key}`: no keys are allowed here")
    } else {
        format!(
            "unknown key `{key}`, expected one of {}",
            expected.join(", ")
        )
    };
    if let Some(s) = did_you_mean(key, expected.iter().copied()) {
        m.push_str(&format!("; did you mean `{s}`?"));
    }
    m
}

/// Collects the errors recorded while deserializing.
#[derive(Debug, Default)]
pub struct Sink {
    errors: RefCell<Vec<DeError>>,
    suggestions: RefCell<Vec<(Mark, String)>>,
    /// Keys some other reader takes from the mapping at a mark (the protocols'
    /// sections of a scenario's root): known, so listed and suggested, though
    /// the struct read here does not have them.
    also_known: Vec<(Mark, Vec<&'static str>)>,
}

impl Sink {
    /// A sink for which the mapping at `mapping` also knows `keys` (taken out of
    /// it beforehand by another reader): an unknown key there lists them and may
    /// be suggested one of them.
    pub fn with_known_keys(mapping: Mark, keys: Vec<&'static str>) -> Self {
        Self {
            also_known: vec![(mapping, keys)],
            ..Self::default()
        }
    }

    /// The keys suggested for unknown keys, with the mark of their mapping: a
    /// check that would report such a key as missing can stay quiet.
    pub fn take_suggestions(&self) -> Vec<(Mark, String)> {
        self.suggestions.take()
    }

    fn push(&self, e: DeError) {
        let mut errors = self.errors.borrow_mut();
        if !errors.contains(&e) {
            errors.push(e);
        }
    }

    pub fn into_errors(self) -> Vec<DeError> {
        self.errors.into_inner()
    }
}

/// Deserializes `node` as a `T`, recording every error in `sink`. Returns `None`
/// when the value as a whole could not be built.
pub fn from_node<'de, T: Deserialize<'de>>(node: &Node, sink: &Sink) -> Option<T> {
    let de = NodeDe {
        node,
        path: String::new(),
        sink,
        record: true,
    };
    T::deserialize(de).ok()
}

pub use loadline_core::build::Span;

/// A value and where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub span: Span,
    pub value: T,
}

const SPANNED: &str = "$loadline::Spanned";
const LENIENT: &str = "$loadline::Lenient";
const RAW: &str = "$loadline::Raw";

thread_local! {
    /// The node a [`Raw`] is being deserialized from, handed over by the
    /// deserializer (serde's data model has no way to pass it through).
    static RAW_NODE: RefCell<Option<Raw>> = const { RefCell::new(None) };
}

/// A value kept as its node, to be read later by whoever owns it: the scenario
/// skeleton keeps each step as a `Raw`, and the protocol the step belongs to
/// reads its own step document from it with [`read`].
#[derive(Debug, Clone, PartialEq)]
pub struct Raw {
    pub node: Node,
    /// Like `flows[0].steps[2]`.
    pub path: String,
}

impl Raw {
    /// Where the value was written.
    pub fn span(&self) -> Span {
        Span {
            mark: self.node.mark,
            path: self.path.clone(),
            content_column: None,
        }
    }

    /// The keys of a mapping with their value nodes, in written order (empty for
    /// any other value).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Node, &Node)> {
        let entries: &[(Node, Node)] = match &self.node.value {
            NodeValue::Map(entries) => entries,
            _ => &[],
        };
        entries.iter().filter_map(|(k, v)| match &k.value {
            NodeValue::Scalar(s) => Some((s.text.as_str(), k, v)),
            _ => None,
        })
    }

    /// The value under `key`, as a `Raw`, when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<Raw> {
        self.entries()
            .find(|(k, _, _)| *k == key)
            .map(|(k, _, v)| Raw {
                node: v.clone(),
                path: child_key_path(&self.path, k),
            })
    }

    /// This mapping without the entries whose key `drop` refuses.
    pub fn without(&self, drop: impl Fn(&str) -> bool) -> Raw {
        let node = match &self.node.value {
            NodeValue::Map(entries) => Node {
                mark: self.node.mark,
                value: NodeValue::Map(
                    entries
                        .iter()
                        .filter(|(k, _)| match &k.value {
                            NodeValue::Scalar(s) => !drop(&s.text),
                            _ => true,
                        })
                        .cloned()
                        .collect(),
                ),
            },
            _ => self.node.clone(),
        };
        Raw {
            node,
            path: self.path.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                RAW_NODE.with(|r| r.borrow_mut().take()).ok_or_else(|| {
                    E::custom("internal: a raw node is read only by loadline's deserializer")
                })
            }
        }
        d.deserialize_newtype_struct(RAW, V)
    }
}

impl schemars::JsonSchema for Raw {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::from(true)
    }
}

/// A list whose items are checked one by one, each remembering where it was
/// written.
pub type Items<T> = Spanned<Vec<Lenient<Spanned<T>>>>;

/// Deserializes a [`Raw`] value as a `T`, recording every error in `sink` with
/// paths under the raw value's own.
pub fn from_raw<'de, T: Deserialize<'de>>(raw: &Raw, sink: &Sink) -> Option<T> {
    let de = NodeDe {
        node: &raw.node,
        path: raw.path.clone(),
        sink,
        record: true,
    };
    T::deserialize(de).ok()
}

/// Reads a [`Raw`] value as a `T`, reporting every error (and the keys suggested
/// for misspelt ones) to `ctx`. `None` when the value as a whole could not be
/// built; the parts that could are still checked by the caller.
pub fn read<'de, T: Deserialize<'de>>(
    raw: &Raw,
    ctx: &mut dyn loadline_core::build::BuildCtx,
) -> Option<T> {
    let sink = Sink::default();
    let value = from_raw(raw, &sink);
    for (mark, key) in sink.take_suggestions() {
        ctx.suggested(mark, key);
    }
    for e in sink.into_errors() {
        ctx.error_at(e.mark.unwrap_or(raw.node.mark), &e.path, e.message);
    }
    value
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Spanned<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value with its position")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let missing = || de::Error::custom("internal: incomplete span");
                let line: usize = seq.next_element()?.ok_or_else(missing)?;
                let column: usize = seq.next_element()?.ok_or_else(missing)?;
                let content: usize = seq.next_element()?.ok_or_else(missing)?;
                let path: String = seq.next_element()?.ok_or_else(missing)?;
                let value: T = seq.next_element()?.ok_or_else(missing)?;
                Ok(Spanned {
                    span: Span {
                        mark: Mark { line, column },
                        path,
                        content_column: content.checked_sub(1),
                    },
                    value,
                })
            }
        }
        d.deserialize_tuple_struct(SPANNED, 5, V(PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Spanned<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A value that, when it cannot be deserialized, records the error and becomes
/// `None` instead of failing its parent.
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient<T>(pub Option<T>);

impl<T> Lenient<T> {
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Self::Value, D::Error> {
                // The deserializer has recorded the error already.
                Ok(Lenient(T::deserialize(d).ok()))
            }
        }
        d.deserialize_newtype_struct(LENIENT, V(PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Lenient<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A mapping from names to values, in written order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<T>(pub Vec<(Spanned<String>, T)>);

impl<T> Default for Entries<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Entries<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Entries<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Spanned<String>>()? {
                    let value = map.next_value::<T>()?;
                    out.push((key, value));
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Entries<T> {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", T::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "object",
            "additionalProperties": generator.subschema_for::<T>(),
        })
    }
}

/// The path of a mapping value: `parent.key`, or `parent["odd key"]`.
pub fn child_key_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

struct NodeDe<'a> {
    node: &'a Node,
    path: String,
    sink: &'a Sink,
    /// Record errors leaving this deserializer (the root and [`Lenient`] values).
    record: bool,
}

impl<'a> NodeDe<'a> {
    fn child(&self, node: &'a Node, path: String) -> NodeDe<'a> {
        NodeDe {
            node,
            path,
            sink: self.sink,
            record: false,
        }
    }

    fn error(&self, message: impl Into<String>) -> DeError {
        DeError {
            mark: Some(self.node.mark),
            path: self.path.clone(),
            message: message.into(),
        }
    }

    fn expected(&self, what: &str) -> DeError {
        self.error(format!("expected {what}, found {}", self.node.describe()))
    }

    /// Locates an error that has no position yet, and records it if asked.
    fn done<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|mut e| {
            if e.mark.is_none() {
                e.mark = Some(self.node.mark);
                e.path = self.path.clone();
            }
            if self.record {
                self.sink.push(e.clone());
            }
            e
        })
    }

    fn scalar(&self) -> Option<&'a Scalar> {
        match &self.node.value {
            NodeValue::Scalar(s) => Some(s),
            _ => None,
        }
    }

    fn integer<'de, V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value, DeError> {
        match self.scalar().map(Scalar::resolve) {
            Some(Resolved::Int(i)) => {
                if let Ok(v) = i64::try_from(i) {
                    visitor.visit_i64(v)
                } else if let Ok(v) = u64::try_from(i) {
                    visitor.visit_u64(v)
                } else {
                    Err(self.error(format!("the number {i} is far too large")))
                }
            }
            _ => Err(self.expected("an integer")),
        }
    }

    fn any<'de, V: Visitor<'de>>(&self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.value {
            NodeValue::Seq(items) => visitor.visit_seq(SeqDe::new(self, items)),
            NodeValue::Map(entries) => visitor.visit_map(MapDe::new(self, entries, None)),
            NodeValue::Scalar(s) => match s.resolve() {
                Resolved::Null => visitor.visit_unit(),
                Resolved::Bool(b) => visitor.visit_bool(b),
                Resolved::Int(_) => self.integer(visitor),
                Resolved::Float(f) => visitor.visit_f64(f),
                Resolved::Str(t) => visitor.visit_str(t),
            },
        }
    }
}

macro_rules! forward_integers {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                let r = self.integer(visitor);
                self.done(r)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = self.any(visitor);
        self.done(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar().map(Scalar::resolve) {
            Some(Resolved::Bool(b)) => visitor.visit_bool(b),
            _ => Err(self.expected("true or false")),
        };
        self.done(r)
    }

    forward_integers!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar().map(Scalar::resolve) {
            Some(Resolved::Int(i)) => visitor.visit_f64(i as f64),
            Some(Resolved::Float(f)) => visitor.visit_f64(f),
            _ => Err(self.expected("a number")),
        };
        self.done(r)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar() {
            Some(s) if s.resolve() != Resolved::Null => visitor.visit_str(&s.text),
            _ => Err(self.expected("a string")),
        };
        self.done(r)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar().map(Scalar::resolve) {
            Some(Resolved::Null) => visitor.visit_none(),
            _ => visitor.visit_some(self.child(self.node, self.path.clone())),
        };
        self.done(r)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.scalar().map(Scalar::resolve) {
            Some(Resolved::Null) => visitor.visit_unit(),
            _ => Err(self.expected("nothing (null)")),
        };
        self.done(r)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name == RAW {
            RAW_NODE.with(|r| {
                *r.borrow_mut() = Some(Raw {
                    node: self.node.clone(),
                    path: self.path.clone(),
                })
            });
            return visitor.visit_unit();
        }
        let inner = NodeDe {
            record: name == LENIENT,
            ..self.child(self.node, self.path.clone())
        };
        let r = visitor.visit_newtype_struct(inner);
        self.done(r)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Seq(items) => visitor.visit_seq(SeqDe::new(&self, items)),
            _ => Err(self.expected("a list")),
        };
        self.done(r)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        if name != SPANNED {
            return self.deserialize_seq(visitor);
        }
        let content = self
            .scalar()
            .and_then(|s| s.content_column)
            .map_or(0, |c| c + 1);
        let r = visitor.visit_seq(SpanDe {
            de: &self,
            content,
            state: 0,
        });
        self.done(r)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Map(entries) => visitor.visit_map(MapDe::new(&self, entries, None)),
            _ => Err(self.expected("a mapping")),
        };
        self.done(r)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Map(entries) => visitor.visit_map(MapDe::new(&self, entries, Some(fields))),
            _ => Err(self.expected(&format!("a mapping with keys {}", fields.join(", ")))),
        };
        self.done(r)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            // A tagged scalar is the variant with its value: `!port 6379`.
            NodeValue::Scalar(s) if s.tag.is_some() => {
                let name = s.tag.as_deref().unwrap_or_default();
                let path = child_key_path(&self.path, name);
                visitor.visit_enum(MapVariant {
                    name,
                    value: self.child(self.node, path),
                })
            }
            NodeValue::Scalar(s) => visitor.visit_enum(UnitVariant {
                name: s.text.as_str(),
            }),
            // A variant with a value is a mapping of one key: `{ port: 6379 }`.
            NodeValue::Map(entries) => match entries.as_slice() {
                [(key, value)] => match &key.value {
                    NodeValue::Scalar(name) => {
                        let path = child_key_path(&self.path, &name.text);
                        visitor.visit_enum(MapVariant {
                            name: name.text.as_str(),
                            value: self.child(value, path),
                        })
                    }
                    _ => Err(self.expected(&one_of(variants))),
                },
                [] => Err(self.expected(&format!("one key of {}", variants.join(", ")))),
                _ => {
                    let keys: Vec<&str> = entries
                        .iter()
                        .filter_map(|(k, _)| match &k.value {
                            NodeValue::Scalar(s) => Some(s.text.as_str()),
                            _ => None,
                        })
                        .collect();
                    Err(<DeError as de::Error>::custom(format_args!(
                        "expected only one of {}, found {}",
                        variants.join(", "),
                        keys.join(" and ")
                    )))
                }
            },
            _ => Err(self.expected(&one_of(variants))),
        };
        self.done(r)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

/// Hands a [`Spanned`] its position, then its value.
struct SpanDe<'b, 'a> {
    de: &'b NodeDe<'a>,
    content: usize,
    state: u8,
}

impl<'de> SeqAccess<'de> for SpanDe<'_, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let mark = self.de.node.mark;
        self.state += 1;
        let v = match self.state {
            1 => seed.deserialize(mark.line.into_deserializer())?,
            2 => seed.deserialize(mark.column.into_deserializer())?,
            3 => seed.deserialize(self.content.into_deserializer())?,
            4 => seed.deserialize(self.de.path.clone().into_deserializer())?,
            5 => seed.deserialize(self.de.child(self.de.node, self.de.path.clone()))?,
            _ => return Ok(None),
        };
        Ok(Some(v))
    }
}

struct SeqDe<'a> {
    items: std::slice::Iter<'a, Node>,
    index: usize,
    path: String,
    sink: &'a Sink,
}

impl<'a> SeqDe<'a> {
    fn new(parent: &NodeDe<'a>, items: &'a [Node]) -> Self {
        Self {
            items: items.iter(),
            index: 0,
            path: parent.path.clone(),
            sink: parent.sink,
        }
    }
}

impl<'de> SeqAccess<'de> for SeqDe<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let de = NodeDe {
            node,
            path: format!("{}[{}]", self.path, self.index),
            sink: self.sink,
            record: false,
        };
        self.index += 1;
        seed.deserialize(de).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'a> {
    entries: std::slice::Iter<'a, (Node, Node)>,
    /// The struct's fields, when deserializing a struct: other keys are reported
    /// and skipped.
    fields: Option<&'static [&'static str]>,
    value: Option<(&'a Node, String)>,
    /// Where the mapping starts.
    mark: Mark,
    path: String,
    sink: &'a Sink,
}

impl<'a> MapDe<'a> {
    fn new(
        parent: &NodeDe<'a>,
        entries: &'a [(Node, Node)],
        fields: Option<&'static [&'static str]>,
    ) -> Self {
        Self {
            entries: entries.iter(),
            fields,
            value: None,
            mark: parent.node.mark,
            path: parent.path.clone(),
            sink: parent.sink,
        }
    }
}

impl<'de> MapAccess<'de> for MapDe<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        for (key, value) in self.entries.by_ref() {
            let text = match &key.value {
                NodeValue::Scalar(s) => s.text.as_str(),
                _ => "",
            };
            let path = child_key_path(&self.path, text);
            if let Some(fields) = self.fields {
                if !fields.contains(&text) {
                    let mut known: Vec<&str> = fields.to_vec();
                    for (mark, keys) in &self.sink.also_known {
                        if *mark == self.mark {
                            known.extend(keys.iter().copied());
                        }
                    }
                    if let Some(s) = did_you_mean(text, known.iter().copied()) {
                        self.sink.suggestions.borrow_mut().push((self.mark, s));
                    }
                    self.sink.push(DeError {
                        mark: Some(key.mark),
                        path,
                        message: unknown_key_message(text, &known),
                    });
                    continue;
                }
            }
            let de = NodeDe {
                node: key,
                path: path.clone(),
                sink: self.sink,
                record: false,
            };
            self.value = Some((value, path));
            return seed.deserialize(de).map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (node, path) = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("internal: value before key"))?;
        seed.deserialize(NodeDe {
            node,
            path,
            sink: self.sink,
            record: false,
        })
    }
}

/// An enum written as a plain name (`order: random`).
struct UnitVariant<'a> {
    name: &'a str,
}

impl<'de> EnumAccess<'de> for UnitVariant<'_> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), DeError> {
        let v = seed.deserialize(self.name.into_deserializer())?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, DeError> {
        Err(de::Error::custom(format_args!(
            "`{}` needs a value here",
            self.name
        )))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, DeError> {
        Err(de::Error::custom(format_args!(
            "`{}` needs a value here",
            self.name
        )))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, DeError> {
        Err(de::Error::custom(format_args!(
            "`{}` needs a value here",
            self.name
        )))
    }
}

/// An enum written as a mapping of one key, the variant, to its value
/// (`{ port: 6379 }`, or the same in block style).
struct MapVariant<'a> {
    name: &'a str,
    value: NodeDe<'a>,
}

impl<'de, 'a> EnumAccess<'de> for MapVariant<'a> {
    type Error = DeError;
    type Variant = NodeDe<'a>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> Result<(S::Value, NodeDe<'a>), DeError> {
        let v = seed.deserialize(self.name.into_deserializer())?;
        Ok((v, self.value))
    }
}

impl<'de> VariantAccess<'de> for NodeDe<'_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_tuple(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_struct("", fields, visitor)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::yaml::parse;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        n: Spanned<i64>,
        s: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        items: Vec<Lenient<Item>>,
        map: Option<Entries<Lenient<Spanned<f64>>>>,
    }

    fn load(text: &str) -> (Option<Doc>, Vec<DeError>) {
        let (node, problems) = parse(text).unwrap();
        assert!(problems.is_empty());
        let sink = Sink::default();
        let doc = from_node::<Doc>(&node.unwrap(), &sink);
        (doc, sink.into_errors())
    }

    #[test]
    fn spans_and_lenient_elements() {
        let (doc, errors) = load(
            "items:\n  - n: 1\n  - n: x\n  - n: 3\n    s: hi\n    extra: 1\nmap:\n  a: 1.5\n  b: [1]\n",
        );
        let doc = doc.unwrap();
        assert_eq!(doc.items.len(), 3);
        assert!(doc.items[1].0.is_none());
        let third = doc.items[2].get().unwrap();
        assert_eq!((third.n.value, third.s.as_deref()), (3, Some("hi")));
        assert_eq!(third.n.span.mark, Mark { line: 4, column: 8 });
        assert_eq!(third.n.span.path, "items[2].n");
        let map = doc.map.unwrap();
        assert_eq!(map.0[0].0.value, "a");
        assert_eq!(map.0[0].1.get().map(|v| v.value), Some(1.5));
        assert!(map.0[1].1.get().is_none());
        let summary: Vec<_> = errors
            .iter()
            .map(|e| (e.mark.unwrap().line, e.path.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![(3, "items[1].n"), (6, "items[2].extra"), (9, "map.b")]
        );
        assert!(errors[0]
            .message
            .contains("expected an integer, found the string \"x\""));
        assert!(errors[1]
            .message
            .contains("unknown key `extra`, expected one of n, s"));
    }

    #[test]
    fn missing_fields_point_at_the_mapping() {
        let (doc, errors) = load("items:\n  - s: a\n");
        assert!(doc.unwrap().items[0].0.is_none());
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].mark.unwrap().line, 2);
        assert_eq!(errors[0].message, "missing key `n`");
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum Target {
        Pid(u32),
        Name(String),
        Whole { host: String, port: u16 },
        Any,
    }

    #[derive(Debug, Deserialize)]
    struct Targets {
        t: Vec<Lenient<Target>>,
    }

    #[test]
    fn enums_with_a_value_are_mappings_of_one_key() {
        let text = "t:\n  - { pid: 1 }\n  - name: postgres\n  - whole: { host: h, port: 2 }\n  - any\n  - { pid: 1, name: x }\n  - {}\n  - { exe: x }\n  - { pid: x }\n  - !pid 7\n  - !name db\n";
        let (node, problems) = parse(text).unwrap();
        assert!(problems.is_empty());
        let sink = Sink::default();
        let doc = from_node::<Targets>(&node.unwrap(), &sink).unwrap();
        let read: Vec<Option<Target>> = doc.t.into_iter().map(|l| l.0).collect();
        assert_eq!(
            read[..4],
            [
                Some(Target::Pid(1)),
                Some(Target::Name("postgres".into())),
                Some(Target::Whole {
                    host: "h".into(),
                    port: 2
                }),
                Some(Target::Any)
            ]
        );
        assert!(read[4..8].iter().all(Option::is_none));
        assert_eq!(
            read[8..],
            [Some(Target::Pid(7)), Some(Target::Name("db".into()))]
        );
        let errors: Vec<(usize, String, String)> = sink
            .into_errors()
            .into_iter()
            .map(|e| (e.mark.unwrap().line, e.path, e.message))
            .collect();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert_eq!(errors[0].0, 6);
        assert!(errors[0]
            .2
            .contains("expected only one of pid, name, whole, any, found pid and name"));
        assert!(
            errors[1].2.contains("expected one key of pid"),
            "{}",
            errors[1].2
        );
        assert!(
            errors[2].2.contains("unknown value `exe`"),
            "{}",
            errors[2].2
        );
        assert_eq!((errors[3].0, errors[3].1.as_str()), (9, "t[7].pid"));
        assert!(
            errors[3].2.contains("expected an integer"),
            "{}",
            errors[3].2
        );
    }
}

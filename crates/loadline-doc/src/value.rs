//! Values whose meaning the protocols share: any YAML value with the position of
//! each part ([`JsonDoc`], for JSON bodies, parameters and expected values) and
//! status codes ([`StatusDoc`]), with the checks that turn them into plain values.

use std::fmt;

use loadline_core::build::BuildCtx;
use schemars::JsonSchema;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::de::Spanned;

/// One status code or a list.
#[derive(Debug, JsonSchema)]
#[serde(untagged)]
pub enum StatusDoc {
    One(i64),
    Many(Vec<i64>),
}

impl StatusDoc {
    pub fn codes(&self) -> Vec<i64> {
        match self {
            StatusDoc::One(c) => vec![*c],
            StatusDoc::Many(cs) => cs.clone(),
        }
    }
}

impl<'de> Deserialize<'de> for StatusDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StatusDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a status code such as 200, or a list such as [200, 201]")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(StatusDoc::One(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(StatusDoc::One(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut codes = Vec::new();
                while let Some(c) = seq.next_element::<i64>()? {
                    codes.push(c);
                }
                Ok(StatusDoc::Many(codes))
            }
        }
        d.deserialize_any(V)
    }
}

/// Any YAML value, remembering where each string was written (for JSON bodies
/// whose strings are templates).
#[derive(Debug, Clone, PartialEq)]
pub enum JsonDoc {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(String),
    Seq(Vec<Spanned<JsonDoc>>),
    Map(Vec<(String, Spanned<JsonDoc>)>),
}

impl schemars::JsonSchema for JsonDoc {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AnyValue".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::Schema::from(true)
    }
}

impl<'de> Deserialize<'de> for JsonDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = JsonDoc;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(JsonDoc::Null)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(JsonDoc::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(JsonDoc::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(JsonDoc::UInt(v))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(JsonDoc::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(JsonDoc::Str(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(JsonDoc::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = map.next_entry()? {
                    entries.push((k, v));
                }
                Ok(JsonDoc::Map(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// A YAML value as JSON, as written (no templates); a number that is not finite
/// is reported.
pub fn plain_value(ctx: &mut dyn BuildCtx, doc: &Spanned<JsonDoc>) -> Option<Value> {
    Some(match &doc.value {
        JsonDoc::Null => Value::Null,
        JsonDoc::Bool(b) => Value::Bool(*b),
        JsonDoc::Int(i) => Value::from(*i),
        JsonDoc::UInt(u) => Value::from(*u),
        JsonDoc::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => {
                ctx.error(&doc.span, format!("expected a finite number, found {f}"));
                return None;
            }
        },
        JsonDoc::Str(s) => Value::String(s.clone()),
        JsonDoc::Seq(items) => Value::Array(
            items
                .iter()
                .map(|i| plain_value(ctx, i))
                .collect::<Option<_>>()?,
        ),
        JsonDoc::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| Some((k.clone(), plain_value(ctx, v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

/// A YAML value as JSON whose strings may be templates: each string's template
/// is checked where it was written (against [`BuildCtx::scope`]).
pub fn json_value(ctx: &mut dyn BuildCtx, doc: &Spanned<JsonDoc>) -> Value {
    match &doc.value {
        JsonDoc::Null => Value::Null,
        JsonDoc::Bool(b) => Value::Bool(*b),
        JsonDoc::Int(i) => Value::from(*i),
        JsonDoc::UInt(u) => Value::from(*u),
        JsonDoc::Float(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => Value::Number(n),
            None => {
                ctx.error(&doc.span, format!("expected a finite number, found {f}"));
                Value::Null
            }
        },
        JsonDoc::Str(s) => {
            ctx.template(s, &doc.span);
            Value::String(s.clone())
        }
        JsonDoc::Seq(items) => Value::Array(items.iter().map(|i| json_value(ctx, i)).collect()),
        JsonDoc::Map(entries) => Value::Object(
            entries
                .iter()
                .map(|(k, v)| (k.clone(), json_value(ctx, v)))
                .collect(),
        ),
    }
}

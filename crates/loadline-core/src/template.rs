//! Templates: `{{ name }}`, `{{ users.name }}`, `{{ $randint(1, 5) }}` and friends.
//!
//! A template is compiled once, at load time, against a [`Scope`] that knows which
//! names exist at that point of the scenario (constants, data-file columns, values
//! captured by earlier steps). Constants are folded in at compile time; what is left
//! is a list of literal pieces and slot references, so rendering per request is a
//! walk over a short vector writing into a reused buffer.

use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::Value;

use crate::plan::Feeder;

/// A compiled template.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Lit(String),
    Var(VarRef),
    /// `{{ name | urlencode }}`: the value's text, percent-encoded.
    Encoded(VarRef),
}

/// What a placeholder refers to, resolved at compile time.
#[derive(Debug, Clone, PartialEq)]
pub enum VarRef {
    /// A value known at load time (a `vars:` constant, `$env.NAME`).
    Const(Value),
    /// A value captured by an earlier step of the same iteration.
    Capture { slot: usize, path: Vec<PathSeg> },
    /// A column of the row drawn from a data file for this iteration.
    Feeder { feeder: usize, column: usize },
    /// A built-in function or variable.
    Builtin(Builtin),
}

/// One step into a structured value: `.key` or `[index]`.
#[derive(Debug, Clone, PartialEq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// The built-ins.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Builtin {
    Uuid,
    RandInt(i64, i64),
    RandomString(usize),
    Timestamp,
    Vu,
    Iteration,
}

/// Resolves names while compiling; implemented by the scenario builder, which knows
/// the constants, data files and captures in scope.
pub trait Scope {
    /// Resolves `name` followed by `path` (e.g. `users` + `.name`).
    fn resolve(&self, name: &str, path: &[PathSeg]) -> Result<VarRef, String>;
    /// Reads an environment variable for `$env.NAME`.
    fn env(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// A compile error with the byte offset in the template text where it was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// The per-VU state templates read: captures, the current data rows, and the
/// VU's identity and random source.
#[derive(Debug)]
pub struct Vars {
    pub captures: Vec<Option<Value>>,
    pub rows: Vec<usize>,
    pub feeders: Arc<Vec<Feeder>>,
    pub vu: u64,
    pub iteration: u64,
    pub rng: fastrand::Rng,
}

impl Vars {
    pub fn new(capture_slots: usize, feeders: Arc<Vec<Feeder>>, vu: u64, seed: u64) -> Self {
        let n = feeders.len();
        Self {
            captures: vec![None; capture_slots],
            rows: vec![0; n],
            feeders,
            vu,
            iteration: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Forgets the captures of the previous iteration.
    pub fn reset_captures(&mut self) {
        for c in &mut self.captures {
            *c = None;
        }
    }

    fn lookup<'a>(&'a mut self, var: &'a VarRef) -> Looked<'a> {
        match var {
            VarRef::Const(v) => Looked::Borrowed(v),
            VarRef::Capture { slot, path } => {
                let mut cur: &Value = match self.captures.get(*slot).and_then(|c| c.as_ref()) {
                    Some(v) => v,
                    None => return Looked::Missing,
                };
                for seg in path {
                    let next = match seg {
                        PathSeg::Key(k) => cur.get(k.as_str()),
                        PathSeg::Index(i) => cur.get(*i),
                    };
                    match next {
                        Some(v) => cur = v,
                        None => return Looked::Missing,
                    }
                }
                Looked::Borrowed(cur)
            }
            VarRef::Feeder { feeder, column } => {
                let row = self.rows.get(*feeder).copied().unwrap_or(0);
                match self
                    .feeders
                    .get(*feeder)
                    .and_then(|f| f.rows.get(row))
                    .and_then(|r| r.get(*column))
                {
                    Some(v) => Looked::Borrowed(v),
                    None => Looked::Missing,
                }
            }
            VarRef::Builtin(b) => Looked::Owned(self.builtin(*b)),
        }
    }

    fn builtin(&mut self, b: Builtin) -> Value {
        match b {
            Builtin::Uuid => {
                let bytes = self.rng.u128(..).to_le_bytes();
                Value::String(
                    uuid::Builder::from_random_bytes(bytes)
                        .into_uuid()
                        .to_string(),
                )
            }
            Builtin::RandInt(a, b) => Value::from(self.rng.i64(a..=b)),
            Builtin::RandomString(n) => {
                let s: String = (0..n).map(|_| self.rng.alphanumeric()).collect();
                Value::String(s)
            }
            Builtin::Timestamp => {
                let ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis() as i64)
                    .unwrap_or(0);
                Value::from(ms)
            }
            Builtin::Vu => Value::from(self.vu),
            Builtin::Iteration => Value::from(self.iteration),
        }
    }
}

enum Looked<'a> {
    Borrowed(&'a Value),
    Owned(Value),
    Missing,
}

/// Writes a value as template text: strings raw, everything else as JSON.
pub fn write_value(out: &mut String, v: &Value) {
    match v {
        Value::String(s) => out.push_str(s),
        Value::Null => {}
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        other => out.push_str(&other.to_string()),
    }
}

impl Template {
    /// Compiles `src` against `scope`.
    pub fn compile(src: &str, scope: &dyn Scope) -> Result<Self, TemplateError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut pos = 0;
        while pos < src.len() {
            let rest = &src[pos..];
            match rest.find("{{") {
                None => {
                    lit.push_str(rest);
                    break;
                }
                Some(open) => {
                    lit.push_str(&rest[..open]);
                    let inner_start = pos + open + 2;
                    let close = src[inner_start..].find("}}").ok_or(TemplateError {
                        offset: pos + open,
                        message: "`{{` is never closed: expected `}}`".into(),
                    })?;
                    let inner = &src[inner_start..inner_start + close];
                    let (expr, encode) = split_filter(inner).map_err(|message| TemplateError {
                        offset: inner_start,
                        message,
                    })?;
                    let var = parse_expr(expr, scope).map_err(|message| TemplateError {
                        offset: inner_start,
                        message,
                    })?;
                    match var {
                        VarRef::Const(v) if encode => {
                            let mut text = String::new();
                            write_value(&mut text, &v);
                            url_encode_into(&mut lit, &text);
                        }
                        VarRef::Const(v) => write_value(&mut lit, &v),
                        var => {
                            if !lit.is_empty() {
                                parts.push(Part::Lit(std::mem::take(&mut lit)));
                            }
                            parts.push(if encode {
                                Part::Encoded(var)
                            } else {
                                Part::Var(var)
                            });
                        }
                    }
                    pos = inner_start + close + 2;
                }
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Self { parts })
    }

    /// A template with no placeholders.
    pub fn literal(text: impl Into<String>) -> Self {
        Self {
            parts: vec![Part::Lit(text.into())],
        }
    }

    /// A template that is one typed value: [`Template::eval`] gives `value`
    /// itself (a number stays a number, `null` stays null) and rendering writes
    /// its text. For values written as YAML scalars where a type matters, such
    /// as the parameters of a database statement.
    ///
    /// ```
    /// use loadline_core::template::Template;
    /// let t = Template::constant(serde_json::json!(10));
    /// assert_eq!(t.static_text(), None);
    /// ```
    pub fn constant(value: Value) -> Self {
        Self {
            parts: vec![Part::Var(VarRef::Const(value))],
        }
    }

    /// The text, when nothing in it varies.
    pub fn static_text(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Appends the rendered text to `out`. A missing value renders as nothing.
    pub fn render_into(&self, vars: &mut Vars, out: &mut String) {
        for p in &self.parts {
            match p {
                Part::Lit(s) => out.push_str(s),
                Part::Var(v) => match vars.lookup(v) {
                    Looked::Borrowed(v) => write_value(out, v),
                    Looked::Owned(v) => write_value(out, &v),
                    Looked::Missing => {}
                },
                Part::Encoded(v) => {
                    let mut text = String::new();
                    match vars.lookup(v) {
                        Looked::Borrowed(v) => write_value(&mut text, v),
                        Looked::Owned(v) => write_value(&mut text, &v),
                        Looked::Missing => {}
                    }
                    url_encode_into(out, &text);
                }
            }
        }
    }

    /// Renders to a new string.
    pub fn render(&self, vars: &mut Vars) -> String {
        if let Some(s) = self.static_text() {
            return s.to_string();
        }
        let mut out = String::new();
        self.render_into(vars, &mut out);
        out
    }

    /// Evaluates to a typed value: a template that is exactly one placeholder keeps
    /// the placeholder's type (a number stays a number); anything else is a string.
    pub fn eval(&self, vars: &mut Vars) -> Value {
        if let [Part::Var(v)] = self.parts.as_slice() {
            return match vars.lookup(v) {
                Looked::Borrowed(v) => v.clone(),
                Looked::Owned(v) => v,
                Looked::Missing => Value::Null,
            };
        }
        Value::String(self.render(vars))
    }
}

/// A placeholder's expression and whether it asks for `| urlencode`, the one
/// filter there is.
fn split_filter(inner: &str) -> Result<(&str, bool), String> {
    match inner.rsplit_once('|') {
        None => Ok((inner, false)),
        Some((expr, filter)) => match filter.trim() {
            "urlencode" => Ok((expr, true)),
            other => Err(format!(
                "unknown filter `{other}`: the one filter is `urlencode`, e.g. `{{{{ name | urlencode }}}}`"
            )),
        },
    }
}

/// Appends `text` percent-encoded for any part of a URL: every byte but the
/// unreserved characters of RFC 3986 (letters, digits, `-`, `.`, `_`, `~`)
/// becomes `%XX`, so a `/`, `?`, `#`, `&` or space in a value cannot change the
/// URL's structure.
fn url_encode_into(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

fn parse_expr(inner: &str, scope: &dyn Scope) -> Result<VarRef, String> {
    let e = inner.trim();
    if e.is_empty() {
        return Err("empty placeholder `{{ }}`: expected a name such as `{{ token }}`".into());
    }
    if let Some(rest) = e.strip_prefix('$') {
        return parse_builtin(rest, scope);
    }
    let (name, path) = parse_path(e)?;
    scope.resolve(name, &path)
}

fn parse_path(e: &str) -> Result<(&str, Vec<PathSeg>), String> {
    let name_end = e.find(['.', '[']).unwrap_or(e.len());
    let name = &e[..name_end];
    check_ident(name, e)?;
    let mut path = Vec::new();
    let mut rest = &e[name_end..];
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            if key.is_empty() {
                return Err(format!("`{e}`: expected a name after `.`"));
            }
            path.push(PathSeg::Key(key.to_string()));
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r
                .find(']')
                .ok_or_else(|| format!("`{e}`: `[` is never closed"))?;
            let idx: usize = r[..end]
                .trim()
                .parse()
                .map_err(|_| format!("`{e}`: expected an index such as [0]"))?;
            path.push(PathSeg::Index(idx));
            rest = &r[end + 1..];
        } else {
            return Err(format!("`{e}`: unexpected `{rest}`"));
        }
    }
    Ok((name, path))
}

fn check_ident(name: &str, whole: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{whole}` is not a name: expected letters, digits and `_`, such as `{{{{ token }}}}`"
        ))
    }
}

const BUILTINS: &str =
    "$uuid(), $randint(a, b), $random_string(n), $timestamp(), $env.NAME, $vu, $iteration";

fn parse_builtin(rest: &str, scope: &dyn Scope) -> Result<VarRef, String> {
    if let Some(name) = rest.strip_prefix("env.") {
        let name = name.trim();
        check_ident(name, rest)?;
        return match scope.env(name) {
            Some(v) => Ok(VarRef::Const(Value::String(v))),
            None => Err(format!("environment variable `{name}` is not set")),
        };
    }
    let (fname, args) = match rest.find('(') {
        Some(open) => {
            let close = rest
                .rfind(')')
                .filter(|c| *c > open && rest[c + 1..].trim().is_empty())
                .ok_or_else(|| format!("`${rest}`: expected `)` at the end of the call"))?;
            let args: Vec<&str> = rest[open + 1..close]
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .collect();
            (rest[..open].trim(), Some(args))
        }
        None => (rest.trim(), None),
    };
    let int_arg = |s: &str| -> Result<i64, String> {
        s.parse::<i64>()
            .map_err(|_| format!("`${rest}`: `{s}` is not an integer"))
    };
    let arity = |n: usize| -> Result<&Vec<&str>, String> {
        match &args {
            Some(a) if a.len() == n => Ok(a),
            _ => Err(format!("`${fname}` takes {n} argument(s): `${rest}`")),
        }
    };
    let b = match fname {
        "uuid" => {
            arity(0)?;
            Builtin::Uuid
        }
        "timestamp" => {
            arity(0)?;
            Builtin::Timestamp
        }
        "randint" => {
            let a = arity(2)?;
            let (lo, hi) = (int_arg(a[0])?, int_arg(a[1])?);
            if hi < lo {
                return Err(format!(
                    "`$randint({lo}, {hi})`: the bounds are the wrong way round"
                ));
            }
            Builtin::RandInt(lo, hi)
        }
        "random_string" => {
            let a = arity(1)?;
            let n = int_arg(a[0])?;
            if !(0..=1_000_000).contains(&n) {
                return Err(format!("`$random_string({n})`: length must be 0..1000000"));
            }
            Builtin::RandomString(n as usize)
        }
        "vu" if args.is_none() => Builtin::Vu,
        "iteration" if args.is_none() => Builtin::Iteration,
        _ => {
            return Err(format!(
                "unknown built-in `${fname}`: expected one of {BUILTINS}"
            ))
        }
    };
    Ok(VarRef::Builtin(b))
}

/// A JSON body whose strings may hold placeholders. Static sub-trees are serialised
/// once at compile time.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    /// Pre-serialised JSON text.
    Static(String),
    /// A string with placeholders: exactly one placeholder keeps its type.
    Str(Template),
    Array(Vec<JsonTemplate>),
    /// Keys are pre-serialised (quoted) JSON strings.
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// Compiles a JSON value; `on_error` receives the JSON path of a bad string.
    pub fn compile(v: &Value, scope: &dyn Scope) -> Result<Self, (String, TemplateError)> {
        Self::compile_at(v, scope, "$")
    }

    fn compile_at(v: &Value, scope: &dyn Scope, at: &str) -> Result<Self, (String, TemplateError)> {
        let t = match v {
            Value::String(s) => {
                let t = Template::compile(s, scope).map_err(|e| (at.to_string(), e))?;
                match t.static_text() {
                    Some(s) => JsonTemplate::Static(Value::String(s.to_string()).to_string()),
                    None => JsonTemplate::Str(t),
                }
            }
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(Self::compile_at(item, scope, &format!("{at}[{i}]"))?);
                }
                JsonTemplate::Array(out)
            }
            Value::Object(map) => {
                let mut out = Vec::with_capacity(map.len());
                for (k, item) in map {
                    let key = Value::String(k.clone()).to_string();
                    out.push((key, Self::compile_at(item, scope, &format!("{at}.{k}"))?));
                }
                JsonTemplate::Object(out)
            }
            other => JsonTemplate::Static(other.to_string()),
        };
        Ok(t.simplify())
    }

    fn simplify(self) -> Self {
        let is_static = |t: &JsonTemplate| matches!(t, JsonTemplate::Static(_));
        match &self {
            JsonTemplate::Array(items) if items.iter().all(is_static) => {
                let mut s = String::new();
                self.write(&mut s, None);
                JsonTemplate::Static(s)
            }
            JsonTemplate::Object(items) if items.iter().all(|(_, t)| is_static(t)) => {
                let mut s = String::new();
                self.write(&mut s, None);
                JsonTemplate::Static(s)
            }
            _ => self,
        }
    }

    /// Writes the JSON text. `vars` may be `None` only for static templates.
    fn write(&self, out: &mut String, mut vars: Option<&mut Vars>) {
        match self {
            JsonTemplate::Static(s) => out.push_str(s),
            JsonTemplate::Str(t) => {
                if let Some(vars) = vars {
                    let v = t.eval(vars);
                    let _ = write!(out, "{v}");
                }
            }
            JsonTemplate::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out, vars.as_deref_mut());
                }
                out.push(']');
            }
            JsonTemplate::Object(items) => {
                out.push('{');
                for (i, (k, item)) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(k);
                    out.push(':');
                    item.write(out, vars.as_deref_mut());
                }
                out.push('}');
            }
        }
    }

    /// Renders the JSON text into `out`.
    pub fn render_into(&self, vars: &mut Vars, out: &mut String) {
        self.write(out, Some(vars));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Feeder, FeederOrder};

    struct TestScope;
    impl Scope for TestScope {
        fn resolve(&self, name: &str, path: &[PathSeg]) -> Result<VarRef, String> {
            match name {
                "page_size" => Ok(VarRef::Const(Value::from(20))),
                "token" => Ok(VarRef::Capture {
                    slot: 0,
                    path: path.to_vec(),
                }),
                "users" => match path {
                    [PathSeg::Key(k)] if k == "name" => Ok(VarRef::Feeder {
                        feeder: 0,
                        column: 0,
                    }),
                    _ => Err("users has columns: name".into()),
                },
                other => Err(format!("unknown name `{other}`")),
            }
        }
        fn env(&self, name: &str) -> Option<String> {
            (name == "HOME_X").then(|| "/home/x".to_string())
        }
    }

    fn vars() -> Vars {
        let feeder = Feeder::new(
            "users",
            vec!["name".into()],
            vec![vec![Value::from("ann")], vec![Value::from("bob")]],
            FeederOrder::Sequential,
        );
        let mut v = Vars::new(1, Arc::new(vec![feeder]), 3, 1);
        v.rows[0] = 1;
        v
    }

    #[test]
    fn renders_constants_captures_feeders_builtins() {
        let t = Template::compile(
            "/p?size={{ page_size }}&t={{token}}&u={{ users.name }}&vu={{ $vu }}&h={{$env.HOME_X}}",
            &TestScope,
        )
        .unwrap();
        let mut v = vars();
        v.captures[0] = Some(Value::from("abc"));
        assert_eq!(t.render(&mut v), "/p?size=20&t=abc&u=bob&vu=3&h=/home/x");
        let lit = Template::compile("/p?size={{ page_size }}", &TestScope).unwrap();
        assert_eq!(lit.static_text(), Some("/p?size=20"));
    }

    #[test]
    fn constants_keep_their_type() {
        let mut v = vars();
        for value in [Value::from(10), Value::Null, Value::from(true)] {
            let t = Template::constant(value.clone());
            assert_eq!(t.eval(&mut v), value);
        }
        assert_eq!(Template::constant(Value::from(2.5)).render(&mut v), "2.5");
    }

    #[test]
    fn randint_stays_in_bounds_and_typed() {
        let t = Template::compile("{{ $randint(1, 5) }}", &TestScope).unwrap();
        let mut v = vars();
        for _ in 0..200 {
            let x = t.eval(&mut v).as_i64().unwrap();
            assert!((1..=5).contains(&x));
        }
        let s = Template::compile("{{ $random_string(12) }}", &TestScope).unwrap();
        assert_eq!(s.render(&mut v).len(), 12);
        let u = Template::compile("{{ $uuid() }}", &TestScope).unwrap();
        let id = u.render(&mut v);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
    }

    #[test]
    fn errors_carry_offsets() {
        let e = Template::compile("/a/{{ nope }}", &TestScope).unwrap_err();
        assert_eq!(e.offset, 5);
        assert!(e.message.contains("unknown name"));
        let e = Template::compile("/a/{{ token", &TestScope).unwrap_err();
        assert_eq!(e.offset, 3);
        assert!(e.message.contains("never closed"));
        assert!(Template::compile("{{ $nope() }}", &TestScope).is_err());
        assert!(Template::compile("{{ $randint(5, 1) }}", &TestScope).is_err());
        assert!(Template::compile("{{ $randint(1) }}", &TestScope).is_err());
        assert!(Template::compile("{{ $env.MISSING_X }}", &TestScope).is_err());
        assert!(Template::compile("{{ }}", &TestScope).is_err());
        assert!(Template::compile("{{ 9lives }}", &TestScope).is_err());
    }

    #[test]
    fn json_bodies_keep_types() {
        let body: Value = serde_json::json!({
            "user": "{{ users.name }}", "qty": 1, "product": "{{ $randint(7, 7) }}",
            "note": "vu {{ $vu }}", "fixed": {"a": [1, "x"]}
        });
        let t = JsonTemplate::compile(&body, &TestScope).unwrap();
        let mut out = String::new();
        t.render_into(&mut vars(), &mut out);
        let back: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            back,
            serde_json::json!({"user": "bob", "qty": 1, "product": 7, "note": "vu 3", "fixed": {"a": [1, "x"]}})
        );
        let fixed = JsonTemplate::compile(&serde_json::json!({"a": [1, 2]}), &TestScope).unwrap();
        assert!(matches!(fixed, JsonTemplate::Static(_)));
    }

    #[test]
    fn urlencode_keeps_values_from_changing_a_url() {
        let scope = TestScope;
        let t = Template::compile(
            "/items/{{ token | urlencode }}?h={{ $env.HOME_X|urlencode }}",
            &scope,
        )
        .unwrap();
        let mut v = vars();
        v.captures[0] = Some(Value::from("a/b?c#d"));
        assert_eq!(t.render(&mut v), "/items/a%2Fb%3Fc%23d?h=%2Fhome%2Fx");
        // Without the filter the value goes in as it is.
        let raw = Template::compile("/items/{{ token }}", &scope).unwrap();
        assert_eq!(raw.render(&mut v), "/items/a/b?c#d");
        let mut out = String::new();
        url_encode_into(&mut out, "a/b?c=d#e f&é~._-");
        assert_eq!(out, "a%2Fb%3Fc%3Dd%23e%20f%26%C3%A9~._-");
        let e = Template::compile("{{ x | upper }}", &scope).unwrap_err();
        assert!(
            e.message.contains("unknown filter `upper`"),
            "{}",
            e.message
        );
    }
}

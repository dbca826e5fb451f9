//! What a template may refer to at one point of a flow: the `vars` constants, the
//! data files' columns, and the values captured by the steps before it.

use loadline_core::plan::Feeder;
use loadline_core::template::{PathSeg, Scope, VarRef};
use serde_json::Value;

use loadline_doc::suggest::did_you_mean;

/// The names declared for the whole scenario.
#[derive(Debug, Default, Clone)]
pub(crate) struct Names {
    pub vars: Vec<(String, Value)>,
    pub feeders: Vec<FeederInfo>,
    /// `$env` values given on the command line (`-e`), over the process's.
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub(crate) struct FeederInfo {
    pub name: String,
    /// `None` when the file could not be read (already reported).
    pub columns: Option<Vec<String>>,
}

/// The data files read, in the order of [`Names::feeders`] (`None`: not read).
pub(crate) type Loaded = Vec<Option<Feeder>>;

impl Names {
    pub fn is_declared(&self, name: &str) -> Option<&'static str> {
        if self.vars.iter().any(|(n, _)| n == name) {
            Some("var")
        } else if self.feeders.iter().any(|f| f.name == name) {
            Some("data file")
        } else {
            None
        }
    }
}

/// The names in scope for one template.
#[derive(Debug, Default)]
pub(crate) struct NameScope {
    pub names: Names,
    /// Captures assigned by earlier steps: name and slot.
    pub captures: Vec<(String, usize)>,
    /// Every name some step of this flow captures, for a better message when a
    /// template uses one too early.
    pub flow_captures: Vec<String>,
}

impl Scope for NameScope {
    fn resolve(&self, name: &str, path: &[PathSeg]) -> Result<VarRef, String> {
        resolve(&self.names, &self.captures, &self.flow_captures, name, path)
    }

    fn env(&self, name: &str) -> Option<String> {
        self.names.env(name)
    }
}

/// Outside any iteration (setup statements, connection URLs): no captures.
impl Scope for Names {
    fn resolve(&self, name: &str, path: &[PathSeg]) -> Result<VarRef, String> {
        resolve(self, &[], &[], name, path)
    }

    /// The command line's value (the last one given), else the process's.
    fn env(&self, name: &str) -> Option<String> {
        match self.env.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => Some(v.clone()),
            None => std::env::var(name).ok(),
        }
    }
}

fn resolve(
    names: &Names,
    captures: &[(String, usize)],
    flow_captures: &[String],
    name: &str,
    path: &[PathSeg],
) -> Result<VarRef, String> {
    if let Some((_, slot)) = captures.iter().find(|(n, _)| n == name) {
        return Ok(VarRef::Capture {
            slot: *slot,
            path: path.to_vec(),
        });
    }
    if let Some((_, value)) = names.vars.iter().find(|(n, _)| n == name) {
        return walk(name, value, path).map(|v| VarRef::Const(v.clone()));
    }
    if let Some((index, feeder)) = names
        .feeders
        .iter()
        .enumerate()
        .find(|(_, f)| f.name == name)
    {
        return column(index, feeder, path);
    }
    if flow_captures.iter().any(|n| n == name) {
        return Err(format!(
            "`{name}` is used before any step captures it: capture it in an earlier step of this flow"
        ));
    }
    Err(unknown(names, captures, name))
}

fn unknown(names: &Names, captures: &[(String, usize)], name: &str) -> String {
    let known: Vec<&str> = captures
        .iter()
        .map(|(n, _)| n.as_str())
        .chain(names.vars.iter().map(|(n, _)| n.as_str()))
        .chain(names.feeders.iter().map(|f| f.name.as_str()))
        .collect();
    let mut msg = format!("unknown name `{name}`");
    if known.is_empty() {
        msg.push_str(": no vars, data files or captured values are defined here");
    } else {
        msg.push_str(&format!(
            ": expected a var, a data file or a value captured earlier ({})",
            known.join(", ")
        ));
    }
    if let Some(s) = did_you_mean(name, known) {
        msg.push_str(&format!("; did you mean `{s}`?"));
    }
    msg
}

/// Follows `.key` and `[index]` into a constant.
fn walk<'v>(name: &str, value: &'v Value, path: &[PathSeg]) -> Result<&'v Value, String> {
    let mut current = value;
    let mut shown = name.to_string();
    for seg in path {
        let next = match seg {
            PathSeg::Key(k) => current.get(k.as_str()),
            PathSeg::Index(i) => current.get(*i),
        };
        let Some(next) = next else {
            let what = match seg {
                PathSeg::Key(k) => format!("no key `{k}`"),
                PathSeg::Index(i) => format!("no item [{i}]"),
            };
            let has = match current {
                Value::Object(m) => format!(
                    " (its keys: {})",
                    m.keys().map(String::as_str).collect::<Vec<_>>().join(", ")
                ),
                Value::Array(a) => format!(" (it has {} items)", a.len()),
                _ => " (it is a plain value)".to_string(),
            };
            return Err(format!("the var `{shown}` has {what}{has}"));
        };
        shown.push_str(&match seg {
            PathSeg::Key(k) => format!(".{k}"),
            PathSeg::Index(i) => format!("[{i}]"),
        });
        current = next;
    }
    Ok(current)
}

fn column(index: usize, feeder: &FeederInfo, path: &[PathSeg]) -> Result<VarRef, String> {
    let name = &feeder.name;
    let listed = |cols: &Option<Vec<String>>| match cols {
        Some(c) => format!(" (one of {})", c.join(", ")),
        None => String::new(),
    };
    match path {
        [] => Err(format!(
            "`{name}` is a data file: use `{name}.<column>`{}",
            listed(&feeder.columns)
        )),
        [PathSeg::Key(col)] => match &feeder.columns {
            // The file could not be read; that is reported on its own.
            None => Ok(VarRef::Feeder {
                feeder: index,
                column: 0,
            }),
            Some(cols) => match cols.iter().position(|c| c == col) {
                Some(column) => Ok(VarRef::Feeder {
                    feeder: index,
                    column,
                }),
                None => {
                    let mut msg = format!(
                        "data file `{name}` has no column `{col}`: expected one of {}",
                        cols.join(", ")
                    );
                    if let Some(s) = did_you_mean(col, cols.iter().map(String::as_str)) {
                        msg.push_str(&format!("; did you mean `{name}.{s}`?"));
                    }
                    Err(msg)
                }
            },
        },
        _ => Err(format!(
            "a data column is used as `{name}.<column>`, with nothing after it{}",
            listed(&feeder.columns)
        )),
    }
}

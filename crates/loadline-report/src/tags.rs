//! A run's tags (`--tag env=staging`): free key/value pairs that every output
//! carries, so runs from several places, branches or builds can be told apart
//! where they meet (a JSON store, a Prometheus server, a CSV sheet). A key is a
//! Prometheus label name, since the exporter turns each tag into a label.

use std::collections::BTreeMap;

/// Tag key → value.
pub type Tags = BTreeMap<String, String>;

/// The labels the exporter sets itself; a tag cannot take their names.
pub const RESERVED: &[&str] = &["step", "kind", "quantile", "series"];

/// Checks that `name` can be a tag: a Prometheus label name
/// (`[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`) that the exporter does
/// not use itself.
pub fn check_name(name: &str) -> Result<(), String> {
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` cannot be a tag: expected letters, digits and `_`, not starting with a digit (it becomes a Prometheus label)"
        ));
    }
    if name.starts_with("__") {
        return Err(format!(
            "`{name}` cannot be a tag: names starting with `__` are Prometheus's own"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!(
            "`{name}` cannot be a tag: the exporter's series use that label already (reserved: {})",
            RESERVED.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_names_are_label_names() {
        for ok in ["env", "_x", "region_2", "Build"] {
            assert_eq!(check_name(ok), Ok(()), "{ok}");
        }
        for bad in ["", "2x", "a-b", "a.b", "é", "__name", "step", "quantile"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}

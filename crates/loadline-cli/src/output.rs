//! JSON results that are not a plain run summary: the capacity search's report,
//! and the demo's summary with the shop's own figures added; and the other
//! end-of-run files. Written like the summary ([`json::write_file`]): a regular
//! file is replaced atomically, a link, a pipe or a device written through.

use std::path::Path;

use loadline_core::summary::Summary;
use loadline_report::json;
use serde::Serialize;

/// Writes `value` as pretty JSON to `path` (atomically, or through a link, a
/// pipe or a device: see [`json::write_file`]).
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), String> {
    let mut text = serde_json::to_string_pretty(value)
        .map_err(|e| format!("cannot encode the results: {e}"))?;
    text.push('\n');
    json::write_file(path, text.as_bytes()).map_err(|e| e.to_string())
}

/// Writes `text` to `path` (see [`json::write_file`]).
pub fn write_text(path: &Path, text: &str) -> Result<(), String> {
    json::write_file(path, text.as_bytes()).map_err(|e| e.to_string())
}

/// Writes the summary with the fields of `extra` (an object) added at its top level.
pub fn write_json_with(
    path: &Path,
    summary: &Summary,
    extra: serde_json::Value,
) -> Result<(), String> {
    let mut value =
        serde_json::to_value(summary).map_err(|e| format!("cannot encode the summary: {e}"))?;
    if let (Some(obj), serde_json::Value::Object(more)) = (value.as_object_mut(), extra) {
        obj.extend(more);
    }
    write_json(path, &value)
}

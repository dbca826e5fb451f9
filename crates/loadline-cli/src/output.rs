//! JSON results that are not a plain run summary: the capacity search's report,
//! and the demo's summary with the shop's own figures added. Written atomically,
//! like the summary (a temporary file renamed over the target).

use std::io::Write;
use std::path::{Path, PathBuf};

use loadline_core::summary::Summary;
use serde::Serialize;

/// Writes `value` as pretty JSON to `path`, atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), String> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| format!("cannot encode the results: {e}"))?;
    let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes `text` to `path`, atomically.
pub fn write_text(path: &Path, text: &str) -> Result<(), String> {
    let io = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
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

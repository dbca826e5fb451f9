//! Reading data files: CSV with a header row, or JSON lines (one object a line).

use std::path::Path;

use serde_json::Value;

/// The largest data file read (all rows are held in memory for the run).
const MAX_DATA_BYTES: u64 = 1 << 30;

/// Columns and rows of a data file.
pub(crate) type Table = (Vec<String>, Vec<Vec<Value>>);

/// Reads the data file `written` (as the scenario names it) found at `path`.
pub(crate) fn read(written: &str, path: &Path) -> Result<Table, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    // Only regular files of a sane size: a FIFO, a device or a symlink to one
    // would hang the loader or exhaust memory (rows are held in memory).
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            return Err(format!(
                "data file `{written}` ({}) is not a regular file",
                path.display()
            ))
        }
        Ok(m) if m.len() > MAX_DATA_BYTES => {
            return Err(format!(
                "data file `{written}` is {} MiB: at most {} MiB is read into memory",
                m.len() >> 20,
                MAX_DATA_BYTES >> 20
            ))
        }
        Ok(_) => {}
        Err(e) => return Err(cannot_read(written, path, e)),
    }
    let (columns, rows) = match ext.as_deref() {
        Some("csv") => read_csv(written, path)?,
        Some("jsonl" | "ndjson") => read_jsonl(written, path)?,
        _ => {
            return Err(format!(
                "data file `{written}`: expected a .csv, .jsonl or .ndjson file"
            ))
        }
    };
    if rows.is_empty() {
        return Err(format!(
            "data file `{written}` has no rows: expected at least one row of data"
        ));
    }
    if let Some(dup) = columns
        .iter()
        .enumerate()
        .find(|(i, c)| columns[..*i].contains(c))
        .map(|(_, c)| c)
    {
        return Err(format!(
            "data file `{written}` has two columns named `{dup}`"
        ));
    }
    Ok((columns, rows))
}

fn cannot_read(written: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!(
        "cannot read data file `{written}` ({}): {e}",
        path.display()
    )
}

fn read_csv(written: &str, path: &Path) -> Result<Table, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| cannot_read(written, path, e))?;
    let header = reader
        .headers()
        .map_err(|e| format!("data file `{written}`: {e}"))?
        .clone();
    if header.is_empty() || header.iter().all(str::is_empty) {
        return Err(format!(
            "data file `{written}` is empty: expected a header row naming the columns, such as `name,password`"
        ));
    }
    let columns: Vec<String> = header.iter().map(|c| c.trim().to_string()).collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| format!("data file `{written}`: {e}"))?;
        rows.push(
            record
                .iter()
                .map(|v| Value::String(v.to_string()))
                .collect(),
        );
    }
    Ok((columns, rows))
}

fn read_jsonl(written: &str, path: &Path) -> Result<Table, String> {
    let text = std::fs::read_to_string(path).map_err(|e| cannot_read(written, path, e))?;
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = |msg: String| format!("data file `{written}` line {}: {msg}", i + 1);
        let value: Value = serde_json::from_str(line).map_err(|e| at(e.to_string()))?;
        let Value::Object(object) = value else {
            return Err(at(format!(
                "expected a JSON object such as {{\"name\": \"ann\"}}, found {value}"
            )));
        };
        let columns = columns.get_or_insert_with(|| object.keys().cloned().collect());
        rows.push(
            columns
                .iter()
                .map(|c| object.get(c).cloned().unwrap_or(Value::Null))
                .collect(),
        );
    }
    Ok((columns.unwrap_or_default(), rows))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_csv_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("u.csv");
        std::fs::write(&csv, "name,password\nann,a1\nbob,b2\n").unwrap();
        let (cols, rows) = read("u.csv", &csv).unwrap();
        assert_eq!(cols, vec!["name", "password"]);
        assert_eq!(rows[1], vec![Value::from("bob"), Value::from("b2")]);

        let jl = dir.path().join("u.jsonl");
        std::fs::write(&jl, "{\"id\": 1, \"name\": \"ann\"}\n\n{\"id\": 2}\n").unwrap();
        let (cols, rows) = read("u.jsonl", &jl).unwrap();
        assert_eq!(cols, vec!["id", "name"]);
        assert_eq!(rows[1], vec![Value::from(2), Value::Null]);

        std::fs::write(&jl, "{\"id\": 1}\n{oops}\n").unwrap();
        let e = read("u.jsonl", &jl).unwrap_err();
        assert!(e.contains("line 2"), "{e}");

        std::fs::write(&csv, "").unwrap();
        assert!(read("u.csv", &csv).unwrap_err().contains("is empty"));
        std::fs::write(&csv, "name\n").unwrap();
        assert!(read("u.csv", &csv).unwrap_err().contains("no rows"));
        let folder = dir.path().join("folder.csv");
        std::fs::create_dir(&folder).unwrap();
        assert!(read("folder.csv", &folder)
            .unwrap_err()
            .contains("not a regular file"));
        let e = read("nope.csv", &dir.path().join("nope.csv")).unwrap_err();
        assert!(e.contains("cannot read data file `nope.csv`"), "{e}");
    }
}

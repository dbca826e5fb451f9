//! The JSON summary file (`--summary-json PATH`); its fields are documented in
//! docs/summary-json.md.

use std::io::Write;
use std::path::{Path, PathBuf};

use loadline_core::summary::Summary;

/// A results file that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode the summary: {0}")]
    Encode(#[from] serde_json::Error),
}

/// Checks, before any load, that `path` can be created: its folder exists and is
/// writable. Leaves no file behind.
pub fn check_writable(path: &Path) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if path.is_dir() {
        return Err(io(std::io::Error::other("it is a folder")));
    }
    let probe = tempfile_in(&dir).map_err(io)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn tempfile_in(dir: &Path) -> std::io::Result<PathBuf> {
    let probe = dir.join(format!(".loadline-probe-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    Ok(probe)
}

/// Writes the summary as pretty JSON, atomically (a temporary file renamed over
/// the target), so a reader never sees half a file.
pub fn write_summary(path: &Path, summary: &Summary) -> Result<(), OutputError> {
    let text = serde_json::to_string_pretty(summary)?;
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.write_all(b"\n").map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwritable_paths_are_refused_before_the_run() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("out.json")).is_ok());
        assert!(check_writable(&dir.path().join("missing/out.json")).is_err());
        assert!(check_writable(dir.path()).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

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

/// Checks, before any load, that `path` can be written: a new file in an existing
/// writable folder, an existing regular file that is not read-only, or a link, a
/// pipe or a device to write through. Leaves no file behind.
pub fn check_writable(path: &Path) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => return Err(io(std::io::Error::other("it is a folder"))),
        Ok(m) if m.is_file() && m.permissions().readonly() => {
            return Err(io(std::io::Error::other("it is read-only")))
        }
        Ok(m) if !m.is_file() => {
            // A link, a pipe or a device: written through; a link to a
            // read-only file or a folder is refused like the file itself.
            return match std::fs::metadata(path) {
                Ok(t) if t.is_dir() => Err(io(std::io::Error::other("it leads to a folder"))),
                Ok(t) if t.is_file() && t.permissions().readonly() => {
                    Err(io(std::io::Error::other("it leads to a read-only file")))
                }
                Ok(_) => Ok(()),
                // A dangling link: writing through it creates its target.
                Err(_) => Ok(()),
            };
        }
        _ => {}
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let probe = tempfile_in(&dir).map_err(io)?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

fn tempfile_in(dir: &Path) -> std::io::Result<PathBuf> {
    let probe = dir.join(format!(".loadline-probe-{}", std::process::id()));
    std::fs::File::create(&probe)?;
    Ok(probe)
}

/// Writes a results file. A new path, or an existing regular file, is replaced
/// atomically (a temporary file beside it, renamed over it), so a reader never
/// sees half a file. Anything else — a symbolic link, a pipe, a device such as
/// `/dev/stdout` — is opened and written through, as a shell redirect does: the
/// link stays a link and its target gets the text.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let io = |source| OutputError::Io {
        path: path.to_path_buf(),
        source,
    };
    let replace = match std::fs::symlink_metadata(path) {
        Ok(m) => m.is_file(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(io(e)),
    };
    if !replace {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .create(true)
            .open(path)
            .map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        return f.flush().map_err(io);
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes the summary as pretty JSON (see [`write_file`]).
pub fn write_summary(path: &Path, summary: &Summary) -> Result<(), OutputError> {
    let mut text = serde_json::to_string_pretty(summary)?;
    text.push('\n');
    write_file(path, text.as_bytes())
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
        let ro = dir.path().join("ro.json");
        std::fs::write(&ro, "x").unwrap();
        let mut perms = std::fs::metadata(&ro).unwrap().permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(&ro, perms).unwrap();
        assert!(check_writable(&ro).is_err());
    }

    #[test]
    fn links_are_written_through_and_files_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target.json");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_file(&link, b"new").unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        write_file(&target, b"newer").unwrap();
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "newer");
        let fresh = dir.path().join("fresh.json");
        write_file(&fresh, b"1").unwrap();
        assert_eq!(std::fs::read_to_string(&fresh).unwrap(), "1");
    }
}

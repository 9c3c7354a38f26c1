//! Small file helpers shared by the CA and the CT log.

use std::path::Path;
use thiserror::Error;

/// A file could not be written.
#[derive(Debug, Error)]
#[error("cannot write {path}")]
pub struct FileError {
    /// The file that could not be written (the target, not its temporary file).
    pub path: std::path::PathBuf,
    /// The underlying I/O error.
    #[source]
    pub source: std::io::Error,
}

/// Writes via a temporary file and rename, so a crash never leaves half a file.
pub fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), FileError> {
    use std::io::Write;
    let err = |source: std::io::Error| FileError {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let _ = secret;
    let mut f = opts.open(&tmp).map_err(err)?;
    f.write_all(contents.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(())
}

//! State-folder file helpers: atomic writes with a file mode, and [`Watched`] values that
//! reload when another process (the CLI) replaces their file.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::Error;

/// Mode for files holding secrets or private keys.
pub(crate) const PRIVATE: u32 = 0o600;
/// Mode for public files (certificates).
pub(crate) const PUBLIC: u32 = 0o644;

/// Writes `contents` to `path` atomically (temporary file + rename) with `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        uuid::Uuid::new_v4().simple()
    ));
    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| Error::io("writing", path, e))
}

/// Reads a whole file as UTF-8.
pub(crate) fn read_string(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))
}

/// Identity of one version of a file: inode, size and modification time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some(Stamp {
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

type Loader<T> = Box<dyn Fn(&Path) -> Result<T, Error> + Send + Sync>;

/// A value parsed from a file, re-parsed when the file changes (checked on each
/// [`Watched::get`], which costs one `stat`). A broken new version is logged and the last
/// good value is kept.
pub(crate) struct Watched<T> {
    path: PathBuf,
    load: Loader<T>,
    current: RwLock<(Option<Stamp>, Arc<T>)>,
}

impl<T> Watched<T> {
    /// Loads `path` now (failing if it is broken) and watches it from then on.
    pub(crate) fn open(
        path: PathBuf,
        load: impl Fn(&Path) -> Result<T, Error> + Send + Sync + 'static,
    ) -> Result<Self, Error> {
        let before = stamp(&path);
        let value = load(&path)?;
        Ok(Watched {
            path,
            load: Box::new(load),
            current: RwLock::new((before, Arc::new(value))),
        })
    }

    /// The current value, reloading first if the file changed.
    pub(crate) fn get(&self) -> Arc<T> {
        let now = stamp(&self.path);
        {
            let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
            if guard.0 == now {
                return guard.1.clone();
            }
        }
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        if guard.0 != now {
            match (self.load)(&self.path) {
                Ok(value) => {
                    tracing::info!(file = %self.path.display(), "reloaded after a change on disk");
                    *guard = (now, Arc::new(value));
                }
                Err(err) => {
                    tracing::warn!(error = %err, "keeping the last good version");
                    guard.0 = now;
                }
            }
        }
        guard.1.clone()
    }

    /// Replaces the value after this process wrote the file itself.
    pub(crate) fn set(&self, value: T) {
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        *guard = (stamp(&self.path), Arc::new(value));
    }

    /// The watched file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

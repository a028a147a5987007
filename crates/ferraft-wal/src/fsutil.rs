//! Small file-system helpers whose ordering rules are easy to get wrong.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{io_error, WalError};

/// Suffix of files being written before their atomic rename.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Makes renames, creations and unlinks in `dir` durable.
///
/// A new file's data can be on disk while its directory entry is not; without
/// this, a crash can make a just-created (or just-deleted) file vanish (or return).
pub(crate) fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_error("syncing directory", dir))
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or
/// the new content, never a mix: write a temporary file, sync it, rename it
/// over the target, sync the directory.
///
/// The content is the concatenation of `parts`, so large values need not be
/// copied into one buffer first.
pub(crate) fn write_atomic(dir: &Path, name: &str, parts: &[&[u8]], sync: bool) -> Result<(), WalError> {
    let temp = format!("{name}{TEMP_SUFFIX}");
    write_synced(&dir.join(&temp), parts, sync)?;
    rename_synced(dir, &temp, name, sync)
}

/// Writes `parts` to a new file at `path` and syncs it (when `sync`).
pub(crate) fn write_synced(path: &Path, parts: &[&[u8]], sync: bool) -> Result<(), WalError> {
    let mut file = File::create(path).map_err(io_error("creating", path))?;
    for part in parts {
        file.write_all(part).map_err(io_error("writing", path))?;
    }
    if sync {
        file.sync_all().map_err(io_error("syncing", path))?;
    }
    Ok(())
}

/// Renames `dir/from` over `dir/to` and makes the rename durable (when `sync`).
pub(crate) fn rename_synced(dir: &Path, from: &str, to: &str, sync: bool) -> Result<(), WalError> {
    let target = dir.join(to);
    fs::rename(dir.join(from), &target).map_err(io_error("renaming into place", &target))?;
    if sync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads a whole file, or `None` if it does not exist.
pub(crate) fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, WalError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error("reading", path)(error)),
    }
}

/// Removes leftovers of interrupted atomic writes; they were never renamed
/// into place, so they hold nothing anyone relies on.
pub(crate) fn remove_temp_files(dir: &Path) -> Result<(), WalError> {
    for entry in fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let path = entry.map_err(io_error("listing", dir))?.path();
        if path.extension().is_some_and(|ext| ext == &TEMP_SUFFIX[1..]) {
            fs::remove_file(&path).map_err(io_error("removing leftover", &path))?;
        }
    }
    Ok(())
}

/// An exclusive lock on a data dir, held while a store has it open.
///
/// Two stores appending to one log would interleave records and destroy it;
/// the OS releases the lock when the process dies, so a crash never leaves a
/// stale lock behind.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Takes the lock, failing at once if another store holds it.
    pub fn acquire(dir: &Path) -> Result<Self, WalError> {
        let path: PathBuf = dir.join("LOCK");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error("opening lock file", &path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(TryLockError::WouldBlock) => Err(WalError::Locked { path: dir.to_path_buf() }),
            Err(TryLockError::Error(error)) => Err(io_error("locking", &path)(error)),
        }
    }
}

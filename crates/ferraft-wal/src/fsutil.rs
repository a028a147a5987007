//! Small file-system helpers whose ordering rules are easy to get wrong.

use std::path::Path;

use crate::error::{io_error, WalError};
use crate::file_system::{FileSystem, LockGuard};

/// Suffix of files being written before their atomic rename.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// Makes renames, creations and unlinks in `dir` durable.
///
/// A new file's data can be on disk while its directory entry is not; without
/// this, a crash can make a just-created (or just-deleted) file vanish (or return).
pub(crate) fn sync_dir(fs: &dyn FileSystem, dir: &Path) -> Result<(), WalError> {
    fs.sync_dir(dir).map_err(io_error("syncing directory", dir))
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or
/// the new content, never a mix: write a temporary file, sync it, rename it
/// over the target, sync the directory.
///
/// The content is the concatenation of `parts`, so large values need not be
/// copied into one buffer first.
pub(crate) fn write_atomic(
    fs: &dyn FileSystem,
    dir: &Path,
    name: &str,
    parts: &[&[u8]],
    sync: bool,
) -> Result<(), WalError> {
    let temp = format!("{name}{TEMP_SUFFIX}");
    write_synced(fs, &dir.join(&temp), parts, sync)?;
    rename_synced(fs, dir, &temp, name, sync)
}

/// Writes `parts` to a new file at `path` and syncs it (when `sync`).
pub(crate) fn write_synced(fs: &dyn FileSystem, path: &Path, parts: &[&[u8]], sync: bool) -> Result<(), WalError> {
    let file = fs.create(path).map_err(io_error("creating", path))?;
    let mut offset = 0;
    for part in parts {
        file.write_all_at(part, offset).map_err(io_error("writing", path))?;
        offset += part.len() as u64;
    }
    if sync {
        file.sync_all().map_err(io_error("syncing", path))?;
    }
    Ok(())
}

/// Renames `dir/from` over `dir/to` and makes the rename durable (when `sync`).
pub(crate) fn rename_synced(fs: &dyn FileSystem, dir: &Path, from: &str, to: &str, sync: bool) -> Result<(), WalError> {
    let target = dir.join(to);
    fs.rename(&dir.join(from), &target).map_err(io_error("renaming into place", &target))?;
    if sync {
        sync_dir(fs, dir)?;
    }
    Ok(())
}

/// Reads a whole file, or `None` if it does not exist.
pub(crate) fn read_if_exists(fs: &dyn FileSystem, path: &Path) -> Result<Option<Vec<u8>>, WalError> {
    match fs.read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(io_error("reading", path)(error)),
    }
}

/// Removes leftovers of interrupted atomic writes; they were never renamed
/// into place, so they hold nothing anyone relies on.
pub(crate) fn remove_temp_files(fs: &dyn FileSystem, dir: &Path) -> Result<(), WalError> {
    for name in fs.list_dir(dir).map_err(io_error("listing", dir))? {
        let path = dir.join(name);
        if path.extension().is_some_and(|ext| ext == &TEMP_SUFFIX[1..]) {
            fs.remove_file(&path).map_err(io_error("removing leftover", &path))?;
        }
    }
    Ok(())
}

/// An exclusive lock on a data dir, held while a store has it open.
///
/// Two stores appending to one log would interleave records and destroy it;
/// the OS releases the lock when the process dies, so a crash never leaves a
/// stale lock behind.
pub(crate) struct DirLock {
    _guard: LockGuard,
}

impl std::fmt::Debug for DirLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DirLock")
    }
}

impl DirLock {
    /// Takes the lock, failing at once if another store holds it.
    pub fn acquire(fs: &dyn FileSystem, dir: &Path) -> Result<Self, WalError> {
        let path = dir.join("LOCK");
        match fs.try_lock(&path).map_err(io_error("locking", &path))? {
            Some(guard) => Ok(Self { _guard: guard }),
            None => Err(WalError::Locked { path: dir.to_path_buf() }),
        }
    }
}

//! Files only Roost's user may read: the database, the keys, the outbox (its mails hold live
//! set-password links) and backups. They are created private whatever the umask, not chmod-ed
//! after; existing ones that others can read are reported and tightened at start.

use std::io::Write;
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

pub const PRIVATE_DIR_MODE: u32 = 0o700;
pub const PRIVATE_FILE_MODE: u32 = 0o600;

/// Creates `path` (and missing parents) as directories only the owner can enter.
pub fn create_private_dir(path: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(PRIVATE_DIR_MODE);
    builder.create(path)
}

/// Options that create a file readable by its owner only.
pub fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    options.mode(PRIVATE_FILE_MODE);
    options
}

/// Creates `path` holding `bytes`, private from the start, refusing to replace a file.
pub fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = private_file_options()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Puts a finished file written under a temporary name (`partial`, already flushed by the caller)
/// in place as `out`, refusing to replace a file there, and flushes the directory so the rename
/// survives a crash.
pub fn publish(partial: &Path, out: &Path) -> std::io::Result<()> {
    if out.exists() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already exists",
        ));
    }
    std::fs::rename(partial, out)?;
    if let Some(dir) = out.parent().filter(|dir| !dir.as_os_str().is_empty())
        && let Ok(dir) = std::fs::File::open(dir)
    {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates an empty private file at `path` if there is none (so that what opens it next, redb,
/// finds it private already).
pub fn ensure_private_file(path: &Path) -> std::io::Result<()> {
    match private_file_options()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Makes sure Roost's umask can't widen what it creates later (lettre's outbox files, temp files):
/// group and others get nothing.
pub fn restrict_umask() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file creation mask and can't fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// If `path` (a directory or a file Roost owns) can be read or entered by group or others, says
/// so in one line and tightens it. Returns whether it had to.
pub fn tighten(path: &Path) -> bool {
    #[cfg(unix)]
    {
        let Ok(metadata) = std::fs::metadata(path) else {
            return false;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return false;
        }
        let private = if metadata.is_dir() {
            PRIVATE_DIR_MODE
        } else {
            PRIVATE_FILE_MODE
        };
        let outcome = std::fs::set_permissions(path, std::fs::Permissions::from_mode(private));
        match outcome {
            Ok(()) => tracing::warn!(
                "{} was readable by other users (mode {mode:o}); now {private:o}",
                path.display()
            ),
            Err(error) => tracing::warn!(
                "{} is readable by other users (mode {mode:o}) and could not be tightened: {error}",
                path.display()
            ),
        }
        true
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        false
    }
}

/// Tightens `dir` and every file directly in it (the outbox, the backups).
pub fn tighten_dir_and_files(dir: &Path) {
    tighten(dir);
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_file()) {
                tighten(&entry.path());
            }
        }
    }
}

//! The database file and its `-wal` / `-shm` companions are private (0600): they hold
//! sealed keys, secret hashes and the sign-in log. SQLite creates the main file with
//! the process umask (0644 usually) and the companions with the main file's mode, so
//! the main file is created here first, exclusively and never through a symbolic link,
//! and any of the three found more open than 0600 is tightened.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use keyless_store::StoreError;

fn refused(path: &Path, why: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!(
        "cannot use the database file {}: {why}",
        path.display()
    ))
}

/// Prepares the database at `path` and its companions as described above.
pub(super) fn prepare(path: &Path) -> Result<(), StoreError> {
    let mut companions: Vec<PathBuf> = Vec::new();
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        companions.push(PathBuf::from(name));
    }
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                .mode(0o600)
                .open(path)
                .map_err(|e| refused(path, e))?;
        }
        Err(e) => return Err(refused(path, e)),
        Ok(_) => {}
    }
    for p in std::iter::once(path.to_path_buf()).chain(companions) {
        let meta = match std::fs::symlink_metadata(&p) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(refused(&p, e)),
        };
        if meta.file_type().is_symlink() {
            return Err(refused(&p, "it is a symbolic link; use the real path"));
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| refused(&p, e))?;
            tracing::warn!(path = %p.display(), mode = format!("{mode:o}"), "database file was readable by others: now 0600");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_database_file_is_0600_and_open_ones_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("keyless.db");
        prepare(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        let wal = dir.path().join("keyless.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o664)).unwrap();
        prepare(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal), 0o600);
    }

    #[test]
    fn a_symlinked_database_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = dir.path().join("elsewhere.db");
        std::fs::write(&elsewhere, b"").unwrap();
        let db = dir.path().join("keyless.db");
        std::os::unix::fs::symlink(&elsewhere, &db).unwrap();
        let e = prepare(&db).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let dangling = dir.path().join("dangling.db");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        assert!(prepare(&dangling).is_err());
        assert!(!dir.path().join("nowhere").exists());
    }
}

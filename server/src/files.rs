//! Files that hold secrets are private to the account Quiver runs as: the
//! data folder is created 0700, the SQLite database and its `-wal`, `-shm`
//! and `-journal` files are 0600, whatever the process's umask.
//!
//! The database holds password hashes, session hashes, the audit log and
//! the sealed secrets: Quiver makes its files private when it creates them
//! and again at every start (a database left 0644 by an older version or a
//! restore is tightened, and the log says so). A data folder that already
//! exists is the operator's (a mount point, a folder shared with a backup
//! tool): Quiver only warns when others can open it.

use std::io;
use std::path::Path;

/// Permission bits for group and others.
#[cfg(unix)]
const GROUP_AND_OTHERS: u32 = 0o077;

/// The permission bits of `path` (following links); `None` off Unix.
pub fn mode(path: &Path) -> io::Result<Option<u32>> {
    let metadata = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Ok(Some(metadata.permissions().mode() & 0o7777))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        Ok(None)
    }
}

/// Whether a mode lets group or others in at all.
pub fn open_to_others(mode: u32) -> bool {
    #[cfg(unix)]
    {
        mode & GROUP_AND_OTHERS != 0
    }
    #[cfg(not(unix))]
    {
        let _ = mode;
        false
    }
}

/// Sets the permission bits of `path`.
#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Creates the folder `path` (and missing parents) readable by its owner
/// only. A folder that exists is left as it is, with a warning when group
/// or others can open it.
pub fn private_dir(path: &Path) -> io::Result<()> {
    if path.is_dir() {
        if let Ok(Some(mode)) = mode(path)
            && open_to_others(mode)
        {
            tracing::warn!(
                dir = %path.display(),
                "the folder {} is open to other users (mode {mode:04o}): make it private with \
                 `chmod 700 {}`",
                path.display(),
                path.display()
            );
        }
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(path)?;
    // The umask may have taken bits off (or, at 0, left them): set them.
    #[cfg(unix)]
    set_mode(path, 0o700)?;
    Ok(())
}

/// The SQLite database at `path`: created empty and private when it does
/// not exist yet, so that SQLite, which gives its `-wal` and `-shm` files
/// the database file's mode, creates those private too; an existing
/// database and its companion files are made private (0600). Fails only
/// when the database file cannot be created.
pub fn private_sqlite_files(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => {
                use std::os::unix::fs::PermissionsExt;
                file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            let file = Path::new(&name);
            // A file owned by another account cannot be changed: the
            // database still opens, and the log says what to do.
            if let Err(e) = tighten(file) {
                tracing::warn!(
                    file = %file.display(),
                    error = %e,
                    "cannot make {} private to its owner: run `chmod 600 {}`",
                    file.display(),
                    file.display()
                );
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Makes an existing file private to its owner (no group or other bits),
/// saying so in the log. A missing file is fine.
#[cfg(unix)]
fn tighten(path: &Path) -> io::Result<()> {
    let mode = match mode(path) {
        Ok(Some(mode)) => mode,
        Ok(None) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !open_to_others(mode) {
        return Ok(());
    }
    let private = mode & !GROUP_AND_OTHERS;
    set_mode(path, private)?;
    tracing::warn!(
        file = %path.display(),
        "made {} private to its owner: it was mode {mode:04o}, now {private:04o}",
        path.display()
    );
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_new_folder_is_0700_and_an_existing_one_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("a/b/data");
        private_dir(&data).unwrap();
        assert_eq!(mode(&data).unwrap(), Some(0o700));
        set_mode(&data, 0o755).unwrap();
        private_dir(&data).unwrap();
        assert_eq!(mode(&data).unwrap(), Some(0o755));
    }

    #[test]
    fn a_new_database_is_created_0600_and_an_existing_one_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("quiver.db");
        private_sqlite_files(&db).unwrap();
        assert_eq!(mode(&db).unwrap(), Some(0o600));
        assert_eq!(std::fs::metadata(&db).unwrap().len(), 0);

        let wal = dir.path().join("quiver.db-wal");
        std::fs::write(&wal, b"").unwrap();
        set_mode(&db, 0o644).unwrap();
        set_mode(&wal, 0o664).unwrap();
        private_sqlite_files(&db).unwrap();
        assert_eq!(mode(&db).unwrap(), Some(0o600));
        assert_eq!(mode(&wal).unwrap(), Some(0o600));
        assert!(!dir.path().join("quiver.db-shm").exists());
    }
}

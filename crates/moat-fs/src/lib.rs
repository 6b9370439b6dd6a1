//! Files only their owner can read: moat's state (keys' hashes, usage, the audit log, the server
//! secret, signing keys) is created in directories of mode 0700 as files of mode 0600, and existing
//! ones that are looser are reported so the operator can tighten them.
//!
//! One place for this, so every state file gets the same modes and the same durability: the gateway's
//! store, secret and audit log, and the `moat` client's keys and conversations all go through it.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Creates `dir` and any missing parents with mode 0700 (an existing directory is left as it is).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Creates the parent directory of `path` as [`create_dir`] does.
pub fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) => create_dir(dir),
        None => Ok(()),
    }
}

fn private_options() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts
}

/// Writes a new file (it must not exist) readable only by its owner, and makes it durable: the
/// file's data and its directory entry are synced before this returns, so a crash right after
/// never leaves an empty or missing secret behind.
pub fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = private_options().write(true).create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    sync_dir(path)
}

/// Replaces `path` with `bytes` atomically: written to a temporary file of mode 0600 beside it, synced,
/// then renamed into place, so there is no moment when the content sits in a file with wider
/// permissions or a crash leaves half of it. The directory is created as [`create_parent`] does.
pub fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_parent(path)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| {
        let mut file = private_options().write(true).create_new(true).open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        sync_dir(path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Makes sure `path` exists, creating it empty with mode 0600 if it does not (an existing file is
/// left as it is). SQLite then gives its `-wal` and `-shm` files the database file's mode.
pub fn touch(path: &Path) -> std::io::Result<()> {
    match private_options().write(true).create_new(true).open(path) {
        Ok(_) => sync_dir(path),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Opens `path` for appending, creating it (and its directory, as [`create_parent`] does) with mode
/// 0600 if it does not exist.
pub fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    create_parent(path)?;
    private_options().create(true).append(true).open(path)
}

/// Creates or truncates `path` with mode 0600 (an existing file keeps its mode) for writing.
pub fn create(path: &Path) -> std::io::Result<std::fs::File> {
    private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

/// Syncs the directory holding `path`, so a newly created entry survives a crash.
fn sync_dir(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The state files of an SQLite database: the file itself and, while it is open in WAL mode, its
/// `-wal` and `-shm` companions.
pub fn sqlite_files(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [db.to_path_buf(), with("-wal"), with("-shm")]
}

/// A line for the operator when `path` exists and others than its owner may read, write or enter
/// it; `None` when it is private or absent.
pub fn looser_than_private(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).ok()?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 == 0 {
            return None;
        }
        let (kind, want) = if meta.is_dir() {
            ("directory", "700")
        } else {
            ("file", "600")
        };
        Some(format!(
            "{kind} {} has mode {mode:03o}: other local users can read moat's state; run `chmod {want} {}`",
            path.display(),
            path.display()
        ))
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o777)
    }

    #[test]
    fn directories_are_0700_and_files_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir(&dir).unwrap();
        assert_eq!((mode(&tmp.path().join("a")), mode(&dir)), (0o700, 0o700));
        let file = dir.join("secret");
        write_new(&file, b"s3cret\n").unwrap();
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).unwrap(), b"s3cret\n");
        assert!(write_new(&file, b"other").is_err(), "never overwrites");
        replace(&file, b"rotated").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"rotated");
        assert_eq!(mode(&file), 0o600);
        let fresh = tmp.path().join("c/d/key");
        replace(&fresh, b"k").unwrap();
        assert_eq!((mode(&tmp.path().join("c")), mode(&fresh)), (0o700, 0o600));
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        let db = dir.join("x.db");
        touch(&db).unwrap();
        touch(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert!(looser_than_private(&dir).is_none() && looser_than_private(&db).is_none());
    }

    #[test]
    fn looser_modes_are_reported_with_the_fix() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("moatd.db");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let line = looser_than_private(&file).unwrap();
        assert!(line.contains("mode 644") && line.contains("chmod 600"), "{line}");
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(looser_than_private(tmp.path()).unwrap().contains("chmod 700"));
        assert!(looser_than_private(&tmp.path().join("absent")).is_none());
    }

    #[test]
    fn sqlite_companions() {
        let [db, wal, shm] = sqlite_files(Path::new("/d/moatd.db"));
        assert_eq!(
            (db.to_str(), wal.to_str(), shm.to_str()),
            (
                Some("/d/moatd.db"),
                Some("/d/moatd.db-wal"),
                Some("/d/moatd.db-shm")
            )
        );
    }
}

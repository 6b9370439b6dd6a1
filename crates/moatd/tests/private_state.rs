//! moatd's state on disk is private: the data directory is created 0700 and every state file (key
//! store, audit log, their WAL and shared-memory files, the server secret, the signing key) 0600,
//! and a start with looser existing ones says so.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::*;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Starts moatd on `data`, makes one request so the databases have written (WAL files exist), and
/// stops it, returning its log. `private` checks the WAL companions while it runs (SQLite gives them
/// the database file's mode).
async fn run_once(data: &Path, private: bool) -> String {
    let daemon = Daemon::start_in(data, &["serve", "--listen", "127.0.0.1:0"], &[]);
    let r = client().get(daemon.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // While it runs, the WAL companions exist and are private too.
    let state = data.join("moat");
    for name in ["moatd.db-wal", "moatd.db-shm", "audit.db-wal", "audit.db-shm"] {
        let path = state.join(name);
        if private && path.exists() {
            assert_eq!(mode(&path), 0o600, "{name}");
        }
    }
    daemon.stop()
}

#[tokio::test(flavor = "multi_thread")]
async fn state_is_created_private_and_a_looser_existing_state_is_reported() {
    let data = tempfile::tempdir().unwrap();
    let log = run_once(data.path(), true).await;
    let state = data.path().join("moat");
    assert_eq!(mode(&state), 0o700, "the data directory");
    for name in ["moatd.db", "audit.db", "secret", "audit_signing_key"] {
        assert_eq!(mode(&state.join(name)), 0o600, "{name}");
    }
    assert!(!log.contains("other local users"), "{log}");

    // An operator (or an older moatd) left them readable: the next start says which and how to fix.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(state.join("moatd.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(state.join("audit.db"), std::fs::Permissions::from_mode(0o640)).unwrap();
    let log = run_once(data.path(), false).await;
    for (path, fix) in [
        (state.clone(), "chmod 700"),
        (state.join("moatd.db"), "chmod 600"),
        (state.join("audit.db"), "chmod 600"),
    ] {
        let line = log
            .lines()
            .find(|l| l.contains(&format!("{} has mode", path.display())))
            .unwrap_or_else(|| panic!("no warning for {}: {log}", path.display()));
        assert!(line.contains("WARN") && line.contains(fix), "{line}");
    }
}

//! moatd's state on disk (the key store, the audit log, the server secret and the signing key): where
//! each file is according to the config, and which of them others than their owner can read.
//! moatd creates them private (see `moat_store::private`); this finds the ones made looser since,
//! or made by an older moatd, so the start-up log can say so.

use std::path::PathBuf;

use crate::config::Config;

/// Every state file and directory the config names, companions (`-wal`, `-shm`) included.
pub fn paths(config: &Config) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut sqlite = |url: &str| {
        if let Some(db) = url.strip_prefix("sqlite://").filter(|p| !p.is_empty()) {
            let files = moat_fs::sqlite_files(std::path::Path::new(db));
            out.extend(files[0].parent().map(PathBuf::from));
            out.extend(files);
        }
    };
    sqlite(&config.store.url);
    if let Some(audit) = crate::audit::target(config) {
        sqlite(&audit.url);
        out.extend(audit.key_file.parent().map(PathBuf::from));
        out.push(audit.key_file);
    }
    out.extend(config.store.secret_file.parent().map(PathBuf::from));
    out.push(config.store.secret_file.clone());
    out.retain(|p| !p.as_os_str().is_empty());
    out.sort();
    out.dedup();
    out
}

/// One line per state file or directory that others than its owner may read.
pub fn looser_than_private(config: &Config) -> Vec<String> {
    paths(config)
        .iter()
        .filter_map(|p| moat_fs::looser_than_private(p))
        .collect()
}

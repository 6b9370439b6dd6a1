//! Where the API key comes from, and where `moat login` puts it.
//!
//! Order: the profile's `key_env`, `MOAT_API_KEY`, `OPENROUTER_API_KEY`, the profile's `key_command`,
//! a key file written by `moat login` (refused if group or others can read it, as ssh refuses a
//! private key), then the OS keyring. No flag takes a key: argv is visible to every user via `ps`.
//!
//! The keyring is the `keyring` crate: Secret Service over zbus on Linux (pure Rust, so building
//! needs no system -dev packages), Keychain on macOS, Credential Manager on Windows. `MOAT_KEYRING=off`
//! skips it, and any failure to reach it (no D-Bus session, as on a headless server) falls back to
//! the 0600 file.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::config::Profile;
use crate::paths::Env;
use crate::Error;

const KEYRING_SERVICE: &str = "moat";
/// The environment variables read for a key, in order, after the profile's own `key_env`.
pub const KEY_VARS: [&str; 2] = ["MOAT_API_KEY", "OPENROUTER_API_KEY"];

/// A secret; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The `Authorization` header value.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Checks a key as typed or piped: surrounding whitespace is dropped; inner whitespace or control
/// characters mean something else was pasted, and would break the header anyway.
pub fn parse_key(raw: &str) -> Result<ApiKey, Error> {
    let key = raw.trim();
    if key.is_empty() {
        return Err(Error::Key("the key is empty".into()));
    }
    if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Key("the key contains spaces or control characters".into()));
    }
    Ok(ApiKey(key.to_owned()))
}

/// Where a key was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    EnvVar(String),
    Command(String),
    File(PathBuf),
    Keyring(String),
    /// No key anywhere: requests go without `Authorization` (fine for a local server).
    Nowhere,
}

impl fmt::Display for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::EnvVar(v) => write!(f, "environment variable {v}"),
            KeySource::Command(c) => write!(f, "key_command `{c}`"),
            KeySource::File(p) => write!(f, "key file {}", p.display()),
            KeySource::Keyring(profile) => write!(f, "OS keyring (service \"moat\", account \"{profile}\")"),
            KeySource::Nowhere => f.write_str("no key found"),
        }
    }
}

/// The key for a profile and where it came from.
pub fn find(env: &Env, profile_name: &str, profile: &Profile) -> Result<(Option<ApiKey>, KeySource), Error> {
    if let Some(var) = &profile.key_env {
        let value = env
            .get(var)
            .ok_or_else(|| Error::Key(format!("the profile's key_env names {var}, which is not set")))?;
        return Ok((Some(parse_key(value)?), KeySource::EnvVar(var.clone())));
    }
    for var in KEY_VARS {
        if let Some(value) = env.get(var) {
            return Ok((Some(parse_key(value)?), KeySource::EnvVar(var.to_owned())));
        }
    }
    if let Some(command) = &profile.key_command {
        return Ok((
            Some(run_key_command(command)?),
            KeySource::Command(command.clone()),
        ));
    }
    let file = key_file(env, profile_name)?;
    if let Some(key) = read_key_file(&file)? {
        return Ok((Some(key), KeySource::File(file)));
    }
    if keyring_enabled(env) {
        if let Ok(secret) = keyring::Entry::new(KEYRING_SERVICE, profile_name).and_then(|e| e.get_password())
        {
            return Ok((
                Some(parse_key(&secret)?),
                KeySource::Keyring(profile_name.to_owned()),
            ));
        }
    }
    Ok((None, KeySource::Nowhere))
}

/// `MOAT_KEYRING=off` (or `0`, `false`, `no`) keeps moat away from the keyring.
pub fn keyring_enabled(env: &Env) -> bool {
    !matches!(
        env.get("MOAT_KEYRING").map(str::to_ascii_lowercase).as_deref(),
        Some("off" | "0" | "false" | "no")
    )
}

/// `<config dir>/keys/<profile>`.
pub fn key_file(env: &Env, profile_name: &str) -> Result<PathBuf, Error> {
    if profile_name.is_empty()
        || !profile_name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        || profile_name.starts_with('.')
    {
        return Err(Error::usage(format!(
            "profile name '{profile_name}' may only use letters, digits, '-', '_' and '.'"
        )));
    }
    Ok(env.config_dir()?.join("keys").join(profile_name))
}

/// Refuses permission bits that let anyone but the owner read or write the file.
pub fn check_mode(mode: u32, path: &Path) -> Result<(), Error> {
    if mode & 0o077 != 0 {
        return Err(Error::Key(format!(
            "refusing key file {} with permissions {:04o}: group or others can access it; \
             run `chmod 600 {}` (or `moat login` again)",
            path.display(),
            mode & 0o7777,
            path.display()
        )));
    }
    Ok(())
}

fn read_key_file(path: &Path) -> Result<Option<ApiKey>, Error> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        check_mode(meta.permissions().mode(), path)?;
    }
    #[cfg(not(unix))]
    let _ = meta;
    let text = fs::read_to_string(path).map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    parse_key(&text).map(Some)
}

fn run_key_command(command: &str) -> Result<ApiKey, Error> {
    let output = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Error::Key(format!("cannot run key_command: {e}")))?;
    if !output.status.success() {
        return Err(Error::Key(format!(
            "key_command `{command}` failed ({})",
            output.status
        )));
    }
    let text = String::from_utf8_lossy(&output.stdout);
    parse_key(text.lines().next().unwrap_or_default())
        .map_err(|e| Error::Key(format!("key_command `{command}`: {e}")))
}

/// Stores a key for a profile: the keyring if it works, else a 0600 file. Says where it went.
pub fn store(env: &Env, profile_name: &str, key: &ApiKey) -> Result<KeySource, Error> {
    let file = key_file(env, profile_name)?;
    if keyring_enabled(env) {
        let stored =
            keyring::Entry::new(KEYRING_SERVICE, profile_name).and_then(|e| e.set_password(key.expose()));
        if stored.is_ok() {
            // A stale file would shadow the keyring (files are read first).
            let _ = fs::remove_file(&file);
            return Ok(KeySource::Keyring(profile_name.to_owned()));
        }
    }
    write_private(&file, key.expose().as_bytes())?;
    Ok(KeySource::File(file))
}

/// Writes `bytes` to `path` readable by the owner only (directory 0700, file 0600, replaced
/// atomically: see [`moat_fs::replace`]).
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    moat_fs::replace(path, bytes).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_and_checked() {
        assert_eq!(parse_key("  sk-or-1\n").unwrap().expose(), "sk-or-1");
        assert!(parse_key("\n").is_err());
        assert!(parse_key("two words").is_err());
        assert_eq!(format!("{:?}", parse_key("secret").unwrap()), "ApiKey(***)");
        assert_eq!(parse_key("k").unwrap().bearer(), "Bearer k");
    }

    #[test]
    fn modes() {
        let p = Path::new("/k");
        assert!(check_mode(0o100600, p).is_ok());
        assert!(check_mode(0o100400, p).is_ok());
        let e = check_mode(0o100644, p).unwrap_err();
        assert!(
            e.to_string().contains("0644") && e.to_string().contains("chmod 600"),
            "{e}"
        );
        assert!(check_mode(0o100620, p).is_err());
    }

    #[test]
    fn env_order_and_keyring_switch() {
        let env = Env::from_pairs([
            ("HOME", "/nonexistent-home"),
            ("OPENROUTER_API_KEY", "b"),
            ("MOAT_API_KEY", "a"),
        ]);
        let (key, source) = find(&env, "default", &Profile::default()).unwrap();
        assert_eq!(
            (key.unwrap().expose(), source),
            ("a", KeySource::EnvVar("MOAT_API_KEY".into()))
        );
        let profile = Profile {
            key_env: Some("MINE".into()),
            ..Profile::default()
        };
        assert!(find(&env, "default", &profile).is_err());
        assert!(!keyring_enabled(&Env::from_pairs([("MOAT_KEYRING", "OFF")])));
        assert!(keyring_enabled(&Env::default()));
        assert!(key_file(&env, "../x").is_err());
        assert!(key_file(&env, "work").unwrap().ends_with("moat/keys/work"));
    }

    #[test]
    fn key_command_first_line() {
        let profile = Profile {
            key_command: Some("printf 'sk-cmd\\nignored\\n'".into()),
            ..Profile::default()
        };
        let env = Env::from_pairs([("HOME", "/nonexistent-home")]);
        let (key, source) = find(&env, "default", &profile).unwrap();
        assert_eq!(key.unwrap().expose(), "sk-cmd");
        assert!(matches!(source, KeySource::Command(_)));
        let failing = Profile {
            key_command: Some("exit 3".into()),
            ..Profile::default()
        };
        assert!(find(&env, "default", &failing).is_err());
    }
}

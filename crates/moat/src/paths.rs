//! Where moat keeps things: the XDG config and state directories, read from an environment snapshot so
//! tests (and `--private`) can reason about every path moat might touch.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;

use crate::Error;

/// A snapshot of the environment variables moat reads, taken once at start.
///
/// Passing this around instead of calling `std::env::var` everywhere keeps the decisions that depend
/// on the environment (paths, key sources, proxies) pure and testable with a map.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, OsString>,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
                .collect(),
        }
    }

    /// An environment holding only these variables (for tests).
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.to_owned(), OsString::from(v)))
                .collect(),
        }
    }

    /// The variable as UTF-8 text; unset, empty and non-UTF-8 values all read as absent, because an
    /// empty `HTTPS_PROXY=` or `MOAT_API_KEY=` means "not set" to every tool people combine moat with.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .and_then(|v| v.to_str())
            .filter(|v| !v.is_empty())
    }

    fn path(&self, name: &str) -> Option<PathBuf> {
        // The XDG spec says relative paths are invalid and must be ignored.
        self.get(name).map(PathBuf::from).filter(|p| p.is_absolute())
    }

    /// `$XDG_CONFIG_HOME/moat`, else `~/.config/moat`.
    pub fn config_dir(&self) -> Result<PathBuf, Error> {
        self.xdg("XDG_CONFIG_HOME", ".config")
    }

    /// `$XDG_STATE_HOME/moat`, else `~/.local/state/moat`.
    pub fn state_dir(&self) -> Result<PathBuf, Error> {
        self.xdg("XDG_STATE_HOME", ".local/state")
    }

    /// The config file: `$MOAT_CONFIG`, else `config.toml` in the config directory.
    pub fn config_file(&self) -> Result<PathBuf, Error> {
        match self.get("MOAT_CONFIG") {
            Some(path) => Ok(PathBuf::from(path)),
            None => Ok(self.config_dir()?.join("config.toml")),
        }
    }

    fn xdg(&self, var: &str, fallback: &str) -> Result<PathBuf, Error> {
        if let Some(base) = self.path(var) {
            return Ok(base.join("moat"));
        }
        match self.path("HOME") {
            Some(home) => Ok(home.join(fallback).join("moat")),
            None => Err(Error::usage(format!(
                "neither {var} nor HOME is set to an absolute path; moat cannot find its files"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xdg_wins_over_home_and_relative_is_ignored() {
        let env = Env::from_pairs([
            ("HOME", "/h"),
            ("XDG_CONFIG_HOME", "/c"),
            ("XDG_STATE_HOME", "rel"),
        ]);
        assert_eq!(env.config_dir().unwrap(), PathBuf::from("/c/moat"));
        assert_eq!(env.state_dir().unwrap(), PathBuf::from("/h/.local/state/moat"));
        assert_eq!(env.config_file().unwrap(), PathBuf::from("/c/moat/config.toml"));
        let env = Env::from_pairs([("HOME", "/h"), ("MOAT_CONFIG", "/etc/m.toml")]);
        assert_eq!(env.config_file().unwrap(), PathBuf::from("/etc/m.toml"));
        assert_eq!(env.config_dir().unwrap(), PathBuf::from("/h/.config/moat"));
    }

    #[test]
    fn empty_is_unset() {
        let env = Env::from_pairs([("MOAT_API_KEY", "")]);
        assert_eq!(env.get("MOAT_API_KEY"), None);
        assert!(env.config_dir().is_err());
    }
}

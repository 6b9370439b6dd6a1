//! The config file (`$XDG_CONFIG_HOME/moat/config.toml`) with named profiles, and the endpoint a
//! profile plus the command line resolve to.
//!
//! ```toml
//! default_profile = "work"
//!
//! [profiles.default]                  # used when no profile is named
//! model = "anthropic/claude-sonnet-4"
//! sort = "price"                      # OpenRouter provider sort
//!
//! [profiles.work]
//! base_url = "https://moatd.example.com/api/v1"
//! model = "fast"
//! system = "Answer briefly."
//! key_command = "pass show moatd"     # or key_env = "WORK_KEY", or `moat login --profile work`
//! ca_file = "/etc/ssl/work-ca.pem"
//!
//! [profiles.local]
//! base_url = "http://127.0.0.1:11434/v1"
//! model = "llama3.2"
//! ```

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::cli::Common;
use crate::paths::Env;
use crate::Error;

/// OpenRouter's API, the endpoint when neither the command line nor the profile names one.
pub const OPENROUTER_BASE: &str = "https://openrouter.ai/api/v1";
/// OpenRouter's router model, the default only when talking to OpenRouter itself.
pub const OPENROUTER_DEFAULT_MODEL: &str = "openrouter/auto";

/// The whole file. Unknown keys are errors, so a typo never silently changes where a prompt goes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub default_profile: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, Profile>,
}

/// One named way of reaching a model.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub base_url: Option<String>,
    pub model: Option<String>,
    /// Default system prompt; `-s` replaces it.
    pub system: Option<String>,
    /// OpenRouter provider sort (`price`, `throughput`, `latency`); `-p` replaces it.
    pub sort: Option<String>,
    /// OpenRouter provider order; `--provider` replaces it.
    #[serde(default)]
    pub providers: Vec<String>,
    /// Read the key from this environment variable instead of MOAT_API_KEY / OPENROUTER_API_KEY.
    pub key_env: Option<String>,
    /// Run this (with `sh -c`) and use its first output line as the key, e.g. `pass show openrouter`.
    pub key_command: Option<String>,
    /// Extra trust anchors (PEM) for this endpoint, as `--cacert`.
    pub ca_file: Option<PathBuf>,
    /// Allow `http://` to a host that is not loopback: the key and prompts would travel in clear.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// Members merged into every request body, for server-specific parameters moat has no flag for.
    #[serde(default)]
    pub extra_body: Map<String, Value>,
}

impl ConfigFile {
    /// Parses the file's text; `origin` names it in error messages.
    pub fn parse(text: &str, origin: &str) -> Result<ConfigFile, Error> {
        toml::from_str(text).map_err(|e| Error::usage(format!("{origin}: {}", e.message())))
    }

    /// Reads the config file; a missing file is an empty config.
    pub fn load(env: &Env) -> Result<ConfigFile, Error> {
        let path = env.config_file()?;
        match std::fs::read_to_string(&path) {
            Ok(text) => ConfigFile::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ConfigFile::default()),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// The profile to use: the one asked for, else the file's `default_profile`, else `default`.
    /// Naming a profile that does not exist is an error; the implicit `default` may be absent.
    pub fn select(&self, requested: Option<&str>) -> Result<(String, Profile), Error> {
        let (name, explicit) = match (requested, &self.default_profile) {
            (Some(name), _) => (name.to_owned(), true),
            (None, Some(name)) => (name.clone(), true),
            (None, None) => ("default".to_owned(), false),
        };
        match self.profiles.get(&name) {
            Some(profile) => Ok((name, profile.clone())),
            None if !explicit => Ok((name, Profile::default())),
            None => Err(Error::usage(format!(
                "no profile named '{name}' in the config file"
            ))),
        }
    }
}

/// Where requests go, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Without a trailing slash; paths like `/chat/completions` are appended.
    pub base_url: String,
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// PEM files whose certificates are trusted in addition to the system's.
    pub cacert: Vec<PathBuf>,
}

impl Endpoint {
    /// The command line's `--base-url` over the profile's, over OpenRouter's.
    pub fn resolve(profile: &Profile, common: &Common) -> Result<Endpoint, Error> {
        let raw = common
            .base_url
            .as_deref()
            .or(profile.base_url.as_deref())
            .unwrap_or(OPENROUTER_BASE);
        let url = parse_base_url(raw)?;
        if !url.https && !is_loopback(&url.host) && !profile.allow_plaintext {
            return Err(Error::usage(format!(
                "refusing plain http:// to {}: the key and prompts would cross the network unencrypted \
                 (use https://, or set allow_plaintext = true in the profile)",
                url.host
            )));
        }
        let mut cacert = common.cacert.clone();
        cacert.extend(profile.ca_file.clone());
        Ok(Endpoint {
            base_url: raw.trim_end_matches('/').to_owned(),
            https: url.https,
            host: url.host,
            port: url.port,
            cacert,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Whether this is OpenRouter itself, where `openrouter/auto` is a sensible default model.
    pub fn is_openrouter(&self) -> bool {
        self.host == "openrouter.ai"
    }
}

/// The parts of a base URL moat needs.
#[derive(Debug, Clone, PartialEq)]
struct BaseUrl {
    https: bool,
    host: String,
    port: u16,
}

fn parse_base_url(raw: &str) -> Result<BaseUrl, Error> {
    let bad = |why: &str| Error::usage(format!("base URL '{raw}' {why}"));
    let (https, rest) = if let Some(rest) = raw.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = raw.strip_prefix("http://") {
        (false, rest)
    } else {
        return Err(bad("must start with https:// or http://"));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(bad(
            "must not carry credentials; use `moat login` or a key variable",
        ));
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(|| bad("has an unclosed '['"))?;
        (host, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| bad("has an invalid port"))?,
        None if https => 443,
        None => 80,
    };
    Ok(BaseUrl {
        https,
        host: host.to_ascii_lowercase(),
        port,
    })
}

/// `localhost`, `127.0.0.0/8` and `::1`: traffic that never leaves the machine.
pub fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn common(base: Option<&str>) -> Common {
        Common {
            base_url: base.map(str::to_owned),
            ..Common::default()
        }
    }

    #[test]
    fn parses_profiles_and_refuses_unknown_keys() {
        let file = ConfigFile::parse(
            "default_profile = \"w\"\n[profiles.w]\nmodel = \"m\"\nproviders = [\"a\"]\n\
             extra_body = { top_k = 3, emulate = { chunks = 2 } }\n",
            "t",
        )
        .unwrap();
        let (name, p) = file.select(None).unwrap();
        assert_eq!((name.as_str(), p.model.as_deref()), ("w", Some("m")));
        assert_eq!(p.extra_body["emulate"]["chunks"], 2);
        assert!(file.select(Some("nope")).is_err());
        let err = ConfigFile::parse("[profiles.x]\nmodle = 1\n", "t").unwrap_err();
        assert!(err.to_string().contains("modle"), "{err}");
        let (name, p) = ConfigFile::default().select(None).unwrap();
        assert_eq!(name, "default");
        assert!(p.model.is_none());
    }

    #[test]
    fn endpoint_precedence_and_plaintext_rule() {
        let profile = Profile {
            base_url: Some("https://moatd.example/api/v1/".into()),
            ..Profile::default()
        };
        let e = Endpoint::resolve(&profile, &common(None)).unwrap();
        assert_eq!(e.base_url, "https://moatd.example/api/v1");
        assert_eq!((e.host.as_str(), e.port, e.https), ("moatd.example", 443, true));
        assert_eq!(e.url("/models"), "https://moatd.example/api/v1/models");
        let e = Endpoint::resolve(&Profile::default(), &common(None)).unwrap();
        assert!(e.is_openrouter());
        let e = Endpoint::resolve(&profile, &common(Some("http://127.0.0.1:11434/v1"))).unwrap();
        assert_eq!((e.port, e.https), (11434, false));
        assert!(Endpoint::resolve(&profile, &common(Some("http://10.0.0.5/v1"))).is_err());
        let open = Profile {
            allow_plaintext: true,
            ..Profile::default()
        };
        assert!(Endpoint::resolve(&open, &common(Some("http://10.0.0.5/v1"))).is_ok());
    }

    #[test]
    fn base_url_shapes() {
        let v6 = parse_base_url("https://[::1]:8443/v1").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8443));
        assert!(is_loopback(&v6.host));
        for bad in [
            "ftp://x",
            "https://",
            "https://u:p@host/v1",
            "https://h:99999",
            "https://[::1",
        ] {
            assert!(parse_base_url(bad).is_err(), "{bad}");
        }
        assert!(is_loopback("localhost") && is_loopback("127.8.0.1") && !is_loopback("10.0.0.1"));
    }
}

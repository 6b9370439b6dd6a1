//! Which proxy, if any, a request to a host goes through: `HTTPS_PROXY` (or `HTTP_PROXY` for
//! `http://`), then `ALL_PROXY`, unless `NO_PROXY` names the host. Pure over an [`Env`].
//!
//! Like curl, loopback is not exempt by itself: `NO_PROXY=localhost,127.0.0.1` says so explicitly.

use crate::paths::Env;

/// The proxy chosen for one endpoint, and the variable it came from (for `moat doctor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyChoice {
    /// With a scheme: `http://`, `https://`, `socks4://`, `socks4a://` or `socks5://`.
    pub url: String,
    pub var: &'static str,
}

/// The proxy for a request to `host` over https (or plain http), if any.
pub fn choose(env: &Env, https: bool, host: &str) -> Option<ProxyChoice> {
    let vars: [&'static str; 4] = match https {
        true => ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
        false => ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
    };
    let (var, value) = vars.iter().find_map(|v| env.get(v).map(|value| (*v, value)))?;
    let no_proxy = env.get("NO_PROXY").or_else(|| env.get("no_proxy")).unwrap_or("");
    if bypasses(no_proxy, host) {
        return None;
    }
    let url = match value.contains("://") {
        true => value.to_owned(),
        false => format!("http://{value}"),
    };
    Some(ProxyChoice { url, var })
}

/// Whether a `NO_PROXY` list names `host`: `*`, an exact name or address, or a domain suffix
/// (`example.com`, `.example.com` and `*.example.com` all cover `api.example.com`). Ports in
/// entries are ignored, as most tools do.
pub fn bypasses(list: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    list.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.to_ascii_lowercase();
            let entry = strip_port(&entry);
            let domain = entry.trim_start_matches("*.").trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
}

fn strip_port(entry: &str) -> &str {
    if let Some(v6) = entry.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    match entry.rsplit_once(':') {
        // More than one colon is a bare IPv6 address, not host:port.
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => entry,
    }
}

/// Every proxy variable that is set, as `NAME=value` lines with credentials hidden.
pub fn describe(env: &Env) -> Vec<String> {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ]
    .iter()
    .filter_map(|v| env.get(v).map(|value| format!("{v}={}", hide_credentials(value))))
    .collect()
}

/// `http://user:secret@proxy:3128` → `http://user:***@proxy:3128`.
pub fn hide_credentials(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    let prefix = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{prefix}{user}:***@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_by_scheme() {
        let env = Env::from_pairs([("HTTPS_PROXY", "proxy:3128"), ("ALL_PROXY", "socks5://s:1080")]);
        assert_eq!(
            choose(&env, true, "openrouter.ai"),
            Some(ProxyChoice {
                url: "http://proxy:3128".into(),
                var: "HTTPS_PROXY"
            })
        );
        assert_eq!(choose(&env, false, "h").unwrap().var, "ALL_PROXY");
        assert_eq!(choose(&Env::default(), true, "h"), None);
        let lower = Env::from_pairs([("https_proxy", "http://p:1")]);
        assert_eq!(choose(&lower, true, "h").unwrap().var, "https_proxy");
    }

    #[test]
    fn no_proxy_rules() {
        let env = Env::from_pairs([
            ("HTTPS_PROXY", "http://p:1"),
            ("NO_PROXY", "localhost, .corp.example"),
        ]);
        assert_eq!(choose(&env, true, "localhost"), None);
        assert_eq!(choose(&env, true, "api.corp.example"), None);
        assert!(
            choose(&env, true, "127.0.0.1").is_some(),
            "loopback is not exempt by itself"
        );
        assert!(bypasses("*", "anything"));
        assert!(bypasses("example.com:443", "api.example.com"));
        assert!(bypasses("*.example.com", "example.com"));
        assert!(!bypasses("example.com", "badexample.com"));
        assert!(bypasses("::1", "[::1]"));
        assert!(bypasses("[::1]:8080", "::1"));
        assert!(bypasses("127.0.0.1", "127.0.0.1"));
    }

    #[test]
    fn describing_hides_passwords() {
        let env = Env::from_pairs([("HTTPS_PROXY", "http://u:pw@p:1"), ("NO_PROXY", "x")]);
        assert_eq!(describe(&env), ["HTTPS_PROXY=http://u:***@p:1", "NO_PROXY=x"]);
        assert_eq!(hide_credentials("p:1"), "p:1");
    }
}

use std::collections::HashMap;

use super::*;

fn resolve_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::resolve(FileConfig::from_toml(text, "t")?, &|k| map.get(k).cloned())
}

const CONTRACT: &str = r#"
listen = "127.0.0.1:7400"
[server]
api_keys = ["${MOAT_KEY}"]
max_body_bytes = 8388608
[[providers]]
name = "local"
kind = "openai"
base_url = "http://127.0.0.1:8080/v1"
api_key = "${SOME_ENV}"
local = true
[[providers]]
name = "openrouter"
kind = "openrouter"
[[models]]
name = "fast"
route = ["local/tiny", "openrouter/openai/gpt-4o-mini"]
"#;

#[test]
fn the_documented_contract_parses() {
    let c = resolve_with(CONTRACT, &[("MOAT_KEY", "k1"), ("SOME_ENV", "sk-local")]).unwrap();
    assert_eq!(c.listen.to_string(), "127.0.0.1:7400");
    assert_eq!(c.server.api_keys, ["k1"]);
    assert_eq!(c.server.max_body_bytes, 8 << 20);
    assert_eq!(c.providers[0].upstream.api_key.as_deref(), Some("sk-local"));
    assert!(c.providers[0].local && c.providers[0].upstream.no_proxy);
    assert_eq!(c.providers[1].upstream.base_url, "https://openrouter.ai/api/v1");
    assert_eq!(c.catalog.resolve("fast").unwrap().len(), 2);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn unset_environment_variables_are_errors_naming_the_field() {
    let err = resolve_with(CONTRACT, &[("SOME_ENV", "x")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("server.api_keys[0]") && err.contains("MOAT_KEY"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_rejected() {
    let err = resolve_with("[server]\napi_key = [\"x\"]\n", &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `api_key`"), "{err}");
    let err = resolve_with(
        "[[providers]]\nname=\"a\"\nkind=\"openai\"\nbase_url=\"http://127.0.0.1:1\"\nbase=1\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown field `base`"), "{err}");
}

#[test]
fn unsupported_kinds_are_named() {
    let err = resolve_with(
        "[[providers]]\nname=\"a\"\nkind=\"grpc\"\nbase_url=\"http://127.0.0.1:1\"\n",
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("grpc") && err.contains("openai"), "{err}");
}

#[test]
fn plaintext_is_only_for_loopback_unless_allowed() {
    let remote = "[[providers]]\nname=\"a\"\nkind=\"openai\"\nbase_url=\"http://10.0.0.5:8000/v1\"\n";
    let err = resolve_with(remote, &[]).unwrap_err();
    assert!(matches!(err, ConfigError::Plaintext { .. }), "{err}");
    let allowed = format!("{remote}allow_plaintext = true\n");
    let c = resolve_with(&allowed, &[]).unwrap();
    assert!(c.warnings.iter().any(|w| w.contains("plain http://")));
    for host in ["localhost", "127.0.0.2", "[::1]"] {
        let ok = format!("[[providers]]\nname=\"a\"\nkind=\"openai\"\nbase_url=\"http://{host}:8000/v1\"\n");
        assert!(resolve_with(&ok, &[]).is_ok(), "{host}");
    }
}

#[test]
fn credentials_in_urls_are_refused_without_echoing_them() {
    let text =
        "[[providers]]\nname=\"a\"\nkind=\"openai\"\nbase_url=\"https://user:sekrit@example.com/v1\"\n";
    let err = resolve_with(text, &[]).unwrap_err().to_string();
    assert!(!err.contains("sekrit"), "{err}");
}

#[test]
fn open_gateway_beyond_loopback_needs_consent() {
    let err = resolve_with("listen = \"0.0.0.0:7400\"\n", &[]).unwrap_err();
    assert!(matches!(err, ConfigError::OpenNonLoopback(_)));
    let c = resolve_with(
        "listen = \"0.0.0.0:7400\"\n[server]\ninsecure_open = true\nplaintext = true\n",
        &[],
    )
    .unwrap();
    assert!(c.warnings.iter().any(|w| w.starts_with("INSECURE")));
    let keyed = "listen = \"0.0.0.0:7400\"\n[server]\napi_keys=[\"k\"]\n";
    assert!(
        matches!(
            resolve_with(keyed, &[]).unwrap_err(),
            ConfigError::PlaintextListen(_)
        ),
        "TLS required beyond loopback"
    );
    let c = resolve_with(&format!("{keyed}plaintext = true\n"), &[]).unwrap();
    assert!(c.warnings.iter().any(|w| w.starts_with("plain HTTP")));
    let half = "[server]\ntls_cert_file = \"/x.pem\"\n";
    assert!(matches!(
        resolve_with(half, &[]).unwrap_err(),
        ConfigError::Tls(_)
    ));
    let missing = "[server]\ntls_cert_file = \"/nonexistent/c.pem\"\ntls_key_file = \"/nonexistent/k.pem\"\n";
    assert!(resolve_with(missing, &[])
        .unwrap_err()
        .to_string()
        .contains("/nonexistent/c.pem"));
}

#[test]
fn bad_values_are_explained() {
    assert!(matches!(
        resolve_with("listen = \"nowhere\"\n", &[]).unwrap_err(),
        ConfigError::BadListen(_)
    ));
    assert!(matches!(
        resolve_with("[server]\napi_keys=[\"\"]\n", &[]).unwrap_err(),
        ConfigError::EmptyKey(0)
    ));
    assert!(matches!(
        resolve_with("[server]\nmax_body_bytes=0\n", &[]).unwrap_err(),
        ConfigError::Zero { .. }
    ));
    let bad_name = "[[providers]]\nname=\"Has Space\"\nkind=\"openai\"\nbase_url=\"http://127.0.0.1:1\"\n";
    assert!(matches!(
        resolve_with(bad_name, &[]).unwrap_err(),
        ConfigError::BadProviderName { .. }
    ));
    let no_url = "[[providers]]\nname=\"a\"\nkind=\"openai\"\n";
    assert!(matches!(
        resolve_with(no_url, &[]).unwrap_err(),
        ConfigError::MissingBaseUrl { .. }
    ));
    let bad_route = "[[models]]\nname=\"x\"\nroute=[\"nope/m\"]\n";
    assert!(resolve_with(bad_route, &[])
        .unwrap_err()
        .to_string()
        .contains("nope/m"));
}

#[test]
fn expansion_handles_several_references_and_reports_unterminated_ones() {
    let env = |k: &str| {
        (k == "A")
            .then(|| "1".to_string())
            .or_else(|| (k == "B").then(|| "2".to_string()))
    };
    assert_eq!(expand("x${A}y${B}z", "f", &env).unwrap(), "x1y2z");
    assert_eq!(expand("plain", "f", &env).unwrap(), "plain");
    assert!(matches!(
        expand("${A", "f", &env).unwrap_err(),
        ConfigError::BadReference { .. }
    ));
}

#[test]
fn explain_mentions_every_provider_and_alias_but_no_key() {
    let c = resolve_with(
        CONTRACT,
        &[("MOAT_KEY", "client-secret"), ("SOME_ENV", "provider-secret")],
    )
    .unwrap();
    let text = crate::config::explain(&c);
    assert!(
        text.contains("local: kind=openai") && text.contains("openrouter: kind=openrouter"),
        "{text}"
    );
    assert!(
        text.contains("fast -> local/tiny, then openrouter/openai/gpt-4o-mini"),
        "{text}"
    );
    assert!(
        !text.contains("client-secret") && !text.contains("provider-secret"),
        "{text}"
    );
}

#[test]
fn privacy_rules_are_checked_at_load() {
    let bad = "[[privacy.rules]]\nid = \"x\"\nregex = \"(\"\naction = \"block\"\n";
    assert!(resolve_with(bad, &[]).unwrap_err().to_string().contains("x"));
    let empty = "[[privacy.rules]]\nid = \"y\"\naction = \"block\"\n";
    assert!(resolve_with(empty, &[])
        .unwrap_err()
        .to_string()
        .contains("needs a regex or terms"));
    let unknown = "[privacy.detectors]\nnope = \"block\"\n";
    assert!(resolve_with(unknown, &[])
        .unwrap_err()
        .to_string()
        .contains("unknown detector `nope`"));
    let dc = "[privacy]\ndata_collection = \"maybe\"\n";
    assert!(resolve_with(dc, &[]).is_err());
    assert!(resolve_with(
        "[privacy]\nsecrets = \"block\"\n[privacy.detectors]\nemail = \"redact\"\n",
        &[]
    )
    .is_ok());
}

#[test]
fn responses_state_cors_and_native_flags_are_validated() {
    let c = resolve_with(CONTRACT, &[("MOAT_KEY", "k1"), ("SOME_ENV", "x")]).unwrap();
    assert_eq!(c.responses.ttl, Duration::from_secs(30 * 24 * 3600));
    assert_eq!(c.responses.max_conversation_bytes, 8 << 20);
    assert!(c.server.cors_origins.is_empty());
    assert!(!c.providers[0].responses_native);
    let text = "[server]\ncors_origins = [\"https://App.example.com/\", \"*\"]\n[responses]\nttl_secs = 60\n[[providers]]\nname = \"oa\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\nresponses = \"native\"\n";
    let c = resolve_with(text, &[]).unwrap();
    assert_eq!(c.server.cors_origins, ["https://app.example.com", "*"]);
    assert_eq!(c.responses.ttl, Duration::from_secs(60));
    assert!(c.providers[0].responses_native);
    for (bad, word) in [
        ("[responses]\nttl_secs = 0\n", "responses.ttl_secs"),
        ("[responses]\nmax_conversation_bytes = 0\n", "max_conversation_bytes"),
        ("[server]\ncors_origins = [\"https://a.example/path\"]\n", "cors_origins"),
        ("[[providers]]\nname = \"a\"\nkind = \"anthropic\"\nresponses = \"native\"\n", "native"),
        ("[[providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1\"\nresponses = \"yes\"\n", "bridge"),
    ] {
        let err = resolve_with(bad, &[]).unwrap_err().to_string();
        assert!(err.contains(word), "{bad}: {err}");
    }
}

//! Route policies, per-target limits and the clouds' options: validated at load, explained by
//! `check-config` without a secret.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use crate::config::file::FileConfig;
use crate::config::{Config, ConfigError};

fn resolve_with(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::resolve(FileConfig::from_toml(text, "t")?, &|k| map.get(k).cloned())
}

fn err(text: &str, vars: &[(&str, &str)]) -> String {
    resolve_with(text, vars).unwrap_err().to_string()
}

const CLOUDS: &str = r#"
[[providers]]
name = "az"
kind = "azure"
base_url = "https://res.openai.azure.com"
api_key = "${AZ_KEY}"
rpm = { "gpt-4o" = 60, "*" = 600 }
tpm = { "gpt-4o" = 90000 }
context_window = { "gpt-4o" = 128000 }
[[providers]]
name = "az-entra"
kind = "azure"
base_url = "https://res2.openai.azure.com"
api_version = "2025-01-01-preview"
entra = { tenant_id = "t", client_id = "c", client_secret = "${ENTRA_SECRET}" }
[[providers]]
name = "aws"
kind = "bedrock"
region = "eu-west-1"
[[providers]]
name = "g"
kind = "gemini"
api_key = "${GEMINI_KEY}"
[[models]]
name = "fast"
route = ["az/gpt-4o", "aws/anthropic.claude-3-haiku-20240307-v1:0", "g/gemini-2.0-flash"]
strategy = "weighted"
weights = [3, 1, 0]
[[models]]
name = "cheap"
route = ["g/gemini-2.0-flash", "az/gpt-4o-mini"]
strategy = "cost"
content_policy_fallback = true
"#;

const SECRETS: [(&str, &str); 5] = [
    ("AZ_KEY", "az-secret-key"),
    ("ENTRA_SECRET", "entra-secret-value"),
    ("GEMINI_KEY", "gemini-secret-key"),
    ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
    ("AWS_SECRET_ACCESS_KEY", "aws-secret-value"),
];

#[test]
fn check_config_explains_strategies_and_credential_sources_without_secrets() {
    let c = resolve_with(CLOUDS, &SECRETS).unwrap();
    assert_eq!(
        c.providers[2].upstream.base_url,
        "https://bedrock-runtime.eu-west-1.amazonaws.com"
    );
    let text = crate::config::explain(&c);
    for want in [
        "az: kind=azure",
        "credential: api_key, sent as the api-key header",
        "credential: Entra ID client credentials from config (tenant t, client c, a client secret), tokens from https://login.microsoftonline.com",
        "credential: AWS keys from the environment (AWS_ACCESS_KEY_ID AKIDEXAMPLE); SigV4 for `bedrock` in eu-west-1",
        "credential: api_key, sent as the x-goog-api-key header",
        "`gpt-4o` capped at 60 requests/min and 90000 tokens/min",
        "every other model together capped at 600 requests/min",
        "`gpt-4o` context window 128000 tokens",
        "strategy weighted: draws the first target at random in proportion to `weights` (weights 3:1:0)",
        "strategy cost: sends to the cheapest target",
        "and content-policy refusals",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    for (_, secret) in SECRETS.iter().filter(|(k, _)| *k != "AWS_ACCESS_KEY_ID") {
        assert!(!text.contains(secret), "{secret} printed:\n{text}");
    }
}

#[test]
fn route_policy_mistakes_are_one_clear_line() {
    let base = "[[providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n[[models]]\nname = \"m\"\nroute = [\"a/x\", \"a/y\"]\n";
    assert!(err(&format!("{base}strategy = \"round_robin\"\n"), &[]).contains("least_busy"));
    assert!(err(&format!("{base}strategy = \"weighted\"\n"), &[]).contains("needs `weights`"));
    assert!(
        err(&format!("{base}strategy = \"weighted\"\nweights = [1]\n"), &[])
            .contains("1 weights for 2 route entries")
    );
    assert!(err(&format!("{base}strategy = \"weighted\"\nweights = [0, 0]\n"), &[]).contains("at least one"));
    assert!(err(&format!("{base}weights = [1, 2]\n"), &[]).contains("weighted"));
    assert!(resolve_with(&format!("{base}strategy = \"latency\"\n"), &[]).is_ok());
}

#[test]
fn cloud_option_mistakes_are_one_clear_line() {
    let p = |kind: &str, extra: &str| {
        format!("[[providers]]\nname = \"p\"\nkind = \"{kind}\"\nbase_url = \"https://h.example\"\n{extra}")
    };
    assert!(err(&p("openai", "api_version = \"x\"\n"), &[])
        .contains("`api_version` does not apply to kind = \"openai\""));
    assert!(err(
        &p(
            "gemini",
            "api_key = \"k\"\nentra = { tenant_id = \"t\", client_id = \"c\", client_secret = \"s\" }\n"
        ),
        &[]
    )
    .contains("`entra` does not apply"));
    let no_cred = err(&p("azure", ""), &[]);
    assert!(
        no_cred.contains("no credential") && no_cred.contains("AZURE_TENANT_ID"),
        "{no_cred}"
    );
    assert!(err(&p("azure", "entra = { tenant_id = \"t\", client_id = \"c\", client_secret = \"s\", client_secret_file = \"/f\" }\n"), &[]).contains("exactly one"));
    assert!(err(&p("gemini", ""), &[]).contains("GOOGLE_APPLICATION_CREDENTIALS"));
    let bedrock = "[[providers]]\nname = \"b\"\nkind = \"bedrock\"\n";
    assert!(err(bedrock, &[]).contains("base_url"), "no region, no base_url");
    assert!(err(&format!("{bedrock}region = \"us-east-1\"\n"), &[]).contains("no AWS credentials"));
    assert!(err(&p("openai", "rpm = { \"m\" = 0 }\n"), &[]).contains("rpm"));
    // A Bedrock API key needs no AWS keys; Azure picks Entra ID up from the environment.
    assert!(resolve_with(
        &format!("{bedrock}region = \"us-east-1\"\napi_key = \"k\"\n"),
        &[]
    )
    .is_ok());
    let env = [
        ("AZURE_TENANT_ID", "t"),
        ("AZURE_CLIENT_ID", "c"),
        ("AZURE_CLIENT_SECRET", "s3"),
    ];
    let c = resolve_with(&p("azure", ""), &env).unwrap();
    assert!(
        c.providers[0].credential.contains("environment"),
        "{}",
        c.providers[0].credential
    );
}

//! Privacy routing through the real request path: planted secrets never reach a cloud upstream,
//! redaction is restored in whole and streamed answers, blocks name the rule and never the text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

async fn emulator() -> Emulator {
    Emulator::start(EmulatorOptions::default()).await.unwrap()
}

fn chat(model: &str, content: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": content}]})
}

/// Everything the emulator received, as one string.
fn received(emu: &Emulator) -> String {
    emu.requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

/// Realistic secrets of every built-in kind.
fn planted_secrets() -> Vec<(&'static str, String)> {
    vec![
        ("openai_key", "sk-proj-Xq3vT9mB2kLp8RwZ4nYc6HdJ1sFgA0eUoQiV7tK5xNbM".into()),
        ("anthropic_key", "sk-ant-api03-Rk9mQ2vX7pL4nB8wZ3cY6tH1jD5sF0gA-eUoQiV7tK5xNbMaBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789abcdefAA".into()),
        ("openrouter_key", "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".into()),
        ("aws_access_key_id", "AKIAZ7QW3RT5YU6IJ2PL".into()),
        ("github_token", "ghp_R8mK2vQ9xL4pN7bW3cZ6tY1hJ5sD0fGaE2uO".into()),
        ("slack_token", "xoxb-2048137495-8471920365-Qw3Er5Ty7Ui9Op1As3Df5Gh".into()),
        ("google_api_key", "AIzaSyD4f9Q2x7Lm3Nv8Bp1Kc6Wz0Rt5Yh2Ju9E".into()),
        ("stripe_key", "sk_live_51Hx9QmK2vL8pN4bW7cZ3tY6hJ1sD0fGaE5uO9iRkT".into()),
        ("jwt", "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c".into()),
        ("private_key", "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi7bQ1f+v5Tw2Y8Kc4xYt0pLmNe\nq3H9kJ7sW2rV5uX8yZ1aB4cD6eF0gH3iJ5kL7mN9oP1qR3sT5uV7wX9yZ0aB2cD4\n-----END RSA PRIVATE KEY-----".into()),
        ("password_assignment", "DB_PASSWORD=Vq8#mZ2!pL9xK4$wR7tY".into()),
    ]
}

#[tokio::test]
async fn planted_secrets_never_reach_a_cloud_upstream() {
    let cloud = emulator().await;
    let local = emulator().await;
    let toml = format!(
        "{}{}local = true\n[[models]]\nname = \"smart\"\nroute = [\"cloud/tiny\", \"home/tiny\"]\n",
        provider("cloud", &cloud.base_url()),
        provider("home", &local.base_url())
    );
    let gw = gateway(&toml).await;
    for (kind, secret) in planted_secrets() {
        let prompt =
            format!("Here is my config, please debug it:\n```\nexport SETTING={secret}\n```\nThanks!");
        let r = gw.chat(None, &chat("smart", &prompt)).await;
        assert_eq!(r.status(), 200, "{kind}");
        assert_eq!(
            r.headers()["x-moat-provider"],
            "home",
            "{kind} was kept on the local provider"
        );
        // Straight to the cloud provider: refused, naming the rule but not the secret.
        let r = gw.chat(None, &chat("cloud/tiny", &prompt)).await;
        let (status, body) = error_of(r).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (403, Some("policy_local_only")),
            "{kind}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains(kind),
            "{kind}: {body}"
        );
        assert!(
            !body.to_string().contains(&secret[..12]),
            "{kind}: the error echoes no secret"
        );
    }
    let seen = received(&cloud);
    for (kind, secret) in planted_secrets() {
        let probe: String = secret.chars().skip(8).take(16).collect();
        assert!(!seen.contains(&probe), "{kind} reached the cloud upstream");
    }
    assert!(cloud
        .requests()
        .iter()
        .all(|r| !r.path.ends_with("/chat/completions")));
    assert_eq!(local.requests().len(), planted_secrets().len());
}

#[tokio::test]
async fn redacted_values_are_restored_in_whole_answers() {
    let emu = emulator().await;
    let toml = format!(
        "[privacy]\npersonal = \"redact\"\n{}",
        provider("cloud", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let r = gw
        .chat(
            None,
            &chat(
                "cloud/tiny",
                "mail alice@northwind-mail.com and bob@fabrikam.org about \"it\"",
            ),
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "You said: mail alice@northwind-mail.com and bob@fabrikam.org about \"it\""
    );
    let seen = received(&emu);
    assert!(
        !seen.contains("alice@northwind-mail.com") && !seen.contains("bob@fabrikam.org"),
        "{seen}"
    );
    assert!(seen.contains("[EMAIL_1]") && seen.contains("[EMAIL_2]"), "{seen}");
}

#[tokio::test]
async fn a_redacted_request_is_written_anew_never_from_the_clients_bytes() {
    let emu = emulator().await;
    let toml = format!(
        "[privacy]\npersonal = \"redact\"\n{}",
        provider("cloud", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let r = client()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"model": "cloud/tiny", "x_probe": {{"keep" : [1.50]}}, "x_pad": "{}",
            "messages": [{{"role": "user", "content": "mail alice@northwind-mail.com"}}]}}"#,
            // Long enough to be edited in place, were it not redacted.
            "p".repeat(moat_upstream::adapter::EDIT_FROM_BYTES)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = received(&emu);
    assert!(!seen.contains("alice@northwind-mail.com"), "{seen}");
    // The redacted copy is encoded: its members as serde_json writes them, not as the client did.
    assert!(seen.contains(r#""x_probe":{"keep":[1.5]}"#), "{seen}");
}

#[tokio::test]
async fn redacted_values_are_restored_in_streams_even_when_split() {
    let emu = emulator().await;
    let toml = format!(
        "[privacy]\npersonal = \"redact\"\n{}",
        provider("cloud", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    for chunks in [3, 11, 17, 40] {
        let mut req = chat("cloud/tiny", "write to carol@contoso-mail.net now");
        req["stream"] = json!(true);
        req["emulate"] = json!({"chunks": chunks});
        let text = gw.chat(None, &req).await.text().await.unwrap();
        let got = streamed_text(&text);
        assert!(
            got.contains("carol@contoso-mail.net") && !got.contains("[EMAIL"),
            "chunks={chunks}: {got}"
        );
        assert_eq!(data_events(&text).last().unwrap(), "[DONE]");
    }
    assert!(!received(&emu).contains("carol@contoso-mail.net"));
}

#[tokio::test]
async fn block_rules_name_the_rule_never_the_text() {
    let emu = emulator().await;
    let toml = format!(
        "[[privacy.rules]]\nid = \"codenames\"\nterms = [\"Nightjar\", \"Bluebird\"]\naction = \"block\"\n[[privacy.rules]]\nid = \"tickets\"\nregex = \"ACME-[0-9]{{6}}\"\naction = \"redact\"\n{}",
        provider("cloud", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let r = gw
        .chat(None, &chat("cloud/tiny", "status of project nightjar?"))
        .await;
    let (status, body) = error_of(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("policy_blocked"))
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("codenames"));
    assert!(!body.to_string().to_lowercase().contains("nightjar"));
    let r = gw.chat(None, &chat("cloud/tiny", "see ACME-123456")).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "You said: see ACME-123456"
    );
    assert!(received(&emu).contains("[TICKETS_1]"));
    assert!(emu.requests().len() == 1, "the blocked request never left");
}

#[tokio::test]
async fn openrouter_requests_deny_data_collection_unless_the_client_chose() {
    let emu = emulator().await;
    let toml = format!(
        "[privacy]\nzdr = true\n[[providers]]\nname = \"or\"\nkind = \"openrouter\"\nbase_url = \"{}\"\n{}",
        emu.openrouter_base_url(),
        provider("plain", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    gw.chat(None, &chat("or/tiny", "hi")).await;
    let mut own = chat("or/tiny", "hi");
    own["provider"] = json!({"data_collection": "allow", "order": ["x"]});
    gw.chat(None, &own).await;
    gw.chat(None, &chat("plain/tiny", "hi")).await;
    let bodies: Vec<Value> = emu.requests().iter().filter_map(|r| r.json()).collect();
    assert_eq!(
        bodies[0]["provider"],
        json!({"data_collection": "deny", "zdr": true})
    );
    assert_eq!(bodies[1]["provider"]["data_collection"], "allow");
    assert_eq!(bodies[1]["provider"]["order"], json!(["x"]));
    assert!(
        bodies[2].get("provider").is_none(),
        "non-OpenRouter providers get no OpenRouter preferences"
    );
}

#[tokio::test]
async fn decisions_are_counted_in_metrics() {
    let emu = emulator().await;
    let toml = format!(
        "[privacy]\npersonal = \"redact\"\n{}",
        provider("cloud", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    gw.chat(None, &chat("cloud/tiny", "ping dave@tailspin.io")).await;
    let text = gw.metrics().await;
    assert!(
        text.lines().any(|l| l.starts_with("moat_policy_decisions_total")
            && l.contains("rule=\"email\"")
            && l.contains("action=\"redact\"")),
        "{text}"
    );
    assert!(!text.contains("dave@tailspin.io"));
}

//! Tenant isolation of caches through the real request path: the cache-partition value on every
//! forwarded request, the gateway's response cache (never across tenants), and teams' own provider
//! keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use moat_gateway::admin::{self, NewKey, NewTeam};
use moat_store::{GroupBy, SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

fn now() -> i64 {
    moat_gateway::ledger::now()
}

fn store() -> Arc<dyn Store> {
    Arc::new(SqliteStore::open_memory().unwrap())
}

fn team(store: &dyn Store, name: &str) {
    admin::create_team(
        store,
        &NewTeam {
            name: name.into(),
            ..Default::default()
        },
        now(),
    )
    .unwrap();
}

fn key(store: &dyn Store, name: &str, team: Option<&str>) -> String {
    let new = NewKey {
        name: name.into(),
        team: team.map(str::to_string),
        ..Default::default()
    };
    admin::create_key(store, &secret(), &new, now()).unwrap().key
}

fn ask(text: &str) -> Value {
    json!({"model": "emu/tiny", "messages": [{"role": "user", "content": text}]})
}

/// The body of the `n`th chat request the emulator received.
fn forwarded(emu: &Emulator, n: usize) -> Value {
    let chats: Vec<_> = emu
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/chat/completions"))
        .collect();
    chats[n].json().unwrap()
}

#[tokio::test]
async fn every_request_carries_its_tenants_partition_and_client_values_are_namespaced() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let store = store();
    team(store.as_ref(), "red");
    team(store.as_ref(), "blue");
    let red1 = key(store.as_ref(), "r1", Some("red"));
    let red2 = key(store.as_ref(), "r2", Some("red"));
    let blue = key(store.as_ref(), "b", Some("blue"));
    let solo = key(store.as_ref(), "solo", None);
    let gw = gateway_with_store(&provider("emu", &emu.base_url()), store).await;

    for k in [&red1, &red2, &blue, &solo] {
        assert_eq!(gw.chat(Some(k), &ask("hi")).await.status(), 200);
    }
    let salt = |n| forwarded(&emu, n)["cache_salt"].as_str().unwrap().to_string();
    let (r1, r2, b, s) = (salt(0), salt(1), salt(2), salt(3));
    assert_eq!(r1, r2, "one team, one partition");
    assert_ne!(r1, b, "two teams, two partitions");
    assert_ne!(r1, s, "a key without a team is its own tenant");
    assert_ne!(b, s);
    assert_eq!(r1.len(), 22);
    assert!(forwarded(&emu, 0).get("prompt_cache_key").is_none());

    // A client's own value is namespaced under its tenant, never forwarded as sent.
    let mut body = ask("hi");
    body["cache_salt"] = json!("shared-by-everyone");
    body["user"] = json!("alice");
    assert_eq!(gw.chat(Some(&red1), &body).await.status(), 200);
    assert_eq!(gw.chat(Some(&blue), &body).await.status(), 200);
    let (red, blue_sent) = (forwarded(&emu, 4), forwarded(&emu, 5));
    for v in [&red, &blue_sent] {
        let text = v.to_string();
        assert!(
            !text.contains("shared-by-everyone") && !text.contains("alice"),
            "{text}"
        );
    }
    assert_ne!(red["cache_salt"], blue_sent["cache_salt"]);
    assert_ne!(
        red["cache_salt"].as_str().unwrap(),
        r1,
        "the client's value splits its tenant's cache"
    );
    assert_ne!(red["user"], blue_sent["user"]);

    // Bad values are refused before anything is sent.
    for bad in [json!("tab\tbed"), json!(""), json!("x".repeat(257)), json!(7)] {
        let mut body = ask("hi");
        body["cache_salt"] = bad.clone();
        let (status, err) = error_of(gw.chat(Some(&red1), &body).await).await;
        assert_eq!(status, 400, "{bad}: {err}");
    }
    assert_eq!(
        emu.requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count(),
        6
    );
}

#[tokio::test]
async fn partition_fields_follow_the_provider_and_none_sends_nothing() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let toml = format!(
        "{}cache_partition = \"prompt_cache_key\"\n{}cache_partition = \"none\"\n{}cache_prompt = false\n",
        provider("pck", &emu.base_url()),
        provider("plain", &emu.base_url()),
        provider("llama", &emu.base_url()),
    );
    let gw = gateway(&toml).await;
    for model in ["pck/tiny", "plain/tiny", "llama/tiny"] {
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(gw.chat(None, &body).await.status(), 200);
    }
    let (pck, plain, llama) = (forwarded(&emu, 0), forwarded(&emu, 1), forwarded(&emu, 2));
    assert_eq!(
        pck["prompt_cache_key"].as_str().unwrap(),
        secret().cache_partition("open", None)
    );
    assert!(pck.get("cache_salt").is_none());
    for f in ["cache_salt", "prompt_cache_key", "user", "cache_prompt"] {
        assert!(plain.get(f).is_none(), "{f}: {plain}");
    }
    assert_eq!(llama["cache_prompt"], false);
    assert!(llama["cache_salt"].is_string());
}

#[tokio::test]
async fn check_config_warns_about_remote_providers_without_a_partition() {
    let toml = "[[providers]]\nname = \"cloud\"\nkind = \"openai\"\nbase_url = \"https://api.example.com/v1\"\ncache_partition = \"none\"\n\
                [[providers]]\nname = \"oai\"\nkind = \"openai\"\nbase_url = \"https://api.openai.com/v1\"\n\
                [[providers]]\nname = \"or\"\nkind = \"openrouter\"\n\
                [[providers]]\nname = \"ant\"\nkind = \"anthropic\"\n\
                [[providers]]\nname = \"home\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nlocal = true\ncache_partition = \"none\"\n";
    let config = moat_gateway::config::Config::from_toml(toml, "t").unwrap();
    let warned: Vec<_> = config
        .warnings
        .iter()
        .filter(|w| w.contains("cache_partition"))
        .collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned[0].contains("`cloud`"));
    assert!(
        warned[1].contains("`ant`"),
        "anthropic has no partition member: {warned:?}"
    );
    let text = moat_gateway::config::explain(&config);
    assert!(text.contains("cache partition: `prompt_cache_key`"), "{text}");
    assert!(text.contains("cache partition: `user`"), "{text}");
    assert!(text.contains("response cache: off"), "{text}");
    let bad = moat_gateway::config::Config::from_toml(
        "[[providers]]\nname = \"x\"\nkind = \"openrouter\"\ncache_partition = \"salt\"\n",
        "t",
    );
    assert!(bad.unwrap_err().to_string().contains("cache_partition \"salt\""));
}

const CACHED: &str = "[response_cache]\nenabled = true\nmodels = [\"emu/*\"]\n";

async fn cache_header(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("x-moat-cache")
        .map(|v| v.to_str().unwrap().to_string())
}

#[tokio::test]
async fn response_cache_serves_a_tenant_its_own_answers_only() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let store = store();
    team(store.as_ref(), "red");
    team(store.as_ref(), "blue");
    let red1 = key(store.as_ref(), "r1", Some("red"));
    let red2 = key(store.as_ref(), "r2", Some("red"));
    let blue = key(store.as_ref(), "b", Some("blue"));
    let toml = format!("{}{CACHED}", provider("emu", &emu.base_url()));
    let gw = gateway_with_store(&toml, store.clone()).await;
    let upstream_calls = || {
        emu.requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count()
    };

    let first = gw.chat(Some(&red1), &ask("the secret plan")).await;
    assert_eq!(cache_header(&first).await.as_deref(), Some("miss"));
    let first_body: Value = first.json().await.unwrap();
    assert_eq!(upstream_calls(), 1);

    // Same team (another key), same request with members reordered and "stream": false: a hit.
    let same = json!({"messages": [{"content": "the secret plan", "role": "user"}], "stream": false, "model": "emu/tiny"});
    let hit = gw.chat(Some(&red2), &same).await;
    assert_eq!(hit.status(), 200);
    assert_eq!(cache_header(&hit).await.as_deref(), Some("hit"));
    let hit_body: Value = hit.json().await.unwrap();
    assert_eq!(hit_body, first_body, "served the stored answer byte for byte");
    assert_eq!(upstream_calls(), 1);

    // Another tenant with the identical request is never served red's entry.
    let other = gw.chat(Some(&blue), &ask("the secret plan")).await;
    assert_eq!(cache_header(&other).await.as_deref(), Some("miss"));
    let other_body: Value = other.json().await.unwrap();
    assert_ne!(
        other_body["id"], first_body["id"],
        "a fresh answer from the provider"
    );
    assert_eq!(upstream_calls(), 2);
    // ...and blue's own entry now serves blue.
    let again = gw.chat(Some(&blue), &ask("the secret plan")).await;
    assert_eq!(cache_header(&again).await.as_deref(), Some("hit"));
    assert_eq!(again.json::<Value>().await.unwrap()["id"], other_body["id"]);

    // A hit is still authenticated: a bad key gets 401, not the cached answer.
    let (status, _) = error_of(gw.chat(Some("moat-not-a-key"), &ask("the secret plan")).await).await;
    assert_eq!(status, 401);

    // Hits are metered at zero cost, as `cache_hit`.
    store.flush().unwrap();
    let by_key = store.usage_report(GroupBy::Key, 0).unwrap();
    assert_eq!(by_key.iter().map(|l| l.requests).sum::<u64>(), 4);
    assert_eq!(upstream_calls(), 2);
}

#[tokio::test]
async fn no_store_streams_and_other_models_bypass_the_cache() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let toml = format!(
        "{}{}{CACHED}",
        provider("emu", &emu.base_url()),
        provider("other", &emu.base_url())
    );
    let gw = gateway(&toml).await;
    let calls = || {
        emu.requests()
            .iter()
            .filter(|r| r.path.ends_with("/chat/completions"))
            .count()
    };
    let no_store = || {
        client()
            .post(gw.url("/v1/chat/completions"))
            .header("cache-control", "no-store")
            .json(&ask("q"))
    };
    let r = no_store().send().await.unwrap();
    assert_eq!(cache_header(&r).await.as_deref(), Some("bypass"));
    let r = gw.chat(None, &ask("q")).await;
    assert_eq!(
        cache_header(&r).await.as_deref(),
        Some("miss"),
        "no-store wrote nothing"
    );
    let r = no_store().send().await.unwrap();
    assert_eq!(
        cache_header(&r).await.as_deref(),
        Some("bypass"),
        "no-store reads nothing"
    );
    let r = gw.chat(None, &ask("q")).await;
    assert_eq!(cache_header(&r).await.as_deref(), Some("hit"));
    assert_eq!(calls(), 3);

    let mut stream = ask("q");
    stream["stream"] = json!(true);
    let r = gw.chat(None, &stream).await;
    assert_eq!(cache_header(&r).await.as_deref(), Some("bypass"));
    assert_eq!(streamed_text(&r.text().await.unwrap()), "You said: q");
    assert_eq!(calls(), 4);

    let other = json!({"model": "other/tiny", "messages": [{"role": "user", "content": "q"}]});
    let r = gw.chat(None, &other).await;
    assert_eq!(cache_header(&r).await, None, "not opted in: no header");
    gw.chat(None, &other).await;
    assert_eq!(calls(), 6);
}

#[tokio::test]
async fn response_cache_is_off_by_default() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let gw = gateway(&provider("emu", &emu.base_url())).await;
    for _ in 0..2 {
        let r = gw.chat(None, &ask("q")).await;
        assert_eq!(cache_header(&r).await, None);
    }
    assert_eq!(emu.requests().len(), 2);
}

#[tokio::test]
async fn a_team_with_its_own_key_uses_it_and_others_keep_the_shared_one() {
    // The emulator accepts only the team's own key; the config's shared key is refused.
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-team-red".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let store = store();
    team(store.as_ref(), "red");
    team(store.as_ref(), "blue");
    let red = key(store.as_ref(), "r", Some("red"));
    let blue = key(store.as_ref(), "b", Some("blue"));
    let toml = format!(
        "{}api_key = \"sk-shared\"\nmax_retries = 0\n",
        provider("emu", &emu.base_url())
    );
    let gw = gateway_with_store(&toml, store.clone()).await;
    assert_eq!(
        gw.chat(Some(&red), &ask("hi")).await.status(),
        401,
        "shared key first"
    );

    // Stored while the gateway runs: picked up on the team's next request.
    admin::set_team_provider_key(store.as_ref(), &secret(), "red", "emu", "sk-team-red\n", now()).unwrap();
    assert_eq!(gw.chat(Some(&red), &ask("hi")).await.status(), 200);
    assert_eq!(gw.chat(Some(&blue), &ask("hi")).await.status(), 401);
    let sent: Vec<Vec<String>> = emu
        .requests()
        .iter()
        .map(|r| {
            r.headers
                .get_all("authorization")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect()
        })
        .collect();
    assert_eq!(
        sent[1],
        ["Bearer sk-team-red"],
        "exactly one credential, the team's"
    );
    assert_eq!(sent[2], ["Bearer sk-shared"]);

    // The sealed key is bound to its team: copied to another team's row, it does not open.
    let sealed = store.team_provider_secrets().unwrap();
    assert_eq!(sealed.len(), 1);
    assert!(!String::from_utf8_lossy(&sealed[0].ciphertext).contains("sk-team-red"));
    let label = |team: &str| {
        moat_gateway::secret::ServerSecret::from_text("moat test secret").open(
            &format!("team {team} provider emu"),
            &sealed[0].nonce,
            &sealed[0].ciphertext,
        )
    };
    assert!(label(&sealed[0].team_id).is_ok());
    assert!(label("team_other").is_err());

    // Removing it sends the team back to the shared key.
    admin::remove_team_provider_key(store.as_ref(), "red", "emu").unwrap();
    assert_eq!(gw.chat(Some(&red), &ask("hi")).await.status(), 401);
    assert!(admin::set_team_provider_key(store.as_ref(), &secret(), "nope", "emu", "k", now()).is_err());
}

#[tokio::test]
async fn team_keys_through_the_admin_api() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-own".into()),
        ..Default::default()
    })
    .await
    .unwrap();
    let store = store();
    team(store.as_ref(), "red");
    let red = key(store.as_ref(), "r", Some("red"));
    let toml = format!(
        "[server]\nadmin_keys = [\"adm\"]\n{}max_retries = 0\n",
        provider("emu", &emu.base_url())
    );
    let gw = gateway_with_store(&toml, store).await;
    let url = gw.url("/admin/teams/red/provider-keys/emu");
    let put = client().put(&url).json(&json!({"key": "sk-own"}));
    assert_eq!(put.send().await.unwrap().status(), 401, "admin key required");
    let resp = client()
        .put(&url)
        .bearer_auth("adm")
        .json(&json!({"key": "sk-own"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(!resp.text().await.unwrap().contains("sk-own"), "never echoed");
    assert_eq!(gw.chat(Some(&red), &ask("hi")).await.status(), 200);
    let (status, _) = error_of(
        client()
            .put(gw.url("/admin/teams/nope/provider-keys/emu"))
            .bearer_auth("adm")
            .json(&json!({"key": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let del = client().delete(&url).bearer_auth("adm").send().await.unwrap();
    assert_eq!(del.status(), 200);
    assert_eq!(gw.chat(Some(&red), &ask("hi")).await.status(), 401);
}

#[tokio::test]
async fn a_teams_own_anthropic_key_goes_in_anthropics_header() {
    let emu = Emulator::start(EmulatorOptions {
        api_key: Some("sk-ant-team".into()),
        models: Some(json!([{"id": "claude-test"}])),
        ..Default::default()
    })
    .await
    .unwrap();
    let store = store();
    team(store.as_ref(), "red");
    team(store.as_ref(), "blue");
    let red = key(store.as_ref(), "r", Some("red"));
    let blue = key(store.as_ref(), "b", Some("blue"));
    let toml = format!(
        "[[providers]]\nname = \"claude\"\nkind = \"anthropic\"\nbase_url = \"{}\"\napi_key = \"sk-shared\"\nmax_retries = 0\n",
        emu.base_url()
    );
    let gw = gateway_with_store(&toml, store.clone()).await;
    admin::set_team_provider_key(store.as_ref(), &secret(), "red", "claude", "sk-ant-team", now()).unwrap();
    let ask = json!({"model": "claude/claude-test", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(gw.chat(Some(&red), &ask).await.status(), 200);
    let sent = emu.requests().last().unwrap().clone();
    assert_eq!(sent.headers["x-api-key"], "sk-ant-team");
    assert_eq!(sent.headers.get_all("x-api-key").iter().count(), 1);
    assert_eq!(sent.headers["anthropic-version"], "2023-06-01");
    assert!(!sent.headers.contains_key("authorization"));
    let body = sent.json().unwrap();
    assert!(
        body.get("cache_salt").is_none(),
        "no partition member on Anthropic's wire: {body}"
    );
    assert_eq!(
        gw.chat(Some(&blue), &ask).await.status(),
        401,
        "blue keeps the shared key"
    );
    assert_eq!(emu.requests().last().unwrap().headers["x-api-key"], "sk-shared");
}

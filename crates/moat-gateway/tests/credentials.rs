//! Credentials never leave in errors: a provider that quotes the credential it was sent in its error
//! body (as some do for a 401) has that body passed on with every credential moatd sent scrubbed —
//! the provider's key and a team's own key — on every endpoint and wire.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use common::*;
use moat_gateway::admin::{self, NewKey, NewTeam};
use moat_store::{SqliteStore, Store};
use moat_testkit::{Emulator, EmulatorOptions};
use serde_json::{json, Value};

const PROVIDER_KEY: &str = "sk-provider-Rk9mQ2vX7pL4nB8wZ3cY";
const TEAM_KEY: &str = "sk-team-own-Tq5vB1xN8mK3pL6wR2c";

fn failing(model: &str) -> Value {
    json!({"model": model, "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "emulate": {"status": 401, "echo_auth": true, "message": "Incorrect API key provided"}})
}

async fn post(gw: &TestGateway, path: &str, key: Option<&str>, body: &Value) -> (u16, String) {
    let mut req = client().post(gw.url(path)).json(body);
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_provider_quoting_its_key_in_an_error_does_not_hand_it_to_the_client() {
    let emu = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_memory().unwrap());
    let now = moat_gateway::ledger::now();
    admin::create_team(
        store.as_ref(),
        &NewTeam {
            name: "ops".into(),
            ..Default::default()
        },
        now,
    )
    .unwrap();
    admin::set_team_provider_key(store.as_ref(), &secret(), "ops", "emu", TEAM_KEY, now).unwrap();
    let team_member = admin::create_key(
        store.as_ref(),
        &secret(),
        &NewKey {
            name: "member".into(),
            team: Some("ops".into()),
            ..Default::default()
        },
        now,
    )
    .unwrap()
    .key;
    let loner = admin::create_key(
        store.as_ref(),
        &secret(),
        &NewKey {
            name: "loner".into(),
            ..Default::default()
        },
        now,
    )
    .unwrap()
    .key;
    let config = format!(
        "{}api_key = \"{PROVIDER_KEY}\"\nmax_retries = 0\n",
        provider("emu", &emu.base_url())
    );
    let gw = gateway_with_store(&config, store).await;
    for (key, sent) in [(&loner, PROVIDER_KEY), (&team_member, TEAM_KEY)] {
        for path in ["/v1/chat/completions", "/v1/messages"] {
            for stream in [false, true] {
                let mut body = failing("emu/tiny");
                body["stream"] = json!(stream);
                let (status, text) = post(&gw, path, Some(key), &body).await;
                assert_eq!(status, 401, "{path}: {text}");
                assert!(
                    !text.contains(sent) && !text.contains(&sent[8..20]),
                    "{path}: the credential leaked: {text}"
                );
                assert!(
                    text.contains("Incorrect API key provided") && text.contains("[REDACTED]"),
                    "{path}: the provider's message is kept, the credential replaced: {text}"
                );
            }
        }
        // The provider did receive the credential: it is the error body that was scrubbed.
        let auth = emu
            .requests()
            .last()
            .unwrap()
            .headers
            .get("authorization")
            .cloned();
        assert_eq!(auth.unwrap().to_str().unwrap(), format!("Bearer {sent}"));
    }
}
